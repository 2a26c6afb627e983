/* layer_pool.c: the window layers, which have no parameters and hand a whole batch of image
 * planes to one pair of backend operations (backend.h, pool_args_t):
 *
 * maxpool: torch.nn.MaxPool2d(k, stride, padding) (dilation 1, floor mode).
 *   x (B, C, H, W)   y (B, C, Ho, Wo)   Ho = floor((H + 2 ph - kh) / sh) + 1, Wo likewise
 *   saved per sample: the argmax of each output, as an int32 index into its input plane.
 *   Each output is the maximum of its window clipped to the image (padding never wins), scanned
 *   row by row; a larger value or a NaN takes over (conv_math.h, maxpool_takes), so ties go to
 *   the first and NaN propagates, as in torch. Backward sends each dy to its argmax (adding
 *   where windows overlap). Gradient penalty: the tangent follows the argmax, ty = tx[argmax],
 *   and the reverse pass scatters dy and dty alike (the second derivative is zero).
 *
 * avgpool: torch.nn.AvgPool2d(k, stride, padding) with count_include_pad=True (torch's default;
 *   floor mode), or count_include_pad=False with the spec flag `nopad` (l->exclude_pad: the
 *   divisor is the window's part inside the image). Shapes as maxpool's. Each output is the sum
 *   of its window clipped to the image divided by the window's padded size (conv_math.h,
 *   pool_window: the window may reach past the padding at the far edge, as in torch's kernel,
 *   and is then shortened), or with nopad by the clipped window's size (conv_math.h,
 *   pool_divisor). Backward spreads dy / count over the clipped window (adding where windows
 *   overlap). Nothing saved.
 *
 * upsample: nearest-neighbour upsampling by an integer factor K,
 *   torch.nn.Upsample(scale_factor=K, mode='nearest').
 *   x (B, C, H, W)   y (B, C, K*H, K*W)   y[oy, ox] = x[src(oy), src(ox)]
 *   src is torch 1.13's index map (conv_math.h, upsample_src): oy / K for the factors 1 and 2,
 *   floor(oy * (float)(1/K)) otherwise, which is the same for every size this layer accepts.
 *   Backward sums dy over the outputs each input feeds. Nothing saved.
 *
 * avgpool and upsample are linear in x: the gradient penalty's tangent is the same map and its
 * reverse pass treats dy and dty alike, so all three kinds pass tx/ty and dtx/dty through the
 * same backend operations as x/y and dx/dy. The loops are the backend's (the CPU splits planes
 * over threads, each computed in a fixed order, so results do not depend on the thread count). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lib/base/common.h"
#include "lib/backend/conv_math.h"
#include "layer.h"

_Static_assert(sizeof(int32_t) == sizeof(float), "argmax indices live in the float saved buffer");

/* maxpool and avgpool: a k x k window with stride and padding */
static int window_setup(layer_t *l) {
    if (2 * l->ph > l->kh || 2 * l->pw > l->kw)
        return gt_err("padding %dx%d must be at most half the kernel %dx%d", l->ph, l->pw, l->kh, l->kw);
    int ho = conv_out_len(l->in.h, l->kh, l->sh, l->ph), wo = conv_out_len(l->in.w, l->kw, l->sw, l->pw);
    if (ho <= 0 || wo <= 0)
        return gt_err("kernel %dx%d is larger than the padded input %ldx%ld", l->kh, l->kw, l->in.h + 2L * l->ph,
                      l->in.w + 2L * l->pw);
    l->out = (shape3_t){l->in.c, ho, wo};
    l->n_params = l->n_bias = l->n_state = l->n_saved = l->n_saved_fixed = l->workspace = 0;
    return 0;
}

static int maxpool_setup(layer_t *l) {
    if (window_setup(l)) return -1;
    l->n_saved = (size_t)shape3_size(l->out);
    return 0;
}

static int upsample_setup(layer_t *l) {
    if (l->scale < 1) return gt_err("scale factor must be a whole number >= 1");
    long ho = (long)l->in.h * l->scale, wo = (long)l->in.w * l->scale;
    if (ho > (1L << 20) || wo > (1L << 20)) return gt_err("output %ldx%ld is too large", ho, wo);
    l->out = (shape3_t){l->in.c, (int)ho, (int)wo};
    l->n_params = l->n_bias = l->n_state = l->n_saved = l->n_saved_fixed = l->workspace = 0;
    return 0;
}

typedef void (*pool_op_t)(backend_t *be, const pool_args_t *a);

/* the backend's view of the layer for a batch of B, and its forward and backward operations */
static pool_args_t args(const nn_ctx_t *ctx, const layer_t *l, int B, pool_op_t *fwd, pool_op_t *bwd) {
    backend_t *be = ctx->be;
    pool_args_t a;
    memset(&a, 0, sizeof a);
    a.planes = (long)B * l->in.c;
    a.h = l->in.h;
    a.w = l->in.w;
    a.ho = l->out.h;
    a.wo = l->out.w;
    a.kh = l->kh;
    a.kw = l->kw;
    a.sh = l->sh;
    a.sw = l->sw;
    a.ph = l->ph;
    a.pw = l->pw;
    a.scale = l->scale;
    if (l->ops == &layer_maxpool_ops) {
        a.argmax = (int32_t *)l->saved;
        *fwd = be->maxpool_forward;
        *bwd = be->maxpool_backward;
    } else if (l->ops == &layer_avgpool_ops) {
        a.exclude_pad = l->exclude_pad;
        *fwd = be->avgpool_forward;
        *bwd = be->avgpool_backward;
    } else {
        *fwd = be->upsample_forward;
        *bwd = be->upsample_backward;
    }
    return a;
}

static void pool_jvp_forward(const nn_ctx_t *ctx, layer_t *l, float *y, float *ty, const float *x,
                             const float *tx, int B) {
    pool_op_t fwd, bwd;
    pool_args_t a = args(ctx, l, B, &fwd, &bwd);
    a.y = y;
    a.ty = ty;
    a.x = x;
    a.tx = tx;
    fwd(ctx->be, &a);
}

static void pool_jvp_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, float *dtx, const float *dy,
                              const float *dty, const float *x, const float *tx, const float *y,
                              const float *ty, int B) {
    (void)x;
    (void)tx;
    (void)y;
    (void)ty;
    if (!dx && !dtx) return;
    pool_op_t fwd, bwd;
    pool_args_t a = args(ctx, l, B, &fwd, &bwd);
    a.dx = dx;
    a.dtx = dtx;
    a.dy = dy;
    a.dty = dty;
    bwd(ctx->be, &a);
}

/* the plain passes are the tangent ones without tangents (the backend skips NULL ty, dtx) */
static void pool_forward(const nn_ctx_t *ctx, layer_t *l, float *y, const float *x, int B) {
    pool_jvp_forward(ctx, l, y, NULL, x, NULL, B);
}

static void pool_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, const float *dy, const float *x,
                          const float *y, int B) {
    if (dx) pool_jvp_backward(ctx, l, dx, NULL, dy, NULL, x, NULL, y, NULL, B);
}

const layer_ops_t layer_maxpool_ops = {
    .name = "maxpool",
    .args = SPEC_K | SPEC_S | SPEC_P | SPEC_POOL,
    .setup = maxpool_setup,
    .forward = pool_forward,
    .backward = pool_backward,
    .jvp_forward = pool_jvp_forward,
    .jvp_backward = pool_jvp_backward,
};

const layer_ops_t layer_avgpool_ops = {
    .name = "avgpool",
    .args = SPEC_K | SPEC_S | SPEC_P | SPEC_POOL | SPEC_NOPAD,
    .setup = window_setup,
    .forward = pool_forward,
    .backward = pool_backward,
    .jvp_forward = pool_jvp_forward,
    .jvp_backward = pool_jvp_backward,
};

const layer_ops_t layer_upsample_ops = {
    .name = "upsample",
    .args = SPEC_SCALE,
    .setup = upsample_setup,
    .forward = pool_forward,
    .backward = pool_backward,
    .jvp_forward = pool_jvp_forward,
    .jvp_backward = pool_jvp_backward,
};
