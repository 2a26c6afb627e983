/* layer_noise.c: additive Gaussian noise, the tutorials' "noise inside D": in training mode
 * y = x + sigma z with z standard normal, in evaluation mode y = x.
 *
 *   x (B, N)  N = C*H*W    y (B, N)    no parameters, nothing saved
 *
 * The draw is a pure function of Philox, keyed as dropout's masks are (layer_dropout.c): element
 * k of sample i is
 *   z = philox_normal(ctx->seed, PHILOX_STREAM_NOISE, ctx->rng_step,
 *                     L * 2^48 + (ctx->sample_base + i) * N + k),   L the layer's number (layer.h index),
 * so it depends on the global sample index (not on how a batch is split, nor on the thread count
 * or the device), a new rng_step gives a new draw, and a resumed run draws what the run that
 * never stopped draws. The noise does not depend on x: the gradient passes straight through
 * (dx = dy), and the gradient penalty's tangent is ty = tx (the jvp forward's y adds the same
 * draw as the forward of the same pass). The loop is the backend's (backend_ops.h add_noise,
 * on PHILOX_STREAM_NOISE). */
#include <stddef.h>

#include "lib/base/common.h"
#include "lib/base/philox.h"
#include "layer.h"

static int noise_setup(layer_t *l) {
    if (!(l->sigma >= 0.0f)) return gt_err("standard deviation must be >= 0");
    l->out = l->in;
    l->n_params = l->n_bias = l->n_state = l->n_saved = l->n_saved_fixed = l->workspace = 0;
    return 0;
}

/* o = i (a copy; zeros when i is NULL), unless o is NULL or o == i */
static void pass_through(backend_t *be, float *o, const float *i, size_t n) {
    if (!o || o == i) return;
    if (i) be->copy(be, o, i, sizeof(float) * n);
    else be->zero(be, o, sizeof(float) * n);
}

static void noise_forward(const nn_ctx_t *ctx, layer_t *l, float *y, const float *x, int B) {
    backend_t *be = ctx->be;
    size_t N = (size_t)shape3_size(l->in), n = (size_t)B * N;
    if (!ctx->training || l->sigma == 0.0f) {
        pass_through(be, y, x, n);
        return;
    }
    be->add_noise(be, y, x, n, ctx->seed, PHILOX_STREAM_NOISE, ctx->rng_step,
                  ((uint64_t)l->index << 48) + ctx->sample_base * (uint64_t)N, l->sigma);
}

static void noise_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, const float *dy, const float *x,
                           const float *y, int B) {
    (void)x;
    (void)y;
    pass_through(ctx->be, dx, dy, (size_t)B * (size_t)shape3_size(l->in));
}

static void noise_jvp_tangent(const nn_ctx_t *ctx, layer_t *l, float *ty, const float *x, const float *tx, int B) {
    (void)x;
    pass_through(ctx->be, ty, tx, (size_t)B * (size_t)shape3_size(l->in));
}

static void noise_jvp_forward(const nn_ctx_t *ctx, layer_t *l, float *y, float *ty, const float *x, const float *tx,
                              int B) {
    noise_forward(ctx, l, y, x, B);
    noise_jvp_tangent(ctx, l, ty, x, tx, B);
}

static void noise_jvp_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, float *dtx, const float *dy,
                               const float *dty, const float *x, const float *tx, const float *y, const float *ty,
                               int B) {
    (void)x;
    (void)tx;
    (void)y;
    (void)ty;
    size_t n = (size_t)B * (size_t)shape3_size(l->in);
    pass_through(ctx->be, dx, dy, n);
    pass_through(ctx->be, dtx, dty, n);
}

const layer_ops_t layer_noise_ops = {
    .name = "noise",
    .args = SPEC_SIGMA,
    .setup = noise_setup,
    .forward = noise_forward,
    .backward = noise_backward,
    .jvp_forward = noise_jvp_forward,
    .jvp_backward = noise_jvp_backward,
    .jvp_tangent = noise_jvp_tangent,
};
