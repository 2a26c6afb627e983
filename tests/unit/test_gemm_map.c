/* test_gemm_map.c: kernels/gemm_map.h, the row-major GEMM as the column-major call cuBLAS
 * makes: for every transpose combination, odd sizes and padded strides, the mapped call run
 * through column-major cblas_sgemm (what the host emulation's cuBLAS does, and the same
 * arguments the CUDA backend hands cuBLAS) equals the row-major product computed naively in
 * double. Runs in every build: the mapping is a pure function. */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/gemm_map.h"
#include "lib/base/philox.h"
#include "harness.h"

static void fill(float *p, size_t n, uint32_t step) {
    for (size_t i = 0; i < n; i++) p[i] = 2.0f * philox_uniform(11, PHILOX_STREAM_USER, step, i) - 1.0f;
}

/* row-major C = alpha op(A) op(B) + beta C through the mapping; 0 when it matches the naive product */
static int check(int ta, int tb, int m, int n, int k, int pad, float alpha, float beta) {
    int arows = ta ? k : m, acols = ta ? m : k, brows = tb ? n : k, bcols = tb ? k : n;
    int lda = acols + pad, ldb = bcols + pad, ldc = n + pad;
    float *a = malloc(sizeof(float) * (size_t)arows * lda), *b = malloc(sizeof(float) * (size_t)brows * ldb);
    float *c = malloc(sizeof(float) * (size_t)m * ldc), *c0 = malloc(sizeof(float) * (size_t)m * ldc);
    fill(a, (size_t)arows * lda, 1);
    fill(b, (size_t)brows * ldb, 2);
    fill(c0, (size_t)m * ldc, 3);
    memcpy(c, c0, sizeof(float) * (size_t)m * ldc);
    gemm_colmajor_t g = gemm_rowmajor_as_colmajor(ta, tb, m, n, k, a, lda, b, ldb);
    /* what cuBLAS would be given: column-major, C with row stride ldc read as column stride */
    cblas_sgemm(CblasColMajor, g.trans_a ? CblasTrans : CblasNoTrans, g.trans_b ? CblasTrans : CblasNoTrans, g.m,
                g.n, g.k, alpha, g.a, g.lda, g.b, g.ldb, beta, c, ldc);
    int bad = 0;
    for (int i = 0; i < m && !bad; i++)
        for (int j = 0; j < n && !bad; j++) {
            double s = 0;
            for (int p = 0; p < k; p++)
                s += (double)(ta ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p]) *
                     (tb ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j]);
            double want = alpha * s + beta * c0[(size_t)i * ldc + j], got = c[(size_t)i * ldc + j];
            if (!(fabs(got - want) <= 1e-5 * (k + 1))) {
                printf("# ta=%d tb=%d m=%d n=%d k=%d pad=%d: C[%d,%d] = %.9g, want %.9g\n", ta, tb, m, n, k, pad, i, j,
                       got, want);
                bad = 1;
            }
            if (pad && j == n - 1 && c[(size_t)i * ldc + n] != c0[(size_t)i * ldc + n]) {
                printf("# ta=%d tb=%d m=%d n=%d k=%d: the padding after row %d was written\n", ta, tb, m, n, k, i);
                bad = 1;
            }
        }
    free(a);
    free(b);
    free(c);
    free(c0);
    return bad;
}

static void test_mapping_matches_rowmajor(void) {
    static const int sizes[][3] = {{1, 1, 1}, {1, 7, 3}, {5, 1, 9}, {3, 5, 7}, {17, 33, 1}, {31, 17, 65}, {64, 10, 129}};
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
                for (int pad = 0; pad < 4; pad += 3) {
                    int bad = check(ta, tb, sizes[s][0], sizes[s][1], sizes[s][2], pad, 1.0f, 0.0f);
                    bad |= check(ta, tb, sizes[s][0], sizes[s][1], sizes[s][2], pad, -0.75f, 0.5f);
                    CHECK(!bad, "ta=%d tb=%d %dx%dx%d pad %d", ta, tb, sizes[s][0], sizes[s][1], sizes[s][2], pad);
                }
}

/* the mapping itself: operands, transposes and sizes swap; strides follow their matrices */
static void test_mapping_fields(void) {
    float a[1], b[1];
    gemm_colmajor_t g = gemm_rowmajor_as_colmajor(1, 0, 3, 5, 7, a, 11, b, 13);
    CHECK(g.trans_a == 0 && g.trans_b == 1, "transposes %d %d", g.trans_a, g.trans_b);
    CHECK(g.m == 5 && g.n == 3 && g.k == 7, "sizes %d %d %d", g.m, g.n, g.k);
    CHECK(g.a == b && g.lda == 13 && g.b == a && g.ldb == 11, "operands");
}

int main(void) {
    RUN(test_mapping_fields);
    RUN(test_mapping_matches_rowmajor);
    return harness_done();
}
