/* test_layer_sn.c: spectral normalization (lib/nn/layer_sn.c) on the CPU backend: the gradient
 * with respect to weight_orig (through sigma, u and v held fixed) and the input gradient against
 * central finite differences of the evaluation-mode forward (the function of W_orig that u, v
 * fixed define), for linear, conv, convT (W_mat from dimension 1) and embed; which passes run
 * the power iteration (training forwards) and which do not (evaluation, the tangent pass); and
 * sigma after many iterations against the largest singular value. Weight normalization
 * (lib/nn/layer_wn.c): gradients to g and v and the tangent passes against finite differences,
 * alone and in a residual block; its initialisation; sn with wn refused; thread independence. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/common.h"
#include "lib/nn/net.h"
#include "lib/base/philox.h"
#include "harness.h"
#include "net_check.h"

static const int64_t labels3[3] = {2, 0, 2};

/* net from spec, initialised, after one training forward (u, v no longer their initial draws) */
static int make(net_t *n, const char *spec, shape3_t in, int B, float *x) {
    if (net_build(n, spec, in, be)) {
        CHECK(0, "%s: %s", spec, gt_errmsg());
        return -1;
    }
    net_alloc(n, B);
    net_init(n, INIT_TORCH, 5);
    randn(x, (size_t)B * (size_t)shape3_size(in), 1, 1.0f);
    nn_ctx_t tr = net_ctx(n, 1, 1, 0, 0);
    tr.labels = labels3;
    net_forward(n, &tr, x, B);
    return 0;
}

static void fd_case(const char *spec, shape3_t in) {
    const int B = 3;
    net_t n;
    size_t nx = (size_t)B * (size_t)shape3_size(in);
    float *x = malloc(nx * sizeof(float)), *dx = malloc(nx * sizeof(float));
    if (make(&n, spec, in, B, x)) return;
    size_t ny = (size_t)B * (size_t)shape3_size(n.out);
    float *c = malloc(ny * sizeof(float));
    randn(c, ny, 3, 1.0f);
    nn_ctx_t ev = net_ctx(&n, 0, 1, 0, 0);
    ev.labels = labels3;
    float *st = malloc(n.n_state * sizeof(float) + 4);
    memcpy(st, n.state, n.n_state * sizeof(float));
    net_zero_grad(&n);
    net_forward(&n, &ev, x, B);
    net_backward(&n, &ev, c, dx, B);
    float *g = malloc(n.n_params * sizeof(float) + 4);
    memcpy(g, n.grads, n.n_params * sizeof(float));
    const float h = 1e-3f;
    int ok = 1;
    for (size_t i = 0; i < n.n_params; i++) {
        double fd;
        CENTRAL(n.params[i], h, loss_fwd(&n, &ev, x, c, B), fd);
        ok &= grad_close(g[i], fd, "dweight_orig", i);
    }
    for (size_t i = 0; i < nx; i++) {
        double fd;
        CENTRAL(x[i], h, loss_fwd(&n, &ev, x, c, B), fd);
        ok &= grad_close(dx[i], fd, "dx", i);
    }
    CHECK(ok, "%s: gradients against finite differences", spec);
    CHECK(memcmp(st, n.state, n.n_state * sizeof(float)) == 0, "%s: evaluation passes changed u, v", spec);
    /* the tangent pass reuses the forward's u, v: no iteration */
    if (net_jvp_ok(&n) == 0) {
        nn_ctx_t tr = net_ctx(&n, 1, 1, 0, 0);
        tr.labels = labels3;
        const float *ty;
        net_jvp_forward(&n, &tr, x, x, B, &ty);
        CHECK(memcmp(st, n.state, n.n_state * sizeof(float)) == 0, "%s: the tangent pass iterated u, v", spec);
        net_forward(&n, &tr, x, B);
        CHECK(memcmp(st, n.state, n.n_state * sizeof(float)) != 0, "%s: a training forward left u, v", spec);
    }
    net_free(&n);
    free(x);
    free(dx);
    free(c);
    free(st);
    free(g);
}

static void test_fd(void) {
    fd_case("linear 5 sn; tanh; linear 2 sn=2 nobias", (shape3_t){4, 1, 1});
    fd_case("conv 3 k3 s2 p1 sn; tanh", (shape3_t){2, 5, 5});
    fd_case("convT 3 k3 s2 p1 op1 sn; tanh", (shape3_t){2, 3, 3});
    fd_case("embed 3 4 sn; flatten; linear 3; tanh", (shape3_t){2, 1, 1});
    /* the same layers without sn pass net_check.h's training-mode check (which cannot hold u, v
       fixed, so it is not run with sn) */
    fd_check("conv 3 k3 s2 p1; tanh; flatten; linear 2 nobias", (shape3_t){2, 5, 5}, 3);
}

/* after many iterations sigma is the largest singular value: for W = diag(3, -2, 1) in a
 * linear 3 (no bias) it is 3, so W / sigma's output for e_1 is (1, 0, 0) up to sign */
static void test_sigma_converges(void) {
    net_t n;
    CHECK(net_build(&n, "linear 3 nobias sn=50", (shape3_t){3, 1, 1}, be) == 0, "%s", gt_errmsg());
    net_alloc(&n, 1);
    net_init(&n, INIT_TORCH, 5);
    float w[9] = {3, 0, 0, 0, -2, 0, 0, 0, 1}, x[3] = {1, 0, 0};
    memcpy(n.params, w, sizeof w);
    nn_ctx_t tr = net_ctx(&n, 1, 1, 0, 0);
    const float *y = net_forward(&n, &tr, x, 1);
    CHECK(fabs(fabs(y[0]) - 1) < 1e-5 && fabs(y[1]) < 1e-5 && fabs(y[2]) < 1e-5, "y = %g %g %g", y[0], y[1], y[2]);
    CHECK(fabs(n.layers[0].sn_sigma[0] - 3) < 1e-5, "sigma %g, want 3", n.layers[0].sn_sigma[0]);
    net_free(&n);
}

static void test_thread_independence(void) {
    CHECK(same_runs("linear 300 sn; lrelu 0.2; linear 64 sn=2; tanh", (shape3_t){200, 1, 1}, 16, 1, 2),
          "spectral normalization differs between 1 and 2 threads");
}

/* ---- weight normalization (lib/nn/layer_wn.c) ---------------------------------------------- */

/* gradients to g and v (and the input), the tangent passes and their reverse, against finite
 * differences; g moved away from ||v|| so that both matter */
static void test_wn_fd(void) {
    fd_check("linear 5 wn; tanh; linear 2 nobias wn", (shape3_t){4, 1, 1}, 3);
    fd_check("conv 3 k3 s2 p1 wn; tanh; flatten; linear 2 wn", (shape3_t){2, 5, 5}, 2);
    fd_check("convT 3 k3 s2 p1 op1 wn; tanh", (shape3_t){2, 3, 3}, 2);
    fd_check("conv 2 k3 p1; block { conv 2 k3 p1 wn; tanh } skip { convT 2 k1 wn }; tanh; flatten; linear 1 wn",
             (shape3_t){2, 4, 4}, 2);
}

/* the initial weight: v is the layer's own init, g = ||v|| per slice of dimension 0 (the input
 * channels of convT), so the output equals the plain layer's up to rounding */
static void test_wn_init(void) {
    const char *specs[3][2] = {{"linear 6 wn", "linear 6"}, {"conv 3 k3 wn", "conv 3 k3"}, {"convT 3 k3 wn", "convT 3 k3"}};
    shape3_t ins[3] = {{5, 1, 1}, {4, 5, 5}, {4, 5, 5}};
    for (int k = 0; k < 3; k++) {
        net_t a, b;
        CHECK(net_build(&a, specs[k][0], ins[k], be) == 0 && net_build(&b, specs[k][1], ins[k], be) == 0, "%s",
              gt_errmsg());
        net_alloc(&a, 2);
        net_alloc(&b, 2);
        net_init(&a, INIT_TORCH, 5);
        net_init(&b, INIT_TORCH, 5);
        layer_t *l = &a.layers[0];
        size_t nw = (size_t)l->wn_rows * (size_t)l->wn_cols;
        CHECK(a.n_params == b.n_params + (size_t)l->wn_rows && memcmp(a.params, b.params, sizeof(float) * b.n_params) == 0,
              "%s: v and the bias are the plain layer's", specs[k][0]);
        CHECK(l->wn_rows == (k == 2 ? 4 : k == 1 ? 3 : 6), "%s: %ld rows", specs[k][0], l->wn_rows);
        int ok = 1;
        for (long r = 0; r < l->wn_rows; r++) {
            double q = 0;
            for (long c = 0; c < l->wn_cols; c++) q += (double)l->wn_v[r * l->wn_cols + c] * l->wn_v[r * l->wn_cols + c];
            ok &= fabs(l->e[r] - sqrt(q)) <= 1e-6 * sqrt(q);
        }
        CHECK(ok, "%s: g is not ||v|| per row", specs[k][0]);
        float x[2 * 100];
        randn(x, 2 * (size_t)shape3_size(ins[k]), 9, 1.0f);
        nn_ctx_t c = net_ctx(&a, 1, 1, 0, 0);
        const float *ya = net_forward(&a, &c, x, 2), *yb = net_forward(&b, &c, x, 2);
        double worst = 0;
        for (size_t i = 0; i < 2 * (size_t)shape3_size(a.out); i++) worst = fmax(worst, fabs(ya[i] - yb[i]));
        CHECK(worst < 1e-5, "%s: initial output differs from the plain layer's by %g", specs[k][0], worst);
        (void)nw;
        net_free(&a);
        net_free(&b);
    }
    CHECK(build_err("linear 5 sn wn", (shape3_t){3, 1, 1},
                    "layer 1 (linear): sn and wn cannot be combined (choose spectral or weight normalization)"),
          "sn with wn");
    CHECK(build_err("block { conv 2 k3 p1 wn sn=2 }", (shape3_t){2, 4, 4},
                    "block 1: main layer 1 (conv): sn and wn cannot be combined (choose spectral or weight "
                    "normalization)"),
          "sn with wn in a block");
    CHECK(build_err("relu wn", (shape3_t){3, 1, 1}, "layer 1 (relu): unknown argument 'wn'"), "relu wn");
}

static void test_wn_thread_independence(void) {
    CHECK(same_runs("linear 400 wn; lrelu 0.2; linear 64 wn; tanh", (shape3_t){200, 1, 1}, 16, 1, 2),
          "weight normalization differs between 1 and 2 threads");
}

int main(void) {
    gt_progname = "test_layer_sn";
    be = backend_cpu(1);
    RUN(test_fd);
    RUN(test_sigma_converges);
    RUN(test_thread_independence);
    RUN(test_wn_fd);
    RUN(test_wn_init);
    RUN(test_wn_thread_independence);
    return harness_done();
}
