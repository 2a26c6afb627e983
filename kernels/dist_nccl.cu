/* dist_nccl.cu: the CUDA backend in a data-parallel run (backend.h join, sum_procs; lib/base/dist.h):
 * device buffers summed across the processes with NCCL's all-reduce, queued on the backend's
 * stream, so that gradients and BatchNorm's statistics never leave the GPU.
 *
 * Bootstrap: rank 0 makes an ncclUniqueId and broadcasts it over MPI (dist_bcast); every rank
 * then joins the communicator with its MPI rank. Each process drives the GPU it chose when the
 * backend started (backend_cuda: local rank mod the GPUs it sees); two ranks on one GPU are
 * refused before NCCL starts, naming them (check_one_gpu_per_rank). NCCL reduces each element
 * once and gives every rank the result, so every process takes the same optimizer step on the
 * same bits. The all-reduces run on a side stream (below), so that the gradients' buckets,
 * started as the backward pass completes them (lib/gan/ddp.c), overlap the layers below.
 *
 * Built with NCCL when the CUDA toolkit has it (nccl.h; the Makefile defines GT_HAVE_NCCL and
 * links -lnccl), and under `make CUDA=emu`, whose NCCL is kernels/cuda_emu.h's (MPI_Allreduce
 * on the emulated device memory). Without NCCL, join says how to get it. */
#include "cuda_check.h"
#include "cuda_ops.h"

#include "lib/base/common.h"
#include "lib/base/dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(GT_HAVE_NCCL) && !defined(GT_CUDA_EMU)
#include <nccl.h>
#endif

#if defined(GT_HAVE_NCCL) || defined(GT_CUDA_EMU)

#define NCCL_CHECK(call)                                                                          \
    do {                                                                                          \
        ncclResult_t gt_r_ = (call);                                                              \
        if (gt_r_ != ncclSuccess) gt_cuda_fail(__FILE__, __LINE__, #call, ncclGetErrorString(gt_r_), "NCCL"); \
    } while (0)

static ncclComm_t comm;
static int nranks; /* the processes of the run (join) */
/* the all-reduces' side stream, and the events that hand work over to it and back (below) */
static cudaStream_t side;
static cudaEvent_t ev_main, ev_side;
static int grouped; /* inside an NCCL group opened by a start with more */

/* Which GPU a rank drives, as every rank can compare it: its node's name and the GPU's PCI bus
 * id (device indices differ with CUDA_VISIBLE_DEVICES; bus ids do not). */
enum { GPU_ID_BYTES = 160 };

/* NCCL refuses a communicator in which two ranks drive one GPU, when ranks outnumber a node's
 * GPUs (each takes local rank mod GPUs), with an error that names neither the ranks nor the
 * cause: find it first, from every rank's GPU gathered over MPI, and say what to do. Every rank
 * reaches the same verdict. */
static int check_one_gpu_per_rank(dist_t *d) {
    char mine[GPU_ID_BYTES];
    memset(mine, 0, sizeof mine);
    char bus[32] = "?";
    CUDA_CHECK(cudaDeviceGetPCIBusId(bus, (int)sizeof bus, gt_cuda_device()));
    char host[96] = "?";
    if (gethostname(host, sizeof host)) snprintf(host, sizeof host, "?");
    host[sizeof host - 1] = 0;
    snprintf(mine, sizeof mine, "%s %s", bus, host);
    char *all = (char *)malloc((size_t)d->size * GPU_ID_BYTES);
    if (!all) return gt_err("out of memory gathering the ranks' GPUs");
    dist_allgather(d, mine, GPU_ID_BYTES, all);
    for (int r = 0; r < d->size; r++) {
        const char *id = all + (size_t)r * GPU_ID_BYTES;
        char ranks[200];
        int shared = 0, len = snprintf(ranks, sizeof ranks, "%d", r);
        for (int q = r + 1; q < d->size; q++) shared += strcmp(id, all + (size_t)q * GPU_ID_BYTES) == 0;
        for (int q = r + 1, k = 0; q < d->size && len < (int)sizeof ranks - 24; q++)
            if (strcmp(id, all + (size_t)q * GPU_ID_BYTES) == 0)
                len += snprintf(ranks + len, sizeof ranks - (size_t)len, "%s%d", ++k == shared ? " and " : ", ", q);
        if (!shared) continue;
        int count = 0;
        if (cudaGetDeviceCount(&count) != cudaSuccess) count = 0;
        char bus_of[32] = "?", host_of[96] = "?";
        if (sscanf(id, "%31s %95s", bus_of, host_of) != 2) snprintf(host_of, sizeof host_of, "?");
        gt_err("ranks %s would share one GPU (PCI %s on %s), which NCCL refuses: start one rank per GPU at most "
               "(this node shows %d), or give each rank its own GPU with CUDA_VISIBLE_DEVICES",
               ranks, bus_of, host_of, count);
        free(all);
        return -1;
    }
    free(all);
    return 0;
}

int cuda_join(backend_t *be, dist_t *d) {
    (void)be;
    if (comm) return gt_err("the CUDA backend has joined a run already");
    if (check_one_gpu_per_rank(d)) return -1;
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    if (d->rank == 0) NCCL_CHECK(ncclGetUniqueId(&id));
    dist_bcast(d, &id, sizeof id);
    NCCL_CHECK(ncclCommInitRank(&comm, d->size, id, d->rank));
    nranks = d->size;
    CUDA_CHECK(cudaStreamCreate(&side));
    CUDA_CHECK(cudaEventCreateWithFlags(&ev_main, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventCreateWithFlags(&ev_side, cudaEventDisableTiming));
    return 0;
}

/* Every all-reduce runs on a side stream: sums started during the backward pass
 * (sum_procs_start) overlap the layers still queued on the backend's stream, and the blocking
 * ones (sum_procs) keep one order with them on one communicator. Events hand the work over:
 * the side stream waits for what the backend's stream has queued (to_side), and the backend's
 * stream for the side's sums (from_side). */

static void to_side(void) {
    CUDA_CHECK(cudaEventRecord(ev_main, gt_cuda_stream()));
    CUDA_CHECK(cudaStreamWaitEvent(side, ev_main, 0));
}

static void from_side(void) {
    CUDA_CHECK(cudaEventRecord(ev_side, side));
    CUDA_CHECK(cudaStreamWaitEvent(gt_cuda_stream(), ev_side, 0));
}

static void count(backend_t *be, size_t n, int f64, int op) {
    be->counters.launches += (uint64_t)op;
    be->counters.bytes += 2.0 * (double)n * (f64 ? 8 : 4); /* read and written once, at least */
    be->counters.proc_sums += (uint64_t)op;
    be->counters.proc_sum_bytes += (double)n * (f64 ? 8 : 4);
}

void cuda_sum_procs(backend_t *be, void *v, size_t n, int f64) {
    if (!n) return;
    count(be, n, f64, 1);
    to_side();
    NCCL_CHECK(ncclAllReduce(v, v, n, f64 ? ncclDouble : ncclFloat, ncclSum, comm, side));
    from_side();
    GT_SYNC_POINT("ncclAllReduce");
}

void cuda_sum_procs_start(backend_t *be, void *v, size_t n, int f64, int more) {
    count(be, n, f64, !grouped);
    if (!grouped) {
        to_side();
        if (more) NCCL_CHECK(ncclGroupStart());
    }
    if (n) NCCL_CHECK(ncclAllReduce(v, v, n, f64 ? ncclDouble : ncclFloat, ncclSum, comm, side));
    if (grouped && !more) NCCL_CHECK(ncclGroupEnd());
    grouped = more;
    if (!more) GT_SYNC_POINT("ncclAllReduce");
}

void cuda_sum_procs_wait(backend_t *be) {
    (void)be;
    from_side();
}

/* The sharded optimizer's collectives (backend.h): each slice that meets v[off, off + n) reduced
 * to its owner with ncclReduce in place (uneven slices, which ncclReduceScatter cannot take
 * without padding the vector; the same bytes, (P - 1) / P of the range from each process at
 * P = 2), in the group the starts share; the updated slices broadcast from their owners, as one
 * group of ncclBroadcast in place. */
void cuda_reduce_procs_start(backend_t *be, float *v, size_t off, size_t n, const size_t *cut, int more) {
    count(be, n, 0, !grouped);
    if (!grouped) to_side();
    NCCL_CHECK(ncclGroupStart());
    for (int r = 0; r < nranks; r++) {
        size_t a = cut[r] > off ? cut[r] : off, b = cut[r + 1] < off + n ? cut[r + 1] : off + n;
        if (a < b) NCCL_CHECK(ncclReduce(v + a, v + a, b - a, ncclFloat, ncclSum, r, comm, side));
    }
    NCCL_CHECK(ncclGroupEnd());
    if (!grouped && more) NCCL_CHECK(ncclGroupStart());
    if (grouped && !more) NCCL_CHECK(ncclGroupEnd());
    grouped = more;
    if (!more) GT_SYNC_POINT("ncclReduce");
}

void cuda_gather_procs(backend_t *be, void *v, const size_t *cut, int f64) {
    size_t es = f64 ? 8 : 4;
    if (!cut[nranks]) return;
    be->counters.launches++; /* a collective, but no bytes summed (backend.h counters) */
    be->counters.proc_sums++;
    be->counters.bytes += 2.0 * (double)cut[nranks] * (double)es;
    to_side();
    NCCL_CHECK(ncclGroupStart());
    for (int r = 0; r < nranks; r++)
        if (cut[r + 1] > cut[r]) {
            char *p = (char *)v + cut[r] * es;
            NCCL_CHECK(ncclBroadcast(p, p, cut[r + 1] - cut[r], f64 ? ncclDouble : ncclFloat, r, comm, side));
        }
    NCCL_CHECK(ncclGroupEnd());
    from_side();
    GT_SYNC_POINT("ncclBroadcast");
}

#else

int cuda_join(backend_t *be, dist_t *d) {
    (void)be;
    (void)d;
    return gt_err("this CUDA build has no NCCL, which data-parallel training on GPUs needs: install NCCL "
                  "(nccl.h and libnccl: with the CUDA toolkit, or NVIDIA's libnccl-dev) and rebuild with "
                  "make CUDA=1, or give --device cpu");
}

void cuda_sum_procs(backend_t *be, void *v, size_t n, int f64) {
    (void)be;
    (void)v;
    (void)n;
    (void)f64;
    gt_cuda_fail(__FILE__, __LINE__, "cuda_sum_procs", "no NCCL in this build", "bug: join refused");
}

void cuda_sum_procs_start(backend_t *be, void *v, size_t n, int f64, int more) {
    (void)more;
    cuda_sum_procs(be, v, n, f64);
}

void cuda_sum_procs_wait(backend_t *be) { (void)be; }

void cuda_reduce_procs_start(backend_t *be, float *v, size_t off, size_t n, const size_t *cut, int more) {
    (void)off;
    (void)cut;
    (void)more;
    cuda_sum_procs(be, v, n, 0);
}

void cuda_gather_procs(backend_t *be, void *v, const size_t *cut, int f64) {
    (void)cut;
    cuda_sum_procs(be, v, 0, f64);
}

#endif
