/* sn_math.h: spectral normalization's element-wise math and indexing, host+device (hd.h), for
 * the backends' sn_* operations (backend_ops.h; lib/cpu/sn.c, kernels/sn.cu) and the layer
 * helper (lib/nn/layer_sn.c), which says what the layer computes (torch.nn.utils.spectral_norm).
 *
 * A weight w of d0 x d1 x inner floats (row-major: element (a, b, t) at (a d1 + b) inner + t) is
 * seen as the matrix W_mat of torch's reshape_weight_to_matrix:
 *   dim 0: rows = d0, cols = d1 inner,  W_mat[a, b inner + t] = w[a, b, t]
 *   dim 1: rows = d1, cols = d0 inner,  W_mat[b, a inner + t] = w[a, b, t]   (torch permutes dim 1
 *          to the front: its choice for transposed convolutions)
 * Reductions (the matrix-vector products, norms, dot products) are not here: each backend sums
 * in double in its own fixed order. */
#ifndef GT_SN_MATH_H
#define GT_SN_MATH_H

#include <stddef.h>

#include "lib/base/hd.h"
#ifndef __CUDACC__
#include <math.h>
#endif

typedef struct {
    long d0, d1, inner; /* the weight's shape as three factors */
    int dim;            /* 0 or 1: which factor gives W_mat's rows */
} sn_shape_t;

GT_HD static inline long sn_rows(const sn_shape_t *s) { return s->dim ? s->d1 : s->d0; }
GT_HD static inline long sn_cols(const sn_shape_t *s) { return (s->dim ? s->d0 : s->d1) * s->inner; }
GT_HD static inline size_t sn_count(const sn_shape_t *s) { return (size_t)s->d0 * (size_t)s->d1 * (size_t)s->inner; }

/* the flat index in w of W_mat[r, c] */
GT_HD static inline size_t sn_at(const sn_shape_t *s, long r, long c) {
    if (!s->dim) return (size_t)r * (size_t)sn_cols(s) + (size_t)c;
    long a = c / s->inner, t = c % s->inner;
    return ((size_t)a * (size_t)s->d1 + (size_t)r) * (size_t)s->inner + (size_t)t;
}

/* the row and column of W_mat that w's element (a, b, t) of (d0, d1, inner) is */
GT_HD static inline void sn_row_col_at(const sn_shape_t *s, size_t a, size_t b, size_t t, long *r, long *c) {
    size_t in = (size_t)s->inner;
    if (!s->dim) {
        *r = (long)a;
        *c = (long)(b * in + t);
    } else {
        *r = (long)b;
        *c = (long)(a * in + t);
    }
}

/* the row and column of W_mat that w's flat element k is */
GT_HD static inline void sn_row_col(const sn_shape_t *s, size_t k, long *r, long *c) {
    size_t in = (size_t)s->inner, ab = k / in;
    sn_row_col_at(s, ab / (size_t)s->d1, ab % (size_t)s->d1, k % in, r, c);
}

/* the term of output o (a row of W_mat x, or a column of W_mat^T x) at reduction position j */
GT_HD static inline double sn_mv_term(const sn_shape_t *s, const float *w, const float *x, int transpose, long o,
                                      long j) {
    size_t k = transpose ? sn_at(s, j, o) : sn_at(s, o, j);
    return (double)w[k] * (double)x[j];
}

/* torch's F.normalize divisor: max(||x||, eps) from the sum of squares */
GT_HD static inline double sn_norm_divisor(double sumsq, double eps) {
    double n = sqrt(sumsq);
    return n > eps ? n : eps;
}

/* W = W_orig / sigma, sigma rounded to float as torch's float32 sigma is */
GT_HD static inline float sn_weight_value(float w_orig, double sigma) { return w_orig / (float)sigma; }

/* The gradient of a loss with respect to W_orig for W = W_orig / sigma, sigma = u^T W_orig v
 * (u, v held fixed), from dW: dW_orig = (dW - <dW, W> u v^T) / sigma, with dot = <dW, W> summed
 * over every element (W = W_orig / sigma, so <dW, W> = <dW, W_orig> / sigma). Element k of W
 * is W_mat[r, c]: ur = u[r], vc = v[c]. */
GT_HD static inline float sn_grad_value(float dw, double dot, float ur, float vc, double sigma) {
    return (float)(((double)dw - dot * (double)ur * (double)vc) / (double)(float)sigma);
}

/* Weight normalization (lib/nn/layer_wn.c): W = v g / ||v|| per row (a slice of dimension 0).
 * The weight's element from v and its row's g and norm, as torch's v * (g / norm) */
GT_HD static inline float wn_weight_value(float v, float g, float norm) { return v * (g / norm); }

/* dL/dv for element v of a row with g, norm and s = <dW_row, v_row>: (g / n) (dW - s v / n^2) */
GT_HD static inline float wn_grad_v(float dw, float v, float g, float norm, double s) {
    double n = norm;
    return (float)((double)g / n * ((double)dw - s / (n * n) * (double)v));
}

#endif
