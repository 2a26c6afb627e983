/* test_fid.c: lib/fid/fid.h: one-pass statistics against a two-pass computation, chunking and
 * merging that do not change the result, the Frechet distance on cases with closed forms
 * (diagonal, commuting, rank-deficient, identical), KID against a direct quadruple loop with the
 * documented subsets, and the refusals (non-finite, asymmetric, too few samples, no count);
 * precision/recall/density/coverage: a hand-checked case, and block sizes and thread counts that
 * do not change any count (the values themselves: tests/ref/test_fid_numpy.py). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/fid/fid.h"
#include "lib/fid/prdc.h"
#include "lib/fid/iscore.h"
#include "lib/base/philox.h"
#include "lib/base/shuffle.h"
#include "lib/base/common.h"
#include "harness.h"

/* deterministic data: row i, feature k, with a mean and correlated features */
static void make_rows(float *x, int n, int d, uint64_t seed) {
    for (int i = 0; i < n; i++) {
        float common = philox_normal(seed, PHILOX_STREAM_USER, 1, (uint64_t)i);
        for (int k = 0; k < d; k++) {
            float z = philox_normal(seed, PHILOX_STREAM_USER, 0, (uint64_t)i * d + k);
            x[(size_t)i * d + k] = 3.0f + 0.5f * k + z * (1.0f + 0.1f * k) + common * (k % 3);
        }
    }
}

/* two-pass mean and covariance in long double */
static void two_pass(const float *x, int n, int d, double *mu, double *sigma) {
    for (int k = 0; k < d; k++) {
        long double s = 0;
        for (int i = 0; i < n; i++) s += x[(size_t)i * d + k];
        mu[k] = (double)(s / n);
    }
    for (int a = 0; a < d; a++)
        for (int b = 0; b < d; b++) {
            long double s = 0;
            for (int i = 0; i < n; i++)
                s += ((long double)x[(size_t)i * d + a] - mu[a]) * ((long double)x[(size_t)i * d + b] - mu[b]);
            sigma[(size_t)a * d + b] = (double)(s / (n - 1));
        }
}

static double max_rel(const double *a, const double *b, size_t n) {
    double scale = 0, err = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(b[i]));
    for (size_t i = 0; i < n; i++) err = fmax(err, fabs(a[i] - b[i]));
    return err / (scale > 0 ? scale : 1);
}

static void test_stats_match_two_pass(void) {
    enum { N = 1000, D = 7 };
    float *x = malloc(sizeof(float) * N * D);
    make_rows(x, N, D, 3);
    double mu[D], sigma[D * D];
    two_pass(x, N, D, mu, sigma);
    int chunks[] = {0, 1, 3, 64, 2000};
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        fid_stats_t s;
        CHECK(fid_stats_init(&s, D, chunks[c]) == 0, "%s", gt_errmsg());
        /* uneven batches */
        for (int i = 0, b = 1; i < N; i += b, b = b * 2 % 97 + 1) {
            int nb = i + b > N ? N - i : b;
            CHECK(fid_stats_add(&s, x + (size_t)i * D, nb) == 0, "%s", gt_errmsg());
        }
        CHECK(fid_stats_finish(&s) == 0, "%s", gt_errmsg());
        CHECK(s.n == N, "n %lld", (long long)s.n);
        CHECK(max_rel(s.mu, mu, D) < 1e-13, "chunk %d: mean error %g", chunks[c], max_rel(s.mu, mu, D));
        CHECK(max_rel(s.sigma, sigma, D * D) < 1e-12, "chunk %d: sigma error %g", chunks[c],
              max_rel(s.sigma, sigma, D * D));
        for (int a = 0; a < D; a++)
            for (int b = 0; b < D; b++) CHECK(s.sigma[a * D + b] == s.sigma[b * D + a], "sigma not symmetric");
        fid_stats_free(&s);
    }
    free(x);
}

static void test_merge_equals_whole(void) {
    enum { N = 1500, D = 5 };
    float *x = malloc(sizeof(float) * N * D);
    make_rows(x, N, D, 9);
    fid_stats_t whole, parts[3], merged;
    fid_stats_init(&whole, D, 0);
    fid_stats_add(&whole, x, N);
    CHECK(fid_stats_finish(&whole) == 0, "%s", gt_errmsg());
    int cut[4] = {0, 2, 901, N};
    fid_stats_init(&merged, D, 0);
    for (int p = 0; p < 3; p++) {
        fid_stats_init(&parts[p], D, 7);
        fid_stats_add(&parts[p], x + (size_t)cut[p] * D, cut[p + 1] - cut[p]);
        CHECK(fid_stats_merge(&merged, &parts[p]) == 0, "%s", gt_errmsg());
    }
    CHECK(merged.n == N, "n %lld", (long long)merged.n);
    CHECK(max_rel(merged.mu, whole.mu, D) < 1e-14, "mean %g", max_rel(merged.mu, whole.mu, D));
    CHECK(max_rel(merged.sigma, whole.sigma, D * D) < 1e-13, "sigma %g", max_rel(merged.sigma, whole.sigma, D * D));
    /* statistics read back from (mu, sigma, n) merge too */
    fid_stats_t a, b;
    CHECK(fid_stats_from(&a, D, parts[0].n, parts[0].mu, parts[0].sigma) == 0, "%s", gt_errmsg());
    fid_stats_init(&b, D, 0);
    fid_stats_add(&b, x + (size_t)cut[1] * D, N - cut[1]);
    CHECK(fid_stats_merge(&a, &b) == 0, "%s", gt_errmsg());
    CHECK(max_rel(a.sigma, whole.sigma, D * D) < 1e-13, "from+merge sigma %g", max_rel(a.sigma, whole.sigma, D * D));
    /* without a count: no merging */
    fid_stats_t c;
    CHECK(fid_stats_from(&c, D, 0, whole.mu, whole.sigma) == 0, "%s", gt_errmsg());
    CHECK(fid_stats_merge(&c, &b) == -1 && strstr(gt_errmsg(), "sample count"), "merged without n: %s", gt_errmsg());
    fid_stats_free(&c);
    fid_stats_free(&a);
    fid_stats_free(&b);
    for (int p = 0; p < 3; p++) fid_stats_free(&parts[p]);
    fid_stats_free(&merged);
    fid_stats_free(&whole);
    free(x);
}

/* per-class statistics equal each class's own two-pass statistics; compacting keeps them, and
 * compacted statistics still merge */
static void test_class_stats(void) {
    enum { N = 700, D = 6 };
    float *x = malloc(sizeof(float) * N * D), *xc = malloc(sizeof(float) * N * D);
    make_rows(x, N, D, 11);
    int64_t lab[N];
    /* 40: past the first growth of the class table; 12: 5 rows, fewer than a chunk */
    const int64_t classes[5] = {0, 3, 40, 7, 12};
    for (int i = 0; i < N; i++) lab[i] = i == N - 1 ? 9 : i % 100 == 50 ? 12 : classes[(i * 7 + i / 5) % 4];
    fid_class_stats_t c;
    fid_class_stats_init(&c, D);
    for (int i = 0, b = 1; i < N; i += b, b = b * 3 % 61 + 1) {
        int nb = i + b > N ? N - i : b;
        CHECK(fid_class_stats_add(&c, x + (size_t)i * D, lab + i, nb) == 0, "%s", gt_errmsg());
    }
    CHECK(fid_class_stats_finish(&c) == 0, "%s", gt_errmsg());
    for (int q = 0; q < 5; q++) {
        int n = 0;
        for (int i = 0; i < N; i++)
            if (lab[i] == classes[q]) memcpy(xc + (size_t)n++ * D, x + (size_t)i * D, sizeof(float) * D);
        double mu[D], sigma[D * D];
        two_pass(xc, n, D, mu, sigma);
        const fid_stats_t *s = fid_class_stats_get(&c, classes[q]);
        CHECK(s && s->n == n, "class %lld: n %lld, expected %d", (long long)classes[q], s ? (long long)s->n : -1LL, n);
        if (!s) continue;
        CHECK(s->m2 == NULL && s->chunk == NULL && s->finished, "class %lld not compacted", (long long)classes[q]);
        CHECK(max_rel(s->mu, mu, D) < 1e-13, "class %lld: mean %g", (long long)classes[q], max_rel(s->mu, mu, D));
        CHECK(max_rel(s->sigma, sigma, D * D) < 1e-12, "class %lld: sigma %g", (long long)classes[q],
              max_rel(s->sigma, sigma, D * D));
    }
    const fid_stats_t *one = fid_class_stats_get(&c, 9);
    CHECK(one && one->n == 1 && one->mu[2] == x[(size_t)(N - 1) * D + 2] && !one->sigma, "class of one row");
    CHECK(!fid_class_stats_get(&c, 1) && !fid_class_stats_get(&c, 5000) && !fid_class_stats_get(&c, -1),
          "classes without rows");
    /* refusals: nothing is added */
    int64_t bad[2] = {3, -1};
    CHECK(fid_class_stats_add(&c, x, bad, 2) == -1 && strstr(gt_errmsg(), "label -1 of row 1"), "%s", gt_errmsg());
    bad[1] = FID_MAX_CLASS + 1;
    CHECK(fid_class_stats_add(&c, x, bad, 2) == -1, "label past FID_MAX_CLASS accepted");
    fid_class_stats_free(&c);

    /* compact = finish, and a compacted set merges like a finished one */
    fid_stats_t a, b, whole;
    fid_stats_init(&a, D, 5);
    fid_stats_init(&b, D, 0);
    fid_stats_init(&whole, D, 0);
    fid_stats_add(&a, x, 300);
    fid_stats_add(&b, x + 300 * D, N - 300);
    fid_stats_add(&whole, x, N);
    fid_stats_finish(&whole);
    CHECK(fid_stats_compact(&a) == 0, "%s", gt_errmsg());
    CHECK(fid_stats_add(&a, x, 1) == -1, "rows added to compacted statistics");
    CHECK(fid_stats_merge(&a, &b) == 0, "%s", gt_errmsg());
    CHECK(a.n == N && max_rel(a.sigma, whole.sigma, D * D) < 1e-13, "compact+merge sigma %g",
          max_rel(a.sigma, whole.sigma, D * D));
    fid_stats_free(&a);
    fid_stats_free(&b);
    fid_stats_free(&whole);
    free(x);
    free(xc);
}

static void test_stats_refusals(void) {
    fid_stats_t s;
    float x[6] = {1, 2, 3, 4, 5, 6};
    fid_stats_init(&s, 3, 0);
    fid_stats_add(&s, x, 1);
    CHECK(fid_stats_finish(&s) == -1 && strstr(gt_errmsg(), "at least 2"), "%s", gt_errmsg());
    x[4] = NAN;
    CHECK(fid_stats_add(&s, x, 2) == -1 && strstr(gt_errmsg(), "NaN"), "%s", gt_errmsg());
    CHECK(s.n + s.chunk_n == 1, "a refused batch was partly added");
    fid_stats_free(&s);
    double mu[2] = {0, 0}, sig[4] = {1, 0.5, 0.4, 1};
    CHECK(fid_stats_from(&s, 2, 10, mu, sig) == -1 && strstr(gt_errmsg(), "symmetric"), "%s", gt_errmsg());
    sig[2] = 0.5;
    CHECK(fid_stats_from(&s, 2, 1, mu, sig) == -1, "n = 1 accepted");
    sig[3] = INFINITY;
    CHECK(fid_stats_from(&s, 2, 10, mu, sig) == -1 && strstr(gt_errmsg(), "sigma"), "%s", gt_errmsg());
    CHECK(fid_stats_init(&s, 0, 0) == -1, "d = 0 accepted");
}

/* a random orthogonal matrix (Gram-Schmidt of Philox normals), row-major */
static void orthogonal(double *q, int d, uint64_t seed) {
    for (int i = 0; i < d * d; i++) q[i] = philox_normal(seed, PHILOX_STREAM_USER, 2, (uint64_t)i);
    for (int i = 0; i < d; i++) {
        double *r = q + (size_t)i * d;
        for (int j = 0; j < i; j++) {
            double *p = q + (size_t)j * d, dot = 0;
            for (int k = 0; k < d; k++) dot += r[k] * p[k];
            for (int k = 0; k < d; k++) r[k] -= dot * p[k];
        }
        double nrm = 0;
        for (int k = 0; k < d; k++) nrm += r[k] * r[k];
        nrm = sqrt(nrm);
        for (int k = 0; k < d; k++) r[k] /= nrm;
    }
}

/* S = Q^T diag(ev) Q */
static void spectral(double *s, const double *q, const double *ev, int d) {
    for (int a = 0; a < d; a++)
        for (int b = 0; b < d; b++) {
            double t = 0;
            for (int k = 0; k < d; k++) t += q[(size_t)k * d + a] * ev[k] * q[(size_t)k * d + b];
            s[(size_t)a * d + b] = t;
        }
    for (int a = 0; a < d; a++) /* exactly symmetric */
        for (int b = 0; b < a; b++) s[(size_t)b * d + a] = s[(size_t)a * d + b];
}

/* Commuting covariances (the same eigenvectors): tr sqrt(S1 S2) = sum sqrt(a_k b_k), so
 * FD = |mu1 - mu2|^2 + sum (sqrt(a_k) - sqrt(b_k))^2. Some eigenvalues are exactly 0 (rank
 * deficient), the case pytorch-fid warns about. */
static void test_frechet_closed_forms(void) {
    enum { D = 40 };
    double *q = malloc(sizeof(double) * D * D), *s1 = malloc(sizeof(double) * D * D), *s2 = malloc(sizeof(double) * D * D);
    double a[D], b[D], mu1[D], mu2[D];
    orthogonal(q, D, 5);
    for (int rank_def = 0; rank_def < 2; rank_def++) {
        double want = 0;
        for (int k = 0; k < D; k++) {
            a[k] = 0.1 + k * 0.37;
            b[k] = 2.0 + sin(k);
            if (rank_def && k % 3 == 0) a[k] = 0;
            if (rank_def && k % 4 == 1) b[k] = 0;
            mu1[k] = k * 0.01;
            mu2[k] = -0.5 + k * 0.02;
            want += (mu1[k] - mu2[k]) * (mu1[k] - mu2[k]) + (sqrt(a[k]) - sqrt(b[k])) * (sqrt(a[k]) - sqrt(b[k]));
        }
        spectral(s1, q, a, D);
        spectral(s2, q, b, D);
        double fd, off;
        CHECK(fid_frechet(D, mu1, s1, mu2, s2, &fd, &off) == 0, "%s", gt_errmsg());
        /* with exact zeros, the rounding of S (1e-16 |S|) in their directions is a perturbation whose
         * square root (1e-8) the true tr sqrt(S1 S2) of the matrices as stored carries */
        CHECK_CLOSE(fd, want, rank_def ? 1e-7 : 1e-11);
        CHECK(off == 0, "offset used");
        /* symmetric in its arguments */
        double fd2;
        fid_frechet(D, mu2, s2, mu1, s1, &fd2, NULL);
        CHECK_CLOSE(fd2, want, rank_def ? 1e-7 : 1e-11);
    }
    /* identical Gaussians: 0 (to rounding) */
    double fd;
    fid_frechet(D, mu1, s1, mu1, s1, &fd, NULL);
    CHECK(fabs(fd) < 1e-10, "FD(P, P) = %g", fd);
    /* d = 1: (m1 - m2)^2 + (sqrt v1 - sqrt v2)^2 */
    double m1 = 1.5, m2 = -0.25, v1 = 4, v2 = 0.25;
    fid_frechet(1, &m1, &v1, &m2, &v2, &fd, NULL);
    CHECK_CLOSE(fd, 1.75 * 1.75 + 1.5 * 1.5, 1e-15);
    /* refusals */
    s1[3] = NAN;
    CHECK(fid_frechet(D, mu1, s1, mu2, s2, &fd, NULL) == -1 && strstr(gt_errmsg(), "NaN"), "%s", gt_errmsg());
    free(q);
    free(s1);
    free(s2);
}

/* KID by its definition, each kernel value computed on its own in long double. */
static double kid_direct(const float *x, const int64_t *px, const float *y, const int64_t *py, int m, int d) {
    long double kxx = 0, kyy = 0, kxy = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < m; j++) {
            long double gxx = 0, gyy = 0, gxy = 0;
            for (int k = 0; k < d; k++) {
                gxx += (long double)x[px[i] * d + k] * x[px[j] * d + k];
                gyy += (long double)y[py[i] * d + k] * y[py[j] * d + k];
                gxy += (long double)x[px[i] * d + k] * y[py[j] * d + k];
            }
            long double ex = gxx / d + 1, ey = gyy / d + 1, exy = gxy / d + 1;
            if (i != j) {
                kxx += ex * ex * ex;
                kyy += ey * ey * ey;
            }
            kxy += exy * exy * exy;
        }
    return (double)((kxx + kyy) / ((long double)m * (m - 1)) - 2 * kxy / ((long double)m * m));
}

/* The distance has the same bits whatever OpenBLAS's thread count: at d = 256 its threaded
 * factorizations gave other last digits (fid.h), so fid_frechet runs them on one thread. */
static void test_frechet_thread_count(void) {
    enum { D = 256, N = 300 };
    float *x = malloc(sizeof(float) * N * D), *y = malloc(sizeof(float) * N * D);
    for (long i = 0; i < (long)N * D; i++) {
        x[i] = philox_normal(11, PHILOX_STREAM_USER, 0, (uint64_t)i);
        y[i] = 1.2f * philox_normal(12, PHILOX_STREAM_USER, 0, (uint64_t)i);
    }
    fid_stats_t a, b;
    CHECK(fid_stats_init(&a, D, 64) == 0 && fid_stats_init(&b, D, 64) == 0, "%s", gt_errmsg());
    fid_stats_add(&a, x, N);
    fid_stats_add(&b, y, N);
    CHECK(fid_stats_finish(&a) == 0 && fid_stats_finish(&b) == 0, "%s", gt_errmsg());
    double fd[2];
    for (int t = 0; t < 2; t++) {
        int before = fid_blas_threads_begin(t + 1);
        CHECK(fid_frechet(D, a.mu, a.sigma, b.mu, b.sigma, &fd[t], NULL) == 0, "%s", gt_errmsg());
        fid_blas_threads_end(before);
    }
    CHECK(memcmp(&fd[0], &fd[1], sizeof(double)) == 0, "FD %.17g with 1 BLAS thread, %.17g with 2", fd[0], fd[1]);
    fid_stats_free(&a);
    fid_stats_free(&b);
    free(x);
    free(y);
}

static void test_kid_definition(void) {
    enum { NX = 23, NY = 31, D = 6, SUBSETS = 5, M = 10 };
    float x[NX * D], y[NY * D];
    make_rows(x, NX, D, 11);
    make_rows(y, NY, D, 12);
    for (int i = 0; i < NY * D; i++) y[i] = y[i] * 0.05f + 0.3f;
    for (int i = 0; i < NX * D; i++) x[i] *= 0.05f;
    uint64_t seed = 42;
    double est[SUBSETS], sum = 0;
    for (int s = 0; s < SUBSETS; s++) {
        int64_t px[NX], py[NY];
        philox_shuffle(px, NX, seed, PHILOX_STREAM_KID, 2 * s);
        philox_shuffle(py, NY, seed, PHILOX_STREAM_KID, 2 * s + 1);
        est[s] = kid_direct(x, px, y, py, M, D);
        sum += est[s];
    }
    double want_mean = sum / SUBSETS, var = 0;
    for (int s = 0; s < SUBSETS; s++) var += (est[s] - want_mean) * (est[s] - want_mean);
    double want_std = sqrt(var / SUBSETS);
    double mean, std;
    CHECK(fid_kid(x, NX, y, NY, D, SUBSETS, M, seed, 1, &mean, &std) == 0, "%s", gt_errmsg());
    CHECK(fabs(mean - want_mean) <= 1e-12 * fabs(want_mean), "mean %.17g want %.17g", mean, want_mean);
    CHECK(fabs(std - want_std) <= 1e-9 * fabs(want_std), "std %.17g want %.17g", std, want_std);
    CHECK(std > 0, "std 0");
    /* subset size larger than the sets: m = min(nx, ny) */
    double mean2, std2;
    CHECK(fid_kid(x, NX, y, NY, D, 2, 1000, seed, 1, &mean2, &std2) == 0, "%s", gt_errmsg());
    int64_t px[NX], py[NY];
    philox_shuffle(px, NX, seed, PHILOX_STREAM_KID, 0);
    philox_shuffle(py, NY, seed, PHILOX_STREAM_KID, 1);
    double e0 = kid_direct(x, px, y, py, NX, D);
    philox_shuffle(px, NX, seed, PHILOX_STREAM_KID, 2);
    philox_shuffle(py, NY, seed, PHILOX_STREAM_KID, 3);
    double e1 = kid_direct(x, px, y, py, NX, D);
    CHECK(fabs(mean2 - (e0 + e1) / 2) <= 1e-12 * fabs(mean2), "m = nx: %.17g want %.17g", mean2, (e0 + e1) / 2);
    /* the same set against itself: an unbiased estimate near 0 */
    fid_kid(x, NX, x, NX, D, 20, 10, 1, 1, &mean, &std);
    CHECK(fabs(mean) < 3 * std + 1e-12, "KID(X, X) = %g (std %g)", mean, std);
    CHECK(fid_kid(x, 1, y, NY, D, 2, 10, 1, 1, &mean, &std) == -1, "one sample accepted");
}

/* Points on a line: real 0, 1, 2, 3, 10; fake 0.5, 2, 20, 21, 22. With k = 1 (squared distances):
 * real radii 1, 1, 1, 1, 49; fake radii 2.25, 2.25, 1, 1, 1. Precision: fake 0.5 (D 0.25 <= 1) and 2
 * (in 2's ball, D 0 <= 1) are inside, 20 is not (D 100 > 49): 2/5. Recall: real 0, 1 (0.25 <=
 * 2.25), 2, 3 (D 1 <= 2.25 from fake 2) inside; 10: no (D 90.25, 64, 100 against radii 2.25,
 * 2.25, 1): 4/5. Density (k = 1): pairs with D <= real radius: (0, 0.5), (1, 0.5), (1, 2),
 * (2, 2), (3, 2): 5 / (1 * 5) = 1. Coverage: real 0, 1, 2, 3 have a fake within their radius,
 * 10 does not (nearest fake 2 at 64 > 49): 4/5. */
static void test_prdc_hand(void) {
    const float real[5] = {0, 1, 2, 3, 10}, fake[5] = {0.5f, 2, 20, 21, 22};
    prdc_t q;
    CHECK(prdc_compute(real, 5, fake, 5, 1, 1, 1, 0, 1, &q) == 0, "%s", gt_errmsg());
    CHECK(q.precision_n == 2 && q.recall_n == 4 && q.density_n == 5 && q.coverage_n == 4,
          "counts %lld %lld %lld %lld", (long long)q.precision_n, (long long)q.recall_n, (long long)q.density_n,
          (long long)q.coverage_n);
    CHECK(q.precision == 0.4 && q.recall == 0.8 && q.density == 1.0 && q.coverage == 0.8, "fractions");
    float bad[5] = {0, 1, NAN, 3, 4};
    CHECK(prdc_compute(bad, 5, fake, 5, 1, 1, 1, 0, 1, &q) == -1, "NaN accepted");
    CHECK(prdc_compute(real, 3, fake, 5, 1, 3, 0, 0, 1, &q) == -1, "3 rows for k = 3 accepted");
    CHECK(prdc_compute(real, 5, fake, 3, 1, 3, 0, 0, 1, &q) == -1, "3 fake rows for k = 3 accepted");
    CHECK(prdc_compute(real, 5, fake, 3, 1, 0, 2, 0, 1, &q) == 0, "density/coverage need no fake radii");
}

/* Brute force of prdc.h's definitions: radii by sorting every direct sum, then the counts. */
static double brute_radius(const float *x, int n, int d, int i, int k) {
    double *v = malloc(sizeof(double) * (size_t)n);
    int m = 0;
    for (int j = 0; j < n; j++) {
        if (j == i) continue;
        double s = 0;
        for (int q = 0; q < d; q++) {
            double t = (double)x[i * d + q] - (double)x[j * d + q];
            s += t * t;
        }
        v[m++] = s;
    }
    for (int a = 1; a < m; a++) /* insertion sort: small n */
        for (int b = a; b > 0 && v[b - 1] > v[b]; b--) {
            double t = v[b];
            v[b] = v[b - 1];
            v[b - 1] = t;
        }
    double r = v[k - 1];
    free(v);
    return r;
}

static prdc_t brute_prdc(const float *r, int nr, const float *f, int nf, int d, int kpr, int kdc) {
    prdc_t q;
    memset(&q, 0, sizeof q);
    for (int j = 0; j < nf; j++) {
        int in = 0;
        for (int i = 0; i < nr; i++) {
            double s = 0;
            for (int c = 0; c < d; c++) {
                double t = (double)r[i * d + c] - (double)f[j * d + c];
                s += t * t;
            }
            in |= s <= brute_radius(r, nr, d, i, kpr);
            q.density_n += s <= brute_radius(r, nr, d, i, kdc);
        }
        q.precision_n += in;
    }
    for (int i = 0; i < nr; i++) {
        int rec = 0, cov = 0;
        for (int j = 0; j < nf; j++) {
            double s = 0;
            for (int c = 0; c < d; c++) {
                double t = (double)r[i * d + c] - (double)f[j * d + c];
                s += t * t;
            }
            rec |= s <= brute_radius(f, nf, d, j, kpr);
            cov |= s <= brute_radius(r, nr, d, i, kdc);
        }
        q.recall_n += rec;
        q.coverage_n += cov;
    }
    return q;
}

/* A collapsed generator (most fake rows one and the same) and a real set with a large cluster of
 * duplicates: every such row is within rounding of dozens of others, which the neighbour search
 * settles by direct sums in bounded memory; the counts equal the brute force. */
static void test_prdc_collapsed(void) {
    enum { NR = 70, NF = 45, D = 6 };
    float r[NR * D], f[NF * D];
    make_rows(r, NR, D, 41);
    make_rows(f, NF, D, 42);
    for (int i = 10; i < 60; i++) memcpy(r + i * D, r, sizeof(float) * D);
    for (int j = 5; j < NF; j++) memcpy(f + j * D, r + 3 * D, sizeof(float) * D);
    prdc_t want = brute_prdc(r, NR, f, NF, D, 3, 5), q;
    for (int block = 4; block <= 1024; block *= 16) {
        CHECK(prdc_compute(r, NR, f, NF, D, 3, 5, block, 1, &q) == 0, "%s", gt_errmsg());
        CHECK(q.precision_n == want.precision_n && q.recall_n == want.recall_n && q.density_n == want.density_n &&
                  q.coverage_n == want.coverage_n,
              "block %d: %lld %lld %lld %lld, brute force %lld %lld %lld %lld", block, (long long)q.precision_n,
              (long long)q.recall_n, (long long)q.density_n, (long long)q.coverage_n, (long long)want.precision_n,
              (long long)want.recall_n, (long long)want.density_n, (long long)want.coverage_n);
    }
}

/* Block sizes (1 row to all rows) and BLAS threads change no count, with duplicates (exact ties). */
static void test_prdc_blocks(void) {
    enum { NR = 61, NF = 47, D = 9 };
    float *r = malloc(sizeof(float) * NR * D), *f = malloc(sizeof(float) * NF * D);
    make_rows(r, NR, D, 21);
    make_rows(f, NF, D, 22);
    memcpy(r + 40 * D, r, sizeof(float) * 15 * D);  /* duplicated rows within the real set */
    memcpy(f + 30 * D, r + 3 * D, sizeof(float) * 10 * D); /* and across the sets */
    prdc_t want, q;
    CHECK(prdc_compute(r, NR, f, NF, D, 3, 5, NR, 1, &want) == 0, "%s", gt_errmsg());
    CHECK(want.precision_n > 0 && want.precision_n < NF && want.density_n > 0, "degenerate case");
    const int blocks[] = {1, 2, 7, 16, 1024};
    for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++)
        for (int th = 1; th <= 2; th++) {
            CHECK(prdc_compute(r, NR, f, NF, D, 3, 5, blocks[b], th, &q) == 0, "%s", gt_errmsg());
            CHECK(memcmp(&q, &want, sizeof q) == 0, "block %d, %d threads: %lld %lld %lld %lld vs %lld %lld %lld %lld",
                  blocks[b], th, (long long)q.precision_n, (long long)q.recall_n, (long long)q.density_n,
                  (long long)q.coverage_n, (long long)want.precision_n, (long long)want.recall_n,
                  (long long)want.density_n, (long long)want.coverage_n);
        }
    free(r);
    free(f);
}

/* The Inception Score against a direct evaluation of its formula (long double), splits of
 * unequal sizes, the refusals, and logits so far apart that probabilities underflow to 0. */
static void test_inception_score(void) {
    enum { N = 7, DIM = 3, C = 4 };
    float f[N * DIM], w[C * DIM];
    make_rows(f, N, DIM, 31);
    for (int i = 0; i < N * DIM; i++) f[i] *= 0.3f;
    make_rows(w, C, DIM, 32);
    for (int i = 0; i < C * DIM; i++) w[i] = w[i] * 0.2f - 0.5f;
    for (int splits = 1; splits <= 3; splits++) {
        long double score[3], sum = 0;
        for (int s = 0; s < splits; s++) {
            int a = s * N / splits, b = (s + 1) * N / splits;
            long double p[N][C], py[C] = {0}, kl = 0;
            for (int i = a; i < b; i++) {
                long double l[C], z = 0;
                for (int c = 0; c < C; c++) {
                    l[c] = 0;
                    for (int k = 0; k < DIM; k++) l[c] += (long double)f[i * DIM + k] * w[c * DIM + k];
                    z += expl(l[c]);
                }
                for (int c = 0; c < C; c++) py[c] += (p[i][c] = expl(l[c]) / z) / (b - a);
            }
            for (int i = a; i < b; i++)
                for (int c = 0; c < C; c++) kl += p[i][c] * logl(p[i][c] / py[c]) / (b - a);
            sum += score[s] = expl(kl);
        }
        long double mu = sum / splits, var = 0;
        for (int s = 0; s < splits; s++) var += (score[s] - mu) * (score[s] - mu);
        double mean, std;
        CHECK(is_compute(f, N, DIM, w, C, splits, 1, &mean, &std) == 0, "%s", gt_errmsg());
        CHECK(fabs(mean - (double)mu) <= 1e-13 * mean && fabs(std - (double)sqrtl(var / splits)) <= 1e-12 * mean,
              "%d splits: %.17g std %.17g, want %.17Lg std %.17Lg", splits, mean, std, mu, sqrtl(var / splits));
        CHECK(mean > 1.0 && (splits == 1 || std > 0), "%d splits: degenerate score %g", splits, mean);
    }
    double mean, std;
    CHECK(is_compute(f, N, DIM, w, C, N + 1, 1, &mean, &std) == -1, "more splits than samples accepted");
    CHECK(is_compute(f, N, DIM, w, C, 0, 1, &mean, &std) == -1, "0 splits accepted");
    /* one-hot predictions: exp(-1000) underflows; two classes equally often: IS = 2 */
    float g[4 * 2] = {1000, 0, 0, 1000, 1000, 0, 0, 1000}, v[2 * 2] = {1, 0, 0, 1};
    CHECK(is_compute(g, 4, 2, v, 2, 1, 1, &mean, &std) == 0 && fabs(mean - 2.0) < 1e-15, "one-hot: %.17g", mean);
}

int main(void) {
    RUN(test_stats_match_two_pass);
    RUN(test_merge_equals_whole);
    RUN(test_class_stats);
    RUN(test_stats_refusals);
    RUN(test_frechet_closed_forms);
    RUN(test_frechet_thread_count);
    RUN(test_kid_definition);
    RUN(test_prdc_hand);
    RUN(test_prdc_blocks);
    RUN(test_prdc_collapsed);
    RUN(test_inception_score);
    return harness_done();
}
