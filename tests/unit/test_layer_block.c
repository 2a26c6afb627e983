/* test_layer_block.c: residual blocks (lib/nn/layer_block.c) and global sum pooling
 * (lib/nn/layer_sumpool.c) on the CPU: the spec's errors inside blocks, the normalised text,
 * the Philox numbers of layers inside blocks (init draws unchanged for the top level, distinct
 * inside), finite differences of backward and of the tangent passes, parameter gradients
 * without an input gradient, dropout masks apart in the two paths, bit-identical runs on 1 and
 * 2 threads, the observer (names, order, bits unchanged). PyTorch parity is tests/ref/test_layers_res.py. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/common.h"
#include "lib/nn/net.h"
#include "harness.h"
#include "net_check.h"

static const shape3_t F6 = {6, 1, 1}, IMG = {2, 4, 4};

static void test_block_errors(void) {
    CHECK(build_err("linear 6; block { linear 6; relu; linear 4 q2 }", F6,
                    "block 2: main layer 3 (linear): unknown argument 'q2'"), "argument in main");
    CHECK(build_err("block { linear 6 } skip { frob }", F6, "block 1: skip layer 1: unknown layer kind 'frob'"),
          "kind in skip");
    CHECK(build_err("conv 4 k1; block { conv 8 k3 p1 } skip { conv 4 k1 }", IMG,
                    "block 2: main gives 8x4x4, skip gives 4x4x4"), "shapes differ");
    CHECK(build_err("block { conv 4 k3 }", IMG, "block 1: main gives 4x2x2, the identity shortcut gives 2x4x4"),
          "identity differs");
    CHECK(build_err("block { conv 2 k9 }", IMG, "block 1: main layer 1 (conv): kernel 9x9 is larger than the "
                                                "padded input 4x4"), "setup error inside");
    CHECK(build_err("block { linear 6 }; relu; linear 4 nobias nobias", F6,
                    "layer 3 (linear): argument 'nobias' given twice"), "after a block");
    CHECK(build_err("block linear 6", F6, "block 1: unexpected argument 'linear' (block { main path } [skip { "
                                          "shortcut }])"), "no brace");
    CHECK(build_err("block\nrelu", F6, "block 1: expected '{' after 'block' (block { main path } [skip { "
                                       "shortcut }])"), "no brace 2");
    CHECK(build_err("block { relu", F6, "block 1: missing '}' after its main path"), "unclosed");
    CHECK(build_err("block { }", F6, "block 1: empty main path"), "empty main");
    CHECK(build_err("block { relu } skip { }", F6,
                    "block 1: empty skip path (leave out 'skip { }' for an identity shortcut)"), "empty skip");
    CHECK(build_err("block { relu } skip relu", F6, "block 1: expected '{' after 'skip'"), "skip brace");
    CHECK(build_err("block { relu; block { relu } }", F6,
                    "block 1: main layer 2: unexpected 'block' (blocks do not nest)"), "nested");
    CHECK(build_err("relu; skip { relu }", F6,
                    "layer 2: unexpected 'skip' (a shortcut is written block { main path } skip { shortcut })"),
          "stray skip");
    CHECK(build_err("relu }", F6,
                    "layer 2: unexpected '}' (a shortcut is written block { main path } skip { shortcut })"),
          "stray brace");
    CHECK(build_err("block { cbn 3 } skip { cbn 4 }", IMG,
                    "block 1: skip layer 1 (cbn) has 4 classes but main layer 1 (cbn) has 3"), "classes");
    net_t n;
    CHECK(net_build(&n, "block { conv 2 k3 p1; bn }; flatten; linear 1", IMG, be) == 0, "%s", gt_errmsg());
    CHECK(net_jvp_ok(&n) == -1 &&
              strcmp(gt_errmsg(), "block 1: main layer 2 (bn) cannot be in a gradient-penalty critic") == 0,
          "%s", gt_errmsg());
    net_free(&n);
}

static void test_block_text(void) {
    net_t n;
    int rc = net_build(&n, "block{relu\n  linear 6 # comment { }\n}skip{linear 6 nobias};block { tanh }", F6, be);
    CHECK(rc == 0, "%s", gt_errmsg());
    if (rc) return;
    CHECK(strcmp(n.spec, "block { relu; linear 6 } skip { linear 6 nobias }; block { tanh }") == 0, "%s", n.spec);
    CHECK(n.n_layers == 2 && n.layers[0].n_sub == 3 && n.layers[0].n_main == 2 && n.layers[1].n_sub == 1,
          "%d layers", n.n_layers);
    /* Philox numbers: top level 0, 1; then the blocks' layers in order */
    CHECK(n.layers[0].sub[0].index == 2 && n.layers[0].sub[2].index == 4 && n.layers[1].sub[0].index == 5,
          "numbers %d %d %d", n.layers[0].sub[0].index, n.layers[0].sub[2].index, n.layers[1].sub[0].index);
    CHECK(n.n_params == 42 + 36, "%zu params", n.n_params);
    net_free(&n);
}

/* a top-level layer after a block draws what it drew at its index without the block; the
 * layers inside draw from their own numbers */
static void test_block_init(void) {
    net_t a, b;
    int rc = net_build(&a, "linear 6; block { linear 6; relu; linear 6 }; linear 3", F6, be);
    rc |= net_build(&b, "linear 6; relu; linear 3", F6, be);
    CHECK(rc == 0, "%s", gt_errmsg());
    if (rc) return;
    net_alloc(&a, 1);
    net_alloc(&b, 1);
    net_init(&a, INIT_TORCH, 9);
    net_init(&b, INIT_TORCH, 9);
    CHECK(memcmp(a.layers[0].w, b.layers[0].w, sizeof(float) * 42) == 0, "layer 1 changed");
    CHECK(memcmp(a.layers[2].w, b.layers[2].w, sizeof(float) * 21) == 0, "layer 3 changed");
    const layer_t *m0 = &a.layers[1].sub[0], *m2 = &a.layers[1].sub[2];
    CHECK(m0->index == 3 && m2->index == 5, "%d %d", m0->index, m2->index);
    CHECK(memcmp(m0->w, m2->w, sizeof(float) * 36) != 0 && memcmp(m0->w, a.layers[0].w, sizeof(float) * 36) != 0,
          "draws repeat inside the block");
    float want = (float)((2.0 * philox_uniform(9, PHILOX_STREAM_INIT, 5, 7) - 1.0) / sqrt(6.0));
    CHECK(fabsf(m2->w[7] - want) <= 1e-7f, "%g vs %g", m2->w[7], want);
    net_free(&a);
    net_free(&b);
}

static void test_block_fd(void) {
    fd_check("block { linear 5; tanh; linear 6 }; lrelu 0.2; block { linear 4; sigmoid } skip { linear 4 }", F6, 3);
    fd_check("block { conv 3 k3 p1; tanh; conv 3 k3 p1; avgpool k2 } skip { conv 3 k1; avgpool k2 }; lrelu 0.2; "
             "sumpool; linear 1",
             IMG, 2);
    fd_check("block { upsample 2; conv 2 k3 p1 nobias } skip { upsample 2 }; sumpool", IMG, 2);
}

/* without an input gradient the parameter gradients are those with one */
static void test_block_without_dx(void) {
    check_backward_without_dx("block { relu; conv 2 k3 p1 } skip { avgpool k1 }; block { tanh; conv 2 k1 }; sumpool; linear 1",
                              IMG, 2);
}

/* the two paths' dropout layers (same shape, same pass) draw different masks */
static void test_block_dropout(void) {
    net_t n;
    int rc = net_build(&n, "block { dropout } skip { dropout }", (shape3_t){256, 1, 1}, be);
    CHECK(rc == 0, "%s", gt_errmsg());
    if (rc) return;
    net_alloc(&n, 1);
    nn_ctx_t ctx = net_ctx(&n, 1, 7, 3, 0);
    float x[256];
    for (int i = 0; i < 256; i++) x[i] = 1.0f;
    net_forward(&n, &ctx, x, 1);
    const float *a = n.layers[0].sub_acts[0], *b = n.layers[0].sub_acts[1];
    int same = 0;
    for (int i = 0; i < 256; i++) same += (a[i] == 0) == (b[i] == 0);
    CHECK(same < 200, "masks agree on %d of 256 elements", same);
    net_free(&n);
}

static void test_block_threads(void) {
    CHECK(same_runs("block { conv 4 k3 p1; relu; conv 2 k3 p1 } skip { conv 2 k1 }; sumpool; linear 1",
                    (shape3_t){2, 16, 16}, 33, 1, 2),
          "blocks differ between 1 and 2 threads");
}

/* The observer (net.h net_observe): sees the input, every layer's output (the paths' layers, then
 * the block's sum) in order, and in backward the gradient w.r.t. each output, in reverse order;
 * the output it sees is the net's; and the passes give the same bits with and without it. */
typedef struct {
    char seen[512];
    float last[64];
} obs_log_t;

static void obs_fn(void *arg, const nn_ctx_t *ctx, const nn_event_t *e) {
    obs_log_t *o = arg;
    size_t k = strlen(o->seen);
    snprintf(o->seen + k, sizeof o->seen - k, "%s%s%s", k ? " " : "", e->grad ? "d" : "", e->name);
    if (!e->grad && (size_t)e->B * (size_t)shape3_size(e->shape) <= 64) nn_event_download(ctx, e, o->last);
}

static void observe_run(int watch, float *y, float *dx, float *g, obs_log_t *o) {
    net_t n;
    net_build(&n, "block { linear 5 sn; tanh } skip { linear 5; dropout 0.5 }; lrelu 0.2; linear 3", F6, be);
    net_alloc(&n, 2);
    net_init(&n, INIT_TORCH, 5);
    nn_observer_t obs = {obs_fn, o};
    if (watch) net_observe(&n, &obs);
    nn_ctx_t ctx = net_ctx(&n, 1, 3, 1, 0);
    float x[12], dy[6];
    randn(x, 12, 1, 1.0f);
    randn(dy, 6, 2, 1.0f);
    memcpy(y, net_forward(&n, &ctx, x, 2), sizeof(float) * 6);
    net_zero_grad(&n);
    net_backward(&n, &ctx, dy, dx, 2);
    memcpy(g, n.grads, sizeof(float) * n.n_params);
    net_free(&n);
}

static void test_block_observer(void) {
    float y[2][6], dx[2][12], g[2][128] = {{0}};
    obs_log_t o;
    memset(&o, 0, sizeof o);
    observe_run(0, y[0], dx[0], g[0], &o);
    CHECK(o.seen[0] == 0, "seen without an observer: %s", o.seen);
    observe_run(1, y[1], dx[1], g[1], &o);
    CHECK(!memcmp(y[0], y[1], sizeof y[0]) && !memcmp(dx[0], dx[1], sizeof dx[0]) && !memcmp(g[0], g[1], sizeof g[0]),
          "the observer changed a result");
    CHECK(!strcmp(o.seen, "input 0.main.0 0.main.1 0.skip.0 0.skip.1 0 1 2 d2 d1 d0 d0.main.1 d0.main.0 d0.skip.1 "
                          "d0.skip.0 dinput"),
          "seen: %s", o.seen);
    CHECK(!memcmp(o.last, y[1], sizeof y[1]), "the last output seen is not the net's");
}

int main(void) {
    be = backend_cpu(1);
    RUN(test_block_errors);
    RUN(test_block_text);
    RUN(test_block_init);
    RUN(test_block_fd);
    RUN(test_block_without_dx);
    RUN(test_block_dropout);
    RUN(test_block_threads);
    RUN(test_block_observer);
    return harness_done();
}
