/* checkpoint.c: a GAN model's checkpoint (model_save, model_load in model.h; the schema for
 * users is in cmd/gan-init.md, "CHECKPOINT").
 *
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
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/bytesrc.h"
#include "formats/safetensors.h"
#include "lib/base/common.h"
#include "model.h"

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
            const char *name;
            float *buf = optim_buffer(o, j, &name);
            if (!buf) continue;
            ck_tensor_t *c = &v[k++];
            snprintf(c->name, sizeof c->name, "opt_%s.%s", which ? "D" : "G", name);
            c->data = buf;
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
    gt_format_exact(b, sizeof b, v, 15, 0); /* at least 15 digits: gp 10 is "10" */
    meta_add(meta, key, b);
}
static void meta_int(st_writer_t *meta, const char *key, long long v) {
    char b[32];
    snprintf(b, sizeof b, "%lld", v);
    meta_add(meta, key, b);
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
    opt_conf_text(&m->set.opt_g, b, sizeof b);
    meta_add(meta, "opt_G", b);
    opt_conf_text(&m->set.opt_d, b, sizeof b);
    meta_add(meta, "opt_D", b);
    meta_int(meta, "opt_G_steps", (long long)m->opt_G.t);
    meta_int(meta, "opt_D_steps", (long long)m->opt_D.t);
    meta_int(meta, "n_critic", m->set.n_critic);
    meta_num(meta, "gp", m->set.gp);
    meta_num(meta, "clip", m->set.clip);
    meta_num(meta, "label_smooth", m->set.label_smooth);
    meta_num(meta, "ema", m->set.ema);
    if (m->set.augment) { /* absent means none, so files without augmentation stay as they were */
        gan_augment_text(m->set.augment, b, sizeof b);
        meta_add(meta, "augment", b);
    }
    gan_settings_t d;
    gan_settings_default(&d, m->set.loss);
    for (int k = GAN_SET_FIRST_OPTIONAL; k < GAN_SET_COUNT; k++) { /* r1, r2, reg_every: when not the default */
        double v = gan_setting_get(&m->set, (gan_setting_k)k);
        if (v == gan_setting_get(&d, (gan_setting_k)k)) continue;
        if (gan_setting_ranges[k].integer) meta_int(meta, gan_setting_ranges[k].name, (long long)v);
        else meta_num(meta, gan_setting_ranges[k].name, v);
    }
    for (int i = 0; i < 2; i++) { /* learning-rate schedules: when not constant */
        const lr_sched_t *l = i ? &m->set.lr_sched_d : &m->set.lr_sched_g;
        if (l->kind == LR_CONSTANT) continue;
        lr_sched_text(l, b, sizeof b);
        meta_add(meta, i ? "lr_schedule_D" : "lr_schedule_G", b);
    }
    meta_add(meta, "init", m->init == INIT_DCGAN ? "dcgan" : "torch");
    snprintf(b, sizeof b, "%llu", (unsigned long long)m->seed);
    meta_add(meta, "seed", b);
    meta_int(meta, "step", (long long)m->step);
    meta_int(meta, "epoch", (long long)m->epoch);
    meta_int(meta, "epoch_pos", (long long)m->epoch_pos);
    meta_int(meta, "data_n", (long long)m->data_n);
    if (m->reg_steps) meta_int(meta, "reg_steps", (long long)m->reg_steps);
    meta_int(meta, "batch", m->set.batch);
}

int model_save(const gan_model_t *m, FILE *f) { return model_save_extra(m, f, 0, NULL, NULL); }

int model_save_extra(const gan_model_t *m, FILE *f, int n_extra, const char *const *keys, const char *const *vals) {
    ck_tensor_t *v;
    int k = ck_list(m, &v);
    /* the float tensors come from the device into one host buffer */
    size_t floats = 0;
    for (int i = 0; i < k; i++)
        if (!v[i].is_i64) floats += v[i].count;
    float *host = gt_xmalloc(sizeof(float) * (floats ? floats : 1)), *h = host;
    st_writer_t *w = st_writer_new();
    write_meta(m, w);
    for (int i = 0; i < n_extra; i++) meta_add(w, keys[i], vals[i]);
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
    if (gan_parse_number(s, out)) return gt_err("checkpoint metadata '%s' = '%s' is not a number", key, s);
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
    gan_settings_t d;
    gan_settings_default(&d, m->set.loss);
    for (int k = 0; k < GAN_SET_COUNT; k++) { /* n_critic, gp, clip, label_smooth, ema, batch; optional: r1 ... */
        const cli_range_t *r = &gan_setting_ranges[k];
        double x;
        if (k >= GAN_SET_FIRST_OPTIONAL && !meta_str(meta, r->name)) {
            x = gan_setting_get(&d, (gan_setting_k)k);
        } else if (r->integer) {
            if (meta_ll(meta, r->name, (long long)r->lo, (long long)r->hi, &v)) return -1;
            x = (double)v;
        } else if (meta_dbl(meta, r->name, &x)) {
            return -1;
        }
        gan_setting_set(&m->set, (gan_setting_k)k, x);
    }
    m->set.augment = 0;
    if ((s = meta_str(meta, "augment")) && gan_augment_parse(s, &m->set.augment))
        return gt_err_prefix("checkpoint metadata 'augment'");
    for (int i = 0; i < 2; i++) {
        lr_sched_t *l = i ? &m->set.lr_sched_d : &m->set.lr_sched_g;
        const char *key = i ? "lr_schedule_D" : "lr_schedule_G";
        if (lr_sched_parse((s = meta_str(meta, key)) ? s : "constant", l)) return gt_err_prefix(key);
    }
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
    if (meta_str(meta, "reg_steps")) {
        if (meta_ll(meta, "reg_steps", 0, INT64_MAX, &v)) return -1;
        m->reg_steps = v;
    }
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
    if (model_build(m, g_spec, d_spec, max_batch > 0 ? max_batch : m->set.batch)) goto out;
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
    wholefile_t w;
    if (wholefile_load(path, &w)) return gt_err_prefix(name);
    int rc = load_body(m, w.p, w.len, be, max_batch);
    wholefile_free(&w);
    if (rc) {
        gt_err_prefix(name);
        model_free(m);
    }
    return rc;
}
