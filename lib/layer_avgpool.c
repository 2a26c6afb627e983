/* layer_avgpool.c: average pooling, torch.nn.AvgPool2d(k, stride, padding) with
 * count_include_pad=True (torch's default; floor mode), or count_include_pad=False with the
 * spec flag `nopad` (l->exclude_pad: the divisor is the window's part inside the image).
 *
 *   x (B, C, H, W)   y (B, C, Ho, Wo)   Ho = floor((H + 2 ph - kh) / sh) + 1, Wo likewise
 *
 * Each output is the sum of its window clipped to the image divided by the window's padded
 * size (conv_math.h, pool_window: the window may reach past the padding at the far edge, as in
 * torch's kernel, and is then shortened), or with nopad by the clipped window's size
 * (conv_math.h, pool_divisor). Backward spreads dy / count over the clipped window
 * (adding where windows overlap). Linear in x: the gradient penalty's tangent is the same map,
 * ty = avgpool(tx), and its reverse pass spreads dy and dty alike.
 * The loops are the backend's (backend.h avgpool_*; the CPU splits planes over threads, each
 * computed in a fixed order). No parameters, nothing saved. */
#include <stddef.h>
#include <string.h>

#include "common.h"
#include "conv_math.h"
#include "layer.h"

static int avgpool_setup(layer_t *l) {
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

/* the backend's view of the layer for a batch of B */
static pool_args_t args(const layer_t *l, int B) {
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
    a.argmax = NULL;
    a.exclude_pad = l->exclude_pad;
    return a;
}

static void avgpool_forward(const nn_ctx_t *ctx, layer_t *l, float *y, const float *x, int B) {
    pool_args_t a = args(l, B);
    a.y = y;
    a.x = x;
    ctx->be->avgpool_forward(ctx->be, &a);
}

static void avgpool_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, const float *dy, const float *x,
                           const float *y, int B) {
    (void)x;
    (void)y;
    if (!dx) return;
    pool_args_t a = args(l, B);
    a.dx = dx;
    a.dy = dy;
    ctx->be->avgpool_backward(ctx->be, &a);
}

static void avgpool_jvp_forward(const nn_ctx_t *ctx, layer_t *l, float *y, float *ty, const float *x,
                              const float *tx, int B) {
    pool_args_t a = args(l, B);
    a.y = y;
    a.ty = ty;
    a.x = x;
    a.tx = tx;
    ctx->be->avgpool_forward(ctx->be, &a);
}

static void avgpool_jvp_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, float *dtx, const float *dy,
                               const float *dty, const float *x, const float *tx, const float *y,
                               const float *ty, int B) {
    (void)x;
    (void)tx;
    (void)y;
    (void)ty;
    if (!dx && !dtx) return;
    pool_args_t a = args(l, B);
    a.dx = dx;
    a.dtx = dtx;
    a.dy = dy;
    a.dty = dty;
    ctx->be->avgpool_backward(ctx->be, &a);
}

const layer_ops_t layer_avgpool_ops = {"avgpool", avgpool_setup, NULL, avgpool_forward, avgpool_backward,
                                       avgpool_jvp_forward, avgpool_jvp_backward};
