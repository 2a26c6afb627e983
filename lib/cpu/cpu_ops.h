/* cpu_ops.h: the CPU backend's operations: cpu_NAME for every entry NAME of
 * lib/backend/backend_ops.h (which documents them), defined in lib/cpu/layers.c, norm.c,
 * conv.c, pool.c, inception.c, train.c, optim.c, class.c, augment.c and sn.c, and the data-parallel slots of
 * backend.h, defined in lib/cpu/dist_mpi.c; gathered into the backend struct by
 * lib/cpu/backend_cpu.c. Private to lib/cpu/: everyone else calls them through backend_t. */
#ifndef GT_CPU_OPS_H
#define GT_CPU_OPS_H

#include "lib/backend/backend.h"

#define BACKEND_OP(name, params) void cpu_##name params;
#include "lib/backend/backend_ops.h"
#undef BACKEND_OP

/* dist_mpi.c: data-parallel runs (backend.h join, sum_procs) */
int cpu_join(backend_t *be, struct dist *d);
void cpu_sum_procs(backend_t *be, void *v, size_t n, int f64);
void cpu_sum_procs_start(backend_t *be, void *v, size_t n, int f64, int more);
void cpu_sum_procs_poll(backend_t *be);
void cpu_sum_procs_wait(backend_t *be);
void cpu_reduce_procs_start(backend_t *be, float *v, size_t off, size_t n, const size_t *cut, int more);
void cpu_gather_procs(backend_t *be, void *v, const size_t *cut, int f64);

/* conv.c: an image batch read as its column matrix (backend_ops.h im2col) by our sgemm
 * (sgemm.h sgemm_pb): B = col (trans 0) or col^T (trans 1) of the nb samples at img.
 * cpu_pack_cols is its sgemm_pack_b_fn (ctx: a conv_cols_t). */
typedef struct {
    const conv_geom_t *g;
    const float *img;
    int nb, trans;
} conv_cols_t;
void cpu_pack_cols(const void *ctx, int p0, int kc, long j0, int nc, int nr, float *dst);

/* The passes of an operation with a tangent (activations in layers.c, LayerNorm in norm.c):
 * forward, backward, and their jvp forms (backend_ops.h act_*, ln_*). */
enum { P_FWD, P_BWD, P_JVP_FWD, P_JVP_BWD };

#endif
