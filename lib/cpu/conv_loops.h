/* conv_loops.h: the CPU backend's convolution operations (backend.h: im2col, col2im,
 * shiftsum, shiftscatter, to_cmajor, from_cmajor; the layers are layer_conv.c and
 * layer_convT.c): the column matrix and its adjoint, the two shifted sums of the
 * few-output-channel convolution, channel-major transposes. The index arithmetic is
 * conv_math.h's; kernels/conv.cu computes the same on a GPU.
 *
 * Matrices here are row-major with one column per (sample, position) of a chunk of nb samples:
 * column b*S + s, so that a whole chunk is one GEMM operand. Tensors are batch-major
 * (nb, C, S) as everywhere else. Each loop is split over the CPU backend's threads by
 * independent outputs (rows, planes or channels), each output computed by one thread in a
 * fixed order, so results never depend on the thread count. */
#ifndef GT_CONV_LOOPS_H
#define GT_CONV_LOOPS_H

#include "lib/backend/backend.h"
#include "lib/backend/conv_math.h" /* conv_geom_t */

/* col (c*kh*kw, nb*gh*gw) = im2col of img (nb, c, h, w): col[(ch, ty, tx), b*G + oy*gw + ox]
 * = img[b, ch, oy*sh - ph + ty, ox*sw - pw + tx], zero outside the image. */
void conv_im2col(backend_t *be, const conv_geom_t *g, float *col, const float *img, int nb);

/* img (nb, c, h, w) = bias[ch] (0 when bias is NULL) + the adjoint of im2col applied to
 * col (c*kh*kw, nb*gh*gw): every column entry added to the image position it was read from.
 * Overwrites img. */
void conv_col2im(backend_t *be, const conv_geom_t *g, float *img, const float *col, const float *bias, int nb);

/* The few-output-channel convolution (lib/nn/layer_conv.c, "kn2row"), with z one row per
 * (output channel, tap) and one column per image position (nb*h*w columns):
 *   conv_shiftsum:     y[b, o, oy, ox] = bias[o] + sum over taps (ty, tx) of
 *                      z[(o, ty, tx), b*h*w + (oy*sh - ph + ty)*w + ox*sw - pw + tx]
 *                      (taps that fall outside the image add nothing); y is (nb, o_ch, gh, gw).
 *   conv_shiftscatter: its adjoint without the bias: dz[(o, ty, tx), b*h*w + pos] = dy[b, o, oy, ox]
 *                      where pos is the image position grid position (oy, ox) reads at that
 *                      tap, zero where no grid position reads it (needs stride 1: one at most). */
void conv_shiftsum(backend_t *be, const conv_geom_t *g, int o_ch, float *y, const float *z, const float *bias,
                   int nb);
void conv_shiftscatter(backend_t *be, const conv_geom_t *g, int o_ch, float *dz, const float *dy, int nb);

/* dst (C, nb*S) from src (nb, C, S): channel-major for a batch-wide GEMM. */
void conv_to_cmajor(backend_t *be, float *dst, const float *src, int C, long S, int nb);
/* dst (nb, C, S) = src (C, nb*S) + bias[c] (no bias when NULL); dst += src when accumulate. */
void conv_from_cmajor(backend_t *be, float *dst, const float *src, const float *bias, int C, long S, int nb,
                      int accumulate);

#endif
