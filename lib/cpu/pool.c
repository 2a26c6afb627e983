/* pool.c: the CPU backend's pooling and upsampling operations (lib/backend/backend_ops.h:
 * maxpool_*, avgpool_*, upsample_*), plane by plane; the index maps are conv_math.h's
 * (kernels/pool.cu computes the same on a GPU). Planes (sample,
 * channel) are split over threads, each computed in a fixed order, so results do not depend
 * on the thread count. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lib/base/common.h"
#include "lib/backend/conv_math.h"
#include "cpu_ops.h"

enum { K_MAX, K_AVG, K_UP };

typedef struct {
    const pool_args_t *a;
    int kind, backward;
} pool_job_t;

/* ---- max ------------------------------------------------------------------------------- */

/* one plane: y (and ty) and the argmax of each output */
static void maxpool_fwd_plane(const pool_args_t *a, float *y, int32_t *arg, const float *x, float *ty,
                              const float *tx) {
    int H = a->h, W = a->w;
    for (int oy = 0; oy < a->ho; oy++) {
        int y0, y1;
        pool_window(oy, a->kh, a->sh, a->ph, H, &y0, &y1);
        for (int ox = 0; ox < a->wo; ox++) {
            int x0, x1;
            pool_window(ox, a->kw, a->sw, a->pw, W, &x0, &x1);
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
            int o = oy * a->wo + ox;
            y[o] = best;
            arg[o] = at;
            if (ty) ty[o] = at >= 0 ? tx[at] : 0.0f;
        }
    }
}

/* one plane: dx = the scatter of dy to the argmaxes (overwrites dx) */
static void maxpool_bwd_plane(const pool_args_t *a, float *dx, const int32_t *arg, const float *dy) {
    long HW = (long)a->h * a->w, P = (long)a->ho * a->wo;
    memset(dx, 0, sizeof(float) * (size_t)HW);
    if (!dy) return;
    for (long o = 0; o < P; o++)
        if (arg[o] >= 0) dx[arg[o]] += dy[o];
}

/* ---- average ----------------------------------------------------------------------------- */

/* one plane: y = window averages of x */
/* Average pooling 2x2 with stride 2 and no padding (the SNGAN critic's downsampling): every window
 * lies inside the plane and divides by 4 in both modes, so it is the general loop's arithmetic,
 * the same sums in the same order, without its window bounds. */
static int avgpool_is_2x2(const pool_args_t *a) {
    return a->kh == 2 && a->kw == 2 && a->sh == 2 && a->sw == 2 && a->ph == 0 && a->pw == 0;
}

static void avgpool_fwd_plane(const pool_args_t *a, float *y, const float *x) {
    int H = a->h, W = a->w;
    if (avgpool_is_2x2(a)) {
        for (int oy = 0; oy < a->ho; oy++) {
            const float *r0 = x + (long)2 * oy * W, *r1 = r0 + W;
            float *yr = y + (long)oy * a->wo;
            for (int ox = 0; ox < a->wo; ox++) {
                float s = 0.0f;
                s += r0[2 * ox], s += r0[2 * ox + 1], s += r1[2 * ox], s += r1[2 * ox + 1];
                yr[ox] = s / 4.0f;
            }
        }
        return;
    }
    for (int oy = 0; oy < a->ho; oy++) {
        int y0, y1;
        int cy = pool_window(oy, a->kh, a->sh, a->ph, H, &y0, &y1);
        for (int ox = 0; ox < a->wo; ox++) {
            int x0, x1;
            int cx = pool_window(ox, a->kw, a->sw, a->pw, W, &x0, &x1);
            float s = 0.0f;
            for (int iy = y0; iy < y1; iy++)
                for (int ix = x0; ix < x1; ix++) s += x[iy * W + ix];
            y[oy * a->wo + ox] = s / (float)pool_divisor(cy, cx, y0, y1, x0, x1, a->exclude_pad);
        }
    }
}

/* one plane: dx = dy / count spread over each window (overwrites dx) */
static void avgpool_bwd_plane(const pool_args_t *a, float *dx, const float *dy) {
    int H = a->h, W = a->w;
    memset(dx, 0, sizeof(float) * (size_t)H * (size_t)W);
    if (!dy) return;
    if (avgpool_is_2x2(a)) {
        for (int oy = 0; oy < a->ho; oy++) {
            float *r0 = dx + (long)2 * oy * W, *r1 = r0 + W;
            const float *dr = dy + (long)oy * a->wo;
            for (int ox = 0; ox < a->wo; ox++) {
                float g = dr[ox] / 4.0f;
                r0[2 * ox] += g, r0[2 * ox + 1] += g, r1[2 * ox] += g, r1[2 * ox + 1] += g;
            }
        }
        return;
    }
    for (int oy = 0; oy < a->ho; oy++) {
        int y0, y1;
        int cy = pool_window(oy, a->kh, a->sh, a->ph, H, &y0, &y1);
        for (int ox = 0; ox < a->wo; ox++) {
            int x0, x1;
            int cx = pool_window(ox, a->kw, a->sw, a->pw, W, &x0, &x1);
            float g = dy[oy * a->wo + ox] / (float)pool_divisor(cy, cx, y0, y1, x0, x1, a->exclude_pad);
            for (int iy = y0; iy < y1; iy++)
                for (int ix = x0; ix < x1; ix++) dx[iy * W + ix] += g;
        }
    }
}

/* ---- nearest upsampling ------------------------------------------------------------------ */

static void upsample_fwd_plane(const pool_args_t *a, float *y, const float *x) {
    int H = a->h, W = a->w, K = a->scale;
    if (K == 2) { /* upsample_src is dst >> 1: each input twice in a row, each row twice */
        for (int iy = 0; iy < H; iy++) {
            const float *xr = x + (long)iy * W;
            float *y0 = y + (long)2 * iy * a->wo, *y1 = y0 + a->wo;
            for (int ix = 0; ix < W; ix++) y0[2 * ix] = y0[2 * ix + 1] = xr[ix];
            memcpy(y1, y0, sizeof(float) * (size_t)a->wo);
        }
        return;
    }
    for (int oy = 0; oy < a->ho; oy++) {
        const float *xr = x + (long)upsample_src(oy, H, K) * W;
        float *yr = y + (long)oy * a->wo;
        for (int ox = 0; ox < a->wo; ox++) yr[ox] = xr[upsample_src(ox, W, K)];
    }
}

/* dx = the sums of dy over each input's outputs, in output order (overwrites dx) */
static void upsample_bwd_plane(const pool_args_t *a, float *dx, const float *dy) {
    int H = a->h, W = a->w, K = a->scale;
    if (K == 2 && dy) { /* each input's four outputs, added in the loop below's order */
        for (int iy = 0; iy < H; iy++) {
            const float *r0 = dy + (long)2 * iy * a->wo, *r1 = r0 + a->wo;
            float *xr = dx + (long)iy * W;
            for (int ix = 0; ix < W; ix++) {
                float s = 0.0f;
                s += r0[2 * ix], s += r0[2 * ix + 1], s += r1[2 * ix], s += r1[2 * ix + 1];
                xr[ix] = s;
            }
        }
        return;
    }
    memset(dx, 0, sizeof(float) * (size_t)H * (size_t)W);
    if (!dy) return;
    for (int oy = 0; oy < a->ho; oy++) {
        float *xr = dx + (long)upsample_src(oy, H, K) * W;
        const float *yr = dy + (long)oy * a->wo;
        for (int ox = 0; ox < a->wo; ox++) xr[upsample_src(ox, W, K)] += yr[ox];
    }
}

/* ---- drivers ------------------------------------------------------------------------------ */

CPU_VEC_CLONES static void pool_planes(void *arg, long i0, long i1) {
    const pool_job_t *j = arg;
    const pool_args_t *a = j->a;
    long HW = (long)a->h * a->w, P = (long)a->ho * a->wo;
    for (long i = i0; i < i1; i++) {
        if (j->kind == K_MAX) {
            if (!j->backward) {
                maxpool_fwd_plane(a, a->y + i * P, a->argmax + i * P, a->x + i * HW, a->ty ? a->ty + i * P : NULL,
                                  a->tx ? a->tx + i * HW : NULL);
            } else {
                if (a->dx) maxpool_bwd_plane(a, a->dx + i * HW, a->argmax + i * P, a->dy ? a->dy + i * P : NULL);
                if (a->dtx) maxpool_bwd_plane(a, a->dtx + i * HW, a->argmax + i * P, a->dty ? a->dty + i * P : NULL);
            }
            continue;
        }
        for (int k = 0; k < 2; k++) {
            if (!j->backward) {
                float *o = k ? a->ty : a->y;
                const float *x = k ? a->tx : a->x;
                if (!o) continue;
                if (j->kind == K_AVG) avgpool_fwd_plane(a, o + i * P, x + i * HW);
                else upsample_fwd_plane(a, o + i * P, x + i * HW);
            } else {
                float *o = k ? a->dtx : a->dx;
                const float *d = k ? a->dty : a->dy;
                if (!o) continue;
                if (j->kind == K_AVG) avgpool_bwd_plane(a, o + i * HW, d ? d + i * P : NULL);
                else upsample_bwd_plane(a, o + i * HW, d ? d + i * P : NULL);
            }
        }
    }
}

static void pool_run(backend_t *be, const pool_args_t *a, int kind, int backward) {
    pool_job_t j = {a, kind, backward};
    long planes = a->planes, big = (long)a->h * a->w > (long)a->ho * a->wo ? (long)a->h * a->w : (long)a->ho * a->wo;
    if (planes > 1 && planes * big >= 32768) cpu_parallel_for(be, planes, pool_planes, &j);
    else pool_planes(&j, 0, planes);
}

void cpu_maxpool_forward(backend_t *be, const pool_args_t *a) { pool_run(be, a, K_MAX, 0); }
void cpu_maxpool_backward(backend_t *be, const pool_args_t *a) { pool_run(be, a, K_MAX, 1); }
void cpu_avgpool_forward(backend_t *be, const pool_args_t *a) { pool_run(be, a, K_AVG, 0); }
void cpu_avgpool_backward(backend_t *be, const pool_args_t *a) { pool_run(be, a, K_AVG, 1); }
void cpu_upsample_forward(backend_t *be, const pool_args_t *a) { pool_run(be, a, K_UP, 0); }
void cpu_upsample_backward(backend_t *be, const pool_args_t *a) { pool_run(be, a, K_UP, 1); }
