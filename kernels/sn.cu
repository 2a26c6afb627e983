/* sn.cu: the CUDA backend's spectral- and weight-normalization operations
 * (lib/backend/backend_ops.h, "spectral normalization", "weight normalization"). The sums (each matrix-vector output, the norms, u . t, <dw, w>) are
 * reduce.h's deterministic segmented reductions in double; the element-wise passes are one
 * thread per weight element calling lib/backend/sn_math.h, as the CPU loops do (lib/cpu/sn.c). */
#include "cuda_check.h"
#include "cuda_ops.h"
#include "reduce.h"

#include "lib/backend/sn_math.h"

/* one term of output s of W_mat x (or W_mat^T x) */
struct sn_mv_terms {
    sn_shape_t sh;
    const float *w, *x;
    int transpose;
    __device__ void operator()(long s, long j, double *acc) const { acc[0] += sn_mv_term(&sh, w, x, transpose, s, j); }
};
struct sn_store_float {
    float *y;
    __device__ void operator()(long s, const double *sum) const { y[s] = (float)sum[0]; }
};

void cuda_sn_matvec(backend_t *be, const sn_shape_t *s, float *y, const float *w, const float *x, int transpose) {
    (void)be;
    long outs = transpose ? sn_cols(s) : sn_rows(s), len = transpose ? sn_rows(s) : sn_cols(s);
    gt_count_bytes(4.0 * (double)sn_count(s));
    gt_reduce<1>(outs, len, sn_mv_terms{*s, w, x, transpose}, sn_store_float{y});
}

/* a . b, one product per term */
struct sn_dot_terms {
    const float *a, *b;
    __device__ void operator()(long s, long i, double *acc) const {
        (void)s;
        acc[0] += (double)a[i] * (double)b[i];
    }
};
struct sn_store_double {
    double *out;
    __device__ void operator()(long s, const double *sum) const {
        (void)s;
        out[0] = sum[0];
    }
};

__global__ void k_sn_divide(float *y, const float *x, const double *sumsq, double eps, size_t n) {
    size_t i = GT_TID();
    if (i < n) y[i] = (float)((double)x[i] / sn_norm_divisor(sumsq[0], eps));
}

void cuda_sn_normalize(backend_t *be, float *y, const float *x, size_t n, double eps) {
    (void)be;
    if (!n) return;
    double *ss = (double *)gt_cuda_scratch(GT_SCRATCH_OP, sizeof(double));
    gt_count_bytes(8.0 * n);
    gt_reduce<1>(1, (long)n, sn_dot_terms{x, x}, sn_store_double{ss});
    GT_LAUNCH(k_sn_divide, gt_blocks(n), GT_BLOCK, y, x, (const double *)ss, eps, n);
}

__global__ void k_sn_weight(float *w, const float *w_orig, const double *sigma, size_t n) {
    size_t i = GT_TID();
    if (i < n) w[i] = sn_weight_value(w_orig[i], sigma[0]);
}

void cuda_sn_weight(backend_t *be, const sn_shape_t *s, float *w, double *sigma, const float *w_orig, const float *u,
                    const float *t) {
    (void)be;
    size_t n = sn_count(s);
    gt_count_bytes(8.0 * n);
    gt_reduce<1>(1, sn_rows(s), sn_dot_terms{u, t}, sn_store_double{sigma});
    if (n) GT_LAUNCH(k_sn_weight, gt_blocks(n), GT_BLOCK, w, w_orig, (const double *)sigma, n);
}

template <class I>
__global__ void k_sn_grad(sn_shape_t s, gt_idiv d1, gt_idiv inner, float *dw_orig, const double *dot, const float *dw,
                          const float *u, const float *v, const double *sigma, size_t n) {
    I k = GT_TID_AS(I), a, b;
    if (k >= n) return;
    long r, c;
    I t = gt_split(k, inner, d1, &a, &b);
    sn_row_col_at(&s, a, b, t, &r, &c);
    dw_orig[k] += sn_grad_value(dw[k], dot[0], u[r], v[c], sigma[0]);
}

void cuda_sn_grad(backend_t *be, const sn_shape_t *s, float *dw_orig, double *dot, const float *dw, const float *w,
                  const float *u, const float *v, const double *sigma) {
    (void)be;
    size_t n = sn_count(s);
    if (!n) return;
    gt_count_bytes(16.0 * n);
    gt_reduce<1>(1, (long)n, sn_dot_terms{dw, w}, sn_store_double{dot});
    GT_LAUNCH_IDX(n, k_sn_grad, gt_blocks(n), GT_BLOCK, *s, gt_idiv_make(s->d1), gt_idiv_make(s->inner), dw_orig,
                  (const double *)dot, dw, u, v, sigma, n);
}

/* ---- weight normalization: a row's sums are reduce.h segments, elements a thread each ------- */

struct wn_sumsq {
    const float *v;
    long cols;
    __device__ void operator()(long r, long c, double *acc) const {
        double x = v[(size_t)r * cols + c];
        acc[0] += x * x;
    }
};
struct wn_store_norm {
    float *norm;
    __device__ void operator()(long r, const double *s) const { norm[r] = (float)sqrt(s[0]); }
};

void cuda_wn_norms(backend_t *be, float *norm, const float *v, long rows, long cols) {
    (void)be;
    gt_count_bytes(4.0 * (double)rows * cols);
    gt_reduce<1>(rows, cols, wn_sumsq{v, cols}, wn_store_norm{norm});
}

template <class I>
__global__ void k_wn_weight(float *w, const float *g, const float *v, const float *norm, size_t n, gt_idiv cols) {
    I k = GT_TID_AS(I);
    if (k >= n) return;
    I r = cols.div(k);
    w[k] = wn_weight_value(v[k], g[r], norm[r]);
}

void cuda_wn_weight(backend_t *be, float *w, const float *g, const float *v, const float *norm, long rows, long cols) {
    (void)be;
    size_t n = (size_t)rows * cols;
    if (!n) return;
    gt_count_bytes(8.0 * n);
    GT_LAUNCH_IDX(n, k_wn_weight, gt_blocks(n), GT_BLOCK, w, g, v, norm, n, gt_idiv_make(cols));
}

struct wn_dot {
    const float *dw, *v;
    long cols;
    __device__ void operator()(long r, long c, double *acc) const {
        size_t k = (size_t)r * cols + c;
        acc[0] += (double)dw[k] * v[k];
    }
};
/* s_r kept in double for the elements' pass; dg[r] += s_r / norm[r] */
struct wn_keep_dot {
    double *s;
    float *dg;
    const float *norm;
    __device__ void operator()(long r, const double *sum) const {
        s[r] = sum[0];
        dg[r] += (float)(sum[0] / norm[r]);
    }
};

template <class I>
__global__ void k_wn_grad_v(float *dv, const float *dw, const float *g, const float *v, const float *norm,
                            const double *s, size_t n, gt_idiv cols) {
    I k = GT_TID_AS(I);
    if (k >= n) return;
    I r = cols.div(k);
    dv[k] += wn_grad_v(dw[k], v[k], g[r], norm[r], s[r]);
}

void cuda_wn_grad(backend_t *be, float *dg, float *dv, const float *dw, const float *g, const float *v,
                  const float *norm, long rows, long cols) {
    (void)be;
    size_t n = (size_t)rows * cols;
    if (!n) return;
    double *s = (double *)gt_cuda_scratch(GT_SCRATCH_OP, sizeof(double) * (size_t)rows);
    gt_count_bytes(16.0 * n);
    gt_reduce<1>(rows, cols, wn_dot{dw, v, cols}, wn_keep_dot{s, dg, norm});
    GT_LAUNCH_IDX(n, k_wn_grad_v, gt_blocks(n), GT_BLOCK, dv, dw, g, v, norm, (const double *)s, n, gt_idiv_make(cols));
}
