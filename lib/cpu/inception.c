/* inception.c: the CPU backend's operations for the Inception feature network
 * (lib/backend/backend_ops.h: resize_bilinear, relu_keep_nan, copy_rows, plane_means;
 * lib/fid/inception_net.c uses them; kernels/inception.cu computes the same on a GPU). The
 * per-index arithmetic is inception_math.h's; each output is computed by one thread in a fixed
 * order, so results do not depend on the thread count. */
#include <string.h>

#include "lib/base/common.h"
#include "cpu_ops.h"
#include "lib/backend/inception_math.h"

typedef struct {
    float *y;
    const float *x;
    int C, H, W, S;
} resize_job_t;

/* planes [p0, p1) of y (B, 3, S, S): plane p is sample p / 3, channel p % 3 (gray: channel 0) */
static void resize_planes(void *arg, long p0, long p1) {
    const resize_job_t *j = arg;
    const int S = j->S;
    for (long p = p0; p < p1; p++) {
        long b = p / 3, c = j->C == 1 ? 0 : p % 3;
        const float *src = j->x + (b * j->C + c) * (long)j->H * j->W;
        float *dst = j->y + p * (long)S * S;
        for (int oy = 0; oy < S; oy++) {
            int y0, y1;
            float a0, a1;
            resize_taps(oy, j->H, S, &y0, &y1, &a0, &a1);
            for (int ox = 0; ox < S; ox++) {
                int x0, x1;
                float b0, b1;
                resize_taps(ox, j->W, S, &x0, &x1, &b0, &b1);
                dst[(long)oy * S + ox] = resize_at(src, j->W, y0, y1, a0, a1, x0, x1, b0, b1);
            }
        }
    }
}

void cpu_resize_bilinear(backend_t *be, float *y, const float *x, int B, int C, int H, int W, int S) {
    resize_job_t j = {y, x, C, H, W, S};
    cpu_parallel_for(be, (long)B * 3, resize_planes, &j);
}

typedef struct {
    float *x;
    long n;
} relu_job_t;

#define RELU_BLOCK 4096

/* blocks [k0, k1) of RELU_BLOCK values */
static void relu_blocks(void *arg, long k0, long k1) {
    const relu_job_t *j = arg;
    long end = k1 * RELU_BLOCK < j->n ? k1 * RELU_BLOCK : j->n;
    for (long i = k0 * RELU_BLOCK; i < end; i++) j->x[i] = inception_relu(j->x[i]);
}

void cpu_relu_keep_nan(backend_t *be, float *x, size_t n) {
    relu_job_t j = {x, (long)n};
    long blocks = (j.n + RELU_BLOCK - 1) / RELU_BLOCK;
    if (blocks > 4) cpu_parallel_for(be, blocks, relu_blocks, &j);
    else relu_blocks(&j, 0, blocks);
}

typedef struct {
    float *dst;
    const float *src;
    long dst_ld, src_ld, cols;
} rows_job_t;

static void copy_rows_range(void *arg, long r0, long r1) {
    const rows_job_t *j = arg;
    for (long r = r0; r < r1; r++) memcpy(j->dst + r * j->dst_ld, j->src + r * j->src_ld, sizeof(float) * (size_t)j->cols);
}

void cpu_copy_rows(backend_t *be, float *dst, long dst_ld, const float *src, long src_ld, long rows, long cols) {
    rows_job_t j = {dst, src, dst_ld, src_ld, cols};
    if (rows * cols >= 65536) cpu_parallel_for(be, rows, copy_rows_range, &j);
    else copy_rows_range(&j, 0, rows);
}

typedef struct {
    float *out;
    const float *x;
    long hw;
} means_job_t;

static void means_range(void *arg, long p0, long p1) {
    const means_job_t *j = arg;
    for (long p = p0; p < p1; p++) {
        const float *q = j->x + p * j->hw;
        double s = 0;
        for (long k = 0; k < j->hw; k++) s += q[k];
        j->out[p] = (float)(s / (double)j->hw);
    }
}

void cpu_plane_means(backend_t *be, float *out, const float *x, long planes, long hw) {
    means_job_t j = {out, x, hw};
    if (planes * hw >= 32768) cpu_parallel_for(be, planes, means_range, &j);
    else means_range(&j, 0, planes);
}
