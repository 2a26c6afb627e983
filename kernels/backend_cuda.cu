/* backend_cuda.cu: the CUDA backend (backend.h): the device and its one stream, memory
 * through a caching allocator, host<->device transfers, the row-major GEMM on cuBLAS
 * (kernels/gemm_map.h), error reporting, and the backend struct that gathers the operations
 * of the other .cu files of kernels/ (cuda_ops.h, made from lib/backend/backend_ops.h). The device
 * is GPU 0 of those the process sees, or, for the processes of a data-parallel run sharing a
 * node, their local rank's (mod the count).
 *
 * Memory: alloc takes a cached block of a fitting size when one is free, else cudaMalloc;
 * free returns the block to the cache. Every buffer of a training run is allocated before
 * its first step (and the scratch of reductions grows during the first step), so later steps
 * never call cudaMalloc (counters.device_mallocs stays put; the parity suite checks it).
 * Ordering: one stream carries every operation; upload and download wait for it (so the host
 * buffer may be reused, or read, on return); copies, memsets and kernels only queue. */
#include <map>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_check.h"
#include "cuda_ops.h"
#include "gemm_map.h"

#include "lib/base/common.h"
#include "lib/base/dist.h"

/* ---- errors ------------------------------------------------------------------------------ */

void gt_cuda_fail(const char *file, int line, const char *what, const char *name, const char *desc) {
    gt_fatal(1, "cuda: %s:%d: %s failed: %s (%s)", file, line, what, name, desc);
}

int gt_cuda_sync_each;

size_t gt_cuda_idx32_max = FASTDIV_N_MAX;

void gt_cuda_fail_launch(const char *file, int line, const char *kernel, const char *op, cudaError_t e) {
    gt_fatal(1, "cuda: %s:%d: kernel %s (in %s) failed: %s (%s)", file, line, kernel, op, cudaGetErrorName(e),
             cudaGetErrorString(e));
}

void gt_cuda_sync_point(const char *file, int line, int kernel, const char *what, const char *op) {
    cudaError_t e = cudaStreamSynchronize(gt_cuda_stream());
    if (e != cudaSuccess)
        gt_fatal(1, "cuda: %s:%d: %s%s (in %s) failed: %s (%s) [GT_CUDA_SYNC=1: checked after it ran]", file, line,
                 kernel ? "kernel " : "", what, op, cudaGetErrorName(e), cudaGetErrorString(e));
}

/* ---- state ------------------------------------------------------------------------------- */

static cudaStream_t stream;
static cublasHandle_t blas;
static int blas_tf32 = -1; /* the math mode set on the handle (-1: none yet) */
static int device;         /* the GPU this process drives, among those it sees */

cudaStream_t gt_cuda_stream(void) { return stream; }
int gt_cuda_device(void) { return device; }

/* ---- caching allocator ------------------------------------------------------------------- */

static std::multimap<size_t, void *> cache; /* free blocks by size */
static std::map<void *, size_t> live;       /* allocated blocks and their sizes */

/* Sizes are rounded so that blocks of nearby sizes can be reused: 256 bytes below 1 MiB,
 * then 1/16 of the next power of two. */
static size_t round_size(size_t n) {
    if (n == 0) n = 1;
    if (n < ((size_t)1 << 20)) return (n + 255) & ~(size_t)255;
    size_t p = (size_t)1 << 20;
    while (p < n) p <<= 1;
    size_t step = p / 16;
    return (n + step - 1) / step * step;
}

static void release_cache(void) {
    for (auto &b : cache) CUDA_CHECK(cudaFree(b.second));
    cache.clear();
}

/* Allocation inside a recorded step breaks the contract that steps after the first allocate
 * nothing (and a freed block could be handed to an operation recorded after one that still
 * uses it): refused whether or not the cache could serve it. */
static void no_capture(const char *what) {
    if (gt_cuda_capturing)
        gt_fatal(1, "cuda: %s while a training step is recorded as a CUDA graph: a step after the first must "
                    "allocate nothing (a bug; GT_CUDA_GRAPH=0 runs without graphs)", what);
}

static void *cuda_alloc(backend_t *be, size_t bytes) {
    no_capture("a device allocation");
    size_t n = round_size(bytes);
    auto it = cache.lower_bound(n);
    if (it != cache.end() && it->first <= n + n / 4) { /* a cached block at most 25% larger */
        void *p = it->second;
        live[p] = it->first;
        cache.erase(it);
        return p;
    }
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        release_cache();
        e = cudaMalloc(&p, n);
    }
    if (e != cudaSuccess) gt_fatal(1, "cuda: out of device memory allocating %zu bytes (%s)", n, cudaGetErrorName(e));
    be->counters.device_mallocs++;
    live[p] = n;
    return p;
}

static void cuda_free(backend_t *be, void *p) {
    (void)be;
    if (!p) return;
    no_capture("a device free");
    auto it = live.find(p);
    if (it == live.end()) gt_cuda_fail(__FILE__, __LINE__, "cuda_free", "not a block of this allocator", "bug");
    cache.insert({it->second, p});
    live.erase(it);
}

static void *scratch[GT_SCRATCH_SLOTS];
static size_t scratch_bytes[GT_SCRATCH_SLOTS];

void *gt_cuda_scratch(int slot, size_t bytes) {
    if (bytes > scratch_bytes[slot]) {
        if (scratch[slot]) cuda_free(&gt_cuda_backend, scratch[slot]);
        size_t want = bytes > 2 * scratch_bytes[slot] ? bytes : 2 * scratch_bytes[slot];
        scratch_bytes[slot] = round_size(want);
        scratch[slot] = cuda_alloc(&gt_cuda_backend, scratch_bytes[slot]);
    }
    return scratch[slot];
}

/* ---- transfers --------------------------------------------------------------------------- */

static void cuda_upload(backend_t *be, void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    be->counters.transfers++;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream));
    CUDA_CHECK(cudaStreamSynchronize(stream));
}

static void cuda_download(backend_t *be, void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    be->counters.transfers++;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream));
    CUDA_CHECK(cudaStreamSynchronize(stream));
}

static void cuda_copy(backend_t *be, void *dst, const void *src, size_t bytes) {
    if (!bytes || dst == src) return;
    be->counters.launches++; /* a copy on the stream costs a launch */
    be->counters.bytes += 2.0 * (double)bytes;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream));
    GT_SYNC_POINT("cudaMemcpyAsync");
}

static void cuda_zero(backend_t *be, void *p, size_t bytes) {
    if (!bytes) return;
    be->counters.launches++;
    be->counters.bytes += (double)bytes;
    CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, stream));
    GT_SYNC_POINT("cudaMemsetAsync");
}

static void cuda_sync(backend_t *be) {
    (void)be;
    CUDA_CHECK(cudaStreamSynchronize(stream));
}

/* ---- gemm -------------------------------------------------------------------------------- */

/* C = beta C (m x n, row stride ldc), for k == 0; beta == 0 writes zeros */
__global__ void k_scale_matrix(float *c, int m, int n, int ldc, float beta) {
    size_t t = GT_TID();
    if (t >= (size_t)m * n) return;
    float *p = c + t / n * ldc + t % n;
    *p = beta == 0.0f ? 0.0f : beta * *p;
}

static void cuda_gemm(backend_t *be, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                      int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        GT_LAUNCH(k_scale_matrix, gt_blocks((size_t)m * n), GT_BLOCK, c, m, n, ldc, beta);
        return;
    }
    if (be->tf32 != blas_tf32) {
        CUBLAS_CHECK(cublasSetMathMode(blas, be->tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
        blas_tf32 = be->tf32;
    }
    gemm_colmajor_t g = gemm_rowmajor_as_colmajor(trans_a, trans_b, m, n, k, a, lda, b, ldb);
    be->counters.gemms++;
    be->counters.launches++;
    be->counters.flops += 2.0 * m * n * k;
    be->counters.bytes += 4.0 * ((double)m * k + (double)k * n + (double)m * n * (beta != 0.0f ? 2 : 1));
    CUBLAS_CHECK(cublasSgemm(blas, g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, g.m,
                             g.n, g.k, &alpha, g.a, g.lda, g.b, g.ldb, &beta, c, ldc));
    GT_SYNC_POINT("cublasSgemm");
}

/* ---- the backend ------------------------------------------------------------------------- */

backend_t gt_cuda_backend; /* filled in by backend_cuda() */

static void fill_struct(backend_t *be) {
    be->name = "cuda";
    be->device = DEV_CUDA;
    be->threads = 1;
    be->alloc = cuda_alloc;
    be->free = cuda_free;
    be->upload = cuda_upload;
    be->download = cuda_download;
    be->copy = cuda_copy;
    be->zero = cuda_zero;
    be->upload_const = NULL; /* the caller allocates and uploads */
    be->release_const = NULL;
    be->sync = cuda_sync;
    be->join = cuda_join;
    be->sum_procs = cuda_sum_procs;
    be->sum_procs_start = cuda_sum_procs_start;
    be->sum_procs_wait = cuda_sum_procs_wait;
    be->reduce_procs_start = cuda_reduce_procs_start;
    be->gather_procs = cuda_gather_procs;
    be->gemm = cuda_gemm;
    be->graph_begin = cuda_graph_begin;
    be->graph_end = cuda_graph_end;
    const char *graphs = getenv("GT_CUDA_GRAPH");
    be->graphs = !(graphs && strcmp(graphs, "0") == 0);
    /* every compute operation: be->name = cuda_name (a missing one does not link) */
#define BACKEND_OP(name, params) be->name = cuda_##name;
#include "lib/backend/backend_ops.h"
#undef BACKEND_OP
}

static int ready;

extern "C" backend_t *backend_cuda(void) {
    if (ready) return &gt_cuda_backend;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e == cudaErrorNoDevice || (e == cudaSuccess && count < 1)) {
        (void)cudaGetLastError();
        gt_err("no CUDA GPU found");
        return NULL;
    }
    if (e != cudaSuccess) { /* e.g. no driver, or a driver older than this runtime */
        (void)cudaGetLastError();
        gt_err("no usable CUDA GPU (%s: %s)", cudaGetErrorName(e), cudaGetErrorString(e));
        return NULL;
    }
    /* the processes of a data-parallel run on one node share its GPUs out by local rank */
    int dev = dist_local_rank() % count;
    cudaDeviceProp prop;
    if ((e = cudaSetDevice(dev)) != cudaSuccess || (e = cudaGetDeviceProperties(&prop, dev)) != cudaSuccess ||
        (e = cudaStreamCreate(&stream)) != cudaSuccess) {
        (void)cudaGetLastError();
        gt_err("CUDA GPU %d is not usable (%s: %s)", dev, cudaGetErrorName(e), cudaGetErrorString(e));
        return NULL;
    }
    device = dev;
    cublasStatus_t s = cublasCreate(&blas);
    if (s != CUBLAS_STATUS_SUCCESS) {
        gt_err("cuBLAS does not start on CUDA GPU %d (%s)", dev, cublasGetStatusName(s));
        return NULL;
    }
    CUBLAS_CHECK(cublasSetStream(blas, stream));
    const char *sync_each = getenv("GT_CUDA_SYNC");
    gt_cuda_sync_each = sync_each && strcmp(sync_each, "1") == 0;
    fill_struct(&gt_cuda_backend);
#ifdef GT_CUDA_EMU
    snprintf(gt_cuda_backend.description, sizeof gt_cuda_backend.description, "%.100s (kernels/cuda_emu.h)",
             prop.name);
#else
    snprintf(gt_cuda_backend.description, sizeof gt_cuda_backend.description,
             "GPU %d: %.100s (%.1f GiB, compute %d.%d)", dev, prop.name, (double)prop.totalGlobalMem / (1 << 30),
             prop.major, prop.minor);
#endif
    ready = 1;
    return &gt_cuda_backend;
}
