/* backend.h: the compute backend interface (ARCHITECTURE.md, "The backend contract").
 *
 * A backend is a struct of function pointers (ggml style): memory on its device, the one
 * row-major GEMM entry point, and every other operation that loops over tensor data: the
 * layers' passes, losses, the training step's bookkeeping, optimizers, random fills.
 * Layers (lib/nn/layer_*.c), the training step (lib/gan/trainer.c), the sampler (lib/gan/sampler.c),
 * the model and its checkpoints (lib/gan/model.c, checkpoint.c) and the programs (cmd/) call these and never read or write tensor memory
 * themselves, so one layer file serves every device. The memory, data-parallel and GEMM slots
 * are written out below; the compute operations are listed once, with their contracts, in
 * backend_ops.h, from which the slots, both backends' prototypes and both structs are made.
 * Two implementations, whose files pair one to one (X.c with X.cu, backend_cpu.c with
 * backend_cuda.cu, dist_mpi.c with dist_nccl.cu):
 *   CPU   lib/cpu/: backend_cpu.c (memory, gemm, thread pool, the struct; cpu_ops.h),
 *         dist_mpi.c, layers.c, norm.c, conv.c, pool.c, inception.c, train.c, optim.c, class.c,
 *         sn.c
 *   CUDA  kernels/: backend_cuda.cu (the same; cuda_ops.h), dist_nccl.cu, graph.cu, layers.cu, norm.cu,
 *         conv.cu, pool.cu, inception.cu, train.cu, optim.cu, class.cu, sn.cu; built with `make CUDA=1`,
 *         or as a host emulation with `make CUDA=emu` (kernels/cuda_emu.h).
 * The per-element arithmetic of every operation is written once, in `GT_HD static inline`
 * functions (lib/base/hd.h) in lib/backend/act_math.h, norm_math.h, loss_math.h, opt_math.h,
 * train_math.h, class_math.h, sn_math.h and philox.h; the CPU loops and the CUDA kernels both call them, so the CPU
 * tests check the GPU's arithmetic. Only indexing, reductions, launches and memory differ.
 *
 * Conventions for every operation below and in backend_ops.h:
 *  - Pointers to tensor data are device pointers of this backend (from alloc, or from
 *    upload_const); on the CPU backend they are host pointers. Shapes are in the comments;
 *    "n" counts elements. Outputs come first, then inputs, then sizes.
 *  - Operations are queued in order on the backend's one stream; a download waits for the
 *    work before it. Nothing returns a value computed from device data: results that the
 *    host wants later (losses, norms, flags) are written into small device arrays of doubles
 *    (e.g. the trainer's statistics slots, train_math.h) and downloaded when needed.
 *  - Reductions accumulate in double. Each backend sums in a fixed order, so
 *    results do not depend on thread count or timing; the CPU and the CUDA backends may sum
 *    in different orders (tests/unit/tolerances.h says how close they must be).
 *  - A slot marked "optional" may be NULL; the caller then does what its comment says.
 *  - Failures of the device itself (a CUDA error) end the program with a message naming the
 *    file, line and error (kernels/cuda_check.h); operations do not return errors. */
#ifndef GT_BACKEND_H
#define GT_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "act_math.h"  /* act_kind_t */
#include "conv_math.h" /* conv_geom_t */
#include "sn_math.h"   /* sn_shape_t */

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { DEV_CPU = 0, DEV_CUDA = 1 } device_t;


/* What philox_fill writes, element j of n, with r = Philox at index index0 + j
 * (seed, stream, step): see philox_fill_value in lib/philox.h. */
typedef enum {
    FILL_UNIFORM_PM = 0, /* (2 u - 1) * scale, u = philox_uniform */
    FILL_NORMAL = 1      /* scale * z (+ shift when shift != 0), z = philox_normal */
} fill_kind_t;

/* BatchNorm, one call (lib/nn/layer_bn.c says what the layer computes). x, y, dy, dx are
 * (B, C, S); w, b, dw, db are (C) or NULL without affine parameters; dw, db are NULL too when
 * the pass wants no parameter gradients (nn_ctx_t.skip_param_grads). */
typedef struct {
    int B, C;
    long S;
    double eps, momentum;
    int training;           /* batch statistics (and running-statistics update), or running ones */
    const float *x, *w, *b, *dy;
    float *y, *dx, *dw, *db; /* outputs; dx NULL when not wanted (backward) */
    float *mean, *inv_std;   /* (C) written by forward, read by backward */
    float *running;          /* (2C) running_mean then running_var */
    const struct bn_sync *sync; /* NULL, or: the B samples are one process's slice (below) */
    /* The activation after the BatchNorm, fused into its passes (lib/nn/net.c; norm_math.h
     * bn_out, bn_act_grad): 0 none, else 1 + the act_kind_t of a relu or lrelu, with its slope.
     * forward: y is the activation's output f(BN's output) (BN's own output is not written);
     * backward: dy is the gradient w.r.t. the activation's output, taken through f' at BN's
     * output recomputed from x: the bits of act_forward after bn_forward, of act_backward
     * before bn_backward. */
    int act;
    float slope;
} bn_args_t;

/* Data-parallel BatchNorm (lib/gan/trainer.c, lib/base/dist.h): the statistics are over the global batch
 * of `batch` samples whose slices the processes hold. In training mode the forward pass sums
 * each channel's values, then their squared deviations from the global mean, over the slice
 * and then over the processes (the backend's sum_procs); the backward pass likewise sums dy and
 * dy x_hat, adding only the slice's sums to dw and db (the trainer sums the gradients across
 * processes). scratch is 2 C doubles of the backend's memory for the widest BatchNorm, made
 * with the run, so that steps allocate nothing. */
typedef struct bn_sync {
    int batch;
    double *scratch;
} bn_sync_t;

/* LayerNorm over each sample's N values (lib/nn/layer_ln.c has the formulas), or with C > 0
 * instance normalization (lib/nn/layer_in.c): the same formulas over each of the sample's C
 * channels of N / C values, with one scale and shift per channel. The normalized groups are the
 * rows: B rows of N for LayerNorm, B C rows of N / C (row i C + c: sample i, channel c) for
 * instance normalization. x, tx, dy, dty, y, ty, dx, dtx are (B, N); w, b, dw, db (N), or (C)
 * with C > 0, or NULL without affine parameters (dw, db also NULL when no parameter gradients
 * are wanted: nn_ctx_t.skip_param_grads); dy, dty may be NULL in the jvp backward pass (zeros);
 * dx, dtx NULL when not wanted. */
typedef struct {
    int B;
    long N;
    int C;        /* 0: LayerNorm; > 0: instance normalization of C channels (C divides N) */
    double eps;
    const float *x, *tx, *dy, *dty, *w, *b;
    float *y, *ty, *dx, *dtx, *dw, *db;
    float *saved; /* (rows, 2): mean, inv_std per row, written by the forward passes */
    float *ws;    /* (rows, 2): scratch of the jvp backward pass */
} ln_args_t;

/* Pooling and nearest upsampling over `planes` = B * C image planes (lib/nn/layer_pool.c says
 * what each computes): x, tx, dx, dtx are
 * (planes, h, w); y, ty, dy, dty are (planes, ho, wo). Forward writes y (and ty from tx when
 * ty is not NULL); backward overwrites dx from dy (and dtx from dty when dtx is not NULL); dy
 * or dty NULL count as zeros. argmax (planes, ho, wo): max pooling's int32 index of each
 * output's maximum in its input plane (-1 for an empty window), written by forward. */
typedef struct {
    long planes;
    int h, w, ho, wo;
    int kh, kw, sh, sw, ph, pw; /* pooling window */
    int scale;                  /* upsampling factor */
    int exclude_pad;            /* average pooling divides by the window's part inside the image
                                   (count_include_pad=False; conv_math.h, pool_divisor) */
    const float *x, *tx, *dy, *dty;
    float *y, *ty, *dx, *dtx;
    int32_t *argmax;
} pool_args_t;

/* One optimizer step's constants, computed on the host from the settings and the step
 * count (lib/backend/opt_math.h: opt_step_make); the per-element update is opt_math.h's. */
typedef struct opt_step opt_step_t;

/* Counters the CUDA backend keeps (zero on the CPU): launches (kernels, cuBLAS calls, and
 * device-side copies and memsets, one each: what the stream must start), FLOPs of the gemms,
 * bytes that the operations must at least read and write, device allocations that went to
 * the device allocator (cudaMalloc) rather than the cache, and host<->device transfers. */
typedef struct {
    uint64_t launches, gemms, device_mallocs, transfers;
    double flops, bytes;
    uint64_t proc_sums;    /* sums across processes (sum_procs calls and started sums, one for
                              those joined by sum_procs_start's more; reduce_procs_start's too)
                              and gather_procs's gathers, on either backend */
    double proc_sum_bytes; /* the bytes they summed (a reduce-scatter counts its whole range,
                              as an all-reduce does; a gather counts none: the all-reduce it
                              completes was counted by its reduce-scatter) */
    /* CUDA: serial depth, the longest chain of dependent additions one thread does in a launch
     * (counted for the reductions and the class-conditional sums, whose threads loop; the
     * element-wise kernels' threads do a few operations each): summed over the launches, and
     * the longest of one launch */
    uint64_t serial_depth, serial_depth_max;
    /* CUDA graphs (graph_begin/graph_end): graph launches (each counted as one of `launches`),
     * the kernels, cuBLAS calls, copies and memsets they ran (not in `launches`), and the
     * graphs instantiated (the rest were updated in place) */
    uint64_t graph_launches, graph_nodes, graph_builds;
} backend_counters_t;

struct dist; /* lib/base/dist.h */
enum { BE_SUMS_PENDING = 64 }; /* started sums a backend keeps before sum_procs_wait */
/* The parts of a parameter vector whose figures the optimizer step writes one by one
 * (opt_step_t.fig.parts): elements [k BE_FIG_PART, (k + 1) BE_FIG_PART) are part k. The CPU's
 * reductions over a vector add their parts' figures in part order (lib/cpu/red.h). */
enum { BE_FIG_PART = 65536 };
typedef struct backend backend_t;

struct backend {
    const char *name;   /* "cpu", "cuda" */
    device_t device;
    int threads;        /* CPU threads for our own loops and for OpenBLAS */
    int tf32;           /* CUDA: gemms may use TF32 tensor cores (gan-step --tf32); CPU ignores it */
    int graphs;         /* CUDA: graph_begin may record (1; 0 under GT_CUDA_GRAPH=0 or gan-step
                           --cuda-graph off, and then it refuses); CPU ignores it */
    char description[160]; /* for messages: "cpu (2 threads)", "cuda: NVIDIA H100 ..." */
    backend_counters_t counters;

    /* The slots up to gemm are written out here rather than listed in backend_ops.h: they
     * return values, or may be NULL (optional), or are the memory the operations work on. */

    /* ---- memory ----------------------------------------------------------------------- */
    /* alloc never returns NULL (dies on exhaustion); buffers are 64-byte aligned (256 on
     * CUDA). The CUDA backend caches freed blocks, so a step never calls cudaMalloc. */
    void *(*alloc)(backend_t *be, size_t bytes);
    void (*free)(backend_t *be, void *p);
    /* host -> device, device -> host (waits for queued work), device -> device */
    void (*upload)(backend_t *be, void *dst, const void *src, size_t bytes);
    void (*download)(backend_t *be, void *dst, const void *src, size_t bytes);
    void (*copy)(backend_t *be, void *dst, const void *src, size_t bytes);
    void (*zero)(backend_t *be, void *p, size_t bytes);
    /* optional: a device copy of host data that the caller keeps unchanged while the copy
     * is in use (the training set). The CPU backend returns src itself (no copy). NULL:
     * alloc + upload. Release with release_const (optional too: NULL means free). */
    const void *(*upload_const)(backend_t *be, const void *src, size_t bytes);
    void (*release_const)(backend_t *be, const void *p);
    /* optional: wait for all queued work (NULL: every call is synchronous) */
    void (*sync)(backend_t *be);

    /* ---- data-parallel runs (lib/base/dist.h, lib/gan/trainer.c) --------------------------------- */
    /* optional (NULL: the backend cannot run data-parallel): make the backend able to sum
     * its buffers across the processes of d, on every process of d (a collective). The CPU
     * backend sums host memory with MPI (dist_sum_*); the CUDA backend makes an NCCL
     * communicator, its id broadcast from rank 0 over MPI, and sums device memory on its
     * stream. Returns 0, or -1 with a message (gt_err). */
    int (*join)(backend_t *be, struct dist *d);
    /* In place on every process, queued on the stream: v (n floats, or n doubles when f64)
     * = the sum over the processes of their v. Every process gets the same bits (each element
     * is reduced once, in an order that depends on the process count only). Only after join;
     * every process must make the same calls in the same order. */
    void (*sum_procs)(backend_t *be, void *v, size_t n, int f64);
    /* optional (NULL: the trainer calls sum_procs at once): the same sum, started without
     * waiting for it, so that it runs while the backward pass goes on (lib/gan/ddp.c): the CPU
     * backend's MPI_Iallreduce, the CUDA backend's ncclAllReduce on a second stream behind an
     * event (sum_procs goes through that stream too, so one communicator's operations keep one
     * order). Each element is reduced as sum_procs reduces it: the same bits at P = 2 whatever
     * the pieces (one addition of two numbers); at P > 2 the library's order for the piece's
     * size, every process's bits equal. more = 1: the next start follows at once and joins this
     * one (one NCCL group: one operation, one latency; on the CPU two concurrent all-reduces);
     * counted as one sum. At most BE_SUMS_PENDING started before sum_procs_wait, which makes
     * every started sum's result visible to what is queued after it. sum_procs_poll, optional,
     * lets the CPU backend's MPI progress them (MPI_Testall) between layers. */
    void (*sum_procs_start)(backend_t *be, void *v, size_t n, int f64, int more);
    void (*sum_procs_poll)(backend_t *be);
    void (*sum_procs_wait)(backend_t *be);
    /* optional, both or neither (NULL: the optimizer is not sharded, lib/gan/ddp.h): the sharded
     * optimizer's collectives. cut[0..P] (P processes; cut[0] = 0, non-decreasing) cuts a vector
     * into slices, process r's [cut[r], cut[r+1]). reduce_procs_start: started like
     * sum_procs_start (one sum, joining the group that more opens, waited for by
     * sum_procs_wait): of the n floats v[off, off + n), process r's part of its slice then
     * holds the sum over the processes (a reduce to r of each slice that meets the range: the
     * CPU backend's MPI_Ireduce, the CUDA backend's ncclReduce, in place), the rest of v keeps
     * this process's values. Each element is reduced once: at P = 2 the bits sum_procs gives
     * (one addition of two numbers), above in the library's order for a reduce, every run the
     * same. gather_procs: queued on the stream, in place: every process's v = the processes'
     * slices of v (n = cut[P] elements, floats or doubles when f64; MPI_Allgatherv, NCCL's
     * broadcasts from each slice's owner); counted as one sum of no bytes (counters). */
    void (*reduce_procs_start)(backend_t *be, float *v, size_t off, size_t n, const size_t *cut, int more);
    void (*gather_procs)(backend_t *be, void *v, const size_t *cut, int f64);
    /* optional (NULL: none): n bytes of memory that the other processes of the run read in
     * place, or NULL when they cannot (the processes on several machines; lib/base/dist.h
     * dist_alloc_shared): the CPU backend's reduce_procs_start and gather_procs on a vector in
     * it add and copy the others' slices from their memory instead of passing messages (the
     * same bits). A collective: every process asks for the same n. Never freed (the run's end
     * releases it). The trainer puts the sharded nets' parameters and gradients there. */
    void *(*alloc_shared)(backend_t *be, size_t n);

    /* ---- graphs (lib/gan/trainer.c; kernels/README.md, "CUDA graphs") ------------------- */
    /* optional (NULL: every operation runs as it is queued, as on the CPU). graph_begin starts
     * recording what is queued on the stream (a CUDA graph, by stream capture) instead of
     * running it, and returns 0; or returns -1, recording nothing, when the backend will not
     * record now (be->graphs == 0, GT_CUDA_SYNC=1). Until graph_end the caller queues only
     * what a graph can hold: operations and copies and zeros of device memory; an upload,
     * download, sync, alloc or free ends the program with a message (a bug: it would wait for
     * work that has not run, or change memory the recorded work uses). graph_end launches what
     * was recorded as one launch (counters: one launch, the recorded ones as graph_nodes); the
     * values of the operations' arguments are the recorded ones, so a caller records afresh
     * every time (the backend updates an instantiated graph of the same nodes in place, and
     * keeps a few, so that steps whose sequences alternate reuse theirs). The results are the
     * bits the operations give when run one by one. */
    int (*graph_begin)(backend_t *be);
    void (*graph_end)(backend_t *be);

    /* ---- gemm ------------------------------------------------------------------------- */
    /* Row-major C (M x N) = alpha * op(A) * op(B) + beta * C, op(X) = X or X^T.
     * A is M x K after op (stored K x M when trans_a), lda/ldb/ldc are row strides.
     * beta == 0 ignores C's old contents (NaN included); k == 0 gives beta * C.
     * Results do not depend on the thread count: OpenBLAS's rounding depends on the shape of
     * each call (that of ours, lib/cpu/sgemm.c, which replaces OpenBLAS's AVX2 kernels on
     * AVX-512 machines, does not), so the CPU backend cuts C into blocks that depend only on
     * (m, n, k) and shares whole blocks over its threads (backend_cpu.c): at most 4 blocks,
     * along the longer side of C, at least 128 rows (columns) each. Cost, measured on 2 shared cores against one part per
     * thread: within the run-to-run noise (about 5%) on the DCGAN and MLP shapes; on one thread,
     * where the blocks run in turn, 4 blocks cost the MLP step about 2% (16 cost 10%). cuBLAS's
     * results are the same run to run (one stream, one device). */
    void (*gemm)(backend_t *be, int trans_a, int trans_b, int m, int n, int k, float alpha,
                 const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);

    /* ---- compute operations: one slot void (*name) params per entry of backend_ops.h, which
     * documents each ------------------------------------------------------------------------ */
#define BACKEND_OP(name, params) void (*name) params;
#include "backend_ops.h"
#undef BACKEND_OP
};

/* The CPU backend; threads <= 0 picks the number of online cores. Sets OpenBLAS's thread
 * count to match. Returns a static instance (one per process). */
backend_t *backend_cpu(int threads);

/* The CUDA backend (kernels/backend_cuda.cu) on GPU dist_local_rank() mod the GPUs it sees (the
 * first, except for the processes of a data-parallel run sharing a node), or NULL with a message
 * (gt_err) when the build has no CUDA or no usable GPU is found. Under the host emulation
 * (make CUDA=emu) the "GPU" is the emulator; GT_EMU_NO_GPU=1 in the environment makes it
 * report none, for testing. A static instance, created on the first call. */
backend_t *backend_cuda(void);

/* Split [0, n) over the CPU backend's threads and call fn(arg, begin, end) on each part
 * (in the calling thread when threads == 1 or n is small). Work must be independent per
 * index so results never depend on the thread count. A call from inside fn (a nested loop,
 * or a gemm inside a parallel loop) runs inline in that thread; calls from several threads
 * take turns. Part t of p covers [floor(n t / p), floor(n (t+1) / p)). */
void cpu_parallel_for(backend_t *be, long n, void (*fn)(void *arg, long begin, long end), void *arg);

/* Helpers over the slots above. */
static inline void be_sync(backend_t *be) {
    if (be->sync) be->sync(be);
}

#ifdef __cplusplus
}
#endif

#endif
