/* inception.cu: the CUDA backend's operations for the Inception feature network
 * (lib/backend/backend_ops.h: resize_bilinear, relu_keep_nan, copy_rows, plane_means). One
 * thread per output element with inception_math.h's arithmetic (the CPU's bits); the plane
 * means are a reduce.h reduction. */
#include "cuda_check.h"
#include "cuda_ops.h"
#include "reduce.h"

#include "lib/backend/inception_math.h"

template <class I>
__global__ void k_resize_bilinear(float *y, const float *x, int C, int H, int W, gt_idiv S, size_t n) {
    I t = GT_TID_AS(I), p, oy;
    if (t >= n) return;
    int ox = (int)gt_split(t, S, S, &p, &oy); /* t as (plane, oy, ox) of (B 3, S, S) */
    long b = (long)(p / 3), c = C == 1 ? 0 : (long)(p % 3); /* a constant divisor: multiply and shift */
    int y0, y1, x0, x1;
    float a0, a1, b0, b1;
    resize_taps((int)oy, H, (int)S.d, &y0, &y1, &a0, &a1);
    resize_taps(ox, W, (int)S.d, &x0, &x1, &b0, &b1);
    y[t] = resize_at(x + ((size_t)b * C + c) * H * W, W, y0, y1, a0, a1, x0, x1, b0, b1);
}

void cuda_resize_bilinear(backend_t *be, float *y, const float *x, int B, int C, int H, int W, int S) {
    (void)be;
    size_t n = (size_t)B * 3 * S * S;
    if (!n) return;
    gt_count_bytes(4.0 * n + 4.0 * B * C * H * W);
    GT_LAUNCH_IDX(n, k_resize_bilinear, gt_blocks(n), GT_BLOCK, y, x, C, H, W, gt_idiv_make(S), n);
}

__global__ void k_relu_keep_nan(float *x, size_t n) {
    size_t i = GT_TID();
    if (i < n) x[i] = inception_relu(x[i]);
}

void cuda_relu_keep_nan(backend_t *be, float *x, size_t n) {
    (void)be;
    if (!n) return;
    gt_count_bytes(8.0 * n);
    GT_LAUNCH(k_relu_keep_nan, gt_blocks(n), GT_BLOCK, x, n);
}

template <class I>
__global__ void k_copy_rows(float *dst, long dst_ld, const float *src, long src_ld, gt_idiv cols, size_t n) {
    I t = GT_TID_AS(I), r;
    if (t >= n) return;
    I k = cols.divmod(t, &r);
    dst[(size_t)r * dst_ld + k] = src[(size_t)r * src_ld + k];
}

void cuda_copy_rows(backend_t *be, float *dst, long dst_ld, const float *src, long src_ld, long rows, long cols) {
    (void)be;
    size_t n = (size_t)rows * cols;
    if (!n) return;
    gt_count_bytes(8.0 * n);
    GT_LAUNCH_IDX(n, k_copy_rows, gt_blocks(n), GT_BLOCK, dst, dst_ld, src, src_ld, gt_idiv_make(cols), n);
}

struct plane_terms {
    const float *x;
    long hw;
    __device__ void operator()(long p, long k, double *acc) const { acc[0] += x[(size_t)p * hw + k]; }
};
struct plane_mean {
    float *out;
    long hw;
    __device__ void operator()(long p, const double *s) const { out[p] = (float)(s[0] / (double)hw); }
};

void cuda_plane_means(backend_t *be, float *out, const float *x, long planes, long hw) {
    (void)be;
    gt_count_bytes(4.0 * planes * hw + 4.0 * planes);
    gt_reduce<1>(planes, hw, plane_terms{x, hw}, plane_mean{out, hw});
}
