/* npz-roundtrip: loads a .npz with the library's reader and writes it back with its writer,
 * for tests/ref/test_npz_numpy.py.
 *
 *   npz-roundtrip [--compress] [--list] IN OUT
 *
 * IN and OUT may be '-' (stdin, stdout). --compress deflates the members (savez_compressed);
 * --list also prints "NAME DTYPE SHAPE" per member on stderr. Errors: one line
 * "npz-roundtrip: message", exit 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/npz.h"
#include "lib/base/common.h"

static int fail(void) {
    fprintf(stderr, "npz-roundtrip: %s\n", gt_errmsg());
    return 1;
}

int main(int argc, char **argv) {
    int compress = 0, list = 0, i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--compress") == 0) compress = 1;
        else if (strcmp(argv[i], "--list") == 0) list = 1;
        else {
            fprintf(stderr, "npz-roundtrip: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (argc - i != 2) {
        fprintf(stderr, "usage: npz-roundtrip [--compress] [--list] IN OUT\n");
        return 2;
    }
    const char *in = argv[i], *out = argv[i + 1];
    npz_file_t z;
    if (npz_load(strcmp(in, "-") == 0 ? NULL : in, &z)) return fail();
    const char **names = calloc((size_t)z.n + 1, sizeof *names);
    const tensor_t **arrays = calloc((size_t)z.n + 1, sizeof *arrays);
    for (int k = 0; k < z.n; k++) {
        names[k] = z.entries[k].name;
        arrays[k] = &z.entries[k].t;
        if (list) {
            char sh[128];
            tensor_shape_str(&z.entries[k].t, sh, sizeof sh);
            fprintf(stderr, "%s %s %s\n", names[k], dtype_name(z.entries[k].t.dtype), sh);
        }
    }
    FILE *f = strcmp(out, "-") == 0 ? stdout : fopen(out, "wb");
    if (!f) {
        perror(out);
        return 1;
    }
    if (npz_write(f, z.n, names, arrays, compress)) return fail();
    if (fflush(f) || ferror(f) || (f != stdout && fclose(f))) {
        perror(out);
        return 1;
    }
    free(names);
    free(arrays);
    npz_free(&z);
    return 0;
}
