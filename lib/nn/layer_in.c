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
 * (WGAN-GP critics use it where a generator would use BatchNorm). The passes are layer_ln.c's
 * (ln_common.h), which give the backend C = the channel count for this kind. */
#include <stddef.h>

#include "lib/base/common.h"
#include "layer.h"
#include "ln_common.h"

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

const layer_ops_t layer_in_ops = {
    .name = "in",
    .args = SPEC_EPS | SPEC_AFFINE,
    .setup = in_setup,
    .init = ln_common_init,
    .forward = ln_common_forward,
    .backward = ln_common_backward,
    .jvp_forward = ln_common_jvp_forward,
    .jvp_backward = ln_common_jvp_backward,
    .jvp_curved = 1,
};
