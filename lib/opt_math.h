/* opt_math.h: optimizer updates, EMA and weight clipping, one parameter at a time,
 * host+device (hd.h). torch.optim 1.13's single-tensor formulas in float32 (model.h has the
 * settings): the CPU loop (lib/cpu_train.c) and the CUDA kernel (kernels/optim.cu) call
 * opt_update, so both compute exactly these roundings (no FMA contraction on either side:
 * -std=c11 and nvcc --fmad=false; sqrtf and / are correctly rounded on both).
 *
 * The per-step constants (bias corrections, which depend on the step count, and 1 - beta) are
 * computed once on the host by opt_step_make, in double as torch does, then rounded to float. */
#ifndef GT_OPT_MATH_H
#define GT_OPT_MATH_H

#include <stdint.h>
#include "hd.h"
#ifndef __CUDACC__
#include <math.h>
#endif

typedef enum { OPT_ADAM = 0, OPT_SGD, OPT_RMSPROP } opt_kind_t;

/* backend.h's opt_step_t */
struct opt_step {
    int kind;                /* opt_kind_t */
    float lr, wd, eps;
    float b1, b2;            /* adam: betas; sgd: b1 = momentum; rmsprop: b1 = alpha */
    float w1, w2;            /* 1 - b1, 1 - b2, rounded from double as torch does */
    float mom;               /* rmsprop: momentum */
    float step_size, bc2_sqrt; /* adam: lr / (1 - b1^t), sqrt(1 - b2^t) */
    int first;               /* sgd: the first step (the momentum buffer starts as the gradient) */
    int nesterov, centered;
};

/* Constants of step number t (1 for the first) of an optimizer with these settings. */
static inline struct opt_step opt_step_make(int kind, double lr, double b1, double b2, double eps, double wd,
                                            double momentum, int nesterov, int centered, int64_t t) {
    struct opt_step c;
    c.kind = kind;
    c.lr = (float)lr;
    c.wd = (float)wd;
    c.eps = (float)eps;
    c.b1 = (float)b1;
    c.b2 = (float)b2;
    c.w1 = (float)(1.0 - b1);
    c.w2 = (float)(1.0 - b2);
    c.mom = (float)momentum;
    c.step_size = 0.0f;
    c.bc2_sqrt = 1.0f;
    if (kind == OPT_ADAM) {
        double bc1 = 1.0 - pow(b1, (double)t), bc2 = 1.0 - pow(b2, (double)t);
        c.step_size = (float)(lr / bc1);
        c.bc2_sqrt = (float)sqrt(bc2);
    }
    c.first = t == 1;
    c.nesterov = nesterov;
    c.centered = centered;
    return c;
}

/* One step for parameter *p with gradient g and state *s1, *s2, *s3:
 *   adam     s1 = exp_avg, s2 = exp_avg_sq
 *   sgd      s1 = momentum_buffer (when momentum != 0)
 *   rmsprop  s1 = square_avg, s2 = momentum_buffer (momentum != 0), s3 = grad_avg (centered)
 * State pointers the settings do not use are never touched (may point anywhere). */
GT_HD static inline void opt_update(const struct opt_step *c, float *p, float g, float *s1, float *s2, float *s3) {
    float gi = g;
    if (c->wd != 0) gi = gi + c->wd * *p;
    if (c->kind == OPT_ADAM) {
        *s1 = *s1 * c->b1 + c->w1 * gi;      /* exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1) */
        *s2 = *s2 * c->b2 + c->w2 * gi * gi; /* exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2) */
        float denom = sqrtf(*s2) / c->bc2_sqrt + c->eps;
        *p = *p - c->step_size * (*s1 / denom);
    } else if (c->kind == OPT_SGD) {
        float mom = c->b1;
        if (mom != 0) {
            float b = c->first ? gi : *s1 * mom + gi;
            *s1 = b;
            gi = c->nesterov ? gi + mom * b : b;
        }
        *p = *p - c->lr * gi;
    } else {
        float alpha = c->b1, w = c->w1;
        *s1 = *s1 * alpha + w * gi * gi; /* square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha) */
        float avg;
        if (c->centered) {
            *s3 = *s3 * alpha + w * gi; /* grad_avg.mul_(alpha).add_(grad, alpha=1 - alpha) */
            avg = sqrtf(*s1 - *s3 * *s3) + c->eps;
        } else {
            avg = sqrtf(*s1) + c->eps;
        }
        if (c->mom != 0) {
            *s2 = *s2 * c->mom + gi / avg;
            *p = *p - c->lr * *s2;
        } else {
            *p = *p - c->lr * (gi / avg);
        }
    }
}

/* EMA of a weight: decay * avg + (1 - decay) * p, with one_minus = 1 - decay rounded to
 * float once by the caller */
GT_HD static inline float opt_ema(float avg, float p, float decay, float one_minus) {
    return decay * avg + one_minus * p;
}

/* clamp to [-c, c]; NaN stays NaN (the finite check then catches it) */
GT_HD static inline float opt_clip(float p, float c) { return p > c ? c : p < -c ? -c : p; }

#endif
