/* gemm_map.h: the row-major GEMM of backend.h as the column-major GEMM that cuBLAS (and
 * BLAS's column-major interface) computes. A pure function, valid C11 and C++, unit-tested
 * on the CPU by running the mapped call through column-major cblas_sgemm for every
 * transpose combination and odd sizes (tests/unit/test_gemm_map.c).
 *
 * A row-major matrix X (r x c, row stride ld) is, read column-major, X^T (c x r) with the
 * same ld. So row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the
 * operands (and their transposes and strides), swap m and n; k and ldc stay. */
#ifndef GT_GEMM_MAP_H
#define GT_GEMM_MAP_H

typedef struct {
    int trans_a, trans_b; /* of the column-major call's first and second operands */
    int m, n, k;          /* column-major C is m x n */
    const float *a;
    int lda;
    const float *b;
    int ldb;
} gemm_colmajor_t;

static inline gemm_colmajor_t gemm_rowmajor_as_colmajor(int trans_a, int trans_b, int m, int n, int k,
                                                        const float *a, int lda, const float *b, int ldb) {
    gemm_colmajor_t g;
    g.trans_a = trans_b;
    g.trans_b = trans_a;
    g.m = n;
    g.n = m;
    g.k = k;
    g.a = b;
    g.lda = ldb;
    g.b = a;
    g.ldb = lda;
    return g;
}

#endif
