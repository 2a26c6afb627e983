/* sn.c: the CPU backend's spectral- and weight-normalization operations (lib/backend/backend_ops.h,
 * "spectral normalization", "weight normalization"; indexing and element math in lib/backend/sn_math.h, which the CUDA
 * kernels of kernels/sn.cu call too).
 *
 * Sums are in double. A matrix-vector output is summed by one thread in index order; the
 * norms and u . t (a few hundred terms) by one thread in index order; <dw, w> over the whole
 * weight in parts of SN_PART elements, each part by one thread in order, the parts' sums added
 * in part order. So no result depends on the thread count. */
#include <math.h>
#include <stddef.h>

#include "lib/backend/sn_math.h"
#include "cpu_ops.h"

#define SN_PART 65536
#define SN_BATCH 64

typedef struct {
    const sn_shape_t *s;
    float *y;
    const float *w, *x;
    int transpose;
    long len; /* terms per output */
} mv_job_t;

static void mv_part(void *arg, long o0, long o1) {
    const mv_job_t *j = arg;
    for (long o = o0; o < o1; o++) {
        double acc = 0;
        for (long k = 0; k < j->len; k++) acc += sn_mv_term(j->s, j->w, j->x, j->transpose, o, k);
        j->y[o] = (float)acc;
    }
}

void cpu_sn_matvec(backend_t *be, const sn_shape_t *s, float *y, const float *w, const float *x, int transpose) {
    long outs = transpose ? sn_cols(s) : sn_rows(s), len = transpose ? sn_rows(s) : sn_cols(s);
    mv_job_t j = {s, y, w, x, transpose, len};
    cpu_parallel_for(be, outs, mv_part, &j);
}

void cpu_sn_normalize(backend_t *be, float *y, const float *x, size_t n, double eps) {
    (void)be;
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (double)x[i] * (double)x[i];
    double d = sn_norm_divisor(ss, eps);
    for (size_t i = 0; i < n; i++) y[i] = (float)((double)x[i] / d);
}

typedef struct {
    float *out;
    const float *a, *b, *u, *v;
    const sn_shape_t *s;
    double sigma, dot;
    double *part; /* dot's partial sums */
    long part0;
    size_t n;
} el_job_t;

static void w_part(void *arg, long b0, long b1) {
    const el_job_t *j = arg;
    for (size_t k = (size_t)b0 * SN_PART; k < (size_t)b1 * SN_PART && k < j->n; k++)
        j->out[k] = sn_weight_value(j->a[k], j->sigma);
}

void cpu_sn_weight(backend_t *be, const sn_shape_t *s, float *w, double *sigma, const float *w_orig, const float *u,
                   const float *t) {
    long rows = sn_rows(s);
    double acc = 0;
    for (long r = 0; r < rows; r++) acc += (double)u[r] * (double)t[r];
    sigma[0] = acc;
    size_t n = sn_count(s);
    el_job_t j = {w, w_orig, NULL, NULL, NULL, s, acc, 0, NULL, 0, n};
    cpu_parallel_for(be, (long)((n + SN_PART - 1) / SN_PART), w_part, &j);
}

static void dot_part(void *arg, long k0, long k1) {
    const el_job_t *j = arg;
    for (long k = k0; k < k1; k++) {
        size_t b = (size_t)(j->part0 + k) * SN_PART, e = b + SN_PART < j->n ? b + SN_PART : j->n;
        double acc = 0;
        for (size_t i = b; i < e; i++) acc += (double)j->a[i] * (double)j->b[i];
        j->part[k] = acc;
    }
}

static void grad_part(void *arg, long b0, long b1) {
    const el_job_t *j = arg;
    for (size_t k = (size_t)b0 * SN_PART; k < (size_t)b1 * SN_PART && k < j->n; k++) {
        long r, c;
        sn_row_col(j->s, k, &r, &c);
        j->out[k] += sn_grad_value(j->a[k], j->dot, j->u[r], j->v[c], j->sigma);
    }
}

void cpu_sn_grad(backend_t *be, const sn_shape_t *s, float *dw_orig, double *dot, const float *dw, const float *w,
                 const float *u, const float *v, const double *sigma) {
    size_t n = sn_count(s);
    long parts = (long)((n + SN_PART - 1) / SN_PART);
    double part[SN_BATCH], acc = 0;
    el_job_t j = {dw_orig, dw, w, u, v, s, sigma[0], 0, part, 0, n};
    for (long p0 = 0; p0 < parts; p0 += SN_BATCH) {
        long np = parts - p0 < SN_BATCH ? parts - p0 : SN_BATCH;
        j.part0 = p0;
        cpu_parallel_for(be, np, dot_part, &j);
        for (long k = 0; k < np; k++) acc += part[k];
    }
    dot[0] = acc;
    j.dot = acc;
    cpu_parallel_for(be, parts, grad_part, &j);
}

/* ---- weight normalization: rows split over threads, each row's sum by one thread in order ---- */

typedef struct {
    float *norm, *w, *dg, *dv;
    const float *v, *g, *dw, *cnorm;
    long cols;
} wn_job_t;

static void wn_norm_rows(void *arg, long r0, long r1) {
    const wn_job_t *j = arg;
    for (long r = r0; r < r1; r++) {
        const float *v = j->v + (size_t)r * j->cols;
        double q = 0;
        for (long c = 0; c < j->cols; c++) q += (double)v[c] * v[c];
        j->norm[r] = (float)sqrt(q);
    }
}

static void wn_weight_rows(void *arg, long r0, long r1) {
    const wn_job_t *j = arg;
    for (long r = r0; r < r1; r++) {
        size_t o = (size_t)r * j->cols;
        for (long c = 0; c < j->cols; c++) j->w[o + c] = wn_weight_value(j->v[o + c], j->g[r], j->cnorm[r]);
    }
}

static void wn_grad_rows(void *arg, long r0, long r1) {
    const wn_job_t *j = arg;
    for (long r = r0; r < r1; r++) {
        size_t o = (size_t)r * j->cols;
        double s = 0;
        for (long c = 0; c < j->cols; c++) s += (double)j->dw[o + c] * j->v[o + c];
        j->dg[r] += (float)(s / j->cnorm[r]);
        for (long c = 0; c < j->cols; c++)
            j->dv[o + c] += wn_grad_v(j->dw[o + c], j->v[o + c], j->g[r], j->cnorm[r], s);
    }
}

static void wn_run(backend_t *be, void (*fn)(void *, long, long), wn_job_t *j, long rows) {
    if ((size_t)rows * (size_t)j->cols >= 65536 && rows > 1) cpu_parallel_for(be, rows, fn, j);
    else fn(j, 0, rows);
}

void cpu_wn_norms(backend_t *be, float *norm, const float *v, long rows, long cols) {
    wn_job_t j = {norm, NULL, NULL, NULL, v, NULL, NULL, NULL, cols};
    wn_run(be, wn_norm_rows, &j, rows);
}

void cpu_wn_weight(backend_t *be, float *w, const float *g, const float *v, const float *norm, long rows, long cols) {
    wn_job_t j = {NULL, w, NULL, NULL, v, g, NULL, norm, cols};
    wn_run(be, wn_weight_rows, &j, rows);
}

void cpu_wn_grad(backend_t *be, float *dg, float *dv, const float *dw, const float *g, const float *v,
                 const float *norm, long rows, long cols) {
    wn_job_t j = {NULL, NULL, dg, dv, v, g, dw, norm, cols};
    wn_run(be, wn_grad_rows, &j, rows);
}
