/* train_math.h: the training step's and sampling's small formulas, host+device (hd.h):
 * converting uint8 pixels, the gradient penalty's interpolation and per-sample scale, the R1/R2
 * penalties, the step's statistics and first-bad-step bookkeeping, and gan-sample's latents. The CPU loops
 * (lib/cpu/train.c) and the CUDA kernels (kernels/train.cu) call these.
 *
 * Statistics slots: the trainer keeps one device array of TS_COUNT doubles. The backend's
 * loss, gp_scale, r1_scale, sumsq and nonfinite operations write the TS_* inputs; train_stats_apply
 * (run on the device by the backend's train_stats operation, one thread) turns them into the
 * step's figures, accumulates them for the log, and records the first step that went bad.
 * The host downloads the array only when it logs, prints progress or checks for a bad step
 * (lib/gan/trainer.c), so a GPU step never waits for the host. */
#ifndef GT_TRAIN_MATH_H
#define GT_TRAIN_MATH_H

#include <stdint.h>
#include "lib/base/hd.h"
#include "lib/base/philox.h"
#ifndef __CUDACC__
#include <math.h>
#endif

/* A uint8 pixel as a float in [-1, 1], as idx2tensor converts it. */
GT_HD static inline float train_u8_to_unit(uint8_t v) { return ((float)v - 127.5f) / 127.5f; }

/* The gradient penalty's interpolate of a real and a fake pixel, weight e on the real one. */
GT_HD static inline float gp_mix_value(float e, float real, float fake) { return e * real + (1.0f - e) * fake; }

/* From a sample's squared gradient norm n2: its penalty term (|g| - 1)^2 into *pen and the
 * factor that turns g into the penalty's cotangent v = dP/dg, P = lambda mean_i (|g_i| - 1)^2. */
GT_HD static inline double gp_factor(double n2, double lambda, int B, double *pen) {
    double n = sqrt(n2);
    *pen = (n - 1) * (n - 1);
    return n > 0 ? 2.0 * lambda / B * (n - 1) / n : 0.0;
}

/* The R1/R2 penalty P = w/2 mean_i |g_i|^2 (g_i = grad_x D(x_i), the mean over B_mean samples):
 * its value from the sum of the squared norms, and the cotangent v_i = dP/dg_i = w / B_mean g_i. */
GT_HD static inline double r1_penalty(double n2_sum, double w, int B_mean) { return 0.5 * w * n2_sum / B_mean; }
GT_HD static inline float r1_cotangent(float g, double w, int B_mean) { return (float)(w / B_mean * g); }

/* ---- statistics slots ------------------------------------------------------------------ */
enum {
    /* written by the step's operations */
    TS_LOSS_REAL = 0, TS_MEAN_REAL, /* loss(out = &st[TS_LOSS_REAL]) for D on real images */
    TS_LOSS_FAKE, TS_MEAN_FAKE,     /* D on fakes */
    TS_LOSS_G, TS_MEAN_G,           /* G's loss */
    TS_GP,                          /* the gradient penalty (wgan-gp) */
    TS_R1, TS_R2,                   /* the R1 and R2 penalties of this D update (0 when none;
                                       train_stats_apply uses them and sets them back to 0) */
    TS_SUMSQ_D, TS_SUMSQ_G,         /* squared norms of the parameter gradients */
    TS_BAD_D, TS_BAD_G,             /* nonfinite() of the weights after their update */
    /* the step's figures: train_stats_t's order (trainer.h) */
    TS_LAST, /* loss_d, loss_g, d_real, d_fake, gp, gnorm_g, gnorm_d */
    TS_SUM = TS_LAST + 7,           /* their sums since the host last read them, and the count */
    TS_SUM_N = TS_SUM + 7,
    TS_BAD_STEP,                    /* the first bad step's number (0: none), what, the value */
    TS_BAD_WHAT, TS_BAD_VALUE,
    TS_COUNT
};
enum { TS_FIGURES = 7 };

/* What train_stats_apply does. */
enum {
    TS_AFTER_D = 0,  /* after a D update: D's figures, then checks of D's loss and weights */
    TS_AFTER_D_GP,   /* the same, D's loss including the penalty (R1 and R2 are added either way) */
    TS_AFTER_G       /* after the G update: G's figures and checks, then accumulate the step */
};
/* What went bad (TS_BAD_WHAT). */
enum { TS_BAD_NONE = 0, TS_BAD_D_LOSS, TS_BAD_D_WEIGHTS, TS_BAD_G_LOSS, TS_BAD_G_WEIGHTS };

GT_HD static inline void train_note_bad(double *st, int64_t stepno, int what, double value) {
    if (st[TS_BAD_STEP] != 0) return; /* only the first is kept */
    st[TS_BAD_STEP] = (double)stepno;
    st[TS_BAD_WHAT] = what;
    st[TS_BAD_VALUE] = value;
}

GT_HD static inline void train_stats_apply(double *st, int what, int64_t stepno) {
    double *last = st + TS_LAST;
    if (what == TS_AFTER_D || what == TS_AFTER_D_GP) {
        double loss_d = st[TS_LOSS_REAL] + st[TS_LOSS_FAKE];
        double pen = what == TS_AFTER_D_GP ? st[TS_GP] : 0.0, reg = st[TS_R1] + st[TS_R2];
        if (what == TS_AFTER_D_GP) loss_d += st[TS_GP];
        if (reg != 0) { /* R1, R2: only when on, so that a run without them logs what it did before */
            loss_d += reg;
            pen += reg;
        }
        st[TS_R1] = st[TS_R2] = 0;
        last[0] = loss_d;
        last[2] = st[TS_MEAN_REAL];
        last[3] = st[TS_MEAN_FAKE];
        last[4] = pen;
        last[6] = sqrt(st[TS_SUMSQ_D]);
        if (!isfinite(loss_d)) train_note_bad(st, stepno, TS_BAD_D_LOSS, loss_d);
        else if (st[TS_BAD_D] != 0) train_note_bad(st, stepno, TS_BAD_D_WEIGHTS, 0);
        st[TS_BAD_D] = 0;
        return;
    }
    last[1] = st[TS_LOSS_G];
    last[5] = sqrt(st[TS_SUMSQ_G]);
    if (!isfinite(last[1])) train_note_bad(st, stepno, TS_BAD_G_LOSS, last[1]);
    else if (st[TS_BAD_G] != 0) train_note_bad(st, stepno, TS_BAD_G_WEIGHTS, 0);
    st[TS_BAD_G] = 0;
    for (int k = 0; k < TS_FIGURES; k++) st[TS_SUM + k] += last[k];
    st[TS_SUM_N] += 1;
}

/* ---- gan-sample's latents -------------------------------------------------------------- */

/* Component k of Philox draw number i (latent size zd): N(0, 1) at (seed,
 * PHILOX_STREAM_SAMPLE, step 0, i zd + k); with trunc > 0, a value beyond +-trunc is redrawn
 * at steps 1, 2, ... (up to 2^24 tries, then clamped). */
GT_HD static inline float sample_draw(uint64_t seed, double trunc, int64_t i, int zd, int k) {
    uint64_t idx = (uint64_t)i * (uint64_t)zd + (uint64_t)k;
    float v = philox_normal(seed, PHILOX_STREAM_SAMPLE, 0, idx);
    for (uint32_t r = 1; trunc > 0 && fabs(v) > trunc && r < (1u << 24); r++)
        v = philox_normal(seed, PHILOX_STREAM_SAMPLE, r, idx);
    if (trunc > 0 && fabs(v) > trunc) v = v > 0 ? (float)trunc : (float)-trunc;
    return v;
}

/* Component k of base latent j: row j of zin (when given) or draw number j. */
GT_HD static inline float sample_base(const float *zin, uint64_t seed, double trunc, int64_t j, int zd, int k) {
    return zin ? zin[(size_t)j * (size_t)zd + (size_t)k] : sample_draw(seed, trunc, j, zd, k);
}

/* Component k of a latent between base latents ja and jb (jb < 0: ja alone) at t in [0, 1). */
GT_HD static inline float sample_latent(const float *zin, uint64_t seed, double trunc, int64_t ja, int64_t jb,
                                        double t, int zd, int k) {
    float a = sample_base(zin, seed, trunc, ja, zd, k);
    if (jb < 0) return a;
    float b = sample_base(zin, seed, trunc, jb, zd, k);
    return (float)((1 - t) * a + t * b);
}

#endif
