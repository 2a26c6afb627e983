/* ddp.c: gradient sums in buckets during the backward pass (ddp.h). */
#include "ddp.h"

void ddp_init(ddp_t *d, backend_t *be, double bucket_mb) {
    d->be = be;
    d->bucket = (size_t)(bucket_mb * 1e6 / sizeof(float));
    d->g = NULL;
    d->n = d->next = 0;
}

/* the hook: grads [from, n) are final; start [from, next) when it is a bucket's worth, except
 * the last bucket (from 0), which ddp_finish starts with the loss figures riding on it */
static void ready(void *arg, size_t from) {
    ddp_t *d = arg;
    backend_t *be = d->be;
    if (from > 0 && d->next - from >= d->bucket) {
        be->sum_procs_start(be, d->g + from, d->next - from, 0, 0);
        d->next = from;
    } else if (be->sum_procs_poll) {
        be->sum_procs_poll(be);
    }
}

const nn_grad_hook_t *ddp_begin(ddp_t *d, float *g, size_t n) {
    d->g = g;
    d->n = d->next = n;
    if (!d->bucket || !d->be->sum_procs_start) return NULL;
    d->hook.fn = ready;
    d->hook.arg = d;
    return &d->hook;
}

void ddp_finish(ddp_t *d, float *g, size_t n, double *stats, const int *first, const int *count, int k) {
    backend_t *be = d->be;
    size_t rest = d->g == g && d->n == n ? d->next : n; /* what ddp_begin's hook did not start */
    d->g = NULL;
    if (!be->sum_procs_start) { /* one sum at a time */
        be->sum_procs(be, g, n, 0);
        for (int i = 0; i < k; i++) be->sum_procs(be, stats + first[i], (size_t)count[i], 1);
        return;
    }
    if (rest) be->sum_procs_start(be, g, rest, 0, k > 0);
    for (int i = 0; i < k; i++) be->sum_procs_start(be, stats + first[i], (size_t)count[i], 1, i + 1 < k);
    be->sum_procs_wait(be);
}
