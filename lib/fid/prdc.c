/* prdc.c: precision, recall, density and coverage by exact k-nearest-neighbour balls (prdc.h).
 *
 * Sections: distances (the direct sum, the GEMM estimate and its error bound), the radii (per
 * row: the kmax smallest upper bounds and the candidates that could still be among the k
 * nearest), the comparisons between the sets, the entry point.
 *
 * The error bound. For float64 rows x, y of d features, any summation order gives
 * |fl(x.y) - x.y| <= gamma_d sum |x_k y_k| and |fl(|x|^2) - |x|^2| <= gamma_d |x|^2 with
 * gamma_d ~ d u (u = 2^-53), and the direct sum D(x, y) is within gamma_d D(x, y) <=
 * 2 gamma_d (|x|^2 + |y|^2) of its exact value. So the estimate a = |x|^2 + |y|^2 - 2 x.y is
 * within (4d + 8) u (|x|^2 + |y|^2) of the direct sum; the bound used, t = (8d + 32) u
 * (|x|^2 + |y|^2), leaves a factor 2 for the roundings of a +- t themselves. A decision
 * "D <= r" is taken from a when a + t <= r (yes) or a - t > r (no), and from the direct sum
 * otherwise. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/common.h"
#include "fid.h"
#include "prdc.h"

/* ---- distances -------------------------------------------------------------------------------- */

/* D(x, y) = sum_k (x_k - y_k)^2 in float64, in feature order (the definition) */
static double dist_direct(const float *x, const float *y, int d) {
    double s = 0;
    for (int k = 0; k < d; k++) {
        double t = (double)x[k] - (double)y[k];
        s += t * t;
    }
    return s;
}

static void norms(double *out, const float *x, int64_t n, int d) {
    for (int64_t i = 0; i < n; i++) {
        const float *r = x + (size_t)i * (size_t)d;
        double s = 0;
        for (int k = 0; k < d; k++) s += (double)r[k] * (double)r[k];
        out[i] = s;
    }
}

/* rows [r0, r0 + m) of x (float32) -> out (m, d) float64 */
static void to_f64(double *out, const float *x, int64_t r0, int m, int d) {
    const float *src = x + (size_t)r0 * (size_t)d;
    for (size_t k = 0; k < (size_t)m * (size_t)d; k++) out[k] = src[k];
}

typedef struct {
    int d;
    double tol; /* (8d + 32) u */
} bound_t;

/* Is D(x, y) <= r? a: the GEMM estimate, nsum = |x|^2 + |y|^2; *direct caches the direct sum
 * (NAN until computed). */
static int inside(const bound_t *bd, double a, double nsum, double r, const float *x, const float *y, double *direct) {
    double t = bd->tol * nsum;
    if (a - t > r) return 0;
    if (a + t <= r) return 1;
    if (isnan(*direct)) *direct = dist_direct(x, y, bd->d);
    return *direct <= r;
}

/* ---- radii -------------------------------------------------------------------------------------- */

typedef struct {
    int64_t j;
    double lb; /* a lower bound of D (D itself once computed) */
    double e;  /* D by the direct sum, or NAN until needed */
} cand_t;

typedef struct {
    double *best;   /* (n, kmax) the kmax smallest upper bounds of D per row, ascending */
    cand_t **cand;  /* (n) rows that may be among a row's kmax nearest */
    int *nc, *cap;
    int kmax;
    const float *x; /* the rows, for direct sums */
    int d;
} radii_t;

static int cmp_cand(const void *a, const void *b) {
    const cand_t *p = a, *q = b;
    if (p->e != q->e) return p->e < q->e ? -1 : 1;
    return (p->j > q->j) - (p->j < q->j);
}

/* Row i sees row j at D in [lb, ub]. */
static void offer(radii_t *R, int64_t i, int64_t j, double lb, double ub) {
    int K = R->kmax;
    double *b = R->best + (size_t)i * (size_t)K;
    if (ub < b[K - 1]) {
        int p = K - 1;
        while (p > 0 && b[p - 1] > ub) {
            b[p] = b[p - 1];
            p--;
        }
        b[p] = ub;
    }
    if (lb > b[K - 1]) return;
    if (R->nc[i] == R->cap[i]) { /* drop what the bound now excludes */
        cand_t *cd = R->cand[i];
        int m = 0;
        for (int c = 0; c < R->nc[i]; c++)
            if (cd[c].lb <= b[K - 1]) cd[m++] = cd[c];
        R->nc[i] = m;
        if (m * 2 > R->cap[i]) {
            /* still full: many rows within rounding of each other (duplicates, a collapsed set).
             * Their direct sums decide: the K smallest stay (ties by index), the others are at
             * least the K-th and cannot change the K smallest values; the bounds become exact. */
            const float *xi = R->x + (size_t)i * (size_t)R->d;
            for (int c = 0; c < m; c++)
                if (isnan(cd[c].e)) cd[c].e = dist_direct(xi, R->x + (size_t)cd[c].j * (size_t)R->d, R->d);
            qsort(cd, (size_t)m, sizeof(cand_t), cmp_cand);
            int keep = m < K ? m : K;
            for (int c = 0; c < keep; c++) {
                cd[c].lb = cd[c].e;
                if (cd[c].e < b[c]) b[c] = cd[c].e; /* b stays ascending: both sequences are */
            }
            R->nc[i] = keep;
            if (lb > b[K - 1]) return;
        }
    }
    R->cand[i][R->nc[i]++] = (cand_t){j, lb, NAN};
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The radii at k of every row of x (n, d) -> out (n): the k-th smallest direct sum among the
 * candidates whose lower bound does not exceed the k-th smallest upper bound (every row that can
 * be among the k nearest). */
static void radii_finish(const radii_t *R, const float *x, int64_t n, int d, int k, double *out) {
    double *e = NULL;
    int e_cap = 0;
    for (int64_t i = 0; i < n; i++) {
        double B = R->best[(size_t)i * (size_t)R->kmax + (size_t)(k - 1)];
        int m = 0;
        if (R->nc[i] > e_cap) {
            e_cap = R->nc[i];
            e = gt_xrealloc(e, sizeof(double) * (size_t)e_cap);
        }
        for (int c = 0; c < R->nc[i]; c++) {
            const cand_t *cd = &R->cand[i][c];
            if (cd->lb <= B)
                e[m++] = isnan(cd->e) ? dist_direct(x + (size_t)i * (size_t)d, x + (size_t)cd->j * (size_t)d, d) : cd->e;
        }
        qsort(e, (size_t)m, sizeof(double), cmp_double); /* m >= k: the k best bounds' rows are there */
        out[i] = e[k - 1];
    }
    free(e);
}

/* The radii at k1 and k2 (either may be 0: not wanted) of the rows of x (n, d), norms nx. */
static void radii(const float *x, const double *nx, int64_t n, int d, int k1, int k2, int block, double *r1,
                  double *r2) {
    radii_t R;
    R.kmax = k1 > k2 ? k1 : k2;
    R.x = x;
    R.d = d;
    R.best = gt_xmalloc(sizeof(double) * (size_t)n * (size_t)R.kmax);
    for (size_t q = 0; q < (size_t)n * (size_t)R.kmax; q++) R.best[q] = INFINITY;
    R.cand = gt_xmalloc(sizeof(cand_t *) * (size_t)n);
    R.nc = gt_xcalloc((size_t)n, sizeof(int));
    R.cap = gt_xmalloc(sizeof(int) * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        R.cap[i] = 2 * R.kmax + 8;
        R.cand[i] = gt_xmalloc(sizeof(cand_t) * (size_t)R.cap[i]);
    }
    bound_t bd = {d, (8.0 * d + 32.0) * 0x1p-53};
    double *XI = gt_xmalloc(sizeof(double) * (size_t)block * (size_t)d);
    double *XJ = gt_xmalloc(sizeof(double) * (size_t)block * (size_t)d);
    double *G = gt_xmalloc(sizeof(double) * (size_t)block * (size_t)block);
    for (int64_t i0 = 0; i0 < n; i0 += block) { /* block pairs (I, J >= I): each pair of rows once */
        int bi = (int)(n - i0 < block ? n - i0 : block);
        to_f64(XI, x, i0, bi, d);
        for (int64_t j0 = i0; j0 < n; j0 += block) {
            int bj = (int)(n - j0 < block ? n - j0 : block);
            const double *Y = XI;
            if (j0 != i0) {
                to_f64(XJ, x, j0, bj, d);
                Y = XJ;
            }
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, bi, bj, d, 1.0, XI, d, Y, d, 0.0, G, bj);
            for (int a = 0; a < bi; a++) {
                int64_t i = i0 + a;
                for (int b = j0 == i0 ? a + 1 : 0; b < bj; b++) {
                    int64_t j = j0 + b;
                    double nsum = nx[i] + nx[j], est = nsum - 2.0 * G[(size_t)a * (size_t)bj + (size_t)b];
                    double t = bd.tol * nsum, lb = est - t, ub = est + t;
                    offer(&R, i, j, lb, ub);
                    offer(&R, j, i, lb, ub);
                }
            }
        }
    }
    if (k1) radii_finish(&R, x, n, d, k1, r1);
    if (k2) radii_finish(&R, x, n, d, k2, r2);
    for (int64_t i = 0; i < n; i++) free(R.cand[i]);
    free(R.cand);
    free(R.nc);
    free(R.cap);
    free(R.best);
    free(XI);
    free(XJ);
    free(G);
}

/* ---- the entry point ---------------------------------------------------------------------------- */

static int all_finite_f(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

int prdc_compute(const float *real, int64_t nr, const float *fake, int64_t nf, int d, int k_pr, int k_dc, int block,
                 int threads, prdc_t *out) {
    memset(out, 0, sizeof *out);
    if (d < 1) return gt_err("feature dimension %d is not positive", d);
    if (k_pr < 0 || k_dc < 0 || k_pr > 1000 || k_dc > 1000 || (!k_pr && !k_dc))
        return gt_err("nearest-neighbour k out of range (k_pr %d, k_dc %d)", k_pr, k_dc);
    int kr = k_pr > k_dc ? k_pr : k_dc;
    if (nr <= kr)
        return gt_err("%lld real samples: the %d-th nearest neighbour needs at least %d", (long long)nr, kr, kr + 1);
    if (k_pr && nf <= k_pr)
        return gt_err("%lld generated samples: the %d-th nearest neighbour needs at least %d", (long long)nf, k_pr,
                      k_pr + 1);
    if (nf < 1) return gt_err("no generated samples");
    if (!all_finite_f(real, (size_t)nr * (size_t)d) || !all_finite_f(fake, (size_t)nf * (size_t)d))
        return gt_err("features hold NaN or infinite values");
    if (block <= 0) block = PRDC_BLOCK;
    int before = fid_blas_threads_begin(threads);
    double *nrm_r = gt_xmalloc(sizeof(double) * (size_t)nr), *nrm_f = gt_xmalloc(sizeof(double) * (size_t)nf);
    norms(nrm_r, real, nr, d);
    norms(nrm_f, fake, nf, d);
    double *rr_pr = gt_xmalloc(sizeof(double) * (size_t)nr), *rr_dc = gt_xmalloc(sizeof(double) * (size_t)nr);
    double *rf_pr = gt_xmalloc(sizeof(double) * (size_t)nf);
    radii(real, nrm_r, nr, d, k_pr, k_dc, block, rr_pr, rr_dc);
    if (k_pr) radii(fake, nrm_f, nf, d, k_pr, 0, block, rf_pr, NULL);
    /* the comparisons between the sets */
    unsigned char *prec = gt_xcalloc((size_t)nf, 1), *rec = gt_xcalloc((size_t)nr, 1), *cov = gt_xcalloc((size_t)nr, 1);
    int64_t *dens = gt_xcalloc((size_t)nf, sizeof(int64_t));
    bound_t bd = {d, (8.0 * d + 32.0) * 0x1p-53};
    double *XI = gt_xmalloc(sizeof(double) * (size_t)block * (size_t)d);
    double *XJ = gt_xmalloc(sizeof(double) * (size_t)block * (size_t)d);
    double *G = gt_xmalloc(sizeof(double) * (size_t)block * (size_t)block);
    for (int64_t i0 = 0; i0 < nr; i0 += block) {
        int bi = (int)(nr - i0 < block ? nr - i0 : block);
        to_f64(XI, real, i0, bi, d);
        for (int64_t j0 = 0; j0 < nf; j0 += block) {
            int bj = (int)(nf - j0 < block ? nf - j0 : block);
            to_f64(XJ, fake, j0, bj, d);
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, bi, bj, d, 1.0, XI, d, XJ, d, 0.0, G, bj);
            for (int a = 0; a < bi; a++) {
                int64_t i = i0 + a;
                const float *x = real + (size_t)i * (size_t)d;
                for (int b = 0; b < bj; b++) {
                    int64_t j = j0 + b;
                    const float *y = fake + (size_t)j * (size_t)d;
                    double nsum = nrm_r[i] + nrm_f[j], est = nsum - 2.0 * G[(size_t)a * (size_t)bj + (size_t)b];
                    double direct = NAN;
                    if (k_pr) {
                        if (!prec[j]) prec[j] = (unsigned char)inside(&bd, est, nsum, rr_pr[i], x, y, &direct);
                        if (!rec[i]) rec[i] = (unsigned char)inside(&bd, est, nsum, rf_pr[j], x, y, &direct);
                    }
                    if (k_dc && inside(&bd, est, nsum, rr_dc[i], x, y, &direct)) {
                        dens[j]++;
                        cov[i] = 1;
                    }
                }
            }
        }
    }
    fid_blas_threads_end(before);
    for (int64_t j = 0; j < nf; j++) {
        out->precision_n += prec[j];
        out->density_n += dens[j];
    }
    for (int64_t i = 0; i < nr; i++) {
        out->recall_n += rec[i];
        out->coverage_n += cov[i];
    }
    if (k_pr) {
        out->precision = (double)out->precision_n / (double)nf;
        out->recall = (double)out->recall_n / (double)nr;
    } else {
        out->precision_n = out->recall_n = 0;
    }
    if (k_dc) {
        out->density = (double)out->density_n / ((double)k_dc * (double)nf);
        out->coverage = (double)out->coverage_n / (double)nr;
    }
    free(nrm_r);
    free(nrm_f);
    free(rr_pr);
    free(rr_dc);
    free(rf_pr);
    free(prec);
    free(rec);
    free(cov);
    free(dens);
    free(XI);
    free(XJ);
    free(G);
    return 0;
}
