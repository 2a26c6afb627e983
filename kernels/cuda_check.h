/* cuda_check.h: what every CUDA source in kernels/ includes first: the CUDA runtime and
 * cuBLAS (or, under `make CUDA=emu`, their host emulation, kernels/cuda_emu.h), the checks that end the
 * program on a CUDA or cuBLAS error with file, line and the error's name, and the one launch
 * macro, which also counts launches. */
#ifndef GT_CUDA_CHECK_H
#define GT_CUDA_CHECK_H

#ifdef GT_CUDA_EMU
#include "cuda_emu.h"
#else
#include <cublas_v2.h>
#include <cuda_runtime.h>
#endif

#include <stddef.h>
#include <stdint.h>

#include "lib/backend/backend.h"
#include "fastdiv.h"

/* The CUDA backend's instance (kernels/backend_cuda.cu): counters, scratch. */
extern backend_t gt_cuda_backend;

/* Print "PROG: cuda: FILE:LINE: WHAT failed: NAME (description)" and exit 1. */
[[noreturn]] void gt_cuda_fail(const char *file, int line, const char *what, const char *name, const char *desc);

#define CUDA_CHECK(call)                                                                              \
    do {                                                                                              \
        cudaError_t gt_e_ = (call);                                                                   \
        if (gt_e_ != cudaSuccess)                                                                     \
            gt_cuda_fail(__FILE__, __LINE__, #call, cudaGetErrorName(gt_e_), cudaGetErrorString(gt_e_)); \
    } while (0)

#define CUBLAS_CHECK(call)                                                                            \
    do {                                                                                              \
        cublasStatus_t gt_s_ = (call);                                                                \
        if (gt_s_ != CUBLAS_STATUS_SUCCESS)                                                           \
            gt_cuda_fail(__FILE__, __LINE__, #call, cublasGetStatusName(gt_s_), "cuBLAS");            \
    } while (0)

/* The backend's one stream: every operation is queued on it, in order. */
cudaStream_t gt_cuda_stream(void);

/* The GPU this process drives: its index among the GPUs the process sees. */
int gt_cuda_device(void);

/* GT_CUDA_SYNC=1 in the environment (read when the backend starts): after every kernel launch,
 * GEMM, copy, fill and all-reduce, wait for the stream and check it, so that a kernel that
 * faults is named with the backend operation that launched it, instead of surfacing at a later
 * synchronisation that names another operation. Slow: for finding a fault, not for training. */
extern int gt_cuda_sync_each;

/* A CUDA graph is being recorded (kernels/graph.cu): nothing may allocate, free or transfer. */
extern int gt_cuda_capturing;

/* A launch failed: print "PROG: cuda: FILE:LINE: kernel KERNEL (in OP) failed: NAME
 * (description)" and exit 1. */
[[noreturn]] void gt_cuda_fail_launch(const char *file, int line, const char *kernel, const char *op, cudaError_t e);

/* After queueing WHAT (a kernel when kernel is 1) on the stream: under GT_CUDA_SYNC=1 wait for
 * it and check, naming WHAT and OP, the backend operation that queued it. */
void gt_cuda_sync_point(const char *file, int line, int kernel, const char *what, const char *op);

/* After launching KERNEL from OP: the launch's own error (a bad configuration) and, under
 * GT_CUDA_SYNC=1, the kernel's. */
static inline void gt_cuda_launched(const char *file, int line, const char *kernel, const char *op) {
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) gt_cuda_fail_launch(file, line, kernel, op, e);
    if (gt_cuda_sync_each) gt_cuda_sync_point(file, line, 1, kernel, op);
}

/* Launch KERNEL over GRID x BLOCK on the backend's stream with the arguments, check the
 * launch (gt_cuda_launched: named NAME, from the backend operation OP), and count it
 * (backend_t.counters.launches). GT_LAUNCH names the kernel as written and the function it is
 * in. Under emulation the grid runs as loops on the host (cuda_emu.h). */
#ifdef GT_CUDA_EMU
#define GT_LAUNCH_NAMED(name, op, kernel, grid, block, ...)                   \
    do {                                                                      \
        gt_cuda_backend.counters.launches++;                                  \
        gt_emu_launch((name), (grid), (block), kernel, __VA_ARGS__);          \
        gt_cuda_launched(__FILE__, __LINE__, (name), (op));                   \
    } while (0)
#else
#define GT_LAUNCH_NAMED(name, op, kernel, grid, block, ...)                   \
    do {                                                                      \
        gt_cuda_backend.counters.launches++;                                  \
        kernel<<<(grid), (block), 0, gt_cuda_stream()>>>(__VA_ARGS__);       \
        gt_cuda_launched(__FILE__, __LINE__, (name), (op));                   \
    } while (0)
#endif
#define GT_LAUNCH(kernel, grid, block, ...) GT_LAUNCH_NAMED(#kernel, __func__, kernel, grid, block, __VA_ARGS__)

/* What GT_CUDA_SYNC=1 checks after the stream's other work (GEMMs, copies, fills, all-reduces):
 * WHAT, queued by the enclosing backend operation. */
#define GT_SYNC_POINT(what)                                                           \
    do {                                                                              \
        if (gt_cuda_sync_each) gt_cuda_sync_point(__FILE__, __LINE__, 0, (what), __func__); \
    } while (0)

/* Threads per block of the element-wise kernels. */
enum { GT_BLOCK = 256 };

/* Blocks for n threads of GT_BLOCK (at least one). */
static inline unsigned gt_blocks(size_t n) {
    size_t b = (n + GT_BLOCK - 1) / GT_BLOCK;
    return (unsigned)(b ? b : 1);
}

/* The global index of this thread in a 1-D launch. */
#define GT_TID() ((size_t)blockIdx.x * blockDim.x + threadIdx.x)

/* ---- index arithmetic (kernels/README.md: "Index arithmetic") ---------------------------
 * A data-movement kernel splits its flat thread index into coordinates by divisors that are
 * the same for the whole launch. It is a template on its index type I: uint32_t when the
 * launch's element count, and so every index it divides and every divisor, is at most
 * gt_cuda_idx32_max (FASTDIV_N_MAX, 2^31 - 1), dividing by fastdiv.h's multiply and shift;
 * uint64_t otherwise, with C's / and %. GT_LAUNCH_IDX picks the instantiation. */

/* The largest element count that takes the 32-bit path: FASTDIV_N_MAX; the parity suite
 * lowers it to run the 64-bit path on small sizes. */
extern "C" size_t gt_cuda_idx32_max;

/* A divisor of a launch, precomputed on the host for both index types; d >= 1 (0 is accepted
 * as a value a kernel tests, never divides by). */
struct gt_idiv {
    fastdiv_t f; /* when d <= 2^31 */
    uint64_t d;
    /* n / d into *q, n % d returned */
    GT_HD uint32_t divmod(uint32_t n, uint32_t *q) const { return fastdiv_divmod(n, f, q); }
    GT_HD uint64_t divmod(uint64_t n, uint64_t *q) const {
        *q = n / d;
        return n - *q * d;
    }
    GT_HD uint32_t div(uint32_t n) const { return fastdiv_div(n, f); }
    GT_HD uint64_t div(uint64_t n) const { return n / d; }
    GT_HD uint32_t mod(uint32_t n) const { return fastdiv_mod(n, f); }
    GT_HD uint64_t mod(uint64_t n) const { return n % d; }
};

static inline gt_idiv gt_idiv_make(uint64_t d) {
    gt_idiv v;
    v.f = fastdiv_make(d >= 1 && d <= (uint64_t)FASTDIV_N_MAX + 1 ? (uint32_t)d : 1u); /* 0: an empty launch's */
    v.d = d;
    return v;
}

/* i as (a, b, c) of an (A, B, C) array, by the divisors C and B: c returned */
template <class I> GT_HD static inline I gt_split(I i, const gt_idiv &C, const gt_idiv &B, I *a, I *b) {
    I ab, c = C.divmod(i, &ab);
    *b = B.divmod(ab, a);
    return c;
}

/* This thread's index in a 1-D launch, in the kernel's index type (I = uint32_t: the grid
 * covers at most FASTDIV_N_MAX + GT_BLOCK threads, which fits). */
#define GT_TID_AS(I) ((I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x)

/* Launch KERNEL<uint32_t> when the launch's element count N allows it, else KERNEL<uint64_t>;
 * the arguments are the same (gt_idiv carries both forms of a divisor). */
#define GT_LAUNCH_IDX(n, kernel, grid, block, ...)                                                \
    do {                                                                                        \
        if ((size_t)(n) <= gt_cuda_idx32_max)                                                   \
            GT_LAUNCH_NAMED(#kernel, __func__, kernel<uint32_t>, grid, block, __VA_ARGS__);     \
        else                                                                                    \
            GT_LAUNCH_NAMED(#kernel, __func__, kernel<uint64_t>, grid, block, __VA_ARGS__);     \
    } while (0)

/* Count bytes an operation must at least move (the byte floor of bench/). */
static inline void gt_count_bytes(double bytes) { gt_cuda_backend.counters.bytes += bytes; }

/* Count a launch whose busiest thread does a chain of `adds` dependent additions. */
static inline void gt_count_depth(long adds) {
    uint64_t d = adds > 0 ? (uint64_t)adds : 0;
    gt_cuda_backend.counters.serial_depth += d;
    if (d > gt_cuda_backend.counters.serial_depth_max) gt_cuda_backend.counters.serial_depth_max = d;
}

/* Scratch device memory, valid until the next call for the same slot: GT_SCRATCH_PARTIAL
 * for reduce.h's partial sums, GT_SCRATCH_OP for an operation's own intermediate results
 * (per-channel sums, factors). Grows through the caching allocator, so only the first steps
 * allocate; the stream's order makes reuse by the next operation safe. */
enum { GT_SCRATCH_PARTIAL = 0, GT_SCRATCH_OP = 1, GT_SCRATCH_SLOTS = 2 };
void *gt_cuda_scratch(int slot, size_t bytes);

#endif
