/* ddp.h: a data-parallel step's gradient sums in buckets, started while the backward pass
 * still runs (lib/gan/trainer.c; the backend's sum_procs_start, backend.h).
 *
 * net_backward tells the hook (nn_grad_hook_t, lib/nn/layer.h) after each layer from which
 * offset the net's gradients are final; when the final ones not yet started reach `bucket`
 * floats, they are started as one sum: whole layers, last layer first, as PyTorch's
 * DistributedDataParallel does with its buckets (the first layer's, which the pass completes
 * last, are left for ddp_finish). ddp_finish starts what remains together with
 * the step's loss figures (which ride on that last sum: one operation, one latency) and waits
 * for all before the optimizer step. The sum of each element is the one a single all-reduce of
 * the whole gradient gives (backend.h sum_procs_start says how exactly). */
/*
 * The sharded optimizer (ddp_shard; ZeRO stage 1): the net's flat parameter vector is cut into
 * P contiguous slices of whole parts (backend.h BE_FIG_PART elements; process r takes parts
 * [floor(K r / P), floor(K (r+1) / P)) of the K), and each bucket, instead of being all-reduced,
 * is reduced to the owners of the slices it meets (backend.h reduce_procs_start): the same
 * bytes. Each process then steps the optimizer over its own slice (optim_step_slice), and the
 * updated slices are gathered to every process (gather_procs). The step's figures (the
 * gradients' sum of squares, whether an updated weight is not finite) come from the slices'
 * per-part figures, gathered and added in part order (the sum_parts op): on the CPU the bits
 * of the whole-vector step's. Each process's optimizer state is current on its slice only:
 * ddp_gather_state completes it before a checkpoint is written. */
#ifndef GT_DDP_H
#define GT_DDP_H

#include <stddef.h>

#include "lib/backend/backend.h"
#include "lib/base/dist.h"
#include "lib/nn/layer.h"
#include "optimizer.h"

typedef struct {
    backend_t *be;
    size_t bucket;    /* floats per bucket at least (0: no overlap: all in ddp_finish) */
    float *g;         /* the gradients of this pass's net (n floats) */
    size_t n, next;   /* [next, n) started; [0, next) not yet */
    nn_grad_hook_t hook;
    /* the sharded optimizer (ddp_shard; shard 0: off) */
    int shard, rank, procs;
    size_t *cut, *pcut; /* (procs + 1) the slices of the current vector, in floats and in its
                           parts' figures (2 doubles a part) */
    double *parts;      /* (2 parts of the longest vector) the parts' figures, on the device */
} ddp_t;

/* bucket_mb: megabytes per bucket (0: start nothing before ddp_finish). */
void ddp_init(ddp_t *d, backend_t *be, double bucket_mb);

/* Shard the optimizer over the processes of d (d->size > 1) for vectors of up to max_n
 * parameters, when the backend has the collectives (reduce_procs_start, gather_procs,
 * sum_procs_start); returns 1 when sharded, 0 when the step stays whole. Allocates. */
int ddp_shard(ddp_t *d, const dist_t *dist, size_t max_n);
void ddp_free(ddp_t *d);

/* Before the pass that completes the gradients g (n floats): the hook to put in its context
 * (nn_ctx_t.grad_hook), or NULL when buckets are off or the backend cannot start sums. */
const nn_grad_hook_t *ddp_begin(ddp_t *d, float *g, size_t n);

/* Start the gradients not yet started ([0, n) when ddp_begin's hook was not used) and the k
 * ranges of float64 loss figures stats[first[i] .. first[i] + count[i]) as one last sum, then
 * wait for every sum: g and the figures then hold the sums over the processes (sharded: this
 * process's slice of g holds the sums, the rest its own gradients). */
void ddp_finish(ddp_t *d, float *g, size_t n, double *stats, const int *first, const int *count, int k);

/* The optimizer step after ddp_finish, as optim_step_lr (o over the n parameters p with
 * gradients g): sharded, over this process's slice, the weights then gathered, the figures
 * (sumsq, bad: as optim_step_lr's) from the gathered parts; with zero_g the rest of g is zeroed
 * too. Unsharded, optim_step_lr itself. */
void ddp_step(ddp_t *d, optim_state_t *o, float *p, float *g, double factor, int zero_g, double *sumsq, double *bad);

/* Sharded: every process's state of o = the owners' slices (a collective). Else nothing. */
void ddp_gather_state(ddp_t *d, optim_state_t *o);

#endif
