/* layer_bn.c: batch normalisation, torch.nn.BatchNorm1d (input C x 1 x 1) and BatchNorm2d
 * (input C x H x W): statistics per channel over the batch and the spatial positions.
 *
 *   x (B, C, S)  S = H*W     w (C)  b (C)  (absent with noaffine)     y (B, C, S)
 *   state: running_mean (C) then running_var (C)
 *   saved (fixed, not per sample): mean (C) then inv_std (C) of the forward pass
 *
 * Training mode: y = (x - mean) / sqrt(var + eps) * w + b with the batch mean and the biased
 * batch variance over n = B*S values, accumulated in double (two passes); then
 *   running_mean = (1 - momentum) running_mean + momentum mean
 *   running_var  = (1 - momentum) running_var  + momentum var * n / (n - 1)   (unbiased)
 * and *num_batches_tracked += 1, as torch does. (torch refuses n = 1; we then update
 * running_var with the biased variance 0 instead of dividing by zero.)
 * Eval mode uses the running statistics. Backward follows the forward's mode (ctx->training
 * must be the same): the full batch-statistics backward in training mode, the affine one in
 * eval mode. Backward recomputes x_hat from x and the saved mean and inv_std.
 * A relu or lrelu after the layer runs inside its passes when they are fused (layer.h
 * layer_bn_act_*): forward writes only the activation's output, backward takes the
 * activation's derivative at the layer's output recomputed from x, with the bits of the two
 * layers' own passes.
 *
 * Init: w = 1 (INIT_TORCH) or 1 + 0.02 * philox_normal(seed, PHILOX_STREAM_INIT, layer index,
 * j) (INIT_DCGAN, as the DCGAN tutorial's N(1, 0.02)); b = 0; running_mean 0, running_var 1.
 * The loops are the backend's (backend_ops.h bn_*; the CPU splits the work over channels, or
 * blocks of features for BatchNorm1d, each summed in a fixed order). No jvp ops: BatchNorm mixes samples, which the
 * gradient penalty forbids (use ln in a WGAN-GP critic). */
#include <stddef.h>
#include <string.h>

#include "lib/base/common.h"
#include "layer.h"
#include "lib/base/philox.h"

static int bn_setup(layer_t *l) {
    if (!(l->eps > 0)) return gt_err("eps must be positive");
    if (!(l->momentum >= 0 && l->momentum <= 1)) return gt_err("momentum must be in [0, 1]");
    size_t C = (size_t)l->in.c;
    l->out = l->in;
    l->n_bias = l->has_bias ? C : 0;
    l->n_params = 2 * l->n_bias;
    l->w_ndim = l->b_ndim = 0;
    l->n_state = 2 * C;
    l->n_saved = 0;
    l->n_saved_fixed = 2 * C;
    l->workspace = 0;
    return 0;
}

/* BatchNorm's initialisation, shared with cbn (lib/nn/layer_class.c): n_affine scales and shifts
 * (0: none), the scales N(1, 0.02) under INIT_DCGAN (DCGAN's BatchNorm init) or 1, the shifts
 * 0; running mean 0 and variance 1 for the C channels. */
void layer_bn_init(backend_t *be, layer_t *l, init_mode_t mode, uint64_t seed, size_t n_affine) {
    size_t C = (size_t)l->in.c;
    if (n_affine) {
        if (mode == INIT_DCGAN)
            be->philox_fill(be, l->w, n_affine, FILL_NORMAL, seed, PHILOX_STREAM_INIT, (uint32_t)l->index, 0, 0.02f,
                            1.0f);
        else
            be->fill(be, l->w, 1.0f, n_affine);
        be->fill(be, l->b, 0.0f, n_affine);
    }
    be->fill(be, l->state, 0.0f, C);
    be->fill(be, l->state + C, 1.0f, C);
}

static void bn_init(backend_t *be, layer_t *l, init_mode_t mode, uint64_t seed) {
    layer_bn_init(be, l, mode, seed, l->n_params ? (size_t)l->in.c : 0);
}

/* The backend's view of a BatchNorm for a batch of B, shared with cbn: the normalisation
 * (statistics of the global batch in a data-parallel run); w, b, dw, db are left NULL. */
bn_args_t layer_bn_args(const nn_ctx_t *ctx, const layer_t *l, int B) {
    bn_args_t a;
    memset(&a, 0, sizeof a);
    a.B = B;
    a.C = l->in.c;
    a.S = (long)l->in.h * l->in.w;
    a.eps = l->eps;
    a.momentum = l->momentum;
    a.training = ctx->training;
    a.mean = l->saved;
    a.inv_std = l->saved + l->in.c;
    a.running = l->state;
    a.sync = ctx->training ? ctx->bn_sync : NULL;
    return a;
}

static bn_args_t bn_args(const nn_ctx_t *ctx, const layer_t *l, int B) {
    bn_args_t a = layer_bn_args(ctx, l, B);
    a.w = l->w;
    a.b = l->b;
    a.dw = l->dw;
    a.db = l->db;
    return a;
}

/* bn_args with the activation act after the layer fused (NULL: none; bn_args_t.act) */
static bn_args_t bn_args_act(const nn_ctx_t *ctx, const layer_t *l, const layer_t *act, int B) {
    bn_args_t a = bn_args(ctx, l, B);
    act_kind_t k;
    if (act && layer_act_reads_x(act, &k)) {
        a.act = 1 + (int)k;
        a.slope = act->slope;
    }
    return a;
}

static void bn_forward_act(const nn_ctx_t *ctx, layer_t *l, const layer_t *act, float *y, const float *x, int B) {
    bn_args_t a = bn_args_act(ctx, l, act, B);
    a.y = y;
    a.x = x;
    ctx->be->bn_forward(ctx->be, &a);
    if (ctx->training && l->num_batches_tracked) ++*l->num_batches_tracked;
}

static void bn_backward_act(const nn_ctx_t *ctx, layer_t *l, const layer_t *act, float *dx, const float *dy,
                            const float *x, int B) {
    int param_grads = l->dw && !ctx->skip_param_grads;
    if (!dx && !param_grads) return;
    bn_args_t a = bn_args_act(ctx, l, act, B);
    if (!param_grads) a.dw = a.db = NULL; /* the backend leaves dw, db alone */
    a.dx = dx;
    a.dy = dy;
    a.x = x;
    ctx->be->bn_backward(ctx->be, &a);
}

static void bn_forward(const nn_ctx_t *ctx, layer_t *l, float *y, const float *x, int B) {
    bn_forward_act(ctx, l, NULL, y, x, B);
}

static void bn_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, const float *dy, const float *x,
                        const float *y, int B) {
    (void)y;
    bn_backward_act(ctx, l, NULL, dx, dy, x, B);
}

/* ---- fused with the activation after it (layer.h layer_bn_act_*; layer_fuse_at decides) --- */

int layer_bn_act_ok(const layer_t *bn, const layer_t *act) {
    act_kind_t k;
    return bn->ops == &layer_bn_ops && !bn->sn && !bn->wn && layer_act_reads_x(act, &k) && !act->sn && !act->wn;
}

void layer_bn_act_forward(const nn_ctx_t *ctx, layer_t *bn, const layer_t *act, float *z, const float *x, int B) {
    bn_forward_act(ctx, bn, act, z, x, B);
}

void layer_bn_act_backward(const nn_ctx_t *ctx, layer_t *bn, const layer_t *act, float *dx, const float *dz,
                           const float *x, int B) {
    bn_backward_act(ctx, bn, act, dx, dz, x, B);
}

const layer_ops_t layer_bn_ops = {
    .name = "bn",
    .args = SPEC_EPS | SPEC_MOM | SPEC_AFFINE,
    .setup = bn_setup,
    .init = bn_init,
    .forward = bn_forward,
    .backward = bn_backward,
};
