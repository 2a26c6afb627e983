/* dist_nccl.cu: the CUDA backend in a data-parallel run (backend.h join, sum_procs; lib/base/dist.h):
 * device buffers summed across the processes with NCCL's all-reduce, queued on the backend's
 * stream, so that gradients and BatchNorm's statistics never leave the GPU.
 *
 * Bootstrap: rank 0 makes an ncclUniqueId and broadcasts it over MPI (dist_bcast); every rank
 * then joins the communicator with its MPI rank. Each process drives the GPU it chose when the
 * backend started (backend_cuda: local rank mod the GPUs it sees). NCCL reduces each element
 * once and gives every rank the result, so every process takes the same optimizer step on the
 * same bits.
 *
 * Built with NCCL when the CUDA toolkit has it (nccl.h; the Makefile defines GT_HAVE_NCCL and
 * links -lnccl), and under `make CUDA=emu`, whose NCCL is kernels/cuda_emu.h's (MPI_Allreduce
 * on the emulated device memory). Without NCCL, join says how to get it. */
#include "cuda_check.h"
#include "cuda_ops.h"

#include "lib/base/common.h"
#include "lib/base/dist.h"

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

int cuda_join(backend_t *be, dist_t *d) {
    (void)be;
    if (comm) return gt_err("the CUDA backend has joined a run already");
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    if (d->rank == 0) NCCL_CHECK(ncclGetUniqueId(&id));
    dist_bcast(d, &id, sizeof id);
    NCCL_CHECK(ncclCommInitRank(&comm, d->size, id, d->rank));
    return 0;
}

void cuda_sum_procs(backend_t *be, void *v, size_t n, int f64) {
    if (!n) return;
    be->counters.launches++;
    be->counters.bytes += 2.0 * (double)n * (f64 ? 8 : 4); /* read and written once, at least */
    be->counters.proc_sums++;
    be->counters.proc_sum_bytes += (double)n * (f64 ? 8 : 4);
    NCCL_CHECK(ncclAllReduce(v, v, n, f64 ? ncclDouble : ncclFloat, ncclSum, comm, gt_cuda_stream()));
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

#endif
