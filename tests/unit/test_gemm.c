/* test_gemm.c: the CPU backend: row-major gemm against a naive double-precision loop for
 * every transpose combination, odd sizes, padded strides, alpha/beta; the k == 0 and
 * beta == 0 edge cases; bit-identical results with 1, 2 and 3 threads; cpu_parallel_for covering
 * every index once for any thread count. Our own sgemm (lib/cpu/sgemm.c) on its own, with each
 * ISA the CPU has: the same checks on sizes that cross its tile, chunk and block edges, the same
 * bits for AVX2 and AVX-512, and an element's bits independent of where C is cut; its small-m
 * path (B read in place) giving the packed path's bits. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/backend/backend.h"
#include "lib/base/philox.h"
#include "lib/cpu/cpu_ops.h"
#include "lib/cpu/sgemm.h"
#include "harness.h"

static void fill(float *p, size_t n, uint32_t step) {
    for (size_t i = 0; i < n; i++) p[i] = 2.0f * philox_uniform(7, PHILOX_STREAM_USER, step, i) - 1.0f;
}

/* C = alpha op(A) op(B) + beta C in double, row-major with strides */
static void naive(int ta, int tb, int m, int n, int k, double alpha, const float *a, int lda, const float *b,
                  int ldb, double beta, const float *c0, double *c, int ldc) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int p = 0; p < k; p++) {
                double av = ta ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
                double bv = tb ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j];
                s += av * bv;
            }
            c[(size_t)i * ldc + j] = alpha * s + (beta == 0 ? 0 : beta * c0[(size_t)i * ldc + j]);
        }
}

static int check_case(backend_t *be, int ta, int tb, int m, int n, int k, float alpha, float beta, int pad) {
    int arows = ta ? k : m, acols = ta ? m : k;
    int brows = tb ? n : k, bcols = tb ? k : n;
    int lda = acols + pad, ldb = bcols + pad, ldc = n + pad;
    float *a = malloc(sizeof(float) * (size_t)arows * lda + 4);
    float *b = malloc(sizeof(float) * (size_t)brows * ldb + 4);
    float *c = malloc(sizeof(float) * (size_t)m * ldc + 4);
    float *c0 = malloc(sizeof(float) * (size_t)m * ldc + 4);
    double *r = malloc(sizeof(double) * (size_t)m * ldc + 4);
    fill(a, (size_t)arows * lda, 1);
    fill(b, (size_t)brows * ldb, 2);
    fill(c0, (size_t)m * ldc, 3);
    if (beta == 0.0f)
        for (size_t i = 0; i < (size_t)m * ldc; i++) c0[i] = NAN; /* beta 0 must ignore C */
    memcpy(c, c0, sizeof(float) * (size_t)m * ldc);
    be->gemm(be, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    naive(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c0, r, ldc);
    int bad = 0;
    for (int i = 0; i < m && !bad; i++)
        for (int j = 0; j < n; j++) {
            double want = r[(size_t)i * ldc + j], got = c[(size_t)i * ldc + j];
            double tol = 1e-5 * (k + 1) * (fabs(alpha) + 1) + 1e-6 * fabs(want);
            if (!(fabs(got - want) <= tol)) {
                printf("# ta=%d tb=%d m=%d n=%d k=%d alpha=%g beta=%g pad=%d: C[%d,%d] = %.9g, want %.9g\n", ta, tb,
                       m, n, k, alpha, beta, pad, i, j, got, want);
                bad = 1;
                break;
            }
            /* the padding between rows is never written */
            if (j == n - 1 && pad && c[(size_t)i * ldc + n] != c0[(size_t)i * ldc + n] &&
                !(isnan(c[(size_t)i * ldc + n]) && isnan(c0[(size_t)i * ldc + n]))) {
                printf("# padding of row %d was written\n", i);
                bad = 1;
                break;
            }
        }
    free(a);
    free(b);
    free(c);
    free(c0);
    free(r);
    return bad;
}

static void test_gemm_all_transposes(void) {
    backend_t *be = backend_cpu(1);
    static const int sizes[][3] = {{1, 1, 1}, {3, 5, 7}, {17, 1, 33}, {1, 19, 4}, {64, 65, 63}, {33, 100, 129}};
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
                for (int pad = 0; pad < 2; pad++) {
                    int bad = check_case(be, ta, tb, sizes[s][0], sizes[s][1], sizes[s][2], 1.0f, 0.0f, pad * 3);
                    bad |= check_case(be, ta, tb, sizes[s][0], sizes[s][1], sizes[s][2], -0.5f, 1.0f, pad * 3);
                    bad |= check_case(be, ta, tb, sizes[s][0], sizes[s][1], sizes[s][2], 2.0f, 0.25f, pad * 3);
                    CHECK(!bad, "ta=%d tb=%d size %zu pad %d", ta, tb, s, pad);
                }
}

static void test_gemm_two_threads(void) {
    backend_t *be = backend_cpu(2);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) { /* split by rows, then by columns (few rows), over 2 and 3 threads */
            CHECK(!check_case(be, ta, tb, 300, 257, 129, 1.0f, 0.5f, 1), "rows ta=%d tb=%d", ta, tb);
            CHECK(!check_case(be, ta, tb, 37, 701, 130, 1.0f, 0.0f, 2), "columns ta=%d tb=%d", ta, tb);
            be = backend_cpu(3);
            CHECK(!check_case(be, ta, tb, 301, 33, 257, -1.0f, 0.0f, 0), "3 threads ta=%d tb=%d", ta, tb);
            be = backend_cpu(2);
        }
    backend_cpu(1);
}

/* C (m x n, from fixed operands) with its block from row i0 and column j0 on computed by
 * be->gemm from the operands' matching parts, into a new buffer */
static float *gemm_block(backend_t *be, int ta, int tb, int m, int n, int k, float alpha, float beta, int i0, int j0) {
    int lda = ta ? m : k, ldb = tb ? k : n;
    float *a = malloc(sizeof(float) * (size_t)m * k), *b = malloc(sizeof(float) * (size_t)k * n);
    float *c = malloc(sizeof(float) * (size_t)m * n);
    fill(a, (size_t)m * k, 11);
    fill(b, (size_t)k * n, 12);
    fill(c, (size_t)m * n, 13);
    const float *as = ta ? a + i0 : a + (size_t)i0 * lda, *bs = tb ? b + (size_t)j0 * ldb : b + j0;
    be->gemm(be, ta, tb, m - i0, n - j0, k, alpha, as, lda, bs, ldb, beta, c + (size_t)i0 * n + j0, n);
    free(a);
    free(b);
    return c;
}

/* C for one shape and thread count */
static float *gemm_with(int threads, int ta, int tb, int m, int n, int k, float beta) {
    return gemm_block(backend_cpu(threads), ta, tb, m, n, k, 1.0f, beta, 0, 0);
}

/* The blocks of a gemm depend on its shape only: 1, 2 and 3 threads give the same bits, for
 * shapes split by rows, by columns, and not at all (the DCGAN and MLP shapes among them). */
static void test_gemm_thread_independent(void) {
    static const int shapes[][5] = {
        {2048, 3136, 256, 1, 0}, {64, 784, 1024, 0, 1}, {1024, 784, 64, 1, 0}, {256, 2048, 3136, 0, 1},
        {300, 257, 129, 0, 0},   {37, 701, 130, 1, 1},  {64, 1, 6272, 0, 1},   {5, 7, 3, 0, 0},
        {1000, 100, 64, 1, 0},   {17, 4000, 64, 0, 0},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int *p = shapes[s];
        size_t cnt = (size_t)p[0] * p[1];
        float *c1 = gemm_with(1, p[3], p[4], p[0], p[1], p[2], 0.5f);
        float *c2 = gemm_with(2, p[3], p[4], p[0], p[1], p[2], 0.5f);
        float *c3 = gemm_with(3, p[3], p[4], p[0], p[1], p[2], 0.5f);
        CHECK(!memcmp(c1, c2, cnt * sizeof(float)), "%dx%dx%d: 1 and 2 threads differ", p[0], p[1], p[2]);
        CHECK(!memcmp(c1, c3, cnt * sizeof(float)), "%dx%dx%d: 1 and 3 threads differ", p[0], p[1], p[2]);
        free(c1);
        free(c2);
        free(c3);
    }
    backend_cpu(1);
}

static void test_gemm_k_zero(void) {
    backend_t *be = backend_cpu(1);
    float c[6] = {1, 2, 3, 4, 5, 6}, a[1] = {0}, b[1] = {0};
    be->gemm(be, 0, 0, 2, 3, 0, 1.0f, a, 1, b, 3, 0.5f, c, 3);
    for (int i = 0; i < 6; i++) CHECK_CLOSE(c[i], 0.5 * (i + 1), 0);
    float d[6] = {NAN, NAN, NAN, NAN, NAN, NAN};
    be->gemm(be, 0, 0, 2, 3, 0, 1.0f, a, 1, b, 3, 0.0f, d, 3);
    for (int i = 0; i < 6; i++) CHECK(d[i] == 0.0f, "d[%d] = %g", i, d[i]);
}

/* sgemm itself, behind a backend-shaped front for check_case */
static void direct_gemm(backend_t *be, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                        const float *b, int ldb, float beta, float *c, int ldc) {
    (void)be;
    sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
static backend_t direct = {.gemm = direct_gemm};

/* every ISA the CPU has: against the double loop on sizes crossing the tiles (8 x 32, 6 x 16,
 * 4 x 16), the k chunk (256), the row block (144) and the column block (2048), and the vector
 * packing's 8 x 8 blocks (13 x 45 x 27: whole and partial blocks in every direction) */
static void test_sgemm_isas(void) {
    static const int sizes[][3] = {{1, 1, 1},     {8, 32, 3},    {7, 31, 5},   {9, 33, 257},
                                   {25, 17, 513}, {145, 40, 20}, {3, 2050, 2}, {13, 45, 27}};
    sgemm_isa_t best = sgemm_isa();
    int tried = 0;
    for (int isa = SGEMM_C; isa <= SGEMM_AVX512; isa++) {
        if (!sgemm_force_isa((sgemm_isa_t)isa)) continue;
        tried++;
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
                    const int *z = sizes[s];
                    int bad = check_case(&direct, ta, tb, z[0], z[1], z[2], 1.0f, 0.0f, 1);
                    bad |= check_case(&direct, ta, tb, z[0], z[1], z[2], -0.5f, 1.0f, 0);
                    bad |= check_case(&direct, ta, tb, z[0], z[1], z[2], 2.0f, 0.25f, 3);
                    CHECK(!bad, "%s ta=%d tb=%d %dx%dx%d", sgemm_isa_name((sgemm_isa_t)isa), ta, tb, z[0], z[1], z[2]);
                }
    }
    CHECK(tried >= 1 && sgemm_force_isa(best), "the C fallback always runs, and the best ISA is back");
}

static float *sgemm_with(sgemm_isa_t isa, int ta, int tb, int m, int n, int k, int i0, int j0) {
    sgemm_force_isa(isa);
    return gemm_block(&direct, ta, tb, m, n, k, 1.5f, 0.5f, i0, j0);
}

/* AVX2 and AVX-512 give the same bits (one fused multiply-add per term, the same order), and an
 * element's bits do not depend on where its tile starts (the backend cuts C into blocks) */
static void test_sgemm_same_bits(void) {
    sgemm_isa_t best = sgemm_isa();
    int m = 50, n = 70, k = 300;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            float *whole = sgemm_with(best, ta, tb, m, n, k, 0, 0), *part = sgemm_with(best, ta, tb, m, n, k, 3, 5);
            int bad = 0;
            for (int i = 3; i < m; i++)
                for (int j = 5; j < n; j++) bad |= memcmp(&whole[i * n + j], &part[i * n + j], sizeof(float)) != 0;
            CHECK(!bad, "ta=%d tb=%d: a block from (3, 5) gives other bits", ta, tb);
            if (sgemm_force_isa(SGEMM_AVX2) && sgemm_force_isa(SGEMM_AVX512)) {
                float *c2 = sgemm_with(SGEMM_AVX2, ta, tb, m, n, k, 0, 0);
                float *c5 = sgemm_with(SGEMM_AVX512, ta, tb, m, n, k, 0, 0);
                CHECK(!memcmp(c2, c5, sizeof(float) * m * n), "ta=%d tb=%d: AVX2 and AVX-512 differ", ta, tb);
                free(c2);
                free(c5);
            }
            free(whole);
            free(part);
        }
    sgemm_force_isa(best);
}

/* ---- the small-m path (sgemm.c): B read in place, the same bits as packing it -------------- */

/* C = alpha op(A) op(B) + beta C by be->gemm with sgemm's small-m bound set to `small`, from
 * fixed operands with `pad` floats after every row (C's padding included in the result) */
static float *gemm_padded(backend_t *be, int small, int ta, int tb, int m, int n, int k, float alpha, float beta,
                          int pad) {
    int arows = ta ? k : m, brows = tb ? n : k, lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
    float *a = malloc(sizeof(float) * (size_t)arows * lda), *b = malloc(sizeof(float) * (size_t)brows * ldb);
    float *c = malloc(sizeof(float) * (size_t)m * ldc);
    fill(a, (size_t)arows * lda, 21);
    fill(b, (size_t)brows * ldb, 22);
    fill(c, (size_t)m * ldc, 23);
    int old = sgemm_set_small_m(small);
    be->gemm(be, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    sgemm_set_small_m(old);
    free(a);
    free(b);
    return c;
}

/* every ISA, every transpose: the small-m path gives the packed path's bytes on shapes with
 * edge tiles in both directions, k past one chunk (257, 513), odd leading dimensions (pad 3),
 * beta 0, 1 and other; m up to the bound (144) */
static void test_sgemm_small_m_bits(void) {
    static const int sizes[][3] = {{1, 1, 1},     {8, 32, 3},    {7, 31, 5},  {13, 45, 27},
                                   {64, 100, 300}, {33, 70, 257}, {144, 45, 513}, {17, 64, 256}};
    static const float ab[][2] = {{1.0f, 0.0f}, {-0.5f, 1.0f}, {1.7f, 0.3f}}; /* 0.3: beta C rounds */
    sgemm_isa_t best = sgemm_isa();
    for (int isa = SGEMM_C; isa <= SGEMM_AVX512; isa++) {
        if (!sgemm_force_isa((sgemm_isa_t)isa)) continue;
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
                    const int *z = sizes[s];
                    int bad = 0;
                    for (int v = 0; v < 3; v++) {
                        int pad = v == 2 ? 3 : v, m = z[0], n = z[1], k = z[2];
                        float *p = gemm_padded(&direct, 0, ta, tb, m, n, k, ab[v][0], ab[v][1], pad);
                        float *q = gemm_padded(&direct, 144, ta, tb, m, n, k, ab[v][0], ab[v][1], pad);
                        bad |= memcmp(p, q, sizeof(float) * (size_t)m * (n + pad)) != 0;
                        free(p);
                        free(q);
                    }
                    CHECK(!bad, "%s ta=%d tb=%d %dx%dx%d: the small-m path gives other bits",
                          sgemm_isa_name((sgemm_isa_t)isa), ta, tb, z[0], z[1], z[2]);
                }
    }
    sgemm_force_isa(best);
}

/* GT_GEMM (read by backend_cpu) set to `engine` for a test, and put back as it was: the shape
 * rule picks by the machine and OPENBLAS_CORETYPE, which a test comparing two routes to one
 * product must not depend on */
static char saved_engine[32];
static int had_engine;

static void engine_force(const char *engine) {
    const char *e = getenv("GT_GEMM");
    had_engine = e != NULL;
    if (e) snprintf(saved_engine, sizeof saved_engine, "%s", e);
    setenv("GT_GEMM", engine, 1);
}

static void engine_restore(void) {
    if (had_engine) setenv("GT_GEMM", saved_engine, 1);
    else unsetenv("GT_GEMM");
    backend_cpu(1);
}

/* through the backend's gemm, cut into column blocks: the same bits with the small-m path on and
 * off, with 1 and with 2 threads (GT_GEMM=ours: whatever engine the shape rule picks here) */
static void test_gemm_small_m_threads(void) {
    static const int shapes[][5] = {{64, 520, 300, 0, 1}, {64, 520, 300, 0, 0}, {40, 600, 270, 1, 0},
                                    {32, 300, 513, 1, 1}};
    engine_force("ours");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int *z = shapes[s];
        size_t cnt = (size_t)z[0] * (z[1] + 1);
        float *ref = gemm_padded(backend_cpu(1), 0, z[3], z[4], z[0], z[1], z[2], 1.3f, 0.7f, 1);
        for (int t = 1; t <= 2; t++) {
            float *c = gemm_padded(backend_cpu(t), 144, z[3], z[4], z[0], z[1], z[2], 1.3f, 0.7f, 1);
            CHECK(!memcmp(ref, c, cnt * sizeof(float)), "%dx%dx%d ta=%d tb=%d, %d threads: other bits", z[0], z[1],
                  z[2], z[3], z[4], t);
            free(c);
        }
        free(ref);
    }
    engine_restore();
}

/* ---- the column matrix packed from the image (conv.c cpu_pack_cols, backend gemm_im2col) ----
 * Packing is a copy, so sgemm_pb reading the image must give the bits of im2col then sgemm:
 * both operand forms (col: the forward, col^T: the weight gradient), strides 1 and 2, padding,
 * edge tiles, a k past one chunk (256) and columns past one block (2048), a block of columns
 * starting inside a grid row (the backend's column blocks), and the image channel-major. With
 * AVX-512 the panels of col come from runs of masked loads (stride 1) or gathers (the others),
 * those of col^T from loads and transposes (stride 1, grid as wide as the image) or gathers. */
static const conv_geom_t pack_geoms[] = {
    {3, 7, 10, 5, 4, 3, 4, 1, 2, 0, 1},   /* non-square, stride 1x2, padding on one axis */
    {32, 16, 16, 16, 16, 3, 3, 1, 1, 1, 1}, /* k = 288 rows of col, 4 backend blocks at m = 64 */
    {2, 28, 28, 14, 14, 4, 4, 2, 2, 1, 1},  /* 2156 columns at nb = 11 */
    {4, 8, 8, 3, 3, 2, 2, 3, 3, 0, 0},      /* stride past the kernel; grid rows of 3 (col^T: 86 runs a chunk) */
    /* stride 1, the grid as wide as the image: col^T's panels by loads of 16 positions and
     * transposes, cut at the samples' ends (49, 30 and 42 positions) and the chunks' */
    {5, 7, 7, 7, 7, 3, 3, 1, 1, 1, 1},      /* rows of 7: a block spans 3 grid rows */
    {8, 5, 6, 5, 6, 1, 1, 1, 1, 0, 0},      /* 1x1 */
    {3, 9, 6, 7, 6, 3, 3, 1, 1, 0, 1},      /* padding in x only: 2 grid rows fewer than the image */
    /* strided: gathers for both forms */
    {6, 14, 14, 7, 7, 4, 4, 2, 2, 1, 1},    /* the dcgan critic's k4 s2 p1 */
    {3, 9, 9, 5, 5, 3, 3, 2, 2, 1, 1},      /* odd sides */
    {2, 11, 9, 4, 4, 3, 2, 3, 2, 1, 0},     /* strides 3x2 */
    {2, 20, 20, 6, 6, 9, 9, 2, 2, 0, 0},    /* 81 taps */
};
static const int pack_nb[] = {2, 2, 11, 40, 6, 9, 7, 5, 7, 6, 3},
                 pack_m[] = {17, 64, 9, 16, 20, 5, 33, 20, 16, 24, 16};

static float *cols_of(const conv_geom_t *g, const float *img, int nb) {
    long rows = (long)g->c * g->kh * g->kw, cols = (long)nb * g->gh * g->gw;
    float *col = malloc(sizeof(float) * (size_t)(rows * cols));
    backend_t *be = backend_cpu(1);
    be->im2col(be, g, col, img, nb);
    return col;
}

static void test_sgemm_pack_cols(void) {
    sgemm_isa_t best = sgemm_isa();
    for (int isa = SGEMM_C; isa <= SGEMM_AVX512; isa++) {
        if (!sgemm_force_isa((sgemm_isa_t)isa)) continue;
        for (size_t gi = 0; gi < sizeof pack_geoms / sizeof pack_geoms[0]; gi++) {
            const conv_geom_t *g = &pack_geoms[gi];
            int nb = pack_nb[gi], m = pack_m[gi];
            int rows = g->c * g->kh * g->kw, ncol = nb * g->gh * g->gw;
            float *img = malloc(sizeof(float) * (size_t)nb * g->c * g->h * g->w);
            fill(img, (size_t)nb * g->c * g->h * g->w, 10);
            float *col = cols_of(g, img, nb);
            for (int tb = 0; tb < 2; tb++) {
                int n = tb ? rows : ncol, k = tb ? ncol : rows, lda = k + 1;
                float *a = malloc(sizeof(float) * (size_t)m * lda), *want = malloc(sizeof(float) * (size_t)m * n),
                      *got = malloc(sizeof(float) * (size_t)m * n);
                fill(a, (size_t)m * lda, 11);
                fill(want, (size_t)m * n, 12);
                memcpy(got, want, sizeof(float) * (size_t)m * n);
                conv_cols_t v = {g, img, nb, tb, 0, 0};
                sgemm(0, tb, m, n, k, 1.5f, a, lda, col, ncol, 0.5f, want, n);
                sgemm_pb(0, m, n, k, 1.5f, a, lda, cpu_pack_cols, &v, 0, 0.5f, got, n);
                CHECK(!memcmp(want, got, sizeof(float) * (size_t)m * n), "%s geometry %zu tb=%d: other bits",
                      sgemm_isa_name((sgemm_isa_t)isa), gi, tb);
                int j0 = n / 3 + 1; /* a block of columns from j0 (inside a grid row when tb == 0) */
                sgemm(0, tb, m, n - j0, k, 1.0f, a, lda, tb ? col + (size_t)j0 * ncol : col + j0, ncol, 0.0f,
                      want + j0, n);
                sgemm_pb(0, m, n - j0, k, 1.0f, a, lda, cpu_pack_cols, &v, j0, 0.0f, got + j0, n);
                CHECK(!memcmp(want, got, sizeof(float) * (size_t)m * n), "%s geometry %zu tb=%d: block from %d",
                      sgemm_isa_name((sgemm_isa_t)isa), gi, tb, j0);
                { /* the image channel-major (c, nb, h*w), as gemm_col2im's phases read B (and the
                   * packers allow for col^T) */
                    long HW = (long)g->h * g->w;
                    float *cm = malloc(sizeof(float) * (size_t)nb * g->c * HW);
                    for (int bb = 0; bb < nb; bb++)
                        for (int ch = 0; ch < g->c; ch++)
                            memcpy(cm + ((size_t)ch * nb + bb) * HW, img + ((size_t)bb * g->c + ch) * HW,
                                   sizeof(float) * (size_t)HW);
                    conv_cols_t vc = {g, cm, nb, tb, nb * HW, HW};
                    sgemm_pb(0, m, n - j0, k, 1.0f, a, lda, cpu_pack_cols, &vc, j0, 0.0f, got + j0, n);
                    CHECK(!memcmp(want, got, sizeof(float) * (size_t)m * n), "%s geometry %zu tb=%d: channel-major image",
                          sgemm_isa_name((sgemm_isa_t)isa), gi, tb);
                    free(cm);
                }
                free(a);
                free(want);
                free(got);
            }
            free(col);
            free(img);
        }
    }
    sgemm_force_isa(best);
}

/* The backend's gemm_im2col: the bits of im2col then gemm with 1 and 2 threads, with ws holding
 * col or not (ws_col), for each engine (GT_GEMM: the shape rule would pick by the machine) */
static void test_gemm_im2col(void) {
    for (int e = 0; e < 2; e++) {
        engine_force(e ? "openblas" : "ours");
        for (size_t gi = 0; gi < sizeof pack_geoms / sizeof pack_geoms[0]; gi++) {
            const conv_geom_t *g = &pack_geoms[gi];
            int nb = pack_nb[gi], m = pack_m[gi];
            int rows = g->c * g->kh * g->kw, ncol = nb * g->gh * g->gw;
            float *img = malloc(sizeof(float) * (size_t)nb * g->c * g->h * g->w);
            fill(img, (size_t)nb * g->c * g->h * g->w, 20);
            float *col = cols_of(g, img, nb), *ws = malloc(sizeof(float) * (size_t)rows * ncol);
            for (int tb = 0; tb < 2; tb++) {
                int n = tb ? rows : ncol, k = tb ? ncol : rows;
                float *a = malloc(sizeof(float) * (size_t)m * k), *want = malloc(sizeof(float) * (size_t)m * n),
                      *got = malloc(sizeof(float) * (size_t)m * n);
                fill(a, (size_t)m * k, 21);
                fill(want, (size_t)m * n, 22);
                backend_t *be = backend_cpu(1);
                be->gemm(be, 0, tb, m, n, k, 1.0f, a, k, col, ncol, 1.0f, want, n);
                for (int t = 1; t <= 3; t++) {
                    be = backend_cpu(t < 3 ? t : 2);
                    fill(got, (size_t)m * n, 22);
                    int held = t == 3;
                    if (held) memcpy(ws, col, sizeof(float) * (size_t)rows * ncol);
                    else memset(ws, 0xff, sizeof(float) * (size_t)rows * ncol); /* NaNs: must not be read */
                    be->gemm_im2col(be, g, img, nb, ws, t > 1 ? &held : NULL, 0, tb, m, 1.0f, a, k, 1.0f, got, n);
                    CHECK(!memcmp(want, got, sizeof(float) * (size_t)m * n), "%s: geometry %zu tb=%d %s: other bits",
                          e ? "openblas" : "ours", gi, tb, t == 1 ? "1 thread" : t == 2 ? "2 threads" : "col held");
                    CHECK(t == 1 || !held || !memcmp(ws, col, sizeof(float) * (size_t)rows * ncol),
                          "geometry %zu tb=%d: ws said to hold col does not", gi, tb);
                }
                free(a);
                free(want);
                free(got);
            }
            free(col);
            free(ws);
            free(img);
        }
        engine_restore();
    }
}

/* ---- the scatter side (backend gemm_col2im; cpu_ops.h conv_phase_t) -----------------------
 * img = bias + col2im(op(A) B) against a double loop over the definition: with our sgemm one
 * GEMM per output phase (each pixel one dot product), with OpenBLAS the GEMM then col2im. Our
 * path for each ISA (AVX2 and AVX-512 the same bits), 1 and 2 threads the same bits, ws and wa
 * full of NaNs before (nothing read before written), every pixel overwritten. Geometries: the
 * DCGAN's transposed convolution (k4 s2 p1, 16 channels), stride 1 with padding (the sngan's
 * 3x3 backward), output padding (odd sizes), a stride past the kernel (pixels no tap reaches),
 * padding past the kernel (a phase whose virtual padding is negative), non-square kernel and
 * strides, one channel. (h, w are the image side, gh, gw the grid side, as conv_geom_t.) */
static const conv_geom_t scat_geoms[] = {
    {16, 14, 14, 7, 7, 4, 4, 2, 2, 1, 1}, /* convT 16 k4 s2 p1 from 7x7 */
    {24, 9, 11, 9, 11, 3, 3, 1, 1, 1, 1}, /* conv k3 p1's input gradient */
    {5, 10, 9, 5, 4, 3, 4, 2, 2, 1, 1},   /* convT k3x4 s2 p1 op1 from 5x4 */
    {3, 8, 8, 3, 3, 2, 2, 3, 3, 0, 0},    /* stride 3 past kernel 2 */
    {4, 6, 8, 3, 4, 5, 4, 2, 3, 2, 3},    /* convT k5x4 s2x3 p2x3 op1 from 3x4: padding past the stride */
    {1, 12, 12, 6, 6, 4, 4, 2, 2, 1, 1},  /* one channel */
};
static const int scat_k[] = {20, 7, 6, 5, 3, 9}, scat_nb[] = {3, 2, 2, 3, 2, 2};

/* the definition in double: bias + sum over taps reaching (y, x) and i of op(A)[(ch, tap), i] B[i, col] */
static double scat_ref(const conv_geom_t *g, int ta, int k, const float *a, int lda, const float *b, int ldb,
                       const float *bias, int bb, int ch, int y, int x, double *mag) {
    double s = bias ? bias[ch] : 0.0, m = fabs(s);
    for (int ty = 0; ty < g->kh; ty++)
        for (int tx = 0; tx < g->kw; tx++) {
            int oy = conv_grid_of(y, ty, g->sh, g->ph, g->gh), ox = conv_grid_of(x, tx, g->sw, g->pw, g->gw);
            if (oy < 0 || ox < 0) continue;
            long r = ((long)ch * g->kh + ty) * g->kw + tx, col = ((long)bb * g->gh + oy) * g->gw + ox;
            for (int i = 0; i < k; i++) {
                double t = (double)(ta ? a[(long)i * lda + r] : a[r * lda + i]) * b[(long)i * ldb + col];
                s += t;
                m += fabs(t);
            }
        }
    *mag = m;
    return s;
}

static void test_gemm_col2im(void) {
    sgemm_isa_t best = sgemm_isa();
    for (size_t gi = 0; gi < sizeof scat_geoms / sizeof scat_geoms[0]; gi++) {
        const conv_geom_t *g = &scat_geoms[gi];
        int k = scat_k[gi], nb = scat_nb[gi], rows = g->c * g->kh * g->kw, ncol = nb * g->gh * g->gw;
        int ta = gi % 2, lda = (ta ? rows : k) + 1, ldb = ncol + 3;
        size_t na = (size_t)(ta ? k : rows) * lda, nimg = (size_t)nb * g->c * g->h * g->w;
        size_t nws = (size_t)rows * ncol, nwa = (size_t)rows * k;
        float *a = malloc(sizeof(float) * na), *b = malloc(sizeof(float) * (size_t)k * ldb),
              *bias = malloc(sizeof(float) * (size_t)g->c), *ws = malloc(sizeof(float) * nws),
              *wa = malloc(sizeof(float) * nwa), *got = malloc(sizeof(float) * nimg),
              *first = malloc(sizeof(float) * nimg * (SGEMM_AVX512 + 1));
        int ran_avx2 = 0;
        fill(a, na, 30);
        fill(b, (size_t)k * ldb, 31);
        fill(bias, (size_t)g->c, 32);
        /* runs: our sgemm with each ISA on 1 and 2 threads, then OpenBLAS's path */
        for (int run = 0; run < 2 * (SGEMM_AVX512 + 1) + 1; run++) {
            int isa = run / 2, threads = 1 + run % 2, ours = run < 2 * (SGEMM_AVX512 + 1);
            if (ours && !sgemm_force_isa((sgemm_isa_t)isa)) continue;
            setenv("GT_GEMM", ours ? "ours" : "openblas", 1);
            backend_t *be = backend_cpu(threads);
            memset(ws, 0xff, sizeof(float) * nws);
            memset(wa, 0xff, sizeof(float) * nwa);
            memset(got, 0xff, sizeof(float) * nimg);
            const float *bi = gi % 3 == 1 ? NULL : bias;
            int wa_ready = 0;
            be->gemm_col2im(be, g, got, bi, nb, ws, wa, &wa_ready, ta, k, a, lda, b, ldb);
            /* wa_ready: ours says wa holds the regrouped weights, OpenBLAS's path that it does not */
            CHECK(wa_ready == ours, "geometry %zu: wa_ready %d after the %s path", gi, wa_ready,
                  ours ? "ours" : "openblas");
            double worst = 0;
            for (int bb = 0; bb < nb; bb++)
                for (int ch = 0; ch < g->c; ch++)
                    for (int y = 0; y < g->h; y++)
                        for (int x = 0; x < g->w; x++) {
                            double mag, want = scat_ref(g, ta, k, a, lda, b, ldb, bi, bb, ch, y, x, &mag);
                            double v = got[(((size_t)bb * g->c + ch) * g->h + y) * g->w + x];
                            double e = fabs(v - want) / (mag + 1e-30);
                            if (!(e <= worst)) worst = e; /* NaN counts */
                        }
            CHECK(worst <= 1e-6, "geometry %zu, %s %s, %d thread(s): relative error %.3g", gi,
                  ours ? "ours" : "openblas", ours ? sgemm_isa_name((sgemm_isa_t)isa) : "", threads, worst);
            if (!ours) continue;
            float *keep = first + (size_t)isa * nimg; /* this ISA's bits on 1 thread */
            if (threads == 1) memcpy(keep, got, sizeof(float) * nimg);
            else
                CHECK(!memcmp(keep, got, sizeof(float) * nimg), "geometry %zu %s: 1 and 2 threads differ", gi,
                      sgemm_isa_name((sgemm_isa_t)isa));
            if (isa == SGEMM_AVX512 && threads == 1 && ran_avx2)
                CHECK(!memcmp(first + (size_t)SGEMM_AVX2 * nimg, got, sizeof(float) * nimg),
                      "geometry %zu: AVX-512 and AVX2 differ", gi);
            if (isa == SGEMM_AVX2) ran_avx2 = 1;
            /* a second chunk's call (wa_ready set): the same bits from the kept weights, and wa
             * is not regrouped again (spoiled, it changes the result) */
            float *again = malloc(sizeof(float) * nimg);
            be->gemm_col2im(be, g, again, bi, nb, ws, wa, &wa_ready, ta, k, a, lda, b, ldb);
            CHECK(!memcmp(again, got, sizeof(float) * nimg), "geometry %zu: the kept weights give other bits", gi);
            wa[0] += 1.0f;
            be->gemm_col2im(be, g, again, bi, nb, ws, wa, &wa_ready, ta, k, a, lda, b, ldb);
            CHECK(memcmp(again, got, sizeof(float) * nimg), "geometry %zu: wa regrouped though it was ready", gi);
            free(again);
        }
        free(a), free(b), free(bias), free(ws), free(wa), free(got), free(first);
    }
    unsetenv("GT_GEMM");
    sgemm_force_isa(best);
    backend_cpu(1);
}

typedef struct {
    int *hits;
} cover_t;

static void cover(void *arg, long b, long e) {
    cover_t *c = arg;
    for (long i = b; i < e; i++) c->hits[i]++; /* each index by exactly one thread: no race */
}

static void test_parallel_for_covers_once(void) {
    static const long ns[] = {0, 1, 2, 3, 7, 100, 1001, 65537};
    static const int ts[] = {1, 2, 3, 8};
    for (size_t t = 0; t < sizeof ts / sizeof ts[0]; t++) {
        backend_t *be = backend_cpu(ts[t]);
        CHECK(be->threads == ts[t], "threads %d, asked %d", be->threads, ts[t]);
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
            for (int rep = 0; rep < 3; rep++) {
                cover_t c = {calloc((size_t)ns[k] + 1, sizeof(int))};
                cpu_parallel_for(be, ns[k], cover, &c);
                int bad = 0;
                for (long i = 0; i < ns[k]; i++) bad |= c.hits[i] != 1;
                CHECK(!bad, "n=%ld threads=%d: an index not visited exactly once", ns[k], ts[t]);
                free(c.hits);
            }
        }
    }
    backend_cpu(1);
}

typedef struct {
    backend_t *be;
    float *a, *b, *c; /* per part: c[p] = a[p] (128 x 300) * b (300 x 128): large enough to split */
    int *hits;
} nest_t;

static void nested_part(void *arg, long p0, long p1) {
    nest_t *t = arg;
    for (long p = p0; p < p1; p++) {
        t->be->gemm(t->be, 0, 0, 128, 128, 300, 1.0f, t->a + p * 128 * 300, 300, t->b, 128, 0.0f, t->c + p * 128 * 128, 128);
        cover_t c = {t->hits + p * 100};
        cpu_parallel_for(t->be, 100, cover, &c); /* nested: runs inline */
    }
}

/* a gemm (and a loop) inside a parallel loop neither deadlocks nor changes results */
static void test_nested_parallel(void) {
    backend_t *be = backend_cpu(2);
    enum { P = 5 };
    nest_t t = {be, malloc(sizeof(float) * P * 128 * 300), malloc(sizeof(float) * 300 * 128),
                calloc(P * 128 * 128, sizeof(float)), calloc(P * 100, sizeof(int))};
    fill(t.a, P * 128 * 300, 4);
    fill(t.b, 300 * 128, 5);
    cpu_parallel_for(be, P, nested_part, &t);
    int bad = 0;
    for (int p = 0; p < P; p++)
        for (int i = 0; i < 128; i += 13)
            for (int j = 0; j < 128; j += 11) {
                double s = 0;
                for (int k = 0; k < 300; k++) s += (double)t.a[p * 128 * 300 + i * 300 + k] * t.b[k * 128 + j];
                bad |= fabs(s - t.c[p * 128 * 128 + i * 128 + j]) > 1e-4;
            }
    for (int i = 0; i < P * 100; i++) bad |= t.hits[i] != 1;
    CHECK(!bad, "nested results wrong");
    free(t.a);
    free(t.b);
    free(t.c);
    free(t.hits);
    backend_cpu(1);
}

static void test_backend_memory(void) {
    backend_t *be = backend_cpu(1);
    float *p = be->alloc(be, 1000 * sizeof(float));
    CHECK(((uintptr_t)p & 63) == 0, "not 64-byte aligned");
    float src[1000];
    for (int i = 0; i < 1000; i++) src[i] = (float)i;
    be->upload(be, p, src, sizeof src);
    float back[1000];
    be->download(be, back, p, sizeof back);
    CHECK(memcmp(src, back, sizeof src) == 0, "round trip");
    be->zero(be, p, sizeof src);
    int nz = 0;
    for (int i = 0; i < 1000; i++) nz += p[i] != 0.0f;
    CHECK(nz == 0, "%d non-zero after zero", nz);
    be->free(be, p);
}

int main(void) {
    RUN(test_gemm_all_transposes);
    RUN(test_gemm_two_threads);
    RUN(test_gemm_thread_independent);
    RUN(test_gemm_k_zero);
    RUN(test_sgemm_isas);
    RUN(test_sgemm_same_bits);
    RUN(test_sgemm_small_m_bits);
    RUN(test_gemm_small_m_threads);
    RUN(test_sgemm_pack_cols);
    RUN(test_gemm_im2col);
    RUN(test_gemm_col2im);
    RUN(test_parallel_for_covers_once);
    RUN(test_nested_parallel);
    RUN(test_backend_memory);
    return harness_done();
}
