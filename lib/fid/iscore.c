/* iscore.c: the Inception Score from pool3 features (iscore.h): the final layer's weights read
 * from the weights file, then per split two passes over blocks of rows (the logits by one
 * float64 GEMM a block): the mean class distribution, then the mean KL divergence to it. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "formats/safetensors.h"
#include "lib/base/common.h"
#include "fid.h"
#include "iscore.h"

#define IS_BLOCK 512 /* rows of logits at a time */

int is_load_fc(const char *path, int dim, float **w, int *classes) {
    *w = NULL;
    st_file_t f;
    if (st_load(path, &f)) return -1;
    const st_entry_t *e = st_find(&f, "fc.weight");
    int rc = 0;
    if (!e) {
        rc = gt_err("%s: no tensor 'fc.weight' (the final layer, which the Inception Score needs): convert "
                    "pytorch-fid's pt_inception-2015-12-05-6726825d.pth again with tools/fid-weights.py, which keeps it",
                    path);
    } else if (e->t.ndim != 2 || e->t.shape[1] != dim || e->t.shape[0] < 2 || e->t.shape[0] > 100000) {
        char got[64];
        tensor_shape_str(&e->t, got, sizeof got);
        rc = gt_err("%s: fc.weight is %s, expected CLASSES x %d (1008 x %d in pytorch-fid's weights)", path, got, dim,
                    dim);
    } else if (e->t.dtype != DT_F32) {
        rc = gt_err("%s: fc.weight is %s, expected float32", path, dtype_name(e->t.dtype));
    } else {
        size_t n = (size_t)tensor_numel(&e->t);
        const float *src = e->t.data;
        for (size_t i = 0; i < n && !rc; i++)
            if (!isfinite(src[i])) rc = gt_err("%s: fc.weight holds NaN or infinite values", path);
        if (!rc) {
            *w = gt_xmalloc(sizeof(float) * n);
            memcpy(*w, src, sizeof(float) * n);
            *classes = (int)e->t.shape[0];
        }
    }
    st_free(&f);
    return rc;
}

/* logp (m, C) = log_softmax(F W^T) of rows [r0, r0 + m) of f; F64 (m, dim) and W64 (C, dim) */
static void log_probs(double *logp, double *F64, const double *W64, const float *f, int64_t r0, int m, int dim, int C) {
    const float *src = f + (size_t)r0 * (size_t)dim;
    for (size_t k = 0; k < (size_t)m * (size_t)dim; k++) F64[k] = src[k];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, C, dim, 1.0, F64, dim, W64, dim, 0.0, logp, C);
    for (int i = 0; i < m; i++) {
        double *l = logp + (size_t)i * (size_t)C, mx = l[0], s = 0;
        for (int c = 1; c < C; c++) mx = l[c] > mx ? l[c] : mx;
        for (int c = 0; c < C; c++) s += exp(l[c] - mx);
        double lse = mx + log(s);
        for (int c = 0; c < C; c++) l[c] -= lse;
    }
}

int is_compute(const float *f, int64_t n, int dim, const float *w, int classes, int splits, int threads, double *mean,
               double *std) {
    if (splits < 1 || (int64_t)splits > n)
        return gt_err("%lld samples for %d splits: each split needs at least one sample", (long long)n, splits);
    for (size_t k = 0; k < (size_t)n * (size_t)dim; k++)
        if (!isfinite(f[k])) return gt_err("features hold NaN or infinite values");
    int C = classes;
    double *W64 = gt_xmalloc(sizeof(double) * (size_t)C * (size_t)dim);
    for (size_t k = 0; k < (size_t)C * (size_t)dim; k++) W64[k] = w[k];
    double *F64 = gt_xmalloc(sizeof(double) * IS_BLOCK * (size_t)dim);
    double *logp = gt_xmalloc(sizeof(double) * IS_BLOCK * (size_t)C);
    double *py = gt_xmalloc(sizeof(double) * (size_t)C), *logpy = gt_xmalloc(sizeof(double) * (size_t)C);
    double *score = gt_xmalloc(sizeof(double) * (size_t)splits);
    /* one BLAS thread: OpenBLAS's float64 GEMM splits differently with more threads and its
     * sums then differ in the last bits; the logits cost little beside the features */
    (void)threads;
    int before = fid_blas_threads_begin(1);
    for (int s = 0; s < splits; s++) {
        int64_t a = (int64_t)s * n / splits, b = (int64_t)(s + 1) * n / splits, ns = b - a;
        memset(py, 0, sizeof(double) * (size_t)C);
        for (int64_t r = a; r < b; r += IS_BLOCK) { /* p_S(y) */
            int m = (int)(b - r < IS_BLOCK ? b - r : IS_BLOCK);
            log_probs(logp, F64, W64, f, r, m, dim, C);
            for (int i = 0; i < m; i++)
                for (int c = 0; c < C; c++) py[c] += exp(logp[(size_t)i * (size_t)C + (size_t)c]);
        }
        for (int c = 0; c < C; c++) logpy[c] = log(py[c] / (double)ns);
        double kl = 0;
        for (int64_t r = a; r < b; r += IS_BLOCK) { /* sum over x of KL(p(y|x) || p_S(y)) */
            int m = (int)(b - r < IS_BLOCK ? b - r : IS_BLOCK);
            log_probs(logp, F64, W64, f, r, m, dim, C);
            for (int i = 0; i < m; i++) {
                const double *lp = logp + (size_t)i * (size_t)C;
                double row = 0;
                for (int c = 0; c < C; c++) {
                    double p = exp(lp[c]);
                    if (p > 0) row += p * (lp[c] - logpy[c]);
                }
                kl += row;
            }
        }
        score[s] = exp(kl / (double)ns);
    }
    fid_blas_threads_end(before);
    double sum = 0, var = 0;
    for (int s = 0; s < splits; s++) sum += score[s];
    double mu = sum / splits;
    for (int s = 0; s < splits; s++) var += (score[s] - mu) * (score[s] - mu);
    *mean = mu;
    *std = sqrt(var / splits);
    free(W64);
    free(F64);
    free(logp);
    free(py);
    free(logpy);
    free(score);
    return 0;
}
