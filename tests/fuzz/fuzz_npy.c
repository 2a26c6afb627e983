/* fuzz_npy.c: libFuzzer target for the .npy parser (npy_parse). Any input must give either
 * a tensor whose shape matches its byte count, or -1 with a message; never a crash, a leak
 * or undefined behaviour. Valid inputs are also written back and must parse to the same. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/npy.h"
#include "lib/base/common.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    tensor_t t;
    if (npy_parse(data, size, &t) != 0) {
        if (gt_errmsg()[0] == 0) abort(); /* a failure must say why */
        return 0;
    }
    if (tensor_check_shape(t.dtype, t.ndim, t.shape) != 0) abort();
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f || npy_write(f, &t) != 0) abort();
    fclose(f);
    tensor_t u;
    if (npy_parse(buf, len, &u) != 0) abort();
    if (u.dtype != t.dtype || u.ndim != t.ndim || memcmp(u.shape, t.shape, sizeof t.shape[0] * (size_t)t.ndim) ||
        memcmp(u.data, t.data, tensor_nbytes(&t)))
        abort();
    tensor_free(&u);
    tensor_free(&t);
    free(buf);
    return 0;
}
