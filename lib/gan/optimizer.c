/* optimizer.c: optimizer state and steps (optimizer.h). */
#include <stdlib.h>

#include "optimizer.h"

static float *dev_zeros(backend_t *be, size_t n) {
    float *p = be->alloc(be, sizeof(float) * (n ? n : 1));
    be->zero(be, p, sizeof(float) * (n ? n : 1));
    return p;
}

void optim_free(optim_state_t *o) {
    for (int j = 0; j < 3; j++) {
        float **s = j == 0 ? &o->s1 : j == 1 ? &o->s2 : &o->s3;
        if (*s) o->be->free(o->be, *s);
        *s = NULL;
    }
}

void optim_init(optim_state_t *o, backend_t *be, const opt_conf_t *c, size_t n) {
    optim_free(o);
    o->be = be;
    o->conf = *c;
    o->n = n;
    o->t = 0;
    if (c->kind == OPT_ADAM) {
        o->s1 = dev_zeros(be, n);
        o->s2 = dev_zeros(be, n);
    } else if (c->kind == OPT_SGD) {
        if (c->b1 != 0) o->s1 = dev_zeros(be, n);
    } else {
        o->s1 = dev_zeros(be, n);
        if (c->momentum != 0) o->s2 = dev_zeros(be, n);
        if (c->centered) o->s3 = dev_zeros(be, n);
    }
}

/* torch.optim (1.13, single-tensor path) formulas, element by element in float32 (opt_math.h).
 * As in torch, each scalar is rounded to float once from the double setting: beta2 and
 * (1 - beta2) are both rounded from double (torch passes the Python float 1 - beta2; computing
 * 1 - (float)0.999 in float instead gives 9.9998713e-4, an error of 1.3e-5 in every exp_avg_sq). */
void optim_step(optim_state_t *o, float *p, const float *g) { optim_step_lr(o, p, (float *)g, 1.0, 0, NULL, NULL); }

/* the step over elements [lo, hi) with figures fig */
static void step_range(optim_state_t *o, float *p, float *g, size_t lo, size_t hi, double factor, int zero_g,
                       struct opt_figures fig) {
    const opt_conf_t *c = &o->conf;
    o->t++;
    opt_step_t k = opt_step_make(c->kind, c->lr * factor, c->b1, c->b2, c->eps, c->wd, c->momentum, c->nesterov, c->centered,
                                 o->t);
    k.zero_g = zero_g;
    k.fig = fig;
    o->be->optim(o->be, &k, p + lo, g + lo, o->s1 ? o->s1 + lo : NULL, o->s2 ? o->s2 + lo : NULL,
                 o->s3 ? o->s3 + lo : NULL, hi - lo);
}

void optim_step_lr(optim_state_t *o, float *p, float *g, double factor, int zero_g, double *sumsq, double *bad) {
    struct opt_figures fig = {sumsq, bad, NULL};
    step_range(o, p, g, 0, o->n, factor, zero_g, fig);
}

void optim_step_slice(optim_state_t *o, float *p, float *g, size_t lo, size_t hi, double factor, int zero_g,
                      double *parts) {
    struct opt_figures fig = {NULL, NULL, parts};
    step_range(o, p, g, lo, hi, factor, zero_g, fig);
}

void optim_set(optim_state_t *o, backend_t *be, const opt_conf_t *c, size_t n) {
    opt_conf_t old = o->conf;
    if (o->s1 || o->s2 || o->s3 || o->n) {
        int same_kind = old.kind == c->kind && (c->kind != OPT_RMSPROP || ((old.momentum != 0) == (c->momentum != 0) &&
                                                                           old.centered == c->centered)) &&
                        (c->kind != OPT_SGD || (old.b1 != 0) == (c->b1 != 0));
        if (same_kind) {
            o->conf = *c;
            return;
        }
    }
    optim_init(o, be, c, n);
}

float *optim_buffer(const optim_state_t *o, int j, const char **name) {
    static const char *adam[3] = {"exp_avg", "exp_avg_sq", NULL};
    static const char *sgd[3] = {"momentum_buffer", NULL, NULL};
    static const char *rms[3] = {"square_avg", "momentum_buffer", "grad_avg"};
    *name = o->conf.kind == OPT_ADAM ? adam[j] : o->conf.kind == OPT_SGD ? sgd[j] : rms[j];
    return j == 0 ? o->s1 : j == 1 ? o->s2 : o->s3;
}
