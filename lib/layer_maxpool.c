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

enum { P_FWD, P_BWD, P_JVP_FWD, P_JVP_BWD };

typedef struct {
    const layer_t *l;
    int pass;
    float *y, *ty, *dx, *dtx;
    const float *x, *tx, *dy, *dty;
} pool_job_t;

/* plane i: y (and ty) and the argmax of each output */
static void maxpool_fwd_plane(const layer_t *l, float *y, int32_t *arg, const float *x, float *ty, const float *tx) {
    int H = l->in.h, W = l->in.w;
    for (int oy = 0; oy < l->out.h; oy++) {
        int y0, y1;
        pool_window(oy, l->kh, l->sh, l->ph, H, &y0, &y1);
        for (int ox = 0; ox < l->out.w; ox++) {
            int x0, x1;
            pool_window(ox, l->kw, l->sw, l->pw, W, &x0, &x1);
            float best = -INFINITY;
            int32_t at = y0 < y1 && x0 < x1 ? (int32_t)(y0 * W + x0) : -1;
            for (int iy = y0; iy < y1; iy++)
                for (int ix = x0; ix < x1; ix++) {
                    float v = x[iy * W + ix];
                    if (maxpool_takes(v, best)) {
                        best = v;
                        at = (int32_t)(iy * W + ix);
                    }
                }
            int o = oy * l->out.w + ox;
            y[o] = best;
            arg[o] = at;
            if (ty) ty[o] = at >= 0 ? tx[at] : 0.0f;
        }
    }
}

/* plane i: dx = the scatter of dy to the argmaxes (overwrites dx) */
static void maxpool_bwd_plane(const layer_t *l, float *dx, const int32_t *arg, const float *dy) {
    long HW = (long)l->in.h * l->in.w, P = (long)l->out.h * l->out.w;
    memset(dx, 0, sizeof(float) * (size_t)HW);
    if (!dy) return;
    for (long o = 0; o < P; o++)
        if (arg[o] >= 0) dx[arg[o]] += dy[o];
}

static void maxpool_planes(void *arg, long i0, long i1) {
    const pool_job_t *j = arg;
    const layer_t *l = j->l;
    long HW = (long)l->in.h * l->in.w, P = (long)l->out.h * l->out.w;
    int32_t *am = (int32_t *)l->saved;
    for (long i = i0; i < i1; i++) {
        if (j->pass == P_FWD || j->pass == P_JVP_FWD) {
            maxpool_fwd_plane(l, j->y + i * P, am + i * P, j->x + i * HW, j->ty ? j->ty + i * P : NULL,
                              j->tx ? j->tx + i * HW : NULL);
        } else {
            if (j->dx) maxpool_bwd_plane(l, j->dx + i * HW, am + i * P, j->dy ? j->dy + i * P : NULL);
            if (j->dtx) maxpool_bwd_plane(l, j->dtx + i * HW, am + i * P, j->dty ? j->dty + i * P : NULL);
        }
    }
}

static void maxpool_run(const nn_ctx_t *ctx, const layer_t *l, int B, pool_job_t *j) {
    long planes = (long)B * l->in.c;
    if (planes > 1 && planes * l->in.h * l->in.w >= 32768) cpu_parallel_for(ctx->be, planes, maxpool_planes, j);
    else maxpool_planes(j, 0, planes);
}

static void maxpool_forward(const nn_ctx_t *ctx, layer_t *l, float *y, const float *x, int B) {
    pool_job_t j = {l, P_FWD, y, NULL, NULL, NULL, x, NULL, NULL, NULL};
    maxpool_run(ctx, l, B, &j);
}

static void maxpool_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, const float *dy, const float *x,
                             const float *y, int B) {
    (void)x;
    (void)y;
    if (!dx) return;
    pool_job_t j = {l, P_BWD, NULL, NULL, dx, NULL, NULL, NULL, dy, NULL};
    maxpool_run(ctx, l, B, &j);
}

static void maxpool_jvp_forward(const nn_ctx_t *ctx, layer_t *l, float *y, float *ty, const float *x,
                                const float *tx, int B) {
    pool_job_t j = {l, P_JVP_FWD, y, ty, NULL, NULL, x, tx, NULL, NULL};
    maxpool_run(ctx, l, B, &j);
}

static void maxpool_jvp_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, float *dtx, const float *dy,
                                 const float *dty, const float *x, const float *tx, const float *y,
                                 const float *ty, int B) {
    (void)x;
    (void)tx;
    (void)y;
    (void)ty;
    if (!dx && !dtx) return;
    pool_job_t j = {l, P_JVP_BWD, NULL, NULL, dx, dtx, NULL, NULL, dy, dty};
    maxpool_run(ctx, l, B, &j);
}

const layer_ops_t layer_maxpool_ops = {"maxpool", maxpool_setup, NULL, maxpool_forward, maxpool_backward,
                                       maxpool_jvp_forward, maxpool_jvp_backward};
