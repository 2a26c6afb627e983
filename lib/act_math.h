/* act_math.h: element-wise activation math, host+device (hd.h): values, first and second
 * derivatives. The CPU loops in lib/layer_act.c and the CUDA kernels call these, so the CPU
 * tests check the GPU's arithmetic.
 *
 * Derivatives are written in terms of what backward has at hand: for tanh and sigmoid the
 * output y (cheaper and exactly what PyTorch uses), for relu/lrelu the input x.
 * Second derivatives serve the forward-over-reverse gradient penalty (layer.h jvp_*):
 *   y = f(x), ty = f'(x) tx;  dx = f'(x) dy + f''(x) tx dty,  dtx = f'(x) dty. */
#ifndef GT_ACT_MATH_H
#define GT_ACT_MATH_H

#include "hd.h"
#ifndef __CUDACC__
#include <math.h>
#endif

/* c ? a : b without a branch. On the CPU, GCC keeps a branch for a float select (with the
 * default -ftrapping-math it neither if-converts nor vectorizes it), and a branch on the sign
 * of activations mispredicts half the time: 4.8 ns per element instead of 1. The bit select
 * returns exactly a or b, so the function is the same on every device. */
#ifdef __CUDACC__
GT_HD static inline float act_select(int c, float a, float b) { return c ? a : b; }
#else
#include <stdint.h>
#include <string.h>
static inline float act_select(int c, float a, float b) {
    uint32_t ua, ub, m = (uint32_t)0 - (uint32_t)(c != 0), r;
    float f;
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    r = (ua & m) | (ub & ~m);
    memcpy(&f, &r, sizeof f);
    return f;
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

/* tanh: f' = 1 - y^2, f'' = -2 y (1 - y^2). */
GT_HD static inline float act_tanh(float x) { return tanhf(x); }
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

#endif
