/* inspect.c: intermediate tensors on request (inspect.h): dump directories, and the observers
 * (lib/nn/net.h net_observe) that gan-sample and gan-step set on G and D. The observers only
 * download; the passes run as without them. */
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/base/cli.h"
#include "lib/base/common.h"
#include "formats/npy.h"
#include "inspect.h"

struct inspect_file {
    char stem[96], phase[24], net[4], what[16], name[48], kind[16], shape[80];
    size_t want, got;
    out_t o;
    int done;
};

int inspect_dir_open(inspect_dir_t *d, const char *dir) {
    memset(d, 0, sizeof *d);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) return gt_err("%s: cannot create: %s", dir, strerror(errno));
    DIR *h = opendir(dir);
    if (!h) return gt_err("%s: %s", dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(h)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            char first[256];
            snprintf(first, sizeof first, "%s", e->d_name);
            closedir(h);
            gt_err("%s is not empty (it holds %s): give a new or empty directory, so that no file is overwritten "
                   "and the manifest lists the whole directory",
                   dir, first);
            return 1;
        }
    closedir(h);
    d->dir = gt_xstrdup(dir);
    return 0;
}

static inspect_file_t *find_file(inspect_dir_t *d, const char *stem) {
    for (int i = d->n - 1; i >= 0; i--)
        if (strcmp(d->files[i]->stem, stem) == 0) return d->files[i];
    return NULL;
}

void inspect_dir_add(inspect_dir_t *d, const char *stem, const char *phase, const char *net, const char *what,
                     const char *name, const char *kind, int ndim, const int64_t *shape, const float *data,
                     size_t count) {
    inspect_file_t *f = find_file(d, stem);
    if (!f) {
        if (d->n == d->cap) {
            d->cap = d->cap ? d->cap * 2 : 64;
            d->files = gt_xrealloc(d->files, sizeof *d->files * (size_t)d->cap);
        }
        f = d->files[d->n++] = gt_xcalloc(1, sizeof *f); /* out_t registers its address: never moved */
        snprintf(f->stem, sizeof f->stem, "%s", stem);
        snprintf(f->phase, sizeof f->phase, "%s", phase);
        snprintf(f->net, sizeof f->net, "%s", net);
        snprintf(f->what, sizeof f->what, "%s", what);
        snprintf(f->name, sizeof f->name, "%s", name);
        snprintf(f->kind, sizeof f->kind, "%s", *kind ? kind : "-");
        f->want = 1;
        size_t k = 0;
        for (int i = 0; i < ndim; i++) {
            f->want *= (size_t)shape[i];
            k += (size_t)snprintf(f->shape + k, sizeof f->shape - k, "%s%lld", i ? "x" : "", (long long)shape[i]);
            if (k >= sizeof f->shape) k = sizeof f->shape - 1;
        }
        if (!ndim) snprintf(f->shape, sizeof f->shape, "scalar");
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.npy", d->dir, stem);
        out_open(&f->o, path, 1);
        if (npy_write_header(f->o.f, DT_F32, ndim, shape)) out_fail(&f->o);
    }
    if (f->done || f->got + count > f->want)
        gt_fatal(EXIT_DATA, "%s/%s.npy: internal error: more values than its shape %s", d->dir, stem, f->shape);
    if (count) out_write(&f->o, data, sizeof(float) * count);
    f->got += count;
    if (f->got == f->want) {
        out_commit(&f->o);
        f->done = 1;
    }
}

void inspect_dir_close(inspect_dir_t *d) {
    if (!d->dir) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.tsv", d->dir);
    out_t o;
    out_open(&o, path, 0);
    fprintf(o.f, "file\tphase\tnet\twhat\tname\tkind\tshape\n");
    for (int i = 0; i < d->n; i++) {
        inspect_file_t *f = d->files[i];
        if (!f->done)
            gt_fatal(EXIT_DATA, "%s/%s.npy: internal error: %zu of %zu values written", d->dir, f->stem, f->got,
                     f->want);
        fprintf(o.f, "%s.npy\t%s\t%s\t%s\t%s\t%s\t%s\n", f->stem, f->phase, f->net, f->what, f->name, f->kind,
                f->shape);
    }
    out_commit(&o);
    for (int i = 0; i < d->n; i++) free(d->files[i]);
    free(d->files);
    free(d->buf);
    free(d->dir);
    memset(d, 0, sizeof *d);
}

/* The event's tensor on the host (d's buffer, grown as needed) */
static const float *host_copy(inspect_dir_t *d, const nn_ctx_t *ctx, const nn_event_t *e, size_t *count) {
    size_t n = (size_t)e->B * (size_t)shape3_size(e->shape);
    if (n > d->buf_n) {
        d->buf = gt_xrealloc(d->buf, sizeof(float) * n);
        d->buf_n = n;
    }
    nn_event_download(ctx, e, d->buf);
    *count = n;
    return d->buf;
}

/* ---- gan-sample --activations ------------------------------------------------------------ */

static void sample_event(void *arg, const nn_ctx_t *ctx, const nn_event_t *e) {
    inspect_sample_t *s = arg;
    if (e->grad) return;
    size_t n;
    const float *h = host_copy(s->d, ctx, e, &n);
    char stem[64];
    snprintf(stem, sizeof stem, "G.%s", e->name);
    int64_t shape[4] = {s->total, e->shape.c, e->shape.h, e->shape.w};
    int input = strcmp(e->name, "input") == 0;
    inspect_dir_add(s->d, stem, "sample", "G", input ? "input" : "output", e->name, e->kind, 4, shape, h, n);
}

void inspect_sample_start(inspect_sample_t *s, inspect_dir_t *d, net_t *G, int64_t total) {
    s->d = d;
    s->total = total;
    s->obs.fn = sample_event;
    s->obs.arg = s;
    net_observe(G, &s->obs);
}

void inspect_sample_stop(inspect_sample_t *s, net_t *G) {
    (void)s;
    net_observe(G, NULL);
}

/* ---- gan-step: one step watched ---------------------------------------------------------- */

/* A column group of --log-layers: a layer of G or D, its activation statistics (G: the fake
 * batch; D: [0] real, [1] fake) and its parameter gradient norm. */
struct inspect_layer_stat {
    char net[2];
    char name[32];
    const layer_t *l;
    double mean[2], sd[2], gnorm;
};

static void add_cols(inspect_step_t *w, const char *net, const layer_t *ls, int cnt) {
    for (int i = 0; i < cnt; i++) {
        const layer_t *l = &ls[i];
        inspect_layer_stat_t *c = &w->cols[w->n_cols++];
        snprintf(c->net, sizeof c->net, "%s", net);
        snprintf(c->name, sizeof c->name, "%s", l->name);
        c->l = l;
        if (l->n_sub) add_cols(w, net, l->sub, l->n_sub);
    }
}

static int count_layers(const layer_t *ls, int cnt) {
    int k = cnt;
    for (int i = 0; i < cnt; i++) k += count_layers(ls[i].sub, ls[i].n_sub);
    return k;
}

static inspect_layer_stat_t *col(const inspect_step_t *w, const char *net, const char *name) {
    for (int i = 0; i < w->n_cols; i++)
        if (w->cols[i].net[0] == net[0] && strcmp(w->cols[i].name, name) == 0) return &w->cols[i];
    return NULL;
}

/* The pass an event belongs to, read off the context the trainer made for it (trainer.h):
 * Philox step t * 16 + pass, pass 3c (D on the real batch of D update c; a second plain forward
 * with that key is R1's), 3c + 1 (D on the fake batch; sample_base B: the WGAN-GP
 * interpolates; a second forward: R2's), 3c + 2 (G), 15 (D in G's update); G's reverse pass
 * is its update's. */
_Static_assert(3 * GAN_MAX_CRITIC <= 15, "the pass keys of D's updates stay below G's update's");
static void step_event(inspect_step_t *w, const char *net, const nn_ctx_t *ctx, const nn_event_t *e) {
    gan_model_t *m = w->t->m;
    int K = m->set.n_critic;
    uint32_t p = ctx->rng_step - (uint32_t)w->step * 16u; /* the pass (trainer.h: dropout pass keys) */
    int input = strcmp(e->name, "input") == 0;
    const char *which;
    int c = (int)(p / 3), last = c == K - 1, d_set = -1;
    if (net[0] == 'G') {
        which = "G";
    } else if (p == 15) {
        which = "D";
    } else {
        if (p < 16 && input && !e->grad) w->occ[p]++;
        int again = p < 16 && w->occ[p] > 1;
        if (p % 3 == 0) {
            which = again ? "r1" : "real";
            if (!again) d_set = 0;
        } else if (ctx->sample_base >= (uint64_t)w->t->B) {
            which = "gp";
        } else {
            which = again ? "r2" : "fake";
            if (!again) d_set = 1;
        }
    }
    char phase[24];
    if (p == 15 || (net[0] == 'G' && e->grad)) snprintf(phase, sizeof phase, "gstep_%s", which);
    else if (K > 1) snprintf(phase, sizeof phase, "dstep%d_%s", c + 1, which);
    else snprintf(phase, sizeof phase, "dstep_%s", which);

    int want_stat = w->stats && !e->grad && !input && last &&
                    (net[0] == 'G' ? p % 3 == 2 : d_set >= 0);
    if (!w->d && !want_stat) return;
    size_t n;
    inspect_dir_t *buf = w->d;
    inspect_dir_t tmp = {0};
    if (!buf) buf = &tmp;
    const float *h = host_copy(buf, ctx, e, &n);
    if (want_stat) {
        inspect_layer_stat_t *s = col(w, net, e->name);
        if (s) {
            int k = net[0] == 'G' ? 0 : d_set;
            double sum = 0, sq = 0;
            for (size_t i = 0; i < n; i++) sum += h[i];
            double mean = n ? sum / (double)n : NAN;
            for (size_t i = 0; i < n; i++) sq += ((double)h[i] - mean) * ((double)h[i] - mean);
            s->mean[k] = mean;
            s->sd[k] = n ? sqrt(sq / (double)n) : NAN;
        }
    }
    if (w->d) {
        char stem[96];
        snprintf(stem, sizeof stem, "%s.%s.%s%s", phase, net, e->name, e->grad ? ".grad" : "");
        int64_t shape[4] = {e->B, e->shape.c, e->shape.h, e->shape.w};
        const char *what = input ? (e->grad ? "grad_input" : "input") : (e->grad ? "grad_output" : "output");
        inspect_dir_add(w->d, stem, phase, net, what, e->name, e->kind, 4, shape, h, n);
    }
    free(tmp.buf);
}

static void step_event_g(void *arg, const nn_ctx_t *ctx, const nn_event_t *e) { step_event(arg, "G", ctx, e); }
static void step_event_d(void *arg, const nn_ctx_t *ctx, const nn_event_t *e) { step_event(arg, "D", ctx, e); }

void inspect_step_init(inspect_step_t *w, trainer_t *t) {
    memset(w, 0, sizeof *w);
    w->t = t;
    gan_model_t *m = t->m;
    w->cols = gt_xcalloc((size_t)(count_layers(m->G.layers, m->G.n_layers) + count_layers(m->D.layers, m->D.n_layers)) + 1,
                         sizeof *w->cols);
    add_cols(w, "G", m->G.layers, m->G.n_layers);
    add_cols(w, "D", m->D.layers, m->D.n_layers);
    w->og = (nn_observer_t){step_event_g, w};
    w->od = (nn_observer_t){step_event_d, w};
}

/* Every trained tensor of net (checkpoint names) from the host copy v of its params or grads,
 * into d as PREFIX.NET.NAME */
static void dump_params(inspect_dir_t *d, const net_t *n, const char *net, const float *v, const char *prefix,
                        const char *what) {
    for (int j = 0; j < net_n_tensors(n); j++) {
        net_tensor_t t;
        net_tensor(n, j, &t);
        if (!t.is_param) continue;
        char stem[96];
        snprintf(stem, sizeof stem, "%s.%s.%s", prefix, net, t.name);
        int64_t shape[4];
        for (int k = 0; k < t.ndim; k++) shape[k] = t.shape[k];
        inspect_dir_add(d, stem, prefix[0] == 'p' ? "before" : net[0] == 'G' ? "gstep" : "dstep", net, what, t.name,
                        "", t.ndim, shape, v + (t.data - n->params), t.count);
    }
}

static float *download_all(backend_t *be, const float *dev, size_t n) {
    float *h = gt_xmalloc(sizeof(float) * (n ? n : 1));
    if (n) be->download(be, h, dev, sizeof(float) * n);
    return h;
}

void inspect_step_begin(inspect_step_t *w, inspect_dir_t *d, int stats) {
    gan_model_t *m = w->t->m;
    w->d = d;
    w->stats = stats;
    w->step = m->step;
    memset(w->occ, 0, sizeof w->occ);
    for (int i = 0; i < w->n_cols; i++) {
        inspect_layer_stat_t *c = &w->cols[i];
        c->mean[0] = c->mean[1] = c->sd[0] = c->sd[1] = c->gnorm = NAN;
    }
    if (d) {
        const net_t *nets[2] = {&m->G, &m->D};
        for (int k = 0; k < 2; k++) {
            float *p = download_all(m->be, nets[k]->params, nets[k]->n_params);
            dump_params(d, nets[k], k ? "D" : "G", p, "param", "param");
            free(p);
        }
    }
    net_observe(&m->G, &w->og);
    net_observe(&m->D, &w->od);
}

/* the L2 norm of each layer's parameter gradient (its weight, bias and class table: one
 * contiguous slice of the grads; for spectral normalization the trained weight's) */
static void grad_norms(inspect_step_t *w, const net_t *n, const char *net, const float *g) {
    for (int i = 0; i < w->n_cols; i++) {
        inspect_layer_stat_t *c = &w->cols[i];
        if (c->net[0] != net[0] || c->l->n_sub || !c->l->n_params) continue;
        const float *s = g + ((c->l->sn ? c->l->sn_dw_orig : c->l->dw) - n->grads);
        double q = 0;
        for (size_t k = 0; k < c->l->n_params; k++) q += (double)s[k] * s[k];
        c->gnorm = sqrt(q);
    }
}

void inspect_step_end(inspect_step_t *w) {
    trainer_t *t = w->t;
    gan_model_t *m = t->m;
    backend_t *be = m->be;
    net_observe(&m->G, NULL);
    net_observe(&m->D, NULL);
    const net_t *nets[2] = {&m->G, &m->D};
    for (int k = 0; k < 2; k++) {
        if (!w->d && !w->stats) break;
        float *g = download_all(be, nets[k]->grads, nets[k]->n_params);
        if (w->stats) grad_norms(w, nets[k], k ? "D" : "G", g);
        if (w->d) dump_params(w->d, nets[k], k ? "D" : "G", g, "grad", "grad_param");
        free(g);
    }
    if (w->d) {
        size_t sz = (size_t)shape3_size(m->shape);
        int64_t img[4] = {t->b, m->shape.c, m->shape.h, m->shape.w}, zs[2] = {t->b, m->z_dim};
        float *h = download_all(be, t->real, (size_t)t->b * sz);
        inspect_dir_add(w->d, "real", "dstep", "D", "batch", "real", "", 4, img, h, (size_t)t->b * sz);
        free(h);
        h = download_all(be, m->G.acts[m->G.n_layers], (size_t)t->b * sz);
        inspect_dir_add(w->d, "fake", "dstep", "G", "batch", "fake", "", 4, img, h, (size_t)t->b * sz);
        free(h);
        h = download_all(be, t->z, (size_t)t->b * (size_t)m->z_dim);
        inspect_dir_add(w->d, "z", "dstep", "G", "batch", "z", "", 2, zs, h, (size_t)t->b * (size_t)m->z_dim);
        free(h);
    }
    w->d = NULL;
}

void inspect_log_header(const inspect_step_t *w, FILE *f) {
    for (int i = 0; i < w->n_cols; i++) {
        const inspect_layer_stat_t *c = &w->cols[i];
        if (c->net[0] == 'G') fprintf(f, "\tG.%s.act_mean\tG.%s.act_std", c->name, c->name);
        else fprintf(f, "\tD.%s.act_mean_real\tD.%s.act_std_real\tD.%s.act_mean_fake\tD.%s.act_std_fake", c->name,
                     c->name, c->name, c->name);
        if (!c->l->n_sub && c->l->n_params) fprintf(f, "\t%s.%s.grad_norm", c->net, c->name);
    }
}

void inspect_log_row(const inspect_step_t *w, FILE *f) {
    for (int i = 0; i < w->n_cols; i++) {
        const inspect_layer_stat_t *c = &w->cols[i];
        fprintf(f, "\t%.6g\t%.6g", c->mean[0], c->sd[0]);
        if (c->net[0] == 'D') fprintf(f, "\t%.6g\t%.6g", c->mean[1], c->sd[1]);
        if (!c->l->n_sub && c->l->n_params) fprintf(f, "\t%.6g", c->gnorm);
    }
}

void inspect_step_free(inspect_step_t *w) {
    free(w->cols);
    memset(w, 0, sizeof *w);
}
