/* loss_math.h: the GAN losses on D's logits, one logit at a time, host+device (hd.h).
 * The backend's loss operation (backend_ops.h) sums these over the batch in double; the CPU
 * loop (lib/cpu/train.c) and the CUDA kernel (kernels/train.cu) both call loss_one.
 *
 * For a logit v the three uses (which):
 *   LOSS_ON_REAL  D on real images     LOSS_ON_FAKE  D on generated ones     LOSS_G  G's loss
 *   bce, ns   real: BCE(v, 1 - smooth) = softplus(v) - v (1 - smooth); fake: softplus(v);
 *             G: -softplus(v) (bce, saturating) or softplus(-v) (ns)
 *   wgan, wgan-gp   real: -v, fake: v, G: -v
 *   hinge     real: max(0, 1 - v), fake: max(0, 1 + v), G: -v
 *   lsgan     real: (v - 1)^2 / 2, fake: v^2 / 2, G: (v - 1)^2 / 2
 * "shown" is what logs report as D's mean output: sigmoid(v) for bce/ns, v otherwise. */
#ifndef GT_LOSS_MATH_H
#define GT_LOSS_MATH_H

#include "lib/base/hd.h"
#include "lib/base/philox.h"
#ifndef __CUDACC__
#include <math.h>
#endif

typedef enum { LOSS_BCE = 0, LOSS_NS, LOSS_WGAN, LOSS_WGAN_GP, LOSS_HINGE, LOSS_LSGAN, LOSS_COUNT } gan_loss_t;

enum { LOSS_ON_REAL = 0, LOSS_ON_FAKE = 1, LOSS_G = 2 };

/* log(1 + e^x) without overflow */
GT_HD static inline double loss_softplus(double x) { return (x > 0 ? x : 0) + log1p(exp(-fabs(x))); }
/* 1 / (1 + e^-x) without overflow */
GT_HD static inline double loss_sigmoid(double x) { return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)); }

/* The loss *l of logit v, its derivative *d = dl/dv, and *shown (see above). */
GT_HD static inline void loss_one(int loss, double smooth, int which, double v, double *l, double *d,
                                  double *shown) {
    *l = 0;
    *d = 0;
    switch (loss) {
    case LOSS_BCE:
    case LOSS_NS: {
        double s = loss_sigmoid(v);
        *shown = s;
        if (which == LOSS_ON_REAL) { /* BCE(x, 1 - smooth) */
            double t = 1 - smooth;
            *l = loss_softplus(v) - v * t;
            *d = s - t;
        } else if (which == LOSS_ON_FAKE || loss == LOSS_BCE) { /* BCE(x, 0) = softplus(x) */
            *l = loss_softplus(v);
            *d = s;
            if (which == LOSS_G) { /* saturating G: minimise -BCE(fake, 0) */
                *l = -*l;
                *d = -*d;
            }
        } else { /* non-saturating G: BCE(x, 1) */
            *l = loss_softplus(-v);
            *d = s - 1;
        }
        break;
    }
    case LOSS_WGAN:
    case LOSS_WGAN_GP:
        *shown = v;
        *l = which == LOSS_ON_FAKE ? v : -v;
        *d = which == LOSS_ON_FAKE ? 1 : -1;
        break;
    case LOSS_HINGE:
        *shown = v;
        if (which == LOSS_ON_REAL) {
            *l = 1 - v > 0 ? 1 - v : 0;
            *d = 1 - v > 0 ? -1 : 0;
        } else if (which == LOSS_ON_FAKE) {
            *l = 1 + v > 0 ? 1 + v : 0;
            *d = 1 + v > 0 ? 1 : 0;
        } else {
            *l = -v;
            *d = -1;
        }
        break;
    case LOSS_LSGAN:
    default:
        *shown = v;
        if (which == LOSS_ON_FAKE) {
            *l = 0.5 * v * v;
            *d = v;
        } else {
            *l = 0.5 * (v - 1) * (v - 1);
            *d = v - 1;
        }
        break;
    }
}

/* D's bce/ns loss on logit v against target y (label smoothing and flipping, lib/gan/tricks.h):
 * *l = BCE(v, y) = softplus(v) - v y, *d = sigmoid(v) - y, *shown = sigmoid(v). With y = 1 - smooth
 * it is loss_one's LOSS_ON_REAL, with y = 0 its LOSS_ON_FAKE, bit for bit. */
GT_HD static inline void loss_bce_target(double v, double y, double *l, double *d, double *shown) {
    double s = loss_sigmoid(v);
    *shown = s;
    *l = loss_softplus(v) - v * y;
    *d = s - y;
}

/* The target of the sample at global index `index` in the pass keyed by Philox step `step`:
 * `other` (the opposite pass's target: the label flipped) when philox_uniform(seed,
 * PHILOX_STREAM_LABEL_FLIP, step, index) < flip, else `target`. */
GT_HD static inline double loss_flip_target(double target, double other, double flip, uint64_t seed, uint32_t step,
                                            uint64_t index) {
    return flip > 0 && (double)philox_uniform(seed, PHILOX_STREAM_LABEL_FLIP, step, index) < flip ? other : target;
}

#endif
