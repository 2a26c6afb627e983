/* layer_upsample.c: nearest-neighbour upsampling by an integer factor K,
 * torch.nn.Upsample(scale_factor=K, mode='nearest').
 *
 *   x (B, C, H, W)   y (B, C, K*H, K*W)   y[oy, ox] = x[src(oy), src(ox)]
 *
 * src is torch 1.13's index map (conv_math.h, upsample_src): oy / K for the factors 1 and 2,
 * floor(oy * (float)(1/K)) otherwise, which is the same for every size this layer accepts.
 * Backward sums dy over the outputs each input feeds. Linear in x: the gradient penalty's
 * tangent is the same map, and its reverse pass sums dy and dty alike.
 * Planes (sample, channel) are split over threads, each computed in a fixed order, so results
 * do not depend on the thread count. No parameters, nothing saved. */
#include <stddef.h>
#include <string.h>

#include "common.h"
#include "conv_math.h"
#include "layer.h"

static int upsample_setup(layer_t *l) {
    if (l->scale < 1) return gt_err("scale factor must be a whole number >= 1");
    long ho = (long)l->in.h * l->scale, wo = (long)l->in.w * l->scale;
    if (ho > (1L << 20) || wo > (1L << 20)) return gt_err("output %ldx%ld is too large", ho, wo);
    l->out = (shape3_t){l->in.c, (int)ho, (int)wo};
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
    return a;
}

static void upsample_forward(const nn_ctx_t *ctx, layer_t *l, float *y, const float *x, int B) {
    pool_args_t a = args(l, B);
    a.y = y;
    a.x = x;
    ctx->be->upsample_forward(ctx->be, &a);
}

static void upsample_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, const float *dy, const float *x,
                           const float *y, int B) {
    (void)x;
    (void)y;
    if (!dx) return;
    pool_args_t a = args(l, B);
    a.dx = dx;
    a.dy = dy;
    ctx->be->upsample_backward(ctx->be, &a);
}

static void upsample_jvp_forward(const nn_ctx_t *ctx, layer_t *l, float *y, float *ty, const float *x,
                              const float *tx, int B) {
    pool_args_t a = args(l, B);
    a.y = y;
    a.ty = ty;
    a.x = x;
    a.tx = tx;
    ctx->be->upsample_forward(ctx->be, &a);
}

static void upsample_jvp_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, float *dtx, const float *dy,
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
    ctx->be->upsample_backward(ctx->be, &a);
}

const layer_ops_t layer_upsample_ops = {"upsample", upsample_setup, NULL, upsample_forward, upsample_backward,
                                        upsample_jvp_forward, upsample_jvp_backward};
