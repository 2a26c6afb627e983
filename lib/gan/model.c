/* model.c: a GAN model's life cycle (model.h): creation from specs, its optimizers' and EMA's
 * settings, and release. Its checkpoint is read and written in checkpoint.c. */
#include <string.h>

#include "lib/base/common.h"
#include "model.h"

int net_classes(const net_t *n, int *k) {
    *k = 0;
    int first = -1;
    for (int i = 0; i < n->n_layers; i++) {
        const layer_t *l = &n->layers[i];
        if (l->classes <= 0) continue;
        if (first < 0) {
            first = i;
            *k = l->classes;
        } else if (l->classes != *k) {
            return gt_err("layer %d (%s) has %d classes but layer %d (%s) has %d", i + 1, l->ops->name, l->classes,
                          first + 1, n->layers[first].ops->name, *k);
        }
    }
    return 0;
}

int model_build(gan_model_t *m, const char *g_spec, const char *d_spec, int max_batch) {
    shape3_t zin = {m->z_dim, 1, 1};
    if (net_build(&m->G, g_spec, zin, m->be)) return gt_err_prefix("G");
    if (net_check_output(&m->G, m->shape)) return gt_err_prefix("G");
    if (net_build(&m->D, d_spec, m->shape, m->be)) return gt_err_prefix("D");
    if (shape3_size(m->D.out) != 1)
        return gt_err("D: output is %dx%dx%d, expected a single logit (end D with 'linear 1')", m->D.out.c,
                      m->D.out.h, m->D.out.w);
    int kg, kd;
    if (net_classes(&m->G, &kg)) return gt_err_prefix("G");
    if (net_classes(&m->D, &kd)) return gt_err_prefix("D");
    if (kg && kd && kg != kd) return gt_err("G has %d classes but D has %d", kg, kd);
    m->classes = kg ? kg : kd;
    if (m->set.loss == LOSS_WGAN_GP && net_jvp_ok(&m->D)) return gt_err_prefix("D (wgan-gp)");
    if ((m->set.r1 > 0 || m->set.r2 > 0) && net_jvp_ok(&m->D)) return gt_err_prefix("D (r1/r2)");
    if (net_alloc(&m->G, max_batch) || net_alloc(&m->D, max_batch)) return -1;
    return 0;
}

void model_set_opt(gan_model_t *m, int which_d, const opt_conf_t *c) {
    if (which_d) optim_set(&m->opt_D, m->be, c, m->D.n_params);
    else optim_set(&m->opt_G, m->be, c, m->G.n_params);
}

void model_set_ema(gan_model_t *m, double decay) {
    backend_t *be = m->be;
    m->set.ema = decay;
    if (decay == 0) {
        if (m->G_ema) be->free(be, m->G_ema);
        m->G_ema = NULL;
    } else if (!m->G_ema) {
        m->G_ema = be->alloc(be, sizeof(float) * (m->G.n_params ? m->G.n_params : 1));
        be->copy(be, m->G_ema, m->G.params, sizeof(float) * m->G.n_params);
    }
}

int model_new(gan_model_t *m, const char *g_spec, const char *d_spec, shape3_t shape, int z_dim,
              const gan_settings_t *s, int init, uint64_t seed, backend_t *be, int max_batch) {
    memset(m, 0, sizeof *m);
    if (gan_settings_check(s)) return -1;
    if (z_dim < 1) return gt_err("latent size must be positive");
    m->set = *s;
    m->shape = shape;
    m->z_dim = z_dim;
    m->init = init;
    m->seed = seed;
    m->be = be;
    if (model_build(m, g_spec, d_spec, max_batch > 0 ? max_batch : s->batch)) {
        model_free(m);
        return -1;
    }
    net_init(&m->G, (init_mode_t)init, seed);
    net_init(&m->D, (init_mode_t)init, seed ^ GAN_D_SEED_XOR);
    model_set_opt(m, 0, &s->opt_g);
    model_set_opt(m, 1, &s->opt_d);
    m->set.ema = 0;
    model_set_ema(m, s->ema);
    return 0;
}

void model_free(gan_model_t *m) {
    if (m->G_ema) m->be->free(m->be, m->G_ema);
    optim_free(&m->opt_G);
    optim_free(&m->opt_D);
    net_free(&m->G);
    net_free(&m->D);
    memset(m, 0, sizeof *m);
}
