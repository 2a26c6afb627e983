/* layer_in.c: instance normalization, torch.nn.InstanceNorm2d(C, affine=..., eps,
 * track_running_stats=False): each channel of each sample normalized over its H*W positions,
 * with the same statistics in training and evaluation modes (no running statistics).
 *
 *   x (B, C, S)  S = H*W     w (C)  b (C)  (absent with noaffine)     y (B, C, S)
 *   saved per sample: mean, inv_std of each channel (2 C)   workspace per sample: 2 C (jvp_backward)
 *
 * y = x_hat * w[c] + b[c], x_hat = (x - mean) r, r = 1 / sqrt(var + eps), mean and biased
 * variance of the S values of (sample, channel), accumulated in double. This is LayerNorm's
 * arithmetic (lib/nn/layer_ln.c has the backward and tangent formulas) applied to each
 * (sample, channel) row of S values instead of each sample, with one scale per row's channel:
 * the backend's ln_* operations with ln_args_t.C = C do it (their parameter gradients sum
 * over samples and positions per channel). The per-element formulas then read, for row (i, c):
 * a = w[c] dy, dx = r P(a) with P over the row; dw[c] += sum over i and positions of
 * dy x_hat (+ dty t_hat in the tangent's reverse pass), db[c] += sum of dy.
 * The instance's statistics mix no samples, so the layer may sit in a gradient-penalty critic
 * (WGAN-GP critics use it where a generator would use BatchNorm). */
#include <stddef.h>
#include <string.h>

#include "lib/base/common.h"
#include "layer.h"

static int in_setup(layer_t *l) {
    if (!(l->eps > 0)) return gt_err("eps must be positive");
    if ((long)l->in.h * l->in.w < 2)
        return gt_err("input is %dx%dx%d: instance normalization needs more than one position per channel", l->in.c,
                      l->in.h, l->in.w);
    size_t C = (size_t)l->in.c;
    l->out = l->in;
    l->n_bias = l->has_bias ? C : 0;
    l->n_params = 2 * l->n_bias;
    l->w_ndim = l->b_ndim = 0;
    l->n_state = 0;
    l->n_saved = 2 * C;
    l->n_saved_fixed = 0;
    l->workspace = 2 * C;
    return 0;
}

static void in_init(backend_t *be, layer_t *l, init_mode_t mode, uint64_t seed) {
    (void)mode;
    (void)seed;
    if (!l->n_bias) return;
    be->fill(be, l->w, 1.0f, l->n_bias);
    be->fill(be, l->b, 0.0f, l->n_bias);
}

static ln_args_t in_args(const nn_ctx_t *ctx, const layer_t *l, int B) {
    ln_args_t a;
    memset(&a, 0, sizeof a);
    a.B = B;
    a.N = shape3_size(l->in);
    a.C = l->in.c;
    a.eps = l->eps;
    a.w = l->w;
    a.b = l->b;
    a.dw = ctx->skip_param_grads ? NULL : l->dw;
    a.db = ctx->skip_param_grads ? NULL : l->db;
    a.saved = l->saved;
    a.ws = ctx->workspace;
    return a;
}

static void in_forward(const nn_ctx_t *ctx, layer_t *l, float *y, const float *x, int B) {
    ln_args_t a = in_args(ctx, l, B);
    a.y = y;
    a.x = x;
    ctx->be->ln_forward(ctx->be, &a);
}

static void in_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, const float *dy, const float *x,
                        const float *y, int B) {
    (void)y;
    ln_args_t a = in_args(ctx, l, B);
    a.dx = dx;
    a.dy = dy;
    a.x = x;
    ctx->be->ln_backward(ctx->be, &a);
}

static void in_jvp_forward(const nn_ctx_t *ctx, layer_t *l, float *y, float *ty, const float *x,
                           const float *tx, int B) {
    ln_args_t a = in_args(ctx, l, B);
    a.y = y;
    a.ty = ty;
    a.x = x;
    a.tx = tx;
    ctx->be->ln_jvp_forward(ctx->be, &a);
}

static void in_jvp_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, float *dtx, const float *dy,
                            const float *dty, const float *x, const float *tx, const float *y,
                            const float *ty, int B) {
    (void)y;
    (void)ty;
    ln_args_t a = in_args(ctx, l, B);
    a.dx = dx;
    a.dtx = dtx;
    a.dy = dy;
    a.dty = dty;
    a.x = x;
    a.tx = tx;
    ctx->be->ln_jvp_backward(ctx->be, &a);
}

const layer_ops_t layer_in_ops = {
    .name = "in",
    .args = SPEC_EPS | SPEC_AFFINE,
    .setup = in_setup,
    .init = in_init,
    .forward = in_forward,
    .backward = in_backward,
    .jvp_forward = in_jvp_forward,
    .jvp_backward = in_jvp_backward,
};
