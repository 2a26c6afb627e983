/* act_math.h: element-wise activation math, host+device (hd.h): values, first and second
 * derivatives. The CPU loops (lib/cpu/layers.c) and the CUDA kernels (kernels/layers.cu) call these, so the CPU
 * tests check the GPU's arithmetic.
 *
 * Derivatives are written in terms of what backward has at hand: for tanh and sigmoid the
 * output y (cheaper and exactly what PyTorch uses), for relu/lrelu the input x.
 * Second derivatives serve the forward-over-reverse gradient penalty (layer.h jvp_*):
 *   y = f(x), ty = f'(x) tx;  dx = f'(x) dy + f''(x) tx dty,  dtx = f'(x) dty. */
#ifndef GT_ACT_MATH_H
#define GT_ACT_MATH_H

#include "lib/base/hd.h"
#include <stdint.h>
#include <string.h>
#ifndef __CUDACC__
#include <math.h>
#endif

/* a float's bits and back (memcpy: defined behaviour in C and C++, on the host and the device) */
GT_HD static inline uint32_t act_float_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}
GT_HD static inline float act_bits_float(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* c ? a : b without a branch. On the CPU, GCC keeps a branch for a float select (with the
 * default -ftrapping-math it neither if-converts nor vectorizes it), and a branch on the sign
 * of activations mispredicts half the time: 4.8 ns per element instead of 1. The bit select
 * returns exactly a or b, so the function is the same on every device. */
#ifdef __CUDACC__
GT_HD static inline float act_select(int c, float a, float b) { return c ? a : b; }
#else
static inline float act_select(int c, float a, float b) {
    uint32_t m = (uint32_t)0 - (uint32_t)(c != 0);
    return act_bits_float((act_float_bits(a) & m) | (act_float_bits(b) & ~m));
}
#endif

/* ReLU: f = max(x, 0); f' = 1 for x > 0 else 0 (torch: 0 at x == 0); f'' = 0.
 * act_relu_bwd: f'(x) dy as torch computes it (0 where x <= 0 even for an infinite dy). */
GT_HD static inline float act_relu(float x) { return act_select(x > 0.0f, x, 0.0f); }
GT_HD static inline float act_relu_d(float x) { return act_select(x > 0.0f, 1.0f, 0.0f); }
GT_HD static inline float act_relu_bwd(float x, float dy) { return act_select(x > 0.0f, dy, 0.0f); }

/* LeakyReLU: f = x for x > 0 else slope * x (torch: slope at x == 0); f'' = 0. */
GT_HD static inline float act_lrelu(float x, float slope) { return act_select(x > 0.0f, x, x * slope); }
GT_HD static inline float act_lrelu_d(float x, float slope) { return act_select(x > 0.0f, 1.0f, slope); }

/* tanh, written out so that the same float operations run on every device and a CPU loop of it
 * vectorizes (libm's tanhf is one call per element, 9.6 ns on the development machine; this,
 * vectorized, 0.47; CUDA's tanhf differs from glibc's by 1-2 ulps). With a = |x|:
 *   a < 0.55:  a + a^3 Q(a^2), Q of degree 4 fitted to tanh by least squares in relative error;
 *   else:      1 - 2 / (expm1(2a) + 2), expm1(t) = 2^k (1 + p(r)) - 1 with t = k ln2 + r
 *              (|r| <= ln2/2, ln2 in two parts so that k ln2 is exact), p(r) expm1's Taylor
 *              polynomial to r^8 (its remainder is below 1e-10);
 * a clamped to 9.5 first (tanh rounds to 1 from 9.01; NaN passes the clamp) and x's sign put
 * back (tanh(-0) = -0). Measured over every float in [0, 9.5): at most 1.44 ulps from tanh in
 * double, within 1 ulp for all but 0.008% (glibc's tanhf: at most 2.19 ulps). */
GT_HD static inline float act_tanh(float x) {
    uint32_t ux = act_float_bits(x), sign = ux & 0x80000000u;
    float a = act_bits_float(ux & 0x7fffffffu);
    a = act_select(a > 9.5f, 9.5f, a);
    float z = a * a;
    float q = -0.333333194f + z * (0.133326173f + z * (-0.0538551211f + z * (0.0210820585f + z * -0.00628766278f)));
    float near0 = a + a * z * q;
    float t = a + a;
    float kf = (t * 1.44269502f + 12582912.0f) - 12582912.0f; /* round to an integer: 12582912 = 1.5 * 2^23 */
    float r = (t - kf * 0.693145751953125f) - kf * 1.42860677e-06f;
    float p = r + r * r * (0.5f + r * (0.166666672f + r * (0.0416666679f + r * (0.00833333377f +
                                       r * (0.00138888892f + r * (1.98412701e-04f + r * 2.48015876e-05f))))));
    float s = act_bits_float((uint32_t)((int32_t)kf + 127) << 23); /* 2^k, k in [0, 28) */
    float e = s * p + (s - 1.0f);
    float y = act_select(a < 0.55f, near0, 1.0f - 2.0f / (e + 2.0f));
    return act_bits_float(act_float_bits(y) | sign);
}
GT_HD static inline float act_tanh_d(float y) { return 1.0f - y * y; }
GT_HD static inline float act_tanh_d2(float y) { return -2.0f * y * (1.0f - y * y); }

/* Sigmoid, stable for any x: never exp of a large positive number.
 * f' = y (1 - y), f'' = y (1 - y) (1 - 2 y). */
GT_HD static inline float act_sigmoid(float x) {
    float e = expf(-fabsf(x)); /* exp(-x) for x >= 0, exp(x) below: never above 1 */
    float r = 1.0f / (1.0f + e);
    return act_select(x >= 0.0f, r, e / (1.0f + e));
}
GT_HD static inline float act_sigmoid_d(float y) { return y * (1.0f - y); }
GT_HD static inline float act_sigmoid_d2(float y) { return y * (1.0f - y) * (1.0f - 2.0f * y); }

/* ---- by kind (the CUDA kernels; the CPU loops switch once per loop instead) ---------------- */

typedef enum { ACT_RELU = 0, ACT_LRELU, ACT_TANH, ACT_SIGMOID } act_kind_t;

GT_HD static inline float act_value(int kind, float slope, float x) {
    switch (kind) {
    case ACT_RELU: return act_relu(x);
    case ACT_LRELU: return act_lrelu(x, slope);
    case ACT_TANH: return act_tanh(x);
    default: return act_sigmoid(x);
    }
}

/* f' from x (relu, lrelu) or y (tanh, sigmoid) */
GT_HD static inline float act_deriv(int kind, float slope, float x, float y) {
    switch (kind) {
    case ACT_RELU: return act_relu_d(x);
    case ACT_LRELU: return act_lrelu_d(x, slope);
    case ACT_TANH: return act_tanh_d(y);
    default: return act_sigmoid_d(y);
    }
}

/* f'' from y (0 for relu, lrelu) */
GT_HD static inline float act_deriv2(int kind, float y) {
    return kind == ACT_TANH ? act_tanh_d2(y) : kind == ACT_SIGMOID ? act_sigmoid_d2(y) : 0.0f;
}

/* backward: f'(x) dy (relu as torch: 0 where x <= 0 even for an infinite dy) */
GT_HD static inline float act_backward_value(int kind, float slope, float x, float y, float dy) {
    return kind == ACT_RELU ? act_relu_bwd(x, dy) : act_deriv(kind, slope, x, y) * dy;
}

/* act_dropout (backend_ops.h): an activation read from x and dropout's factor (norm_math.h's
 * dropout_mask_factor) in one pass, with the rounding of the two passes one after the other:
 * forward f(x) * factor, backward f'(x) (dy * factor). */
GT_HD static inline float act_dropout_forward_value(int kind, float slope, float x, float factor) {
    return act_value(kind, slope, x) * factor;
}
GT_HD static inline float act_dropout_backward_value(int kind, float slope, float x, float dy, float factor) {
    return act_backward_value(kind, slope, x, 0.0f, dy * factor);
}

/* jvp backward: *dx = f' dy + f'' tx dty, *dtx = f' dty */
GT_HD static inline void act_jvp_backward_value(int kind, float slope, float x, float y, float tx, float dy, float dty,
                                                float *dx, float *dtx) {
    float d = act_deriv(kind, slope, x, y), d2 = act_deriv2(kind, y);
    *dx = d * dy + d2 * tx * dty;
    *dtx = d * dty;
}

#endif
