/* fuzz_idx.c: libFuzzer target for the IDX and CIFAR-10 readers and the gzip byte source
 * beneath them (idx_parse, cifar_parse). Any input must give either a tensor whose shape
 * matches its byte count, or -1 with a message; never a crash, a leak or undefined behaviour.
 * A valid IDX file is also written back as a plain IDX file and must parse to the same. */
// fuzz-sources: formats/bytesrc.c formats/cifar.c
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "formats/cifar.h"
#include "formats/idx.h"
#include "lib/base/common.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    tensor_t t;
    if (idx_parse(data, size, &t) != 0) {
        if (gt_errmsg()[0] == 0) abort(); /* a failure must say why */
    } else {
        if (t.dtype != DT_U8 || t.ndim < 1 || tensor_check_shape(t.dtype, t.ndim, t.shape) != 0) abort();
        /* plain IDX of the same dims and data */
        size_t n = tensor_nbytes(&t), hl = 4 + 4 * (size_t)t.ndim;
        unsigned char *b = malloc(hl + n + 1);
        b[0] = b[1] = 0;
        b[2] = IDX_TYPE_U8;
        b[3] = (unsigned char)t.ndim;
        for (int i = 0; i < t.ndim; i++)
            for (int k = 0; k < 4; k++) b[4 + 4 * i + k] = (unsigned char)((uint64_t)t.shape[i] >> (24 - 8 * k));
        if (n) memcpy(b + hl, t.data, n);
        tensor_t u;
        if (idx_parse(b, hl + n, &u) != 0 || u.ndim != t.ndim ||
            memcmp(u.shape, t.shape, sizeof t.shape[0] * (size_t)t.ndim) || (n && memcmp(u.data, t.data, n)))
            abort();
        tensor_free(&u);
        free(b);
        tensor_free(&t);
    }
    tensor_t im, lab;
    if (cifar_parse(data, size, &im, &lab) != 0) {
        if (gt_errmsg()[0] == 0 || im.data || lab.data) abort();
        return 0;
    }
    if (im.shape[0] != lab.shape[0] || im.shape[0] < 1 || tensor_nbytes(&im) != (size_t)im.shape[0] * CIFAR_PIXELS)
        abort();
    for (int64_t i = 0; i < lab.shape[0]; i++)
        if (((uint8_t *)lab.data)[i] >= CIFAR_CLASSES) abort();
    tensor_free(&im);
    tensor_free(&lab);
    return 0;
}
