/* prdc.h: precision and recall (Kynkaanniemi et al. 2019) and density and coverage (Naeem et
 * et al. 2020) of a generated set against a real one, from their features, by exact k-nearest-
 * neighbour balls.
 *
 * Definitions. Distances are squared Euclidean distances between feature rows, in float64:
 *     D(x, y) = sum_k (x_k - y_k)^2   (summed in feature order).
 * The radius of a point x of a set S at k is the k-th smallest D(x, y) over the other rows y of S
 * (the row itself excluded by its index; a duplicate of x counts as a neighbour at distance 0).
 * A point y lies inside the ball of x when D(x, y) <= radius (ties are inside, as in
 * Kynkaanniemi et al.'s code; Naeem et al.'s prdc package uses < and differs only on ties).
 * With real rows r_i (radii Rr_k) and fake rows f_j (radii Rf_k):
 *     precision = #{j : some i has D(r_i, f_j) <= Rr_kpr(i)} / nf
 *     recall    = #{i : some j has D(r_i, f_j) <= Rf_kpr(j)} / nr
 *     density   = sum_j #{i : D(r_i, f_j) <= Rr_kdc(i)} / (kdc nf)
 *     coverage  = #{i : some j has D(r_i, f_j) <= Rr_kdc(i)} / nr
 * (the papers: k = 3 for precision and recall, 5 for density and coverage).
 *
 * Computation: blocks of rows against blocks of rows, the dot products by one float64 GEMM per
 * block pair (BLAS), D ~ |x|^2 + |y|^2 - 2 x.y. Each such value carries a proven error bound;
 * whenever a decision (is this among the k nearest? inside that ball?) is not settled by the
 * bound, D is recomputed directly by the sum above. Every decision is therefore the one the
 * definition makes, and the results do not depend on the block size, the BLAS or the thread
 * count. Rows within rounding of many others (duplicates) are resolved by direct sums as they
 * come, so a row never holds more than 2 kmax + 8 candidates. Memory beyond the features: three blocks (two of rows, block x d, and their products,
 * block x block, float64: 40 MB at the default block 1024 and d = 2048) and a few values per
 * row. */
#ifndef GT_PRDC_H
#define GT_PRDC_H

#include <stdint.h>

#define PRDC_K_PR 3   /* k of precision and recall */
#define PRDC_K_DC 5   /* k of density and coverage */
#define PRDC_BLOCK 1024

typedef struct {
    int64_t precision_n; /* fake rows inside the real balls (k_pr) */
    int64_t recall_n;    /* real rows inside the fake balls (k_pr) */
    int64_t density_n;   /* (real ball, fake row) pairs with the row inside (k_dc) */
    int64_t coverage_n;  /* real rows whose ball (k_dc) holds a fake row */
    double precision, recall, density, coverage;
} prdc_t;

/* The four numbers for real rows (nr, d) and fake rows (nf, d), float32. k_pr or k_dc may be 0
 * (that pair is not computed; its fields are 0). Each set needs more rows than the larger k
 * it is used with (the real set: k_pr and k_dc, the fake set: k_pr). block: rows per block
 * (<= 0: PRDC_BLOCK). threads: BLAS threads for the call (<= 0: OpenBLAS's setting). Returns 0
 * or -1 with a message (non-finite features, too few rows). */
int prdc_compute(const float *real, int64_t nr, const float *fake, int64_t nf, int d, int k_pr, int k_dc, int block,
                 int threads, prdc_t *out);

#endif
