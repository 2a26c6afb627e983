/* test_model.c: the GAN model (lib/gan/model.h): settings parsers, checkpoint round trip, and
 * the optimizers' first steps against the formulas written out by hand. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/common.h"
#include "lib/gan/model.h"
#include "harness.h"

static const char *G_SPEC = "linear 16; lrelu 0.2; linear 12; tanh; reshape 3x2x2";
static const char *D_SPEC = "flatten; linear 8; lrelu 0.2; linear 1";

static void test_opt_parse(void) {
    opt_conf_t c;
    CHECK(opt_conf_parse("adam:lr=2e-4,b1=0.5,b2=0.999", &c) == 0, "%s", gt_errmsg());
    CHECK(c.kind == OPT_ADAM && c.lr == 2e-4 && c.b1 == 0.5 && c.b2 == 0.999 && c.eps == 1e-8, "adam settings");
    CHECK(opt_conf_parse("sgd:lr=0.1,momentum=0.9,nesterov", &c) == 0 && c.nesterov && c.b1 == 0.9, "sgd");
    CHECK(opt_conf_parse("rmsprop", &c) == 0 && c.lr == 1e-2 && c.b1 == 0.99, "rmsprop defaults");
    CHECK(opt_conf_parse("adm:lr=1", &c) == -1 && strstr(gt_errmsg(), "unknown optimizer 'adm'"), "%s", gt_errmsg());
    CHECK(opt_conf_parse("adam:beta=1", &c) == -1 && strstr(gt_errmsg(), "unknown setting 'beta'"), "%s",
          gt_errmsg());
    CHECK(opt_conf_parse("adam:lr=1x", &c) == -1, "bad number accepted");
    CHECK(opt_conf_parse("adam:lr=-1", &c) == -1, "negative lr accepted");
    CHECK(opt_conf_parse("adam:b1=1", &c) == -1, "b1 = 1 accepted");
    CHECK(opt_conf_parse("sgd:nesterov", &c) == -1, "nesterov without momentum accepted");
    /* the canonical text parses back to the same settings */
    opt_conf_t a, b;
    char buf[256];
    opt_conf_parse("rmsprop:lr=5e-5,momentum=0.3,centered,wd=0.125", &a);
    opt_conf_format(&a, buf, sizeof buf);
    CHECK(opt_conf_parse(buf, &b) == 0 && memcmp(&a, &b, sizeof a) == 0, "'%s' does not round trip", buf);
}

static void test_shape_loss(void) {
    shape3_t s;
    CHECK(shape3_parse("3x32x32", &s) == 0 && s.c == 3 && s.h == 32 && s.w == 32, "3x32x32");
    CHECK(shape3_parse("1x28", &s) == -1, "1x28 accepted");
    CHECK(shape3_parse("1x28x28x", &s) == -1, "trailing x accepted");
    CHECK(shape3_parse("0x28x28", &s) == -1, "zero accepted");
    CHECK(shape3_parse("-1x2x2", &s) == -1, "negative accepted");
    gan_loss_t l;
    for (int i = 0; i < LOSS_COUNT; i++)
        CHECK(gan_loss_parse(gan_loss_name((gan_loss_t)i), &l) == 0 && l == (gan_loss_t)i, "loss %d", i);
    CHECK(gan_loss_parse("wgangp", &l) == -1, "wgangp accepted");
}

/* The settings' ranges: the programs' bounds, checked by gan_settings_check, named in its message. */
static void test_settings_ranges(void) {
    gan_settings_t s;
    gan_settings_default(&s, LOSS_WGAN);
    CHECK(gan_settings_check(&s) == 0, "%s", gt_errmsg());
    for (int k = 0; k < GAN_SET_COUNT; k++) {
        const cli_range_t *r = &gan_setting_ranges[k];
        gan_settings_t t = s;
        /* the label options need a loss with targets (bce, ns): refused with wgan, checked below */
        if (k == GAN_SET_LABEL_FLIP || k == GAN_SET_LABEL_SMOOTH_FAKE) t.loss = LOSS_NS;
        gan_setting_set(&t, (gan_setting_k)k, r->hi);
        CHECK(gan_settings_check(&t) == 0 && gan_setting_get(&t, (gan_setting_k)k) == r->hi, "%s at its top",
              r->name);
        gan_setting_set(&t, (gan_setting_k)k, r->integer ? r->hi + 1 : nextafter(r->hi, INFINITY));
        CHECK(gan_settings_check(&t) == -1 && strncmp(gt_errmsg(), r->name, strlen(r->name)) == 0, "%s: '%s'",
              r->name, gt_errmsg());
        gan_setting_set(&t, (gan_setting_k)k, r->integer ? r->lo - 1 : -1e-300);
        CHECK(gan_settings_check(&t) == -1, "%s below its range accepted", r->name);
    }
    gan_settings_t w = s;
    w.label_flip = 0.5;
    CHECK(gan_settings_check(&w) == -1, "label flipping accepted with the wgan loss");
    s.n_critic = 7;
    CHECK(gan_settings_check(&s) == -1 && strcmp(gt_errmsg(), "n_critic 7 is out of range [1, 5]") == 0, "'%s'",
          gt_errmsg());
    gan_settings_default(&s, LOSS_NS);
    s.ema = NAN;
    CHECK(gan_settings_check(&s) == -1, "NaN EMA decay accepted");
}

/* Save, load, save again: the same bytes; every tensor and setting restored. */
static void test_checkpoint_round_trip(void) {
    backend_t *be = backend_cpu(1);
    gan_settings_t s;
    gan_settings_default(&s, LOSS_HINGE);
    opt_conf_parse("rmsprop:lr=1e-3,momentum=0.5,centered", &s.opt_d);
    s.ema = 0.9;
    s.label_smooth = 0.1;
    shape3_t shape = {3, 2, 2};
    gan_model_t m;
    CHECK(model_new(&m, G_SPEC, D_SPEC, shape, 5, &s, INIT_TORCH, 77, be, 4) == 0, "%s", gt_errmsg());
    /* make every buffer distinct from its initial value */
    for (size_t i = 0; i < m.G.n_params; i++) m.G_ema[i] = (float)i * 0.5f;
    for (size_t i = 0; i < m.D.n_params; i++) m.opt_D.s3[i] = -(float)i;
    m.opt_G.t = 3;
    m.step = 42;
    m.epoch = 2;
    m.epoch_pos = 16;
    m.data_n = 100;
    char path[] = "/tmp/test_model_XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "wb");
    CHECK(model_save(&m, f) == 0, "save: %s", gt_errmsg());
    fclose(f);
    gan_model_t r;
    CHECK(model_load(&r, path, be, 0) == 0, "load: %s", gt_errmsg());
    CHECK(r.step == 42 && r.epoch == 2 && r.epoch_pos == 16 && r.data_n == 100 && r.seed == 77, "counters");
    CHECK(r.set.loss == LOSS_HINGE && r.set.ema == 0.9 && r.set.label_smooth == 0.1 && r.z_dim == 5, "settings");
    CHECK(r.opt_G.t == 3 && r.opt_D.conf.centered && r.opt_D.conf.momentum == 0.5, "optimizer settings");
    CHECK(r.G.max_batch == s.batch, "allocated for the stored batch");
    CHECK(memcmp(r.G.params, m.G.params, sizeof(float) * m.G.n_params) == 0, "G weights");
    CHECK(memcmp(r.D.params, m.D.params, sizeof(float) * m.D.n_params) == 0, "D weights");
    CHECK(memcmp(r.G_ema, m.G_ema, sizeof(float) * m.G.n_params) == 0, "EMA weights");
    CHECK(memcmp(r.opt_D.s3, m.opt_D.s3, sizeof(float) * m.D.n_params) == 0, "rmsprop grad_avg");
    char path2[] = "/tmp/test_model_XXXXXX";
    fd = mkstemp(path2);
    f = fdopen(fd, "wb");
    model_save(&r, f);
    fclose(f);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "cmp -s %s %s", path, path2);
    CHECK(system(cmd) == 0, "a loaded and saved checkpoint differs from the original");
    remove(path);
    remove(path2);
    model_free(&m);
    model_free(&r);
}

/* First two Adam steps written out (torch 1.13 formulas), and SGD with momentum. */
static void test_optim_by_hand(void) {
    optim_state_t o;
    memset(&o, 0, sizeof o);
    gan_settings_t s;
    gan_settings_default(&s, LOSS_NS);
    backend_t *be = backend_cpu(1);
    gan_model_t m;
    opt_conf_parse("adam:lr=0.1,b1=0.5,b2=0.75,eps=1e-3", &s.opt_g);
    opt_conf_parse("sgd:lr=0.5,momentum=0.5", &s.opt_d);
    shape3_t shape = {3, 2, 2};
    CHECK(model_new(&m, G_SPEC, D_SPEC, shape, 5, &s, INIT_TORCH, 1, be, 1) == 0, "%s", gt_errmsg());
    float p = m.G.params[0], g1 = 0.3f, g2 = -0.2f;
    float *gp = calloc(m.G.n_params, sizeof(float));
    gp[0] = g1;
    optim_step(&m.opt_G, m.G.params, gp);
    double m1 = 0.5 * g1, v1 = 0.25 * g1 * g1;
    double want1 = p - 0.1 / (1 - 0.5) * m1 / (sqrt(v1) / sqrt(1 - 0.75) + 1e-3);
    CHECK_CLOSE(m.G.params[0], want1, 1e-6);
    gp[0] = g2;
    optim_step(&m.opt_G, m.G.params, gp);
    double m2 = 0.5 * m1 + 0.5 * g2, v2 = 0.75 * v1 + 0.25 * g2 * g2;
    double want2 = want1 - 0.1 / (1 - 0.25) * m2 / (sqrt(v2) / sqrt(1 - 0.75 * 0.75) + 1e-3);
    CHECK_CLOSE(m.G.params[0], want2, 1e-6);
    float q = m.D.params[0];
    float *gd = calloc(m.D.n_params, sizeof(float));
    gd[0] = 1.0f;
    optim_step(&m.opt_D, m.D.params, gd); /* buffer = g */
    optim_step(&m.opt_D, m.D.params, gd); /* buffer = 0.5 g + g */
    CHECK_CLOSE(m.D.params[0], q - 0.5 * 1.0 - 0.5 * 1.5, 1e-6);
    free(gp);
    free(gd);
    model_free(&m);
}

/* Adam's and RMSprop's moving averages round their weights from double as torch does: with
 * beta2 = 0.999 the first exp_avg_sq is (float)0.001 * g * g exactly, not (1 - 0.999f) g g. */
static void test_optim_constants(void) {
    gan_settings_t s;
    gan_settings_default(&s, LOSS_NS);
    backend_t *be = backend_cpu(1);
    gan_model_t m;
    opt_conf_parse("adam:lr=1e-3,b1=0.9,b2=0.999", &s.opt_g);
    opt_conf_parse("rmsprop:lr=1e-3,alpha=0.99,centered", &s.opt_d);
    CHECK(model_new(&m, G_SPEC, D_SPEC, (shape3_t){3, 2, 2}, 5, &s, INIT_TORCH, 1, be, 1) == 0, "%s", gt_errmsg());
    float *gp = calloc(m.G.n_params, sizeof(float)), *gd = calloc(m.D.n_params, sizeof(float));
    float g = 0.37f;
    gp[0] = gd[0] = g;
    optim_step(&m.opt_G, m.G.params, gp);
    optim_step(&m.opt_D, m.D.params, gd);
    CHECK(m.opt_G.s1[0] == (float)(1.0 - 0.9) * g, "exp_avg %.9g", m.opt_G.s1[0]);
    CHECK(m.opt_G.s2[0] == (float)(1.0 - 0.999) * g * g, "exp_avg_sq %.9g, want %.9g", m.opt_G.s2[0],
          (float)(1.0 - 0.999) * g * g);
    CHECK(m.opt_D.s1[0] == (float)(1.0 - 0.99) * g * g, "square_avg %.9g", m.opt_D.s1[0]);
    CHECK(m.opt_D.s3[0] == (float)(1.0 - 0.99) * g, "grad_avg %.9g", m.opt_D.s3[0]);
    free(gp);
    free(gd);
    model_free(&m);
}

int main(void) {
    RUN(test_opt_parse);
    RUN(test_shape_loss);
    RUN(test_settings_ranges);
    RUN(test_checkpoint_round_trip);
    RUN(test_optim_by_hand);
    RUN(test_optim_constants);
    return harness_done();
}
