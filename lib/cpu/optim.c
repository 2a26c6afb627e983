/* optim.c: the CPU backend's optimizer step, EMA and weight clipping (lib/backend/backend_ops.h
 * optim, ema, clip). The per-element updates are opt_math.h's (shared with kernels/optim.cu);
 * this file is the loops. Passes over parameters are split over the CPU threads above a size
 * where that pays; each element is computed by one thread, so results never depend on it. */
#include <stddef.h>

#include "cpu_ops.h"
#include "red.h"
#include "lib/backend/opt_math.h"

/* ---- optimizers ------------------------------------------------------------------------- */

typedef struct opt_job {
    void (*range)(void *job, long i0, long i1); /* the update of elements [i0, i1) */
    const opt_step_t *c;
    float *p, *s1, *s2, *s3, *avg;
    float *g;
    long n;
    float decay, one_minus;
} opt_job_t;

/* Adam over [0, n): blocks of 16 elements with a fixed inner count, which GCC vectorizes at -O2
 * (element by element the same arithmetic as the scalar tail: opt_math.h's opt_adam). has_wd and
 * zero_g (g = 0 once read: the gradient reset rides on this pass) are constants where this is
 * inlined, so the loop carries no branch. */
static inline void adam_loop(size_t n, float *restrict p, float *restrict g, float *restrict m, float *restrict v,
                             int has_wd, int zero_g, float wd, float b1, float w1, float b2, float w2, float bc2_sqrt,
                             float eps, float step_size) {
    size_t n16 = n - n % 16;
    for (size_t i = 0; i < n16; i += 16)
        for (int k = 0; k < 16; k++) { /* through locals: GCC vectorizes loads and stores it can see */
            float pk = p[i + k], mk = m[i + k], vk = v[i + k];
            opt_adam(&pk, &mk, &vk, g[i + k], has_wd, wd, b1, w1, b2, w2, bc2_sqrt, eps, step_size);
            p[i + k] = pk, m[i + k] = mk, v[i + k] = vk;
            if (zero_g) g[i + k] = 0.0f;
        }
    for (size_t i = n16; i < n; i++) {
        opt_adam(&p[i], &m[i], &v[i], g[i], has_wd, wd, b1, w1, b2, w2, bc2_sqrt, eps, step_size);
        if (zero_g) g[i] = 0.0f;
    }
}

/* any pointer for state the kind does not use: the updates never touch it */
static float opt_unused;

/* one step over elements [i0, i1) */
CPU_VEC_CLONES static void optim_range(void *arg, long i0, long i1) {
    const opt_job_t *j = arg;
    const opt_step_t *c = j->c;
    float *p = j->p + i0;
    float *g = j->g + i0;
    size_t n = (size_t)(i1 - i0);
    int has_wd = c->wd != 0, zg = c->zero_g != 0;
    if (c->kind == OPT_ADAM) {
        float *m = j->s1 + i0, *v = j->s2 + i0;
#define ADAM(wd_on, zero_on)                                                                                          \
    adam_loop(n, p, g, m, v, wd_on, zero_on, c->wd, c->b1, c->w1, c->b2, c->w2, c->bc2_sqrt, c->eps, c->step_size)
        if (has_wd && zg) ADAM(1, 1);
        else if (has_wd) ADAM(1, 0);
        else if (zg) ADAM(0, 1);
        else ADAM(0, 0);
#undef ADAM
    } else if (c->kind == OPT_SGD) {
        for (size_t i = 0; i < n; i++) {
            opt_sgd(&p[i], j->s1 ? &j->s1[i0 + i] : &opt_unused, g[i], has_wd, c->wd, c->b1, c->first, c->nesterov,
                    c->lr);
            if (zg) g[i] = 0.0f;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            opt_rmsprop(&p[i], &j->s1[i0 + i], j->s2 ? &j->s2[i0 + i] : &opt_unused,
                        j->s3 ? &j->s3[i0 + i] : &opt_unused, g[i], has_wd, c->wd, c->b1, c->w1, c->centered, c->mom,
                        c->eps, c->lr);
            if (zg) g[i] = 0.0f;
        }
    }
}

/* Parameter vectors are split into parts of OPT_PART elements (a multiple of 16, so Adam's
 * vectorized blocks fall the same way) over the threads: elements are independent, so the split
 * changes nothing any element computes. */
enum { OPT_PART = 16384 };

static void opt_parts(void *arg, long k0, long k1) {
    const opt_job_t *j = arg;
    long e = k1 * OPT_PART < j->n ? k1 * OPT_PART : j->n;
    j->range((void *)j, k0 * OPT_PART, e);
}

/* j->range over all n elements, in parts over the threads when there are enough of them */
static void opt_run(backend_t *be, opt_job_t *j) {
    if (j->n >= 4 * OPT_PART) cpu_parallel_for(be, (j->n + OPT_PART - 1) / OPT_PART, opt_parts, j);
    else j->range(j, 0, j->n);
}

/* The step with its figures (c->fig: sumsq, bad): red.h's parts (RED_PART elements, each by one
 * thread), every part in pieces of OPT_PIECE elements that stay in the L1 cache: the piece's
 * gradients added into the part's eight sums of squares (before the step may zero them), the
 * step over the piece, its updated parameters' non-finite count. The part sums are red.h's, so
 * the figures have the bits of train.c's sumsq and nonfinite; each element's update is the plain
 * step's (OPT_PIECE is a multiple of 16: Adam's vectorized blocks fall the same way). */
enum { OPT_PIECE = 1024 };

CPU_VEC_CLONES static void opt_red_part(const void *arg, long k, double out[2]) {
    const opt_job_t *j = arg;
    long b = k * RED_PART, e = b + RED_PART < j->n ? b + RED_PART : j->n;
    double acc[8] = {0};
    uint32_t bad = 0;
    for (long i = b; i < e; i += OPT_PIECE) {
        long ie = i + OPT_PIECE < e ? i + OPT_PIECE : e;
        red_sumsq_add(acc, j->g + i, (size_t)(ie - i));
        optim_range((void *)j, i, ie);
        bad += red_nonfinite(j->p + i, (size_t)(ie - i));
    }
    out[0] = red_sumsq_total(acc);
    out[1] = (double)bad;
}

void cpu_optim(backend_t *be, const opt_step_t *c, float *p, float *g, float *s1, float *s2, float *s3,
               size_t n) {
    opt_job_t j = {optim_range, c, p, s1, s2, s3, NULL, g, (long)n, 0, 0};
    if (c->fig.parts) {
        red_run_parts(be, n, opt_red_part, &j, c->fig.parts);
        return;
    }
    if (!c->fig.sumsq && !c->fig.bad) {
        opt_run(be, &j);
        return;
    }
    double t[2];
    red_run(be, n, opt_red_part, &j, t);
    if (c->fig.sumsq) c->fig.sumsq[0] = t[0];
    if (c->fig.bad && t[1] != 0) c->fig.bad[0] = 1;
}

/* avg = d avg + e p over [i0, i1), in blocks of 16 that vectorize */
static void ema_range(void *arg, long i0, long i1) {
    const opt_job_t *j = arg;
    float *restrict avg = j->avg + i0;
    const float *restrict p = j->p + i0;
    size_t n = (size_t)(i1 - i0), n16 = n - n % 16;
    float d = j->decay, e = j->one_minus;
    for (size_t i = 0; i < n16; i += 16)
        for (int k = 0; k < 16; k++) avg[i + k] = opt_ema(avg[i + k], p[i + k], d, e);
    for (size_t i = n16; i < n; i++) avg[i] = opt_ema(avg[i], p[i], d, e);
}

void cpu_ema(backend_t *be, float *avg, const float *p, float decay, size_t n) {
    opt_job_t j = {ema_range, NULL, (float *)p, NULL, NULL, NULL, avg, NULL, (long)n, decay, 1.0f - decay};
    opt_run(be, &j);
}

void cpu_clip(backend_t *be, float *p, float c, size_t n) {
    (void)be;
    for (size_t i = 0; i < n; i++) p[i] = opt_clip(p[i], c);
}
