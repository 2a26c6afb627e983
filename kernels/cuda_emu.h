/* cuda_emu.h: the host emulation of the CUDA runtime and cuBLAS calls that kernels/ uses, for
 * `make CUDA=emu` (ARCHITECTURE.md, "One training step"): the same kernels/ sources, compiled as
 * C++17 by the host compiler against this header instead of <cuda_runtime.h> and
 * <cublas_v2.h>, so that the GPU code runs, and is tested, on machines without a GPU.
 *
 *   kernels    __global__ functions are plain functions; a launch (gt_emu_launch, through
 *              kernels/cuda_check.h's GT_LAUNCH) runs every block and every thread of the grid
 *              in loops with blockIdx/threadIdx set, one thread after the other. Kernels that
 *              emulation runs must not rely on __syncthreads or shared memory (they have
 *              neither here); each thread's work must be independent of the others', which
 *              gt_emu_set_order(1) (or GT_EMU_ORDER=reverse) tests by running the threads in
 *              reverse order.
 *   memory     device memory is one arena of host address space, reserved up front. While no
 *              kernel, copy or cuBLAS call runs, the arena is inaccessible (PROT_NONE), so host
 *              code that reads or writes device memory faults, and a handler names the fault
 *              ("host code touched device memory ..."). GT_EMU_PROTECT=0 turns this off
 *              (faster: benchmarks). cudaMemcpy checks that each side is where its kind says
 *              (device memory for a device side, host memory for a host side), within one
 *              allocation, and that source and destination do not overlap (undefined on a
 *              GPU); a kernel's pointer arguments must be device memory or NULL, and so must
 *              the pointers held in its arguments of class type (functors, argument structs:
 *              gt_emu_check_value walks their fields).
 *              Failures print what was wrong on stderr and return an error code, which the
 *              caller's check (cuda_check.h) reports with file and line. A kernel that faults
 *              (touches memory outside the open part of the arena) is stopped and, as on a GPU,
 *              the next synchronising call reports cudaErrorIllegalAddress (GT_CUDA_SYNC=1
 *              makes that the call right after the launch, cuda_check.h).
 *   streams    there is one implicit order: every call completes before it returns (events
 *              and NCCL groups check their use and do nothing else).
 *   graphs     stream capture records launches, cuBLAS calls, device copies and memsets (with
 *              copies of their arguments) instead of running them; cudaGraphLaunch runs them in
 *              order; cudaGraphExecUpdate needs the same nodes in the same order. What a real
 *              capture refuses (a synchronous or host copy, a sync, cudaMalloc, cudaFree) is
 *              refused with a message and invalidates the capture (cuda_emu.cu, "graphs").
 *   cuBLAS     cublasSgemm calls column-major cblas_sgemm with exactly the arguments given
 *              (after cuBLAS's own argument checks), so the row-major to column-major mapping
 *              (kernels/gemm_map.h) is exercised for real. TF32 math mode is recorded, and
 *              computed in full float32.
 *   devices    GT_EMU_DEVICES=N devices (1 to 16; default 1, a one-GPU machine), each
 *              "gan-tools host emulation", device i with PCI bus id 0000:(i+1):00.0, so that
 *              processes of one run that pick the same device show the same bus id (the data-
 *              parallel runs' one-GPU-per-rank check, kernels/dist_nccl.cu); each process has its
 *              own memory whichever device it picks. GT_EMU_NO_GPU=1 makes cudaGetDeviceCount
 *              report none (to test the no-GPU paths).
 *   NCCL       the calls of kernels/dist_nccl.cu: a communicator is every process of the
 *              MPI run (lib/base/dist.h), and ncclAllReduce sums device memory with MPI_Allreduce
 *              (ncclReduce, in place only, with MPI_Reduce; ncclBroadcast, in place only, with MPI_Bcast)
 *              (dist_sum_*), as the real one sums with every rank's result the same bits. The
 *              unique id is random bytes, and ncclCommInitRank checks that every rank was
 *              given the same id, so the bootstrap's broadcast is exercised too. Needs a
 *              build with MPI (without it there is never more than one process).
 * The emulation counts nothing itself: the backend counts launches (cuda_check.h). */
#ifndef GT_CUDA_EMU_H
#define GT_CUDA_EMU_H

#ifdef __CUDACC__
#error "cuda_emu.h is for the host emulation; nvcc uses the real runtime"
#endif

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <cmath>
#include <cstdio>
#include <type_traits>
#include <utility>

/* ---- language ---------------------------------------------------------------------------- */
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint3 {
    unsigned x, y, z;
};
inline uint3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;

/* ---- runtime types ---------------------------------------------------------------------- */
/* the values are the real runtime's, so that error names and codes read the same */
enum cudaError_t {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidDevicePointer = 17,
    cudaErrorInvalidMemcpyDirection = 21,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101,
    cudaErrorIllegalAddress = 700,
    cudaErrorStreamCaptureUnsupported = 900,
    cudaErrorStreamCaptureInvalidated = 901,
    cudaErrorStreamCaptureUnmatched = 903,
    cudaErrorGraphExecUpdateFailure = 910
};
enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4
};
typedef struct gt_emu_stream *cudaStream_t;
typedef struct gt_emu_event *cudaEvent_t;
enum { cudaEventDisableTiming = 2 };
struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem;
    int major, minor, multiProcessorCount;
};

cudaError_t cudaGetDeviceCount(int *count);
cudaError_t cudaSetDevice(int dev);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int dev);
cudaError_t cudaDeviceGetPCIBusId(char *bus_id, int len, int dev);
cudaError_t cudaMalloc(void **p, size_t bytes);
cudaError_t cudaFree(void *p);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s);
cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t s);
cudaError_t cudaStreamCreate(cudaStream_t *s);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
/* events order streams on a GPU; here every call is done on return, so they only check their
 * arguments (an event recorded before a stream waits for it) */
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaGetLastError(void);
cudaError_t cudaPeekAtLastError(void);
const char *cudaGetErrorName(cudaError_t e);
const char *cudaGetErrorString(cudaError_t e);

/* ---- graphs (stream capture; cuda_emu.cu "graphs" says what is emulated) ------------------ */
enum cudaStreamCaptureMode {
    cudaStreamCaptureModeGlobal = 0,
    cudaStreamCaptureModeThreadLocal = 1,
    cudaStreamCaptureModeRelaxed = 2
};
enum cudaStreamCaptureStatus {
    cudaStreamCaptureStatusNone = 0,
    cudaStreamCaptureStatusActive = 1,
    cudaStreamCaptureStatusInvalidated = 2
};
enum cudaGraphExecUpdateResult {
    cudaGraphExecUpdateSuccess = 0,
    cudaGraphExecUpdateError = 1,
    cudaGraphExecUpdateErrorTopologyChanged = 2,
    cudaGraphExecUpdateErrorNodeTypeChanged = 3,
    cudaGraphExecUpdateErrorParametersChanged = 5
};
typedef struct gt_emu_graph *cudaGraph_t;
typedef struct gt_emu_graph *cudaGraphExec_t; /* an instantiated graph is a graph of its own */
typedef struct gt_emu_graph_node *cudaGraphNode_t;
struct cudaGraphExecUpdateResultInfo {
    cudaGraphExecUpdateResult result;
    cudaGraphNode_t errorNode, errorFromNode;
};

cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *graph);
cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus *status);
cudaError_t cudaGraphGetNodes(cudaGraph_t g, cudaGraphNode_t *nodes, size_t *count);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t g, unsigned long long flags = 0);
cudaError_t cudaGraphExecUpdate(cudaGraphExec_t exec, cudaGraph_t g, cudaGraphExecUpdateResultInfo *info);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s);
cudaError_t cudaGraphDestroy(cudaGraph_t g);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);

/* ---- cuBLAS types ------------------------------------------------------------------------ */
enum cublasStatus_t {
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_NOT_INITIALIZED = 1,
    CUBLAS_STATUS_INVALID_VALUE = 7
};
enum cublasOperation_t { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 };
enum cublasMath_t { CUBLAS_DEFAULT_MATH = 0, CUBLAS_TF32_TENSOR_OP_MATH = 3 };
typedef struct gt_emu_cublas *cublasHandle_t;

cublasStatus_t cublasCreate(cublasHandle_t *h);
cublasStatus_t cublasDestroy(cublasHandle_t h);
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s);
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode);
cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta,
                           float *C, int ldc);
const char *cublasGetStatusName(cublasStatus_t s);

/* ---- NCCL types (the values are NCCL's) --------------------------------------------------- */
enum ncclResult_t {
    ncclSuccess = 0,
    ncclUnhandledCudaError = 1,
    ncclSystemError = 2,
    ncclInternalError = 3,
    ncclInvalidArgument = 4,
    ncclInvalidUsage = 5
};
enum ncclDataType_t { ncclFloat32 = 7, ncclFloat = 7, ncclFloat64 = 9, ncclDouble = 9 };
enum ncclRedOp_t { ncclSum = 0 };
#define NCCL_UNIQUE_ID_BYTES 128
typedef struct {
    char internal[NCCL_UNIQUE_ID_BYTES];
} ncclUniqueId;
typedef struct gt_emu_nccl *ncclComm_t;

ncclResult_t ncclGetUniqueId(ncclUniqueId *id);
ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank);
ncclResult_t ncclCommDestroy(ncclComm_t comm);
ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count, ncclDataType_t type, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclReduce(const void *send, void *recv, size_t count, ncclDataType_t type, ncclRedOp_t op, int root,
                        ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclBroadcast(const void *send, void *recv, size_t count, ncclDataType_t type, int root,
                           ncclComm_t comm, cudaStream_t stream);
const char *ncclGetErrorString(ncclResult_t r);
/* a group's all-reduces run at its end on a GPU; here each runs when called, and the group
 * only checks that starts and ends pair up (ncclGroupEnd without a start: ncclInvalidUsage) */
ncclResult_t ncclGroupStart(void);
ncclResult_t ncclGroupEnd(void);

/* ---- kernel launches ---------------------------------------------------------------------- */

/* Device memory is reachable (1) or not (0): the launcher, copies and cuBLAS open it. */
void gt_emu_device_access(int on);
/* Whether [p, p + bytes) lies in one live device allocation (bytes 0: p is in one). */
int gt_emu_is_device(const void *p, size_t bytes);
/* Report a kernel argument that is not device memory and end the program. */
[[noreturn]] void gt_emu_bad_argument(const char *kernel, int index, const void *p);
/* Run grids' threads in reverse order (1) or in order (0). */
extern "C" void gt_emu_set_order(int reverse);
int gt_emu_reverse_order(void);

/* ---- pointers inside argument structs ----------------------------------------------------
 * A kernel's arguments of class type (reduce.h's functors, argument structs, geometries) are
 * walked field by field, recursively, and every pointer found must be device memory or NULL,
 * as a direct argument must: a host pointer, or one into device memory no longer allocated,
 * ends the program naming the kernel, the argument and the field's path. The walk needs no
 * list of fields: an aggregate's field count is the most initializers T{...} accepts
 * (gt_emu_any converts to anything), and a structured binding of that many names yields the
 * fields. So a class-type argument must be an aggregate of at most 16 fields without array
 * members; anything else fails to compile here (a static_assert says so), never goes
 * unchecked. */
[[noreturn]] void gt_emu_bad_field(const char *kernel, int index, const char *path, const void *p);

struct gt_emu_any {
    template <class U> operator U() const;
};
template <std::size_t> using gt_emu_any_t = gt_emu_any;
template <class T, class Seq, class = void> struct gt_emu_inits : std::false_type {};
template <class T, std::size_t... I>
struct gt_emu_inits<T, std::index_sequence<I...>, std::void_t<decltype(T{gt_emu_any_t<I>{}...})>> : std::true_type {};
template <class T, std::size_t N = 0> constexpr std::size_t gt_emu_field_count() {
    if constexpr (N < 17 && gt_emu_inits<T, std::make_index_sequence<N + 1>>::value)
        return gt_emu_field_count<T, N + 1>();
    else
        return N;
}

template <typename T> void gt_emu_check_value(const char *kernel, int index, char *path, std::size_t len, const T &a);

template <typename... F>
void gt_emu_check_fields(const char *kernel, int index, char *path, std::size_t len, const F &...f) {
    int k = 0;
    auto one = [&](const auto &x) {
        std::snprintf(path + len, 64 - len, ".%d", ++k);
        gt_emu_check_value(kernel, index, path, std::strlen(path), x);
    };
    (one(f), ...);
    (void)one;
}

#define GT_EMU_BIND(...)                                                                          \
    {                                                                                             \
        const auto &[__VA_ARGS__] = a;                                                            \
        gt_emu_check_fields(kernel, index, path, len, __VA_ARGS__);                               \
    }
template <typename T> void gt_emu_check_value(const char *kernel, int index, char *path, std::size_t len, const T &a) {
    if constexpr (std::is_pointer<T>::value) {
        if (a && !gt_emu_is_device((const void *)a, 0)) {
            if (len) gt_emu_bad_field(kernel, index, path, (const void *)a);
            gt_emu_bad_argument(kernel, index, (const void *)a);
        }
    } else if constexpr (std::is_class<T>::value) {
        static_assert(std::is_aggregate<T>::value,
                      "a kernel argument of class type must be an aggregate, so that the emulation can check "
                      "the pointers it holds (kernels/cuda_emu.h)");
        constexpr std::size_t n = gt_emu_field_count<T>();
        static_assert(n >= 1 && n <= 16, "a kernel argument struct must have 1 to 16 fields (kernels/cuda_emu.h)");
        if constexpr (n == 1) GT_EMU_BIND(f1)
        else if constexpr (n == 2) GT_EMU_BIND(f1, f2)
        else if constexpr (n == 3) GT_EMU_BIND(f1, f2, f3)
        else if constexpr (n == 4) GT_EMU_BIND(f1, f2, f3, f4)
        else if constexpr (n == 5) GT_EMU_BIND(f1, f2, f3, f4, f5)
        else if constexpr (n == 6) GT_EMU_BIND(f1, f2, f3, f4, f5, f6)
        else if constexpr (n == 7) GT_EMU_BIND(f1, f2, f3, f4, f5, f6, f7)
        else if constexpr (n == 8) GT_EMU_BIND(f1, f2, f3, f4, f5, f6, f7, f8)
        else if constexpr (n == 9) GT_EMU_BIND(f1, f2, f3, f4, f5, f6, f7, f8, f9)
        else if constexpr (n == 10) GT_EMU_BIND(f1, f2, f3, f4, f5, f6, f7, f8, f9, f10)
        else if constexpr (n == 11) GT_EMU_BIND(f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11)
        else if constexpr (n == 12) GT_EMU_BIND(f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12)
        else if constexpr (n == 13) GT_EMU_BIND(f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13)
        else if constexpr (n == 14) GT_EMU_BIND(f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14)
        else if constexpr (n == 15) GT_EMU_BIND(f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15)
        else GT_EMU_BIND(f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16)
    }
    (void)kernel, (void)index, (void)path, (void)len, (void)a;
}
#undef GT_EMU_BIND

template <typename T> inline void gt_emu_check_arg(const char *kernel, int index, const T &a) {
    char path[64] = "";
    gt_emu_check_value(kernel, index, path, 0, a);
}

/* Run body(ctx), the grid of kernel `name`, with device memory open. A memory fault inside it
 * ends the kernel and, as on a GPU, is reported by the next synchronising call
 * (cudaStreamSynchronize, a copy: cudaErrorIllegalAddress), not by the launch; after it every
 * call fails the same way (the context is lost) and kernels no longer run. */
void gt_emu_run_kernel(const char *name, void (*body)(void *), void *ctx);

/* Every block, every thread: x fastest, as hardware numbers them; in reverse when asked. */
template <typename Kernel, typename... Args>
void gt_emu_launch_now(const char *name, dim3 grid, dim3 block, Kernel kernel, Args... args) {
    int idx = 0;
    (gt_emu_check_arg(name, idx++, args), ...);
    auto grid_loops = [&]() {
        gridDim = grid;
        blockDim = block;
        unsigned long nb = (unsigned long)grid.x * grid.y * grid.z, nt = (unsigned long)block.x * block.y * block.z;
        int rev = gt_emu_reverse_order();
        for (unsigned long b0 = 0; b0 < nb; b0++) {
            unsigned long b = rev ? nb - 1 - b0 : b0;
            blockIdx.x = (unsigned)(b % grid.x);
            blockIdx.y = (unsigned)(b / grid.x % grid.y);
            blockIdx.z = (unsigned)(b / grid.x / grid.y);
            for (unsigned long t0 = 0; t0 < nt; t0++) {
                unsigned long t = rev ? nt - 1 - t0 : t0;
                threadIdx.x = (unsigned)(t % block.x);
                threadIdx.y = (unsigned)(t / block.x % block.y);
                threadIdx.z = (unsigned)(t / block.x / block.y);
                kernel(args...);
            }
        }
    };
    gt_emu_run_kernel(name, [](void *c) { (*static_cast<decltype(grid_loops) *>(c))(); }, &grid_loops);
}

/* While a capture is open (cudaStreamBeginCapture) a launch is recorded, not run: node kind
 * GT_EMU_NODE_KERNEL of the kernel `fn`, running `run` when the graph is launched. */
enum { GT_EMU_NODE_KERNEL = 1, GT_EMU_NODE_MEMCPY = 2, GT_EMU_NODE_MEMSET = 3 };
int gt_emu_capturing(void);
void gt_emu_record(int kind, const void *fn, size_t param, const char *name, void (*run)(void *), void *ctx,
                   void (*drop)(void *));

/* A launch: run now, or, while capturing, check the arguments now (as a captured launch's
 * configuration is checked) and record a copy of them, with which the graph's launch runs the
 * grid (checking the pointers again: a buffer freed since the capture is caught). */
template <typename Kernel, typename... Args>
void gt_emu_launch(const char *name, dim3 grid, dim3 block, Kernel kernel, Args... args) {
    if (!gt_emu_capturing()) {
        gt_emu_launch_now(name, grid, block, kernel, args...);
        return;
    }
    int idx = 0;
    (gt_emu_check_arg(name, idx++, args), ...);
    auto node = new auto([=]() { gt_emu_launch_now(name, grid, block, kernel, args...); });
    typedef std::remove_reference_t<decltype(*node)> node_t;
    gt_emu_record(GT_EMU_NODE_KERNEL, reinterpret_cast<const void *>(kernel), 0, name,
                  [](void *c) { (*static_cast<node_t *>(c))(); }, node, [](void *c) { delete static_cast<node_t *>(c); });
}

#endif
