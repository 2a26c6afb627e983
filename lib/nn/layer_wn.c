/* layer_wn.c: weight normalization of a layer's weight (spec flag `wn` on linear, conv and convT;
 * lib/nn/spec.md), as torch.nn.utils.weight_norm(module) with its default dim=0 (PyTorch 1.13).
 * Like spectral normalization (layer_sn.c) it is one helper for every kind: layer.c's per-layer
 * passes call these functions around the kind's passes, which read l->w and accumulate into l->dw
 * as usual, wherever the layer sits (the top-level sequence or a residual block's path).
 *
 * The trained tensors are v (checkpoint name `weight_v`, the weight's shape, in place of
 * `weight`) and g (`weight_g`, one value per slice of dimension 0, shape (rows, 1, ...) as torch
 * keeps it). Dimension 0 is the output features of linear and the output channels of conv, and
 * the input channels of convT, whose weight is (in, out, kh, kw): torch's dim=0 for every module.
 * Seen as a matrix of rows = the size of dimension 0 by cols = the rest (each row contiguous),
 *   W[r, :] = v[r, :] * (g[r] / ||v[r, :]||)
 * computed before every forward and tangent pass (W depends only on the parameters, so there is
 * no state and no difference between training and evaluation). The gradient of dL/dW = dW:
 *   dg[r] += <dW_r, v_r> / ||v_r||,   dv_r += (g[r] / ||v_r||) (dW_r - <dW_r, v_r> v_r / ||v_r||^2),
 * the same map for the gradient penalty's reverse pass (its dW is the penalty's parameter
 * gradient with respect to W), so the double backward reaches g and v exactly. Row sums are in
 * double in a fixed order (backend_ops.h wn_*): no result depends on the thread count.
 *
 * Initialisation: as torch applies weight_norm to an initialised module, v is the layer's own
 * initial weight (the kind's init, drawing as without wn) and g = ||v|| per row, so that the
 * initial W equals that weight up to rounding. */
#include <stddef.h>

#include "lib/base/common.h"
#include "layer.h"

int layer_wn_setup(layer_t *l) {
    if (!l->wn) return 0;
    if (l->sn) return gt_err("sn and wn cannot be combined (choose spectral or weight normalization)");
    if (l->w_ndim < 2 || l->n_extra || l->w_shape[0] <= 0) return gt_err("weight normalization needs a weight matrix");
    size_t nw = l->n_params - l->n_bias;
    l->wn_rows = l->w_shape[0];
    l->wn_cols = (long)(nw / (size_t)l->wn_rows);
    if ((size_t)l->wn_rows * (size_t)l->wn_cols != nw) return gt_err("internal error: weight shape");
    l->n_extra = (size_t)l->wn_rows; /* weight_g after the bias */
    l->n_params += l->n_extra;
    return 0;
}

size_t layer_wn_floats(const layer_t *l) {
    return l->wn ? 2 * (size_t)l->wn_rows * (size_t)l->wn_cols + (size_t)l->wn_rows : 0;
}

void layer_wn_init(backend_t *be, layer_t *l, init_mode_t mode, uint64_t seed) {
    float *w = l->w;
    size_t np = l->n_params, ne = l->n_extra;
    l->w = l->wn_v; /* the kind's init sees the layer without wn: weight, then bias */
    l->n_params -= ne;
    l->n_extra = 0;
    if (l->ops->init) l->ops->init(be, l, mode, seed);
    l->w = w;
    l->n_params = np;
    l->n_extra = ne;
    be->wn_norms(be, l->e, l->wn_v, l->wn_rows, l->wn_cols); /* g = ||v|| */
}

void layer_wn_forward(const nn_ctx_t *ctx, layer_t *l) {
    backend_t *be = ctx->be;
    be->wn_norms(be, l->wn_norm, l->wn_v, l->wn_rows, l->wn_cols);
    be->wn_weight(be, l->w, l->e, l->wn_v, l->wn_norm, l->wn_rows, l->wn_cols);
}

void layer_wn_backward_begin(const nn_ctx_t *ctx, layer_t *l) {
    ctx->be->zero(ctx->be, l->dw, sizeof(float) * (size_t)l->wn_rows * (size_t)l->wn_cols);
}

void layer_wn_backward_end(const nn_ctx_t *ctx, layer_t *l) {
    ctx->be->wn_grad(ctx->be, l->de, l->wn_dv, l->dw, l->e, l->wn_v, l->wn_norm, l->wn_rows, l->wn_cols);
}
