/* layer_maxpool.c: max pooling, torch.nn.MaxPool2d(k, stride, padding) (dilation 1, floor mode).
 *
 *   x (B, C, H, W)   y (B, C, Ho, Wo)   Ho = floor((H + 2 ph - kh) / sh) + 1, Wo likewise
 *   saved per sample: the argmax of each output, as an int32 index into its input plane
 *
 * Each output is the maximum of its window clipped to the image (padding never wins), scanned
 * row by row; a larger value or a NaN takes over (conv_math.h, maxpool_takes), so ties go to
 * the first and NaN propagates, as in torch. Backward sends each dy to its argmax (adding
 * where windows overlap). Gradient penalty: the tangent follows the argmax, ty = tx[argmax],
 * and the reverse pass scatters dy and dty alike (the second derivative is zero).
 * Planes (sample, channel) are split over threads, each computed in a fixed order, so results
 * do not depend on the thread count. No parameters. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common.h"
#include "conv_math.h"
#include "layer.h"

_Static_assert(sizeof(int32_t) == sizeof(float), "argmax indices live in the float saved buffer");

static int maxpool_setup(layer_t *l) {
    if (2 * l->ph > l->kh || 2 * l->pw > l->kw)
        return gt_err("padding %dx%d must be at most half the kernel %dx%d", l->ph, l->pw, l->kh, l->kw);
    int ho = conv_out_len(l->in.h, l->kh, l->sh, l->ph), wo = conv_out_len(l->in.w, l->kw, l->sw, l->pw);
    if (ho <= 0 || wo <= 0)
        return gt_err("kernel %dx%d is larger than the padded input %ldx%ld", l->kh, l->kw, l->in.h + 2L * l->ph,
                      l->in.w + 2L * l->pw);
    l->out = (shape3_t){l->in.c, ho, wo};
    l->n_params = l->n_bias = l->n_state = l->n_saved_fixed = l->workspace = 0;
    l->n_saved = (size_t)shape3_size(l->out);
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
    a.argmax = (int32_t *)l->saved;
    return a;
}

static void maxpool_forward(const nn_ctx_t *ctx, layer_t *l, float *y, const float *x, int B) {
    pool_args_t a = args(l, B);
    a.y = y;
    a.x = x;
    ctx->be->maxpool_forward(ctx->be, &a);
}

static void maxpool_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, const float *dy, const float *x,
                           const float *y, int B) {
    (void)x;
    (void)y;
    if (!dx) return;
    pool_args_t a = args(l, B);
    a.dx = dx;
    a.dy = dy;
    ctx->be->maxpool_backward(ctx->be, &a);
}

static void maxpool_jvp_forward(const nn_ctx_t *ctx, layer_t *l, float *y, float *ty, const float *x,
                              const float *tx, int B) {
    pool_args_t a = args(l, B);
    a.y = y;
    a.ty = ty;
    a.x = x;
    a.tx = tx;
    ctx->be->maxpool_forward(ctx->be, &a);
}

static void maxpool_jvp_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, float *dtx, const float *dy,
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
    ctx->be->maxpool_backward(ctx->be, &a);
}

const layer_ops_t layer_maxpool_ops = {"maxpool", maxpool_setup, NULL, maxpool_forward, maxpool_backward,
                                       maxpool_jvp_forward, maxpool_jvp_backward};
