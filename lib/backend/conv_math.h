/* conv_math.h: the index arithmetic of the spatial layers (conv, convT, maxpool, avgpool,
 * upsample), host+device (hd.h). The CPU loops (lib/cpu/conv.c, lib/cpu/pool.c), the CUDA
 * kernels (kernels/conv.cu, kernels/pool.cu) and the layers call these, so the CPU tests check
 * the GPU's index maps.
 *
 * Geometry of a convolution, PyTorch's (dilation 1): the image side is the convolution's
 * input (a transposed convolution's output), the grid side its output (a transposed
 * convolution's input). Grid position o along one axis sees image position
 *     conv_src(o, t, s, p) = o * s - p + t          for kernel tap t in [0, k)
 * and reads zero where that falls outside [0, in). The column matrix of im2col has one row
 * per (channel, tap_y, tap_x) and one column per grid position. */
#ifndef GT_CONV_MATH_H
#define GT_CONV_MATH_H

#include "lib/base/hd.h"
#ifndef __CUDACC__
#include <math.h>
#endif

/* A convolution seen from its image side (the input of conv, the output of convT) and its
 * grid side (the output of conv, the input of convT). */
typedef struct {
    int c, h, w;                /* image side: channels (rows of im2col are c*kh*kw), size */
    int gh, gw;                 /* grid side size */
    int kh, kw, sh, sw, ph, pw; /* kernel, stride, padding */
} conv_geom_t;

/* Output length of a convolution or pooling over `in` (torch, floor mode); <= 0 when the
 * padded input is shorter than the kernel. */
GT_HD static inline int conv_out_len(int in, int k, int s, int p) {
    int span = in + 2 * p - k;
    return span < 0 ? 0 : span / s + 1;
}

/* Output length of a transposed convolution (nn.ConvTranspose2d, dilation 1). */
GT_HD static inline int convT_out_len(int in, int k, int s, int p, int op) { return (in - 1) * s - 2 * p + k + op; }

/* Image coordinate that grid position o reads at kernel tap t. */
GT_HD static inline int conv_src(int o, int t, int s, int p) { return o * s - p + t; }

/* The grid positions [lo, hi) of n_out whose tap t lands inside an image of length in:
 * the first o with o*s - p + t >= 0 and one past the last with o*s - p + t <= in - 1. */
GT_HD static inline int conv_tap_lo(int t, int s, int p) { return p - t <= 0 ? 0 : (p - t + s - 1) / s; }
GT_HD static inline int conv_tap_hi(int t, int s, int p, int in, int n_out) {
    int last = in - 1 + p - t;
    if (last < 0) return 0;
    int hi = last / s + 1;
    return hi < n_out ? hi : n_out;
}

/* The convolution layers work on chunks of samples whose buffers hold about this many floats
 * (16 MiB): a fixed number, so that the chunks depend only on the shapes. */
#ifndef CONV_CHUNK_FLOATS
#define CONV_CHUNK_FLOATS (1L << 22)
#endif

/* Phases of a strided axis: with stride s, image coordinate x = j*s + r (0 <= r < s) lies in
 * phase r at index j. Grid position o reads, at tap t, x = (o + conv_tap_shift) * s + conv_tap_phase:
 * a run of consecutive grid positions reads a run of consecutive indices of one phase. */
GT_HD static inline int conv_tap_phase(int t, int s, int p) {
    int r = (t - p) % s;
    return r < 0 ? r + s : r;
}
GT_HD static inline int conv_tap_shift(int t, int s, int p) { return (t - p - conv_tap_phase(t, s, p)) / s; }
/* length of the longest phase of an axis of n: ceil(n / s) */
GT_HD static inline int conv_phase_len(int n, int s) { return (n + s - 1) / s; }

/* One element of the column matrix: plane (h x w) at (y, x), zero outside. */
GT_HD static inline float conv_im2col_at(const float *plane, int h, int w, int y, int x) {
    return y >= 0 && y < h && x >= 0 && x < w ? plane[(long)y * w + x] : 0.0f;
}

/* Pooling window of output position o along one axis (torch's CPU kernels, floor mode):
 * start = o*s - p, end = min(start + k, in + p); the padded count (end - start) is what
 * AvgPool2d(count_include_pad=True) divides by. *lo, *hi receive the window clipped to
 * [0, in); the return value is the padded count. */
GT_HD static inline int pool_window(int o, int k, int s, int p, int in, int *lo, int *hi) {
    int start = o * s - p, end = start + k < in + p ? start + k : in + p;
    int count = end - start;
    *lo = start > 0 ? start : 0;
    *hi = end < in ? end : in;
    return count;
}

/* What AvgPool2d divides a window's sum by: the padded count (count_include_pad=True) or, with
 * exclude_pad (count_include_pad=False), the number of positions of the clipped window
 * [y0, y1) x [x0, x1) inside the image. */
GT_HD static inline int pool_divisor(int padded_y, int padded_x, int y0, int y1, int x0, int x1, int exclude_pad) {
    return exclude_pad ? (y1 - y0) * (x1 - x0) : padded_y * padded_x;
}

/* Max pooling's running maximum takes v when it is larger or NaN (torch: NaN propagates). */
GT_HD static inline int maxpool_takes(float v, float best) { return v > best || v != v; }

/* Nearest upsampling by an integer factor: the source index of output index dst, as
 * torch 1.13's nearest_idx computes it (exact copies for factors 1 and 2, else
 * floor(dst * (float)(1/scale)) clamped to in - 1, in float). */
GT_HD static inline int upsample_src(int dst, int in, int scale) {
    if (scale == 1) return dst;
    if (scale == 2) return dst >> 1;
    float inv = (float)(1.0 / (double)scale);
    int s = (int)floorf((float)dst * inv);
    return s < in - 1 ? s : in - 1;
}

/* ---- gather forms, for one output element each (the CUDA kernels) ----------------------
 * The CPU loops (lib/cpu/conv.c, lib/cpu/pool.c) scatter plane by plane; a GPU thread per
 * output element gathers instead. Each gather adds the same terms in the same order as the
 * CPU's scatter adds them to that element (taps, or output positions, in increasing order),
 * so both give the same bits. */

/* The grid position along one axis that reads image position i at tap t: o with
 * o*s - p + t == i, or -1 when there is none in [0, n_out). */
GT_HD static inline int conv_grid_of(int i, int t, int s, int p, int n_out) {
    int d = i + p - t;
    if (d < 0 || d % s) return -1;
    d /= s;
    return d < n_out ? d : -1;
}

/* Image pixel (y, x) of channel ch of col2im: bias plus the column entries read from it, taps
 * in order. col points at the sample's first column; ld is the row stride of col. */
GT_HD static inline float conv_col2im_pixel(const conv_geom_t *g, const float *col, long ld, int ch, int y, int x,
                                            float bias) {
    /* the taps that reach y are ty = (y + ph) % sh, then every sh-th, at grid rows one lower each
     * time: one division per axis, not one per tap (conv_grid_of); the same terms in order */
    float v = bias;
    int ry = (y + g->ph) % g->sh, rx = (x + g->pw) % g->sw;
    int oy0 = (y + g->ph) / g->sh, ox0 = (x + g->pw) / g->sw;
    for (int ty = ry, oy = oy0; ty < g->kh && oy >= 0; ty += g->sh, oy--) {
        if (oy >= g->gh) continue;
        for (int tx = rx, ox = ox0; tx < g->kw && ox >= 0; tx += g->sw, ox--) {
            if (ox >= g->gw) continue;
            v += col[((long)(ch * g->kh + ty) * g->kw + tx) * ld + (long)oy * g->gw + ox];
        }
    }
    return v;
}

/* Grid position (oy, ox) of output channel o of the shifted sum: bias plus, taps in order, the
 * z row of (o, tap) at the image position the position reads (taps outside add nothing). z
 * points at the sample's first column; ld is the row stride of z. */
GT_HD static inline float conv_shiftsum_at(const conv_geom_t *g, const float *z, long ld, int o, int oy, int ox,
                                           float bias) {
    float v = bias;
    for (int ty = 0; ty < g->kh; ty++) {
        int iy = conv_src(oy, ty, g->sh, g->ph);
        if (iy < 0 || iy >= g->h) continue;
        for (int tx = 0; tx < g->kw; tx++) {
            int ix = conv_src(ox, tx, g->sw, g->pw);
            if (ix < 0 || ix >= g->w) continue;
            v += z[((long)(o * g->kh + ty) * g->kw + tx) * ld + (long)iy * g->w + ix];
        }
    }
    return v;
}

/* The output positions [*lo, *hi] along one axis whose pooling window (kernel k, stride s,
 * padding p) contains input position i (empty when *lo > *hi). */
GT_HD static inline void pool_outputs_of(int i, int k, int s, int p, int n_out, int *lo, int *hi) {
    int a = i + p - k + 1; /* a window o*s - p .. o*s - p + k - 1 contains i when o*s >= a */
    *lo = a <= 0 ? 0 : (a + s - 1) / s;
    *hi = (i + p) / s;
    if (*hi > n_out - 1) *hi = n_out - 1;
}

#endif
