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
    prm[t] = augment_param(seed, step, index0 + t / AUG_DRAWS, (int)(t % AUG_DRAWS), H, W);
}

void cuda_augment_draw(backend_t *be, float *prm, int b, int H, int W, uint64_t seed, uint32_t step, uint64_t index0) {
    (void)be;
    size_t n = (size_t)b * AUG_DRAWS;
    if (!n) return;
    gt_count_bytes(4.0 * n);
    GT_LAUNCH(k_augment_draw, gt_blocks(n), GT_BLOCK, prm, H, W, seed, step, index0, n);
}

__global__ void k_augment_color(float *y, const float *x, const float *prm, const float *mean, int C, long HW,
                                int shift, size_t n) {
    size_t t = GT_TID();
    if (t >= n) return;
    size_t b = t / HW, off = b * C * HW + t % HW;
    augment_color_pixel(y + off, x + off, HW, C, prm + b * AUG_DRAWS, mean[b], shift);
}

void cuda_augment_color(backend_t *be, float *y, const float *x, const float *prm, const float *mean, int b, int C,
                        long HW, int shift) {
    (void)be;
    size_t n = (size_t)b * HW;
    if (!n) return;
    gt_count_bytes(8.0 * n * C);
    GT_LAUNCH(k_augment_color, gt_blocks(n), GT_BLOCK, y, x, prm, mean, C, HW, shift, n);
}

__global__ void k_augment_spatial(float *y, const float *x, const float *prm, int policy, int adjoint, int C, int H,
                                  int W, size_t n) {
    size_t t = GT_TID();
    if (t >= n) return;
    size_t HW = (size_t)H * W, plane = t / HW, b = plane / C;
    int i = (int)(t % HW / W), j = (int)(t % W);
    long src = augment_source(prm + b * AUG_DRAWS, policy, adjoint, H, W, i, j);
    y[t] = src < 0 ? 0.0f : x[plane * HW + src];
}

void cuda_augment_spatial(backend_t *be, float *y, const float *x, const float *prm, int policy, int adjoint, int b,
                          int C, int H, int W) {
    (void)be;
    size_t n = (size_t)b * C * H * W;
    if (!n) return;
    gt_count_bytes(8.0 * n);
    GT_LAUNCH(k_augment_spatial, gt_blocks(n), GT_BLOCK, y, x, prm, policy, adjoint, C, H, W, n);
}
