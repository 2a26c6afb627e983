/* backend.h: the compute backend interface (DESIGN.md, "Computation").
 *
 * A backend is a struct of function pointers: memory, the one row-major GEMM entry point,
 * and a thread count for the CPU loops. Layers, losses and optimizers call these, never a
 * BLAS or device API directly. The CPU backend is lib/backend_cpu.c (OpenBLAS); the CUDA
 * backend (kernels/) implements the same struct; each layer kind's per-device compute is
 * looked up through layer.h's ops tables. */
#ifndef GT_BACKEND_H
#define GT_BACKEND_H

#include <stddef.h>

typedef enum { DEV_CPU = 0, DEV_CUDA = 1 } device_t;

typedef struct backend {
    const char *name;
    device_t device;
    int threads; /* CPU threads for our own loops and for OpenBLAS */

    /* Memory on the backend's device. alloc never returns NULL (dies on exhaustion);
     * buffers are 64-byte aligned. upload/download copy host<->device (plain memcpy on CPU). */
    void *(*alloc)(struct backend *be, size_t bytes);
    void (*free)(struct backend *be, void *p);
    void (*upload)(struct backend *be, void *dst, const void *src, size_t bytes);
    void (*download)(struct backend *be, void *dst, const void *src, size_t bytes);
    void (*zero)(struct backend *be, void *p, size_t bytes);

    /* Row-major C (M x N) = alpha * op(A) * op(B) + beta * C, op(X) = X or X^T.
     * A is M x K after op (stored K x M when trans_a), lda/ldb/ldc are row strides.
     * beta == 0 ignores C's old contents (NaN included); k == 0 gives beta * C.
     * Results do not depend on the thread count: OpenBLAS's rounding depends on the shape of
     * each call, so the CPU backend cuts C into blocks that depend only on (m, n, k) and shares
     * whole blocks over its threads (backend_cpu.c): at most 4 blocks, along the longer side of C,
     * at least 128 rows (columns) each. Cost, measured on 2 shared cores against one part per
     * thread: within the run-to-run noise (about 5%) on the DCGAN and MLP shapes; on one thread,
     * where the blocks run in turn, 4 blocks cost the MLP step about 2% (16 cost 10%). */
    void (*gemm)(struct backend *be, int trans_a, int trans_b, int m, int n, int k, float alpha,
                 const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);
} backend_t;

/* The CPU backend; threads <= 0 picks the number of online cores. Sets OpenBLAS's thread
 * count to match. Returns a static instance (one per process). */
backend_t *backend_cpu(int threads);

/* Split [0, n) over the CPU backend's threads and call fn(arg, begin, end) on each part
 * (in the calling thread when threads == 1 or n is small). Work must be independent per
 * index so results never depend on the thread count. A call from inside fn (a nested loop,
 * or a gemm inside a parallel loop) runs inline in that thread; calls from several threads
 * take turns. Part t of p covers [floor(n t / p), floor(n (t+1) / p)). */
void cpu_parallel_for(backend_t *be, long n, void (*fn)(void *arg, long begin, long end), void *arg);

#endif
