/* opt_math.h: optimizer updates, EMA and weight clipping, one parameter at a time,
 * host+device (hd.h). torch.optim 1.13's single-tensor formulas in float32 (lib/gan/settings.h
 * has the settings): the CPU loops (lib/cpu/optim.c: opt_adam, opt_sgd, opt_rmsprop, in blocks that GCC
 * vectorizes) and the CUDA kernel (kernels/optim.cu: opt_update, which calls the same three) compute
 * exactly these roundings (no FMA contraction on either side:
 * -std=c11 and nvcc --fmad=false; sqrtf and / are correctly rounded on both).
 *
 * The per-step constants (bias corrections, which depend on the step count, and 1 - beta) are
 * computed once on the host by opt_step_make, in double as torch does, then rounded to float. */
#ifndef GT_OPT_MATH_H
#define GT_OPT_MATH_H

#include <stdint.h>
#include "lib/base/hd.h"
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
    int zero_g;              /* write 0 into each gradient once it is read (the next backward pass then
                                accumulates into zeros without a separate pass; opt_step_make: 0) */
    struct opt_figures {     /* backend memory or NULL (opt_step_make): the step also writes the sum of
                                squares of the gradients it reads into sumsq[0], and 1 into bad[0] when
                                an updated parameter is not finite, with the bits of the sumsq and
                                nonfinite ops (lib/backend/backend_ops.h) run beside it; a struct of its
                                own so that a kernel argument keeps at most 16 fields (kernels/cuda_emu.h).
                                parts, when not NULL, replaces them: part k of the vector (backend.h
                                BE_FIG_PART elements) writes its sum of squares into parts[2k] and its
                                count of non-finite updated parameters into parts[2k + 1] (the sharded
                                step, lib/gan/ddp.c, which adds them with the sum_parts op) */
        double *sumsq, *bad, *parts;
    } fig;
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
    c.zero_g = 0;
    c.fig.sumsq = c.fig.bad = c.fig.parts = 0;
    return c;
}

/* The updates of one parameter *p with gradient g, one per kind, in the argument form the CPU's
 * vectorized loops want (lib/cpu/optim.c: plain float scalars, the weight decay applied only when
 * has_wd: torch skips grad.add(param) at 0, and 0 * an infinite weight would be NaN).
 * Adam: m = m b1 + (1 - b1) g;  v = v b2 + (1 - b2) g g;  p -= step_size * m / (sqrt(v) / bc2_sqrt + eps)
 * with step_size = lr / (1 - b1^t), bc2_sqrt = sqrt(1 - b2^t). */
GT_HD static inline void opt_adam(float *p, float *m, float *v, float g, int has_wd, float wd, float b1, float w1,
                                  float b2, float w2, float bc2_sqrt, float eps, float step_size) {
    if (has_wd) g = g + wd * *p;
    *m = *m * b1 + w1 * g;     /* exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1) */
    *v = *v * b2 + w2 * g * g; /* exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2) */
    float denom = sqrtf(*v) / bc2_sqrt + eps;
    *p = *p - step_size * (*m / denom);
}

/* SGD with momentum mom (buf = g at the first step, then buf mom + g) and Nesterov; buf is
 * untouched when mom == 0. */
GT_HD static inline void opt_sgd(float *p, float *buf, float g, int has_wd, float wd, float mom, int first,
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
 * else p -= lr g / avg. buf and ga are untouched when not used. */
GT_HD static inline void opt_rmsprop(float *p, float *sq, float *buf, float *ga, float g, int has_wd, float wd,
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

/* One step for parameter *p with gradient g and state *s1, *s2, *s3 (the CUDA kernel's form):
 *   adam     s1 = exp_avg, s2 = exp_avg_sq
 *   sgd      s1 = momentum_buffer (when momentum != 0)
 *   rmsprop  s1 = square_avg, s2 = momentum_buffer (momentum != 0), s3 = grad_avg (centered)
 * State pointers the settings do not use are never touched (may point anywhere). */
GT_HD static inline void opt_update(const struct opt_step *c, float *p, float g, float *s1, float *s2, float *s3) {
    int has_wd = c->wd != 0;
    if (c->kind == OPT_ADAM)
        opt_adam(p, s1, s2, g, has_wd, c->wd, c->b1, c->w1, c->b2, c->w2, c->bc2_sqrt, c->eps, c->step_size);
    else if (c->kind == OPT_SGD)
        opt_sgd(p, s1, g, has_wd, c->wd, c->b1, c->first, c->nesterov, c->lr);
    else
        opt_rmsprop(p, s1, s2, s3, g, has_wd, c->wd, c->b1, c->w1, c->centered, c->mom, c->eps, c->lr);
}

/* EMA of a weight: decay * avg + (1 - decay) * p, with one_minus = 1 - decay rounded to
 * float once by the caller */
GT_HD static inline float opt_ema(float avg, float p, float decay, float one_minus) {
    return decay * avg + one_minus * p;
}

/* clamp to [-c, c]; NaN stays NaN (the finite check then catches it) */
GT_HD static inline float opt_clip(float p, float c) { return p > c ? c : p < -c ? -c : p; }

#endif
