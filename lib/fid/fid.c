/* fid.c: feature statistics (one pass, float64, mergeable), the Frechet distance through
 * symmetric eigendecompositions, and KID (see fid.h for the mathematics and the contracts).
 *
 * Sections: statistics (chunked rank-k updates and Chan's pairwise merge), the Frechet
 * distance (LAPACK dpotrf or dsyevd, and dgesdd), KID (Philox subsets, float64 kernel sums).
 * BLAS and LAPACK run in float64 in column-major or row-major form as noted at each call; every
 * matrix here is symmetric, so the two layouts hold the same numbers. */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/common.h"
#include "fid.h"
#include "lib/base/philox.h"
#include "lib/base/shuffle.h"

#define FID_MAX_DIM 32768 /* m2 and sigma are d x d doubles: 8 GiB each at this size */

/* ---- BLAS threads for one call ----------------------------------------------------------- */

/* The CPU backend keeps OpenBLAS on one thread (its pool splits the float32 GEMMs); the float64
 * linear algebra here runs alone, so it may use OpenBLAS's own threads for the duration. */
int fid_blas_threads_begin(int threads) {
    int before = openblas_get_num_threads();
    if (threads > 0) openblas_set_num_threads(threads);
    return before;
}
void fid_blas_threads_end(int before) { openblas_set_num_threads(before); }

/* ---- statistics ------------------------------------------------------------------------ */

int fid_stats_init(fid_stats_t *s, int d, int chunk_rows) {
    memset(s, 0, sizeof *s);
    if (d < 1 || d > FID_MAX_DIM)
        return gt_err("feature dimension %d is out of range [1, %d] for a covariance matrix", d, FID_MAX_DIM);
    if (chunk_rows <= 0) {
        chunk_rows = (1 << 24) / d; /* at most 128 MiB of buffered rows */
        if (chunk_rows > 1024) chunk_rows = 1024;
        if (chunk_rows < 16) chunk_rows = 16;
    }
    size_t dd = (size_t)d * (size_t)d;
    s->d = d;
    s->mu = gt_xcalloc((size_t)d, sizeof(double));
    s->m2 = gt_xcalloc(dd, sizeof(double)); /* sigma: allocated when first finished */
    s->chunk = gt_xmalloc(sizeof(double) * (size_t)chunk_rows * (size_t)d);
    s->chunk_cap = chunk_rows;
    return 0;
}

void fid_stats_free(fid_stats_t *s) {
    free(s->mu);
    free(s->m2);
    free(s->sigma);
    free(s->chunk);
    memset(s, 0, sizeof *s);
}

static int all_finite(const double *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

int fid_stats_from(fid_stats_t *s, int d, int64_t n, const double *mu, const double *sigma) {
    memset(s, 0, sizeof *s);
    if (n < 0 || n == 1) return gt_err("sample count n = %lld: a covariance needs n >= 2", (long long)n);
    if (d < 1 || d > FID_MAX_DIM)
        return gt_err("feature dimension %d is out of range [1, %d] for a covariance matrix", d, FID_MAX_DIM);
    size_t dd = (size_t)d * (size_t)d;
    if (!all_finite(mu, (size_t)d)) return gt_err("mu holds NaN or infinite values");
    if (!all_finite(sigma, dd)) return gt_err("sigma holds NaN or infinite values");
    double scale = 0;
    for (int i = 0; i < d; i++) scale = fmax(scale, fabs(sigma[(size_t)i * d + i]));
    for (int i = 0; i < d; i++)
        for (int j = 0; j < i; j++) {
            double a = sigma[(size_t)i * d + j], b = sigma[(size_t)j * d + i];
            if (fabs(a - b) > 1e-9 * scale)
                return gt_err("sigma is not symmetric: sigma[%d][%d] = %.17g but sigma[%d][%d] = %.17g", i, j, a, j, i,
                              b);
        }
    s->d = d;
    s->n = n;
    s->mu = gt_xmalloc(sizeof(double) * (size_t)d);
    memcpy(s->mu, mu, sizeof(double) * (size_t)d);
    s->sigma = gt_xmalloc(sizeof(double) * dd);
    /* exactly symmetric: the mean of the two triangles (they agree to rounding) */
    for (int i = 0; i < d; i++)
        for (int j = 0; j <= i; j++) {
            double v = 0.5 * (sigma[(size_t)i * d + j] + sigma[(size_t)j * d + i]);
            s->sigma[(size_t)i * d + j] = s->sigma[(size_t)j * d + i] = v;
        }
    s->finished = 1;
    return 0;
}

/* Fold the buffered rows into (n, mu, m2) by the pairwise update of Chan et al.:
 *   delta = mean_b - mu,  n = na + nb,  mu += delta nb / n,
 *   m2 += Xc^T Xc + delta delta^T na nb / n      (Xc: the chunk centred on its own mean).
 * Only m2's lower triangle (row-major) is updated; fid_stats_finish mirrors it. */
static void flush_chunk(fid_stats_t *s) {
    int nb = s->chunk_n, d = s->d;
    if (nb == 0) return;
    double *X = s->chunk; /* (nb, d) */
    double *mean_b = gt_xcalloc((size_t)d, sizeof(double));
    for (int i = 0; i < nb; i++) {
        const double *row = X + (size_t)i * d;
        for (int k = 0; k < d; k++) mean_b[k] += row[k];
    }
    for (int k = 0; k < d; k++) mean_b[k] /= nb;
    for (int i = 0; i < nb; i++) {
        double *row = X + (size_t)i * d;
        for (int k = 0; k < d; k++) row[k] -= mean_b[k];
    }
    /* m2 (lower) += X^T X */
    cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, d, nb, 1.0, X, d, 1.0, s->m2, d);
    double na = (double)s->n, n = na + nb;
    if (s->n == 0) {
        memcpy(s->mu, mean_b, sizeof(double) * (size_t)d);
    } else {
        for (int k = 0; k < d; k++) mean_b[k] -= s->mu[k]; /* delta */
        for (int k = 0; k < d; k++) s->mu[k] += mean_b[k] * (nb / n);
        cblas_dsyr(CblasRowMajor, CblasLower, d, na * nb / n, mean_b, 1, s->m2, d);
    }
    s->n += nb;
    s->chunk_n = 0;
    s->finished = 0;
    free(mean_b);
}

/* Append B rows of x (float32) or x64 (float64, when x is NULL), already checked finite. */
static void push_rows(fid_stats_t *s, const float *x, const double *x64, int B) {
    int d = s->d;
    for (int i = 0; i < B; i++) {
        double *row = s->chunk + (size_t)s->chunk_n * d;
        if (x) {
            const float *src = x + (size_t)i * d;
            for (int k = 0; k < d; k++) row[k] = src[k];
        } else {
            memcpy(row, x64 + (size_t)i * d, sizeof(double) * (size_t)d);
        }
        if (++s->chunk_n == s->chunk_cap) flush_chunk(s);
    }
    s->finished = 0;
}

int fid_stats_add(fid_stats_t *s, const float *x, int B) {
    if (!s->chunk) return gt_err("internal error: statistics were not made by fid_stats_init");
    int d = s->d;
    for (size_t k = 0; k < (size_t)B * (size_t)d; k++)
        if (!isfinite(x[k])) return gt_err("feature %zu of row %zu is %s", k % (size_t)d, k / (size_t)d,
                                           isnan(x[k]) ? "NaN" : "infinite");
    push_rows(s, x, NULL, B);
    return 0;
}

int fid_stats_add_f64(fid_stats_t *s, const double *x, int B) {
    if (!s->chunk) return gt_err("internal error: statistics were not made by fid_stats_init");
    if (!all_finite(x, (size_t)B * (size_t)s->d)) return gt_err("features hold NaN or infinite values");
    push_rows(s, NULL, x, B);
    return 0;
}

/* m2: lower triangle -> both; sigma = m2 / (n - 1). */
static void finish_matrices(fid_stats_t *s) {
    int d = s->d;
    if (!s->sigma) s->sigma = gt_xmalloc(sizeof(double) * (size_t)d * (size_t)d);
    double inv = 1.0 / (double)(s->n - 1);
    for (int i = 0; i < d; i++)
        for (int j = 0; j <= i; j++) {
            double v = s->m2[(size_t)i * d + j];
            s->m2[(size_t)j * d + i] = v;
            s->sigma[(size_t)i * d + j] = s->sigma[(size_t)j * d + i] = v * inv;
        }
    s->finished = 1;
}

int fid_stats_finish(fid_stats_t *s) {
    if (s->finished) return 0;
    if (s->chunk) flush_chunk(s);
    if (s->n < 2) return gt_err("%lld sample%s: a covariance needs at least 2", (long long)s->n, s->n == 1 ? "" : "s");
    finish_matrices(s);
    return 0;
}

int fid_stats_compact(fid_stats_t *s) {
    if (s->chunk) flush_chunk(s);
    if (s->n < 2) return gt_err("%lld sample%s: a covariance needs at least 2", (long long)s->n, s->n == 1 ? "" : "s");
    if (!s->m2) return fid_stats_finish(s); /* read from a file: mu and sigma only already */
    int d = s->d;
    double inv = 1.0 / (double)(s->n - 1);
    double *m = s->m2; /* its lower triangle is current (flush_chunk and merges update only that) */
    for (int i = 0; i < d; i++)
        for (int j = 0; j <= i; j++) m[(size_t)i * d + j] = m[(size_t)j * d + i] = m[(size_t)i * d + j] * inv;
    free(s->sigma);
    s->sigma = m;
    s->m2 = NULL;
    free(s->chunk);
    s->chunk = NULL;
    s->chunk_n = s->chunk_cap = 0;
    s->finished = 1;
    return 0;
}

/* Statistics read from a file get their co-moment when a merge needs it. */
static int ensure_m2(fid_stats_t *s) {
    if (s->m2) return 0;
    if (s->n < 2)
        return gt_err("cannot merge statistics without a sample count n (pytorch-fid's .npz holds only mu and "
                      "sigma): they can be scored, not merged");
    size_t dd = (size_t)s->d * (size_t)s->d;
    s->m2 = gt_xmalloc(sizeof(double) * dd);
    for (size_t k = 0; k < dd; k++) s->m2[k] = s->sigma[k] * (double)(s->n - 1);
    return 0;
}

int fid_stats_merge(fid_stats_t *dst, fid_stats_t *src) {
    if (dst->d != src->d)
        return gt_err("cannot merge statistics of %d features with statistics of %d", dst->d, src->d);
    if (ensure_m2(dst) || ensure_m2(src)) return -1;
    if (dst->chunk) flush_chunk(dst);
    if (src->chunk) flush_chunk(src);
    if (src->n >= 2 && fid_stats_finish(src)) return -1; /* keeps src's sigma up to date */
    if (src->n == 0) return fid_stats_finish(dst);
    int d = dst->d;
    size_t dd = (size_t)d * (size_t)d;
    if (dst->n == 0) {
        memcpy(dst->mu, src->mu, sizeof(double) * (size_t)d);
        memcpy(dst->m2, src->m2, sizeof(double) * dd);
    } else {
        double na = (double)dst->n, nb = (double)src->n, n = na + nb;
        double *delta = gt_xmalloc(sizeof(double) * (size_t)d);
        for (int k = 0; k < d; k++) delta[k] = src->mu[k] - dst->mu[k];
        for (int k = 0; k < d; k++) dst->mu[k] += delta[k] * (nb / n);
        /* lower triangles: src->m2's lower half is valid whether or not src was finished */
        for (int i = 0; i < d; i++)
            for (int j = 0; j <= i; j++) dst->m2[(size_t)i * d + j] += src->m2[(size_t)i * d + j];
        cblas_dsyr(CblasRowMajor, CblasLower, d, na * nb / n, delta, 1, dst->m2, d);
        free(delta);
    }
    dst->n += src->n;
    dst->finished = 0;
    return fid_stats_finish(dst);
}

/* ---- statistics per class ------------------------------------------------------------------ */

#define CLASS_CHUNK_ROWS 64 /* per class: many classes, each with a small buffer */

void fid_class_stats_init(fid_class_stats_t *c, int d) {
    memset(c, 0, sizeof *c);
    c->d = d;
}

void fid_class_stats_free(fid_class_stats_t *c) {
    for (int64_t k = 0; k < c->cap; k++)
        if (c->cls[k]) {
            fid_stats_free(c->cls[k]);
            free(c->cls[k]);
        }
    free(c->cls);
    memset(c, 0, sizeof *c);
}

const fid_stats_t *fid_class_stats_get(const fid_class_stats_t *c, int64_t k) {
    return k >= 0 && k < c->cap ? c->cls[k] : NULL;
}

/* Rows of x (float32) or x64 (float64, when x is NULL) to their classes' statistics. */
static int class_stats_add(fid_class_stats_t *c, const float *x, const double *x64, const int64_t *labels, int B) {
    int d = c->d;
    for (int i = 0; i < B; i++)
        if (labels[i] < 0 || labels[i] > FID_MAX_CLASS)
            return gt_err("label %lld of row %d is outside 0..%d", (long long)labels[i], i, FID_MAX_CLASS);
    for (size_t k = 0; k < (size_t)B * (size_t)d; k++) {
        double v = x ? x[k] : x64[k];
        if (!isfinite(v))
            return gt_err("feature %zu of row %zu is %s", k % (size_t)d, k / (size_t)d, isnan(v) ? "NaN" : "infinite");
    }
    for (int i = 0; i < B; i++) {
        int64_t k = labels[i];
        if (k >= c->cap) {
            int64_t cap = c->cap ? c->cap : 16;
            while (cap <= k) cap *= 2;
            c->cls = gt_xrealloc(c->cls, sizeof *c->cls * (size_t)cap);
            memset(c->cls + c->cap, 0, sizeof *c->cls * (size_t)(cap - c->cap));
            c->cap = cap;
        }
        if (!c->cls[k]) {
            c->cls[k] = gt_xmalloc(sizeof(fid_stats_t));
            if (fid_stats_init(c->cls[k], d, CLASS_CHUNK_ROWS)) {
                free(c->cls[k]);
                c->cls[k] = NULL;
                return -1;
            }
        }
        size_t off = (size_t)i * (size_t)d; /* checked finite above */
        push_rows(c->cls[k], x ? x + off : NULL, x ? NULL : x64 + off, 1);
    }
    return 0;
}

int fid_class_stats_add(fid_class_stats_t *c, const float *x, const int64_t *labels, int B) {
    return class_stats_add(c, x, NULL, labels, B);
}

int fid_class_stats_add_f64(fid_class_stats_t *c, const double *x, const int64_t *labels, int B) {
    return class_stats_add(c, NULL, x, labels, B);
}

int fid_class_stats_finish(fid_class_stats_t *c) {
    for (int64_t k = 0; k < c->cap; k++) {
        fid_stats_t *s = c->cls[k];
        if (!s) continue;
        if (s->n + s->chunk_n >= 2) { /* rows still in the chunk count too */
            if (fid_stats_compact(s)) return gt_err("class %lld: %s", (long long)k, gt_errmsg());
            continue;
        }
        if (s->chunk) flush_chunk(s); /* one row: its mean is the row */
        free(s->m2);
        free(s->chunk);
        s->m2 = NULL;
        s->chunk = NULL;
        s->chunk_n = s->chunk_cap = 0;
    }
    return 0;
}

/* ---- the Frechet distance ---------------------------------------------------------------- */

/* A factor F (d, d, column-major) of the symmetric S + offset I = F^T F: the Cholesky factor R
 * (upper triangular, lower part zeroed) when that is positive definite, else L^1/2 V^T from the
 * eigendecomposition S = V L V^T with negative eigenvalues (rounding noise around an exact zero)
 * taken as 0. work: d * d doubles, w: d doubles. *chol says which. Returns 0 or the LAPACK info
 * (> 0: the eigensolver did not converge). */
static int factor(int d, const double *S, double offset, double *F, double *work, double *w, int *chol) {
    size_t dd = (size_t)d * (size_t)d;
    memcpy(F, S, sizeof(double) * dd);
    for (int i = 0; i < d; i++) F[(size_t)i * d + i] += offset;
    *chol = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', d, F, d) == 0;
    if (*chol) {
        for (int j = 0; j < d; j++)
            for (int i = j + 1; i < d; i++) F[(size_t)j * d + i] = 0.0;
        return 0;
    }
    memcpy(work, S, sizeof(double) * dd);
    for (int i = 0; i < d; i++) work[(size_t)i * d + i] += offset;
    int info = (int)LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'L', d, work, d, w);
    if (info) return info;
    for (int i = 0; i < d; i++) w[i] = w[i] > 0 ? sqrt(w[i]) : 0.0;
    /* F[i][j] = sqrt(l_i) V[j][i]: column j of F is row j of V scaled */
    for (int j = 0; j < d; j++)
        for (int i = 0; i < d; i++) F[(size_t)j * d + i] = w[i] * work[(size_t)i * d + j];
    return 0;
}

/* tr sqrt(S1 S2) for symmetric positive semi-definite S1, S2 (d, d), with `offset` added to both
 * diagonals: the sum of the singular values of F2 F1^T for any factors S1 = F1^T F1, S2 = F2^T F2
 * (fid.h). Returns 0, or the LAPACK info (> 0: no convergence) of the failing call. */
static int trace_sqrt_product(int d, const double *s1, const double *s2, double offset, double *tr) {
    size_t dd = (size_t)d * (size_t)d;
    double *F1 = gt_xmalloc(sizeof(double) * dd), *F2 = gt_xmalloc(sizeof(double) * dd);
    double *M = gt_xmalloc(sizeof(double) * dd); /* scratch, then F2 F1^T */
    double *sv = gt_xmalloc(sizeof(double) * (size_t)d);
    int chol1, chol2;
    int info = factor(d, s1, offset, F1, M, sv, &chol1);
    if (info == 0) info = factor(d, s2, offset, F2, M, sv, &chol2);
    if (info == 0) {
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, d, d, d, 1.0, F2, d, F1, d, 0.0, M, d);
        info = (int)LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'N', d, d, M, d, sv, NULL, 1, NULL, 1);
    }
    if (info == 0) {
        double sum = 0; /* singular values come largest first: add the small ones first */
        for (int i = d - 1; i >= 0; i--) sum += sv[i];
        *tr = sum;
    }
    free(F1);
    free(F2);
    free(M);
    free(sv);
    return info;
}

int fid_frechet(int d, const double *mu1, const double *s1, const double *mu2, const double *s2, double *fd,
                double *offset) {
    if (offset) *offset = 0;
    if (d < 1) return gt_err("feature dimension %d is not positive", d);
    size_t dd = (size_t)d * (size_t)d;
    if (!all_finite(mu1, (size_t)d) || !all_finite(mu2, (size_t)d)) return gt_err("a mean holds NaN or infinite values");
    if (!all_finite(s1, dd) || !all_finite(s2, dd)) return gt_err("a covariance holds NaN or infinite values");
    double diff2 = 0, tr1 = 0, tr2 = 0;
    for (int k = 0; k < d; k++) {
        double t = mu1[k] - mu2[k];
        diff2 += t * t;
        tr1 += s1[(size_t)k * d + k];
        tr2 += s2[(size_t)k * d + k];
    }
    int before = fid_blas_threads_begin(1); /* the same bits at any thread count (fid.h) */
    double tr = 0;
    int info = trace_sqrt_product(d, s1, s2, 0.0, &tr);
    if (info > 0) { /* pytorch-fid's remedy for a singular product */
        info = trace_sqrt_product(d, s1, s2, FID_EPS, &tr);
        if (offset) *offset = FID_EPS;
    }
    fid_blas_threads_end(before);
    if (info != 0)
        return gt_err("the eigendecomposition failed (LAPACK dsyevd info %d), even with %g added to the diagonals",
                      info, FID_EPS);
    *fd = diff2 + tr1 + tr2 - 2.0 * tr;
    return 0;
}

/* ---- KID ----------------------------------------------------------------------------------- */

/* (g / d + 1)^3 */
static inline double kid_kernel(double g, double inv_d) {
    double t = g * inv_d + 1.0;
    return t * t * t;
}

/* rows perm[0..m) of x (n, d) float32 -> out (m, d) float64 */
static void gather(double *out, const float *x, const int64_t *perm, int m, int d) {
    for (int i = 0; i < m; i++) {
        const float *src = x + (size_t)perm[i] * (size_t)d;
        double *dst = out + (size_t)i * d;
        for (int k = 0; k < d; k++) dst[k] = src[k];
    }
}

/* sum_{i != j} k(a_i, a_j) over rows of A (m, d): twice the strict lower triangle of A A^T. */
static double kernel_sum_within(const double *A, int m, int d, double *G) {
    cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, m, d, 1.0, A, d, 0.0, G, m);
    double inv_d = 1.0 / d, total = 0;
    for (int i = 1; i < m; i++) {
        double row = 0;
        for (int j = 0; j < i; j++) row += kid_kernel(G[(size_t)i * m + j], inv_d);
        total += row;
    }
    return 2.0 * total;
}

/* sum_{i,j} k(a_i, b_j) */
static double kernel_sum_between(const double *A, const double *Bm, int m, int d, double *G) {
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, m, d, 1.0, A, d, Bm, d, 0.0, G, m);
    double inv_d = 1.0 / d, total = 0;
    for (int i = 0; i < m; i++) {
        double row = 0;
        for (int j = 0; j < m; j++) row += kid_kernel(G[(size_t)i * m + j], inv_d);
        total += row;
    }
    return total;
}

int fid_kid(const float *x, int64_t nx, const float *y, int64_t ny, int d, int subsets, int subset_size,
            uint64_t seed, int threads, double *mean, double *std) {
    if (d < 1) return gt_err("feature dimension %d is not positive", d);
    if (subsets < 1) return gt_err("KID needs at least one subset");
    int64_t m64 = subset_size;
    if (nx < m64) m64 = nx;
    if (ny < m64) m64 = ny;
    if (m64 < 2) return gt_err("KID needs at least 2 samples in each set (subset size %lld)", (long long)m64);
    if ((uint64_t)subsets > (1u << 30)) return gt_err("too many KID subsets");
    int m = (int)m64;
    for (int64_t k = 0; k < nx * (int64_t)d; k++)
        if (!isfinite(x[k])) return gt_err("features of the first set hold NaN or infinite values");
    for (int64_t k = 0; k < ny * (int64_t)d; k++)
        if (!isfinite(y[k])) return gt_err("features of the second set hold NaN or infinite values");
    int64_t *px = gt_xmalloc(sizeof(int64_t) * (size_t)nx), *py = gt_xmalloc(sizeof(int64_t) * (size_t)ny);
    double *A = gt_xmalloc(sizeof(double) * (size_t)m * (size_t)d);
    double *Bm = gt_xmalloc(sizeof(double) * (size_t)m * (size_t)d);
    double *G = gt_xmalloc(sizeof(double) * (size_t)m * (size_t)m);
    double *est = gt_xmalloc(sizeof(double) * (size_t)subsets);
    int before = fid_blas_threads_begin(threads);
    for (int s = 0; s < subsets; s++) {
        philox_shuffle(px, nx, seed, PHILOX_STREAM_KID, 2u * (uint32_t)s);
        philox_shuffle(py, ny, seed, PHILOX_STREAM_KID, 2u * (uint32_t)s + 1u);
        gather(A, x, px, m, d);
        gather(Bm, y, py, m, d);
        double kxx = kernel_sum_within(A, m, d, G);
        double kyy = kernel_sum_within(Bm, m, d, G);
        double kxy = kernel_sum_between(A, Bm, m, d, G);
        est[s] = (kxx + kyy) / ((double)m * (m - 1)) - 2.0 * kxy / ((double)m * m);
    }
    fid_blas_threads_end(before);
    double sum = 0;
    for (int s = 0; s < subsets; s++) sum += est[s];
    double mu = sum / subsets, var = 0;
    for (int s = 0; s < subsets; s++) var += (est[s] - mu) * (est[s] - mu);
    *mean = mu;
    *std = sqrt(var / subsets);
    free(px);
    free(py);
    free(A);
    free(Bm);
    free(G);
    free(est);
    return 0;
}
