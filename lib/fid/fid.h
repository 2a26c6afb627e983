/* fid.h: feature statistics and the distances between two sets of features: the Frechet
 * distance (FID when the features are Inception's) and the kernel distance (KID).
 *
 * Statistics are accumulated in one pass in float64 and merge exactly (Chan, Golub and
 * LeVeque's pairwise update): a set scored in shards gives, up to rounding, the statistics of
 * the whole set. They hold the count N, the mean and the centred co-moment matrix
 *     m2 = sum_i (x_i - mean)(x_i - mean)^T,        covariance sigma = m2 / (N - 1).
 *
 * The Frechet distance between N(mu1, S1) and N(mu2, S2) is
 *     |mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr sqrt(S1 S2).
 * tr sqrt(S1 S2) is computed in float64 as a nuclear norm (LAPACK dpotrf or dsyevd, dgesdd):
 *     S1 = F1^T F1,  S2 = F2^T F2,  tr sqrt(S1 S2) = sum_k sigma_k(F2 F1^T),
 * because (F2 F1^T)^T (F2 F1^T) = F1 S2 F1^T has the eigenvalues of S2 F1^T F1 = S2 S1. Each
 * factor is the Cholesky factor when the matrix is positive definite (the usual case, N > d),
 * else L^1/2 V^T from its eigendecomposition S = V L V^T (rank-deficient S: N <= d, constant
 * features); both are backward stable, and Cholesky costs a small fraction of an eigendecomposition.
 * Summing singular values instead of square roots of eigenvalues avoids squaring: a small
 * sigma is found to about eps * |F2| |F1| instead of sqrt(eps * |S1| |S2|), which is what decides
 * the result when N < d or the features are ill-conditioned. Measured against the exact value
 * (the nuclear norm of the centred data product, tests/ref/test_fid_numpy.py) it is correct to
 * about 1e-13 relative where SciPy's sqrtm (pytorch-fid's route) is off by up to 2.5e-6 (500
 * Fashion-MNIST images in pixel space) and by 3e-8 on random rank-deficient statistics.
 * Near-singular input: eigenvalues of S1 or S2 that come out negative (rounding noise around an
 * exact zero) count as 0; SciPy's sqrtm amounts to the same, as the square roots of its tiny
 * negative eigenvalues are imaginary and pytorch-fid keeps the real part of the result. The
 * route always yields a finite result for finite input, so pytorch-fid's fallback (adding
 * eps * I to both covariances when sqrtm's result is not finite) is kept only for a LAPACK
 * failure to converge: then the computation is repeated with FID_EPS * I added to both, and
 * *offset says so.
 *
 * KID (Binkowski et al. 2018) is the unbiased squared MMD with the cubic polynomial kernel
 * k(x, y) = (x.y / d + 1)^3, averaged over random subsets; see fid_kid. */
#ifndef GT_FID_H
#define GT_FID_H

#include <stddef.h>
#include <stdint.h>

/* pytorch-fid's diagonal offset for singular products. */
#define FID_EPS 1e-6

/* KID defaults: those of the common implementations (torch-fidelity, clean-fid). */
#define KID_SUBSETS 100
#define KID_SUBSET_SIZE 1000

typedef struct {
    int d;            /* feature dimension */
    int64_t n;        /* samples accumulated; 0 for statistics read without a count (pytorch-fid's
                         .npz): those can be scored but not merged */
    double *mu;       /* (d) mean */
    double *m2;       /* (d, d) centred co-moment; for statistics read from a file NULL until a
                         merge needs it (then sigma * (n - 1)) */
    double *sigma;    /* (d, d) covariance m2 / (n - 1); allocated and valid after fid_stats_finish, or
                         as read */
    /* private: rows buffered until a chunk is full (one rank-k update per chunk) */
    double *chunk;    /* (chunk_cap, d) */
    int chunk_n, chunk_cap;
    int finished;     /* m2 is symmetric and sigma is up to date */
} fid_stats_t;

/* Empty statistics of dimension d (n = 0), ready for fid_stats_add. The chunk buffer is
 * chunk_rows x d doubles (chunk_rows <= 0: 1024, or fewer for large d). Returns 0 or -1
 * (d out of range). Free with fid_stats_free. */
int fid_stats_init(fid_stats_t *s, int d, int chunk_rows);
/* Statistics read from a file: mu (d) and sigma (d, d) copied; n may be 0 (unknown count: the
 * statistics cannot be merged); with n >= 2 a merge takes m2 = sigma * (n - 1). Checks that the
 * values are finite and sigma is symmetric (to 1e-9 relative). Returns 0 or -1. */
int fid_stats_from(fid_stats_t *s, int d, int64_t n, const double *mu, const double *sigma);
void fid_stats_free(fid_stats_t *s);

/* Accumulate B feature rows x (B, d) (float32). Non-finite values are an error (-1; nothing is
 * added). Finished statistics may be added to again. */
int fid_stats_add(fid_stats_t *s, const float *x, int B);
/* The same for float64 rows. */
int fid_stats_add_f64(fid_stats_t *s, const double *x, int B);
/* Flush the buffered rows, make m2 symmetric and set sigma = m2 / (n - 1). Needs n >= 2
 * (-1 with a message otherwise). */
int fid_stats_finish(fid_stats_t *s);
/* dst += src (pooled statistics of both sets), by the pairwise update; both must be of the same
 * d and have a count. dst is finished afterwards (it needs n >= 2 in all), and so is src when
 * it holds 2 or more samples. Returns 0 or -1 with a message. */
int fid_stats_merge(fid_stats_t *dst, fid_stats_t *src);

/* Finish (as fid_stats_finish: needs n >= 2), then keep only n, mu and sigma: the chunk buffer is
 * freed and m2's storage becomes sigma (in place, no second d x d matrix). The statistics can
 * still be scored and merged (a merge rebuilds m2 = sigma (n - 1), as for statistics read from a
 * file), but not added to. Returns 0 or -1 with a message (nothing changed). */
int fid_stats_compact(fid_stats_t *s);

/* Statistics per class, accumulated beside (not instead of) a set's overall statistics: one
 * fid_stats_t per class that occurs, made on the class's first row, so memory grows with the
 * classes present (8 d^2 bytes each for m2, plus a small chunk buffer), not with the largest
 * label. Classes are 0 .. FID_MAX_CLASS. */
#define FID_MAX_CLASS 999999
typedef struct {
    int d;
    int64_t cap;          /* cls has room for classes 0 .. cap-1 */
    fid_stats_t **cls;    /* (cap) NULL for a class without rows */
} fid_class_stats_t;

void fid_class_stats_init(fid_class_stats_t *c, int d);
void fid_class_stats_free(fid_class_stats_t *c);
/* Add the B rows x (B, d) float32, row i to the statistics of class labels[i]. A label outside
 * 0 .. FID_MAX_CLASS or a non-finite value is an error (-1 with a message naming the row;
 * nothing is added). */
int fid_class_stats_add(fid_class_stats_t *c, const float *x, const int64_t *labels, int B);
/* The same for float64 rows. */
int fid_class_stats_add_f64(fid_class_stats_t *c, const double *x, const int64_t *labels, int B);
/* The statistics of class k (NULL when no row had that label). */
const fid_stats_t *fid_class_stats_get(const fid_class_stats_t *c, int64_t k);
/* After the last row: every class with n >= 2 is compacted (fid_stats_compact); a class with one
 * row keeps only n and mu. Returns 0 or -1 with a message. */
int fid_class_stats_finish(fid_class_stats_t *c);

/* The Frechet distance between N(mu1, s1) and N(mu2, s2), each s a symmetric (d, d) float64
 * matrix. Its LAPACK calls run on one OpenBLAS thread whatever the caller's setting: OpenBLAS
 * splits the updates of its blocked factorizations by its thread count, which changed the last
 * digits of the distance between 1 and 2 threads (and 2 threads were no faster on 2 cores).
 * *offset (may be NULL) is set to 0, or to FID_EPS when LAPACK failed to converge and the offset
 * was added. Returns 0 and *fd, or -1 with a message (non-finite input, failure). */
int fid_frechet(int d, const double *mu1, const double *s1, const double *mu2, const double *s2, double *fd,
                double *offset);

/* KID between feature sets x (nx, d) and y (ny, d), float32. For each subset s = 0 .. subsets-1,
 * m = min(subset_size, nx, ny) rows of x and of y are drawn without replacement: the first m
 * of the permutations philox_shuffle(nx, seed, PHILOX_STREAM_KID, 2s) and
 * philox_shuffle(ny, seed, PHILOX_STREAM_KID, 2s + 1) (shuffle.h). Each subset's estimate is
 *     sum_{i!=j} k(x_i, x_j) / (m (m-1)) + sum_{i!=j} k(y_i, y_j) / (m (m-1))
 *       - 2 sum_{i,j} k(x_i, y_j) / m^2,
 * with the dot products and sums in float64. *mean is the mean over subsets, *std their
 * standard deviation (population, ddof 0, as torch-fidelity reports). Needs m >= 2. threads:
 * BLAS threads for the call (<= 0: leave OpenBLAS's setting; its GEMMs give the same bits at any
 * count). Returns 0 or -1 with a message. */
int fid_kid(const float *x, int64_t nx, const float *y, int64_t ny, int d, int subsets, int subset_size,
            uint64_t seed, int threads, double *mean, double *std);

/* BLAS threads for a stretch of float64 linear algebra (lib/fid's callers run it alone):
 * threads > 0 sets OpenBLAS's count and returns the previous one, for fid_blas_threads_end. */
int fid_blas_threads_begin(int threads);
void fid_blas_threads_end(int before);

#endif
