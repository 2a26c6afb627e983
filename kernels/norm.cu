/* norm.cu: the CUDA backend's BatchNorm and LayerNorm operations (lib/backend/backend_ops.h;
 * the layers' formulas are in lib/nn/layer_bn.c and lib/nn/layer_ln.c). Statistics are reduce.h
 * reductions in double, with the per-element terms and the per-element outputs from
 * norm_math.h, in the same formulas as the CPU's loops (lib/cpu/norm.c); only the order of the
 * additions differs. Per-segment intermediate results (means, sums) live in the GT_SCRATCH_OP
 * slot. */
#include "cuda_check.h"
#include "cuda_ops.h"
#include "reduce.h"

#include "lib/backend/norm_math.h"

/* ---- BatchNorm: segments are channels, element (i, k) of channel c is x[(i C + c) S + k] */

__device__ static inline size_t bn_index(long c, long i, long k, long C, long S) {
    return ((size_t)i * C + c) * S + k;
}

struct bn_sum_x {
    const float *x;
    long C, S;
    __device__ void operator()(long c, long i, long k, double *acc) const { acc[0] += x[bn_index(c, i, k, C, S)]; }
};
struct bn_mean {
    double *mean, n;
    __device__ void operator()(long c, const double *s) const { mean[c] = s[0] / n; }
};
struct bn_sum_sq {
    const float *x;
    const double *mean;
    long C, S;
    __device__ void operator()(long c, long i, long k, double *acc) const {
        double d = x[bn_index(c, i, k, C, S)] - mean[c];
        acc[0] += d * d;
    }
};
/* the batch statistics: saved mean and inv_std, running statistics */
struct bn_stats {
    const double *mean_d;
    float *mean, *inv_std, *running;
    double n, eps, momentum;
    long C;
    __device__ void operator()(long c, const double *q) const {
        double m = mean_d[c], var = q[0] / n;
        mean[c] = (float)m;
        inv_std[c] = (float)norm_inv_std(var, eps);
        norm_running_update(running + c, running + C + c, m, var, n, momentum);
    }
};

__global__ void k_bn_eval_stats(float *mean, float *inv_std, const float *running, long C, double eps) {
    size_t c = GT_TID();
    if (c >= (size_t)C) return;
    mean[c] = running[c];
    inv_std[c] = (float)norm_inv_std(running[C + c], eps);
}

/* y: BatchNorm's output, or the fused activation's (bn_args_t.act; norm_math.h bn_out) */
template <class I>
__global__ void k_bn_apply(float *y, const float *x, const float *mean, const float *inv_std, const float *w,
                           const float *b, int act, float slope, size_t n, gt_idiv C, gt_idiv S) {
    I i = GT_TID_AS(I);
    if (i >= n) return;
    I c = C.mod(S.div(i));
    y[i] = bn_out(x[i], mean[c], inv_std[c], w ? w[c] : 1.0f, b ? b[c] : 0.0f, act, slope);
}

/* ---- data-parallel BatchNorm (backend.h bn_sync_t): the same sums, kept per channel in the
 * run's scratch (sums[j C + c], as the CPU keeps them), summed across the processes with the
 * backend's sum_procs, then finished per channel by the same functors over the global count */

template <int K> struct bn_keep { /* the slice's sums, for sum_procs */
    double *sums;
    long C;
    __device__ void operator()(long c, const double *s) const {
        for (int j = 0; j < K; j++) sums[j * C + c] = s[j];
    }
};
/* sum dy, sum dy x_hat of the slice; the slice's share of dw, db (the trainer sums gradients) */
struct bn_keep_grad {
    double *sums;
    float *dw, *db;
    long C;
    __device__ void operator()(long c, const double *s) const {
        sums[c] = s[0];
        sums[C + c] = s[1];
        if (dw) {
            dw[c] += (float)s[1];
            db[c] += (float)s[0];
        }
    }
};
/* forward: the moments about the running mean r (norm_math.h norm_shifted_moments), one sum */
struct bn_sum_shifted {
    const float *x, *running;
    long C, S;
    __device__ void operator()(long c, long i, long k, double *acc) const {
        double d = x[bn_index(c, i, k, C, S)] - (running ? (double)running[c] : 0.0);
        acc[0] += d;
        acc[1] += d * d;
    }
};
struct bn_stats_shifted {
    float *mean, *inv_std, *running;
    double n, eps, momentum;
    long C;
    __device__ void operator()(long c, const double *s) const {
        double m, var;
        norm_shifted_moments(running ? running[c] : 0.0, s[0], s[1], n, &m, &var);
        mean[c] = (float)m;
        inv_std[c] = (float)norm_inv_std(var, eps);
        if (running) norm_running_update(running + c, running + C + c, m, var, n, momentum);
    }
};

/* g(c, {sums[c], sums[C + c], ...}) per channel: a reduction's finish, after sum_procs */
template <int K, class G> __global__ void k_bn_finish(const double *sums, long C, G g) {
    size_t c = GT_TID();
    if (c >= (size_t)C) return;
    double s[K];
    for (int j = 0; j < K; j++) s[j] = sums[j * C + c];
    g((long)c, s);
}

static void bn_forward_synced(backend_t *be, const bn_args_t *a) {
    long C = a->C, S = a->S, count = (long)a->B * S;
    double n = (double)a->sync->batch * (double)S;
    double *s = a->sync->scratch;
    void (*stats)(const double *, long, bn_stats_shifted) = k_bn_finish<2, bn_stats_shifted>;
    gt_reduce_2d<2>(C, a->B, S, bn_sum_shifted{a->x, a->running, C, S}, bn_keep<2>{s, C});
    be->sum_procs(be, s, 2 * (size_t)C, 1);
    GT_LAUNCH(stats, gt_blocks(C), GT_BLOCK, (const double *)s, C,
              bn_stats_shifted{a->mean, a->inv_std, a->running, n, a->eps, a->momentum, C});
    gt_count_bytes(4.0 * (double)count * C);
}

void cuda_bn_forward(backend_t *be, const bn_args_t *a) {
    long C = a->C, S = a->S, count = (long)a->B * S;
    size_t n = (size_t)count * C;
    if (a->training && a->sync) {
        bn_forward_synced(be, a);
    } else if (a->training) {
        double *mean_d = (double *)gt_cuda_scratch(GT_SCRATCH_OP, sizeof(double) * C);
        gt_reduce_2d<1>(C, a->B, S, bn_sum_x{a->x, C, S}, bn_mean{mean_d, (double)count});
        gt_reduce_2d<1>(C, a->B, S, bn_sum_sq{a->x, mean_d, C, S},
                     bn_stats{mean_d, a->mean, a->inv_std, a->running, (double)count, a->eps, a->momentum, C});
        gt_count_bytes(8.0 * n);
    } else {
        GT_LAUNCH(k_bn_eval_stats, gt_blocks(C), GT_BLOCK, a->mean, a->inv_std, (const float *)a->running, C, a->eps);
    }
    gt_count_bytes(8.0 * n);
    GT_LAUNCH_IDX(n, k_bn_apply, gt_blocks(n), GT_BLOCK, a->y, a->x, (const float *)a->mean, (const float *)a->inv_std,
                  a->w, a->b, a->act, a->slope, n, gt_idiv_make(C), gt_idiv_make(S));
}

/* sum g, sum g x_hat, g the gradient w.r.t. BatchNorm's output (dy, or through the fused
 * activation: norm_math.h bn_act_grad) */
struct bn_sum_grad {
    const float *x, *dy, *mean, *inv_std, *w, *b;
    int act;
    float slope;
    long C, S;
    __device__ void operator()(long c, long i, long k, double *acc) const {
        size_t j = bn_index(c, i, k, C, S);
        double g = bn_act_grad(dy[j], x[j], mean[c], inv_std[c], w ? w[c] : 1.0f, b ? b[c] : 0.0f, act, slope);
        acc[0] += g;
        acc[1] += g * norm_hat(x[j], mean[c], inv_std[c]);
    }
};
/* dw, db; the dx terms w sg / n and w sgx / n (0 in eval mode) */
struct bn_grad_finish {
    float *dw, *db;
    const float *w;
    double *terms, n;
    int training;
    __device__ void operator()(long c, const double *s) const {
        if (dw) {
            dw[c] += (float)s[1];
            db[c] += (float)s[0];
        }
        float wc = w ? w[c] : 1.0f;
        terms[2 * c] = training ? wc * s[0] / n : 0;
        terms[2 * c + 1] = training ? wc * s[1] / n : 0;
    }
};

template <class I>
__global__ void k_bn_dx(float *dx, const float *dy, const float *x, const float *mean, const float *inv_std,
                        const float *w, const float *b, int act, float slope, const double *terms, size_t n,
                        gt_idiv C, gt_idiv S) {
    I i = GT_TID_AS(I);
    if (i >= n) return;
    I c = C.mod(S.div(i));
    float wc = w ? w[c] : 1.0f, g = bn_act_grad(dy[i], x[i], mean[c], inv_std[c], wc, b ? b[c] : 0.0f, act, slope);
    dx[i] = norm_dx(g * wc, norm_hat(x[i], mean[c], inv_std[c]), inv_std[c], terms[2 * c], terms[2 * c + 1]);
}

void cuda_bn_backward(backend_t *be, const bn_args_t *a) {
    if (!a->dx && !a->dw) return;
    long C = a->C, S = a->S, count = (long)a->B * S;
    size_t n = (size_t)count * C;
    double *terms = (double *)gt_cuda_scratch(GT_SCRATCH_OP, sizeof(double) * 2 * C);
    gt_count_bytes(8.0 * n);
    if (a->training && a->sync) { /* the slice's sums; dx's terms from the global ones */
        double *sums = a->sync->scratch;
        gt_reduce_2d<2>(C, a->B, S, bn_sum_grad{a->x, a->dy, a->mean, a->inv_std, a->w, a->b, a->act, a->slope, C, S},
                     bn_keep_grad{sums, a->dw, a->db, C});
        if (!a->dx) return;
        be->sum_procs(be, sums, 2 * (size_t)C, 1);
        void (*finish)(const double *, long, bn_grad_finish) = k_bn_finish<2, bn_grad_finish>;
        GT_LAUNCH(finish, gt_blocks(C), GT_BLOCK, (const double *)sums, C,
                  bn_grad_finish{NULL, NULL, a->w, terms, (double)a->sync->batch * (double)S, 1});
    } else {
        gt_reduce_2d<2>(C, a->B, S, bn_sum_grad{a->x, a->dy, a->mean, a->inv_std, a->w, a->b, a->act, a->slope, C, S},
                     bn_grad_finish{a->dw, a->db, a->w, terms, (double)count, a->training});
    }
    if (!a->dx) return;
    gt_count_bytes(12.0 * n);
    GT_LAUNCH_IDX(n, k_bn_dx, gt_blocks(n), GT_BLOCK, a->dx, a->dy, a->x, (const float *)a->mean,
                  (const float *)a->inv_std, a->w, a->b, a->act, a->slope, (const double *)terms, n, gt_idiv_make(C),
                  gt_idiv_make(S));
}

/* ---- LayerNorm and instance normalization: segments are rows (ln_args_t; element k of row i
 * is at i N + k, N here the row's length), or, for the parameter gradients, elements k summed
 * over the samples i (LayerNorm) or channels summed over the samples' rows (instance
 * normalization) ---------------------------------------------------------------------------- */

/* the affine parameters' index for element k of row i: k (LayerNorm, C = 0) or the row's channel */
#define LN_AIX(C, i, k) ((C) > 0 ? (i) % (C) : (k))
#define LN_W(w, C, i, k) ((w) ? (w)[LN_AIX(C, i, k)] : 1.0f)
#define LN_GET(p, k) ((p) ? (p)[k] : 0.0f)
/* the same in the element-wise kernels, whose C is a divisor (gt_idiv; d 0 for LayerNorm) */
#define LN_AIX_D(C, i, k) ((C).d > 0 ? (C).mod(i) : (k))
#define LN_W_D(w, C, i, k) ((w) ? (w)[LN_AIX_D(C, i, k)] : 1.0f)

struct ln_sum_x {
    const float *x;
    long N;
    __device__ void operator()(long i, long k, double *acc) const { acc[0] += x[(size_t)i * N + k]; }
};
struct ln_mean {
    double *mean;
    double n;
    __device__ void operator()(long i, const double *s) const { mean[i] = s[0] / n; }
};
struct ln_sum_sq {
    const float *x;
    const double *mean;
    long N;
    __device__ void operator()(long i, long k, double *acc) const {
        float v = x[(size_t)i * N + k];
        acc[0] += (v - mean[i]) * (v - mean[i]);
    }
};
struct ln_stats {
    const double *mean;
    float *saved;
    double n, eps;
    __device__ void operator()(long i, const double *q) const {
        saved[2 * i] = (float)mean[i];
        saved[2 * i + 1] = (float)norm_inv_std(q[0] / n, eps);
    }
};

template <class I>
__global__ void k_ln_apply(float *y, const float *x, const float *saved, const float *w, const float *b, size_t n,
                           gt_idiv N, gt_idiv C) {
    I j = GT_TID_AS(I);
    if (j >= n) return;
    I i, k = N.divmod(j, &i);
    y[j] = norm_affine(norm_hat(x[j], saved[2 * i], saved[2 * i + 1]), LN_W_D(w, C, i, k),
                       b ? b[LN_AIX_D(C, i, k)] : 0.0f);
}

/* rows of the normalization and their length */
static long ln_rows(const ln_args_t *a) { return a->C > 0 ? (long)a->B * a->C : a->B; }
static long ln_len(const ln_args_t *a) { return a->C > 0 ? a->N / a->C : a->N; }

/* statistics of each row into saved, and y */
static void ln_stats_and_y(const ln_args_t *a) {
    long B = ln_rows(a), N = ln_len(a);
    size_t n = (size_t)B * N;
    double *mean = (double *)gt_cuda_scratch(GT_SCRATCH_OP, sizeof(double) * B);
    gt_reduce<1>(B, N, ln_sum_x{a->x, N}, ln_mean{mean, (double)N});
    gt_reduce<1>(B, N, ln_sum_sq{a->x, mean, N}, ln_stats{mean, a->saved, (double)N, a->eps});
    gt_count_bytes(16.0 * n);
    GT_LAUNCH_IDX(n, k_ln_apply, gt_blocks(n), GT_BLOCK, a->y, a->x, (const float *)a->saved, a->w, a->b, n,
                  gt_idiv_make(N), gt_idiv_make(a->C > 0 ? a->C : 0));
}

void cuda_ln_forward(backend_t *be, const ln_args_t *a) {
    (void)be;
    ln_stats_and_y(a);
}

/* the tangent statistics of each sample: mean(tx), mean(x_hat tx) */
struct ln_sum_tangent {
    const float *x, *tx, *saved;
    long N;
    __device__ void operator()(long i, long k, double *acc) const {
        size_t j = (size_t)i * N + k;
        acc[0] += tx[j];
        acc[1] += (double)norm_hat(x[j], saved[2 * i], saved[2 * i + 1]) * tx[j];
    }
};
/* mt, m in double into mt_m; as floats into ws when ws is given (the jvp backward pass) */
struct ln_tangent_means {
    double *mt_m;
    float *ws;
    double n;
    __device__ void operator()(long i, const double *s) const {
        double mt = s[0] / n, m = s[1] / n;
        mt_m[2 * i] = mt;
        mt_m[2 * i + 1] = m;
        if (ws) {
            ws[2 * i] = (float)mt;
            ws[2 * i + 1] = (float)m;
        }
    }
};

template <class I>
__global__ void k_ln_ty(float *ty, const float *x, const float *tx, const float *saved, const float *w,
                        const double *mt_m, size_t n, gt_idiv N, gt_idiv C) {
    I j = GT_TID_AS(I);
    if (j >= n) return;
    I i, k = N.divmod(j, &i);
    float mean = saved[2 * i], r = saved[2 * i + 1];
    ty[j] = LN_W_D(w, C, i, k) * ln_tangent_hat(tx[j], norm_hat(x[j], mean, r), r, mt_m[2 * i], mt_m[2 * i + 1]);
}

void cuda_ln_jvp_forward(backend_t *be, const ln_args_t *a) {
    (void)be;
    long B = ln_rows(a), N = ln_len(a);
    size_t n = (size_t)B * N;
    ln_stats_and_y(a);
    double *mt_m = (double *)gt_cuda_scratch(GT_SCRATCH_OP, sizeof(double) * 2 * B);
    gt_reduce<2>(B, N, ln_sum_tangent{a->x, a->tx, a->saved, N}, ln_tangent_means{mt_m, NULL, (double)N});
    gt_count_bytes(24.0 * n);
    GT_LAUNCH_IDX(n, k_ln_ty, gt_blocks(n), GT_BLOCK, a->ty, a->x, a->tx, (const float *)a->saved, a->w,
                  (const double *)mt_m, n, gt_idiv_make(N), gt_idiv_make(a->C > 0 ? a->C : 0));
}

/* parameter gradients of element k over the samples: sum dy x_hat (+ dty t_hat), sum dy */
struct ln_sum_params {
    const float *x, *tx, *dy, *dty, *saved, *ws;
    long N;
    int jvp;
    __device__ void operator()(long k, long i, double *acc) const {
        size_t j = (size_t)i * N + k;
        float mean = saved[2 * i], r = saved[2 * i + 1];
        double xh = norm_hat(x[j], mean, r), g = LN_GET(dy, j);
        acc[0] += g * xh;
        acc[1] += g;
        if (jvp) {
            double th = r * ((double)tx[j] - ws[2 * i] - xh * ws[2 * i + 1]);
            acc[0] += (double)dty[j] * th;
        }
    }
};
struct ln_add_params {
    float *dw, *db;
    __device__ void operator()(long k, const double *s) const {
        dw[k] += (float)s[0];
        db[k] += (float)s[1];
    }
};

/* instance normalization's: channel c over the samples i and their row's elements k */
struct in_sum_params {
    const float *x, *tx, *dy, *dty, *saved, *ws;
    long L;
    int C, jvp;
    __device__ void operator()(long c, long i, long k, double *acc) const {
        long row = i * C + c;
        size_t j = (size_t)row * L + k;
        float mean = saved[2 * row], r = saved[2 * row + 1];
        double xh = norm_hat(x[j], mean, r), g = LN_GET(dy, j);
        acc[0] += g * xh;
        acc[1] += g;
        if (jvp) {
            double th = r * ((double)tx[j] - ws[2 * row] - xh * ws[2 * row + 1]);
            acc[0] += (double)dty[j] * th;
        }
    }
};

static void ln_param_grads(const ln_args_t *a, int jvp) {
    if (!a->dw) return;
    long np = a->C > 0 ? a->C : a->N;
    gt_count_bytes(4.0 * a->B * a->N * (2 + 2 * jvp) + 16.0 * np);
    int j = jvp && a->dty != NULL;
    if (a->C > 0)
        gt_reduce_2d<2>(a->C, a->B, ln_len(a),
                        in_sum_params{a->x, a->tx, a->dy, a->dty, a->saved, a->ws, ln_len(a), a->C, j},
                        ln_add_params{a->dw, a->db});
    else
        gt_reduce<2>(a->N, a->B, ln_sum_params{a->x, a->tx, a->dy, a->dty, a->saved, a->ws, a->N, j},
                     ln_add_params{a->dw, a->db});
}

/* backward: sum a, sum a x_hat with a = w dy, per sample */
struct ln_sum_back {
    const float *x, *dy, *w, *saved;
    long N;
    int C;
    __device__ void operator()(long i, long k, double *acc) const {
        size_t j = (size_t)i * N + k;
        double av = (double)LN_W(w, C, i, k) * dy[j];
        acc[0] += av;
        acc[1] += av * norm_hat(x[j], saved[2 * i], saved[2 * i + 1]);
    }
};
struct ln_keep_means {
    double *out, n;
    __device__ void operator()(long i, const double *s) const {
        out[2 * i] = s[0] / n;
        out[2 * i + 1] = s[1] / n;
    }
};

template <class I>
__global__ void k_ln_dx(float *dx, const float *dy, const float *x, const float *w, const float *saved,
                        const double *sums, size_t n, gt_idiv N, gt_idiv C) {
    I j = GT_TID_AS(I);
    if (j >= n) return;
    I i, k = N.divmod(j, &i);
    float mean = saved[2 * i], r = saved[2 * i + 1];
    dx[j] = norm_dx(LN_W_D(w, C, i, k) * dy[j], norm_hat(x[j], mean, r), r, sums[2 * i], sums[2 * i + 1]);
}

void cuda_ln_backward(backend_t *be, const ln_args_t *a) {
    (void)be;
    long B = ln_rows(a), N = ln_len(a);
    size_t n = (size_t)B * N;
    if (a->dx) {
        double *sums = (double *)gt_cuda_scratch(GT_SCRATCH_OP, sizeof(double) * 2 * B);
        gt_reduce<2>(B, N, ln_sum_back{a->x, a->dy, a->w, a->saved, N, a->C}, ln_keep_means{sums, (double)N});
        gt_count_bytes(20.0 * n);
        GT_LAUNCH_IDX(n, k_ln_dx, gt_blocks(n), GT_BLOCK, a->dx, a->dy, a->x, a->w, (const float *)a->saved,
                      (const double *)sums, n, gt_idiv_make(N), gt_idiv_make(a->C > 0 ? a->C : 0));
    }
    ln_param_grads(a, 0);
}

/* jvp backward: per sample sa, sax, sc, scx, T (lib/nn/layer_ln.c) */
struct ln_sum_jvp_back {
    const float *x, *tx, *dy, *dty, *w, *saved;
    const double *mt_m;
    long N;
    int C;
    __device__ void operator()(long i, long k, double *acc) const {
        size_t j = (size_t)i * N + k;
        float mean = saved[2 * i], r = saved[2 * i + 1];
        double xh = norm_hat(x[j], mean, r), wk = LN_W(w, C, i, k);
        double av = wk * LN_GET(dy, j), c = wk * LN_GET(dty, j);
        double th = r * ((double)tx[j] - mt_m[2 * i] - xh * mt_m[2 * i + 1]);
        acc[0] += av;
        acc[1] += av * xh;
        acc[2] += c;
        acc[3] += c * xh;
        acc[4] += c * th;
    }
};
/* the sample's sums and their quotients by n, once per sample */
struct ln_keep_sums5 {
    ln_jvp_sums_t *out;
    double n;
    __device__ void operator()(long i, const double *s) const { out[i] = ln_jvp_sums(n, s[0], s[1], s[2], s[3], s[4]); }
};

template <class I>
__global__ void k_ln_jvp_dx(float *dx, float *dtx, const float *dy, const float *dty, const float *x, const float *tx,
                            const float *w, const float *saved, const double *mt_m, const ln_jvp_sums_t *sums, size_t n,
                            gt_idiv N, gt_idiv C) {
    I j = GT_TID_AS(I);
    if (j >= n) return;
    I i, k = N.divmod(j, &i);
    float mean = saved[2 * i], r = saved[2 * i + 1];
    double xh = norm_hat(x[j], mean, r), wk = LN_W_D(w, C, i, k);
    double av = wk * LN_GET(dy, j), c = wk * LN_GET(dty, j);
    double mt = mt_m[2 * i], m = mt_m[2 * i + 1];
    double th = r * ((double)tx[j] - mt - xh * m);
    ln_jvp_dx(dx ? dx + j : NULL, dtx ? dtx + j : NULL, av, c, xh, th, r, m, sums + i);
}

void cuda_ln_jvp_backward(backend_t *be, const ln_args_t *a) {
    (void)be;
    long B = ln_rows(a), N = ln_len(a);
    size_t n = (size_t)B * N;
    double *mt_m = (double *)gt_cuda_scratch(GT_SCRATCH_OP, (sizeof(double) * 2 + sizeof(ln_jvp_sums_t)) * B);
    ln_jvp_sums_t *sums = (ln_jvp_sums_t *)(mt_m + 2 * B);
    gt_count_bytes(12.0 * n);
    gt_reduce<2>(B, N, ln_sum_tangent{a->x, a->tx, a->saved, N}, ln_tangent_means{mt_m, a->ws, (double)N});
    if (a->dx || a->dtx) {
        gt_count_bytes(4.0 * n * (3 + (a->dy != NULL) + (a->dty != NULL)) * 2 +
                       4.0 * n * ((a->dx != NULL) + (a->dtx != NULL)));
        gt_reduce<5>(B, N, ln_sum_jvp_back{a->x, a->tx, a->dy, a->dty, a->w, a->saved, mt_m, N, a->C},
                     ln_keep_sums5{sums, (double)N});
        GT_LAUNCH_IDX(n, k_ln_jvp_dx, gt_blocks(n), GT_BLOCK, a->dx, a->dtx, a->dy, a->dty, a->x, a->tx, a->w,
                      (const float *)a->saved, (const double *)mt_m, (const ln_jvp_sums_t *)sums, n, gt_idiv_make(N),
                      gt_idiv_make(a->C > 0 ? a->C : 0));
    }
    ln_param_grads(a, 1);
}
