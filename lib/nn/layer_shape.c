/* layer_shape.c: reshape CxHxW (torch.nn.Unflatten(1, (C, H, W))) and flatten
 * (torch.nn.Flatten()). Both keep the C-ordered data as it is and change only the shape;
 * forward and backward are device copies (the tangent passes too). */
#include <stddef.h>

#include "lib/base/common.h"
#include "layer.h"

static int reshape_setup(layer_t *l) {
    shape3_t r = l->reshape;
    if (r.c <= 0 || r.h <= 0 || r.w <= 0) return gt_err("reshape needs a positive shape CxHxW");
    if (shape3_size(r) != shape3_size(l->in))
        return gt_err("cannot reshape %dx%dx%d (%ld values) to %dx%dx%d (%ld values)", l->in.c, l->in.h, l->in.w,
                      shape3_size(l->in), r.c, r.h, r.w, shape3_size(r));
    l->out = r;
    l->n_params = l->n_bias = l->n_state = l->n_saved = l->n_saved_fixed = l->workspace = 0;
    return 0;
}

static int flatten_setup(layer_t *l) {
    l->out = (shape3_t){(int)shape3_size(l->in), 1, 1};
    l->n_params = l->n_bias = l->n_state = l->n_saved = l->n_saved_fixed = l->workspace = 0;
    return 0;
}

static void copy_forward(const nn_ctx_t *ctx, layer_t *l, float *y, const float *x, int B) {
    if (y != x) ctx->be->copy(ctx->be, y, x, sizeof(float) * (size_t)B * (size_t)shape3_size(l->in));
}

/* dx = dy (zeros when dy is NULL) */
static void copy_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, const float *dy, const float *x,
                          const float *y, int B) {
    (void)x;
    (void)y;
    size_t n = sizeof(float) * (size_t)B * (size_t)shape3_size(l->in);
    if (dx && !dy) ctx->be->zero(ctx->be, dx, n);
    else if (dx && dx != dy) ctx->be->copy(ctx->be, dx, dy, n);
}

static void copy_jvp_tangent(const nn_ctx_t *ctx, layer_t *l, float *ty, const float *x, const float *tx, int B) {
    (void)x;
    copy_forward(ctx, l, ty, tx, B);
}

static void copy_jvp_forward(const nn_ctx_t *ctx, layer_t *l, float *y, float *ty, const float *x,
                             const float *tx, int B) {
    copy_forward(ctx, l, y, x, B);
    copy_jvp_tangent(ctx, l, ty, x, tx, B);
}

static void copy_jvp_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, float *dtx, const float *dy,
                              const float *dty, const float *x, const float *tx, const float *y,
                              const float *ty, int B) {
    (void)tx;
    (void)ty;
    copy_backward(ctx, l, dx, dy, x, y, B);
    copy_backward(ctx, l, dtx, dty, x, y, B);
}

const layer_ops_t layer_reshape_ops = {
    .name = "reshape",
    .args = SPEC_SHAPE,
    .setup = reshape_setup,
    .forward = copy_forward,
    .backward = copy_backward,
    .jvp_forward = copy_jvp_forward,
    .jvp_backward = copy_jvp_backward,
    .jvp_tangent = copy_jvp_tangent,
};

const layer_ops_t layer_flatten_ops = {
    .name = "flatten",
    .args = 0,
    .setup = flatten_setup,
    .forward = copy_forward,
    .backward = copy_backward,
    .jvp_forward = copy_jvp_forward,
    .jvp_backward = copy_jvp_backward,
    .jvp_tangent = copy_jvp_tangent,
};
