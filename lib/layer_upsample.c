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

typedef struct {
    const layer_t *l;
    int backward;
    float *o1, *o2;       /* forward: y, ty; backward: dx, dtx (either may be NULL) */
    const float *i1, *i2; /* their inputs: x, tx; dy, dty (NULL: zeros) */
} up_job_t;

static void upsample_fwd_plane(const layer_t *l, float *y, const float *x) {
    int H = l->in.h, W = l->in.w, K = l->scale;
    for (int oy = 0; oy < l->out.h; oy++) {
        const float *xr = x + (long)upsample_src(oy, H, K) * W;
        float *yr = y + (long)oy * l->out.w;
        for (int ox = 0; ox < l->out.w; ox++) yr[ox] = xr[upsample_src(ox, W, K)];
    }
}

/* dx = the sums of dy over each input's outputs, in output order (overwrites dx) */
static void upsample_bwd_plane(const layer_t *l, float *dx, const float *dy) {
    int H = l->in.h, W = l->in.w, K = l->scale;
    memset(dx, 0, sizeof(float) * (size_t)H * (size_t)W);
    if (!dy) return;
    for (int oy = 0; oy < l->out.h; oy++) {
        float *xr = dx + (long)upsample_src(oy, H, K) * W;
        const float *yr = dy + (long)oy * l->out.w;
        for (int ox = 0; ox < l->out.w; ox++) xr[upsample_src(ox, W, K)] += yr[ox];
    }
}

static void upsample_planes(void *arg, long i0, long i1) {
    const up_job_t *j = arg;
    const layer_t *l = j->l;
    long HW = (long)l->in.h * l->in.w, P = (long)l->out.h * l->out.w;
    long on = j->backward ? HW : P, in = j->backward ? P : HW;
    for (long i = i0; i < i1; i++)
        for (int k = 0; k < 2; k++) {
            float *o = k ? j->o2 : j->o1;
            const float *x = k ? j->i2 : j->i1;
            if (!o) continue;
            if (j->backward) upsample_bwd_plane(l, o + i * on, x ? x + i * in : NULL);
            else upsample_fwd_plane(l, o + i * on, x + i * in);
        }
}

static void upsample_run(const nn_ctx_t *ctx, const layer_t *l, int B, up_job_t *j) {
    long planes = (long)B * l->in.c;
    if (planes > 1 && planes * l->out.h * l->out.w >= 32768) cpu_parallel_for(ctx->be, planes, upsample_planes, j);
    else upsample_planes(j, 0, planes);
}

static void upsample_forward(const nn_ctx_t *ctx, layer_t *l, float *y, const float *x, int B) {
    up_job_t j = {l, 0, y, NULL, x, NULL};
    upsample_run(ctx, l, B, &j);
}

static void upsample_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, const float *dy, const float *x,
                              const float *y, int B) {
    (void)x;
    (void)y;
    if (!dx) return;
    up_job_t j = {l, 1, dx, NULL, dy, NULL};
    upsample_run(ctx, l, B, &j);
}

static void upsample_jvp_forward(const nn_ctx_t *ctx, layer_t *l, float *y, float *ty, const float *x,
                                 const float *tx, int B) {
    up_job_t j = {l, 0, y, ty, x, tx};
    upsample_run(ctx, l, B, &j);
}

static void upsample_jvp_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, float *dtx, const float *dy,
                                  const float *dty, const float *x, const float *tx, const float *y,
                                  const float *ty, int B) {
    (void)x;
    (void)tx;
    (void)y;
    (void)ty;
    if (!dx && !dtx) return;
    up_job_t j = {l, 1, dx, dtx, dy, dty};
    upsample_run(ctx, l, B, &j);
}

const layer_ops_t layer_upsample_ops = {"upsample", upsample_setup, NULL, upsample_forward, upsample_backward,
                                        upsample_jvp_forward, upsample_jvp_backward};
