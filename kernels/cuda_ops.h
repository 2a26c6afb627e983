/* cuda_ops.h: the CUDA backend's operations: cuda_NAME for every entry NAME of
 * lib/backend/backend_ops.h (which documents them), defined in kernels/layers.cu, norm.cu,
 * conv.cu, pool.cu, inception.cu, train.cu, optim.cu, class.cu and augment.cu, and the data-parallel slots of
 * backend.h, defined in kernels/dist_nccl.cu; gathered into the backend struct by
 * kernels/backend_cuda.cu. Private to kernels/: everyone else calls them through backend_t.
 * Each entry point counts the bytes it must move (bench/) and queues its kernels on the
 * backend's stream; like the CPU's, it trusts the caller for the contracts. */
#ifndef GT_CUDA_OPS_H
#define GT_CUDA_OPS_H

#include "lib/backend/backend.h"

#define BACKEND_OP(name, params) void cuda_##name params;
#include "lib/backend/backend_ops.h"
#undef BACKEND_OP

/* dist_nccl.cu: data-parallel runs (backend.h join, sum_procs) */
int cuda_join(backend_t *be, struct dist *d);
void cuda_sum_procs(backend_t *be, void *v, size_t n, int f64);
void cuda_sum_procs_start(backend_t *be, void *v, size_t n, int f64, int more);
void cuda_sum_procs_wait(backend_t *be);
void cuda_reduce_procs_start(backend_t *be, float *v, size_t off, size_t n, const size_t *cut, int more);
void cuda_gather_procs(backend_t *be, void *v, const size_t *cut, int f64);

/* graph.cu: CUDA graphs (backend.h graph_begin, graph_end) */
int cuda_graph_begin(backend_t *be);
void cuda_graph_end(backend_t *be);

#endif
