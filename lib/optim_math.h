/* optim_math.h: the per-element updates of the optimizers, host+device (hd.h): torch.optim
 * 1.13's single-tensor formulas in float32, each scalar rounded to float once from its double
 * setting (lib/model.c, optim_step, computes the scalars and runs the loops; CUDA kernels are to
 * call the same functions). Every function updates one parameter p and its state in place from
 * its gradient g; `wd` is applied only when has_wd (torch skips grad.add(param) at 0, and
 * 0 * an infinite weight would be NaN). */
#ifndef GT_OPTIM_MATH_H
#define GT_OPTIM_MATH_H

#include "hd.h"
#ifndef __CUDACC__
#include <math.h>
#endif

/* Adam: m = m b1 + (1 - b1) g;  v = v b2 + (1 - b2) g g;  p -= step_size * m / (sqrt(v) / bc2_sqrt + eps)
 * with step_size = lr / (1 - b1^t), bc2_sqrt = sqrt(1 - b2^t). */
GT_HD static inline void optim_adam(float *p, float *m, float *v, float g, int has_wd, float wd, float b1, float w1,
                                    float b2, float w2, float bc2_sqrt, float eps, float step_size) {
    if (has_wd) g = g + wd * *p;
    *m = *m * b1 + w1 * g;      /* exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1) */
    *v = *v * b2 + w2 * g * g;  /* exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2) */
    float denom = sqrtf(*v) / bc2_sqrt + eps;
    *p = *p - step_size * (*m / denom);
}

/* SGD with momentum mom (buf = g at the first step, then buf mom + g) and Nesterov. */
GT_HD static inline void optim_sgd(float *p, float *buf, float g, int has_wd, float wd, float mom, int first,
                                   int nesterov, float lr) {
    if (has_wd) g = g + wd * *p;
    if (mom != 0) {
        float b = first ? g : *buf * mom + g;
        *buf = b;
        g = nesterov ? g + mom * b : b;
    }
    *p = *p - lr * g;
}

/* RMSprop: sq = sq alpha + (1 - alpha) g g; centered: ga = ga alpha + (1 - alpha) g, avg =
 * sqrt(sq - ga ga) + eps, else sqrt(sq) + eps; with momentum buf = buf mom + g / avg, p -= lr buf;
 * else p -= lr g / avg. */
GT_HD static inline void optim_rmsprop(float *p, float *sq, float *buf, float *ga, float g, int has_wd, float wd,
                                       float alpha, float w, int centered, float mom, float eps, float lr) {
    if (has_wd) g = g + wd * *p;
    *sq = *sq * alpha + w * g * g; /* square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha) */
    float avg;
    if (centered) {
        *ga = *ga * alpha + w * g; /* grad_avg.mul_(alpha).add_(grad, alpha=1 - alpha) */
        avg = sqrtf(*sq - *ga * *ga) + eps;
    } else {
        avg = sqrtf(*sq) + eps;
    }
    if (mom != 0) {
        *buf = *buf * mom + g / avg;
        *p = *p - lr * *buf;
    } else {
        *p = *p - lr * (g / avg);
    }
}

#endif
