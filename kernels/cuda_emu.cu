/* cuda_emu.cu: the host emulation of the CUDA runtime and cuBLAS (kernels/cuda_emu.h says
 * what is emulated and how). Compiled only under `make CUDA=emu`; empty for nvcc.
 *
 * Device memory: one arena of ARENA_BYTES of address space reserved with PROT_NONE (and
 * MAP_NORESERVE: only pages written cost memory). Allocations are 256-byte aligned blocks of
 * it, first fit from a free list, freed pages returned to the system. The used part of the
 * arena is readable and writable only while a kernel, a copy or a cuBLAS call runs; a SIGSEGV
 * in the arena at any other time is host code touching device memory, and the handler says so
 * before the program aborts.
 * Cost: two mprotect calls per launch. Their cost grows with the pages they change (measured
 * on a 2-core VM: 7 ms per pair over 64 MiB of 4 KiB pages), so the arena asks for transparent
 * huge pages and changes whole 2 MiB units: about 0.25 ms per pair whatever the size. */
#ifdef GT_CUDA_EMU

#include "cuda_emu.h"

#include "lib/base/dist.h"

#include <cblas.h>
#include <map>
#include <memory>
#include <vector>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* ---- the arena --------------------------------------------------------------------------- */

static const size_t ARENA_BYTES = (size_t)64 << 30;
static const size_t ALIGN = 256;
static const size_t HUGE = (size_t)2 << 20; /* the unit of protection changes */

static char *arena;
static size_t arena_top;                   /* bytes of the arena ever handed out */
static std::map<size_t, size_t> live_blocks; /* offset -> size */
static std::map<size_t, size_t> free_blocks; /* offset -> size, coalesced */
static int protect = 1, access_depth, reverse_order;
static size_t protected_top; /* the part of the arena whose protection is managed */

static void say(const char *msg) {
    ssize_t r = write(2, msg, strlen(msg));
    (void)r;
}

/* The kernel running now (NULL: none), where it returns to when it faults, and the error
 * every later call reports once one has (cudaSuccess: none has). */
static const char *volatile running_kernel;
static sigjmp_buf kernel_fault;
static char *volatile fault_address;
static cudaError_t sticky = cudaSuccess;

static void on_segv(int sig, siginfo_t *si, void *ctx) {
    (void)ctx;
    char *a = (char *)si->si_addr;
    if (running_kernel) { /* a kernel's fault: end the kernel (gt_emu_run_kernel) */
        fault_address = a;
        siglongjmp(kernel_fault, 1);
    }
    if (arena && a >= arena && a < arena + ARENA_BYTES) {
        say("cuda emulation: host code touched device memory (a read or write outside a kernel, copy or "
            "cuBLAS call); it must go through the backend\n");
        signal(SIGABRT, SIG_DFL);
        abort();
    }
    signal(sig, SIG_DFL); /* not ours: fault again, as the program would without us */
}

static void arena_init(void) {
    if (arena) return;
    const char *p = getenv("GT_EMU_PROTECT");
    protect = !(p && strcmp(p, "0") == 0);
    const char *o = getenv("GT_EMU_ORDER");
    if (o && strcmp(o, "reverse") == 0) reverse_order = 1;
    void *m = mmap(NULL, ARENA_BYTES + HUGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        say("cuda emulation: cannot reserve the device arena\n");
        abort();
    }
    arena = (char *)(((uintptr_t)m + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
    madvise(arena, ARENA_BYTES, MADV_HUGEPAGE); /* advice only: without it protection is slower */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
}

static size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

/* Set the protection of the used part of the arena (in whole huge pages). */
static void arena_protect(int rw) {
    size_t top = (arena_top + HUGE - 1) / HUGE * HUGE;
    if (!protect) rw = 1;
    if (top > protected_top) { /* newly used pages start inaccessible (or open, unprotected) */
        if (mprotect(arena + protected_top, top - protected_top, rw ? PROT_READ | PROT_WRITE : PROT_NONE)) abort();
        protected_top = top;
    }
    if (protect && top && mprotect(arena, top, rw ? PROT_READ | PROT_WRITE : PROT_NONE)) abort();
}

void gt_emu_device_access(int on) {
    arena_init();
    if (on) {
        if (access_depth++ == 0) arena_protect(1);
    } else if (--access_depth == 0) {
        arena_protect(0);
    }
}

int gt_emu_is_device(const void *p, size_t bytes) {
    const char *c = (const char *)p;
    if (!arena || c < arena || c >= arena + arena_top) return 0;
    size_t off = (size_t)(c - arena);
    auto it = live_blocks.upper_bound(off);
    if (it == live_blocks.begin()) return 0;
    --it;
    return off + bytes <= it->first + it->second && off < it->first + it->second;
}

void gt_emu_bad_argument(const char *kernel, int index, const void *p) {
    fprintf(stderr, "cuda emulation: %s: argument %d (%p) is not device memory\n", kernel, index + 1, p);
    abort();
}

void gt_emu_bad_field(const char *kernel, int index, const char *path, const void *p) {
    fprintf(stderr, "cuda emulation: %s: argument %d, field %s (%p), is not device memory\n", kernel, index + 1,
            path + 1, p);
    abort();
}

void gt_emu_run_kernel(const char *name, void (*body)(void *), void *ctx) {
    if (sticky != cudaSuccess) return;
    gt_emu_device_access(1);
    if (sigsetjmp(kernel_fault, 1) == 0) {
        running_kernel = name;
        body(ctx);
    } else {
        sticky = cudaErrorIllegalAddress;
        fprintf(stderr, "cuda emulation: kernel %s touched %p, outside device memory; the next synchronising call "
                        "reports it, as on a GPU\n", name, (void *)fault_address);
    }
    running_kernel = NULL;
    gt_emu_device_access(0);
}

extern "C" void gt_emu_set_order(int reverse) { reverse_order = reverse; }
int gt_emu_reverse_order(void) { return reverse_order; }

/* ---- runtime ----------------------------------------------------------------------------- */

static cudaError_t last_error = cudaSuccess;

static cudaError_t fail(cudaError_t e, const char *what) {
    fprintf(stderr, "cuda emulation: %s\n", what);
    last_error = e;
    return e;
}

enum { MAX_DEVICES = 16 };

/* GT_EMU_DEVICES (1 to MAX_DEVICES; 1 when unset), 0 under GT_EMU_NO_GPU=1, -1 when invalid. */
static int emu_devices(void) {
    const char *no = getenv("GT_EMU_NO_GPU");
    if (no && strcmp(no, "1") == 0) return 0;
    const char *v = getenv("GT_EMU_DEVICES");
    if (!v || !*v) return 1;
    char *end;
    long n = strtol(v, &end, 10);
    return *end == 0 && n >= 1 && n <= MAX_DEVICES ? (int)n : -1;
}

cudaError_t cudaGetDeviceCount(int *count) {
    int n = emu_devices();
    *count = n > 0 ? n : 0;
    if (n < 0) return fail(cudaErrorInvalidValue, "GT_EMU_DEVICES must be a number of devices from 1 to 16");
    return n ? cudaSuccess : cudaErrorNoDevice;
}

static int valid_device(int dev) { return dev >= 0 && dev < emu_devices(); }

cudaError_t cudaSetDevice(int dev) { return valid_device(dev) ? cudaSuccess : cudaErrorInvalidDevice; }

cudaError_t cudaDeviceGetPCIBusId(char *bus_id, int len, int dev) {
    if (!bus_id || len < 13) return cudaErrorInvalidValue;
    if (!valid_device(dev)) return cudaErrorInvalidDevice;
    snprintf(bus_id, (size_t)len, "0000:%02x:00.0", dev + 1);
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int dev) {
    if (!valid_device(dev)) return cudaErrorInvalidDevice;
    memset(prop, 0, sizeof *prop);
    snprintf(prop->name, sizeof prop->name, "gan-tools host emulation");
    prop->totalGlobalMem = ARENA_BYTES;
    prop->major = 0;
    prop->minor = 0;
    prop->multiProcessorCount = 1;
    return cudaSuccess;
}

static cudaError_t capture_refuse(const char *what, const char *why);

cudaError_t cudaMalloc(void **p, size_t bytes) {
    if (gt_emu_capturing()) return capture_refuse("cudaMalloc", "memory must be allocated before the capture");
    arena_init();
    size_t n = (bytes + ALIGN - 1) / ALIGN * ALIGN;
    if (!n) n = ALIGN;
    for (auto it = free_blocks.begin(); it != free_blocks.end(); ++it)
        if (it->second >= n) {
            size_t off = it->first, rest = it->second - n;
            free_blocks.erase(it);
            if (rest) free_blocks[off + n] = rest;
            live_blocks[off] = n;
            *p = arena + off;
            return cudaSuccess;
        }
    if (arena_top + n > ARENA_BYTES) return fail(cudaErrorMemoryAllocation, "cudaMalloc: the arena is full");
    live_blocks[arena_top] = n;
    *p = arena + arena_top;
    arena_top += n;
    if (access_depth == 0) arena_protect(0); /* new pages join the protected part */
    return cudaSuccess;
}

cudaError_t cudaFree(void *p) {
    if (gt_emu_capturing()) return capture_refuse("cudaFree", "memory must outlive the graph's launches");
    if (!p) return cudaSuccess;
    char *c = (char *)p;
    size_t off = (size_t)(c - arena);
    auto it = arena && c >= arena ? live_blocks.find(off) : live_blocks.end();
    if (it == live_blocks.end()) return fail(cudaErrorInvalidDevicePointer, "cudaFree: not a device allocation");
    size_t n = it->second;
    live_blocks.erase(it);
    /* give whole pages back (their contents become zeros, as fresh device memory may be anything) */
    size_t ps = page_size(), a = (off + ps - 1) / ps * ps, b = (off + n) / ps * ps;
    if (b > a) madvise(arena + a, b - a, MADV_DONTNEED);
    auto nx = free_blocks.lower_bound(off);
    if (nx != free_blocks.end() && nx->first == off + n) {
        n += nx->second;
        free_blocks.erase(nx);
    }
    auto pv = free_blocks.lower_bound(off);
    if (pv != free_blocks.begin()) {
        --pv;
        if (pv->first + pv->second == off) {
            off = pv->first;
            n += pv->second;
            free_blocks.erase(pv);
        }
    }
    free_blocks[off] = n;
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
    if (gt_emu_capturing()) return capture_refuse("cudaMemcpy", "a synchronous copy waits for the device");
    if (sticky != cudaSuccess) return sticky;
    if (!bytes) return cudaSuccess;
    int dd = gt_emu_is_device(dst, bytes), sd = gt_emu_is_device(src, bytes);
    int dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    int src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if (kind == cudaMemcpyDefault) {
        dst_dev = dd;
        src_dev = sd;
    } else if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault) {
        return fail(cudaErrorInvalidMemcpyDirection, "cudaMemcpy: unknown direction");
    }
    char msg[200];
    if (dst_dev != dd || src_dev != sd) {
        snprintf(msg, sizeof msg, "cudaMemcpy(kind %d) of %zu bytes: the destination is %s, the source %s", (int)kind,
                 bytes, dd ? "device memory" : "not (all) device memory", sd ? "device memory" : "not (all) device memory");
        return fail(cudaErrorInvalidValue, msg);
    }
    /* a host side that lies partly in the arena is a bug too */
    if ((!dd && gt_emu_is_device(dst, 0)) || (!sd && gt_emu_is_device(src, 0)))
        return fail(cudaErrorInvalidValue, "cudaMemcpy: a copy runs past the end of a device allocation");
    /* overlapping ranges are undefined on a GPU (a copy is many threads, in no order) */
    const char *d0 = (const char *)dst, *s0 = (const char *)src;
    if (d0 < s0 + bytes && s0 < d0 + bytes) {
        snprintf(msg, sizeof msg,
                 "cudaMemcpy(kind %d) of %zu bytes: the source and destination overlap (%p, %p), which a GPU does "
                 "not copy reliably",
                 (int)kind, bytes, src, dst);
        return fail(cudaErrorInvalidValue, msg);
    }
    gt_emu_device_access(1);
    memcpy(dst, src, bytes);
    gt_emu_device_access(0);
    return cudaSuccess;
}

static cudaError_t capture_memcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind);
static cudaError_t capture_memset(void *p, int value, size_t bytes);

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s) {
    (void)s;
    if (gt_emu_capturing()) return capture_memcpy(dst, src, bytes, kind);
    return cudaMemcpy(dst, src, bytes, kind);
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t s) {
    (void)s;
    if (gt_emu_capturing()) return capture_memset(p, value, bytes);
    if (sticky != cudaSuccess) return sticky;
    if (!bytes) return cudaSuccess;
    if (!gt_emu_is_device(p, bytes)) return fail(cudaErrorInvalidValue, "cudaMemset: not (all) device memory");
    gt_emu_device_access(1);
    memset(p, value, bytes);
    gt_emu_device_access(0);
    return cudaSuccess;
}

struct gt_emu_stream {
    int unused;
};

cudaError_t cudaStreamCreate(cudaStream_t *s) {
    *s = new gt_emu_stream();
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
    delete s;
    return cudaSuccess;
}
struct gt_emu_event {
    int recorded;
};

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags) {
    (void)flags;
    *e = new gt_emu_event();
    return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
    delete e;
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    (void)s;
    if (!e) return cudaErrorInvalidValue;
    e->recorded = 1;
    return sticky;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags) {
    (void)s;
    if (!e || flags) return cudaErrorInvalidValue;
    if (!e->recorded) { /* a GPU would not wait: a bug in the caller's ordering */
        fprintf(stderr, "cuda emulation: cudaStreamWaitEvent on an event never recorded\n");
        return cudaErrorInvalidValue;
    }
    return sticky;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    (void)s;
    if (gt_emu_capturing()) return capture_refuse("cudaStreamSynchronize", "the host cannot wait for work not yet launched");
    return sticky;
}
cudaError_t cudaDeviceSynchronize(void) {
    if (gt_emu_capturing()) return capture_refuse("cudaDeviceSynchronize", "the host cannot wait for work not yet launched");
    return sticky;
}
cudaError_t cudaGetLastError(void) {
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}
cudaError_t cudaPeekAtLastError(void) { return last_error; }

const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorStreamCaptureUnmatched: return "cudaErrorStreamCaptureUnmatched";
    case cudaErrorGraphExecUpdateFailure: return "cudaErrorGraphExecUpdateFailure";
    }
    return "cudaErrorUnknown";
}

const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureUnmatched: return "capture was not initiated in this stream";
    case cudaErrorGraphExecUpdateFailure: return "the graph update was not performed because it included changes which violated constraints specific to instantiated graph update";
    }
    return "unknown error";
}

/* ---- cuBLAS ------------------------------------------------------------------------------ */

struct gt_emu_cublas {
    cublasMath_t math;
};

cublasStatus_t cublasCreate(cublasHandle_t *h) {
    openblas_set_num_threads(1); /* the emulation is one thread: no OpenBLAS threads spinning beside it */
    *h = new gt_emu_cublas{CUBLAS_DEFAULT_MATH};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t h) {
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
    (void)s;
    return h ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    h->math = mode;
    return CUBLAS_STATUS_SUCCESS;
}

static cublasStatus_t capture_sgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                     float alpha, const float *A, int lda, const float *B, int ldb, float beta, float *C,
                                     int ldc);

/* cuBLAS's argument checks (column-major: op(A) is m x k, A is lda-strided with lda >= its
 * rows), then column-major CBLAS with the same arguments on the device arrays. */
cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta,
                           float *C, int ldc) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    int arows = ta == CUBLAS_OP_N ? m : k, acols = ta == CUBLAS_OP_N ? k : m;
    int brows = tb == CUBLAS_OP_N ? k : n, bcols = tb == CUBLAS_OP_N ? n : k;
    if (m < 0 || n < 0 || k < 0 || lda < (arows > 1 ? arows : 1) || ldb < (brows > 1 ? brows : 1) ||
        ldc < (m > 1 ? m : 1)) {
        fprintf(stderr, "cuda emulation: cublasSgemm: bad sizes m=%d n=%d k=%d lda=%d ldb=%d ldc=%d\n", m, n, k, lda,
                ldb, ldc);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (gt_emu_capturing()) return capture_sgemm(h, ta, tb, m, n, k, *alpha, A, lda, B, ldb, *beta, C, ldc);
    if (m == 0 || n == 0 || sticky != cudaSuccess) return CUBLAS_STATUS_SUCCESS; /* after a fault: reported at the next sync */
    /* every element of the three matrices is device memory */
    size_t a_end = (size_t)(acols - 1) * lda + arows, b_end = (size_t)(bcols - 1) * ldb + brows,
           c_end = (size_t)(n - 1) * ldc + m;
    if ((k > 0 && (!gt_emu_is_device(A, a_end * 4) || !gt_emu_is_device(B, b_end * 4))) ||
        !gt_emu_is_device(C, c_end * 4)) {
        fprintf(stderr, "cuda emulation: cublasSgemm: a matrix is not (all) device memory\n");
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    gt_emu_device_access(1);
    cblas_sgemm(CblasColMajor, ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
                m, n, k, *alpha, A, lda, B, ldb, *beta, C, ldc);
    gt_emu_device_access(0);
    return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusName(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}

/* ---- NCCL -------------------------------------------------------------------------------- */

struct gt_emu_nccl {
    dist_t d; /* the run's processes, as lib/base/dist.c sums over them (MPI_COMM_WORLD) */
};

ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
    if (!id) return ncclInvalidArgument;
    /* random enough that a rank given another run's id (or none) is caught below */
    static uint64_t calls;
    uint64_t x = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull ^ (uint64_t)time(NULL) ^ ++calls * 0xbf58476d1ce4e5b9ull;
    for (int i = 0; i < NCCL_UNIQUE_ID_BYTES; i++) {
        x ^= x >> 31;
        x *= 0x94d049bb133111ebull;
        x ^= x >> 29;
        id->internal[i] = (char)(x >> 56);
    }
    return ncclSuccess;
}

/* A collective over every process: each must give the same id, which the sum of every rank's
 * 32-bit hash of it (exact in double) shows: nranks times one's own hash on each. */
ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank) {
    if (!comm || nranks < 1 || rank < 0 || rank >= nranks) return ncclInvalidArgument;
    gt_emu_nccl *c = new gt_emu_nccl;
    memset(&c->d, 0, sizeof c->d);
    c->d.rank = rank;
    c->d.size = nranks;
    uint32_t h = 2166136261u;
    for (int i = 0; i < NCCL_UNIQUE_ID_BYTES; i++) h = (h ^ (unsigned char)id.internal[i]) * 16777619u;
    double v[2] = {(double)h, 1.0};
    dist_sum_f64(&c->d, v, 2);
    if (v[1] != nranks || v[0] != (double)nranks * h) {
        fprintf(stderr, "cuda emulation: ncclCommInitRank: %s\n",
                v[1] != nranks ? "the run has another number of processes than nranks"
                               : "the ranks were given different unique ids");
        delete c;
        return ncclInvalidUsage;
    }
    *comm = c;
    return ncclSuccess;
}

static int nccl_group_depth;
ncclResult_t ncclGroupStart(void) {
    nccl_group_depth++;
    return ncclSuccess;
}
ncclResult_t ncclGroupEnd(void) {
    if (nccl_group_depth <= 0) return ncclInvalidUsage;
    nccl_group_depth--;
    return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
    delete comm;
    return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count, ncclDataType_t type, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream) {
    (void)stream; /* one implicit order: done on return */
    if (gt_emu_capturing()) {
        capture_refuse("ncclAllReduce", "the emulation records no collectives");
        return ncclInvalidUsage;
    }
    if (!comm || op != ncclSum || (type != ncclFloat && type != ncclDouble)) return ncclInvalidArgument;
    size_t bytes = count * (type == ncclDouble ? 8 : 4);
    if (count == 0) return ncclSuccess;
    if (sticky != cudaSuccess) return ncclUnhandledCudaError;
    if (!gt_emu_is_device(send, bytes) || !gt_emu_is_device(recv, bytes)) {
        fprintf(stderr, "cuda emulation: ncclAllReduce: a buffer is not (all) device memory\n");
        return ncclInvalidArgument;
    }
    gt_emu_device_access(1);
    const char *s0 = (const char *)send, *r0 = (const char *)recv;
    if (send != recv && s0 < r0 + bytes && r0 < s0 + bytes) {
        fprintf(stderr, "cuda emulation: ncclAllReduce: the buffers overlap without being one (in place)\n");
        return ncclInvalidArgument;
    }
    if (send != recv) memcpy(recv, send, bytes);
    if (type == ncclDouble) dist_sum_f64(&comm->d, (double *)recv, count);
    else dist_sum_f32(&comm->d, (float *)recv, count);
    gt_emu_device_access(0);
    return ncclSuccess;
}

/* the in-place reduce and broadcast of the sharded optimizer (dist_nccl.cu), run when called */
static ncclResult_t nccl_rooted(const char *what, const void *send, void *recv, size_t count, ncclDataType_t type,
                                int root, ncclComm_t comm) {
    if (gt_emu_capturing()) {
        capture_refuse(what, "the emulation records no collectives");
        return ncclInvalidUsage;
    }
    if (!comm || root < 0 || root >= comm->d.size || (type != ncclFloat && type != ncclDouble)) return ncclInvalidArgument;
    if (count == 0) return ncclSuccess;
    if (sticky != cudaSuccess) return ncclUnhandledCudaError;
    size_t bytes = count * (type == ncclDouble ? 8 : 4);
    if (send != recv || !gt_emu_is_device(recv, bytes)) {
        fprintf(stderr, "cuda emulation: %s: only in place, on device memory\n", what);
        return ncclInvalidArgument;
    }
    return ncclSuccess;
}

ncclResult_t ncclReduce(const void *send, void *recv, size_t count, ncclDataType_t type, ncclRedOp_t op, int root,
                        ncclComm_t comm, cudaStream_t stream) {
    (void)stream;
    ncclResult_t r = nccl_rooted("ncclReduce", send, recv, count, type, root, comm);
    if (r != ncclSuccess || count == 0) return r;
    if (op != ncclSum || type != ncclFloat) return ncclInvalidArgument;
    gt_emu_device_access(1);
    dist_reduce_to(&comm->d, (float *)recv, count, root);
    gt_emu_device_access(0);
    return ncclSuccess;
}

ncclResult_t ncclBroadcast(const void *send, void *recv, size_t count, ncclDataType_t type, int root,
                           ncclComm_t comm, cudaStream_t stream) {
    (void)stream;
    ncclResult_t r = nccl_rooted("ncclBroadcast", send, recv, count, type, root, comm);
    if (r != ncclSuccess || count == 0) return r;
    gt_emu_device_access(1);
    dist_bcast_from(&comm->d, recv, count * (type == ncclDouble ? 8 : 4), root);
    gt_emu_device_access(0);
    return ncclSuccess;
}

const char *ncclGetErrorString(ncclResult_t r) {
    switch (r) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error";
    case ncclSystemError: return "unhandled system error";
    case ncclInternalError: return "internal error";
    case ncclInvalidArgument: return "invalid argument";
    case ncclInvalidUsage: return "invalid usage";
    }
    return "unknown result code";
}

/* ---- graphs ------------------------------------------------------------------------------ */
/* Stream capture as the real runtime does it for one stream: between cudaStreamBeginCapture and
 * cudaStreamEndCapture, kernel launches (cuda_emu.h gt_emu_launch), device-to-device copies,
 * memsets and cuBLAS calls are recorded in order, with copies of their arguments (cuBLAS's alpha
 * and beta by value, as in host pointer mode), and not run; cudaGraphLaunch runs the nodes in
 * that order, each with the checks it has when called directly. What a real capture refuses is
 * refused with a message, and invalidates the capture (cudaStreamEndCapture then fails with
 * cudaErrorStreamCaptureInvalidated): a synchronous copy, a copy with a host side, a stream or
 * device synchronisation, cudaMalloc and cudaFree (global capture mode), and, as the emulation
 * records no collectives, ncclAllReduce. Host code that reads or writes device memory faults
 * as at any other time (the arena stays closed: nothing runs during a capture).
 * cudaGraphExecUpdate takes the new graph's parameters when the graphs have the same nodes in
 * the same order (the same count and, node by node, the same kind; a copy also the same
 * direction, a memset the same size), as the real update requires of a chain of nodes; a kernel
 * node may change its kernel (allowed within one context). Otherwise it fails, leaving the
 * instantiated graph as it was, with cudaErrorGraphExecUpdateFailure and the reason. */

struct gt_emu_graph_node {
    int kind;
    const void *fn;  /* a kernel node's kernel */
    size_t param;    /* a copy's direction, a memset's bytes */
    const char *name;
    void (*run)(void *);
    std::shared_ptr<void> ctx; /* the recorded arguments, shared by the graphs made from this one */
};

struct gt_emu_graph {
    std::vector<gt_emu_graph_node> nodes;
    int exec; /* instantiated (cudaGraphInstantiate) */
};

static gt_emu_graph *capture;  /* the graph being recorded (NULL: no capture open) */
static int capture_invalid;    /* an operation the capture refuses was called */

int gt_emu_capturing(void) { return capture != NULL; }

void gt_emu_record(int kind, const void *fn, size_t param, const char *name, void (*run)(void *), void *ctx,
                   void (*drop)(void *)) {
    capture->nodes.push_back(gt_emu_graph_node{kind, fn, param, name, run, std::shared_ptr<void>(ctx, drop)});
}

static cudaError_t capture_refuse(const char *what, const char *why) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s during a stream capture (a CUDA graph cannot hold it: %s); the capture is invalid",
             what, why);
    capture_invalid = 1;
    return fail(cudaErrorStreamCaptureUnsupported, msg);
}

/* a recorded node that calls fn(args) when the graph runs */
template <typename F> static void record(int kind, size_t param, const char *name, F fn) {
    F *c = new F(fn);
    gt_emu_record(kind, NULL, param, name, [](void *p) { (*static_cast<F *>(p))(); }, c,
                  [](void *p) { delete static_cast<F *>(p); });
}

static cudaError_t capture_memcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
    if (kind != cudaMemcpyDeviceToDevice || !gt_emu_is_device(dst, bytes) || !gt_emu_is_device(src, bytes))
        return capture_refuse("cudaMemcpyAsync between host and device memory",
                              "a host buffer's contents are read or written when the graph runs, not now; copy "
                              "outside the capture");
    record(GT_EMU_NODE_MEMCPY, (size_t)kind, "cudaMemcpyAsync", [=]() { (void)cudaMemcpy(dst, src, bytes, kind); });
    return cudaSuccess;
}

static cudaError_t capture_memset(void *p, int value, size_t bytes) {
    if (bytes && !gt_emu_is_device(p, bytes)) return fail(cudaErrorInvalidValue, "cudaMemset: not (all) device memory");
    record(GT_EMU_NODE_MEMSET, bytes, "cudaMemsetAsync", [=]() { (void)cudaMemsetAsync(p, value, bytes, NULL); });
    return cudaSuccess;
}

static cublasStatus_t capture_sgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                     float alpha, const float *A, int lda, const float *B, int ldb, float beta, float *C,
                                     int ldc) {
    record(GT_EMU_NODE_KERNEL, 0, "cublasSgemm",
           [=]() { (void)cublasSgemm(h, ta, tb, m, n, k, &alpha, A, lda, B, ldb, &beta, C, ldc); });
    return CUBLAS_STATUS_SUCCESS;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode) {
    (void)s;
    (void)mode; /* every mode refuses what the emulation refuses (one thread, one stream) */
    if (capture) return fail(cudaErrorStreamCaptureUnsupported, "cudaStreamBeginCapture: the stream is capturing already");
    capture = new gt_emu_graph{{}, 0};
    capture_invalid = 0;
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *graph) {
    (void)s;
    if (!capture) return fail(cudaErrorStreamCaptureUnmatched, "cudaStreamEndCapture: no capture was begun");
    gt_emu_graph *g = capture;
    capture = NULL;
    if (capture_invalid) {
        delete g;
        *graph = NULL;
        return fail(cudaErrorStreamCaptureInvalidated, "cudaStreamEndCapture: the capture was invalidated (above)");
    }
    *graph = g;
    return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus *status) {
    (void)s;
    *status = !capture ? cudaStreamCaptureStatusNone
                       : capture_invalid ? cudaStreamCaptureStatusInvalidated : cudaStreamCaptureStatusActive;
    return cudaSuccess;
}

cudaError_t cudaGraphGetNodes(cudaGraph_t g, cudaGraphNode_t *nodes, size_t *count) {
    if (!g || !count) return fail(cudaErrorInvalidValue, "cudaGraphGetNodes: no graph");
    if (nodes)
        for (size_t i = 0; i < *count && i < g->nodes.size(); i++) nodes[i] = &g->nodes[i];
    *count = g->nodes.size();
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t g, unsigned long long flags) {
    if (!g || g->exec || flags) return fail(cudaErrorInvalidValue, "cudaGraphInstantiate: not a graph, or flags");
    if (capture) return capture_refuse("cudaGraphInstantiate", "instantiate after the capture ends");
    *exec = new gt_emu_graph{g->nodes, 1};
    return cudaSuccess;
}

cudaError_t cudaGraphExecUpdate(cudaGraphExec_t exec, cudaGraph_t g, cudaGraphExecUpdateResultInfo *info) {
    if (!exec || !exec->exec || !g || g->exec) return fail(cudaErrorInvalidValue, "cudaGraphExecUpdate: bad arguments");
    cudaGraphExecUpdateResult r = cudaGraphExecUpdateSuccess;
    cudaGraphNode_t bad = NULL;
    if (exec->nodes.size() != g->nodes.size()) r = cudaGraphExecUpdateErrorTopologyChanged;
    for (size_t i = 0; r == cudaGraphExecUpdateSuccess && i < g->nodes.size(); i++) {
        const gt_emu_graph_node &a = exec->nodes[i], &b = g->nodes[i];
        if (a.kind != b.kind) r = cudaGraphExecUpdateErrorNodeTypeChanged;
        else if (a.kind != GT_EMU_NODE_KERNEL && a.param != b.param) r = cudaGraphExecUpdateErrorParametersChanged;
        if (r != cudaGraphExecUpdateSuccess) bad = &g->nodes[i];
    }
    if (info) {
        info->result = r;
        info->errorNode = bad;
        info->errorFromNode = NULL;
    }
    if (r != cudaGraphExecUpdateSuccess) return cudaErrorGraphExecUpdateFailure; /* not sticky: no message */
    exec->nodes = g->nodes;
    return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s) {
    (void)s;
    if (!exec || !exec->exec) return fail(cudaErrorInvalidValue, "cudaGraphLaunch: not an instantiated graph");
    if (capture) return capture_refuse("cudaGraphLaunch", "the emulation records no graphs inside graphs");
    if (sticky != cudaSuccess) return sticky;
    cudaError_t before = last_error;
    last_error = cudaSuccess;
    for (gt_emu_graph_node &n : exec->nodes) n.run(n.ctx.get()); /* in order: the capture's one stream */
    cudaError_t e = last_error; /* a node's own failure (a copy's check), reported by the launch */
    if (e == cudaSuccess) last_error = before;
    return e;
}

cudaError_t cudaGraphDestroy(cudaGraph_t g) {
    if (g && g->exec) return fail(cudaErrorInvalidValue, "cudaGraphDestroy: an instantiated graph (cudaGraphExecDestroy)");
    delete g;
    return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
    if (exec && !exec->exec) return fail(cudaErrorInvalidValue, "cudaGraphExecDestroy: not an instantiated graph");
    delete exec;
    return cudaSuccess;
}

#endif
