/* layer_dropout.c: torch.nn.Dropout(p), inverted: in training mode each element is zeroed
 * with probability p and the others are scaled by 1 / (1 - p); in eval mode y = x.
 *
 *   x (B, N)  N = C*H*W    y (B, N)    no parameters
 *   saved: the forward's keep mask, one byte per element (B*N bytes in the float buffer)
 *
 * The mask is a pure function of Philox: element k of sample i is kept iff
 *   philox_uniform(ctx->seed, PHILOX_STREAM_DROPOUT, ctx->rng_step,
 *                  L * 2^48 + (ctx->sample_base + i) * N + k) >= p,   L the layer's number (layer.h index),
 * so it is keyed by the global sample index: the same samples get the same masks however a
 * batch is split (data-parallel training relies on it), a new rng_step gives new masks. The
 * layer index keeps two dropout layers of one pass apart (without it, layer 2's sample 2i
 * would reuse layer 1's sample i draws when N1 = 2 N2); (sample_base + B) * N stays far below
 * 2^48 for any batch that fits in memory.
 * The forward saves its mask as bytes and backward reads them (recomputing the mask cost a
 * Philox block per 4 elements again: half the layer's time); backward must follow the forward
 * of the same batch and get its training flag. The tangent of the gradient penalty gets the
 * same mask: ty = mask tx / (1 - p). The loop is the backend's (backend_ops.h dropout); each
 * element is computed from its own index (and each mask byte written by one thread), so results
 * depend on neither the thread count nor the device. */
#include <stddef.h>

#include "lib/base/common.h"
#include "layer.h"

static int dropout_setup(layer_t *l) {
    if (!(l->p >= 0.0f && l->p < 1.0f)) return gt_err("probability must be in [0, 1)");
    l->out = l->in;
    l->n_params = l->n_bias = l->n_state = l->n_saved_fixed = l->workspace = 0;
    l->n_saved = ((size_t)shape3_size(l->in) + 3) / 4; /* a byte per element */
    return 0;
}

/* forward (draws and saves the mask) or backward (reads it) over B samples */
static void drop_run(const nn_ctx_t *ctx, const layer_t *l, int B, int backward, float *o1, const float *i1,
                     float *o2, const float *i2) {
    backend_t *be = ctx->be;
    size_t n = (size_t)B * (size_t)shape3_size(l->in);
    if (!ctx->training || l->p == 0.0f) { /* identity */
        if (o1 && o1 != i1) {
            if (i1) be->copy(be, o1, i1, sizeof(float) * n);
            else be->zero(be, o1, sizeof(float) * n);
        }
        if (o2 && o2 != i2) {
            if (i2) be->copy(be, o2, i2, sizeof(float) * n);
            else be->zero(be, o2, sizeof(float) * n);
        }
        return;
    }
    be->dropout(be, o1, i1, o2, i2, (unsigned char *)l->saved, !backward, n, ctx->seed, ctx->rng_step,
                ((uint64_t)l->index << 48) + ctx->sample_base * (uint64_t)shape3_size(l->in), l->p);
}

/* ---- fused with the activation before it (layer.h layer_act_dropout_*; net.c decides) ---- */

int layer_act_dropout_ok(const nn_ctx_t *ctx, const layer_t *act, const layer_t *drop) {
    act_kind_t k;
    return drop->ops == &layer_dropout_ops && ctx->training && drop->p > 0.0f && layer_act_reads_x(act, &k) &&
           !act->sn && !act->wn;
}

static void act_drop_run(const nn_ctx_t *ctx, const layer_t *act, layer_t *drop, int backward, float *out,
                         const float *in, const float *x, int B) {
    act_kind_t k = ACT_RELU;
    layer_act_reads_x(act, &k);
    backend_t *be = ctx->be;
    be->act_dropout(be, k, act->slope, backward, out, in, x, (unsigned char *)drop->saved,
                    (size_t)B * (size_t)shape3_size(drop->in), ctx->seed, ctx->rng_step,
                    ((uint64_t)drop->index << 48) + ctx->sample_base * (uint64_t)shape3_size(drop->in), drop->p);
}

void layer_act_dropout_forward(const nn_ctx_t *ctx, const layer_t *act, layer_t *drop, float *y, const float *x,
                               int B) {
    act_drop_run(ctx, act, drop, 0, y, NULL, x, B);
}

void layer_act_dropout_backward(const nn_ctx_t *ctx, const layer_t *act, layer_t *drop, float *dx, const float *dy,
                                const float *x, int B) {
    act_drop_run(ctx, act, drop, 1, dx, dy, x, B);
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

/* the tangent through the mask the forward drew (read, not drawn again) */
static void dropout_jvp_tangent(const nn_ctx_t *ctx, layer_t *l, float *ty, const float *x, const float *tx, int B) {
    (void)x;
    drop_run(ctx, l, B, 1, NULL, NULL, ty, tx);
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

const layer_ops_t layer_dropout_ops = {
    .name = "dropout",
    .args = SPEC_PROB,
    .setup = dropout_setup,
    .forward = dropout_forward,
    .backward = dropout_backward,
    .jvp_forward = dropout_jvp_forward,
    .jvp_backward = dropout_jvp_backward,
    .jvp_tangent = dropout_jvp_tangent,
};
