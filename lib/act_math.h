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

/* ReLU: f = max(x, 0); f' = 1 for x > 0 else 0 (torch: 0 at x == 0); f'' = 0. */
GT_HD static inline float act_relu(float x) { return x > 0.0f ? x : 0.0f; }
GT_HD static inline float act_relu_d(float x) { return x > 0.0f ? 1.0f : 0.0f; }

/* LeakyReLU: f = x for x > 0 else slope * x (torch: slope at x == 0); f'' = 0. */
GT_HD static inline float act_lrelu(float x, float slope) { return x > 0.0f ? x : x * slope; }
GT_HD static inline float act_lrelu_d(float x, float slope) { return x > 0.0f ? 1.0f : slope; }

/* tanh: f' = 1 - y^2, f'' = -2 y (1 - y^2). */
GT_HD static inline float act_tanh(float x) { return tanhf(x); }
GT_HD static inline float act_tanh_d(float y) { return 1.0f - y * y; }
GT_HD static inline float act_tanh_d2(float y) { return -2.0f * y * (1.0f - y * y); }

/* Sigmoid, stable for any x: never exp of a large positive number.
 * f' = y (1 - y), f'' = y (1 - y) (1 - 2 y). */
GT_HD static inline float act_sigmoid(float x) {
    if (x >= 0.0f) {
        float e = expf(-x);
        return 1.0f / (1.0f + e);
    } else {
        float e = expf(x);
        return e / (1.0f + e);
    }
}
GT_HD static inline float act_sigmoid_d(float y) { return y * (1.0f - y); }
GT_HD static inline float act_sigmoid_d2(float y) { return y * (1.0f - y) * (1.0f - 2.0f * y); }

#endif
