/* norm_math.h: element-wise math of the normalisation, dropout and noise layers, host+device (hd.h).
 * The CPU loops (lib/cpu/norm.c, lib/cpu/layers.c) and the CUDA kernels (kernels/norm.cu,
 * kernels/layers.cu) call these.
 * Reductions (means, variances, sums of products) are not here: each backend accumulates
 * them in double in its own fixed order (ARCHITECTURE.md, "The backend contract"). */
#ifndef GT_NORM_MATH_H
#define GT_NORM_MATH_H

#include "lib/base/hd.h"
#include "lib/base/philox.h"
#include "lib/backend/act_math.h"
#ifndef __CUDACC__
#include <math.h>
#endif

/* 1 / sqrt(var + eps), from a double variance */
GT_HD static inline double norm_inv_std(double var, double eps) { return 1.0 / sqrt(var + eps); }

/* Data-parallel BatchNorm's batch statistics from one sum across the processes (lib/cpu/norm.c,
 * kernels/norm.cu): s1 = sum (x - r), s2 = sum (x - r)^2 over the global batch's n values of a
 * channel, r a shift every process holds alike (its running mean: 0 when none). Then mean =
 * r + s1 / n and var = s2 / n - (s1 / n)^2, which in double loses about 1e-16 (1 + (mean -
 * r)^2 / var) of var to cancellation: below float32's rounding unless the mean strays 1e4
 * standard deviations from the running mean. (One process takes the two-pass formulas.) */
GT_HD static inline void norm_shifted_moments(double r, double s1, double s2, double n, double *mean, double *var) {
    double d = s1 / n, v = s2 / n - d * d;
    *mean = r + d;
    *var = v > 0 ? v : 0;
}

/* x_hat = (x - mean) * inv_std */
GT_HD static inline float norm_hat(float x, float mean, float inv_std) { return (x - mean) * inv_std; }

/* y = x_hat * w + b */
GT_HD static inline float norm_affine(float xhat, float w, float b) { return xhat * w + b; }

/* BatchNorm's output at x with a fused activation after it (backend.h bn_args_t.act: 0 none,
 * else 1 + act_kind_t of relu or lrelu): f(x_hat w + b), rounded as the two passes round it. */
GT_HD static inline float bn_out(float x, float mean, float inv_std, float w, float b, int act, float slope) {
    float y = norm_affine(norm_hat(x, mean, inv_std), w, b);
    return act ? act_value(act - 1, slope, y) : y;
}

/* The gradient w.r.t. BatchNorm's output from dy, the one w.r.t. the fused activation's output:
 * f'(y) dy at BatchNorm's output y recomputed from x (act_backward_value, as act_backward
 * computes it), or dy itself without an activation. */
GT_HD static inline float bn_act_grad(float dy, float x, float mean, float inv_std, float w, float b, int act,
                                      float slope) {
    if (!act) return dy;
    return act_backward_value(act - 1, slope, norm_affine(norm_hat(x, mean, inv_std), w, b), 0.0f, dy);
}

/* The batch-statistics (or per-sample) backward of x_hat = (x - mean) / sqrt(var + eps) over n
 * values: with g = dL/dx_hat, sg = sum g and sgx = sum g x_hat over the n values,
 *   dx = inv_std * (g - sg / n - x_hat * sgx / n). */
GT_HD static inline float norm_dx(float g, float xhat, float inv_std, double sg_n, double sgx_n) {
    return (float)(inv_std * ((double)g - sg_n - (double)xhat * sgx_n));
}

/* BatchNorm's running statistics after a batch of n values with mean m and biased variance
 * var (torch: the unbiased variance var n / (n - 1) enters running_var; n = 1 gives var). */
GT_HD static inline void norm_running_update(float *running_mean, float *running_var, double m, double var, double n,
                                             double momentum) {
    double unb = n > 1 ? var * n / (n - 1) : var;
    *running_mean = (float)((1 - momentum) * *running_mean + momentum * m);
    *running_var = (float)((1 - momentum) * *running_var + momentum * unb);
}

/* LayerNorm's tangent of x_hat for one element: r (tx - mean(tx) - x_hat mean(x_hat tx)),
 * with mt = mean(tx) and m = mean(x_hat tx) over the sample (lib/nn/layer_ln.c). */
GT_HD static inline float ln_tangent_hat(float tx, float xhat, float r, double mt, double m) {
    return (float)(r * ((double)tx - mt - (double)xhat * m));
}

/* A sample's sums over its n values for ln_jvp_dx: sa = sum a, sax = sum a x_hat, sc = sum c,
 * scx = sum c x_hat, T = sum c th; with the quotients by n that ln_jvp_dx uses, divided once
 * per sample rather than per element (an FP64 division is a long sequence on a GPU). */
typedef struct {
    double n, sax, scx, sa_n, sc_n, scx_n, T_n;
} ln_jvp_sums_t;
GT_HD static inline ln_jvp_sums_t ln_jvp_sums(double n, double sa, double sax, double sc, double scx, double T) {
    ln_jvp_sums_t s = {n, sax, scx, sa / n, sc / n, scx / n, T / n};
    return s;
}

/* LayerNorm's jvp backward for one element (lib/nn/layer_ln.c has the derivation): a = w dy,
 * c = w dty, th = the tangent of x_hat, s the sample's sums (ln_jvp_sums). */
GT_HD static inline void ln_jvp_dx(float *dx, float *dtx, double a, double c, double xh, double th, float r, double m,
                                   const ln_jvp_sums_t *s) {
    double pc = c - s->sc_n - xh * s->scx / s->n, pa = a - s->sa_n - xh * s->sax / s->n;
    if (dtx) *dtx = (float)(r * pc);
    if (dx) *dx = (float)(r * pa - r * s->scx_n * th - (double)r * r * m * pc - r * s->T_n * xh);
}

/* Dropout: the uniform draw for element `index` is kept when >= p (inverted dropout). */
GT_HD static inline int dropout_keep_bits(uint32_t bits, float p) { return philox_uniform_bits(bits) >= p; }

/* 1 / (1 - p), the scale of kept elements, rounded once to float as PyTorch's float mask is */
GT_HD static inline float dropout_scale(float p) { return (float)(1.0 / (1.0 - (double)p)); }

/* the factor of an element from its mask byte (1 kept, 0 dropped): scale or 0, without a branch */
GT_HD static inline float dropout_mask_factor(unsigned char keep, float scale) { return scale * (float)keep; }

/* the factor of an element: scale when kept, 0 when dropped (without a branch on the CPU) */
GT_HD static inline float dropout_factor(uint32_t bits, float p, float scale) {
    return scale * (float)dropout_keep_bits(bits, p);
}


#endif
