/* pool.cu: the CUDA backend's pooling and upsampling operations (lib/backend/backend_ops.h:
 * maxpool_*, avgpool_*, upsample_*). One thread per output element; the index maps are
 * conv_math.h's. Where the CPU loops (lib/cpu/pool.c) scatter-add plane by plane, a thread here
 * gathers the same terms in the same order (conv_math.h's gather forms), so the results are the
 * CPU's bits: no atomics, nothing shared between threads. */
#include "cuda_check.h"
#include "cuda_ops.h"

#include "lib/backend/conv_math.h"

/* ---- pooling ----------------------------------------------------------------------------- *
 * The geometry travels by value (pool_geom_t: pool_args_t without its pointers); forward runs a
 * thread per output, backward a thread per input pixel gathering the outputs whose window (or
 * nearest source) is that pixel, in output order: the CPU's scatter order. */

struct pool_geom_t {
    int h, w, ho, wo, kh, kw, sh, sw, ph, pw, scale, exclude_pad;
};

static pool_geom_t pool_geom(const pool_args_t *a) {
    pool_geom_t g = {a->h, a->w, a->ho, a->wo, a->kh, a->kw, a->sh, a->sw, a->ph, a->pw, a->scale, a->exclude_pad};
    return g;
}

/* How a kernel's thread index splits into (plane, y, x): the divisors of its planes' size and
 * rows' length, for the output side or the image side (cuda_check.h: GT_LAUNCH_IDX). */
typedef struct {
    gt_idiv sz, row;
} pool_idx_t;

static pool_idx_t pool_out_idx(const pool_args_t *a) {
    return pool_idx_t{gt_idiv_make((size_t)a->ho * a->wo), gt_idiv_make(a->wo)};
}
static pool_idx_t pool_img_idx(const pool_args_t *a) {
    return pool_idx_t{gt_idiv_make((size_t)a->h * a->w), gt_idiv_make(a->w)};
}

template <class I> __device__ static inline void pool_split(I t, pool_idx_t d, I *plane, int *y, int *x) {
    I r, k = d.sz.divmod(t, plane);
    *x = (int)d.row.divmod(k, &r);
    *y = (int)r;
}

template <class I>
__global__ void k_maxpool_forward(float *y, int32_t *argmax, const float *x, float *ty, const float *tx, pool_geom_t g,
                                  pool_idx_t d, size_t n) {
    I t = GT_TID_AS(I);
    if (t >= n) return;
    long HW = (long)g.h * g.w;
    I plane;
    int oy, ox;
    pool_split(t, d, &plane, &oy, &ox);
    int y0, y1, x0, x1;
    pool_window(oy, g.kh, g.sh, g.ph, g.h, &y0, &y1);
    pool_window(ox, g.kw, g.sw, g.pw, g.w, &x0, &x1);
    const float *xp = x + (size_t)plane * HW;
    float best = -INFINITY;
    int32_t at = y0 < y1 && x0 < x1 ? (int32_t)(y0 * g.w + x0) : -1;
    for (int iy = y0; iy < y1; iy++)
        for (int ix = x0; ix < x1; ix++) {
            float v = xp[iy * g.w + ix];
            if (maxpool_takes(v, best)) {
                best = v;
                at = (int32_t)(iy * g.w + ix);
            }
        }
    y[t] = best;
    argmax[t] = at;
    if (ty) ty[t] = at >= 0 ? tx[(size_t)plane * HW + at] : 0.0f;
}

/* dx at one pixel: the dy of every output whose argmax it is, outputs in order */
template <class I>
__global__ void k_maxpool_backward(float *dx, const float *dy, const int32_t *argmax, pool_geom_t g, pool_idx_t d,
                                   size_t n) {
    I t = GT_TID_AS(I);
    if (t >= n) return;
    long P = (long)g.ho * g.wo;
    I plane;
    int iy, ix;
    pool_split(t, d, &plane, &iy, &ix);
    int32_t me = (int32_t)(iy * g.w + ix);
    float v = 0.0f;
    if (dy) {
        int oy0, oy1, ox0, ox1;
        pool_outputs_of(iy, g.kh, g.sh, g.ph, g.ho, &oy0, &oy1);
        pool_outputs_of(ix, g.kw, g.sw, g.pw, g.wo, &ox0, &ox1);
        for (int oy = oy0; oy <= oy1; oy++)
            for (int ox = ox0; ox <= ox1; ox++) {
                size_t o = (size_t)plane * P + (size_t)oy * g.wo + ox;
                if (argmax[o] == me) v += dy[o];
            }
    }
    dx[t] = v;
}

void cuda_maxpool_forward(backend_t *be, const pool_args_t *a) {
    (void)be;
    size_t n = (size_t)a->planes * a->ho * a->wo;
    if (!n) return;
    gt_count_bytes(4.0 * a->planes * a->h * a->w * (a->ty ? 2 : 1) + 8.0 * n * (a->ty ? 1.5 : 1));
    GT_LAUNCH_IDX(n, k_maxpool_forward, gt_blocks(n), GT_BLOCK, a->y, a->argmax, a->x, a->ty, a->tx, pool_geom(a),
                  pool_out_idx(a), n);
}

void cuda_maxpool_backward(backend_t *be, const pool_args_t *a) {
    (void)be;
    size_t n = (size_t)a->planes * a->h * a->w;
    if (!n) return;
    gt_count_bytes(8.0 * a->planes * a->ho * a->wo + 4.0 * n);
    if (a->dx) GT_LAUNCH_IDX(n, k_maxpool_backward, gt_blocks(n), GT_BLOCK, a->dx, a->dy, (const int32_t *)a->argmax,
                         pool_geom(a), pool_img_idx(a), n);
    if (a->dtx) GT_LAUNCH_IDX(n, k_maxpool_backward, gt_blocks(n), GT_BLOCK, a->dtx, a->dty, (const int32_t *)a->argmax,
                          pool_geom(a), pool_img_idx(a), n);
}

template <class I>
__global__ void k_avgpool_forward(float *y, const float *x, pool_geom_t g, pool_idx_t d, size_t n) {
    I t = GT_TID_AS(I);
    if (t >= n) return;
    long HW = (long)g.h * g.w;
    I plane;
    int oy, ox;
    pool_split(t, d, &plane, &oy, &ox);
    int y0, y1, x0, x1;
    int cy = pool_window(oy, g.kh, g.sh, g.ph, g.h, &y0, &y1), cx = pool_window(ox, g.kw, g.sw, g.pw, g.w, &x0, &x1);
    const float *xp = x + (size_t)plane * HW;
    float s = 0.0f;
    for (int iy = y0; iy < y1; iy++)
        for (int ix = x0; ix < x1; ix++) s += xp[iy * g.w + ix];
    y[t] = s / (float)pool_divisor(cy, cx, y0, y1, x0, x1, g.exclude_pad);
}

/* dx at one pixel: dy / count of every window containing it, windows in order */
template <class I>
__global__ void k_avgpool_backward(float *dx, const float *dy, pool_geom_t g, pool_idx_t d, size_t n) {
    I t = GT_TID_AS(I);
    if (t >= n) return;
    long P = (long)g.ho * g.wo;
    I plane;
    int iy, ix;
    pool_split(t, d, &plane, &iy, &ix);
    float v = 0.0f;
    if (dy) {
        int oy0, oy1, ox0, ox1;
        pool_outputs_of(iy, g.kh, g.sh, g.ph, g.ho, &oy0, &oy1);
        pool_outputs_of(ix, g.kw, g.sw, g.pw, g.wo, &ox0, &ox1);
        for (int oy = oy0; oy <= oy1; oy++) {
            int y0, y1;
            int cy = pool_window(oy, g.kh, g.sh, g.ph, g.h, &y0, &y1);
            if (iy < y0 || iy >= y1) continue;
            for (int ox = ox0; ox <= ox1; ox++) {
                int x0, x1;
                int cx = pool_window(ox, g.kw, g.sw, g.pw, g.w, &x0, &x1);
                if (ix < x0 || ix >= x1) continue;
                v += dy[(size_t)plane * P + (size_t)oy * g.wo + ox] /
                     (float)pool_divisor(cy, cx, y0, y1, x0, x1, g.exclude_pad);
            }
        }
    }
    dx[t] = v;
}

void cuda_avgpool_forward(backend_t *be, const pool_args_t *a) {
    (void)be;
    size_t n = (size_t)a->planes * a->ho * a->wo;
    if (!n) return;
    int k = a->ty ? 2 : 1;
    gt_count_bytes(k * (4.0 * a->planes * a->h * a->w + 4.0 * n));
    GT_LAUNCH_IDX(n, k_avgpool_forward, gt_blocks(n), GT_BLOCK, a->y, a->x, pool_geom(a), pool_out_idx(a), n);
    if (a->ty) GT_LAUNCH_IDX(n, k_avgpool_forward, gt_blocks(n), GT_BLOCK, a->ty, a->tx, pool_geom(a),
                             pool_out_idx(a), n);
}

void cuda_avgpool_backward(backend_t *be, const pool_args_t *a) {
    (void)be;
    size_t n = (size_t)a->planes * a->h * a->w;
    if (!n) return;
    gt_count_bytes(((a->dx != NULL) + (a->dtx != NULL)) * (4.0 * n + 4.0 * a->planes * a->ho * a->wo));
    if (a->dx) GT_LAUNCH_IDX(n, k_avgpool_backward, gt_blocks(n), GT_BLOCK, a->dx, a->dy, pool_geom(a),
                             pool_img_idx(a), n);
    if (a->dtx) GT_LAUNCH_IDX(n, k_avgpool_backward, gt_blocks(n), GT_BLOCK, a->dtx, a->dty, pool_geom(a),
                              pool_img_idx(a), n);
}

template <class I>
__global__ void k_upsample_forward(float *y, const float *x, pool_geom_t g, pool_idx_t d, size_t n) {
    I t = GT_TID_AS(I);
    if (t >= n) return;
    long HW = (long)g.h * g.w;
    I plane;
    int oy, ox;
    pool_split(t, d, &plane, &oy, &ox);
    y[t] = x[(size_t)plane * HW + (long)upsample_src(oy, g.h, g.scale) * g.w + upsample_src(ox, g.w, g.scale)];
}

/* the output positions [*lo, *hi] along one axis whose nearest source is i (a superset is
 * searched: upsample_src's float rounding and the clamp to in - 1 decide) */
__device__ static inline void upsample_outputs_of(int i, int in, int out, int scale, int *lo, int *hi) {
    int a = i * scale - 2, b = i == in - 1 ? out - 1 : (i + 1) * scale + 1;
    *lo = a < 0 ? 0 : a;
    *hi = b > out - 1 ? out - 1 : b;
}

template <class I>
__global__ void k_upsample_backward(float *dx, const float *dy, pool_geom_t g, pool_idx_t d, size_t n) {
    I t = GT_TID_AS(I);
    if (t >= n) return;
    long P = (long)g.ho * g.wo;
    I plane;
    int iy, ix;
    pool_split(t, d, &plane, &iy, &ix);
    float v = 0.0f;
    if (dy) {
        int oy0, oy1, ox0, ox1;
        upsample_outputs_of(iy, g.h, g.ho, g.scale, &oy0, &oy1);
        upsample_outputs_of(ix, g.w, g.wo, g.scale, &ox0, &ox1);
        for (int oy = oy0; oy <= oy1; oy++) {
            if (upsample_src(oy, g.h, g.scale) != iy) continue;
            for (int ox = ox0; ox <= ox1; ox++)
                if (upsample_src(ox, g.w, g.scale) == ix) v += dy[(size_t)plane * P + (size_t)oy * g.wo + ox];
        }
    }
    dx[t] = v;
}

void cuda_upsample_forward(backend_t *be, const pool_args_t *a) {
    (void)be;
    size_t n = (size_t)a->planes * a->ho * a->wo;
    if (!n) return;
    int k = a->ty ? 2 : 1;
    gt_count_bytes(k * (4.0 * n + 4.0 * a->planes * a->h * a->w));
    GT_LAUNCH_IDX(n, k_upsample_forward, gt_blocks(n), GT_BLOCK, a->y, a->x, pool_geom(a), pool_out_idx(a), n);
    if (a->ty) GT_LAUNCH_IDX(n, k_upsample_forward, gt_blocks(n), GT_BLOCK, a->ty, a->tx, pool_geom(a),
                             pool_out_idx(a), n);
}

void cuda_upsample_backward(backend_t *be, const pool_args_t *a) {
    (void)be;
    size_t n = (size_t)a->planes * a->h * a->w;
    if (!n) return;
    gt_count_bytes(((a->dx != NULL) + (a->dtx != NULL)) * (4.0 * n + 4.0 * a->planes * a->ho * a->wo));
    if (a->dx) GT_LAUNCH_IDX(n, k_upsample_backward, gt_blocks(n), GT_BLOCK, a->dx, a->dy, pool_geom(a),
                             pool_img_idx(a), n);
    if (a->dtx) GT_LAUNCH_IDX(n, k_upsample_backward, gt_blocks(n), GT_BLOCK, a->dtx, a->dty, pool_geom(a),
                              pool_img_idx(a), n);
}
