/* optim.cu: the CUDA backend's optimizer step, EMA and weight clipping
 * (lib/backend/backend_ops.h), one thread per parameter calling opt_math.h: the same float32
 * roundings as the CPU's loops (lib/cpu/optim.c); the step with its figures (opt_step_t.fig) as
 * a reduction (reduce.h). */
#include "cuda_check.h"
#include "cuda_ops.h"
#include "reduce.h"

#include "lib/backend/opt_math.h"

__global__ void k_optim(struct opt_step c, float *p, float *g, float *s1, float *s2, float *s3, size_t n) {
    size_t i = GT_TID();
    if (i >= n) return;
    float unused = 0.0f; /* state the kind does not use: never read */
    opt_update(&c, p + i, g[i], s1 ? s1 + i : &unused, s2 ? s2 + i : &unused, s3 ? s3 + i : &unused);
    if (c.zero_g) g[i] = 0.0f;
}

/* The step with its figures (c->fig: sumsq, bad): reduce.h's walk over the elements, each
 * element updated by the thread that adds it, its gradient's square (read before the step may zero it)
 * into acc[0] in the order train.cu's sumsq_terms has (the same walk for the same count: the same
 * bits), a non-finite updated parameter counted in acc[1]. */
struct optim_terms {
    struct opt_step c;
    float *p, *g, *s1, *s2, *s3;
    __device__ void operator()(long s, long i, double *acc) const {
        (void)s;
        float unused = 0.0f, gi = g[i];
        acc[0] += (double)gi * gi;
        opt_update(&c, p + i, gi, s1 ? s1 + i : &unused, s2 ? s2 + i : &unused, s3 ? s3 + i : &unused);
        if (c.zero_g) g[i] = 0.0f;
        acc[1] += !isfinite(p[i]);
    }
};
struct optim_store {
    double *sumsq, *bad;
    __device__ void operator()(long s, const double *sum) const {
        (void)s;
        if (sumsq) sumsq[0] = sum[0];
        if (bad && sum[1] != 0) bad[0] = 1;
    }
};

/* The parts' figures (c->fig.parts): segment k of the reduction is part k (BE_FIG_PART
 * elements, the last part shorter: its walk skips the elements past n, adding nothing) */
struct optim_part_terms {
    optim_terms t;
    long n;
    __device__ void operator()(long s, long e, double *acc) const {
        long i = s * (long)BE_FIG_PART + e;
        if (i < n) t(0, i, acc);
    }
};
struct optim_part_store {
    double *parts;
    __device__ void operator()(long s, const double *sum) const {
        parts[2 * s] = sum[0];
        parts[2 * s + 1] = sum[1];
    }
};

__global__ void k_sum_parts(double *sumsq, double *bad, const double *parts, long k) {
    if (GT_TID() != 0) return;
    double t0 = 0, t1 = 0;
    for (long i = 0; i < k; i++) t0 += parts[2 * i], t1 += parts[2 * i + 1];
    if (sumsq) sumsq[0] = t0;
    if (bad && t1 != 0) bad[0] = 1;
}

void cuda_sum_parts(backend_t *be, double *sumsq, double *bad, const double *parts, long k) {
    (void)be;
    gt_count_bytes(16.0 * k);
    gt_count_depth(k);
    GT_LAUNCH(k_sum_parts, 1, 1, sumsq, bad, parts, k);
}

void cuda_optim(backend_t *be, const opt_step_t *c, float *p, float *g, float *s1, float *s2, float *s3,
                size_t n) {
    (void)be;
    if (!n && !c->fig.sumsq) return;
    gt_count_bytes(4.0 * n * (3 + (c->zero_g != 0) + 2 * ((s1 != NULL) + (s2 != NULL) + (s3 != NULL))));
    if (c->fig.parts) {
        long parts = (long)((n + BE_FIG_PART - 1) / BE_FIG_PART);
        if (parts)
            gt_reduce<2>(parts, parts > 1 ? (long)BE_FIG_PART : (long)n,
                         optim_part_terms{optim_terms{*c, p, g, s1, s2, s3}, (long)n}, optim_part_store{c->fig.parts});
    } else if (c->fig.sumsq || c->fig.bad)
        gt_reduce<2>(1, (long)n, optim_terms{*c, p, g, s1, s2, s3}, optim_store{c->fig.sumsq, c->fig.bad});
    else GT_LAUNCH(k_optim, gt_blocks(n), GT_BLOCK, *c, p, g, s1, s2, s3, n);
}

__global__ void k_ema(float *avg, const float *p, float decay, float one_minus, size_t n) {
    size_t i = GT_TID();
    if (i < n) avg[i] = opt_ema(avg[i], p[i], decay, one_minus);
}

void cuda_ema(backend_t *be, float *avg, const float *p, float decay, size_t n) {
    (void)be;
    if (!n) return;
    gt_count_bytes(12.0 * n);
    GT_LAUNCH(k_ema, gt_blocks(n), GT_BLOCK, avg, p, decay, 1.0f - decay, n);
}

__global__ void k_clip(float *p, float c, size_t n) {
    size_t i = GT_TID();
    if (i < n) p[i] = opt_clip(p[i], c);
}

void cuda_clip(backend_t *be, float *p, float c, size_t n) {
    (void)be;
    if (!n) return;
    gt_count_bytes(8.0 * n);
    GT_LAUNCH(k_clip, gt_blocks(n), GT_BLOCK, p, c, n);
}
