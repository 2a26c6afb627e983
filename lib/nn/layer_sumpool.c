/* layer_sumpool.c: global sum pooling, `sumpool`: y[b, c] = the sum over H and W of x[b, c]
 * (torch: x.sum(dim=(2, 3), keepdim=True); SNGAN's and BigGAN's critics end with
 * relu; sumpool; linear 1).
 *
 *   x (B, C, H, W)    y (B, C, 1, 1)    no parameters, nothing saved
 *
 * Forward is the backend's bias_grad with C = B*C planes of inner = H*W (each plane summed in
 * double, in an order fixed by the sizes) into a zeroed y; backward spreads dy[b, c] over the
 * plane with bias_add into a zeroed dx. The layer is linear, so its tangent is the same map
 * applied to tx, and the tangent's reverse is the backward applied to dty. */
#include <stddef.h>

#include "layer.h"

static int sumpool_setup(layer_t *l) {
    l->out = (shape3_t){l->in.c, 1, 1};
    l->n_params = l->n_bias = l->n_state = l->n_saved = l->n_saved_fixed = l->workspace = 0;
    return 0;
}

/* y (B, C) = plane sums of x (B, C, H*W) */
static void plane_sums(const nn_ctx_t *ctx, const layer_t *l, float *y, const float *x, int B) {
    backend_t *be = ctx->be;
    long planes = (long)B * l->in.c;
    be->zero(be, y, sizeof(float) * (size_t)planes);
    be->bias_grad(be, y, x, 1, planes, (long)l->in.h * l->in.w);
}

/* dx (B, C, H*W) = dy[b, c] at every position (dy NULL: zeros) */
static void plane_spread(const nn_ctx_t *ctx, const layer_t *l, float *dx, const float *dy, int B) {
    backend_t *be = ctx->be;
    long planes = (long)B * l->in.c, hw = (long)l->in.h * l->in.w;
    be->zero(be, dx, sizeof(float) * (size_t)planes * (size_t)hw);
    if (dy) be->bias_add(be, dx, dy, 1, planes, hw);
}

static void sumpool_forward(const nn_ctx_t *ctx, layer_t *l, float *y, const float *x, int B) {
    plane_sums(ctx, l, y, x, B);
}

static void sumpool_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, const float *dy, const float *x,
                             const float *y, int B) {
    (void)x;
    (void)y;
    if (dx) plane_spread(ctx, l, dx, dy, B);
}

static void sumpool_jvp_tangent(const nn_ctx_t *ctx, layer_t *l, float *ty, const float *x, const float *tx, int B) {
    (void)x;
    plane_sums(ctx, l, ty, tx, B);
}

static void sumpool_jvp_forward(const nn_ctx_t *ctx, layer_t *l, float *y, float *ty, const float *x,
                                const float *tx, int B) {
    plane_sums(ctx, l, y, x, B);
    sumpool_jvp_tangent(ctx, l, ty, x, tx, B);
}

static void sumpool_jvp_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, float *dtx, const float *dy,
                                 const float *dty, const float *x, const float *tx, const float *y,
                                 const float *ty, int B) {
    (void)x;
    (void)tx;
    (void)y;
    (void)ty;
    if (dx) plane_spread(ctx, l, dx, dy, B);
    if (dtx) plane_spread(ctx, l, dtx, dty, B);
}

const layer_ops_t layer_sumpool_ops = {
    .name = "sumpool",
    .args = 0,
    .setup = sumpool_setup,
    .forward = sumpool_forward,
    .backward = sumpool_backward,
    .jvp_forward = sumpool_jvp_forward,
    .jvp_backward = sumpool_jvp_backward,
    .jvp_tangent = sumpool_jvp_tangent,
};
