/* cpu_train.c: the CPU backend's training-step, optimizer and sampling operations
 * (backend.h). The per-element math is in loss_math.h, opt_math.h and train_math.h (shared
 * with kernels/); this file is the loops. Sums run over the elements in order, in double.
 * Element-wise passes over parameters are split over the CPU threads above a size where
 * that pays; each element is computed by one thread, so results never depend on it. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "common.h"
#include "cpu_ops.h"
#include "loss_math.h"
#include "opt_math.h"
#include "train_math.h"

void cpu_loss(backend_t *be, int loss, double smooth, int which, float *dl, double *out, const float *logit, int B,
              int B_mean) {
    (void)be;
    double sum = 0, msum = 0;
    double inv = 1.0 / B_mean;
    for (int i = 0; i < B; i++) {
        double l, d, shown;
        loss_one(loss, smooth, which, logit[i], &l, &d, &shown);
        sum += l;
        msum += shown;
        dl[i] = (float)(d * inv);
    }
    out[0] = sum * inv;
    out[1] = msum * inv;
}

void cpu_gather(backend_t *be, float *dst, const void *data, int data_u8, const int64_t *perm, int64_t pos, int B,
                size_t sz) {
    (void)be;
    if (data_u8) {
        float lut[256];
        for (int v = 0; v < 256; v++) lut[v] = train_u8_to_unit((uint8_t)v);
        for (int i = 0; i < B; i++) {
            const uint8_t *s = (const uint8_t *)data + (size_t)perm[pos + i] * sz;
            float *d = dst + (size_t)i * sz;
            for (size_t j = 0; j < sz; j++) d[j] = lut[s[j]];
        }
    } else {
        for (int i = 0; i < B; i++)
            memcpy(dst + (size_t)i * sz, (const float *)data + (size_t)perm[pos + i] * sz, sizeof(float) * sz);
    }
}

void cpu_gp_mix(backend_t *be, float *xhat, const float *real, const float *fake, int B, size_t sz, uint64_t seed,
                uint32_t step, uint64_t index0) {
    (void)be;
    for (int i = 0; i < B; i++) {
        float e = philox_uniform(seed, PHILOX_STREAM_GP, step, index0 + (uint64_t)i);
        const float *r = real + (size_t)i * sz, *f = fake + (size_t)i * sz;
        float *x = xhat + (size_t)i * sz;
        for (size_t j = 0; j < sz; j++) x[j] = gp_mix_value(e, r[j], f[j]);
    }
}

void cpu_gp_scale(backend_t *be, float *g, double *out, int B, int B_mean, size_t sz, double lambda) {
    (void)be;
    double pen = 0;
    for (int i = 0; i < B; i++) {
        float *gi = g + (size_t)i * sz;
        double n2 = 0, term;
        for (size_t j = 0; j < sz; j++) n2 += (double)gi[j] * gi[j];
        double k = gp_factor(n2, lambda, B_mean, &term);
        pen += term;
        for (size_t j = 0; j < sz; j++) gi[j] = (float)(k * gi[j]);
    }
    out[0] = lambda * pen / B_mean;
}

void cpu_sumsq(backend_t *be, double *out, const float *x, size_t n) {
    (void)be;
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    out[0] = s;
}

void cpu_nonfinite(backend_t *be, double *out, const float *x, size_t n) {
    (void)be;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) {
            out[0] = 1;
            return;
        }
}

void cpu_train_stats(backend_t *be, double *st, int what, int64_t stepno) {
    (void)be;
    train_stats_apply(st, what, stepno);
}

/* ---- optimizers ------------------------------------------------------------------------- */

typedef struct {
    const opt_step_t *c;
    float *p, *s1, *s2, *s3, *avg;
    const float *g;
    float decay, one_minus;
} opt_job_t;

/* any pointer for state the kind does not use: opt_update never touches it */
static float opt_unused;

static void optim_range(void *arg, long b, long e) {
    const opt_job_t *j = arg;
    float *s1 = j->s1, *s2 = j->s2, *s3 = j->s3;
    for (long i = b; i < e; i++)
        opt_update(j->c, j->p + i, j->g[i], s1 ? s1 + i : &opt_unused, s2 ? s2 + i : &opt_unused,
                   s3 ? s3 + i : &opt_unused);
}

void cpu_optim(backend_t *be, const opt_step_t *c, float *p, const float *g, float *s1, float *s2, float *s3,
               size_t n) {
    opt_job_t j = {c, p, s1, s2, s3, NULL, g, 0, 0};
    if (n >= 65536) cpu_parallel_for(be, (long)n, optim_range, &j);
    else optim_range(&j, 0, (long)n);
}

static void ema_range(void *arg, long b, long e) {
    const opt_job_t *j = arg;
    for (long i = b; i < e; i++) j->avg[i] = opt_ema(j->avg[i], j->p[i], j->decay, j->one_minus);
}

void cpu_ema(backend_t *be, float *avg, const float *p, float decay, size_t n) {
    opt_job_t j = {NULL, (float *)p, NULL, NULL, NULL, avg, NULL, decay, 1.0f - decay};
    if (n >= 65536) cpu_parallel_for(be, (long)n, ema_range, &j);
    else ema_range(&j, 0, (long)n);
}

void cpu_clip(backend_t *be, float *p, float c, size_t n) {
    (void)be;
    for (size_t i = 0; i < n; i++) p[i] = opt_clip(p[i], c);
}

/* ---- sampling ----------------------------------------------------------------------------- */

void cpu_latents(backend_t *be, float *z, int rows, int zd, const float *zin, uint64_t seed, double trunc,
                 const int64_t *ia, const int64_t *ib, const double *t) {
    (void)be;
    for (int i = 0; i < rows; i++)
        for (int k = 0; k < zd; k++)
            z[(size_t)i * (size_t)zd + (size_t)k] = sample_latent(zin, seed, trunc, ia[i], ib[i], t[i], zd, k);
}
