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
 * Work is split over channels: each channel is computed by one thread in a fixed order, so
 * results do not depend on the thread count. No jvp ops: BatchNorm mixes samples, which the
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
            for (int i = 0; i < B; i++) {
                const float *xc = j->x + ((size_t)i * C + c) * S;
                for (long k = 0; k < S; k++) s += xc[k];
            }
            double m = s / n, q = 0;
            for (int i = 0; i < B; i++) {
                const float *xc = j->x + ((size_t)i * C + c) * S;
                for (long k = 0; k < S; k++) {
                    double d = xc[k] - m;
                    q += d * d;
                }
            }
            double var = q / n;
            mean = (float)m;
            istd = (float)norm_inv_std(var, l->eps);
            double mom = l->momentum, unb = n > 1 ? var * n / (n - 1) : var;
            l->state[c] = (float)((1 - mom) * l->state[c] + mom * m);
            l->state[C + c] = (float)((1 - mom) * l->state[C + c] + mom * unb);
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
            for (long k = 0; k < S; k++) {
                double g = j->dy[o + k];
                sg += g;
                sgx += g * norm_hat(j->x[o + k], mean, istd);
            }
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

static void bn_run(const nn_ctx_t *ctx, const layer_t *l, int B, void (*fn)(void *, long, long), bn_job_t *j) {
    long work = (long)B * shape3_size(l->in);
    if (l->in.c > 1 && work >= 32768) cpu_parallel_for(ctx->be, l->in.c, fn, j);
    else fn(j, 0, l->in.c);
}

static void bn_forward(const nn_ctx_t *ctx, layer_t *l, float *y, const float *x, int B) {
    bn_job_t j = {l, B, ctx->training, 0, y, NULL, x, NULL};
    bn_run(ctx, l, B, bn_fwd_range, &j);
    if (ctx->training && l->num_batches_tracked) ++*l->num_batches_tracked;
}

static void bn_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, const float *dy, const float *x,
                        const float *y, int B) {
    (void)y;
    int param_grads = l->dw && !ctx->skip_param_grads;
    if (!dx && !param_grads) return;
    bn_job_t j = {l, B, ctx->training, param_grads, NULL, dx, x, dy};
    bn_run(ctx, l, B, bn_bwd_range, &j);
}

const layer_ops_t layer_bn_ops = {"bn", bn_setup, bn_init, bn_forward, bn_backward, NULL, NULL};
