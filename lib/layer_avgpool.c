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
 * Planes (sample, channel) are split over threads, each computed in a fixed order, so results
 * do not depend on the thread count. No parameters, nothing saved. */
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

typedef struct {
    const layer_t *l;
    int backward;
    float *o1, *o2;       /* forward: y, ty; backward: dx, dtx (either may be NULL) */
    const float *i1, *i2; /* their inputs: x, tx; dy, dty (NULL: zeros) */
} avg_job_t;

/* one plane: y = window averages of x */
static void avgpool_fwd_plane(const layer_t *l, float *y, const float *x) {
    int H = l->in.h, W = l->in.w;
    for (int oy = 0; oy < l->out.h; oy++) {
        int y0, y1;
        int cy = pool_window(oy, l->kh, l->sh, l->ph, H, &y0, &y1);
        for (int ox = 0; ox < l->out.w; ox++) {
            int x0, x1;
            int cx = pool_window(ox, l->kw, l->sw, l->pw, W, &x0, &x1);
            float s = 0.0f;
            for (int iy = y0; iy < y1; iy++)
                for (int ix = x0; ix < x1; ix++) s += x[iy * W + ix];
            y[oy * l->out.w + ox] = s / (float)pool_divisor(cy, cx, y0, y1, x0, x1, l->exclude_pad);
        }
    }
}

/* one plane: dx = dy / count spread over each window (overwrites dx) */
static void avgpool_bwd_plane(const layer_t *l, float *dx, const float *dy) {
    int H = l->in.h, W = l->in.w;
    memset(dx, 0, sizeof(float) * (size_t)H * (size_t)W);
    if (!dy) return;
    for (int oy = 0; oy < l->out.h; oy++) {
        int y0, y1;
        int cy = pool_window(oy, l->kh, l->sh, l->ph, H, &y0, &y1);
        for (int ox = 0; ox < l->out.w; ox++) {
            int x0, x1;
            int cx = pool_window(ox, l->kw, l->sw, l->pw, W, &x0, &x1);
            float g = dy[oy * l->out.w + ox] / (float)pool_divisor(cy, cx, y0, y1, x0, x1, l->exclude_pad);
            for (int iy = y0; iy < y1; iy++)
                for (int ix = x0; ix < x1; ix++) dx[iy * W + ix] += g;
        }
    }
}

static void avgpool_planes(void *arg, long i0, long i1) {
    const avg_job_t *j = arg;
    const layer_t *l = j->l;
    long HW = (long)l->in.h * l->in.w, P = (long)l->out.h * l->out.w;
    long on = j->backward ? HW : P, in = j->backward ? P : HW;
    for (long i = i0; i < i1; i++)
        for (int k = 0; k < 2; k++) {
            float *o = k ? j->o2 : j->o1;
            const float *x = k ? j->i2 : j->i1;
            if (!o) continue;
            if (j->backward) avgpool_bwd_plane(l, o + i * on, x ? x + i * in : NULL);
            else avgpool_fwd_plane(l, o + i * on, x + i * in);
        }
}

static void avgpool_run(const nn_ctx_t *ctx, const layer_t *l, int B, avg_job_t *j) {
    long planes = (long)B * l->in.c;
    if (planes > 1 && planes * l->in.h * l->in.w >= 32768) cpu_parallel_for(ctx->be, planes, avgpool_planes, j);
    else avgpool_planes(j, 0, planes);
}

static void avgpool_forward(const nn_ctx_t *ctx, layer_t *l, float *y, const float *x, int B) {
    avg_job_t j = {l, 0, y, NULL, x, NULL};
    avgpool_run(ctx, l, B, &j);
}

static void avgpool_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, const float *dy, const float *x,
                             const float *y, int B) {
    (void)x;
    (void)y;
    if (!dx) return;
    avg_job_t j = {l, 1, dx, NULL, dy, NULL};
    avgpool_run(ctx, l, B, &j);
}

static void avgpool_jvp_forward(const nn_ctx_t *ctx, layer_t *l, float *y, float *ty, const float *x,
                                const float *tx, int B) {
    avg_job_t j = {l, 0, y, ty, x, tx};
    avgpool_run(ctx, l, B, &j);
}

static void avgpool_jvp_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, float *dtx, const float *dy,
                                 const float *dty, const float *x, const float *tx, const float *y,
                                 const float *ty, int B) {
    (void)x;
    (void)tx;
    (void)y;
    (void)ty;
    if (!dx && !dtx) return;
    avg_job_t j = {l, 1, dx, dtx, dy, dty};
    avgpool_run(ctx, l, B, &j);
}

const layer_ops_t layer_avgpool_ops = {"avgpool", avgpool_setup, NULL, avgpool_forward, avgpool_backward,
                                       avgpool_jvp_forward, avgpool_jvp_backward};
