/* ddp.c: gradient sums in buckets during the backward pass, and the sharded optimizer step
 * (ddp.h). */
#include <stdlib.h>
#include <string.h>

#include "lib/base/common.h"
#include "ddp.h"

void ddp_init(ddp_t *d, backend_t *be, double bucket_mb) {
    memset(d, 0, sizeof *d);
    d->be = be;
    d->bucket = (size_t)(bucket_mb * 1e6 / sizeof(float));
}

int ddp_shard(ddp_t *d, const dist_t *dist, size_t max_n) {
    backend_t *be = d->be;
    if (dist->size <= 1 || !be->reduce_procs_start || !be->gather_procs || !be->sum_procs_start) return 0;
    d->shard = 1;
    d->rank = dist->rank;
    d->procs = dist->size;
    d->cut = gt_xmalloc(sizeof *d->cut * (size_t)(d->procs + 1));
    d->pcut = gt_xmalloc(sizeof *d->pcut * (size_t)(d->procs + 1));
    size_t parts = (max_n + BE_FIG_PART - 1) / BE_FIG_PART;
    d->parts = be->alloc(be, sizeof(double) * 2 * (parts ? parts : 1));
    return 1;
}

void ddp_free(ddp_t *d) {
    if (d->parts) d->be->free(d->be, d->parts);
    free(d->cut);
    free(d->pcut);
    d->parts = NULL;
    d->cut = d->pcut = NULL;
    d->shard = 0;
}

/* the slices of a vector of n: whole parts, process r's parts [floor(K r / P), floor(K (r+1) / P)) */
static void set_cut(ddp_t *d, size_t n) {
    size_t parts = (n + BE_FIG_PART - 1) / BE_FIG_PART;
    for (int r = 0; r <= d->procs; r++) {
        size_t k = parts * (size_t)r / (size_t)d->procs, at = k * BE_FIG_PART;
        d->cut[r] = at < n ? at : n;
        d->pcut[r] = 2 * k;
    }
}

/* start the sum of g[from, from + n) */
static void start(ddp_t *d, float *g, size_t from, size_t n, int more) {
    if (d->shard) d->be->reduce_procs_start(d->be, g, from, n, d->cut, more);
    else d->be->sum_procs_start(d->be, g + from, n, 0, more);
}

/* the hook: grads [from, n) are final; start [from, next) when it is a bucket's worth, except
 * the last bucket (from 0), which ddp_finish starts with the loss figures riding on it */
static void ready(void *arg, size_t from) {
    ddp_t *d = arg;
    backend_t *be = d->be;
    if (from > 0 && d->next - from >= d->bucket) {
        start(d, d->g, from, d->next - from, 0);
        d->next = from;
    } else if (be->sum_procs_poll) {
        be->sum_procs_poll(be);
    }
}

const nn_grad_hook_t *ddp_begin(ddp_t *d, float *g, size_t n) {
    d->g = g;
    d->n = d->next = n;
    if (d->shard) set_cut(d, n);
    if (!d->bucket || !d->be->sum_procs_start) return NULL;
    d->hook.fn = ready;
    d->hook.arg = d;
    return &d->hook;
}

void ddp_finish(ddp_t *d, float *g, size_t n, double *stats, const int *first, const int *count, int k) {
    backend_t *be = d->be;
    size_t rest = d->g == g && d->n == n ? d->next : n; /* what ddp_begin's hook did not start */
    d->g = NULL;
    if (!be->sum_procs_start) { /* one sum at a time (never sharded) */
        be->sum_procs(be, g, n, 0);
        for (int i = 0; i < k; i++) be->sum_procs(be, stats + first[i], (size_t)count[i], 1);
        return;
    }
    if (d->shard) set_cut(d, n);
    if (rest) start(d, g, 0, rest, k > 0);
    for (int i = 0; i < k; i++) be->sum_procs_start(be, stats + first[i], (size_t)count[i], 1, i + 1 < k);
    be->sum_procs_wait(be);
}

void ddp_step(ddp_t *d, optim_state_t *o, float *p, float *g, double factor, int zero_g, double *sumsq, double *bad) {
    if (!d->shard) {
        optim_step_lr(o, p, g, factor, zero_g, sumsq, bad);
        return;
    }
    backend_t *be = d->be;
    size_t n = o->n;
    set_cut(d, n);
    size_t lo = d->cut[d->rank], hi = d->cut[d->rank + 1];
    int figs = sumsq || bad;
    optim_step_slice(o, p, g, lo, hi, factor, zero_g, figs ? d->parts + d->pcut[d->rank] : NULL);
    if (zero_g) { /* the others' slices: this process's own gradients, not needed after the sum */
        if (lo) be->zero(be, g, sizeof(float) * lo);
        if (hi < n) be->zero(be, g + hi, sizeof(float) * (n - hi));
    }
    be->gather_procs(be, p, d->cut, 0);
    if (figs) {
        be->gather_procs(be, d->parts, d->pcut, 1);
        be->sum_parts(be, sumsq, bad, d->parts, (long)(d->pcut[d->procs] / 2));
    }
}

void ddp_gather_state(ddp_t *d, optim_state_t *o) {
    if (!d->shard) return;
    set_cut(d, o->n);
    for (int j = 0; j < 3; j++) {
        const char *name;
        float *s = optim_buffer(o, j, &name);
        if (s) d->be->gather_procs(d->be, s, d->cut, 0);
    }
}
