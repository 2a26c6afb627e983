/* sampler.c: a generator's images batch by batch (sampler.h), as backend operations: latents
 * are computed on the device (the backend's latents operation, train_math.h's sample_latent);
 * the host keeps only their bookkeeping (which base latents each image mixes) and the classes. */
#include <stdlib.h>
#include <string.h>

#include "lib/base/common.h"
#include "sampler.h"

void sampler_conf_default(sampler_conf_t *c) {
    memset(c, 0, sizeof *c);
    c->n = 64;
    c->best_of = 1;
    c->cls = -1;
    c->batch = 256;
}

/* The settings' rules (sampler.h, sampler_init); -1 with a message naming the setting. */
static int conf_check(const sampler_conf_t *c, const gan_model_t *m) {
    int K = m->classes;
    if (c->n < 1) return gt_err("sampler: n = %lld, want at least 1 latent", (long long)c->n);
    if (c->batch < 1 || c->batch > m->G.max_batch || (c->best_of > 1 && c->batch > m->D.max_batch))
        return gt_err("sampler: batch %d is outside 1..%d (the model's allocated batch)", c->batch,
                      c->best_of > 1 && m->D.max_batch < m->G.max_batch ? m->D.max_batch : m->G.max_batch);
    if (c->trunc < 0) return gt_err("sampler: trunc %g is negative", c->trunc);
    if (c->best_of < 1) return gt_err("sampler: best_of %d, want at least 1", c->best_of);
    if (c->zin && (c->trunc > 0 || c->best_of > 1))
        return gt_err("sampler: trunc and best_of draw latents; not with zin");
    if (c->interp < 0) return gt_err("sampler: interp %d is negative", c->interp);
    if (c->interp && c->n < 2) return gt_err("sampler: interp needs at least 2 latents");
    if (c->interp && c->n - 1 > (INT64_MAX - 1) / c->interp) return gt_err("sampler: interp makes too many images");
    if (c->best_of > 1 && c->n > INT64_MAX / c->best_of) return gt_err("sampler: best_of makes too many draws");
    int rules = (c->cls >= 0) + (c->classes != NULL) + (c->per_class != 0);
    if (rules > 1) return gt_err("sampler: give one of cls, classes, per_class");
    if (!K && rules) return gt_err("sampler: the model is not class-conditional: it takes no classes");
    if (rules && (c->classes || c->per_class) && (c->interp || c->best_of > 1))
        return gt_err("sampler: interp and best_of work with one class (cls)");
    if (K && c->interp && c->cls < 0) return gt_err("sampler: interp on a class-conditional model needs cls");
    if (c->cls >= K && K) return gt_err("sampler: class %lld is outside 0..%d", (long long)c->cls, K - 1);
    for (int64_t i = 0; c->classes && i < c->n; i++)
        if (c->classes[i] < 0 || c->classes[i] >= K)
            return gt_err("sampler: classes[%lld] = %lld is outside 0..%d", (long long)i, (long long)c->classes[i],
                          K - 1);
    if (c->per_class && c->n > INT64_MAX / K) return gt_err("sampler: per_class makes too many images");
    return 0;
}

/* The class of draw or image j (sampler.h): a best-of draw's by its draw number, an image's
 * through the draw it kept. */
static int64_t class_of(const sampler_t *s, int64_t j) {
    const sampler_conf_t *c = &s->c;
    return c->cls >= 0 ? c->cls : s->classes ? s->classes[j] : c->per_class ? j / c->n : j % s->m->classes;
}

/* What base latent j is for sample_latent: a kept draw (best_of), else row j of zin or draw j. */
static int64_t base_index(const sampler_t *s, int64_t j) { return s->sel ? s->sel[j] : j; }

/* Image i mixes base latents *ia and *ib (-1: none) with weight *t. */
static void latent_plan(const sampler_t *s, int64_t i, int64_t *ia, int64_t *ib, double *t) {
    int K = s->c.interp;
    *ib = -1;
    *t = 0;
    if (s->c.per_class) i %= s->c.n; /* the columns share their latents */
    if (!K) {
        *ia = base_index(s, i);
        return;
    }
    int64_t seg = i / K, j = i % K;
    *ia = base_index(s, seg);
    if (seg == s->c.n - 1 || j == 0) return;
    *ib = base_index(s, seg + 1);
    *t = (double)j / K;
}

/* The latents (into s->z) and classes (into s->lab_d; also *labels when not NULL) of images or
 * best-of draws first .. first+b-1. */
static void batch_setup(sampler_t *s, int draws, int64_t first, int b, int64_t *labels) {
    backend_t *be = s->be;
    for (int i = 0; i < b; i++) {
        if (draws) {
            s->ia[i] = first + i;
            s->ib[i] = -1;
            s->t[i] = 0;
        } else {
            latent_plan(s, first + i, &s->ia[i], &s->ib[i], &s->t[i]);
        }
    }
    if (s->m->classes) {
        for (int i = 0; i < b; i++) /* with cls, interp may run past sel's n entries */
            s->lab[i] = class_of(s, draws || !s->sel || s->c.cls >= 0 ? first + i : s->sel[first + i]);
        be->upload(be, s->lab_d, s->lab, sizeof(int64_t) * (size_t)b);
        if (labels) memcpy(labels, s->lab, sizeof(int64_t) * (size_t)b);
    }
    be->upload(be, s->ia_d, s->ia, sizeof(int64_t) * (size_t)b);
    be->upload(be, s->ib_d, s->ib, sizeof(int64_t) * (size_t)b);
    be->upload(be, s->t_d, s->t, sizeof(double) * (size_t)b);
    be->latents(be, s->z, b, s->m->z_dim, draws ? NULL : s->zin_d, s->c.seed, s->c.trunc, s->ia_d, s->ib_d, s->t_d);
}

/* G on the weights it samples with: swap the EMA copy in (saving the trained weights) or out. */
static void weights_sampled(sampler_t *s, int in) {
    if (!s->saved) return;
    net_t *G = &s->m->G;
    size_t bytes = sizeof(float) * G->n_params;
    if (in) {
        s->be->copy(s->be, s->saved, G->params, bytes);
        s->be->copy(s->be, G->params, s->m->G_ema, bytes);
    } else {
        s->be->copy(s->be, G->params, s->saved, bytes);
    }
}

/* A draw's score, for best_of's ranking: higher first, ties by draw number. */
typedef struct {
    float score;
    int64_t draw;
} scored_t;
static int by_score(const void *pa, const void *pb) {
    const scored_t *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return a->draw < b->draw ? -1 : a->draw > b->draw;
}
static int by_draw(const void *pa, const void *pb) {
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    return a < b ? -1 : a > b;
}

/* best_of: score every draw with D(G(z)) and keep the best n, in draw order, in s->sel. */
static void best_of_select(sampler_t *s) {
    backend_t *be = s->be;
    gan_model_t *m = s->m;
    int B = s->c.batch;
    int64_t draws = s->c.n * s->c.best_of;
    float *y = gt_xmalloc(sizeof(float) * (size_t)B);
    scored_t *sc = gt_xmalloc(sizeof *sc * (size_t)draws);
    nn_ctx_t cd = net_ctx(&m->D, 0, m->seed, 0, 0);
    cd.labels = s->lab_d;
    weights_sampled(s, 1);
    for (int64_t s0 = 0; s0 < draws; s0 += B) {
        int b = (int)(draws - s0 < B ? draws - s0 : B);
        batch_setup(s, 1, s0, b, NULL);
        const float *x = net_forward(&m->G, &s->cg, s->z, b);
        be->download(be, y, net_forward(&m->D, &cd, x, b), sizeof(float) * (size_t)b);
        for (int i = 0; i < b; i++) sc[s0 + i] = (scored_t){y[i], s0 + i};
    }
    weights_sampled(s, 0);
    qsort(sc, (size_t)draws, sizeof *sc, by_score);
    s->sel = gt_xmalloc(sizeof *s->sel * (size_t)s->c.n);
    for (int64_t j = 0; j < s->c.n; j++) s->sel[j] = sc[j].draw;
    qsort(s->sel, (size_t)s->c.n, sizeof *s->sel, by_draw);
    free(sc);
    free(y);
}

int sampler_init(sampler_t *s, gan_model_t *m, const sampler_conf_t *c) {
    memset(s, 0, sizeof *s);
    if (conf_check(c, m)) return -1;
    backend_t *be = m->be;
    s->m = m;
    s->be = be;
    s->c = *c;
    int64_t n = c->n;
    s->total = c->interp ? (n - 1) * c->interp + 1 : c->per_class ? n * m->classes : n;
    size_t B = (size_t)c->batch, zd = (size_t)m->z_dim;
    if (c->classes) {
        s->classes = gt_xmalloc(sizeof *s->classes * (size_t)n);
        memcpy(s->classes, c->classes, sizeof *s->classes * (size_t)n);
        s->c.classes = s->classes;
    }
    if (c->zin) {
        s->zin_d = be->alloc(be, sizeof(float) * (size_t)n * zd);
        be->upload(be, s->zin_d, c->zin, sizeof(float) * (size_t)n * zd);
        s->c.zin = NULL;
    }
    s->z = be->alloc(be, sizeof(float) * B * zd);
    s->ia = gt_xmalloc(sizeof(int64_t) * B);
    s->ib = gt_xmalloc(sizeof(int64_t) * B);
    s->t = gt_xmalloc(sizeof(double) * B);
    s->ia_d = be->alloc(be, sizeof(int64_t) * B);
    s->ib_d = be->alloc(be, sizeof(int64_t) * B);
    s->t_d = be->alloc(be, sizeof(double) * B);
    s->cg = net_ctx(&m->G, 0, m->seed, 0, 0);
    if (m->classes) {
        s->lab = gt_xmalloc(sizeof(int64_t) * B);
        s->lab_d = be->alloc(be, sizeof(int64_t) * B);
        s->cg.labels = s->lab_d;
    }
    if (m->G_ema && !c->no_ema) s->saved = be->alloc(be, sizeof(float) * m->G.n_params);
    if (c->best_of > 1) best_of_select(s);
    return 0;
}

int sampler_next(sampler_t *s, int b, float *x, float *z, int64_t *labels) {
    if (b < 1 || b > s->c.batch || b > s->total - s->next)
        return gt_err("sampler: %d images from image %lld: want 1..%d, and the run has %lld", b, (long long)s->next,
                      s->c.batch, (long long)s->total);
    if (labels && !s->m->classes)
        return gt_err("sampler: the model is not class-conditional: its images have no classes");
    backend_t *be = s->be;
    gan_model_t *m = s->m;
    batch_setup(s, 0, s->next, b, labels);
    weights_sampled(s, 1);
    s->cg.observer = m->G.observer; /* G's observer as it is now (net_observe), e.g. --activations */
    const float *y = net_forward(&m->G, &s->cg, s->z, b);
    weights_sampled(s, 0);
    be->download(be, x, y, sizeof(float) * (size_t)shape3_size(m->shape) * (size_t)b);
    if (z) be->download(be, z, s->z, sizeof(float) * (size_t)m->z_dim * (size_t)b);
    s->next += b;
    return 0;
}

int sampler_seek(sampler_t *s, int64_t first) {
    if (first < 0 || first > s->total)
        return gt_err("sampler: image %lld is outside 0..%lld", (long long)first, (long long)s->total);
    s->next = first;
    return 0;
}

void sampler_free(sampler_t *s) {
    backend_t *be = s->be;
    if (be) {
        if (s->zin_d) be->free(be, s->zin_d);
        if (s->z) be->free(be, s->z);
        if (s->ia_d) be->free(be, s->ia_d);
        if (s->ib_d) be->free(be, s->ib_d);
        if (s->t_d) be->free(be, s->t_d);
        if (s->lab_d) be->free(be, s->lab_d);
        if (s->saved) be->free(be, s->saved);
    }
    free(s->classes);
    free(s->sel);
    free(s->ia);
    free(s->ib);
    free(s->t);
    free(s->lab);
    memset(s, 0, sizeof *s);
}
