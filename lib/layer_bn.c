/* layer_bn.c: batch normalisation, torch.nn.BatchNorm1d (input C x 1 x 1) and BatchNorm2d
 * (input C x H x W): statistics per channel over the batch and the spatial positions.
 *
 *   x (B, C, S)  S = H*W     w (C)  b (C)  (absent with noaffine)     y (B, C, S)
 *   state: running_mean (C) then running_var (C)
 *   saved (fixed, not per sample): mean (C) then inv_std (C) of the forward pass
 *
 * Training mode: y = (x - mean) / sqrt(var + eps) * w + b with the batch mean and the biased
 * batch variance over n = B*S values, accumulated in double (two passes); then
 *   running_mean = (1 - momentum) running_mean + momentum mean
 *   running_var  = (1 - momentum) running_var  + momentum var * n / (n - 1)   (unbiased)
 * and *num_batches_tracked += 1, as torch does. (torch refuses n = 1; we then update
 * running_var with the biased variance 0 instead of dividing by zero.)
 * Eval mode uses the running statistics. Backward follows the forward's mode (ctx->training
 * must be the same): the full batch-statistics backward in training mode, the affine one in
 * eval mode. Backward recomputes x_hat from x and the saved mean and inv_std.
 *
 * Init: w = 1 (INIT_TORCH) or 1 + 0.02 * philox_normal(seed, PHILOX_STREAM_INIT, layer index,
 * j) (INIT_DCGAN, as the DCGAN tutorial's N(1, 0.02)); b = 0; running_mean 0, running_var 1.
 * Work is split over channels (BatchNorm1d: blocks of features): each channel is computed by
 * one thread in a fixed order, so results do not depend on the thread count. No jvp ops: BatchNorm mixes samples, which the
 * gradient penalty forbids (use ln in a WGAN-GP critic). */
#include <stddef.h>

#include "common.h"
#include "layer.h"
#include "norm_math.h"
#include "philox.h"

static int bn_setup(layer_t *l) {
    if (!(l->eps > 0)) return gt_err("eps must be positive");
    if (!(l->momentum >= 0 && l->momentum <= 1)) return gt_err("momentum must be in [0, 1]");
    size_t C = (size_t)l->in.c;
    l->out = l->in;
    l->n_bias = l->has_bias ? C : 0;
    l->n_params = 2 * l->n_bias;
    l->w_ndim = l->b_ndim = 0;
    l->n_state = 2 * C;
    l->n_saved = 0;
    l->n_saved_fixed = 2 * C;
    l->workspace = 0;
    return 0;
}

static void bn_init(layer_t *l, init_mode_t mode, uint64_t seed) {
    int C = l->in.c;
    for (int c = 0; c < C && l->n_params; c++) {
        l->w[c] = mode == INIT_DCGAN
                      ? 1.0f + 0.02f * philox_normal(seed, PHILOX_STREAM_INIT, (uint32_t)l->index, (uint64_t)c)
                      : 1.0f;
        l->b[c] = 0.0f;
    }
    for (int c = 0; c < C; c++) {
        l->state[c] = 0.0f;
        l->state[C + c] = 1.0f;
    }
}

typedef struct {
    const layer_t *l;
    int B, training, param_grads;
    float *y, *dx;
    const float *x, *dy;
} bn_job_t;

/* ---- BatchNorm2d: one channel at a time, its planes summed with eight partial sums ---------- *
 * Element k of a plane goes into partial sum k % 8 and the eight are added in a fixed tree:
 * the additions do not wait on each other (one running double sum was latency-bound), and the
 * result stays a fixed function of the values. Planes add into the channel's total in sample
 * order. */

static double lanes_total(const double *acc) {
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* sum of x[0..n) */
static double plane_sum(const float *x, long n) {
    double acc[8] = {0};
    long n8 = n - n % 8;
    for (long i = 0; i < n8; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += x[i + k];
    for (long i = n8; i < n; i++) acc[i % 8] += x[i];
    return lanes_total(acc);
}

/* sum of (x - m)^2 over x[0..n) */
static double plane_sqdev(const float *x, long n, double m) {
    double acc[8] = {0};
    long n8 = n - n % 8;
    for (long i = 0; i < n8; i += 8)
        for (int k = 0; k < 8; k++) {
            double d = x[i + k] - m;
            acc[k] += d * d;
        }
    for (long i = n8; i < n; i++) {
        double d = x[i] - m;
        acc[i % 8] += d * d;
    }
    return lanes_total(acc);
}

/* *sg += sum dy, *sgx += sum dy x_hat over one plane */
static void plane_bwd_sums(const float *dy, const float *x, long n, float mean, float istd, double *sg,
                           double *sgx) {
    double a[8] = {0}, b[8] = {0};
    long n8 = n - n % 8;
    for (long i = 0; i < n8; i += 8)
        for (int k = 0; k < 8; k++) {
            double g = dy[i + k];
            a[k] += g;
            b[k] += g * norm_hat(x[i + k], mean, istd);
        }
    for (long i = n8; i < n; i++) {
        double g = dy[i];
        a[i % 8] += g;
        b[i % 8] += g * norm_hat(x[i], mean, istd);
    }
    *sg += lanes_total(a);
    *sgx += lanes_total(b);
}

/* the running statistics' update from the batch mean m and biased variance var over n values */
static void bn_update_running(const layer_t *l, long c, double m, double var, double n) {
    int C = l->in.c;
    double mom = l->momentum, unb = n > 1 ? var * n / (n - 1) : var;
    l->state[c] = (float)((1 - mom) * l->state[c] + mom * m);
    l->state[C + c] = (float)((1 - mom) * l->state[C + c] + mom * unb);
}

/* forward for channels [c0, c1) */
static void bn_fwd_range(void *arg, long c0, long c1) {
    const bn_job_t *j = arg;
    const layer_t *l = j->l;
    int C = l->in.c, B = j->B;
    long S = (long)l->in.h * l->in.w;
    double n = (double)B * (double)S;
    float *mean_s = l->saved, *istd_s = l->saved + C;
    for (long c = c0; c < c1; c++) {
        float mean, istd;
        if (j->training) {
            double s = 0;
            for (int i = 0; i < B; i++) s += plane_sum(j->x + ((size_t)i * C + c) * S, S);
            double m = s / n, q = 0;
            for (int i = 0; i < B; i++) q += plane_sqdev(j->x + ((size_t)i * C + c) * S, S, m);
            double var = q / n;
            mean = (float)m;
            istd = (float)norm_inv_std(var, l->eps);
            bn_update_running(l, c, m, var, n);
        } else {
            mean = l->state[c];
            istd = (float)norm_inv_std(l->state[C + c], l->eps);
        }
        mean_s[c] = mean;
        istd_s[c] = istd;
        float w = l->w ? l->w[c] : 1.0f, b = l->b ? l->b[c] : 0.0f;
        for (int i = 0; i < B; i++) {
            size_t o = ((size_t)i * C + c) * S;
            for (long k = 0; k < S; k++) j->y[o + k] = norm_affine(norm_hat(j->x[o + k], mean, istd), w, b);
        }
    }
}

/* backward for channels [c0, c1): dw, db and dx of each channel */
static void bn_bwd_range(void *arg, long c0, long c1) {
    const bn_job_t *j = arg;
    const layer_t *l = j->l;
    int C = l->in.c, B = j->B;
    long S = (long)l->in.h * l->in.w;
    double n = (double)B * (double)S;
    const float *mean_s = l->saved, *istd_s = l->saved + C;
    for (long c = c0; c < c1; c++) {
        float mean = mean_s[c], istd = istd_s[c], w = l->w ? l->w[c] : 1.0f;
        double sg = 0, sgx = 0; /* sum dy, sum dy x_hat */
        for (int i = 0; i < B; i++) {
            size_t o = ((size_t)i * C + c) * S;
            plane_bwd_sums(j->dy + o, j->x + o, S, mean, istd, &sg, &sgx);
        }
        if (l->dw && j->param_grads) {
            l->dw[c] += (float)sgx;
            l->db[c] += (float)sg;
        }
        if (!j->dx) continue;
        double sg_n = j->training ? w * sg / n : 0, sgx_n = j->training ? w * sgx / n : 0;
        for (int i = 0; i < B; i++) {
            size_t o = ((size_t)i * C + c) * S;
            for (long k = 0; k < S; k++)
                j->dx[o + k] = norm_dx(j->dy[o + k] * w, norm_hat(j->x[o + k], mean, istd), istd, sg_n, sgx_n);
        }
    }
}

/* ---- BatchNorm1d: blocks of BN1D_BLK features, each sample's row read contiguously ---------- *
 * (a feature at a time read one value per row: 6 ns per value for the DCGAN's 12544 features).
 * Each feature's sums run over the samples in order, as above. */
enum { BN1D_BLK = 128 };

static void bn1d_fwd_blocks(void *arg, long k0, long k1) {
    const bn_job_t *j = arg;
    const layer_t *l = j->l;
    int C = l->in.c, B = j->B;
    float *mean_s = l->saved, *istd_s = l->saved + C;
    for (long blk = k0; blk < k1; blk++) {
        long c0 = blk * BN1D_BLK, nc = C - c0 < BN1D_BLK ? C - c0 : BN1D_BLK;
        if (j->training) {
            double s[BN1D_BLK] = {0}, q[BN1D_BLK] = {0}, m[BN1D_BLK];
            for (int i = 0; i < B; i++) {
                const float *row = j->x + (size_t)i * C + c0;
                for (long k = 0; k < nc; k++) s[k] += row[k];
            }
            for (long k = 0; k < nc; k++) m[k] = s[k] / B;
            for (int i = 0; i < B; i++) {
                const float *row = j->x + (size_t)i * C + c0;
                for (long k = 0; k < nc; k++) {
                    double d = row[k] - m[k];
                    q[k] += d * d;
                }
            }
            for (long k = 0; k < nc; k++) {
                double var = q[k] / B;
                mean_s[c0 + k] = (float)m[k];
                istd_s[c0 + k] = (float)norm_inv_std(var, l->eps);
                bn_update_running(l, c0 + k, m[k], var, (double)B);
            }
        } else {
            for (long k = 0; k < nc; k++) {
                mean_s[c0 + k] = l->state[c0 + k];
                istd_s[c0 + k] = (float)norm_inv_std(l->state[C + c0 + k], l->eps);
            }
        }
        const float *w = l->w ? l->w + c0 : NULL, *b = l->b ? l->b + c0 : NULL, *ms = mean_s + c0, *is = istd_s + c0;
        for (int i = 0; i < B; i++) {
            const float *row = j->x + (size_t)i * C + c0;
            float *yrow = j->y + (size_t)i * C + c0;
            for (long k = 0; k < nc; k++)
                yrow[k] = norm_affine(norm_hat(row[k], ms[k], is[k]), w ? w[k] : 1.0f, b ? b[k] : 0.0f);
        }
    }
}

static void bn1d_bwd_blocks(void *arg, long k0, long k1) {
    const bn_job_t *j = arg;
    const layer_t *l = j->l;
    int C = l->in.c, B = j->B;
    const float *mean_s = l->saved, *istd_s = l->saved + C;
    for (long blk = k0; blk < k1; blk++) {
        long c0 = blk * BN1D_BLK, nc = C - c0 < BN1D_BLK ? C - c0 : BN1D_BLK;
        const float *ms = mean_s + c0, *is = istd_s + c0;
        double sg[BN1D_BLK] = {0}, sgx[BN1D_BLK] = {0}, sg_n[BN1D_BLK], sgx_n[BN1D_BLK];
        for (int i = 0; i < B; i++) {
            const float *row = j->x + (size_t)i * C + c0, *g = j->dy + (size_t)i * C + c0;
            for (long k = 0; k < nc; k++) {
                double gk = g[k];
                sg[k] += gk;
                sgx[k] += gk * norm_hat(row[k], ms[k], is[k]);
            }
        }
        if (l->dw && j->param_grads)
            for (long k = 0; k < nc; k++) {
                l->dw[c0 + k] += (float)sgx[k];
                l->db[c0 + k] += (float)sg[k];
            }
        if (!j->dx) continue;
        float wv[BN1D_BLK];
        for (long k = 0; k < nc; k++) {
            wv[k] = l->w ? l->w[c0 + k] : 1.0f;
            sg_n[k] = j->training ? wv[k] * sg[k] / B : 0;
            sgx_n[k] = j->training ? wv[k] * sgx[k] / B : 0;
        }
        for (int i = 0; i < B; i++) {
            const float *row = j->x + (size_t)i * C + c0, *g = j->dy + (size_t)i * C + c0;
            float *dxr = j->dx + (size_t)i * C + c0;
            for (long k = 0; k < nc; k++)
                dxr[k] = norm_dx(g[k] * wv[k], norm_hat(row[k], ms[k], is[k]), is[k], sg_n[k], sgx_n[k]);
        }
    }
}

/* features (C x 1 x 1) by blocks of features, images by channels; split over threads when large */
static void bn_run(const nn_ctx_t *ctx, const layer_t *l, int B, int backward, bn_job_t *j) {
    long work = (long)B * shape3_size(l->in);
    int one_d = l->in.h == 1 && l->in.w == 1;
    long items = one_d ? (l->in.c + BN1D_BLK - 1) / BN1D_BLK : l->in.c;
    void (*fn)(void *, long, long) = one_d ? (backward ? bn1d_bwd_blocks : bn1d_fwd_blocks)
                                           : (backward ? bn_bwd_range : bn_fwd_range);
    if (items > 1 && work >= 32768) cpu_parallel_for(ctx->be, items, fn, j);
    else fn(j, 0, items);
}

static void bn_forward(const nn_ctx_t *ctx, layer_t *l, float *y, const float *x, int B) {
    bn_job_t j = {l, B, ctx->training, 0, y, NULL, x, NULL};
    bn_run(ctx, l, B, 0, &j);
    if (ctx->training && l->num_batches_tracked) ++*l->num_batches_tracked;
}

static void bn_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, const float *dy, const float *x,
                        const float *y, int B) {
    (void)y;
    int param_grads = l->dw && !ctx->skip_param_grads;
    if (!dx && !param_grads) return;
    bn_job_t j = {l, B, ctx->training, param_grads, NULL, dx, x, dy};
    bn_run(ctx, l, B, 1, &j);
}

const layer_ops_t layer_bn_ops = {"bn", bn_setup, bn_init, bn_forward, bn_backward, NULL, NULL};
