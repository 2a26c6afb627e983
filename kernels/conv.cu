/* conv.cu: the CUDA backend's convolution operations (lib/backend/backend_ops.h: im2col,
 * col2im, gemm_im2col, gemm_col2im, shiftsum, shiftscatter, to_cmajor, from_cmajor; pooling
 * is pool.cu's). One thread per output element; the index maps are conv_math.h's. Where the
 * CPU loops (lib/cpu/conv.c) scatter-add plane by plane, a thread here gathers the same terms
 * in the same order (conv_math.h's gather forms), so the results are the CPU's bits: no
 * atomics, nothing shared between threads. Each kernel is a template on its index type
 * (cuda_check.h: GT_LAUNCH_IDX): the divisors that split a thread's index are precomputed by
 * the launch (gt_idiv). */
#include "cuda_check.h"
#include "cuda_ops.h"

#include "lib/backend/conv_math.h"

/* ---- column matrices ------------------------------------------------------------------- */

/* col (c*kh*kw, nb*G): element (row r = (ch, ty, tx), column b*G + oy*gw + ox) */
template <class I>
__global__ void k_im2col(float *col, const float *img, conv_geom_t g, gt_idiv ld, gt_idiv kk, gt_idiv G, gt_idiv gw,
                         gt_idiv kw, size_t n) {
    I t = GT_TID_AS(I);
    if (t >= n) return;
    I r, b, ch, oy, ty;
    I cix = ld.divmod(t, &r), tap = kk.divmod(r, &ch), pos = G.divmod(cix, &b);
    I ox = gw.divmod(pos, &oy), tx = kw.divmod(tap, &ty);
    const float *plane = img + ((size_t)b * g.c + ch) * g.h * g.w;
    col[t] = conv_im2col_at(plane, g.h, g.w, conv_src((int)oy, (int)ty, g.sh, g.ph),
                            conv_src((int)ox, (int)tx, g.sw, g.pw));
}

void cuda_im2col(backend_t *be, const conv_geom_t *g, float *col, const float *img, int nb) {
    (void)be;
    size_t n = (size_t)g->c * g->kh * g->kw * nb * g->gh * g->gw;
    if (!n) return;
    gt_count_bytes(4.0 * n + 4.0 * nb * g->c * g->h * g->w);
    size_t G = (size_t)g->gh * g->gw;
    GT_LAUNCH_IDX(n, k_im2col, gt_blocks(n), GT_BLOCK, col, img, *g, gt_idiv_make(nb * G),
                  gt_idiv_make((size_t)g->kh * g->kw), gt_idiv_make(G), gt_idiv_make(g->gw), gt_idiv_make(g->kw), n);
}

/* im2col into ws (unless it holds col already), then cuBLAS */
void cuda_gemm_im2col(backend_t *be, const conv_geom_t *g, const float *img, int nb, float *ws, int *ws_col,
                      int trans_a, int trans_b, int m, float alpha, const float *a, int lda, float beta, float *c,
                      int ldc) {
    int rows = g->c * g->kh * g->kw, cols = nb * g->gh * g->gw;
    if (!ws_col || !*ws_col) cuda_im2col(be, g, ws, img, nb);
    if (ws_col) *ws_col = 1;
    be->gemm(be, trans_a, trans_b, m, trans_b ? rows : cols, trans_b ? cols : rows, alpha, a, lda, ws, cols, beta, c,
             ldc);
}

/* img (nb, c, h, w): one pixel each */
template <class I>
__global__ void k_col2im(float *img, const float *col, const float *bias, conv_geom_t g, gt_idiv HW, gt_idiv c,
                         gt_idiv w, int nb, size_t n) {
    I t = GT_TID_AS(I);
    if (t >= n) return;
    long G = (long)g.gh * g.gw;
    I plane, b, y;
    I k = HW.divmod(t, &plane), ch = c.divmod(plane, &b), x = w.divmod(k, &y);
    img[t] = conv_col2im_pixel(&g, col + (size_t)b * G, (long)nb * G, (int)ch, (int)y, (int)x, bias ? bias[ch] : 0.0f);
}

void cuda_col2im(backend_t *be, const conv_geom_t *g, float *img, const float *col, const float *bias, int nb) {
    (void)be;
    size_t n = (size_t)nb * g->c * g->h * g->w;
    if (!n) return;
    gt_count_bytes(4.0 * n + 4.0 * g->c * g->kh * g->kw * nb * g->gh * g->gw);
    GT_LAUNCH_IDX(n, k_col2im, gt_blocks(n), GT_BLOCK, img, col, bias, *g, gt_idiv_make((size_t)g->h * g->w),
                  gt_idiv_make(g->c), gt_idiv_make(g->w), nb, n);
}

/* the GEMM into ws, then col2im (wa unused) */
void cuda_gemm_col2im(backend_t *be, const conv_geom_t *g, float *img, const float *bias, int nb, float *ws,
                      float *wa, int *wa_ready, int trans_a, int k, const float *a, int lda, const float *b, int ldb) {
    (void)wa;
    if (wa_ready) *wa_ready = 0;
    int rows = g->c * g->kh * g->kw, cols = nb * g->gh * g->gw;
    be->gemm(be, trans_a, 0, rows, cols, k, 1.0f, a, lda, b, ldb, 0.0f, ws, cols);
    cuda_col2im(be, g, img, ws, bias, nb);
}

/* y (nb, o_ch, gh, gw): one output each */
template <class I>
__global__ void k_shiftsum(float *y, const float *z, const float *bias, conv_geom_t g, gt_idiv G, gt_idiv o_ch,
                           gt_idiv gw, int nb, size_t n) {
    I t = GT_TID_AS(I);
    if (t >= n) return;
    long HW = (long)g.h * g.w;
    I plane, b, oy;
    I k = G.divmod(t, &plane), o = o_ch.divmod(plane, &b), ox = gw.divmod(k, &oy);
    y[t] = conv_shiftsum_at(&g, z + (size_t)b * HW, (long)nb * HW, (int)o, (int)oy, (int)ox, bias ? bias[o] : 0.0f);
}

void cuda_shiftsum(backend_t *be, const conv_geom_t *g, int o_ch, float *y, const float *z, const float *bias,
                   int nb) {
    (void)be;
    size_t n = (size_t)nb * o_ch * g->gh * g->gw;
    if (!n) return;
    gt_count_bytes(4.0 * n + 4.0 * o_ch * g->kh * g->kw * nb * g->h * g->w);
    GT_LAUNCH_IDX(n, k_shiftsum, gt_blocks(n), GT_BLOCK, y, z, bias, *g, gt_idiv_make((size_t)g->gh * g->gw),
                  gt_idiv_make(o_ch), gt_idiv_make(g->gw), nb, n);
}

/* dz (o_ch*kh*kw, nb*h*w): element (row (o, ty, tx), column b*HW + iy*w + ix) is dy at the grid
 * position that reads (iy, ix) at that tap, 0 when none does */
template <class I>
__global__ void k_shiftscatter(float *dz, const float *dy, conv_geom_t g, gt_idiv ld, gt_idiv kk, gt_idiv HW,
                               gt_idiv w, gt_idiv kw, int o_ch, size_t n) {
    I t = GT_TID_AS(I);
    if (t >= n) return;
    long G = (long)g.gh * g.gw;
    I r, o, b, iy, ty;
    I cix = ld.divmod(t, &r), tap = kk.divmod(r, &o), pos = HW.divmod(cix, &b);
    I ix = w.divmod(pos, &iy), tx = kw.divmod(tap, &ty);
    int oy = conv_grid_of((int)iy, (int)ty, g.sh, g.ph, g.gh), ox = conv_grid_of((int)ix, (int)tx, g.sw, g.pw, g.gw);
    dz[t] = oy >= 0 && ox >= 0 ? dy[((size_t)b * o_ch + o) * G + (long)oy * g.gw + ox] : 0.0f;
}

void cuda_shiftscatter(backend_t *be, const conv_geom_t *g, int o_ch, float *dz, const float *dy, int nb) {
    (void)be;
    size_t n = (size_t)o_ch * g->kh * g->kw * nb * g->h * g->w;
    if (!n) return;
    gt_count_bytes(4.0 * n + 4.0 * nb * o_ch * g->gh * g->gw);
    size_t HW = (size_t)g->h * g->w;
    GT_LAUNCH_IDX(n, k_shiftscatter, gt_blocks(n), GT_BLOCK, dz, dy, *g, gt_idiv_make(nb * HW),
                  gt_idiv_make((size_t)g->kh * g->kw), gt_idiv_make(HW), gt_idiv_make(g->w), gt_idiv_make(g->kw),
                  o_ch, n);
}

/* ---- channel-major transposes ------------------------------------------------------------ */

/* dst (C, nb, S) from src (nb, C, S) */
template <class I>
__global__ void k_to_cmajor(float *dst, const float *src, int C, gt_idiv S, gt_idiv nb, size_t n) {
    I t = GT_TID_AS(I);
    if (t >= n) return;
    I cb, c, k = S.divmod(t, &cb), b = nb.divmod(cb, &c);
    dst[t] = src[((size_t)b * C + c) * S.d + k];
}

void cuda_to_cmajor(backend_t *be, float *dst, const float *src, int C, long S, int nb) {
    (void)be;
    size_t n = (size_t)C * S * nb;
    if (!n) return;
    gt_count_bytes(8.0 * n);
    GT_LAUNCH_IDX(n, k_to_cmajor, gt_blocks(n), GT_BLOCK, dst, src, C, gt_idiv_make(S), gt_idiv_make(nb), n);
}

/* dst (nb, C, S) from src (C, nb, S): + bias[c], or += when accumulate */
template <class I>
__global__ void k_from_cmajor(float *dst, const float *src, const float *bias, gt_idiv C, gt_idiv S, int nb,
                              int accumulate, size_t n) {
    I t = GT_TID_AS(I);
    if (t >= n) return;
    I bc, b, k = S.divmod(t, &bc), c = C.divmod(bc, &b);
    float v = src[((size_t)c * nb + b) * S.d + k];
    if (accumulate) dst[t] += v;
    else dst[t] = bias ? v + bias[c] : v;
}

void cuda_from_cmajor(backend_t *be, float *dst, const float *src, const float *bias, int C, long S, int nb,
                      int accumulate) {
    (void)be;
    size_t n = (size_t)C * S * nb;
    if (!n) return;
    gt_count_bytes((accumulate ? 12.0 : 8.0) * n);
    GT_LAUNCH_IDX(n, k_from_cmajor, gt_blocks(n), GT_BLOCK, dst, src, bias, gt_idiv_make(C), gt_idiv_make(S), nb,
                  accumulate, n);
}
