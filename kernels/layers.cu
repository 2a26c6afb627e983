/* layers.cu: the CUDA backend's fills, bias, activation, dropout and noise operations
 * (lib/backend/backend_ops.h; the CPU's are lib/cpu/layers.c). Each operation is a kernel that
 * computes its element's index and calls the shared math (philox.h, act_math.h, norm_math.h),
 * a launch, and the entry point the backend struct holds. The bias gradient is a reduce.h
 * reduction. */
#include "cuda_check.h"
#include "cuda_ops.h"
#include "reduce.h"

#include "lib/backend/act_math.h"
#include "lib/base/common.h"
#include "lib/backend/norm_math.h"
#include "lib/base/philox.h"

/* ---- fills ------------------------------------------------------------------------------- */

__global__ void k_fill(float *dst, float value, size_t n) {
    size_t i = GT_TID();
    if (i < n) dst[i] = value;
}

void cuda_fill(backend_t *be, float *dst, float value, size_t n) {
    (void)be;
    if (!n) return;
    gt_count_bytes(4.0 * n);
    GT_LAUNCH(k_fill, gt_blocks(n), GT_BLOCK, dst, value, n);
}

__global__ void k_philox_fill(float *dst, size_t n, int kind, uint64_t seed, uint32_t stream, uint32_t step,
                              uint64_t index0, float scale, float shift) {
    size_t j = GT_TID();
    if (j < n) dst[j] = philox_fill_value(kind, seed, stream, step, index0 + j, scale, shift);
}

void cuda_philox_fill(backend_t *be, float *dst, size_t n, fill_kind_t kind, uint64_t seed, uint32_t stream,
                      uint32_t step, uint64_t index0, float scale, float shift) {
    (void)be;
    if (!n) return;
    gt_count_bytes(4.0 * n);
    GT_LAUNCH(k_philox_fill, gt_blocks(n), GT_BLOCK, dst, n, (int)kind, seed, stream, step, index0, scale, shift);
}

__global__ void k_add_noise(float *y, const float *x, size_t n, uint64_t seed, uint32_t stream, uint32_t step,
                            uint64_t index0, float sigma) {
    size_t j = GT_TID();
    if (j < n) y[j] = (x ? x[j] : 0.0f) + philox_fill_value(FILL_NORMAL, seed, stream, step, index0 + j, sigma, 0.0f);
}

void cuda_add_noise(backend_t *be, float *y, const float *x, size_t n, uint64_t seed, uint32_t stream, uint32_t step,
                    uint64_t index0, float sigma) {
    (void)be;
    if (!n) return;
    gt_count_bytes(4.0 * n * (1 + (x != NULL)));
    GT_LAUNCH(k_add_noise, gt_blocks(n), GT_BLOCK, y, x, n, seed, stream, step, index0, sigma);
}

/* ---- bias -------------------------------------------------------------------------------- */

template <class I> __global__ void k_bias_add(float *y, const float *b, size_t n, gt_idiv C, gt_idiv inner) {
    I i = GT_TID_AS(I);
    if (i < n) y[i] += b[C.mod(inner.div(i))];
}

void cuda_bias_add(backend_t *be, float *y, const float *b, long outer, long C, long inner) {
    (void)be;
    size_t n = (size_t)outer * C * inner;
    if (!n) return;
    gt_count_bytes(8.0 * n);
    GT_LAUNCH_IDX(n, k_bias_add, gt_blocks(n), GT_BLOCK, y, b, n, gt_idiv_make(C), gt_idiv_make(inner));
}

/* element (o, i) of channel c of (outer, C, inner) */
struct bias_sum {
    const float *dy;
    long C, inner;
    __device__ void operator()(long c, long o, long i, double *acc) const {
        acc[0] += dy[((size_t)o * C + c) * inner + i];
    }
};
struct bias_add_grad {
    float *db;
    __device__ void operator()(long c, const double *sum) const { db[c] += (float)sum[0]; }
};

void cuda_bias_grad(backend_t *be, float *db, const float *dy, long outer, long C, long inner) {
    (void)be;
    gt_count_bytes(4.0 * outer * C * inner + 8.0 * C);
    gt_reduce_2d<1>(C, outer, inner, bias_sum{dy, C, inner}, bias_add_grad{db});
}

/* ---- activations ------------------------------------------------------------------------- */

__global__ void k_act_forward(float *y, const float *x, size_t n, int kind, float slope) {
    size_t i = GT_TID();
    if (i < n) y[i] = act_value(kind, slope, x[i]);
}

__global__ void k_act_backward(float *dx, const float *dy, const float *x, const float *y, size_t n, int kind,
                               float slope) {
    size_t i = GT_TID();
    if (i < n) dx[i] = act_backward_value(kind, slope, x[i], y[i], dy[i]);
}

__global__ void k_act_jvp_forward(float *y, float *ty, const float *x, const float *tx, size_t n, int kind,
                                  float slope) {
    size_t i = GT_TID();
    if (i >= n) return;
    float v = act_value(kind, slope, x[i]);
    y[i] = v;
    ty[i] = act_deriv(kind, slope, x[i], v) * tx[i];
}

__global__ void k_act_jvp_backward(float *dx, float *dtx, const float *dy, const float *dty, const float *x,
                                   const float *tx, const float *y, size_t n, int kind, float slope) {
    size_t i = GT_TID();
    if (i >= n) return;
    float a, b;
    act_jvp_backward_value(kind, slope, x[i], y[i], tx[i], dy ? dy[i] : 0.0f, dty ? dty[i] : 0.0f, &a, &b);
    if (dx) dx[i] = a;
    if (dtx) dtx[i] = b;
}

void cuda_act_forward(backend_t *be, act_kind_t k, float slope, float *y, const float *x, size_t n) {
    (void)be;
    if (!n) return;
    gt_count_bytes(8.0 * n);
    GT_LAUNCH(k_act_forward, gt_blocks(n), GT_BLOCK, y, x, n, (int)k, slope);
}

template <class I>
__global__ void k_bias_act(float *y, float *z, const float *b, size_t n, gt_idiv C, gt_idiv inner, int kind,
                           float slope) {
    I i = GT_TID_AS(I);
    if (i >= n) return;
    float v = y[i] + b[C.mod(inner.div(i))];
    y[i] = v;
    z[i] = act_value(kind, slope, v);
}

void cuda_bias_act(backend_t *be, act_kind_t k, float slope, float *y, float *z, const float *b, long outer, long C,
                   long inner) {
    (void)be;
    size_t n = (size_t)outer * C * inner;
    if (!n) return;
    gt_count_bytes(12.0 * n);
    GT_LAUNCH_IDX(n, k_bias_act, gt_blocks(n), GT_BLOCK, y, z, b, n, gt_idiv_make(C), gt_idiv_make(inner), (int)k,
                  slope);
}

void cuda_act_backward(backend_t *be, act_kind_t k, float slope, float *dx, const float *dy, const float *x,
                       const float *y, size_t n) {
    (void)be;
    if (!n) return;
    gt_count_bytes(12.0 * n);
    GT_LAUNCH(k_act_backward, gt_blocks(n), GT_BLOCK, dx, dy, x, y, n, (int)k, slope);
}

void cuda_act_jvp_forward(backend_t *be, act_kind_t k, float slope, float *y, float *ty, const float *x,
                          const float *tx, size_t n) {
    (void)be;
    if (!n) return;
    gt_count_bytes(16.0 * n);
    GT_LAUNCH(k_act_jvp_forward, gt_blocks(n), GT_BLOCK, y, ty, x, tx, n, (int)k, slope);
}

void cuda_act_jvp_backward(backend_t *be, act_kind_t k, float slope, float *dx, float *dtx, const float *dy,
                           const float *dty, const float *x, const float *tx, const float *y, size_t n) {
    (void)be;
    if (!n || (!dx && !dtx)) return;
    gt_count_bytes(4.0 * n * (3 + (dy != NULL) + (dty != NULL) + (dx != NULL) + (dtx != NULL)));
    GT_LAUNCH(k_act_jvp_backward, gt_blocks(n), GT_BLOCK, dx, dtx, dy, dty, x, tx, y, n, (int)k, slope);
}

/* ---- activation and dropout fused (net.c) ------------------------------------------------ */

/* one element: its mask byte drawn (forward) or read, then f(x) * factor or f'(x) (dy * factor) */
__global__ void k_act_dropout(float *out, const float *in, const float *x, unsigned char *mask, int backward,
                              size_t n, uint64_t seed, uint32_t step, uint64_t base, float p, float scale, int kind,
                              float slope) {
    size_t k = GT_TID();
    if (k >= n) return;
    if (!backward)
        mask[k] = (unsigned char)dropout_keep_bits(philox_u32(seed, PHILOX_STREAM_DROPOUT, step, base + k), p);
    float m = dropout_mask_factor(mask[k], scale);
    out[k] = backward ? act_dropout_backward_value(kind, slope, x[k], in[k], m)
                      : act_dropout_forward_value(kind, slope, x[k], m);
}

void cuda_act_dropout(backend_t *be, act_kind_t k, float slope, int backward, float *out, const float *in,
                      const float *x, unsigned char *mask, size_t n, uint64_t seed, uint32_t step, uint64_t base,
                      float p) {
    (void)be;
    if (k != ACT_RELU && k != ACT_LRELU) gt_fatal(1, "act_dropout: internal error: activation %d does not read x", (int)k);
    if (!n) return;
    gt_count_bytes(4.0 * n * (backward ? 3 : 2) + 1.0 * n);
    GT_LAUNCH(k_act_dropout, gt_blocks(n), GT_BLOCK, out, in, x, mask, backward, n, seed, step, base, p,
              dropout_scale(p), (int)k, slope);
}

/* ---- dropout ----------------------------------------------------------------------------- */

/* one element: its mask byte drawn (draw) or read, then the products */
__global__ void k_dropout(float *o1, const float *i1, float *o2, const float *i2, unsigned char *mask, int draw,
                          size_t n, uint64_t seed, uint32_t step, uint64_t base, float p, float scale) {
    size_t k = GT_TID();
    if (k >= n) return;
    if (draw) mask[k] = (unsigned char)dropout_keep_bits(philox_u32(seed, PHILOX_STREAM_DROPOUT, step, base + k), p);
    float m = dropout_mask_factor(mask[k], scale);
    if (o1) o1[k] = i1 ? i1[k] * m : 0.0f;
    if (o2) o2[k] = i2 ? i2[k] * m : 0.0f;
}

void cuda_dropout(backend_t *be, float *o1, const float *i1, float *o2, const float *i2, unsigned char *mask, int draw,
                  size_t n, uint64_t seed, uint32_t step, uint64_t base, float p) {
    (void)be;
    if (!n) return;
    gt_count_bytes(4.0 * n * ((o1 != NULL) + (i1 != NULL) + (o2 != NULL) + (i2 != NULL)) + 1.0 * n);
    GT_LAUNCH(k_dropout, gt_blocks(n), GT_BLOCK, o1, i1, o2, i2, mask, draw, n, seed, step, base, p,
              dropout_scale(p));
}

