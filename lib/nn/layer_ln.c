/* layer_ln.c: layer normalisation, torch.nn.LayerNorm over the whole per-sample shape
 * (normalized_shape [C] for a feature vector C x 1 x 1, [C, H, W] otherwise).
 *
 *   x (B, N)  N = C*H*W     w (N)  b (N)  (absent with noaffine)     y (B, N)
 *   saved per sample: mean, inv_std        workspace per sample: 2 floats (jvp_backward)
 *
 * y = x_hat * w + b, x_hat = (x - mean) r, r = 1 / sqrt(var + eps), mean and biased variance
 * of the sample's N values accumulated in double (two passes).
 *
 * Backward: with a = w dy,  dx = r P(a),  where for any v
 *   P(v) = v - mean(v) - x_hat mean(x_hat v)      (the Jacobian of x_hat is r P, P = P^T);
 *   dw += sum over samples of dy x_hat, db += sum of dy.
 * Tangent (gradient penalty): t_hat = r P(tx), ty = w t_hat.
 * Its reverse, given dy and dty, with a = w dy, c = w dty, m = mean(x_hat tx),
 * Cx = sum c x_hat, T = sum c t_hat:
 *   dtx = r P(c)
 *   dx  = r P(a) - r (Cx/N) t_hat - r^2 m P(c) - r (T/N) x_hat
 *   dw += sum of dy x_hat + dty t_hat,  db += sum of dy.
 * (From T = r sum c (u - m x_hat), u = tx - mean(tx): dr = -r^2 mean(x_hat dx) and
 * d x_hat = r P(dx), then P's symmetry; checked against finite differences of jvp_forward
 * in tests/unit/test_layer_norm.c and against torch's double backward in
 * tests/ref/test_layers_norm.py.)
 * Instance normalization (layer_in.c) runs the same operations on (sample, channel) rows: the
 * passes and the init below serve both kinds (ln_common.h), the rows chosen by the kind.
 * The loops are the backend's (backend_ops.h ln_*; the CPU splits samples over threads for y,
 * dx, dtx and sums the parameter gradients over samples per element in a second loop split
 * over elements, so no result depends on the thread count). */
#include <stddef.h>
#include <string.h>

#include "lib/base/common.h"
#include "layer.h"
#include "ln_common.h"

static int ln_setup(layer_t *l) {
    if (!(l->eps > 0)) return gt_err("eps must be positive");
    size_t N = (size_t)shape3_size(l->in);
    l->out = l->in;
    l->n_bias = l->has_bias ? N : 0;
    l->n_params = 2 * l->n_bias;
    if (l->in.h == 1 && l->in.w == 1) {
        l->w_ndim = l->b_ndim = 0;
    } else {
        l->w_ndim = l->b_ndim = 3;
        l->w_shape[0] = l->b_shape[0] = l->in.c;
        l->w_shape[1] = l->b_shape[1] = l->in.h;
        l->w_shape[2] = l->b_shape[2] = l->in.w;
    }
    l->n_state = 0;
    l->n_saved = 2;
    l->n_saved_fixed = 0;
    l->workspace = 2;
    return 0;
}

void ln_common_init(backend_t *be, layer_t *l, init_mode_t mode, uint64_t seed) {
    (void)mode;
    (void)seed;
    if (!l->n_bias) return;
    be->fill(be, l->w, 1.0f, l->n_bias);
    be->fill(be, l->b, 0.0f, l->n_bias);
}

static ln_args_t ln_args(const nn_ctx_t *ctx, const layer_t *l, int B) {
    ln_args_t a;
    memset(&a, 0, sizeof a);
    a.B = B;
    a.N = shape3_size(l->in);
    a.C = l->ops == &layer_in_ops ? l->in.c : 0; /* instance normalization: a row per channel */
    a.eps = l->eps;
    a.w = l->w;
    a.b = l->b;
    a.dw = ctx->skip_param_grads ? NULL : l->dw; /* NULL: the backward passes leave dw, db alone */
    a.db = ctx->skip_param_grads ? NULL : l->db;
    a.saved = l->saved;
    a.ws = ctx->workspace;
    return a;
}

void ln_common_forward(const nn_ctx_t *ctx, layer_t *l, float *y, const float *x, int B) {
    ln_args_t a = ln_args(ctx, l, B);
    a.y = y;
    a.x = x;
    ctx->be->ln_forward(ctx->be, &a);
}

void ln_common_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, const float *dy, const float *x,
                        const float *y, int B) {
    (void)y;
    ln_args_t a = ln_args(ctx, l, B);
    a.dx = dx;
    a.dy = dy;
    a.x = x;
    ctx->be->ln_backward(ctx->be, &a);
}

void ln_common_jvp_forward(const nn_ctx_t *ctx, layer_t *l, float *y, float *ty, const float *x,
                           const float *tx, int B) {
    ln_args_t a = ln_args(ctx, l, B);
    a.y = y;
    a.ty = ty;
    a.x = x;
    a.tx = tx;
    ctx->be->ln_jvp_forward(ctx->be, &a);
}

void ln_common_jvp_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, float *dtx, const float *dy,
                            const float *dty, const float *x, const float *tx, const float *y,
                            const float *ty, int B) {
    (void)y;
    (void)ty;
    ln_args_t a = ln_args(ctx, l, B);
    a.dx = dx;
    a.dtx = dtx;
    a.dy = dy;
    a.dty = dty;
    a.x = x;
    a.tx = tx;
    ctx->be->ln_jvp_backward(ctx->be, &a);
}

const layer_ops_t layer_ln_ops = {
    .name = "ln",
    .args = SPEC_EPS | SPEC_AFFINE,
    .setup = ln_setup,
    .init = ln_common_init,
    .forward = ln_common_forward,
    .backward = ln_common_backward,
    .jvp_forward = ln_common_jvp_forward,
    .jvp_backward = ln_common_jvp_backward,
    .jvp_curved = 1,
};
