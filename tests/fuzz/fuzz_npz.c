/* fuzz_npz.c: libFuzzer target for the .npz reader (npz_parse). Any input must give either an
 * archive of valid tensors or -1 with a message; never a crash, a leak or undefined behaviour.
 * Valid inputs are written back (stored and deflated) and must parse to the same arrays. */
// fuzz-sources: formats/npy.c
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/npz.h"
#include "lib/base/common.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    npz_file_t z;
    if (npz_parse(data, size, &z) != 0) {
        if (gt_errmsg()[0] == 0) abort(); /* a failure must say why */
        return 0;
    }
    const char **names = calloc((size_t)z.n + 1, sizeof *names);
    const tensor_t **arrays = calloc((size_t)z.n + 1, sizeof *arrays);
    for (int i = 0; i < z.n; i++) {
        names[i] = z.entries[i].name;
        arrays[i] = &z.entries[i].t;
        if (tensor_check_shape(arrays[i]->dtype, arrays[i]->ndim, arrays[i]->shape) != 0) abort();
    }
    for (int compress = 0; compress < 2; compress++) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f) abort();
        int rc = npz_write(f, z.n, names, arrays, compress);
        fclose(f);
        if (rc == 0) {
            npz_file_t u;
            if (npz_parse(buf, len, &u) != 0 || u.n != z.n) abort();
            for (int i = 0; i < z.n; i++) {
                const tensor_t *a = &z.entries[i].t, *b = &u.entries[i].t;
                if (strcmp(u.entries[i].name, names[i]) || a->dtype != b->dtype || a->ndim != b->ndim ||
                    memcmp(a->shape, b->shape, sizeof a->shape[0] * (size_t)a->ndim) ||
                    memcmp(a->data, b->data, tensor_nbytes(a)))
                    abort();
            }
            npz_free(&u);
        }
        free(buf);
    }
    free(names);
    free(arrays);
    npz_free(&z);
    return 0;
}
