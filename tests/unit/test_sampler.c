/* test_sampler.c: the sampler (lib/gan/sampler.h) on the CPU backend: its images are G's (eval
 * mode, EMA weights) on the latents written out by the formula; the same batches give the same
 * bits and other batch sizes agree to rounding; interpolation, best-of ranking by D, the class
 * rules; and the settings it refuses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/backend/train_math.h"
#include "lib/base/common.h"
#include "lib/gan/sampler.h"
#include "harness.h"

static const char *G_SPEC = "linear 16; bn; lrelu 0.2; linear 12; tanh; reshape 3x2x2";
static const char *D_SPEC = "flatten; linear 8; lrelu 0.2; linear 1";
static const char *CG_SPEC = "embed 3 2; flatten; linear 16; lrelu 0.2; linear 12; tanh; reshape 3x2x2";
static const char *CD_SPEC = "onehot 3; flatten; linear 8; lrelu 0.2; linear 1";
enum { ZD = 5, IMG = 12, MAXB = 16 };

/* A model whose EMA weights differ from G's trained ones and whose BatchNorm statistics are not
 * the initial ones, so that evaluation mode and the EMA both show in the images. */
static void model_make(gan_model_t *m, const char *g, const char *d) {
    gan_settings_t s;
    gan_settings_default(&s, LOSS_NS);
    s.ema = 0.5;
    shape3_t shape = {3, 2, 2};
    CHECK(model_new(m, g, d, shape, ZD, &s, INIT_TORCH, 11, backend_cpu(1), MAXB) == 0, "%s", gt_errmsg());
    for (size_t i = 0; i < m->G.n_params; i++) m->G_ema[i] = m->G.params[i] * 0.75f + 0.01f;
    for (size_t i = 0; i < m->G.n_state; i++) m->G.state[i] += 0.25f;
}

/* G (eval mode, EMA weights) on latents z (b, ZD), computed directly, into x (b, IMG). */
static void reference(gan_model_t *m, const float *z, int b, const int64_t *labels, float *x) {
    float *saved = gt_xmalloc(sizeof(float) * m->G.n_params);
    memcpy(saved, m->G.params, sizeof(float) * m->G.n_params);
    memcpy(m->G.params, m->G_ema, sizeof(float) * m->G.n_params);
    nn_ctx_t c = net_ctx(&m->G, 0, m->seed, 0, 0);
    c.labels = labels;
    memcpy(x, net_forward(&m->G, &c, z, b), sizeof(float) * IMG * (size_t)b);
    memcpy(m->G.params, saved, sizeof(float) * m->G.n_params);
    free(saved);
}

/* Images, latents and model against the formula: G(EMA) of Philox draws; G's weights untouched. */
static void test_draws(void) {
    gan_model_t m;
    model_make(&m, G_SPEC, D_SPEC);
    float *before = gt_xmalloc(sizeof(float) * m.G.n_params);
    memcpy(before, m.G.params, sizeof(float) * m.G.n_params);
    sampler_conf_t c;
    sampler_conf_default(&c);
    c.n = 7;
    c.seed = 42;
    c.batch = 7;
    c.trunc = 0.8;
    sampler_t s;
    CHECK(sampler_init(&s, &m, &c) == 0, "%s", gt_errmsg());
    CHECK(s.total == 7, "total %lld", (long long)s.total);
    float x[7 * IMG], z[7 * ZD], want_z[7 * ZD], want_x[7 * IMG];
    CHECK(sampler_next(&s, 7, x, z, NULL) == 0, "%s", gt_errmsg());
    for (int i = 0; i < 7; i++)
        for (int k = 0; k < ZD; k++) want_z[i * ZD + k] = sample_draw(42, 0.8, i, ZD, k);
    CHECK(memcmp(z, want_z, sizeof z) == 0, "latents are not the truncated Philox draws");
    reference(&m, want_z, 7, NULL, want_x);
    CHECK(memcmp(x, want_x, sizeof x) == 0, "images are not G(z) with the EMA weights in eval mode");
    CHECK(memcmp(before, m.G.params, sizeof(float) * m.G.n_params) == 0, "G's trained weights changed");
    CHECK(sampler_next(&s, 1, x, NULL, NULL) == -1 && strstr(gt_errmsg(), "the run has 7"), "past the end: %s",
          gt_errmsg());
    sampler_free(&s);
    /* no_ema: G's own weights, which the EMA run did not disturb */
    c.no_ema = 1;
    float y[7 * IMG];
    CHECK(sampler_init(&s, &m, &c) == 0 && sampler_next(&s, 7, y, NULL, NULL) == 0, "%s", gt_errmsg());
    CHECK(memcmp(x, y, sizeof x) != 0, "no_ema gave the EMA's images");
    sampler_free(&s);
    free(before);
    model_free(&m);
}

/* Same batches (after a seek) the same bits; another batch size the same images to rounding. */
static void test_batches(void) {
    gan_model_t m;
    model_make(&m, G_SPEC, D_SPEC);
    sampler_conf_t c;
    sampler_conf_default(&c);
    c.n = 10;
    c.seed = 3;
    c.batch = 4;
    sampler_t s;
    float a[10 * IMG], b[10 * IMG], part[4 * IMG];
    CHECK(sampler_init(&s, &m, &c) == 0, "%s", gt_errmsg());
    for (int i = 0; i < 10; i += 4) CHECK(sampler_next(&s, i + 4 <= 10 ? 4 : 2, a + i * IMG, NULL, NULL) == 0, "next");
    CHECK(sampler_seek(&s, 4) == 0 && sampler_next(&s, 4, part, NULL, NULL) == 0, "%s", gt_errmsg());
    CHECK(memcmp(part, a + 4 * IMG, sizeof part) == 0, "images 4..7 after a seek differ");
    CHECK(sampler_seek(&s, 11) == -1, "seek past the end accepted");
    sampler_free(&s);
    c.batch = 3;
    CHECK(sampler_init(&s, &m, &c) == 0, "%s", gt_errmsg());
    for (int i = 0; i < 10; i += 3) CHECK(sampler_next(&s, i + 3 <= 10 ? 3 : 1, b + i * IMG, NULL, NULL) == 0, "next");
    for (int i = 0; i < 10 * IMG; i++) CHECK_CLOSE(b[i], a[i], 1e-5);
    sampler_free(&s);
    model_free(&m);
}

/* interp: image s K + j is (1 - j/K) a + j/K b of base latents s and s+1, then the last. */
static void test_interp(void) {
    gan_model_t m;
    model_make(&m, G_SPEC, D_SPEC);
    float zin[3 * ZD];
    for (int i = 0; i < 3 * ZD; i++) zin[i] = (float)(i % 7) - 3.0f;
    sampler_conf_t c;
    sampler_conf_default(&c);
    c.n = 3;
    c.zin = zin;
    c.interp = 4;
    c.batch = 16;
    sampler_t s;
    CHECK(sampler_init(&s, &m, &c) == 0, "%s", gt_errmsg());
    CHECK(s.total == 9, "total %lld, want (3-1)*4+1", (long long)s.total);
    float x[9 * IMG], z[9 * ZD];
    memset(zin, 0, sizeof zin); /* the sampler keeps its own copy */
    CHECK(sampler_next(&s, 9, x, z, NULL) == 0, "%s", gt_errmsg());
    for (int i = 0; i < 9; i++) {
        int seg = i / 4, j = i % 4;
        for (int k = 0; k < ZD; k++) {
            float za = (float)((seg * ZD + k) % 7) - 3.0f;
            float want = za;
            if (seg < 2 && j) {
                double t = j / 4.0;
                want = (float)((1 - t) * za + t * ((float)(((seg + 1) * ZD + k) % 7) - 3.0f));
            }
            CHECK(z[i * ZD + k] == want, "image %d latent %d: %g, want %g", i, k, z[i * ZD + k], want);
        }
    }
    sampler_free(&s);
    model_free(&m);
}

/* best_of K: the kept draws are the n of K n that D scores highest, in draw order. */
static void test_best_of(void) {
    gan_model_t m;
    model_make(&m, G_SPEC, D_SPEC);
    enum { N = 4, K = 3 };
    sampler_conf_t c;
    sampler_conf_default(&c);
    c.n = N * K;
    c.seed = 9;
    c.batch = 5;
    sampler_t s;
    float all_x[N * K * IMG], all_z[N * K * ZD], score[N * K];
    CHECK(sampler_init(&s, &m, &c) == 0, "%s", gt_errmsg());
    for (int i = 0; i < N * K; i += 5) {
        int b = N * K - i < 5 ? N * K - i : 5;
        CHECK(sampler_next(&s, b, all_x + i * IMG, all_z + i * ZD, NULL) == 0, "%s", gt_errmsg());
    }
    sampler_free(&s);
    nn_ctx_t cd = net_ctx(&m.D, 0, m.seed, 0, 0);
    memcpy(score, net_forward(&m.D, &cd, all_x, N * K), sizeof score);
    int keep[N * K] = {0};
    for (int r = 0; r < N; r++) { /* the best draw not yet kept, the earlier on ties */
        int best = -1;
        for (int i = 0; i < N * K; i++)
            if (!keep[i] && (best < 0 || score[i] > score[best])) best = i;
        keep[best] = 1;
    }
    c.n = N;
    c.best_of = K;
    float z[N * ZD], x[N * IMG];
    CHECK(sampler_init(&s, &m, &c) == 0 && sampler_next(&s, N, x, z, NULL) == 0, "%s", gt_errmsg());
    for (int i = 0, j = 0; i < N * K; i++) {
        if (!keep[i]) continue;
        CHECK(memcmp(z + j * ZD, all_z + i * ZD, sizeof(float) * ZD) == 0, "kept latent %d is not draw %d", j, i);
        j++;
    }
    sampler_free(&s);
    model_free(&m);
}

/* Classes: i mod K by default; cls; a list; per_class (image k n + j: class k, latent j). */
static void test_classes(void) {
    gan_model_t m;
    model_make(&m, CG_SPEC, CD_SPEC);
    CHECK(m.classes == 3, "classes %d", m.classes);
    sampler_conf_t c;
    sampler_conf_default(&c);
    c.n = 5;
    c.seed = 4;
    c.batch = 8;
    sampler_t s;
    float x[15 * IMG], z[15 * ZD], want_x[15 * IMG];
    int64_t lab[15];
    CHECK(sampler_init(&s, &m, &c) == 0 && sampler_next(&s, 5, x, z, lab) == 0, "%s", gt_errmsg());
    for (int i = 0; i < 5; i++) CHECK(lab[i] == i % 3, "default class of %d: %lld", i, (long long)lab[i]);
    reference(&m, z, 5, lab, want_x);
    CHECK(memcmp(x, want_x, sizeof(float) * 5 * IMG) == 0, "conditional images are not G(z, class)");
    sampler_free(&s);
    int64_t list[5] = {2, 2, 0, 1, 2};
    c.classes = list;
    CHECK(sampler_init(&s, &m, &c) == 0 && sampler_next(&s, 5, x, NULL, lab) == 0, "%s", gt_errmsg());
    CHECK(memcmp(lab, list, sizeof list) == 0, "listed classes");
    sampler_free(&s);
    c.classes = NULL;
    c.cls = 1;
    CHECK(sampler_init(&s, &m, &c) == 0 && sampler_next(&s, 5, x, NULL, lab) == 0, "%s", gt_errmsg());
    for (int i = 0; i < 5; i++) CHECK(lab[i] == 1, "cls: image %d of class %lld", i, (long long)lab[i]);
    sampler_free(&s);
    c.cls = -1;
    c.per_class = 1;
    c.batch = 15;
    CHECK(sampler_init(&s, &m, &c) == 0 && s.total == 15, "%s", gt_errmsg());
    CHECK(sampler_next(&s, 15, x, z, lab) == 0, "%s", gt_errmsg());
    for (int i = 0; i < 15; i++) {
        CHECK(lab[i] == i / 5, "per_class: image %d of class %lld", i, (long long)lab[i]);
        CHECK(memcmp(z + i * ZD, z + (i % 5) * ZD, sizeof(float) * ZD) == 0, "per_class: image %d's latent", i);
    }
    sampler_free(&s);
    model_free(&m);
}

/* sampler_init refuses c on m with a message holding msg. */
static void refused(gan_model_t *m, const sampler_conf_t *c, const char *what, const char *msg) {
    sampler_t s;
    CHECK(sampler_init(&s, m, c) == -1 && strstr(gt_errmsg(), msg), "%s: accepted, or '%s' lacks '%s'", what,
          gt_errmsg(), msg);
}

/* Settings the sampler refuses, each with a message naming the setting. */
static void test_refusals(void) {
    gan_model_t m, cm;
    model_make(&m, G_SPEC, D_SPEC);
    model_make(&cm, CG_SPEC, CD_SPEC);
    float zin[2 * ZD] = {0};
    int64_t bad_list[2] = {0, 3};
    sampler_conf_t d, c;
    sampler_conf_default(&d);
    d.batch = 4;
    c = d, c.n = 0, refused(&m, &c, "n 0", "want at least 1");
    c = d, c.batch = MAXB + 1, refused(&m, &c, "batch", "allocated batch");
    c = d, c.zin = zin, c.n = 2, c.trunc = 1, refused(&m, &c, "zin and trunc", "not with zin");
    c = d, c.n = 1, c.interp = 2, refused(&m, &c, "interp of 1 latent", "at least 2");
    c = d, c.cls = 0, refused(&m, &c, "a class of an unconditional model", "not class-conditional");
    c = d, c.cls = 3, refused(&cm, &c, "class 3 of 3", "outside 0..2");
    c = d, c.n = 2, c.classes = bad_list, refused(&cm, &c, "listed class 3 of 3", "classes[1] = 3");
    c = d, c.cls = 1, c.per_class = 1, refused(&cm, &c, "two class rules", "one of cls");
    c = d, c.per_class = 1, c.best_of = 2, refused(&cm, &c, "per_class and best_of", "one class");
    c = d, c.interp = 2, refused(&cm, &c, "interp without cls", "needs cls");
    sampler_t s;
    c = d;
    float x[4 * IMG];
    int64_t lab[4];
    CHECK(sampler_init(&s, &m, &c) == 0, "%s", gt_errmsg());
    CHECK(sampler_next(&s, 4, x, NULL, lab) == -1 && strstr(gt_errmsg(), "no classes"), "labels of an unconditional "
          "model: %s", gt_errmsg());
    CHECK(sampler_next(&s, 5, x, NULL, NULL) == -1, "a batch above the sampler's accepted");
    CHECK(sampler_next(&s, 0, x, NULL, NULL) == -1, "an empty batch accepted");
    sampler_free(&s);
    sampler_free(&s); /* a freed sampler frees again safely */
    model_free(&m);
    model_free(&cm);
}

int main(void) {
    RUN(test_draws);
    RUN(test_batches);
    RUN(test_interp);
    RUN(test_best_of);
    RUN(test_classes);
    RUN(test_refusals);
    return harness_done();
}
