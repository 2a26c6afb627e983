/* conv_math.h: the index arithmetic of the spatial layers (conv, convT, maxpool, avgpool,
 * upsample), host+device (hd.h). The CPU loops (lib/conv_loops.c, lib/layer_*pool.c,
 * lib/layer_upsample.c) call these, and CUDA kernels are to call the same functions, so the
 * CPU tests check the GPU's index maps.
 *
 * Geometry of a convolution, PyTorch's (dilation 1): the image side is the convolution's
 * input (a transposed convolution's output), the grid side its output (a transposed
 * convolution's input). Grid position o along one axis sees image position
 *     conv_src(o, t, s, p) = o * s - p + t          for kernel tap t in [0, k)
 * and reads zero where that falls outside [0, in). The column matrix of im2col has one row
 * per (channel, tap_y, tap_x) and one column per grid position. */
#ifndef GT_CONV_MATH_H
#define GT_CONV_MATH_H

#include "hd.h"
#ifndef __CUDACC__
#include <math.h>
#endif

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

#endif
