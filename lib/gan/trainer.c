/* trainer.c: one GAN training step and the loop (trainer.h), as a sequence of backend
 * operations: nothing here reads or writes tensor data, so the step runs where the model's
 * backend computes. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/common.h"
#include "lib/base/philox.h"
#include "lib/base/shuffle.h"
#include "trainer.h"
#include "tricks.h"
#include "lib/backend/train_math.h"

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
    backend_t *be = m->be;
    t->m = m;
    t->be = be;
    t->data = data;
    t->n = data->shape[0];
    t->B = B;
    size_t bytes = tensor_nbytes(data);
    if (be->upload_const) {
        t->data_dev = be->upload_const(be, data->data, bytes);
    } else {
        void *d = be->alloc(be, bytes ? bytes : 1);
        be->upload(be, d, data->data, bytes);
        t->data_dev = d;
    }
    t->perm = gt_xmalloc(sizeof *t->perm * (size_t)t->n);
    t->perm_dev = be->alloc(be, sizeof *t->perm_dev * (size_t)t->n);
    t->perm_epoch = -1;
    t->lo = 0;
    t->b = B;
    size_t sz = (size_t)shape3_size(m->shape);
    t->real = be->alloc(be, sizeof(float) * (size_t)B * sz);
    t->dfake = be->alloc(be, sizeof(float) * (size_t)B * sz);
    t->z = be->alloc(be, sizeof(float) * (size_t)B * (size_t)m->z_dim);
    t->dlogit = be->alloc(be, sizeof(float) * (size_t)B);
    int reg = m->set.r1 > 0 || m->set.r2 > 0;
    if (reg && net_jvp_ok(&m->D)) return gt_err("D (r1/r2): %s; or give --r1 0 --r2 0", gt_errmsg());
    if (m->set.loss == LOSS_WGAN_GP) t->xhat = be->alloc(be, sizeof(float) * (size_t)B * sz);
    if (m->set.loss == LOSS_WGAN_GP || reg) {
        t->gx = be->alloc(be, sizeof(float) * (size_t)B * sz);
        t->ones = be->alloc(be, sizeof(float) * (size_t)B);
        be->fill(be, t->ones, 1.0f, (size_t)B);
        net_alloc_jvp(&m->D); /* so that no step allocates */
    }
    if (m->set.augment) {
        diffaug_init(&t->aug, be, m->set.augment, B, m->shape);
        t->aug_x = be->alloc(be, sizeof(float) * (size_t)B * sz);
        t->aug_dx = be->alloc(be, sizeof(float) * (size_t)B * sz);
    }
    if (m->set.instance_noise > 0) t->noisy = be->alloc(be, sizeof(float) * (size_t)B * sz);
    t->stats = be->alloc(be, sizeof(double) * TS_COUNT);
    be->zero(be, t->stats, sizeof(double) * TS_COUNT);
    t->bucket_mb = TRAINER_BUCKET_MB;
    t->shard_optimizer = 1;
    t->last_check = gt_seconds();
    if (m->data_n != t->n) {
        if (m->data_n != 0 && m->epoch_pos != 0) {
            m->epoch++;
            m->epoch_pos = 0;
        }
        m->data_n = t->n;
    }
    return 0;
}

int trainer_set_labels(trainer_t *t, const tensor_t *labels) {
    int K = t->m->classes;
    if (K <= 0) return gt_err("the model is not class-conditional: drop --labels, or make one with gan-init --classes K");
    char why[48];
    snprintf(why, sizeof why, "the model has %d classes", K);
    int64_t *host, n = t->n;
    if (tensor_labels(labels, K, n, why, &host)) return -1;
    backend_t *be = t->be;
    t->labels_dev = be->alloc(be, sizeof *host * (size_t)n);
    be->upload(be, t->labels_dev, host, sizeof *host * (size_t)n);
    t->batch_labels = be->alloc(be, sizeof *host * (size_t)t->B);
    free(host);
    return 0;
}

int trainer_distribute(trainer_t *t, dist_t *d) {
    if (d->size <= 1) return 0;
    backend_t *be = t->be;
    if (!be->join || !be->sum_procs)
        return gt_err("the %s backend cannot train data-parallel; give --device cpu", be->name);
    if (t->B < d->size) return gt_err("batch %d is smaller than the %d processes; each needs a sample", t->B, d->size);
    if (be->join(be, d)) return -1;
    t->dist = d;
    t->lo = (int)((int64_t)t->B * d->rank / d->size);
    t->b = (int)((int64_t)t->B * (d->rank + 1) / d->size) - t->lo;
    t->bn_sync.batch = t->B;
    /* the synced passes' per-channel sums: 2 C doubles for the widest layer input of either
     * network (a BatchNorm's C is its input's channels), so that steps allocate nothing */
    int widest = net_max_channels(&t->m->G);
    if (net_max_channels(&t->m->D) > widest) widest = net_max_channels(&t->m->D);
    t->bn_sync.scratch = be->alloc(be, sizeof(double) * 2 * (size_t)widest);
    if (t->bucket_mb < 0) return gt_err("--bucket-mb must be at least 0");
    ddp_init(&t->ddp, be, t->bucket_mb);
    size_t most = t->m->G.n_params > t->m->D.n_params ? t->m->G.n_params : t->m->D.n_params;
    t->sharded = t->shard_optimizer && ddp_shard(&t->ddp, d, most);
    /* the sharded nets' parameters and gradients where the other processes read them in place
     * (processes on one machine, CPU backend): the optimizer's collectives then copy nothing
     * but the parameter slices */
    if (t->sharded && be->alloc_shared) {
        net_t *nets[] = {&t->m->D, &t->m->G};
        t->params_shared = 1;
        for (int i = 0; i < 2; i++) {
            size_t bytes = sizeof(float) * (nets[i]->n_params ? nets[i]->n_params : 1);
            float *p = be->alloc_shared(be, bytes), *g = p ? be->alloc_shared(be, bytes) : NULL;
            if (g) net_move_params(nets[i], p, g);
            else t->params_shared = 0;
        }
    }
    return 0;
}

/* The pass that completes net n's gradients in a data-parallel run: its buckets start as its
 * backward pass completes them (lib/gan/ddp.h). */
static void last_grad_pass(trainer_t *t, nn_ctx_t *c, net_t *n) {
    if (t->dist) c->grad_hook = ddp_begin(&t->ddp, n->grads, n->n_params);
}

/* A pass's context: the net's, with this process's first global sample index, the classes of
 * its slice of the batch (class-conditional models) and, in a data-parallel run, BatchNorm over
 * the global batch. */
static nn_ctx_t pass_ctx(trainer_t *t, net_t *n, uint32_t rng_step, uint64_t base) {
    nn_ctx_t c = net_ctx(n, 1, t->m->seed, rng_step, base + (uint64_t)t->lo);
    if (t->batch_labels) c.labels = t->batch_labels + t->lo;
    if (t->dist && !t->m->set.bn_local) c.bn_sync = &t->bn_sync;
    return c;
}

void trainer_free(trainer_t *t) {
    backend_t *be = t->be;
    if (be) {
        if (t->data_dev) {
            if (be->upload_const) {
                if (be->release_const) be->release_const(be, t->data_dev);
            } else {
                be->free(be, (void *)t->data_dev);
            }
        }
        float *bufs[] = {t->real, t->dfake, t->z, t->dlogit, t->xhat, t->gx, t->ones, t->aug_x, t->aug_dx, t->noisy};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
            if (bufs[i]) be->free(be, bufs[i]);
        if (t->perm_dev) be->free(be, t->perm_dev);
        if (t->labels_dev) be->free(be, t->labels_dev);
        if (t->batch_labels) be->free(be, t->batch_labels);
        if (t->stats) be->free(be, t->stats);
        if (t->bn_sync.scratch) be->free(be, t->bn_sync.scratch);
        if (t->aug.policy) diffaug_free(&t->aug, be);
        ddp_free(&t->ddp);
    }
    free(t->perm);
    memset(t, 0, sizeof *t);
}

/* The next real batch into t->real, advancing the model's epoch counters. */
static void next_real(trainer_t *t) {
    gan_model_t *m = t->m;
    backend_t *be = t->be;
    if (m->epoch_pos + t->B > t->n) { /* drop the last partial batch */
        m->epoch++;
        m->epoch_pos = 0;
    }
    if (t->perm_epoch != m->epoch) {
        shuffle_perm(t->perm, t->n, m->seed, (uint32_t)m->epoch);
        be->upload(be, t->perm_dev, t->perm, sizeof *t->perm * (size_t)t->n);
        t->perm_epoch = m->epoch;
    }
    be->gather(be, t->real, t->data_dev, t->data->dtype == DT_U8, t->perm_dev, m->epoch_pos + t->lo, t->b,
               (size_t)shape3_size(m->shape));
    if (t->labels_dev) be->gather_labels(be, t->batch_labels, t->labels_dev, t->perm_dev, m->epoch_pos, t->B);
    m->epoch_pos += t->B;
}

static void draw_z(trainer_t *t, int c) {
    gan_model_t *m = t->m;
    uint64_t zd = (uint64_t)m->z_dim, first = (uint64_t)c * (uint64_t)t->B + (uint64_t)t->lo;
    t->be->philox_fill(t->be, t->z, (size_t)t->b * zd, FILL_NORMAL, m->seed, PHILOX_STREAM_Z, (uint32_t)m->step,
                       first * zd, 1.0f, 0.0f);
}

/* What D sees of images x (this process's b samples) in the pass keyed by Philox step rng_step:
 * x itself, or x plus instance noise (into t->noisy, tricks.h), and that with DiffAugment
 * augmented into t->aug_x by a fresh draw. */
static const float *d_input(trainer_t *t, const float *x, uint32_t rng_step) {
    double sigma = t->noisy ? gan_instance_noise_sigma(&t->m->set, t->m->step) : 0;
    if (sigma > 0) {
        size_t sz = (size_t)shape3_size(t->m->shape);
        t->be->add_noise(t->be, t->noisy, x, (size_t)t->b * sz, t->m->seed, PHILOX_STREAM_INSTANCE_NOISE, rng_step,
                         (uint64_t)t->lo * sz, (float)sigma);
        x = t->noisy;
    }
    if (!t->aug.policy) return x;
    diffaug_draw(&t->aug, t->be, t->m->seed, rng_step, (uint64_t)t->lo, t->b);
    diffaug_map(&t->aug, t->be, DIFFAUG_APPLY, t->aug_x, x, t->b);
    return t->aug_x;
}

/* D's loss on its logits y (this process's slice) of the real (which = LOSS_ON_REAL) or the fake
 * batch into out, its gradient into t->dlogit: with label flipping or a fake target (tricks.h)
 * against per-sample targets drawn for the pass keyed by rng_step, else the loss op. */
static void d_loss(trainer_t *t, int which, uint32_t rng_step, double *out, const float *y) {
    const gan_settings_t *s = &t->m->set;
    backend_t *be = t->be;
    if (!gan_label_targets(s)) {
        be->loss(be, s->loss, s->label_smooth, which, t->dlogit, out, y, t->b, t->B);
        return;
    }
    double real = 1 - s->label_smooth, fake = s->label_smooth_fake, own = which == LOSS_ON_REAL ? real : fake;
    be->loss_targets(be, own, which == LOSS_ON_REAL ? fake : real, s->label_flip, t->m->seed, rng_step,
                     (uint64_t)t->lo, t->dlogit, out, y, t->b, t->B);
}

/* WGAN-GP penalty lambda * mean_i (|g_i| - 1)^2 into the TS_GP slot, g_i = grad_x D(xhat_i)
 * at xhat = e real + (1 - e) fake, e_i uniform from Philox (seed, PHILOX_STREAM_GP, step,
 * c*B + i); its parameter gradient is added to D's grads by forward-over-reverse (net.h's jvp
 * passes): with v_i = dP/dg_i held fixed,
 * dP/dtheta = d/dtheta sum_i <grad_x D(xhat_i), v_i> = d/dtheta sum_i J_D(xhat_i) v_i.
 * Dropout in the critic draws the masks of the fake pass for sample indices B..2B-1.
 * With DiffAugment the critic is D o T, T linear (L) plus a constant for its draws (Philox pass
 * aug_step): g = L^T grad D(T xhat), and <g, v> = <grad D(T xhat), L v>, so the forward-mode
 * pass runs D at T xhat with tangent L v. */
static void gradient_penalty(trainer_t *t, int c, const float *fake, uint32_t rng_step, uint32_t aug_step) {
    gan_model_t *m = t->m;
    backend_t *be = t->be;
    net_t *D = &m->D;
    int B = t->B, b = t->b;
    size_t sz = (size_t)shape3_size(m->shape);
    be->gp_mix(be, t->xhat, t->real, fake, b, sz, m->seed, (uint32_t)m->step,
               (uint64_t)c * (uint64_t)B + (uint64_t)t->lo);
    nn_ctx_t ctx = pass_ctx(t, D, rng_step, (uint64_t)B);
    /* g = grad_x sum_i D(xhat_i); the parameter gradients of this pass are not wanted */
    const float *x = d_input(t, t->xhat, aug_step);
    net_forward(D, &ctx, x, b);
    ctx.skip_param_grads = 1;
    net_backward(D, &ctx, t->ones, t->gx, b);
    ctx.skip_param_grads = 0;
    float *g = t->gx;
    if (t->aug.policy) { /* g = L^T gx into xhat (free now: D's input is aug_x); later L v into gx */
        diffaug_map(&t->aug, be, DIFFAUG_ADJOINT, t->xhat, t->gx, b);
        g = t->xhat;
    }
    be->gp_scale(be, g, t->stats + TS_GP, b, B, sz, m->set.gp);
    if (t->aug.policy) diffaug_map(&t->aug, be, DIFFAUG_TANGENT, t->gx, t->xhat, b);
    const float *ty; /* D's forward at x is in place: only the tangents (net.h net_jvp_tangent) */
    net_jvp_tangent(D, &ctx, x, t->gx, b, &ty);
    net_jvp_backward(D, &ctx, NULL, t->ones, NULL, NULL, b);
}

/* The R1 (x = the real batch) or R2 (x = the fake batch) penalty w/2 mean_i |g_i|^2 into
 * st[slot], g_i = grad_x D(x_i), and its parameter gradient added to D's grads by
 * forward-over-reverse as in gradient_penalty (v_i = w / B g_i). The passes are the real's or
 * the fake's (rng_step, samples 0..B-1), so dropout draws the masks of that pass and
 * DiffAugment the draws of that pass (d_input redraws them: they are a function of the pass's
 * key): the penalty is that of the D(T(x)) whose loss the step takes. With DiffAugment, g is
 * the gradient through T, L^T grad D(T x), and the forward-mode pass runs D at T x with
 * tangent L v, as in gradient_penalty; aug_dx, unused until G's update, holds g and then v. */
static void reg_penalty(trainer_t *t, const float *x, double w, int slot, uint32_t rng_step) {
    gan_model_t *m = t->m;
    backend_t *be = t->be;
    net_t *D = &m->D;
    int b = t->b;
    nn_ctx_t ctx = pass_ctx(t, D, rng_step, 0);
    const float *xd = d_input(t, x, rng_step);
    net_forward(D, &ctx, xd, b);
    ctx.skip_param_grads = 1;
    net_backward(D, &ctx, t->ones, t->gx, b);
    ctx.skip_param_grads = 0;
    float *g = t->gx;
    if (t->aug.policy) {
        diffaug_map(&t->aug, be, DIFFAUG_ADJOINT, t->aug_dx, t->gx, b);
        g = t->aug_dx;
    }
    be->r1_scale(be, g, t->stats + slot, b, t->B, (size_t)shape3_size(m->shape), w);
    if (t->aug.policy) diffaug_map(&t->aug, be, DIFFAUG_TANGENT, t->gx, t->aug_dx, b);
    const float *ty;
    net_jvp_tangent(D, &ctx, xd, t->gx, b, &ty);
    net_jvp_backward(D, &ctx, NULL, t->ones, NULL, NULL, b);
}

/* Whether this step is recorded as one CUDA graph (backend.h graph_begin; kernels/README.md, "CUDA
 * graphs"), which then begins: not the first step of its kind (with or without R1/R2 passes) in
 * this process, which grows the reductions' scratch; not a step that starts an epoch (it
 * uploads the permutation), a data-parallel one, or one whose nets an observer watches (it
 * downloads their tensors: --dump-step, --log-layers). The same bits either way. */
static int graph_begin(trainer_t *t) {
    gan_model_t *m = t->m;
    const gan_settings_t *s = &m->set;
    int kind = 1, ok = t->be->graph_begin && !t->dist && !m->G.observer && !m->D.observer;
    int64_t pos = m->epoch_pos, epoch = m->epoch;
    for (int c = 0; c < s->n_critic; c++, pos += t->B) {
        if ((s->r1 > 0 || s->r2 > 0) && (m->reg_steps + c) % s->reg_every == 0) kind = 2;
        if (pos + t->B > t->n) {
            epoch++;
            pos = 0;
        }
        if (epoch != t->perm_epoch) ok = 0;
    }
    if (ok && (t->graph_seen & kind) && t->be->graph_begin(t->be) == 0) return 1;
    t->graph_seen |= kind;
    return 0;
}

int train_step(trainer_t *t) {
    gan_model_t *m = t->m;
    backend_t *be = t->be;
    const gan_settings_t *s = &m->set;
    double *st = t->stats;
    int B = t->B, b = t->b; /* the global batch, this process's slice of it */
    int64_t stepno = m->step + 1;
    uint32_t rs = (uint32_t)m->step * 16u;
    if (m->step >= (int64_t)(UINT32_MAX / 16)) return gt_err("step %lld: step counter exhausted", (long long)stepno);
    if (m->classes && !t->labels_dev)
        return gt_err("the model is class-conditional (%d classes): give the images' labels (gan-step --labels)",
                      m->classes);

    int graph = graph_begin(t);
    const float *fake = NULL;
    for (int c = 0; c < s->n_critic; c++) {
        next_real(t);
        net_zero_grad(&m->D);
        nn_ctx_t cr = pass_ctx(t, &m->D, rs + 3u * (uint32_t)c, 0);
        const float *yr = net_forward(&m->D, &cr, d_input(t, t->real, rs + 3u * (uint32_t)c), b);
        d_loss(t, LOSS_ON_REAL, rs + 3u * (uint32_t)c, st + TS_LOSS_REAL, yr);
        net_backward(&m->D, &cr, t->dlogit, NULL, b);

        draw_z(t, c);
        nn_ctx_t cg = pass_ctx(t, &m->G, rs + 3u * (uint32_t)c + 2u, 0);
        fake = net_forward(&m->G, &cg, t->z, b);
        nn_ctx_t cf = pass_ctx(t, &m->D, rs + 3u * (uint32_t)c + 1u, 0);
        const float *yf = net_forward(&m->D, &cf, d_input(t, fake, rs + 3u * (uint32_t)c + 1u), b);
        d_loss(t, LOSS_ON_FAKE, rs + 3u * (uint32_t)c + 1u, st + TS_LOSS_FAKE, yf);
        /* R1, R2: on every reg_every-th D update, weighted by reg_every (lazy regularization) */
        int reg = (s->r1 > 0 || s->r2 > 0) && m->reg_steps % s->reg_every == 0;
        if (s->r1 > 0 || s->r2 > 0) m->reg_steps++;
        if (s->loss != LOSS_WGAN_GP && !reg) last_grad_pass(t, &cf, &m->D); /* else a penalty's pass is last */
        net_backward(&m->D, &cf, t->dlogit, NULL, b);
        if (s->loss == LOSS_WGAN_GP)
            gradient_penalty(t, c, fake, rs + 3u * (uint32_t)c + 1u, rs + 3u * (uint32_t)c + 2u);
        if (reg && s->r1 > 0) reg_penalty(t, t->real, s->r1 * s->reg_every, TS_R1, rs + 3u * (uint32_t)c);
        if (reg && s->r2 > 0) reg_penalty(t, fake, s->r2 * s->reg_every, TS_R2, rs + 3u * (uint32_t)c + 1u);
        if (t->dist) { /* the rest of D's gradients, with the losses and mean outputs on real and
                          fake and the penalties riding on them */
            int first[] = {TS_LOSS_REAL, TS_GP, TS_R1}, count[] = {4, 1, 2}, k = 1;
            if (s->loss == LOSS_WGAN_GP) k = 2;
            if (reg) first[k] = TS_R1, count[k++] = 2;
            ddp_finish(&t->ddp, m->D.grads, m->D.n_params, st, first, count, k);
        }

        /* The step zeroes the gradients as it reads them (so the next net_zero_grad has nothing to
         * do), unless an observer watches: lib/gan/inspect.c reads them after the step. It also
         * logs their sum of squares and whether the weights it leaves are finite (the sumsq and
         * nonfinite ops' bits, without their passes); clipped weights are checked after the clip. */
        ddp_step(&t->ddp, &m->opt_D, m->D.params, m->D.grads, gan_lr_factor(&s->lr_sched_d, m->step), !m->D.observer,
                 st + TS_SUMSQ_D, s->clip > 0 ? NULL : st + TS_BAD_D);
        if (!m->D.observer) net_grads_zeroed(&m->D);
        if (s->clip > 0) {
            be->clip(be, m->D.params, (float)s->clip, m->D.n_params);
            be->nonfinite(be, st + TS_BAD_D, m->D.params, m->D.n_params);
        }
        be->train_stats(be, st, s->loss == LOSS_WGAN_GP ? TS_AFTER_D_GP : TS_AFTER_D, stepno);
    }

    /* G update through D on the last fake batch (still G's output buffer) */
    net_zero_grad(&m->G);
    nn_ctx_t cd = pass_ctx(t, &m->D, rs + 15u, 0);
    cd.skip_param_grads = 1; /* only the gradient into the fake images is wanted */
    const float *y = net_forward(&m->D, &cd, d_input(t, fake, rs + 15u), b);
    be->loss(be, s->loss, s->label_smooth, LOSS_G, t->dlogit, st + TS_LOSS_G, y, b, B);
    net_backward(&m->D, &cd, t->dlogit, t->aug.policy ? t->aug_dx : t->dfake, b);
    if (t->aug.policy) diffaug_map(&t->aug, be, DIFFAUG_ADJOINT, t->dfake, t->aug_dx, b);
    nn_ctx_t cg = pass_ctx(t, &m->G, rs + 3u * (uint32_t)(s->n_critic - 1) + 2u, 0);
    last_grad_pass(t, &cg, &m->G);
    net_backward(&m->G, &cg, t->dfake, NULL, b);
    if (t->dist) {
        int first = TS_LOSS_G, count = 2;
        ddp_finish(&t->ddp, m->G.grads, m->G.n_params, st, &first, &count, 1);
    }
    ddp_step(&t->ddp, &m->opt_G, m->G.params, m->G.grads, gan_lr_factor(&s->lr_sched_g, m->step), !m->G.observer,
             st + TS_SUMSQ_G, st + TS_BAD_G);
    if (!m->G.observer) net_grads_zeroed(&m->G);
    if (m->G_ema) be->ema(be, m->G_ema, m->G.params, (float)s->ema, m->G.n_params);
    be->train_stats(be, st, TS_AFTER_G, stepno);
    if (graph) be->graph_end(be);
    m->step++;
    return 0;
}

int trainer_check(trainer_t *t) {
    double bad[3];
    t->be->download(t->be, bad, t->stats + TS_BAD_STEP, sizeof bad);
    t->last_check = gt_seconds();
    if (bad[0] == 0) return 0;
    long long stepno = (long long)bad[0];
    switch ((int)bad[1]) {
    case TS_BAD_D_LOSS: return gt_err("step %lld: D's loss is %g; stopping", stepno, bad[2]);
    case TS_BAD_D_WEIGHTS: return gt_err("step %lld: D's weights are no longer finite; stopping", stepno);
    case TS_BAD_G_LOSS: return gt_err("step %lld: G's loss is %g; stopping", stepno, bad[2]);
    default: return gt_err("step %lld: G's weights are no longer finite; stopping", stepno);
    }
}

static void figures(train_stats_t *s, const double *v) {
    s->loss_d = v[0];
    s->loss_g = v[1];
    s->d_real = v[2];
    s->d_fake = v[3];
    s->gp = v[4];
    s->gnorm_g = v[5];
    s->gnorm_d = v[6];
}

void trainer_stats(trainer_t *t, train_stats_t *last, train_stats_t *mean, int64_t *count) {
    double v[TS_COUNT];
    t->be->download(t->be, v, t->stats, sizeof v);
    if (last) figures(last, v + TS_LAST);
    if (mean) {
        double n = v[TS_SUM_N], avg[TS_FIGURES];
        for (int k = 0; k < TS_FIGURES; k++) avg[k] = n > 0 ? v[TS_SUM + k] / n : 0;
        figures(mean, avg);
        if (count) *count = (int64_t)n;
        t->be->zero(t->be, t->stats + TS_SUM, sizeof(double) * (TS_FIGURES + 1));
    }
}

void trainer_sync_state(trainer_t *t) {
    ddp_gather_state(&t->ddp, &t->m->opt_D);
    ddp_gather_state(&t->ddp, &t->m->opt_G);
}

int train_loop(trainer_t *t, int64_t until_step, volatile sig_atomic_t *stop, int (*after_step)(void *arg),
               void *arg) {
    int every_step = t->be->device == DEV_CPU;
    while (t->m->step < until_step) {
        if (train_step(t)) return -1;
        if ((every_step || gt_seconds() - t->last_check >= 1.0) && trainer_check(t)) return -1;
        for (int k = 0; k < 2; k++)
            if (t->sharded && t->state_every[k] > 0 && t->m->step % t->state_every[k] == 0) {
                trainer_sync_state(t);
                break;
            }
        int leave = after_step && after_step(arg);
        if (t->dist) { /* every process leaves after the same step */
            int v[2] = {stop ? (int)*stop : 0, leave};
            dist_max(t->dist, v, 2);
            if (stop) *stop = v[0];
            leave = v[1];
        }
        if (leave) break;
        if (stop && *stop) break;
    }
    return trainer_check(t);
}
