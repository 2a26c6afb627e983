/* layer_linear.c: fully connected layer, torch.nn.Linear: y = x W^T + b.
 *
 *   x (B, in)   W (out, in)   b (out)   y (B, out)
 * The input must be a feature vector (in x 1 x 1): put `flatten` before a linear layer on
 * images, as torch.nn.Linear would otherwise act on the last axis only.
 *
 * Initialisation, from Philox (seed, PHILOX_STREAM_INIT, step = layer index), element j of
 * the weight (row-major, out x in) at index j and element j of the bias at index out*in + j:
 *   INIT_TORCH: w = (2u - 1) / sqrt(in), b = (2u - 1) / sqrt(in), u = philox_uniform
 *               (torch's kaiming_uniform_(a=sqrt(5)) bound gain*sqrt(3/fan_in) = 1/sqrt(fan_in))
 *   INIT_DCGAN: w = 0.02 * philox_normal, b = 0. */
#include <math.h>
#include <stddef.h>

#include "lib/base/common.h"
#include "layer.h"
#include "lib/base/philox.h"

static int linear_setup(layer_t *l) {
    if (l->in.h != 1 || l->in.w != 1)
        return gt_err("input is %dx%dx%d, not a feature vector: put flatten before linear", l->in.c, l->in.h,
                      l->in.w);
    if (l->units <= 0) return gt_err("number of output features must be positive");
    long in = l->in.c;
    l->out = (shape3_t){l->units, 1, 1};
    l->n_bias = l->has_bias ? (size_t)l->units : 0;
    l->n_params = (size_t)l->units * (size_t)in + l->n_bias;
    l->w_ndim = 2;
    l->w_shape[0] = l->units;
    l->w_shape[1] = (int)in;
    l->b_ndim = 1;
    l->b_shape[0] = l->units;
    l->n_state = l->n_saved = l->n_saved_fixed = l->workspace = 0;
    return 0;
}

static void linear_init(backend_t *be, layer_t *l, init_mode_t mode, uint64_t seed) {
    layer_init_affine(be, l, mode, seed, (double)l->in.c);
}

/* y (B, out) = x (B, in) W^T (+ b) */
static void affine(const nn_ctx_t *ctx, const layer_t *l, float *y, const float *x, int B, int with_bias) {
    int in = l->in.c, out = l->units;
    backend_t *be = ctx->be;
    be->gemm(be, 0, 1, B, out, in, 1.0f, x, in, l->w, in, 0.0f, y, out);
    if (with_bias && l->b) be->bias_add(be, y, l->b, B, out, 1);
}

static void linear_forward(const nn_ctx_t *ctx, layer_t *l, float *y, const float *x, int B) {
    affine(ctx, l, y, x, B, 1);
}

static void linear_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, const float *dy, const float *x,
                            const float *y, int B) {
    (void)y;
    int in = l->in.c, out = l->units;
    backend_t *be = ctx->be;
    if (!ctx->skip_param_grads) {
        be->gemm(be, 1, 0, out, in, B, 1.0f, dy, out, x, in, 1.0f, l->dw, in); /* dW += dy^T x */
        if (l->db) be->bias_grad(be, l->db, dy, B, out, 1);                     /* db += column sums of dy */
    }
    if (dx) be->gemm(be, 0, 0, B, in, out, 1.0f, dy, out, l->w, in, 0.0f, dx, in); /* dx = dy W */
}

static void linear_jvp_tangent(const nn_ctx_t *ctx, layer_t *l, float *ty, const float *x, const float *tx, int B) {
    (void)x;
    affine(ctx, l, ty, tx, B, 0);
}

static void linear_jvp_forward(const nn_ctx_t *ctx, layer_t *l, float *y, float *ty, const float *x,
                               const float *tx, int B) {
    affine(ctx, l, y, x, B, 1);
    linear_jvp_tangent(ctx, l, ty, x, tx, B);
}

/* dy NULL (zero): only the tangent's products */
static void linear_jvp_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, float *dtx, const float *dy,
                                const float *dty, const float *x, const float *tx, const float *y,
                                const float *ty, int B) {
    (void)y;
    (void)ty;
    int in = l->in.c, out = l->units;
    backend_t *be = ctx->be;
    if (!ctx->skip_param_grads) {
        if (dy) be->gemm(be, 1, 0, out, in, B, 1.0f, dy, out, x, in, 1.0f, l->dw, in); /* dW += dy^T x */
        be->gemm(be, 1, 0, out, in, B, 1.0f, dty, out, tx, in, 1.0f, l->dw, in);       /*    + dty^T tx */
        if (l->db && dy) be->bias_grad(be, l->db, dy, B, out, 1);
    }
    if (dx && dy) be->gemm(be, 0, 0, B, in, out, 1.0f, dy, out, l->w, in, 0.0f, dx, in);
    else if (dx) be->zero(be, dx, sizeof(float) * (size_t)B * (size_t)in);
    if (dtx) be->gemm(be, 0, 0, B, in, out, 1.0f, dty, out, l->w, in, 0.0f, dtx, in);
}

/* ---- fused with the activation after it (layer.h layer_linear_act_*; net.c decides) -------- */

int layer_linear_act_ok(const layer_t *lin, const layer_t *act) {
    act_kind_t k;
    return lin->ops == &layer_linear_ops && lin->b && !lin->sn && !lin->wn && layer_act_kind(act, &k);
}

void layer_linear_act_forward(const nn_ctx_t *ctx, layer_t *lin, const layer_t *act, float *y, float *z,
                              const float *x, int B) {
    act_kind_t k = ACT_RELU;
    layer_act_kind(act, &k);
    affine(ctx, lin, y, x, B, 0);
    ctx->be->bias_act(ctx->be, k, act->slope, y, z, lin->b, B, lin->units, 1);
}

const layer_ops_t layer_linear_ops = {
    .name = "linear",
    .args = SPEC_UNITS | SPEC_NOBIAS | SPEC_SN | SPEC_WN,
    .size_name = "number of output features",
    .setup = linear_setup,
    .init = linear_init,
    .forward = linear_forward,
    .backward = linear_backward,
    .jvp_forward = linear_jvp_forward,
    .jvp_backward = linear_jvp_backward,
    .jvp_tangent = linear_jvp_tangent,
};
