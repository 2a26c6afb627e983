/* inception_math.h: the per-index arithmetic of the Inception feature network (lib/fid/inception_net.c),
 * host+device (hd.h): bilinear resizing as torch.nn.functional.interpolate(mode='bilinear',
 * align_corners=False) computes it, and the channel concatenation's offsets. The CPU loops call
 * these; CUDA kernels are to call the same functions. */
#ifndef GT_INCEPTION_MATH_H
#define GT_INCEPTION_MATH_H

#include "lib/base/hd.h"

/* Source taps of output index dst when resizing `in` samples to `out` (align_corners=False, no
 * antialiasing), in float as torch 1.13's CPU kernel: scale = in / out,
 * src = max(scale * (dst + 0.5) - 0.5, 0), i0 = floor(src), i1 = i0 + 1 unless i0 is the last,
 * weights l1 = src - i0 and l0 = 1 - l1. */
GT_HD static inline void resize_taps(int dst, int in, int out, int *i0, int *i1, float *l0, float *l1) {
    float scale = (float)in / (float)out;
    float src = scale * ((float)dst + 0.5f) - 0.5f;
    if (src < 0.0f) src = 0.0f;
    int a = (int)src;
    if (a > in - 1) a = in - 1;
    float w = src - (float)a;
    if (w > 1.0f) w = 1.0f;
    *i0 = a;
    *i1 = a < in - 1 ? a + 1 : a;
    *l1 = w;
    *l0 = 1.0f - w;
}

/* One output value from the four taps: rows (y0, y1) with weights (a0, a1), columns (x0, x1)
 * with weights (b0, b1) of a plane of width w. */
GT_HD static inline float resize_at(const float *plane, int w, int y0, int y1, float a0, float a1, int x0, int x1,
                                    float b0, float b1) {
    return a0 * (b0 * plane[(long)y0 * w + x0] + b1 * plane[(long)y0 * w + x1]) +
           a1 * (b0 * plane[(long)y1 * w + x0] + b1 * plane[(long)y1 * w + x1]);
}

/* Where sample b's channel c of a branch lands in a concatenation of c_total channels of hw
 * values each, the branch starting at channel c_off: the offset of that plane. */
GT_HD static inline long concat_plane(int b, int c, int c_off, int c_total, long hw) {
    return ((long)b * c_total + c_off + c) * hw;
}

/* ReLU after the folded BatchNorm: max(v, 0), NaN kept (torch's relu propagates NaN). */
GT_HD static inline float inception_relu(float v) { return v < 0.0f ? 0.0f : v; }

#endif
