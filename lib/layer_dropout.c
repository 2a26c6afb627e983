/* layer_dropout.c: torch.nn.Dropout(p), inverted: in training mode each element is zeroed
 * with probability p and the others are scaled by 1 / (1 - p); in eval mode y = x.
 *
 *   x (B, N)  N = C*H*W    y (B, N)    no parameters
 *   saved: the forward's keep mask, one byte per element (B*N bytes in the float buffer)
 *
 * The mask is a pure function of Philox: element k of sample i is kept iff
 *   philox_uniform(ctx->seed, PHILOX_STREAM_DROPOUT, ctx->rng_step, (ctx->sample_base + i) * N + k) >= p
 * so it is keyed by the global sample index: the same samples get the same masks however a
 * batch is split (data-parallel training relies on it), a new rng_step gives new masks.
 * The forward saves its mask as bytes and backward reads them (recomputing the mask cost a
 * Philox block per 4 elements again: half the layer's time); backward must follow the forward
 * of the same batch and get its training flag. The tangent of the gradient penalty gets the same
 * mask: ty = mask tx / (1 - p). Elements are split over threads, each computed from its own
 * index (and each mask byte written by one thread), so results do not depend on the thread count. */
#include <stddef.h>
#include <string.h>

#include "common.h"
#include "layer.h"
#include "norm_math.h"
#include "philox.h"

static int dropout_setup(layer_t *l) {
    if (!(l->p >= 0.0f && l->p < 1.0f)) return gt_err("probability must be in [0, 1)");
    l->out = l->in;
    l->n_params = l->n_bias = l->n_state = l->n_saved_fixed = l->workspace = 0;
    l->n_saved = ((size_t)shape3_size(l->in) + 3) / 4; /* a byte per element */
    return 0;
}

typedef struct {
    uint64_t seed, base; /* base: global flat index of the batch's first element */
    uint32_t step;
    float p, scale;
    float *o1, *o2;       /* outputs: y, dx (and ty, dtx) */
    const float *i1, *i2; /* their inputs: x, dy (and tx, dty); i2 may be NULL */
    unsigned char *mask;  /* (B*N) keep bytes: written by the forward, read by backward */
} drop_job_t;

/* o1 = mask i1 * scale, o2 = mask i2 * scale over local elements [b, e) from the mask bytes
 * (scale times keep as 0/1, without a branch: the mask is random, a branch on it mispredicted) */
static void drop_apply(const drop_job_t *j, long b, long e) {
    const unsigned char *mask = j->mask;
    float scale = j->scale;
    for (int k = 0; k < 2; k++) {
        float *o = k ? j->o2 : j->o1;
        const float *in = k ? j->i2 : j->i1;
        if (!o) continue;
        if (!in) {
            memset(o + b, 0, sizeof(float) * (size_t)(e - b));
            continue;
        }
        for (long i = b; i < e; i++) o[i] = in[i] * (scale * (float)mask[i]);
    }
}

/* forward over local elements [b, e): the mask bytes, one Philox block (4 elements) at a time,
 * then the products */
static void drop_range(void *arg, long b, long e) {
    const drop_job_t *j = arg;
    if (b >= e) return;
    unsigned char *mask = j->mask;
    uint64_t base = j->base;
    uint64_t g0 = base + (uint64_t)b, g1 = base + (uint64_t)e; /* global [g0, g1) */
    for (uint64_t blk = g0 >> 2; blk <= (g1 - 1) >> 2; blk++) {
        philox_u4 r = philox_block(j->seed, PHILOX_STREAM_DROPOUT, j->step, blk);
        uint64_t lo = blk << 2 < g0 ? g0 : blk << 2, hi = (blk << 2) + 4 > g1 ? g1 : (blk << 2) + 4;
        for (uint64_t g = lo; g < hi; g++) mask[g - base] = (unsigned char)dropout_keep_bits(r.v[g & 3], j->p);
    }
    drop_apply(j, b, e);
}

/* backward over [b, e): the forward's saved mask applied to dy (and dty) */
static void drop_saved_range(void *arg, long b, long e) { drop_apply(arg, b, e); }

/* forward (saves the mask) or backward (reads it) over B samples */
static void drop_run(const nn_ctx_t *ctx, const layer_t *l, int B, int backward, float *o1, const float *i1,
                     float *o2, const float *i2) {
    long n = (long)B * shape3_size(l->in);
    if (!ctx->training || l->p == 0.0f) { /* identity */
        if (o1 && o1 != i1) {
            if (i1) memcpy(o1, i1, sizeof(float) * (size_t)n);
            else memset(o1, 0, sizeof(float) * (size_t)n);
        }
        if (o2 && o2 != i2) {
            if (i2) memcpy(o2, i2, sizeof(float) * (size_t)n);
            else memset(o2, 0, sizeof(float) * (size_t)n);
        }
        return;
    }
    drop_job_t j = {ctx->seed, ctx->sample_base * (uint64_t)shape3_size(l->in), ctx->rng_step, l->p,
                    dropout_scale(l->p), o1, o2, i1, i2, (unsigned char *)l->saved};
    void (*fn)(void *, long, long) = backward ? drop_saved_range : drop_range;
    if (n >= 16384) cpu_parallel_for(ctx->be, n, fn, &j);
    else fn(&j, 0, n);
}

static void dropout_forward(const nn_ctx_t *ctx, layer_t *l, float *y, const float *x, int B) {
    drop_run(ctx, l, B, 0, y, x, NULL, NULL);
}

static void dropout_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, const float *dy, const float *x,
                             const float *y, int B) {
    (void)x;
    (void)y;
    if (dx) drop_run(ctx, l, B, 1, dx, dy, NULL, NULL);
}

static void dropout_jvp_forward(const nn_ctx_t *ctx, layer_t *l, float *y, float *ty, const float *x,
                                const float *tx, int B) {
    drop_run(ctx, l, B, 0, y, x, ty, tx);
}

static void dropout_jvp_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, float *dtx, const float *dy,
                                 const float *dty, const float *x, const float *tx, const float *y,
                                 const float *ty, int B) {
    (void)x;
    (void)tx;
    (void)y;
    (void)ty;
    if (dx || dtx) drop_run(ctx, l, B, 1, dx, dy, dtx, dty);
}

const layer_ops_t layer_dropout_ops = {"dropout", dropout_setup, NULL, dropout_forward, dropout_backward,
                                       dropout_jvp_forward, dropout_jvp_backward};
