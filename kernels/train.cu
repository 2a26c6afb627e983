/* train.cu: the CUDA backend's training-step and sampling operations
 * (lib/backend/backend_ops.h; the CPU's are lib/cpu/train.c): losses, batch gathering, the
 * gradient penalty's and R1/R2's passes, sums of squares, finite checks, the step's statistics and
 * gan-sample's latents. The math is loss_math.h's and train_math.h's; sums are reduce.h
 * reductions. */
#include "cuda_check.h"
#include "cuda_ops.h"
#include "reduce.h"

#include "lib/backend/loss_math.h"
#include "lib/backend/train_math.h"

/* ---- loss: one reduction whose partial pass also writes dl (each logit is visited once) -- */

struct loss_terms {
    float *dl;
    const float *logit;
    double smooth, inv;
    int loss, which;
    __device__ void operator()(long s, long i, double *acc) const {
        (void)s;
        double l, d, shown;
        loss_one(loss, smooth, which, logit[i], &l, &d, &shown);
        dl[i] = (float)(d * inv);
        acc[0] += l;
        acc[1] += shown;
    }
};
struct loss_means {
    double *out, inv;
    __device__ void operator()(long s, const double *sum) const {
        (void)s;
        out[0] = sum[0] * inv;
        out[1] = sum[1] * inv;
    }
};

void cuda_loss(backend_t *be, int loss, double smooth, int which, float *dl, double *out, const float *logit, int B,
               int B_mean) {
    (void)be;
    double inv = 1.0 / B_mean;
    gt_count_bytes(8.0 * B);
    gt_reduce<2>(1, B, loss_terms{dl, logit, smooth, inv, loss, which}, loss_means{out, inv});
}

struct target_terms {
    float *dl;
    const float *logit;
    double target, other, flip, inv;
    uint64_t seed, index0;
    uint32_t step;
    __device__ void operator()(long s, long i, double *acc) const {
        (void)s;
        double l, d, shown;
        loss_bce_target(logit[i], loss_flip_target(target, other, flip, seed, step, index0 + (uint64_t)i), &l, &d,
                        &shown);
        dl[i] = (float)(d * inv);
        acc[0] += l;
        acc[1] += shown;
    }
};

void cuda_loss_targets(backend_t *be, double target, double other, double flip, uint64_t seed, uint32_t step,
                       uint64_t index0, float *dl, double *out, const float *logit, int B, int B_mean) {
    (void)be;
    double inv = 1.0 / B_mean;
    gt_count_bytes(8.0 * B);
    gt_reduce<2>(1, B, target_terms{dl, logit, target, other, flip, inv, seed, index0, step}, loss_means{out, inv});
}

/* ---- gather ------------------------------------------------------------------------------ */

/* element t of the batch as (sample i, offset j) by the divisor sz (kernels/README.md: "Index
 * arithmetic"); the dataset's index perm[pos + i] sz stays 64-bit */
template <class I>
__global__ void k_gather_u8(float *dst, const uint8_t *data, const int64_t *perm, int64_t pos, size_t n, gt_idiv sz) {
    I t = GT_TID_AS(I), i;
    if (t >= n) return;
    I j = sz.divmod(t, &i);
    dst[t] = train_u8_to_unit(data[(size_t)perm[pos + (int64_t)i] * sz.d + j]);
}

template <class I>
__global__ void k_gather_f32(float *dst, const float *data, const int64_t *perm, int64_t pos, size_t n, gt_idiv sz) {
    I t = GT_TID_AS(I), i;
    if (t >= n) return;
    I j = sz.divmod(t, &i);
    dst[t] = data[(size_t)perm[pos + (int64_t)i] * sz.d + j];
}

void cuda_gather(backend_t *be, float *dst, const void *data, int data_u8, const int64_t *perm, int64_t pos, int B,
                 size_t sz) {
    (void)be;
    size_t n = (size_t)B * sz;
    if (!n) return;
    gt_count_bytes((data_u8 ? 5.0 : 8.0) * n + 8.0 * B);
    if (data_u8) GT_LAUNCH_IDX(n, k_gather_u8, gt_blocks(n), GT_BLOCK, dst, (const uint8_t *)data, perm, pos, n, gt_idiv_make(sz));
    else GT_LAUNCH_IDX(n, k_gather_f32, gt_blocks(n), GT_BLOCK, dst, (const float *)data, perm, pos, n, gt_idiv_make(sz));
}

/* ---- gradient penalty -------------------------------------------------------------------- */

template <class I>
__global__ void k_gp_mix(float *xhat, const float *real, const float *fake, size_t n, gt_idiv sz, uint64_t seed,
                         uint32_t step, uint64_t index0) {
    I t = GT_TID_AS(I);
    if (t >= n) return;
    float e = philox_uniform(seed, PHILOX_STREAM_GP, step, index0 + sz.div(t));
    xhat[t] = gp_mix_value(e, real[t], fake[t]);
}

void cuda_gp_mix(backend_t *be, float *xhat, const float *real, const float *fake, int B, size_t sz, uint64_t seed,
                 uint32_t step, uint64_t index0) {
    (void)be;
    size_t n = (size_t)B * sz;
    if (!n) return;
    gt_count_bytes(12.0 * n);
    GT_LAUNCH_IDX(n, k_gp_mix, gt_blocks(n), GT_BLOCK, xhat, real, fake, n, gt_idiv_make(sz), seed, step, index0);
}

struct row_sumsq {
    const float *g;
    size_t sz;
    __device__ void operator()(long i, long j, double *acc) const {
        double v = g[(size_t)i * sz + j];
        acc[0] += v * v;
    }
};
/* per sample: the cotangent factor and the penalty term */
struct gp_factors {
    double *factor, *term, lambda;
    int B;
    __device__ void operator()(long i, const double *n2) const { factor[i] = gp_factor(n2[0], lambda, B, term + i); }
};

template <class I> __global__ void k_scale_rows(float *g, const double *factor, size_t n, gt_idiv sz) {
    I t = GT_TID_AS(I);
    if (t < n) g[t] = (float)(factor[sz.div(t)] * g[t]);
}

struct sum_doubles {
    const double *v;
    __device__ void operator()(long s, long i, double *acc) const {
        (void)s;
        acc[0] += v[i];
    }
};
struct gp_penalty {
    double *out, lambda;
    int B;
    __device__ void operator()(long s, const double *pen) const {
        (void)s;
        out[0] = lambda * pen[0] / B;
    }
};

void cuda_gp_scale(backend_t *be, float *g, double *out, int B, int B_mean, size_t sz, double lambda) {
    (void)be;
    size_t n = (size_t)B * sz;
    double *factor = (double *)gt_cuda_scratch(GT_SCRATCH_OP, sizeof(double) * 2 * B), *term = factor + B;
    gt_count_bytes(12.0 * n);
    gt_reduce<1>(B, (long)sz, row_sumsq{g, sz}, gp_factors{factor, term, lambda, B_mean});
    if (n) GT_LAUNCH_IDX(n, k_scale_rows, gt_blocks(n), GT_BLOCK, g, (const double *)factor, n, gt_idiv_make(sz));
    gt_reduce<1>(1, B, sum_doubles{term}, gp_penalty{out, lambda, B_mean});
}

/* R1/R2: the squared norm of each row, the rows scaled into cotangents, the norms summed in order */
struct row_store {
    double *n2;
    __device__ void operator()(long i, const double *v) const { n2[i] = v[0]; }
};

__global__ void k_r1_scale(float *g, size_t n, double w, int B_mean) {
    size_t t = GT_TID();
    if (t < n) g[t] = r1_cotangent(g[t], w, B_mean);
}

struct r1_out {
    double *out, w;
    int B;
    __device__ void operator()(long s, const double *n2) const {
        (void)s;
        out[0] = r1_penalty(n2[0], w, B);
    }
};

void cuda_r1_scale(backend_t *be, float *g, double *out, int B, int B_mean, size_t sz, double w) {
    (void)be;
    size_t n = (size_t)B * sz;
    double *n2 = (double *)gt_cuda_scratch(GT_SCRATCH_OP, sizeof(double) * B);
    gt_count_bytes(12.0 * n);
    gt_reduce<1>(B, (long)sz, row_sumsq{g, sz}, row_store{n2});
    if (n) GT_LAUNCH(k_r1_scale, gt_blocks(n), GT_BLOCK, g, n, w, B_mean);
    gt_reduce<1>(1, B, sum_doubles{n2}, r1_out{out, w, B_mean});
}

/* ---- sums of squares, finite checks, statistics ------------------------------------------ */

struct sumsq_terms {
    const float *x;
    __device__ void operator()(long s, long i, double *acc) const {
        (void)s;
        acc[0] += (double)x[i] * x[i];
    }
};
struct store_sum {
    double *out;
    __device__ void operator()(long s, const double *sum) const {
        (void)s;
        out[0] = sum[0];
    }
};

void cuda_sumsq(backend_t *be, double *out, const float *x, size_t n) {
    (void)be;
    gt_count_bytes(4.0 * n);
    gt_reduce<1>(1, (long)n, sumsq_terms{x}, store_sum{out});
}

/* every thread that sees a NaN or an infinity stores the same 1: the order does not matter */
__global__ void k_nonfinite(double *out, const float *x, size_t n) {
    size_t i = GT_TID();
    if (i < n && !isfinite(x[i])) *out = 1;
}

void cuda_nonfinite(backend_t *be, double *out, const float *x, size_t n) {
    (void)be;
    if (!n) return;
    gt_count_bytes(4.0 * n);
    GT_LAUNCH(k_nonfinite, gt_blocks(n), GT_BLOCK, out, x, n);
}

__global__ void k_train_stats(double *st, int what, int64_t stepno) {
    if (GT_TID() == 0) train_stats_apply(st, what, stepno);
}

void cuda_train_stats(backend_t *be, double *st, int what, int64_t stepno) {
    (void)be;
    GT_LAUNCH(k_train_stats, 1, 1, st, what, stepno);
}

/* ---- sampling ---------------------------------------------------------------------------- */

template <class I>
__global__ void k_latents(float *z, size_t n, gt_idiv zd, const float *zin, uint64_t seed, double trunc, const int64_t *ia,
                          const int64_t *ib, const double *t) {
    I j = GT_TID_AS(I), i;
    if (j >= n) return;
    int k = (int)zd.divmod(j, &i);
    z[j] = sample_latent(zin, seed, trunc, ia[i], ib[i], t[i], (int)zd.d, k);
}

void cuda_latents(backend_t *be, float *z, int rows, int zd, const float *zin, uint64_t seed, double trunc,
                  const int64_t *ia, const int64_t *ib, const double *t) {
    (void)be;
    size_t n = (size_t)rows * zd;
    if (!n) return;
    gt_count_bytes(4.0 * n * (zin ? 3 : 1));
    GT_LAUNCH_IDX(n, k_latents, gt_blocks(n), GT_BLOCK, z, n, gt_idiv_make(zd), zin, seed, trunc, ia, ib, t);
}
