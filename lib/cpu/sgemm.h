/* sgemm.h: our own single-threaded single-precision GEMM (sgemm.c): operands packed into
 * panels (with few rows of C only op(A), B read in place: the small-m path), register-blocked
 * micro-kernels for AVX-512F and AVX2+FMA picked at run time by the CPU, a portable C fallback.
 * The CPU backend's gemm (backend_cpu.c) uses it for the shapes where it beats OpenBLAS
 * (README.md, "The GEMM").
 *
 * Every element of C is one dot product over k, summed in index order in chunks of
 * SGEMM_KC (a fixed function of k), so its bits depend only on k, the ISA and the operands,
 * never on where C was cut into blocks or on the thread count. AVX-512F and AVX2 give the
 * same bits (both use one fused multiply-add per term); the C fallback rounds each product. */
#ifndef GT_CPU_SGEMM_H
#define GT_CPU_SGEMM_H

typedef enum { SGEMM_C = 0, SGEMM_AVX2 = 1, SGEMM_AVX512 = 2 } sgemm_isa_t;

/* Row-major C (m x n) = alpha op(A) op(B) + beta C, the contract of backend_t's gemm
 * (lib/backend/backend.h): beta == 0 ignores C's old contents, k <= 0 gives beta C. Runs in
 * the calling thread; its packing buffers are this thread's, allocated at its first call. */
void sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
           int ldb, float beta, float *c, int ldc);

/* A packer of B (k x n): rows [p0, p0+kc) and columns [j0, j0+nc) of B into panels of nr
 * columns at dst + panel * nr * kc, element (p, j) of a panel at p * nr + j, columns past nc
 * zero: the layout sgemm's own packing of a B matrix makes. ctx: the packer's data. */
typedef void (*sgemm_pack_b_fn)(const void *ctx, int p0, int kc, long j0, int nc, int nr, float *dst);

/* sgemm with B given by its packer instead of a matrix (e.g. an image read as its im2col
 * matrix, lib/cpu/conv.c): C (m x n) = alpha op(A) B + beta C, where this C's column j is
 * B's column j_off + j (a block of columns of a larger product). The same loops and kernels
 * as sgemm: when the packer writes what sgemm's packing of a matrix B would, the results are
 * the same bits. */
void sgemm_pb(int trans_a, int m, int n, int k, float alpha, const float *a, int lda, sgemm_pack_b_fn pack,
              const void *ctx, long j_off, float beta, float *c, int ldc);

/* op(A) packed once for several sgemm_pb calls over the same A (the backend's column blocks of
 * one product, which would each pack all of A again): sgemm_pack_a packs chunks [c0, c1) of
 * the sgemm_a_chunks(k) chunks of k (so threads can share the packing) into a_packed, which
 * holds sgemm_packed_a_floats(m, k) floats; sgemm_pb_packed_a is then sgemm_pb reading A from
 * there, with the same bits. Pack and use under the same ISA (sgemm_force_isa). */
size_t sgemm_packed_a_floats(int m, int k);
/* the calling thread's buffer of at least `floats` floats for a packed A, kept between calls (it
 * is reallocated only to grow: none after a training step's first) */
float *sgemm_a_buffer(size_t floats);
int sgemm_a_chunks(int k);
void sgemm_pack_a(int trans_a, int m, int k, const float *a, int lda, int c0, int c1, float *a_packed);
void sgemm_pb_packed_a(int m, int n, int k, float alpha, const float *a_packed, sgemm_pack_b_fn pack,
                       const void *ctx, long j_off, float beta, float *c, int ldc);
/* sgemm computes C with at most `max` rows (clamped to [0, 144]) without packing B (sgemm.c,
 * "the small-m path"; the same bits either way). Returns the previous bound (tests, benchmarks). */
int sgemm_set_small_m(int max);

/* sgemm's small-m path by default up to this many rows of C (README.md, "The small-m path") */
#define SGEMM_SMALL_M 144

/* When set, the CPU backend (backend_cpu.c) calls it after every GEMM it runs, with the shape
 * (op(A) m x k, op(B) k x n), its kind (0: a plain product, 1: a convolution's gather side, B its
 * column matrix or, trans_b, the transpose, 2: its scatter side, the column matrix col2im adds
 * up or an output phase), whether our sgemm ran it (1) or OpenBLAS (0), and its wall time in
 * seconds: bench/train_bench --gemm-profile. Set it before a step, never during one. */
extern void (*sgemm_observer)(int trans_a, int trans_b, int m, int n, int k, int kind, int ours, double seconds);

/* The ISA sgemm uses: the best the CPU has, unless sgemm_force_isa changed it. */
sgemm_isa_t sgemm_isa(void);

/* Use `isa` from now on (tests). Returns 0, changing nothing, when the CPU lacks it. */
int sgemm_force_isa(sgemm_isa_t isa);

const char *sgemm_isa_name(sgemm_isa_t isa);

#endif
