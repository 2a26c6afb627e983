/* train.c: the CPU backend's training-step and sampling operations (lib/backend/backend_ops.h):
 * losses, batch gathering, the gradient penalty's and R1/R2's passes, sums of squares, finite checks, the
 * step's statistics and gan-sample's latents (the optimizers are optim.c's). The per-element
 * math is in loss_math.h and train_math.h (shared with kernels/train.cu); this file is the
 * loops. Sums run in double, in an order fixed by the sizes. Reductions over parameter vectors
 * are split over the CPU threads above a size where that pays, in parts fixed by the sizes, so
 * results never depend on the thread count. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "lib/base/common.h"
#include "cpu_ops.h"
#include "red.h"
#include "lib/backend/loss_math.h"
#include "lib/backend/train_math.h"

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

void cpu_loss_targets(backend_t *be, double target, double other, double flip, uint64_t seed, uint32_t step,
                      uint64_t index0, float *dl, double *out, const float *logit, int B, int B_mean) {
    (void)be;
    double sum = 0, msum = 0;
    double inv = 1.0 / B_mean;
    for (int i = 0; i < B; i++) {
        double l, d, shown;
        loss_bce_target(logit[i], loss_flip_target(target, other, flip, seed, step, index0 + (uint64_t)i), &l, &d,
                        &shown);
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

void cpu_r1_scale(backend_t *be, float *g, double *out, int B, int B_mean, size_t sz, double w) {
    (void)be;
    double n2_sum = 0;
    for (int i = 0; i < B; i++) {
        float *gi = g + (size_t)i * sz;
        double n2 = 0;
        for (size_t j = 0; j < sz; j++) n2 += (double)gi[j] * gi[j];
        n2_sum += n2;
        for (size_t j = 0; j < sz; j++) gi[j] = r1_cotangent(gi[j], w, B_mean);
    }
    out[0] = r1_penalty(n2_sum, w, B_mean);
}

/* ---- reductions over a parameter vector (gradient norms, finite checks): red.h ----------- */

typedef struct {
    red_part_fn fn;
    const void *job;
    long part0;         /* the first part of this batch */
    double (*out)[2];   /* one pair per part of the batch */
} red_batch_t;

static void red_batch(void *arg, long k0, long k1) {
    const red_batch_t *r = arg;
    for (long k = k0; k < k1; k++) r->fn(r->job, r->part0 + k, r->out[k]);
}

/* the parts' figures, RED_BATCH parts at a time, into out (2 per part) or added into total */
static void red_drive(backend_t *be, size_t n, red_part_fn fn, const void *job, double *out_all, double total[2]) {
    long parts = (long)((n + RED_PART - 1) / RED_PART);
    double buf[RED_BATCH][2];
    for (long p0 = 0; p0 < parts; p0 += RED_BATCH) {
        long np = parts - p0 < RED_BATCH ? parts - p0 : RED_BATCH;
        double(*out)[2] = out_all ? (double(*)[2])(out_all + 2 * p0) : buf;
        red_batch_t r = {fn, job, p0, out};
        if (np > 1) cpu_parallel_for(be, np, red_batch, &r);
        else red_batch(&r, 0, np);
        if (total)
            for (long k = 0; k < np; k++) total[0] += out[k][0], total[1] += out[k][1];
    }
}

void red_run(backend_t *be, size_t n, red_part_fn fn, const void *job, double total[2]) {
    total[0] = total[1] = 0;
    red_drive(be, n, fn, job, NULL, total);
}

void red_run_parts(backend_t *be, size_t n, red_part_fn fn, const void *job, double *out) {
    red_drive(be, n, fn, job, out, NULL);
}

void cpu_sum_parts(backend_t *be, double *sumsq, double *bad, const double *parts, long k) {
    (void)be;
    double t[2] = {0, 0};
    for (long i = 0; i < k; i++) t[0] += parts[2 * i], t[1] += parts[2 * i + 1];
    if (sumsq) sumsq[0] = t[0];
    if (bad && t[1] != 0) bad[0] = 1;
}

/* sumsq's and nonfinite's part: its sum of squares (out[0]) and its non-finite count (out[1]),
 * whichever the job asks for */
typedef struct {
    const float *p;
    size_t n;   /* elements of the whole vector */
    int finite; /* 1: count non-finite elements; 0: sum of squares */
} red_job_t;

CPU_VEC_CLONES static void red_part(const void *arg, long k, double out[2]) {
    const red_job_t *j = arg;
    size_t b = (size_t)k * RED_PART, e = b + RED_PART < j->n ? b + RED_PART : j->n;
    out[0] = out[1] = 0;
    if (j->finite) {
        out[1] = (double)red_nonfinite(j->p + b, e - b);
    } else {
        double acc[8] = {0};
        red_sumsq_add(acc, j->p + b, e - b);
        out[0] = red_sumsq_total(acc);
    }
}

void cpu_sumsq(backend_t *be, double *out, const float *x, size_t n) {
    red_job_t j = {x, n, 0};
    double t[2];
    red_run(be, n, red_part, &j, t);
    out[0] = t[0];
}

void cpu_nonfinite(backend_t *be, double *out, const float *x, size_t n) {
    red_job_t j = {x, n, 1};
    double t[2];
    red_run(be, n, red_part, &j, t);
    if (t[1] != 0) out[0] = 1;
}

void cpu_train_stats(backend_t *be, double *st, int what, int64_t stepno) {
    (void)be;
    train_stats_apply(st, what, stepno);
}

/* ---- sampling ----------------------------------------------------------------------------- */

void cpu_latents(backend_t *be, float *z, int rows, int zd, const float *zin, uint64_t seed, double trunc,
                 const int64_t *ia, const int64_t *ib, const double *t) {
    (void)be;
    for (int i = 0; i < rows; i++)
        for (int k = 0; k < zd; k++)
            z[(size_t)i * (size_t)zd + (size_t)k] = sample_latent(zin, seed, trunc, ia[i], ib[i], t[i], zd, k);
}
