/* npy-roundtrip: loads a .npy with the library's reader and writes it back with its writer,
 * for tests/ref/test_npy_numpy.py.
 *
 *   npy-roundtrip [--f32] [--stream] IN OUT
 *
 * IN and OUT may be '-' (stdin, stdout). --f32 asks npy_load to convert float64 to float32;
 * --stream reads through npy_reader_open/npy_reader_read in chunks of 1000 elements instead
 * of npy_load. Errors: one line "npy-roundtrip: message", exit 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/npy.h"
#include "lib/base/common.h"

static int fail(void) {
    fprintf(stderr, "npy-roundtrip: %s\n", gt_errmsg());
    return 1;
}

int main(int argc, char **argv) {
    int f32 = 0, stream = 0, i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--f32") == 0) f32 = 1;
        else if (strcmp(argv[i], "--stream") == 0) stream = 1;
        else {
            fprintf(stderr, "npy-roundtrip: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (argc - i != 2) {
        fprintf(stderr, "usage: npy-roundtrip [--f32] [--stream] IN OUT\n");
        return 2;
    }
    const char *in = argv[i], *out = argv[i + 1];
    FILE *f = strcmp(out, "-") == 0 ? stdout : fopen(out, "wb");
    if (!f) {
        perror(out);
        return 1;
    }
    if (stream) {
        npy_reader_t r;
        if (npy_reader_open(&r, in)) return fail();
        if (npy_write_header(f, r.dtype, r.ndim, r.shape)) return fail();
        size_t es = dtype_size(r.dtype);
        unsigned char *buf = malloc(1000 * es);
        while (r.items_left > 0) {
            int64_t n = r.items_left < 1000 ? r.items_left : 1000;
            if (npy_reader_read(&r, buf, n)) return fail();
            if (fwrite(buf, es, (size_t)n, f) != (size_t)n) return fail();
        }
        free(buf);
        npy_reader_close(&r);
    } else {
        tensor_t t;
        if (npy_load(strcmp(in, "-") == 0 ? NULL : in, &t, f32)) return fail();
        if (npy_write(f, &t)) return fail();
        tensor_free(&t);
    }
    if (fflush(f) || ferror(f) || (f != stdout && fclose(f))) {
        perror(out);
        return 1;
    }
    return 0;
}
