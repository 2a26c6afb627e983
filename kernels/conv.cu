/* conv.cu: the CUDA backend's convolution operations (lib/backend/backend_ops.h: im2col,
 * col2im, shiftsum, shiftscatter, to_cmajor, from_cmajor; pooling is pool.cu's). One thread
 * per output element; the index maps are conv_math.h's. Where the CPU loops (lib/cpu/conv.c)
 * scatter-add plane by plane, a thread here gathers the same terms in the same order
 * (conv_math.h's gather forms), so the results are the CPU's bits: no atomics, nothing shared
 * between threads. */
#include "cuda_check.h"
#include "cuda_ops.h"

#include "lib/backend/conv_math.h"

/* ---- column matrices ------------------------------------------------------------------- */

/* col (c*kh*kw, nb*G): element (row r = (ch, ty, tx), column b*G + oy*gw + ox) */
__global__ void k_im2col(float *col, const float *img, conv_geom_t g, int nb, size_t n) {
    size_t t = GT_TID();
    if (t >= n) return;
    long G = (long)g.gh * g.gw, ld = (long)nb * G, kk = (long)g.kh * g.kw;
    long r = (long)(t / ld), cix = (long)(t % ld);
    int ch = (int)(r / kk), tap = (int)(r % kk), b = (int)(cix / G);
    int oy = (int)(cix % G / g.gw), ox = (int)(cix % g.gw);
    const float *plane = img + ((size_t)b * g.c + ch) * g.h * g.w;
    col[t] = conv_im2col_at(plane, g.h, g.w, conv_src(oy, tap / g.kw, g.sh, g.ph), conv_src(ox, tap % g.kw, g.sw, g.pw));
}

void cuda_im2col(backend_t *be, const conv_geom_t *g, float *col, const float *img, int nb) {
    (void)be;
    size_t n = (size_t)g->c * g->kh * g->kw * nb * g->gh * g->gw;
    if (!n) return;
    gt_count_bytes(4.0 * n + 4.0 * nb * g->c * g->h * g->w);
    GT_LAUNCH(k_im2col, gt_blocks(n), GT_BLOCK, col, img, *g, nb, n);
}

/* img (nb, c, h, w): one pixel each */
__global__ void k_col2im(float *img, const float *col, const float *bias, conv_geom_t g, int nb, size_t n) {
    size_t t = GT_TID();
    if (t >= n) return;
    long HW = (long)g.h * g.w, G = (long)g.gh * g.gw;
    long plane = (long)(t / HW), k = (long)(t % HW);
    int b = (int)(plane / g.c), ch = (int)(plane % g.c);
    img[t] = conv_col2im_pixel(&g, col + (size_t)b * G, (long)nb * G, ch, (int)(k / g.w), (int)(k % g.w),
                               bias ? bias[ch] : 0.0f);
}

void cuda_col2im(backend_t *be, const conv_geom_t *g, float *img, const float *col, const float *bias, int nb) {
    (void)be;
    size_t n = (size_t)nb * g->c * g->h * g->w;
    if (!n) return;
    gt_count_bytes(4.0 * n + 4.0 * g->c * g->kh * g->kw * nb * g->gh * g->gw);
    GT_LAUNCH(k_col2im, gt_blocks(n), GT_BLOCK, img, col, bias, *g, nb, n);
}

/* y (nb, o_ch, gh, gw): one output each */
__global__ void k_shiftsum(float *y, const float *z, const float *bias, conv_geom_t g, int o_ch, int nb, size_t n) {
    size_t t = GT_TID();
    if (t >= n) return;
    long G = (long)g.gh * g.gw, HW = (long)g.h * g.w;
    long plane = (long)(t / G), k = (long)(t % G);
    int b = (int)(plane / o_ch), o = (int)(plane % o_ch);
    y[t] = conv_shiftsum_at(&g, z + (size_t)b * HW, (long)nb * HW, o, (int)(k / g.gw), (int)(k % g.gw),
                            bias ? bias[o] : 0.0f);
}

void cuda_shiftsum(backend_t *be, const conv_geom_t *g, int o_ch, float *y, const float *z, const float *bias,
                   int nb) {
    (void)be;
    size_t n = (size_t)nb * o_ch * g->gh * g->gw;
    if (!n) return;
    gt_count_bytes(4.0 * n + 4.0 * o_ch * g->kh * g->kw * nb * g->h * g->w);
    GT_LAUNCH(k_shiftsum, gt_blocks(n), GT_BLOCK, y, z, bias, *g, o_ch, nb, n);
}

/* dz (o_ch*kh*kw, nb*h*w): element (row (o, ty, tx), column b*HW + iy*w + ix) is dy at the grid
 * position that reads (iy, ix) at that tap, 0 when none does */
__global__ void k_shiftscatter(float *dz, const float *dy, conv_geom_t g, int o_ch, int nb, size_t n) {
    size_t t = GT_TID();
    if (t >= n) return;
    long HW = (long)g.h * g.w, G = (long)g.gh * g.gw, ld = (long)nb * HW, kk = (long)g.kh * g.kw;
    long r = (long)(t / ld), cix = (long)(t % ld);
    int o = (int)(r / kk), tap = (int)(r % kk), b = (int)(cix / HW);
    int iy = (int)(cix % HW / g.w), ix = (int)(cix % g.w);
    int oy = conv_grid_of(iy, tap / g.kw, g.sh, g.ph, g.gh), ox = conv_grid_of(ix, tap % g.kw, g.sw, g.pw, g.gw);
    dz[t] = oy >= 0 && ox >= 0 ? dy[((size_t)b * o_ch + o) * G + (long)oy * g.gw + ox] : 0.0f;
}

void cuda_shiftscatter(backend_t *be, const conv_geom_t *g, int o_ch, float *dz, const float *dy, int nb) {
    (void)be;
    size_t n = (size_t)o_ch * g->kh * g->kw * nb * g->h * g->w;
    if (!n) return;
    gt_count_bytes(4.0 * n + 4.0 * nb * o_ch * g->gh * g->gw);
    GT_LAUNCH(k_shiftscatter, gt_blocks(n), GT_BLOCK, dz, dy, *g, o_ch, nb, n);
}

/* ---- channel-major transposes ------------------------------------------------------------ */

/* dst (C, nb, S) from src (nb, C, S) */
__global__ void k_to_cmajor(float *dst, const float *src, int C, long S, int nb, size_t n) {
    size_t t = GT_TID();
    if (t >= n) return;
    long c = (long)(t / ((size_t)nb * S)), b = (long)(t / S % nb), k = (long)(t % S);
    dst[t] = src[((size_t)b * C + c) * S + k];
}

void cuda_to_cmajor(backend_t *be, float *dst, const float *src, int C, long S, int nb) {
    (void)be;
    size_t n = (size_t)C * S * nb;
    if (!n) return;
    gt_count_bytes(8.0 * n);
    GT_LAUNCH(k_to_cmajor, gt_blocks(n), GT_BLOCK, dst, src, C, S, nb, n);
}

/* dst (nb, C, S) from src (C, nb, S): + bias[c], or += when accumulate */
__global__ void k_from_cmajor(float *dst, const float *src, const float *bias, int C, long S, int nb, int accumulate,
                              size_t n) {
    size_t t = GT_TID();
    if (t >= n) return;
    long b = (long)(t / ((size_t)C * S)), c = (long)(t / S % C), k = (long)(t % S);
    float v = src[((size_t)c * nb + b) * S + k];
    if (accumulate) dst[t] += v;
    else dst[t] = bias ? v + bias[c] : v;
}

void cuda_from_cmajor(backend_t *be, float *dst, const float *src, const float *bias, int C, long S, int nb,
                      int accumulate) {
    (void)be;
    size_t n = (size_t)C * S * nb;
    if (!n) return;
    gt_count_bytes((accumulate ? 12.0 : 8.0) * n);
    GT_LAUNCH(k_from_cmajor, gt_blocks(n), GT_BLOCK, dst, src, bias, C, S, nb, accumulate, n);
}
