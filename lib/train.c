/* train.c: one GAN training step and the loop (train.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "philox.h"
#include "shuffle.h"
#include "train.h"

/* ---- losses on logits ----------------------------------------------------------------- *
 * Each returns the loss (mean over the batch, accumulated in double) and writes dl = dloss/dx,
 * and adds D's mean output (sigmoid for bce/ns, raw otherwise) to *mean_out. */

static double softplus(double x) { return (x > 0 ? x : 0) + log1p(exp(-fabs(x))); }
static double sigmoid(double x) { return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)); }

/* which: 0 = D on real, 1 = D on fake, 2 = G on fake */
static double loss_eval(gan_loss_t loss, double smooth, int which, const float *x, float *dl, int B,
                        double *mean_out) {
    double sum = 0, msum = 0;
    double inv = 1.0 / B;
    for (int i = 0; i < B; i++) {
        double v = x[i], l = 0, d = 0;
        switch (loss) {
        case LOSS_BCE:
        case LOSS_NS: {
            double s = sigmoid(v);
            msum += s;
            if (which == 0) { /* BCE(x, 1 - smooth) */
                double t = 1 - smooth;
                l = softplus(v) - v * t;
                d = s - t;
            } else if (which == 1 || loss == LOSS_BCE) { /* BCE(x, 0) = softplus(x) */
                l = softplus(v);
                d = s;
                if (which == 2) { /* saturating G: minimise -BCE(fake, 0) */
                    l = -l;
                    d = -d;
                }
            } else { /* non-saturating G: BCE(x, 1) */
                l = softplus(-v);
                d = s - 1;
            }
            break;
        }
        case LOSS_WGAN:
        case LOSS_WGAN_GP:
            msum += v;
            l = which == 1 ? v : -v;
            d = which == 1 ? 1 : -1;
            break;
        case LOSS_HINGE:
            msum += v;
            if (which == 0) {
                l = 1 - v > 0 ? 1 - v : 0;
                d = 1 - v > 0 ? -1 : 0;
            } else if (which == 1) {
                l = 1 + v > 0 ? 1 + v : 0;
                d = 1 + v > 0 ? 1 : 0;
            } else {
                l = -v;
                d = -1;
            }
            break;
        case LOSS_LSGAN:
        default:
            msum += v;
            if (which == 1) {
                l = 0.5 * v * v;
                d = v;
            } else {
                l = 0.5 * (v - 1) * (v - 1);
                d = v - 1;
            }
            break;
        }
        sum += l;
        dl[i] = (float)(d * inv);
    }
    *mean_out = msum * inv;
    return sum * inv;
}

/* ---- helpers ------------------------------------------------------------------------- */

/* ---- reductions over a parameter vector, split into fixed parts ----------------------- *
 * Parts of RED_PART elements are reduced independently (over the backend's threads) into
 * t->red, then added in part order: the result depends on the vector only, not on the threads. */
#define RED_PART 65536

typedef struct {
    const float *p;
    size_t n;
    double *out; /* one per part */
    int finite;  /* 1: count non-finite elements; 0: sum of squares */
} red_job_t;

/* sum of squares of p[0..n) in double: eight partial sums (element i into sum i % 8) so that the
 * additions do not wait on each other */
static double sumsq(const float *p, size_t n) {
    double acc[8] = {0};
    size_t n8 = n - n % 8;
    for (size_t i = 0; i < n8; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += (double)p[i + k] * p[i + k];
    for (size_t i = n8; i < n; i++) acc[i % 8] += (double)p[i] * p[i];
    double s = 0;
    for (int k = 0; k < 8; k++) s += acc[k];
    return s;
}

/* the number of infinities and NaNs (all exponent bits set) in p[0..n), tested on the bits so
 * that the loop has no branch and vectorizes */
static uint32_t count_nonfinite(const float *p, size_t n) {
    uint32_t bad = 0;
    size_t n16 = n - n % 16;
    for (size_t i = 0; i < n16; i += 16) {
        uint32_t u[16];
        memcpy(u, p + i, sizeof u);
        for (int k = 0; k < 16; k++) bad += (u[k] & 0x7f800000u) == 0x7f800000u;
    }
    for (size_t i = n16; i < n; i++) bad += !isfinite(p[i]);
    return bad;
}

static void red_parts(void *arg, long k0, long k1) {
    const red_job_t *j = arg;
    for (long k = k0; k < k1; k++) {
        size_t b = (size_t)k * RED_PART, e = b + RED_PART < j->n ? b + RED_PART : j->n;
        j->out[k] = j->finite ? (double)count_nonfinite(j->p + b, e - b) : sumsq(j->p + b, e - b);
    }
}

static double reduce(const trainer_t *t, const float *p, size_t n, int finite) {
    long parts = (long)((n + RED_PART - 1) / RED_PART);
    red_job_t j = {p, n, t->red, finite};
    if (parts > 1) cpu_parallel_for(t->m->be, parts, red_parts, &j);
    else red_parts(&j, 0, parts);
    double s = 0;
    for (long k = 0; k < parts; k++) s += t->red[k];
    return s;
}

/* the L2 norm of g (n floats) */
static double norm2(const trainer_t *t, const float *g, size_t n) { return sqrt(reduce(t, g, n, 0)); }

/* 1 when no element of p is an infinity or a NaN */
static int all_finite(const trainer_t *t, const float *p, size_t n) { return reduce(t, p, n, 1) == 0; }

/* ema = d ema + e p, in blocks of 16 that vectorize */
static void ema_update(float *restrict ema, const float *restrict p, size_t n, float d, float e) {
    size_t n16 = n - n % 16;
    for (size_t i = 0; i < n16; i += 16)
        for (int k = 0; k < 16; k++) ema[i + k] = d * ema[i + k] + e * p[i + k];
    for (size_t i = n16; i < n; i++) ema[i] = d * ema[i] + e * p[i];
}

void train_get_image(const trainer_t *t, int64_t index, float *out) {
    size_t sz = (size_t)shape3_size(t->m->shape);
    if (t->data->dtype == DT_U8) {
        const uint8_t *s = (const uint8_t *)t->data->data + (size_t)index * sz;
        for (size_t j = 0; j < sz; j++) out[j] = t->u8_lut[s[j]];
    } else {
        memcpy(out, (const float *)t->data->data + (size_t)index * sz, sizeof(float) * sz);
    }
}

int trainer_init(trainer_t *t, gan_model_t *m, const tensor_t *data) {
    memset(t, 0, sizeof *t);
    if (data->dtype != DT_F32 && data->dtype != DT_U8)
        return gt_err("data must be float32 or uint8 images, not %s", dtype_name(data->dtype));
    char ds[64];
    tensor_shape_str(data, ds, sizeof ds);
    if (data->ndim != 4 || data->shape[1] != m->shape.c || data->shape[2] != m->shape.h ||
        data->shape[3] != m->shape.w)
        return gt_err("data is %s but the model expects N x %dx%dx%d images", ds, m->shape.c, m->shape.h,
                      m->shape.w);
    int B = m->set.batch;
    if (B > m->G.max_batch || B > m->D.max_batch) return gt_err("batch %d exceeds the allocated batch", B);
    if (data->shape[0] < B)
        return gt_err("data has %lld images, fewer than one batch of %d", (long long)data->shape[0], B);
    t->m = m;
    t->data = data;
    t->n = data->shape[0];
    t->B = B;
    t->perm = gt_xmalloc(sizeof *t->perm * (size_t)t->n);
    t->perm_epoch = -1;
    size_t sz = (size_t)shape3_size(m->shape);
    t->real = gt_aligned_alloc(sizeof(float) * (size_t)B * sz);
    t->dfake = gt_aligned_alloc(sizeof(float) * (size_t)B * sz);
    t->z = gt_aligned_alloc(sizeof(float) * (size_t)B * (size_t)m->z_dim);
    t->dlogit = gt_aligned_alloc(sizeof(float) * (size_t)B);
    if (m->set.loss == LOSS_WGAN_GP) {
        t->xhat = gt_aligned_alloc(sizeof(float) * (size_t)B * sz);
        t->gx = gt_aligned_alloc(sizeof(float) * (size_t)B * sz);
        t->ones = gt_aligned_alloc(sizeof(float) * (size_t)B);
    }
    size_t np = m->G.n_params > m->D.n_params ? m->G.n_params : m->D.n_params;
    t->red = gt_xcalloc(np / RED_PART + 1, sizeof *t->red);
    for (int v = 0; v < 256; v++) t->u8_lut[v] = ((float)v - 127.5f) / 127.5f;
    if (m->data_n != t->n) {
        if (m->data_n != 0 && m->epoch_pos != 0) {
            m->epoch++;
            m->epoch_pos = 0;
        }
        m->data_n = t->n;
    }
    return 0;
}

void trainer_free(trainer_t *t) {
    free(t->perm);
    gt_aligned_free(t->real);
    gt_aligned_free(t->dfake);
    gt_aligned_free(t->z);
    gt_aligned_free(t->dlogit);
    gt_aligned_free(t->xhat);
    gt_aligned_free(t->gx);
    gt_aligned_free(t->ones);
    free(t->red);
    memset(t, 0, sizeof *t);
}

/* The next real batch into t->real, advancing the model's epoch counters. */
static void next_real(trainer_t *t) {
    gan_model_t *m = t->m;
    if (m->epoch_pos + t->B > t->n) { /* drop the last partial batch */
        m->epoch++;
        m->epoch_pos = 0;
    }
    if (t->perm_epoch != m->epoch) {
        shuffle_perm(t->perm, t->n, m->seed, (uint32_t)m->epoch);
        t->perm_epoch = m->epoch;
    }
    size_t sz = (size_t)shape3_size(m->shape);
    for (int i = 0; i < t->B; i++) train_get_image(t, t->perm[m->epoch_pos + i], t->real + (size_t)i * sz);
    m->epoch_pos += t->B;
}

static void draw_z(trainer_t *t, int c) {
    gan_model_t *m = t->m;
    uint64_t zd = (uint64_t)m->z_dim, base = (uint64_t)c * (uint64_t)t->B * zd;
    for (uint64_t j = 0; j < (uint64_t)t->B * zd; j++)
        t->z[j] = philox_normal(m->seed, PHILOX_STREAM_Z, (uint32_t)m->step, base + j);
}

/* WGAN-GP penalty lambda * mean_i (|g_i| - 1)^2, g_i = grad_x D(xhat_i) at xhat = e real + (1 - e)
 * fake, e_i uniform from Philox (seed, PHILOX_STREAM_GP, step, c*B + i); its parameter gradient is
 * added to D's grads by forward-over-reverse (net.h's jvp passes): with v_i = dP/dg_i held fixed,
 * dP/dtheta = d/dtheta sum_i <grad_x D(xhat_i), v_i> = d/dtheta sum_i J_D(xhat_i) v_i.
 * Dropout in the critic draws the masks of the fake pass for sample indices B..2B-1. */
static double gradient_penalty(trainer_t *t, int c, const float *fake, uint32_t rng_step) {
    gan_model_t *m = t->m;
    net_t *D = &m->D;
    int B = t->B;
    size_t sz = (size_t)shape3_size(m->shape);
    double lambda = m->set.gp;
    for (int i = 0; i < B; i++) {
        float e = philox_uniform(m->seed, PHILOX_STREAM_GP, (uint32_t)m->step, (uint64_t)c * (uint64_t)B + (uint64_t)i);
        const float *r = t->real + (size_t)i * sz, *f = fake + (size_t)i * sz;
        float *x = t->xhat + (size_t)i * sz;
        for (size_t j = 0; j < sz; j++) x[j] = e * r[j] + (1.0f - e) * f[j];
    }
    nn_ctx_t ctx = net_ctx(D, 1, m->seed, rng_step, (uint64_t)B);
    /* g = grad_x sum_i D(xhat_i); the parameter gradients of this pass are not wanted */
    net_forward(D, &ctx, t->xhat, B);
    for (int i = 0; i < B; i++) t->ones[i] = 1.0f;
    ctx.skip_param_grads = 1;
    net_backward(D, &ctx, t->ones, t->gx, B);
    ctx.skip_param_grads = 0;
    double pen = 0;
    for (int i = 0; i < B; i++) {
        float *g = t->gx + (size_t)i * sz;
        double n2 = 0;
        for (size_t j = 0; j < sz; j++) n2 += (double)g[j] * g[j];
        double n = sqrt(n2);
        pen += (n - 1) * (n - 1);
        double k = n > 0 ? 2.0 * lambda / B * (n - 1) / n : 0.0;
        for (size_t j = 0; j < sz; j++) g[j] = (float)(k * g[j]); /* v_i */
    }
    const float *ty;
    net_jvp_forward(D, &ctx, t->xhat, t->gx, B, &ty);
    net_jvp_backward(D, &ctx, NULL, t->ones, NULL, NULL, B);
    return lambda * pen / B;
}

int train_step(trainer_t *t, train_stats_t *st) {
    gan_model_t *m = t->m;
    const gan_settings_t *s = &m->set;
    int B = t->B;
    long long stepno = (long long)m->step + 1;
    uint32_t rs = (uint32_t)m->step * 16u;
    memset(st, 0, sizeof *st);
    if (m->step >= (int64_t)(UINT32_MAX / 16)) return gt_err("step %lld: step counter exhausted", stepno);

    const float *fake = NULL;
    for (int c = 0; c < s->n_critic; c++) {
        double mean;
        next_real(t);
        net_zero_grad(&m->D);
        nn_ctx_t cr = net_ctx(&m->D, 1, m->seed, rs + 3u * (uint32_t)c, 0);
        const float *yr = net_forward(&m->D, &cr, t->real, B);
        double lr = loss_eval(s->loss, s->label_smooth, 0, yr, t->dlogit, B, &mean);
        st->d_real = mean;
        net_backward(&m->D, &cr, t->dlogit, NULL, B);

        draw_z(t, c);
        nn_ctx_t cg = net_ctx(&m->G, 1, m->seed, rs + 3u * (uint32_t)c + 2u, 0);
        fake = net_forward(&m->G, &cg, t->z, B);
        nn_ctx_t cf = net_ctx(&m->D, 1, m->seed, rs + 3u * (uint32_t)c + 1u, 0);
        const float *yf = net_forward(&m->D, &cf, fake, B);
        double lf = loss_eval(s->loss, s->label_smooth, 1, yf, t->dlogit, B, &mean);
        st->d_fake = mean;
        net_backward(&m->D, &cf, t->dlogit, NULL, B);
        st->loss_d = lr + lf;
        if (s->loss == LOSS_WGAN_GP) {
            st->gp = gradient_penalty(t, c, fake, rs + 3u * (uint32_t)c + 1u);
            st->loss_d += st->gp;
        }
        if (!isfinite(st->loss_d)) return gt_err("step %lld: D's loss is %g; stopping", stepno, st->loss_d);

        st->gnorm_d = norm2(t, m->D.grads, m->D.n_params);
        optim_step(&m->opt_D, m->D.params, m->D.grads);
        if (s->clip > 0) {
            float cl = (float)s->clip;
            for (size_t i = 0; i < m->D.n_params; i++)
                m->D.params[i] = m->D.params[i] > cl ? cl : m->D.params[i] < -cl ? -cl : m->D.params[i];
        }
        if (!all_finite(t, m->D.params, m->D.n_params))
            return gt_err("step %lld: D's weights are no longer finite; stopping", stepno);
    }

    /* G update through D on the last fake batch (still G's output buffer) */
    double mean;
    net_zero_grad(&m->G);
    nn_ctx_t cd = net_ctx(&m->D, 1, m->seed, rs + 15u, 0);
    cd.skip_param_grads = 1; /* only the gradient into the fake images is wanted */
    const float *y = net_forward(&m->D, &cd, fake, B);
    st->loss_g = loss_eval(s->loss, s->label_smooth, 2, y, t->dlogit, B, &mean);
    if (!isfinite(st->loss_g)) return gt_err("step %lld: G's loss is %g; stopping", stepno, st->loss_g);
    net_backward(&m->D, &cd, t->dlogit, t->dfake, B);
    nn_ctx_t cg = net_ctx(&m->G, 1, m->seed, rs + 3u * (uint32_t)(s->n_critic - 1) + 2u, 0);
    net_backward(&m->G, &cg, t->dfake, NULL, B);
    st->gnorm_g = norm2(t, m->G.grads, m->G.n_params);
    optim_step(&m->opt_G, m->G.params, m->G.grads);
    if (!all_finite(t, m->G.params, m->G.n_params))
        return gt_err("step %lld: G's weights are no longer finite; stopping", stepno);
    if (m->G_ema) {
        float d = (float)s->ema, e = 1.0f - d;
        ema_update(m->G_ema, m->G.params, m->G.n_params, d, e);
    }
    m->step++;
    return 0;
}

int train_loop(trainer_t *t, int64_t until_step, volatile sig_atomic_t *stop,
               int (*after_step)(void *arg, const train_stats_t *st), void *arg) {
    train_stats_t st;
    while (t->m->step < until_step) {
        if (train_step(t, &st)) return -1;
        if (after_step && after_step(arg, &st)) break;
        if (stop && *stop) break;
    }
    return 0;
}
