/* augment.cu: the CUDA backend's DiffAugment operations (lib/backend/backend_ops.h:
 * augment_draw, augment_color, augment_spatial), with augment_math.h's arithmetic (the CPU's
 * bits, lib/cpu/augment.c): a thread per drawn number, per pixel (all its channels: the color
 * transform reads the pixel's channel mean, and may run in place), or per output element. */
#include "cuda_check.h"
#include "cuda_ops.h"

#include "lib/backend/augment_math.h"

__global__ void k_augment_draw(float *prm, int H, int W, uint64_t seed, uint32_t step, uint64_t index0, size_t n) {
    size_t t = GT_TID();
    if (t >= n) return;
    /* a constant divisor: the compiler multiplies and shifts; one thread per drawn number */
    prm[t] = augment_param(seed, step, index0 + t / AUG_DRAWS, (int)(t % AUG_DRAWS), H, W);
}

void cuda_augment_draw(backend_t *be, float *prm, int b, int H, int W, uint64_t seed, uint32_t step, uint64_t index0) {
    (void)be;
    size_t n = (size_t)b * AUG_DRAWS;
    if (!n) return;
    gt_count_bytes(4.0 * n);
    GT_LAUNCH(k_augment_draw, gt_blocks(n), GT_BLOCK, prm, H, W, seed, step, index0, n);
}

template <class I>
__global__ void k_augment_color(float *y, const float *x, const float *prm, const float *mean, int C, gt_idiv HW,
                                int shift, size_t n) {
    I t = GT_TID_AS(I), b;
    if (t >= n) return;
    I p = HW.divmod(t, &b);
    size_t off = (size_t)b * C * HW.d + p;
    augment_color_pixel(y + off, x + off, (long)HW.d, C, prm + (size_t)b * AUG_DRAWS, mean[b], shift);
}

void cuda_augment_color(backend_t *be, float *y, const float *x, const float *prm, const float *mean, int b, int C,
                        long HW, int shift) {
    (void)be;
    size_t n = (size_t)b * HW;
    if (!n) return;
    gt_count_bytes(8.0 * n * C);
    GT_LAUNCH_IDX(n, k_augment_color, gt_blocks(n), GT_BLOCK, y, x, prm, mean, C, gt_idiv_make(HW), shift, n);
}

template <class I>
__global__ void k_augment_spatial(float *y, const float *x, const float *prm, int policy, int adjoint, gt_idiv C,
                                  int H, gt_idiv W, gt_idiv HW, size_t n) {
    I t = GT_TID_AS(I), plane, i;
    if (t >= n) return;
    I j = W.divmod(HW.divmod(t, &plane), &i);
    long src = augment_source(prm + (size_t)C.div(plane) * AUG_DRAWS, policy, adjoint, H, (int)W.d, (int)i, (int)j);
    y[t] = src < 0 ? 0.0f : x[(size_t)plane * HW.d + src];
}

void cuda_augment_spatial(backend_t *be, float *y, const float *x, const float *prm, int policy, int adjoint, int b,
                          int C, int H, int W) {
    (void)be;
    size_t n = (size_t)b * C * H * W;
    if (!n) return;
    gt_count_bytes(8.0 * n);
    GT_LAUNCH_IDX(n, k_augment_spatial, gt_blocks(n), GT_BLOCK, y, x, prm, policy, adjoint, gt_idiv_make(C), H,
                  gt_idiv_make(W), gt_idiv_make((size_t)H * W), n);
}
