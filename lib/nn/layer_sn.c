/* layer_sn.c: spectral normalization of a layer's weight (spec flag `sn` or `sn=N` on linear,
 * conv, convT and embed; lib/nn/spec.md), as torch.nn.utils.spectral_norm (PyTorch 1.13) does it.
 * One helper for every kind: the kind's passes read l->w and accumulate into l->dw as usual,
 * and layer.c's layer_forward and the other per-layer passes call these functions around them,
 * wherever the layer sits (net.c's top-level sequence or a residual block's path).
 *
 * The trained tensor is W_orig (checkpoint name `weight_orig`, in the net's params); the layer
 * computes with W = W_orig / sigma, sigma = u^T W_mat v, W_mat = W_orig seen as a matrix of
 * rows = the size of dimension sn_dim (ops->sn_dim: 0, or 1 for convT as torch chooses) by the
 * rest (sn_math.h). u (rows) and v (cols) are state (`weight_u`, `weight_v`, in the net's state):
 *   training-mode forward (net_forward with ctx->training): N power iterations, in place,
 *       v = normalize(W_mat^T u), u = normalize(W_mat v), normalize(x) = x / max(||x||, 1e-12),
 *       then sigma and W from the new u, v. Every call is one use of the module in torch: the
 *       trainer's D runs on the real batch, on the fake batch, on the penalty's interpolates
 *       and in G's update, so a step of n_critic critic updates iterates D's u, v
 *       n_critic * (2 + (wgan-gp)) + 1 times and G's n_critic times, as torch would.
 *   evaluation-mode forward, and the gradient penalty's tangent pass (net_jvp_forward, net_jvp_tangent: the same
 *       use of D as the net_forward before it): sigma and W from the stored u, v, no iteration.
 *   backward: dL/dW_orig += (dW - <dW, W> u v^T) / sigma, the gradient through W_orig / sigma
 *       with u, v fixed (torch differentiates through sigma but not through the iteration),
 *       u, v and sigma those of the forward the pass belongs to (the one just before it).
 * The iteration depends only on the weights, so every process of a data-parallel run computes
 * the same u, v; every sum is in double in a fixed order (backend_ops.h), so the thread count
 * changes nothing.
 *
 * Initialisation (after the kind's own, which fills W_orig as it would fill W): u and v are
 * N(0, 1) draws from Philox (seed, PHILOX_STREAM_INIT, step = layer index), u at indices
 * n_params .. n_params + rows - 1 and v after it (past the weight's and bias's draws), each
 * then normalized, as torch's normal_ then normalize. */
#include <stddef.h>

#include "lib/base/common.h"
#include "lib/base/philox.h"
#include "layer.h"

#define SN_EPS 1e-12

int layer_sn_setup(layer_t *l) {
    if (!l->sn) return 0;
    if (l->w_ndim < 2 || l->n_extra) return gt_err("spectral normalization needs a weight matrix");
    long inner = 1;
    for (int d = 2; d < l->w_ndim; d++) inner *= l->w_shape[d];
    l->sn_shape = (sn_shape_t){l->w_shape[0], l->w_shape[1], inner, l->ops->sn_dim};
    if (sn_count(&l->sn_shape) != l->n_params - l->n_bias) return gt_err("internal error: weight shape");
    return 0;
}

size_t layer_sn_state(const layer_t *l) {
    return l->sn ? (size_t)sn_rows(&l->sn_shape) + (size_t)sn_cols(&l->sn_shape) : 0;
}

size_t layer_sn_floats(const layer_t *l) {
    if (!l->sn) return 0;
    size_t rows = (size_t)sn_rows(&l->sn_shape), cols = (size_t)sn_cols(&l->sn_shape);
    return 2 * sn_count(&l->sn_shape) + (rows > cols ? rows : cols);
}

void layer_sn_init(backend_t *be, layer_t *l, init_mode_t mode, uint64_t seed) {
    float *w = l->w;
    l->w = l->sn_w_orig;
    if (l->ops->init) l->ops->init(be, l, mode, seed);
    l->w = w;
    size_t rows = (size_t)sn_rows(&l->sn_shape), cols = (size_t)sn_cols(&l->sn_shape);
    uint32_t step = (uint32_t)l->index;
    be->philox_fill(be, l->sn_u, rows, FILL_NORMAL, seed, PHILOX_STREAM_INIT, step, l->n_params, 1.0f, 0.0f);
    be->philox_fill(be, l->sn_v, cols, FILL_NORMAL, seed, PHILOX_STREAM_INIT, step, l->n_params + rows, 1.0f, 0.0f);
    be->sn_normalize(be, l->sn_u, l->sn_u, rows, SN_EPS);
    be->sn_normalize(be, l->sn_v, l->sn_v, cols, SN_EPS);
}

void layer_sn_forward(const nn_ctx_t *ctx, layer_t *l, int iterate) {
    backend_t *be = ctx->be;
    const sn_shape_t *s = &l->sn_shape;
    size_t rows = (size_t)sn_rows(s), cols = (size_t)sn_cols(s);
    if (iterate) {
        for (int i = 0; i < l->sn; i++) {
            be->sn_matvec(be, s, l->sn_v, l->sn_w_orig, l->sn_u, 1);  /* v = W_mat^T u */
            be->sn_normalize(be, l->sn_v, l->sn_v, cols, SN_EPS);
            be->sn_matvec(be, s, l->sn_t, l->sn_w_orig, l->sn_v, 0);  /* t = W_mat v */
            be->sn_normalize(be, l->sn_u, l->sn_t, rows, SN_EPS);     /* u = t / |t| */
        }
    } else {
        be->sn_matvec(be, s, l->sn_t, l->sn_w_orig, l->sn_v, 0);
    }
    be->sn_weight(be, s, l->w, l->sn_sigma, l->sn_w_orig, l->sn_u, l->sn_t); /* sigma = u . t, W */
}

void layer_sn_backward_begin(const nn_ctx_t *ctx, layer_t *l) {
    ctx->be->zero(ctx->be, l->dw, sizeof(float) * sn_count(&l->sn_shape));
}

void layer_sn_backward_end(const nn_ctx_t *ctx, layer_t *l) {
    ctx->be->sn_grad(ctx->be, &l->sn_shape, l->sn_dw_orig, l->sn_sigma + 1, l->dw, l->w, l->sn_u, l->sn_v,
                     l->sn_sigma);
}
