/* test_net.c: the network core: spec parsing and its errors, normalised spec round trip,
 * shape inference and the output-shape check, checkpoint tensor names, initialisation draws,
 * finite-difference checks of backward and of the tangent passes (linear, activations,
 * reshape/flatten), thread-count independence, presets. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/common.h"
#include "lib/nn/net.h"
#include "lib/base/philox.h"
#include "lib/gan/presets.h"
#include "harness.h"
#include "net_check.h"

static const shape3_t F6 = {6, 1, 1};

static void test_spec_errors(void) {
    CHECK(build_err("linear 5; relu; linear 4 q2", F6, "layer 3 (linear): unknown argument 'q2'"), "q2");
    CHECK(build_err("linear 5; frob 3", F6, "layer 2: unknown layer kind 'frob'"), "kind");
    CHECK(build_err("linear 5x", F6, "layer 1 (linear): bad size '5x' (want a whole number >= 1)"), "5x");
    CHECK(build_err("linear 0", F6, "layer 1 (linear): bad size '0' (want a whole number >= 1)"), "0");
    CHECK(build_err("linear -3", F6, "layer 1 (linear): bad size '-3' (want a whole number >= 1)"), "-3");
    CHECK(build_err("linear 99999999999", F6, "layer 1 (linear): bad size '99999999999' (want a whole number >= 1)"),
          "huge");
    CHECK(build_err("linear", F6, "layer 1 (linear): missing the number of output features"), "missing");
    CHECK(build_err("linear 4 5", F6, "layer 1 (linear): unexpected argument '5'"), "two positionals");
    CHECK(build_err("linear 4 nobias nobias", F6, "layer 1 (linear): argument 'nobias' given twice"), "twice");
    CHECK(build_err("relu 3", F6, "layer 1 (relu): unexpected argument '3'"), "relu 3");
    CHECK(build_err("lrelu 0.2x", F6, "layer 1 (lrelu): bad slope '0.2x' (want a number)"), "slope");
    CHECK(build_err("lrelu nan", F6, "layer 1 (lrelu): unknown argument 'nan'"), "nan");
    CHECK(build_err("linear 4 s2", F6, "layer 1 (linear): unknown argument 's2'"), "s2 on linear");
    CHECK(build_err("reshape 2x2", F6, "layer 1 (reshape): bad shape '2x2' (want CxHxW, e.g. 256x7x7)"), "2x2");
    CHECK(build_err("reshape", F6, "layer 1 (reshape): missing the target shape CxHxW"), "no shape");
    CHECK(build_err("reshape 1x2x2", F6, "layer 1 (reshape): cannot reshape 6x1x1 (6 values) to 1x2x2 (4 values)"),
          "size");
    CHECK(build_err("linear 4", (shape3_t){1, 2, 3},
                    "layer 1 (linear): input is 1x2x3, not a feature vector: put flatten before linear"),
          "linear on image");
    CHECK(build_err("noise", F6, "layer 1 (noise): missing the standard deviation SIGMA"), "noise");
    CHECK(build_err("noise -0.5", F6, "layer 1 (noise): bad standard deviation '-0.5' (want a number >= 0)"),
          "noise < 0");
    CHECK(build_err("noise 1e39", F6, "layer 1 (noise): bad standard deviation '1e39' (want a number >= 0)"),
          "noise overflows a float");
    CHECK(build_err("noise 0.1 0.2", F6, "layer 1 (noise): unexpected argument '0.2'"), "noise twice");
    CHECK(build_err("", F6, "empty network spec"), "empty");
    CHECK(build_err(" # only a comment\n ; ;\n", F6, "empty network spec"), "comment only");
}

static void test_spec_syntax_and_shapes(void) {
    net_t n;
    const char *spec = "# a generator\nlinear 12   # first\n\n lrelu ;; tanh\n\treshape 3x2x2; flatten;linear 5 nobias\n"
                       "sigmoid; relu; lrelu 0.25";
    int rc = net_build(&n, spec, F6, be);
    CHECK(rc == 0, "build: %s", gt_errmsg());
    if (rc) return;
    CHECK(n.n_layers == 9, "%d layers", n.n_layers);
    CHECK(strcmp(n.spec, "linear 12; lrelu 0.01; tanh; reshape 3x2x2; flatten; linear 5 nobias; sigmoid; relu; "
                         "lrelu 0.25") == 0,
          "normalised: '%s'", n.spec);
    CHECK(n.layers[3].out.c == 3 && n.layers[3].out.h == 2 && n.layers[3].out.w == 2, "reshape shape");
    CHECK(n.layers[4].out.c == 12 && n.layers[4].out.h == 1, "flatten shape");
    CHECK(n.out.c == 5 && n.out.h == 1 && n.out.w == 1, "out %dx%dx%d", n.out.c, n.out.h, n.out.w);
    CHECK(n.n_params == 12 * 6 + 12 + 5 * 12, "n_params %zu", n.n_params);
    CHECK(n.layers[5].n_bias == 0 && n.layers[0].n_bias == 12, "bias counts");
    /* the normalised text builds the same net and normalises to itself */
    net_t m;
    rc = net_build(&m, n.spec, F6, be);
    CHECK(rc == 0 && strcmp(m.spec, n.spec) == 0, "round trip: '%s'", rc ? gt_errmsg() : m.spec);
    if (!rc) net_free(&m);
    net_free(&n);
    /* noise's sigma is written in its shortest exact form and read back */
    rc = net_build(&n, "noise .3; linear 2; noise 0", F6, be);
    CHECK(rc == 0 && strcmp(n.spec, "noise 0.3; linear 2; noise 0") == 0 && n.layers[0].sigma == 0.3f,
          "noise normalised: '%s'", rc ? gt_errmsg() : n.spec);
    if (!rc) net_free(&n);
    /* numbers that need all their digits survive the round trip */
    rc = net_build(&n, "lrelu 0.123456791", F6, be);
    CHECK(rc == 0, "%s", gt_errmsg());
    if (!rc) {
        rc = net_build(&m, n.spec, F6, be);
        CHECK(rc == 0 && m.layers[0].slope == n.layers[0].slope, "slope %.9g vs %.9g", m.layers[0].slope,
              n.layers[0].slope);
        if (!rc) net_free(&m);
        net_free(&n);
    }
}

static void test_check_output(void) {
    net_t n;
    int rc = net_build(&n, "linear 12; reshape 3x2x2; tanh", F6, be);
    CHECK(rc == 0, "%s", gt_errmsg());
    if (rc) return;
    CHECK(net_check_output(&n, (shape3_t){3, 2, 2}) == 0, "matching shape refused: %s", gt_errmsg());
    CHECK(net_check_output(&n, (shape3_t){3, 2, 3}) == -1, "wrong shape accepted");
    CHECK(strcmp(gt_errmsg(), "layer 2 (reshape): output 2x2, expected 2x3 (network output 3x2x2, data 3x2x3)") == 0,
          "%s", gt_errmsg());
    CHECK(net_check_output(&n, (shape3_t){1, 2, 2}) == -1, "wrong channels accepted");
    CHECK(strcmp(gt_errmsg(), "layer 2 (reshape): output has 3 channels, expected 1 (network output 3x2x2, data "
                              "1x2x2)") == 0,
          "%s", gt_errmsg());
    net_free(&n);
}

static void test_tensor_names(void) {
    net_t n;
    int rc = net_build(&n, "linear 4; relu; linear 2 nobias", F6, be);
    CHECK(rc == 0, "%s", gt_errmsg());
    if (rc) return;
    net_alloc(&n, 2);
    CHECK(net_n_tensors(&n) == 3, "%d tensors", net_n_tensors(&n));
    net_tensor_t t;
    net_tensor(&n, 0, &t);
    CHECK(strcmp(t.name, "0.weight") == 0 && t.ndim == 2 && t.shape[0] == 4 && t.shape[1] == 6 && t.count == 24 &&
              t.data == n.params && t.is_param,
          "%s", t.name);
    net_tensor(&n, 1, &t);
    CHECK(strcmp(t.name, "0.bias") == 0 && t.ndim == 1 && t.shape[0] == 4 && t.data == n.params + 24, "%s", t.name);
    net_tensor(&n, 2, &t);
    CHECK(strcmp(t.name, "2.weight") == 0 && t.shape[0] == 2 && t.shape[1] == 4 && t.data == n.params + 28, "%s",
          t.name);
    net_free(&n);
}

static void test_linear_init_draws(void) {
    net_t n;
    int rc = net_build(&n, "linear 300; relu; linear 200", (shape3_t){50, 1, 1}, be);
    CHECK(rc == 0, "%s", gt_errmsg());
    if (rc) return;
    net_alloc(&n, 1);
    net_init(&n, INIT_TORCH, 42);
    layer_t *l = &n.layers[2];
    float bound = (float)(1.0 / sqrt(300.0));
    /* the documented draw, element by element */
    int bad = 0;
    for (size_t j = 0; j < 200 * 300; j += 97)
        bad |= l->w[j] != (2.0f * philox_uniform(42, PHILOX_STREAM_INIT, 2, j) - 1.0f) * bound;
    for (size_t j = 0; j < 200; j++)
        bad |= l->b[j] != (2.0f * philox_uniform(42, PHILOX_STREAM_INIT, 2, 200 * 300 + j) - 1.0f) * bound;
    CHECK(!bad, "torch init differs from the documented draw");
    /* its distribution: U(-bound, bound) has variance bound^2 / 3 */
    double s = 0, s2 = 0, mx = 0;
    for (size_t j = 0; j < 200 * 300; j++) {
        s += l->w[j];
        s2 += (double)l->w[j] * l->w[j];
        if (fabs(l->w[j]) > mx) mx = fabs(l->w[j]);
    }
    double mean = s / 60000, var = s2 / 60000 - mean * mean;
    CHECK(mx <= bound, "max %g > bound %g", mx, bound);
    CHECK(fabs(mean) < 0.01 * bound, "mean %g", mean);
    CHECK(fabs(var / (bound * bound / 3) - 1) < 0.02, "variance ratio %g", var / (bound * bound / 3));
    net_init(&n, INIT_DCGAN, 42);
    s = s2 = 0;
    for (size_t j = 0; j < 200 * 300; j++) {
        s += l->w[j];
        s2 += (double)l->w[j] * l->w[j];
    }
    CHECK(fabs(sqrt(s2 / 60000) / 0.02 - 1) < 0.02, "dcgan std %g", sqrt(s2 / 60000));
    CHECK(l->b[0] == 0 && l->b[199] == 0, "dcgan bias not 0");
    CHECK(l->w[5] == 0.02f * philox_normal(42, PHILOX_STREAM_INIT, 2, 5), "dcgan draw");
    float w0 = n.layers[0].w[0];
    net_init(&n, INIT_DCGAN, 43);
    CHECK(n.layers[0].w[0] != w0, "seed does not change the init");
    net_free(&n);
}


static void test_fd_linear_act(void) {
    fd_check("linear 5; lrelu 0.2; linear 4; tanh; linear 3", F6, 3);
    fd_check("linear 4 nobias; sigmoid; linear 3; relu; linear 2", F6, 2);
    /* training-mode draws (masks, noise) the same in every pass; the activations before the
     * dropouts fuse with them in net_forward (net_jvp_tangent's check in fd_check) */
    fd_check("noise 0.1; linear 6; lrelu 0.2; dropout 0.3; linear 5; tanh; linear 4; relu; dropout 0.5; linear 2", F6, 3);
}

static void test_fd_shape_layers(void) {
    fd_check("flatten; linear 8; reshape 2x2x2; tanh; flatten; linear 3; sigmoid", (shape3_t){2, 3, 1}, 2);
}

static void test_sigmoid_stable(void) {
    net_t n;
    net_build(&n, "sigmoid", (shape3_t){4, 1, 1}, be);
    net_alloc(&n, 1);
    nn_ctx_t ctx = net_ctx(&n, 1, 1, 0, 0);
    float x[4] = {-1000, -100, 100, 1000};
    const float *y = net_forward(&n, &ctx, x, 1);
    CHECK(y[0] == 0.0f && y[1] >= 0.0f && y[1] < 1e-40f && y[2] == 1.0f && y[3] == 1.0f, "%g %g %g %g", y[0], y[1],
          y[2], y[3]);
    float dy[4] = {1, 1, 1, 1}, dx[4];
    net_backward(&n, &ctx, dy, dx, 1);
    for (int i = 0; i < 4; i++) CHECK(isfinite(dx[i]) && dx[i] >= 0 && dx[i] < 1e-30f, "dx[%d] = %g", i, dx[i]);
    net_free(&n);
}


static void test_thread_independence(void) {
    CHECK(same_runs("relu; lrelu 0.2; tanh; sigmoid; flatten", (shape3_t){1024, 1, 1}, 64, 1, 2),
          "activations differ between 1 and 2 threads");
    CHECK(same_runs("relu; lrelu 0.2; tanh; sigmoid", (shape3_t){1000, 1, 1}, 67, 1, 3),
          "activations differ between 1 and 3 threads");
    CHECK(same_runs("linear 1024; lrelu 0.2; linear 512; tanh; linear 64; sigmoid", (shape3_t){100, 1, 1}, 64, 2, 2),
          "two runs with 2 threads differ");
    CHECK(same_runs("linear 1024; lrelu 0.2; linear 512; tanh; linear 64; sigmoid", (shape3_t){100, 1, 1}, 64, 1, 2),
          "linear layers differ between 1 and 2 threads");
}

/* Fused passes (net.c fuse_at: an activation then dropout, a linear layer or BatchNorm then an
 * activation) give the bits of the layers' own passes, with 1 or 2 threads (below and above the
 * CPU's threshold for threads), and really run: the output buffer the fused pass does not write
 * (the activation's before a dropout, BatchNorm's before an activation) is left alone, unless
 * fusion is off or an observer watches. */
static void observe_nothing(void *u, const nn_ctx_t *ctx, const nn_event_t *e) {
    (void)u;
    (void)ctx;
    (void)e;
}

static void test_fused_passes(void) {
    const char *d = "conv 6 k4 s2 p1; lrelu 0.2; dropout 0.3; conv 8 k4 s2 p1; relu; dropout 0.5; flatten; linear 1";
    CHECK(same_runs_fused(d, (shape3_t){2, 16, 12}, 5, 1, 1, 1, 0), "conv/act/dropout: fused and unfused differ");
    const char *m = "linear 4100; lrelu 0.2; dropout 0.3; linear 3; relu; dropout 0.1";
    CHECK(same_runs_fused(m, (shape3_t){20, 1, 1}, 6, 2, 1, 1, 0), "linear/act/dropout: fused (2 threads) and unfused differ");
    CHECK(same_runs_fused(m, (shape3_t){20, 1, 1}, 6, 2, 1, 1, 1), "fused: 1 and 2 threads differ");
    /* linear and activation (all four kinds; the lrelu before a dropout goes with the dropout) */
    const char *la = "linear 300; tanh; linear 40; sigmoid; linear 9; relu; linear 7; lrelu 0.1; dropout 0.2; linear 3 "
                     "nobias; lrelu 0.2; linear 2; lrelu 0.3";
    CHECK(same_runs_fused(la, (shape3_t){20, 1, 1}, 130, 2, 1, 1, 0), "linear/act: fused (2 threads) and unfused differ");
    /* BatchNorm and relu or lrelu: BatchNorm1d over 4096 features and BatchNorm2d over 16 x 16 x
     * 16 at B = 8 (the CPU's threads), small ones (not), noaffine; the one before a dropout goes
     * with the dropout; B = 2 as well, training mode (net_check.h run_net) */
    const char *bn = "linear 4096 nobias; bn; lrelu 0.2; reshape 16x16x16; conv 16 k3 p1; bn; relu; conv 3 k3 p1; "
                     "bn noaffine; lrelu 0.1; conv 2 k3 p1 nobias; bn momentum=0.5; relu; dropout 0.2; flatten; linear 5; "
                     "bn; relu";
    for (int t = 1; t <= 2; t++)
        CHECK(same_runs_fused(bn, (shape3_t){20, 1, 1}, 8, t, t, 1, 0), "bn/act: fused (%d threads) and unfused differ", t);
    CHECK(same_runs_fused(bn, (shape3_t){20, 1, 1}, 8, 1, 2, 1, 1), "bn/act fused: 1 and 2 threads differ");
    CHECK(same_runs_fused(bn, (shape3_t){20, 1, 1}, 2, 2, 2, 1, 0), "bn/act at B = 2: fused and unfused differ");
    /* inside residual blocks' paths (sngan's G: bn; relu at a path's start and middle) */
    const char *blk = "block { linear 30; bn; relu; linear 20; lrelu 0.2; dropout 0.3; linear 20 } skip { linear 20; bn; "
                      "lrelu 0.1 }; linear 256; reshape 16x4x4; block { bn; relu; upsample 2; conv 8 k3 p1; bn; relu; "
                      "conv 8 k3 p1 } skip { upsample 2; conv 8 k1 }; bn; relu; flatten; linear 3";
    CHECK(same_runs_fused(blk, (shape3_t){20, 1, 1}, 6, 2, 2, 1, 0), "blocks: fused and unfused differ");
    /* the activation's output (act/dropout) and BatchNorm's (bn/act): acts[2] of each, or in a
     * block the bn's (its second child's) */
    const char *unwritten[3] = {m, "linear 5; bn; relu; linear 3", "block { linear 5; bn; relu; linear 20 }"};
    for (int s = 0; s < 3; s++) {
        net_t n;
        net_build(&n, unwritten[s], (shape3_t){20, 1, 1}, be);
        net_alloc(&n, 2);
        net_init(&n, INIT_TORCH, 3);
        float x[40], sentinel = -7.0f, got;
        randn(x, 40, 11, 1.0f);
        nn_observer_t o = {observe_nothing, NULL};
        for (int k = 0; k < 3; k++) { /* fused; not fused; fused but observed */
            net_fuse(&n, k != 1);
            net_observe(&n, k == 2 ? &o : NULL);
            nn_ctx_t ctx = net_ctx(&n, 1, 1, 0, 0);
            float *buf = s < 2 ? n.acts[2] : n.layers[0].sub_acts[1];
            be->upload(be, buf, &sentinel, sizeof sentinel);
            net_forward(&n, &ctx, x, 2);
            be->download(be, &got, buf, sizeof got);
            CHECK((got == sentinel) == (k == 0), "%s, case %d: the fused layer's output %s written", unwritten[s], k,
                  got == sentinel ? "not" : "was");
        }
        net_free(&n);
    }
}

/* without an input gradient the leading layers skip theirs; parameter gradients do not change */
static void test_backward_without_dx(void) {
    check_backward_without_dx("flatten; reshape 2x3x1; flatten; linear 5; tanh; linear 2", (shape3_t){3, 2, 1}, 3);
}

static void test_presets(void) {
    preset_t p;
    CHECK(preset_get("dcgan", (shape3_t){1, 30, 30}, 64, &p) == -1 &&
              strcmp(gt_errmsg(), "preset dcgan needs height and width divisible by 4 (data is 1x30x30)") == 0,
          "%s", gt_errmsg());
    CHECK(preset_get("dcgan32", (shape3_t){1, 28, 28}, 64, &p) == -1, "dcgan32 took 28x28");
    CHECK(preset_get("nope", (shape3_t){1, 28, 28}, 64, &p) == -1 && strstr(gt_errmsg(), "unknown preset 'nope'"),
          "%s", gt_errmsg());
    CHECK(preset_get("mlp", (shape3_t){1, 28, 28}, 0, &p) == -1, "zdim 0 accepted");
    CHECK(preset_get("cdcgan", (shape3_t){1, 28, 28}, 64, &p) == -1 && strstr(gt_errmsg(), "give the number of classes"),
          "%s", gt_errmsg());
    CHECK(preset_get_classes("dcgan", (shape3_t){1, 28, 28}, 64, 10, &p) == -1 &&
              strstr(gt_errmsg(), "not class-conditional"),
          "%s", gt_errmsg());
    CHECK(preset_get_classes("cdcgan", (shape3_t){1, 30, 30}, 64, 10, &p) == -1 &&
              strcmp(gt_errmsg(), "preset cdcgan needs height and width divisible by 4 (data is 1x30x30)") == 0,
          "%s", gt_errmsg());
    static const shape3_t shapes[] = {{1, 28, 28}, {3, 32, 32}};
    int all_kinds = layer_kind_find("conv") && layer_kind_find("convT") && layer_kind_find("bn") &&
                    layer_kind_find("dropout");
    if (!all_kinds) printf("# conv/convT/bn/dropout not all registered yet: presets only parsed for errors\n");
    for (int i = 0; preset_names[i]; i++)
        for (int s = 0; s < 2; s++) {
            int classes = preset_names[i][0] == 'c' ? 10 : 0; /* cmlp, cdcgan, csngan: class-conditional */
            if (preset_get_classes(preset_names[i], shapes[s], 100, classes, &p)) {
                CHECK(strcmp(preset_names[i], "dcgan32") == 0 && s == 0, "%s: %s", preset_names[i], gt_errmsg());
                continue;
            }
            if (all_kinds) {
                net_t g, d;
                int rc = net_build(&g, p.g, (shape3_t){100, 1, 1}, be);
                CHECK(rc == 0, "%s G: %s", preset_names[i], gt_errmsg());
                if (!rc) {
                    CHECK(net_check_output(&g, shapes[s]) == 0, "%s G: %s", preset_names[i], gt_errmsg());
                    net_free(&g);
                }
                rc = net_build(&d, p.d, shapes[s], be);
                CHECK(rc == 0, "%s D: %s", preset_names[i], gt_errmsg());
                if (!rc) {
                    CHECK(d.out.c == 1 && d.out.h == 1 && d.out.w == 1, "%s D out", preset_names[i]);
                    if (strcmp(preset_names[i], "wgan-gp") == 0) CHECK(net_jvp_ok(&d) == 0, "%s", gt_errmsg());
                    net_free(&d);
                }
            }
            preset_free(&p);
        }
}

int main(void) {
    be = backend_cpu(1);
    RUN(test_spec_errors);
    RUN(test_spec_syntax_and_shapes);
    RUN(test_check_output);
    RUN(test_tensor_names);
    RUN(test_linear_init_draws);
    RUN(test_fd_linear_act);
    RUN(test_fd_shape_layers);
    RUN(test_sigmoid_stable);
    RUN(test_thread_independence);
    RUN(test_backward_without_dx);
    RUN(test_fused_passes);
    RUN(test_presets);
    return harness_done();
}
