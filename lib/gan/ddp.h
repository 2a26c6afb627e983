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
#ifndef GT_DDP_H
#define GT_DDP_H

#include <stddef.h>

#include "lib/backend/backend.h"
#include "lib/nn/layer.h"

typedef struct {
    backend_t *be;
    size_t bucket;    /* floats per bucket at least (0: no overlap: all in ddp_finish) */
    float *g;         /* the gradients of this pass's net (n floats) */
    size_t n, next;   /* [next, n) started; [0, next) not yet */
    nn_grad_hook_t hook;
} ddp_t;

/* bucket_mb: megabytes per bucket (0: start nothing before ddp_finish). */
void ddp_init(ddp_t *d, backend_t *be, double bucket_mb);

/* Before the pass that completes the gradients g (n floats): the hook to put in its context
 * (nn_ctx_t.grad_hook), or NULL when buckets are off or the backend cannot start sums. */
const nn_grad_hook_t *ddp_begin(ddp_t *d, float *g, size_t n);

/* Start the gradients not yet started ([0, n) when ddp_begin's hook was not used) and the k
 * ranges of float64 loss figures stats[first[i] .. first[i] + count[i]) as one last sum, then
 * wait for every sum: g and the figures then hold the sums over the processes. */
void ddp_finish(ddp_t *d, float *g, size_t n, double *stats, const int *first, const int *count, int k);

#endif
