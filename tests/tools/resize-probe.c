/* resize-probe: resizes float32 images with lib/fid/resample.h, for the PIL parity check in
 * tests/ref/test_fid_numpy.py.
 *
 *   resize-probe IN.npy OUT_H OUT_W OUT.npy
 *
 * IN.npy: float32 N x C x H x W; OUT.npy: float32 N x C x OUT_H x OUT_W, every plane resized. */
#include <stdio.h>
#include <stdlib.h>

#include "formats/npy.h"
#include "lib/base/common.h"
#include "lib/fid/resample.h"

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: resize-probe IN.npy OUT_H OUT_W OUT.npy\n");
        return 2;
    }
    tensor_t t;
    if (npy_load(argv[1], &t, 0) || t.dtype != DT_F32 || t.ndim != 4) {
        fprintf(stderr, "resize-probe: %s: want float32 N x C x H x W\n", argv[1]);
        return 1;
    }
    int oh = atoi(argv[2]), ow = atoi(argv[3]), h = (int)t.shape[2], w = (int)t.shape[3];
    long planes = (long)(t.shape[0] * t.shape[1]);
    float *out = gt_xmalloc(sizeof(float) * (size_t)planes * (size_t)oh * (size_t)ow);
    float *tmp = gt_xmalloc(sizeof(float) * (size_t)ow * (size_t)h);
    for (long p = 0; p < planes; p++)
        resample_bicubic_aa(out + (size_t)p * (size_t)oh * (size_t)ow, oh, ow,
                            (const float *)t.data + (size_t)p * (size_t)h * (size_t)w, h, w, tmp);
    tensor_t o = {DT_F32, 4, {t.shape[0], t.shape[1], oh, ow}, out, NULL, 0, 0};
    FILE *f = fopen(argv[4], "wb");
    if (!f || npy_write(f, &o) || fclose(f)) {
        fprintf(stderr, "resize-probe: cannot write %s\n", argv[4]);
        return 1;
    }
    free(out);
    free(tmp);
    tensor_free(&t);
    return 0;
}
