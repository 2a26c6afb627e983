/* augment_math.h: the per-element arithmetic of DiffAugment (Zhao et al. 2020, "Differentiable
 * Augmentation for Data-Efficient GAN Training"), host+device (hd.h): each sample's random
 * draws, the color transform at one pixel, and where a translated and cut-out image reads
 * from. The backends' augment_draw, augment_color and augment_spatial (backend_ops.h) call
 * these; lib/gan/diffaug.c chains them into the policies.
 *
 * The policies, as the authors' DiffAugment_pytorch.py defines them, on an image x (C, H, W)
 * with per-sample draws:
 *   color:       brightness  x + a,                      a = u0 - 0.5
 *                saturation  (x - mean_c x) s + mean_c x, s = 2 u1  (mean over channels)
 *                contrast    (x - mean x) c + mean x,     c = u2 + 0.5 (mean over C, H, W)
 *   translation: y[:, i, j] = x[:, i + tx, j + ty], zero where that is outside the image,
 *                tx, ty whole numbers in [-sh, sh], [-sw, sw], sh = int(H / 8 + 0.5)
 *   cutout:      zero rows [ox - ch/2, ox - ch/2 + ch) and columns [oy - cw/2, ..) (within the
 *                image), ch = int(H / 2 + 0.5), ox in [0, H - ch % 2] (likewise cw, oy)
 * (u0, u1, u2 uniform in [0, 1)). For fixed draws each policy is affine in x and its linear
 * part is what gradients and tangents go through. Saturation keeps the channel mean, so the
 * mean contrast sees is mean x + a, and the color transform in one is
 *   y = (s (x - mean_c x) + (mean_c x - mean x)) c + mean x + a
 * whose linear part (a = 0) is symmetric: s c I + c (1 - s) P_c + (1 - c) P_all with P_c, P_all
 * the averaging projections; so its adjoint is itself.
 *
 * Draws: sample g (its global index in the batch) of a pass keyed by Philox step `step` takes
 * elements g * AUG_DRAWS + k of (seed, PHILOX_STREAM_AUGMENT, step), k = AUG_P_*; a uniform
 * draw is philox_uniform, a whole number in [0, n) is floor(bits * n / 2^32) of the element's
 * 32 bits. */
#ifndef GT_AUGMENT_MATH_H
#define GT_AUGMENT_MATH_H

#include <stdint.h>

#include "lib/base/hd.h"
#include "lib/base/philox.h"

/* The policies (a bit set; applied in this order). */
enum { AUG_COLOR = 1, AUG_TRANSLATION = 2, AUG_CUTOUT = 4, AUG_ALL = 7 };

/* One sample's parameters, AUG_DRAWS floats, in this order (whole numbers are exact floats). */
enum {
    AUG_P_BRIGHT,   /* a in [-0.5, 0.5) */
    AUG_P_SAT,      /* s in [0, 2) */
    AUG_P_CONTRAST, /* c in [0.5, 1.5) */
    AUG_P_TX,       /* row shift tx in [-sh, sh] */
    AUG_P_TY,       /* column shift ty in [-sw, sw] */
    AUG_P_CUT_X,    /* first cut-out row ox - ch/2 (may be negative) */
    AUG_P_CUT_Y,    /* first cut-out column oy - cw/2 */
    AUG_DRAWS = 8   /* one unused: two Philox blocks per sample */
};

/* The reference's sizes: int(n * ratio + 0.5) for translation (ratio 0.125) and cutout (0.5). */
GT_HD static inline int augment_shift_max(int n) { return (int)((double)n * 0.125 + 0.5); }
GT_HD static inline int augment_cut_size(int n) { return (int)((double)n * 0.5 + 0.5); }

/* A whole number in [0, n) from 32 random bits. */
GT_HD static inline int augment_below(uint32_t bits, int n) { return (int)(((uint64_t)bits * (uint64_t)n) >> 32); }

/* Parameter k (AUG_P_*) of global sample g in a pass keyed by step, for H x W images. */
GT_HD static inline float augment_param(uint64_t seed, uint32_t step, uint64_t g, int k, int H, int W) {
    uint32_t bits = philox_u32(seed, PHILOX_STREAM_AUGMENT, step, g * AUG_DRAWS + (uint64_t)k);
    float u = philox_uniform_bits(bits);
    switch (k) {
    case AUG_P_BRIGHT: return u - 0.5f;
    case AUG_P_SAT: return u * 2.0f;
    case AUG_P_CONTRAST: return u + 0.5f;
    case AUG_P_TX:
    case AUG_P_TY: {
        int m = augment_shift_max(k == AUG_P_TX ? H : W);
        return (float)(augment_below(bits, 2 * m + 1) - m);
    }
    case AUG_P_CUT_X:
    case AUG_P_CUT_Y: {
        int n = k == AUG_P_CUT_X ? H : W, cs = augment_cut_size(n);
        return (float)(augment_below(bits, n + 1 - cs % 2) - cs / 2);
    }
    default: return 0.0f;
    }
}

/* The color transform of one pixel of C channels x[0], x[stride], ... into y (same stride; y
 * may be x), with the sample's parameters p (AUG_DRAWS) and mean M of the whole sample:
 * shift != 0 the transform itself, shift == 0 its linear part (the brightness term dropped and
 * M the mean of the tangent or cotangent x). */
GT_HD static inline void augment_color_pixel(float *y, const float *x, long stride, int C, const float *p, float M,
                                             int shift) {
    float sum = 0.0f;
    for (int ch = 0; ch < C; ch++) sum += x[ch * stride];
    float mc = sum / (float)C, s = p[AUG_P_SAT], c = p[AUG_P_CONTRAST];
    float base = M + (shift ? p[AUG_P_BRIGHT] : 0.0f), off = mc - M;
    for (int ch = 0; ch < C; ch++) y[ch * stride] = ((x[ch * stride] - mc) * s + off) * c + base;
}

/* Whether the cut-out square of parameters p (ch x cw) covers pixel (i, j). */
GT_HD static inline int augment_cut(const float *p, int ch, int cw, int i, int j) {
    int x0 = (int)p[AUG_P_CUT_X], y0 = (int)p[AUG_P_CUT_Y];
    return i >= x0 && i < x0 + ch && j >= y0 && j < y0 + cw;
}

/* The spatial policies (AUG_TRANSLATION and/or AUG_CUTOUT in policy) at pixel (i, j) of an
 * H x W plane: the offset in the input plane that output pixel (i, j) takes, or -1 for zero.
 * Forward: y[i, j] = x[i + tx, j + ty] unless cut out at (i, j). Adjoint: dx[i, j] =
 * dy[i - tx, j - ty] unless (i - tx, j - ty) is outside the image or cut out. */
GT_HD static inline long augment_source(const float *p, int policy, int adjoint, int H, int W, int i, int j) {
    int tx = 0, ty = 0;
    if (policy & AUG_TRANSLATION) {
        tx = (int)p[AUG_P_TX];
        ty = (int)p[AUG_P_TY];
    }
    int si = adjoint ? i - tx : i + tx, sj = adjoint ? j - ty : j + ty;
    if (si < 0 || si >= H || sj < 0 || sj >= W) return -1;
    int oi = adjoint ? si : i, oj = adjoint ? sj : j; /* the output pixel of the forward map */
    if ((policy & AUG_CUTOUT) && augment_cut(p, augment_cut_size(H), augment_cut_size(W), oi, oj)) return -1;
    return (long)si * W + sj;
}

#endif
