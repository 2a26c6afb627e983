/* augment.c: the CPU backend's DiffAugment operations (lib/backend/backend_ops.h: augment_draw,
 * augment_color, augment_spatial; kernels/augment.cu computes the same on a GPU). The arithmetic
 * is augment_math.h's; every output element is written by one thread from its inputs alone, so
 * results do not depend on the thread count. */
#include "cpu_ops.h"
#include "lib/backend/augment_math.h"

void cpu_augment_draw(backend_t *be, float *prm, int b, int H, int W, uint64_t seed, uint32_t step, uint64_t index0) {
    (void)be;
    for (int i = 0; i < b; i++)
        for (int k = 0; k < AUG_DRAWS; k++)
            prm[(long)i * AUG_DRAWS + k] = augment_param(seed, step, index0 + (uint64_t)i, k, H, W);
}

typedef struct {
    float *y;
    const float *x, *prm, *mean;
    int C, shift;
    long HW;
} color_job_t;

/* samples [b0, b1) */
static void color_range(void *arg, long b0, long b1) {
    const color_job_t *j = arg;
    for (long b = b0; b < b1; b++) {
        long off = b * j->C * j->HW;
        for (long p = 0; p < j->HW; p++)
            augment_color_pixel(j->y + off + p, j->x + off + p, j->HW, j->C, j->prm + b * AUG_DRAWS, j->mean[b],
                                j->shift);
    }
}

void cpu_augment_color(backend_t *be, float *y, const float *x, const float *prm, const float *mean, int b, int C,
                       long HW, int shift) {
    color_job_t j = {y, x, prm, mean, C, shift, HW};
    if ((long)b * C * HW >= 32768) cpu_parallel_for(be, b, color_range, &j);
    else color_range(&j, 0, b);
}

typedef struct {
    float *y;
    const float *x, *prm;
    int policy, adjoint, C, H, W;
} spatial_job_t;

/* samples [b0, b1) */
static void spatial_range(void *arg, long b0, long b1) {
    const spatial_job_t *j = arg;
    long HW = (long)j->H * j->W;
    for (long b = b0; b < b1; b++) {
        const float *p = j->prm + b * AUG_DRAWS;
        for (int i = 0; i < j->H; i++)
            for (int k = 0; k < j->W; k++) {
                long src = augment_source(p, j->policy, j->adjoint, j->H, j->W, i, k), dst = (long)i * j->W + k;
                for (int ch = 0; ch < j->C; ch++) {
                    long plane = (b * j->C + ch) * HW;
                    j->y[plane + dst] = src < 0 ? 0.0f : j->x[plane + src];
                }
            }
    }
}

void cpu_augment_spatial(backend_t *be, float *y, const float *x, const float *prm, int policy, int adjoint, int b,
                         int C, int H, int W) {
    spatial_job_t j = {y, x, prm, policy, adjoint, C, H, W};
    if ((long)b * C * H * W >= 32768) cpu_parallel_for(be, b, spatial_range, &j);
    else spatial_range(&j, 0, b);
}
