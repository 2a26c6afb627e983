/* model.c: the GAN model (model.h): settings and their text forms, creation, optimizers,
 * and the checkpoint (save/load in model_io.c's section below). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/common.h"
#include "model.h"

/* ---- settings ------------------------------------------------------------------------ */

static const char *const loss_names[LOSS_COUNT] = {"bce", "ns", "wgan", "wgan-gp", "hinge", "lsgan"};

int gan_loss_parse(const char *s, gan_loss_t *out) {
    for (int i = 0; i < LOSS_COUNT; i++)
        if (strcmp(s, loss_names[i]) == 0) {
            *out = (gan_loss_t)i;
            return 0;
        }
    return gt_err("unknown loss '%s' (bce, ns, wgan, wgan-gp, hinge, lsgan)", s);
}

const char *gan_loss_name(gan_loss_t l) { return l < LOSS_COUNT ? loss_names[l] : "?"; }

void gan_settings_default(gan_settings_t *s, gan_loss_t loss) {
    memset(s, 0, sizeof *s);
    s->loss = loss;
    const char *opt = "adam:lr=2e-4,b1=0.5,b2=0.999";
    s->n_critic = 1;
    s->gp = 10;
    s->batch = 64;
    if (loss == LOSS_WGAN) {
        opt = "rmsprop:lr=5e-5";
        s->n_critic = 5;
        s->clip = 0.01;
    } else if (loss == LOSS_WGAN_GP) {
        opt = "adam:lr=1e-4,b1=0,b2=0.9";
        s->n_critic = 5;
    }
    opt_conf_parse(opt, &s->opt_g);
    s->opt_d = s->opt_g;
}

static int parse_num(const char *s, double *v) {
    if (!*s) return -1;
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    if (*end || errno == ERANGE || !isfinite(*v)) return -1;
    return 0;
}

int opt_conf_parse(const char *text, opt_conf_t *c) {
    memset(c, 0, sizeof *c);
    char buf[256];
    if (strlen(text) >= sizeof buf) return gt_err("optimizer '%.40s...' is too long", text);
    strcpy(buf, text);
    char *colon = strchr(buf, ':');
    if (colon) *colon = 0;
    if (strcmp(buf, "adam") == 0) {
        c->kind = OPT_ADAM;
        c->lr = 1e-3, c->b1 = 0.9, c->b2 = 0.999, c->eps = 1e-8;
    } else if (strcmp(buf, "sgd") == 0) {
        c->kind = OPT_SGD;
        c->lr = 1e-3;
    } else if (strcmp(buf, "rmsprop") == 0) {
        c->kind = OPT_RMSPROP;
        c->lr = 1e-2, c->b1 = 0.99, c->eps = 1e-8;
    } else {
        return gt_err("unknown optimizer '%s' (adam, sgd, rmsprop)", buf);
    }
    const char *kind = buf;
    char *p = colon ? colon + 1 : NULL;
    while (p && *p) {
        char *comma = strchr(p, ',');
        if (comma) *comma = 0;
        char *eq = strchr(p, '=');
        double v = 0;
        if (eq) {
            *eq = 0;
            if (parse_num(eq + 1, &v)) return gt_err("%s: '%s' is not a number for '%s'", kind, eq + 1, p);
        }
        int flag = !eq;
        int ok = 1;
        if (strcmp(p, "lr") == 0 && !flag) c->lr = v;
        else if (strcmp(p, "wd") == 0 && !flag) c->wd = v;
        else if (strcmp(p, "weight_decay") == 0 && !flag) c->wd = v;
        else if (strcmp(p, "eps") == 0 && !flag && c->kind != OPT_SGD) c->eps = v;
        else if (strcmp(p, "b1") == 0 && !flag && c->kind == OPT_ADAM) c->b1 = v;
        else if (strcmp(p, "b2") == 0 && !flag && c->kind == OPT_ADAM) c->b2 = v;
        else if (strcmp(p, "alpha") == 0 && !flag && c->kind == OPT_RMSPROP) c->b1 = v;
        else if (strcmp(p, "momentum") == 0 && !flag && c->kind == OPT_SGD) c->b1 = v;
        else if (strcmp(p, "momentum") == 0 && !flag && c->kind == OPT_RMSPROP) c->momentum = v;
        else if (strcmp(p, "nesterov") == 0 && c->kind == OPT_SGD) c->nesterov = flag ? 1 : v != 0;
        else if (strcmp(p, "centered") == 0 && c->kind == OPT_RMSPROP) c->centered = flag ? 1 : v != 0;
        else ok = 0;
        if (!ok) return gt_err("%s: unknown setting '%s'", kind, p);
        p = comma ? comma + 1 : NULL;
    }
    if (!(c->lr > 0)) return gt_err("%s: lr must be positive", kind);
    if (c->wd < 0) return gt_err("%s: weight decay must not be negative", kind);
    if (c->kind == OPT_ADAM && (c->b1 < 0 || c->b1 >= 1 || c->b2 < 0 || c->b2 >= 1))
        return gt_err("adam: b1 and b2 must lie in [0, 1)");
    if (c->kind != OPT_SGD && !(c->eps > 0)) return gt_err("%s: eps must be positive", kind);
    if (c->kind == OPT_SGD && (c->b1 < 0 || c->b1 >= 1)) return gt_err("sgd: momentum must lie in [0, 1)");
    if (c->kind == OPT_SGD && c->nesterov && c->b1 == 0) return gt_err("sgd: nesterov needs a momentum");
    if (c->kind == OPT_RMSPROP && (c->b1 < 0 || c->b1 >= 1)) return gt_err("rmsprop: alpha must lie in [0, 1)");
    if (c->kind == OPT_RMSPROP && (c->momentum < 0 || c->momentum >= 1))
        return gt_err("rmsprop: momentum must lie in [0, 1)");
    return 0;
}

void opt_conf_format(const opt_conf_t *c, char *buf, size_t n) {
    switch (c->kind) {
    case OPT_ADAM:
        snprintf(buf, n, "adam:lr=%.9g,b1=%.9g,b2=%.9g,eps=%.9g,wd=%.9g", c->lr, c->b1, c->b2, c->eps, c->wd);
        break;
    case OPT_SGD:
        snprintf(buf, n, "sgd:lr=%.9g,momentum=%.9g,wd=%.9g%s", c->lr, c->b1, c->wd, c->nesterov ? ",nesterov" : "");
        break;
    case OPT_RMSPROP:
        snprintf(buf, n, "rmsprop:lr=%.9g,alpha=%.9g,eps=%.9g,momentum=%.9g,wd=%.9g%s", c->lr, c->b1, c->eps,
                 c->momentum, c->wd, c->centered ? ",centered" : "");
        break;
    }
}

int gan_settings_check(const gan_settings_t *s) {
    if (s->loss >= LOSS_COUNT) return gt_err("unknown loss");
    if (s->n_critic < 1 || s->n_critic > GAN_MAX_CRITIC)
        return gt_err("n_critic %d is out of range [1, %d]", s->n_critic, GAN_MAX_CRITIC);
    if (!(s->gp >= 0) || !isfinite(s->gp)) return gt_err("gradient-penalty weight must be >= 0");
    if (!(s->clip >= 0) || !isfinite(s->clip)) return gt_err("clip must be >= 0");
    if (!(s->label_smooth >= 0 && s->label_smooth < 1)) return gt_err("label smoothing must lie in [0, 1)");
    if (!(s->ema >= 0 && s->ema < 1)) return gt_err("EMA decay must lie in [0, 1)");
    if (s->batch < 1 || s->batch > 65536) return gt_err("batch %d is out of range [1, 65536]", s->batch);
    return 0;
}

int shape3_parse(const char *s, shape3_t *out) {
    int v[3], k = 0;
    const char *p = s;
    while (k < 3) {
        if (*p < '0' || *p > '9') break;
        long x = 0;
        while (*p >= '0' && *p <= '9') {
            x = x * 10 + (*p++ - '0');
            if (x > 1 << 20) return gt_err("shape '%s': a dimension is too large", s);
        }
        if (x <= 0) return gt_err("shape '%s': dimensions must be positive", s);
        v[k++] = (int)x;
        if (k < 3) {
            if (*p != 'x') break;
            p++;
        }
    }
    if (k != 3 || *p) return gt_err("shape '%s' is not CxHxW (e.g. 1x28x28)", s);
    out->c = v[0], out->h = v[1], out->w = v[2];
    return 0;
}

/* ---- optimizers ----------------------------------------------------------------------- */

static float *dev_zeros(backend_t *be, size_t n) {
    float *p = be->alloc(be, sizeof(float) * (n ? n : 1));
    be->zero(be, p, sizeof(float) * (n ? n : 1));
    return p;
}

static void optim_free(optim_state_t *o) {
    for (int j = 0; j < 3; j++) {
        float **s = j == 0 ? &o->s1 : j == 1 ? &o->s2 : &o->s3;
        if (*s) o->be->free(o->be, *s);
        *s = NULL;
    }
}

/* Fresh state for conf over n parameters on be: the buffers the settings use, zeroed, t = 0. */
static void optim_init(optim_state_t *o, backend_t *be, const opt_conf_t *c, size_t n) {
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
void optim_step(optim_state_t *o, float *p, const float *g) {
    const opt_conf_t *c = &o->conf;
    o->t++;
    opt_step_t k = opt_step_make(c->kind, c->lr, c->b1, c->b2, c->eps, c->wd, c->momentum, c->nesterov, c->centered,
                                 o->t);
    o->be->optim(o->be, &k, p, g, o->s1, o->s2, o->s3, o->n);
}

/* ---- life cycle ---------------------------------------------------------------------- */

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

static int build_nets(gan_model_t *m, const char *g_spec, const char *d_spec, int max_batch) {
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
    if (net_alloc(&m->G, max_batch) || net_alloc(&m->D, max_batch)) return -1;
    return 0;
}

void model_set_opt(gan_model_t *m, int which_d, const opt_conf_t *c) {
    optim_state_t *o = which_d ? &m->opt_D : &m->opt_G;
    net_t *n = which_d ? &m->D : &m->G;
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
    optim_init(o, m->be, c, n->n_params);
}

void model_set_ema(gan_model_t *m, double decay) {
    backend_t *be = m->be;
    m->set.ema = decay;
    if (decay == 0) {
        if (m->G_ema) be->free(be, m->G_ema);
        m->G_ema = NULL;
    } else if (!m->G_ema) {
        m->G_ema = dev_zeros(be, m->G.n_params);
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
    if (build_nets(m, g_spec, d_spec, max_batch > 0 ? max_batch : s->batch)) {
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
    if (m->opt_G.be) optim_free(&m->opt_G);
    if (m->opt_D.be) optim_free(&m->opt_D);
    net_free(&m->G);
    net_free(&m->D);
    memset(m, 0, sizeof *m);
}

/* ---- checkpoint ------------------------------------------------------------------------ *
 * A safetensors file (formats/safetensors.h does the format and its validation).
 * Tensors, in this order (net tensor names are torch.nn.Sequential's, net.h):
 *   G.<i>.weight, G.<i>.bias, G.<i>.running_mean, G.<i>.running_var, G.<i>.num_batches_tracked
 *   D.<...>                        likewise
 *   G_ema.<i>.weight, ...          EMA of G's parameters (only when ema > 0)
 *   opt_G.<buffer>, opt_D.<buffer> flat F32 vectors over the net's parameters in parameter
 *                                  order (the order of the G.* / D.* weight and bias tensors):
 *                                  adam exp_avg, exp_avg_sq; sgd momentum_buffer (momentum > 0);
 *                                  rmsprop square_avg, momentum_buffer (momentum > 0),
 *                                  grad_avg (centered)
 * Metadata: see write_meta. Numbers are written so that they read back exactly. */

#include "formats/safetensors.h"

/* Shortest of %.15g/%.16g/%.17g that reads back as the same double. */
static void fmt_double(char *buf, size_t n, double v) {
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

static const char *opt_buf_name(opt_kind_t k, int j) {
    static const char *adam[3] = {"exp_avg", "exp_avg_sq", NULL};
    static const char *sgd[3] = {"momentum_buffer", NULL, NULL};
    static const char *rms[3] = {"square_avg", "momentum_buffer", "grad_avg"};
    return k == OPT_ADAM ? adam[j] : k == OPT_SGD ? sgd[j] : rms[j];
}

static float *opt_buf(const optim_state_t *o, int j) { return j == 0 ? o->s1 : j == 1 ? o->s2 : o->s3; }

/* The tensors of a model, in file order. */
typedef struct {
    char name[48];
    int is_i64;         /* num_batches_tracked: a host counter; every float tensor is device memory */
    const void *data;
    size_t count;
    int ndim;
    int64_t shape[4];
} ck_tensor_t;

static int ck_list(const gan_model_t *m, ck_tensor_t **out) {
    int cap = net_n_tensors(&m->G) * 2 + net_n_tensors(&m->D) + 8, k = 0;
    ck_tensor_t *v = gt_xcalloc((size_t)cap, sizeof *v);
    for (int which = 0; which < 3; which++) {
        const net_t *n = which == 1 ? &m->D : &m->G;
        if (which == 2 && !m->G_ema) break;
        const char *pre = which == 0 ? "G" : which == 1 ? "D" : "G_ema";
        for (int j = 0; j < net_n_tensors(n); j++) {
            net_tensor_t nt;
            net_tensor(n, j, &nt);
            if (which == 2 && !nt.is_param) continue;
            ck_tensor_t *c = &v[k++];
            snprintf(c->name, sizeof c->name, "%s.%s", pre, nt.name);
            c->is_i64 = nt.i64 != NULL;
            c->data = nt.i64 ? (const void *)nt.i64 : (const void *)nt.data;
            if (which == 2) c->data = m->G_ema + (nt.data - m->G.params);
            c->count = nt.count;
            c->ndim = nt.ndim;
            memcpy(c->shape, nt.shape, sizeof c->shape);
        }
    }
    for (int which = 0; which < 2; which++) {
        const optim_state_t *o = which ? &m->opt_D : &m->opt_G;
        for (int j = 0; j < 3; j++) {
            if (!opt_buf(o, j)) continue;
            ck_tensor_t *c = &v[k++];
            snprintf(c->name, sizeof c->name, "opt_%s.%s", which ? "D" : "G", opt_buf_name(o->conf.kind, j));
            c->data = opt_buf(o, j);
            c->count = o->n;
            c->ndim = 1;
            c->shape[0] = (int64_t)o->n;
        }
    }
    *out = v;
    return k;
}

static void meta_add(st_writer_t *meta, const char *key, const char *val) { st_writer_meta(meta, key, val); }
static void meta_num(st_writer_t *meta, const char *key, double v) {
    char b[40];
    fmt_double(b, sizeof b, v);
    meta_add(meta, key, b);
}
static void meta_int(st_writer_t *meta, const char *key, long long v) {
    char b[32];
    snprintf(b, sizeof b, "%lld", v);
    meta_add(meta, key, b);
}
static void opt_text(const opt_conf_t *c, char *buf, size_t n) {
    char lr[40], a[40], b[40], e[40], w[40], mo[40];
    fmt_double(lr, sizeof lr, c->lr);
    fmt_double(a, sizeof a, c->b1);
    fmt_double(b, sizeof b, c->b2);
    fmt_double(e, sizeof e, c->eps);
    fmt_double(w, sizeof w, c->wd);
    fmt_double(mo, sizeof mo, c->momentum);
    switch (c->kind) {
    case OPT_ADAM: snprintf(buf, n, "adam:lr=%s,b1=%s,b2=%s,eps=%s,wd=%s", lr, a, b, e, w); break;
    case OPT_SGD: snprintf(buf, n, "sgd:lr=%s,momentum=%s,wd=%s%s", lr, a, w, c->nesterov ? ",nesterov" : ""); break;
    case OPT_RMSPROP:
        snprintf(buf, n, "rmsprop:lr=%s,alpha=%s,eps=%s,momentum=%s,wd=%s%s", lr, a, e, mo, w,
                 c->centered ? ",centered" : "");
        break;
    }
}

static void write_meta(const gan_model_t *m, st_writer_t *meta) {
    char b[512];
    meta_add(meta, "format", "gan-tools-checkpoint");
    meta_add(meta, "version", "1");
    meta_add(meta, "G_spec", m->G.spec);
    meta_add(meta, "D_spec", m->D.spec);
    snprintf(b, sizeof b, "%dx%dx%d", m->shape.c, m->shape.h, m->shape.w);
    meta_add(meta, "shape", b);
    meta_int(meta, "z_dim", m->z_dim);
    if (m->classes) meta_int(meta, "classes", m->classes);
    meta_add(meta, "loss", gan_loss_name(m->set.loss));
    opt_text(&m->set.opt_g, b, sizeof b);
    meta_add(meta, "opt_G", b);
    opt_text(&m->set.opt_d, b, sizeof b);
    meta_add(meta, "opt_D", b);
    meta_int(meta, "opt_G_steps", (long long)m->opt_G.t);
    meta_int(meta, "opt_D_steps", (long long)m->opt_D.t);
    meta_int(meta, "n_critic", m->set.n_critic);
    meta_num(meta, "gp", m->set.gp);
    meta_num(meta, "clip", m->set.clip);
    meta_num(meta, "label_smooth", m->set.label_smooth);
    meta_num(meta, "ema", m->set.ema);
    meta_add(meta, "init", m->init == INIT_DCGAN ? "dcgan" : "torch");
    snprintf(b, sizeof b, "%llu", (unsigned long long)m->seed);
    meta_add(meta, "seed", b);
    meta_int(meta, "step", (long long)m->step);
    meta_int(meta, "epoch", (long long)m->epoch);
    meta_int(meta, "epoch_pos", (long long)m->epoch_pos);
    meta_int(meta, "data_n", (long long)m->data_n);
    meta_int(meta, "batch", m->set.batch);
}

int model_save(const gan_model_t *m, FILE *f) {
    ck_tensor_t *v;
    int k = ck_list(m, &v);
    /* the float tensors come from the device into one host buffer */
    size_t floats = 0;
    for (int i = 0; i < k; i++)
        if (!v[i].is_i64) floats += v[i].count;
    float *host = gt_xmalloc(sizeof(float) * (floats ? floats : 1)), *h = host;
    st_writer_t *w = st_writer_new();
    write_meta(m, w);
    int rc = 0;
    for (int i = 0; i < k && !rc; i++) {
        const void *data = v[i].data;
        if (!v[i].is_i64) {
            m->be->download(m->be, h, v[i].data, sizeof(float) * v[i].count);
            data = h;
            h += v[i].count;
        }
        rc = st_writer_add_raw(w, v[i].name, v[i].is_i64 ? DT_I64 : DT_F32, v[i].ndim, v[i].shape, data);
    }
    if (!rc) rc = st_writer_write(w, f);
    st_writer_free(w);
    free(host);
    free(v);
    return rc ? -1 : 0;
}

/* ---- load ---------------------------------------------------------------------------- */

static int read_all(const char *path, unsigned char **buf, size_t *len) {
    FILE *f = (!path || strcmp(path, "-") == 0) ? stdin : fopen(path, "rb");
    if (!f) return gt_err("%s", strerror(errno));
    size_t cap = 1 << 20, n = 0;
    unsigned char *b = gt_xmalloc(cap);
    for (;;) {
        if (n == cap) b = gt_xrealloc(b, cap *= 2);
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    int err = ferror(f);
    if (f != stdin) fclose(f);
    if (err) {
        free(b);
        return gt_err("read error");
    }
    *buf = b;
    *len = n;
    return 0;
}

static const char *meta_str(const st_file_t *meta, const char *key) { return st_meta_get(meta, key); }

static int meta_ll(const st_file_t *meta, const char *key, long long lo, long long hi, long long *out) {
    const char *s = meta_str(meta, key);
    if (!s) return gt_err("checkpoint metadata lacks '%s'", key);
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) return gt_err("checkpoint metadata '%s' = '%s' is invalid", key, s);
    *out = v;
    return 0;
}

static int meta_dbl(const st_file_t *meta, const char *key, double *out) {
    const char *s = meta_str(meta, key);
    if (!s) return gt_err("checkpoint metadata lacks '%s'", key);
    if (parse_num(s, out)) return gt_err("checkpoint metadata '%s' = '%s' is not a number", key, s);
    return 0;
}

static int load_meta(gan_model_t *m, const st_file_t *meta, const char **g_spec, const char **d_spec) {
    const char *s;
    long long v;
    if (!(s = meta_str(meta, "version")) || strcmp(s, "1") != 0)
        return gt_err("checkpoint version '%s' is not supported (this is version 1)", s ? s : "");
    if (!(*g_spec = meta_str(meta, "G_spec")) || !(*d_spec = meta_str(meta, "D_spec")))
        return gt_err("checkpoint metadata lacks G_spec or D_spec");
    if (!(s = meta_str(meta, "shape"))) return gt_err("checkpoint metadata lacks 'shape'");
    if (shape3_parse(s, &m->shape)) return -1;
    if (meta_ll(meta, "z_dim", 1, 1 << 20, &v)) return -1;
    m->z_dim = (int)v;
    if (!(s = meta_str(meta, "loss"))) return gt_err("checkpoint metadata lacks 'loss'");
    if (gan_loss_parse(s, &m->set.loss)) return -1;
    if (!(s = meta_str(meta, "opt_G")) || opt_conf_parse(s, &m->set.opt_g)) return gt_err_prefix("opt_G");
    if (!(s = meta_str(meta, "opt_D")) || opt_conf_parse(s, &m->set.opt_d)) return gt_err_prefix("opt_D");
    if (meta_ll(meta, "n_critic", 1, GAN_MAX_CRITIC, &v)) return -1;
    m->set.n_critic = (int)v;
    if (meta_dbl(meta, "gp", &m->set.gp) || meta_dbl(meta, "clip", &m->set.clip) ||
        meta_dbl(meta, "label_smooth", &m->set.label_smooth) || meta_dbl(meta, "ema", &m->set.ema))
        return -1;
    if (meta_ll(meta, "batch", 1, 65536, &v)) return -1;
    m->set.batch = (int)v;
    if (gan_settings_check(&m->set)) return -1;
    if (!(s = meta_str(meta, "init")) || (strcmp(s, "dcgan") && strcmp(s, "torch")))
        return gt_err("checkpoint metadata 'init' is missing or invalid");
    m->init = strcmp(s, "dcgan") == 0 ? INIT_DCGAN : INIT_TORCH;
    if (!(s = meta_str(meta, "seed"))) return gt_err("checkpoint metadata lacks 'seed'");
    char *end;
    errno = 0;
    unsigned long long seed = strtoull(s, &end, 10);
    if (!*s || *end || errno || *s == '-') return gt_err("checkpoint metadata 'seed' = '%s' is invalid", s);
    m->seed = seed;
    if (meta_ll(meta, "step", 0, UINT32_MAX / 16, &v)) return -1;
    m->step = v;
    if (meta_ll(meta, "epoch", 0, UINT32_MAX, &v)) return -1;
    m->epoch = v;
    if (meta_ll(meta, "epoch_pos", 0, INT64_MAX, &v)) return -1;
    m->epoch_pos = v;
    if (meta_ll(meta, "data_n", 0, INT64_MAX, &v)) return -1;
    m->data_n = v;
    if (m->epoch_pos > m->data_n) return gt_err("checkpoint metadata: epoch_pos beyond data_n");
    return 0;
}

/* Check that the file's tensor is there with the dtype and shape the model gives. */
static const st_entry_t *ck_find(const st_file_t *f, const ck_tensor_t *want) {
    const st_entry_t *e = st_find(f, want->name);
    if (!e) {
        gt_err("checkpoint lacks tensor '%s'", want->name);
        return NULL;
    }
    dtype_t wdt = want->is_i64 ? DT_I64 : DT_F32;
    if (e->t.dtype != wdt) {
        gt_err("tensor '%s' has dtype %s, expected %s", want->name, st_dtype_str(e->t.dtype), st_dtype_str(wdt));
        return NULL;
    }
    int ok = e->t.ndim == want->ndim;
    for (int d = 0; ok && d < want->ndim; d++) ok = e->t.shape[d] == want->shape[d];
    if (!ok) {
        char ws[64] = "", fs[64];
        for (int d = 0; d < want->ndim; d++)
            snprintf(ws + strlen(ws), sizeof ws - strlen(ws), "%s%lld", d ? "x" : "", (long long)want->shape[d]);
        tensor_shape_str(&e->t, fs, sizeof fs);
        gt_err("tensor '%s' has shape %s, but the spec gives %s", want->name, fs, ws);
        return NULL;
    }
    return e;
}

static int load_body(gan_model_t *m, const unsigned char *buf, size_t len, backend_t *be, int max_batch) {
    if (len >= 6 && memcmp(buf, "\x93NUMPY", 6) == 0) return gt_err("this is a .npy file, not a checkpoint");
    if (len == 0) return gt_err("empty input: not a checkpoint");
    st_file_t f;
    if (st_parse(buf, len, &f)) {
        char why[512];
        snprintf(why, sizeof why, "%s", gt_errmsg());
        return gt_err("not a valid checkpoint: %s", why);
    }
    int rc = -1;
    const char *g_spec = NULL, *d_spec = NULL, *fmt = st_meta_get(&f, "format");
    if (!fmt || strcmp(fmt, "gan-tools-checkpoint") != 0) {
        gt_err("a safetensors file but not a gan-tools checkpoint (no __metadata__ format 'gan-tools-checkpoint')");
        goto out;
    }
    if (load_meta(m, &f, &g_spec, &d_spec)) goto out;
    m->be = be;
    if (build_nets(m, g_spec, d_spec, max_batch > 0 ? max_batch : m->set.batch)) goto out;
    long long nk = 0;
    if (st_meta_get(&f, "classes") && meta_ll(&f, "classes", 1, 1000000, &nk)) goto out;
    if (nk != m->classes) {
        gt_err("checkpoint metadata 'classes' is %lld but its layers have %d classes", nk, m->classes);
        goto out;
    }
    double ema = m->set.ema;
    m->set.ema = 0;
    model_set_ema(m, ema);
    optim_init(&m->opt_G, be, &m->set.opt_g, m->G.n_params);
    optim_init(&m->opt_D, be, &m->set.opt_d, m->D.n_params);
    long long v;
    if (meta_ll(&f, "opt_G_steps", 0, INT64_MAX, &v)) goto out;
    m->opt_G.t = v;
    if (meta_ll(&f, "opt_D_steps", 0, INT64_MAX, &v)) goto out;
    m->opt_D.t = v;

    ck_tensor_t *list;
    int k = ck_list(m, &list);
    for (int i = 0; i < k; i++) {
        const st_entry_t *e = ck_find(&f, &list[i]);
        if (!e) {
            free(list);
            goto out;
        }
        if (list[i].is_i64) memcpy((void *)list[i].data, e->t.data, list[i].count * 8);
        else be->upload(be, (void *)list[i].data, e->t.data, list[i].count * sizeof(float));
    }
    free(list);
    if (f.n != k) {
        gt_err("checkpoint has %d tensors that this model does not use", f.n - k);
        goto out;
    }
    rc = 0;
out:
    st_free(&f);
    return rc;
}

int model_load(gan_model_t *m, const char *path, backend_t *be, int max_batch) {
    memset(m, 0, sizeof *m);
    const char *name = (!path || strcmp(path, "-") == 0) ? "stdin" : path;
    unsigned char *buf = NULL;
    size_t len = 0;
    if (read_all(path, &buf, &len)) return gt_err_prefix(name);
    int rc = load_body(m, buf, len, be, max_batch);
    free(buf);
    if (rc) {
        gt_err_prefix(name);
        model_free(m);
    }
    return rc;
}

/* ---- backend -------------------------------------------------------------------------- */

static char backend_note[320];
static int backend_noted;

backend_t *gan_backend(const char *device, int threads) {
    backend_noted = 0;
    if (strcmp(device, "cpu") == 0) return backend_cpu(threads);
    if (strcmp(device, "cuda") == 0) {
        backend_t *be = backend_cuda();
        if (!be) {
            char why[256];
            snprintf(why, sizeof why, "%s", gt_errmsg());
            gt_err("--device cuda: %s", why);
        }
        return be;
    }
    if (strcmp(device, "auto") == 0) {
#ifdef GT_HAVE_CUDA
        backend_t *be = backend_cuda();
        backend_noted = 1;
        if (be) {
            snprintf(backend_note, sizeof backend_note, "device cuda: %s", be->description);
            return be;
        }
        char why[256];
        snprintf(why, sizeof why, "%s", gt_errmsg());
        snprintf(backend_note, sizeof backend_note, "device cpu: %s", why);
#endif
        return backend_cpu(threads);
    }
    gt_err("--device: unknown device '%s' (cpu, cuda, auto)", device);
    return NULL;
}

const char *gan_backend_note(void) { return backend_noted ? backend_note : NULL; }
