/* net_check.h: checks of whole networks shared by the unit tests of the network core
 * (test_net.c, test_layer_conv.c): central finite differences of backward and of the gradient
 * penalty's tangent passes, with the losses accumulated in double, and bit-identical results
 * with different thread counts. Include after harness.h; the including file defines
 * `static backend_t *be;` (the backend fd_check builds on). */
#ifndef GT_NET_CHECK_H
#define GT_NET_CHECK_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/common.h"
#include "lib/nn/net.h"
#include "lib/base/philox.h"

static backend_t *be;
/* the batch's classes for nets with class-conditional layers (NULL: none); host memory, as
 * the CPU backend's device memory is */
static const int64_t *fd_labels;

/* ---- finite differences ---------------------------------------------------------------- */

/* L = sum_k c_k y_k over the batch, accumulated in double */
static double loss_fwd(net_t *n, const nn_ctx_t *ctx, const float *x, const float *c, int B) {
    const float *y = net_forward(n, ctx, x, B);
    double L = 0;
    size_t ny = (size_t)B * (size_t)shape3_size(n->out);
    for (size_t i = 0; i < ny; i++) L += (double)c[i] * y[i];
    return L;
}

/* S = sum dy*y + sum dty*ty, the scalar the jvp backward differentiates */
static double loss_jvp(net_t *n, const nn_ctx_t *ctx, const float *x, const float *tx, const float *dy,
                       const float *dty, int B) {
    const float *ty;
    const float *y = net_jvp_forward(n, ctx, x, tx, B, &ty);
    double S = 0;
    size_t ny = (size_t)B * (size_t)shape3_size(n->out);
    for (size_t i = 0; i < ny; i++) S += (double)dy[i] * y[i] + (double)dty[i] * ty[i];
    return S;
}

static void randn(float *p, size_t n, uint32_t step, float scale) {
    for (size_t i = 0; i < n; i++) p[i] = scale * philox_normal(3, PHILOX_STREAM_USER, step, i);
}

/* central difference of f at *v with step h: returns the estimate, restores *v */
#define CENTRAL(v, h, expr, out)                         \
    do {                                                 \
        float v0_ = (v);                                 \
        (v) = v0_ + (h);                                 \
        double fp_ = (expr);                             \
        (v) = v0_ - (h);                                 \
        double fm_ = (expr);                             \
        (v) = v0_;                                       \
        (out) = (fp_ - fm_) / (2.0 * (double)(h));       \
    } while (0)

static int grad_close(double an, double fd, const char *what, size_t i) {
    if (fabs(an - fd) <= 2e-3 + 1e-2 * fabs(fd)) return 1;
    printf("# %s[%zu]: analytic %.7g, finite difference %.7g\n", what, i, an, fd);
    return 0;
}

/* a[i] == b[i] for all i: the same bits but for the sign of zeros (no NaN) */
static int same_values(const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!(a[i] == b[i])) return 0;
    return 1;
}

/* backward, jvp_forward and jvp_backward of the net built from spec, against central
 * differences (h = 1e-3) of its forward and of its jvp_forward; x0 is the input (NULL: standard
 * normal draws) */
static void fd_check_x(const char *spec, shape3_t in, int B, const float *x0) {
    net_t n;
    int rc = net_build(&n, spec, in, be);
    CHECK(rc == 0, "%s: %s", spec, gt_errmsg());
    if (rc) return;
    net_alloc(&n, B);
    net_init(&n, INIT_TORCH, 5);
    size_t nx = (size_t)B * (size_t)shape3_size(in), ny = (size_t)B * (size_t)shape3_size(n.out);
    float *x = malloc(nx * sizeof(float)), *tx = malloc(nx * sizeof(float)), *dx = malloc(nx * sizeof(float));
    float *dtx = malloc(nx * sizeof(float)), *c = malloc(ny * sizeof(float)), *dty = malloc(ny * sizeof(float));
    if (x0) memcpy(x, x0, nx * sizeof(float));
    else randn(x, nx, 1, 1.0f);
    randn(tx, nx, 2, 1.0f);
    randn(c, ny, 3, 1.0f);
    randn(dty, ny, 4, 1.0f);
    nn_ctx_t ctx = net_ctx(&n, 1, 1, 0, 0);
    ctx.labels = fd_labels;
    const float h = 1e-3f;
    int ok = 1;
    int has_jvp = net_jvp_ok(&n) == 0; /* every layer, inside residual blocks too, has tangent passes */

    /* backward vs differences of the forward */
    net_zero_grad(&n);
    net_forward(&n, &ctx, x, B);
    net_backward(&n, &ctx, c, dx, B);
    float *g = malloc(n.n_params * sizeof(float) + 4);
    memcpy(g, n.grads, n.n_params * sizeof(float));
    for (size_t i = 0; i < n.n_params; i++) {
        double fd;
        CENTRAL(n.params[i], h, loss_fwd(&n, &ctx, x, c, B), fd);
        ok &= grad_close(g[i], fd, "dparams", i);
    }
    for (size_t i = 0; i < nx; i++) {
        double fd;
        CENTRAL(x[i], h, loss_fwd(&n, &ctx, x, c, B), fd);
        ok &= grad_close(dx[i], fd, "dx", i);
    }
    CHECK(ok, "%s: backward", spec);
    float *ty0 = malloc(ny * sizeof(float)), *yp = malloc(ny * sizeof(float)), *xs = malloc(nx * sizeof(float));
    float *zero = calloc(ny, sizeof(float)), *x2 = malloc(nx * sizeof(float));
    if (!has_jvp) goto done; /* e.g. BatchNorm: not allowed in a gradient-penalty critic */

    /* jvp forward: ty against the directional difference of the forward */
    ok = 1;
    const float *ty;
    net_jvp_forward(&n, &ctx, x, tx, B, &ty);
    memcpy(ty0, ty, ny * sizeof(float));
    for (size_t i = 0; i < nx; i++) xs[i] = x[i] + h * tx[i];
    memcpy(yp, net_forward(&n, &ctx, xs, B), ny * sizeof(float));
    for (size_t i = 0; i < nx; i++) xs[i] = x[i] - h * tx[i];
    const float *ym = net_forward(&n, &ctx, xs, B);
    for (size_t i = 0; i < ny; i++) ok &= grad_close(ty0[i], (yp[i] - (double)ym[i]) / (2.0 * h), "ty", i);
    CHECK(ok, "%s: jvp forward", spec);

    /* jvp backward vs differences of S(params, x, tx) */
    ok = 1;
    net_zero_grad(&n);
    net_jvp_forward(&n, &ctx, x, tx, B, &ty);
    net_jvp_backward(&n, &ctx, c, dty, dx, dtx, B);
    memcpy(g, n.grads, n.n_params * sizeof(float));
    for (size_t i = 0; i < n.n_params; i++) {
        double fd;
        CENTRAL(n.params[i], h, loss_jvp(&n, &ctx, x, tx, c, dty, B), fd);
        ok &= grad_close(g[i], fd, "jvp dparams", i);
    }
    for (size_t i = 0; i < nx; i++) {
        double fd;
        CENTRAL(x[i], h, loss_jvp(&n, &ctx, x, tx, c, dty, B), fd);
        ok &= grad_close(dx[i], fd, "jvp dx", i);
        CENTRAL(tx[i], h, loss_jvp(&n, &ctx, x, tx, c, dty, B), fd);
        ok &= grad_close(dtx[i], fd, "jvp dtx", i);
    }
    CHECK(ok, "%s: jvp backward", spec);
    /* NULL dy means zeros (its products skipped where it stays zero): equals passing zeros but
     * for the sign of zeros (== compares them equal, and nonzero floats only when bit-equal) */
    net_zero_grad(&n);
    net_jvp_forward(&n, &ctx, x, tx, B, &ty);
    net_jvp_backward(&n, &ctx, NULL, dty, dx, dtx, B);
    memcpy(g, n.grads, n.n_params * sizeof(float));
    memcpy(xs, dx, nx * sizeof(float));
    memcpy(x2, dtx, nx * sizeof(float));
    net_zero_grad(&n);
    net_jvp_forward(&n, &ctx, x, tx, B, &ty);
    net_jvp_backward(&n, &ctx, zero, dty, dx, dtx, B);
    CHECK(same_values(g, n.grads, n.n_params) && same_values(xs, dx, nx) && same_values(x2, dtx, nx),
          "%s: NULL dy differs from zeros", spec);

    /* net_jvp_tangent after net_forward and the input-gradient backward (the penalty's passes,
     * fusion on) gives net_jvp_forward's y, ty and then the same reverse pass, bit for bit */
    memcpy(ty0, net_jvp_forward(&n, &ctx, x, tx, B, &ty), ny * sizeof(float));
    memcpy(yp, ty, ny * sizeof(float));
    net_zero_grad(&n);
    net_jvp_backward(&n, &ctx, NULL, dty, dx, dtx, B);
    memcpy(g, n.grads, n.n_params * sizeof(float));
    memcpy(xs, dx, nx * sizeof(float));
    memcpy(x2, dtx, nx * sizeof(float));
    net_zero_grad(&n);
    net_forward(&n, &ctx, x, B);
    ctx.skip_param_grads = 1;
    net_backward(&n, &ctx, c, dx, B);
    ctx.skip_param_grads = 0;
    const float *yt = net_jvp_tangent(&n, &ctx, x, tx, B, &ty);
    CHECK(memcmp(yt, ty0, ny * sizeof(float)) == 0 && memcmp(ty, yp, ny * sizeof(float)) == 0,
          "%s: net_jvp_tangent's y, ty differ from net_jvp_forward's", spec);
    net_jvp_backward(&n, &ctx, NULL, dty, dx, dtx, B);
    CHECK(memcmp(g, n.grads, n.n_params * sizeof(float)) == 0 && memcmp(xs, dx, nx * sizeof(float)) == 0 &&
              memcmp(x2, dtx, nx * sizeof(float)) == 0,
          "%s: the reverse pass after net_jvp_tangent differs", spec);

done:
    free(zero);
    free(x2);
    free(g);
    free(ty0);
    free(yp);
    free(xs);
    free(x);
    free(tx);
    free(dx);
    free(dtx);
    free(c);
    free(dty);
    net_free(&n);
}

static void fd_check(const char *spec, shape3_t in, int B) { fd_check_x(spec, in, B, NULL); }


/* ---- thread-count independence --------------------------------------------------------- */

/* Nothing depends on the thread count: our loops split over independent outputs (activation
 * loops above 32768 elements), and the backend cuts each gemm into blocks that depend on its
 * shape only (backend.h). */
static void run_net(const char *spec, shape3_t in, int B, int threads, int fuse, const float *x, const float *dy,
                    const float *tx, float *y, float *dx, float *ty, float *dtx, float **grads) {
    backend_t *b = backend_cpu(threads);
    net_t n;
    net_build(&n, spec, in, b);
    net_fuse(&n, fuse);
    net_alloc(&n, B);
    net_init(&n, INIT_TORCH, 9);
    nn_ctx_t ctx = net_ctx(&n, 1, 1, 0, 0);
    ctx.labels = fd_labels;
    size_t ny = (size_t)B * (size_t)shape3_size(n.out);
    memcpy(y, net_forward(&n, &ctx, x, B), ny * sizeof(float));
    net_zero_grad(&n);
    net_backward(&n, &ctx, dy, dx, B);
    if (net_jvp_ok(&n) == 0) { /* not with BatchNorm (no tangent passes): ty, dtx left as they are */
        const float *t;
        net_jvp_forward(&n, &ctx, x, tx, B, &t);
        memcpy(ty, t, ny * sizeof(float));
        net_jvp_backward(&n, &ctx, dy, dy, dx + (size_t)B * shape3_size(in), dtx, B);
    }
    *grads = malloc(n.n_params * sizeof(float) + 4);
    memcpy(*grads, n.grads, n.n_params * sizeof(float));
    net_free(&n);
}

/* Runs with t0 and t1 threads, fusion (net_fuse) f0 and f1, give the same bits */
static int same_runs_fused(const char *spec, shape3_t in, int B, int t0, int t1, int f0, int f1) {
    net_t n;
    net_build(&n, spec, in, be);
    size_t np = n.n_params, nx = (size_t)B * (size_t)shape3_size(in), ny = (size_t)B * (size_t)shape3_size(n.out);
    net_free(&n);
    float *x = malloc(nx * sizeof(float)), *tx = malloc(nx * sizeof(float)), *dy = malloc(ny * sizeof(float));
    randn(x, nx, 7, 3.0f);
    randn(tx, nx, 8, 1.0f);
    randn(dy, ny, 9, 1.0f);
    float *y[2], *dx[2], *ty[2], *dtx[2], *g[2];
    for (int k = 0; k < 2; k++) {
        y[k] = calloc(ny, sizeof(float));
        ty[k] = calloc(ny, sizeof(float));
        dx[k] = calloc(2 * nx, sizeof(float));
        dtx[k] = calloc(nx, sizeof(float));
        run_net(spec, in, B, k ? t1 : t0, k ? f1 : f0, x, dy, tx, y[k], dx[k], ty[k], dtx[k], &g[k]);
    }
    int same = !memcmp(y[0], y[1], ny * sizeof(float)) && !memcmp(ty[0], ty[1], ny * sizeof(float)) &&
               !memcmp(dx[0], dx[1], 2 * nx * sizeof(float)) && !memcmp(dtx[0], dtx[1], nx * sizeof(float)) &&
               !memcmp(g[0], g[1], np * sizeof(float));
    for (int k = 0; k < 2; k++) {
        free(y[k]);
        free(ty[k]);
        free(dx[k]);
        free(dtx[k]);
        free(g[k]);
    }
    free(x);
    free(tx);
    free(dy);
    backend_cpu(1);
    return same;
}

static int same_runs(const char *spec, shape3_t in, int B, int t0, int t1) {
    return same_runs_fused(spec, in, B, t0, t1, 1, 1);
}

/* ---- backward without an input gradient ----------------------------------------------- */

/* The net built from spec, run on B samples of in (random x, tx, dy, dty): its parameter
 * gradients must be the same bits whether or not the passes are asked for dx (plain) and dx,
 * dtx (jvp): a layer that skips its input gradient must not change what it adds to dw. */
static inline void check_backward_without_dx(const char *spec, shape3_t in, int B) {
    net_t n;
    int rc = net_build(&n, spec, in, be);
    CHECK(rc == 0, "%s", gt_errmsg());
    if (rc) return;
    net_alloc(&n, B);
    net_init(&n, INIT_TORCH, 2);
    nn_ctx_t ctx = net_ctx(&n, 1, 1, 0, 0);
    size_t nx = (size_t)B * (size_t)shape3_size(in), ny = (size_t)B * (size_t)shape3_size(n.out);
    float *x = malloc(nx * sizeof(float)), *tx = malloc(nx * sizeof(float)), *dx = malloc(nx * sizeof(float));
    float *dtx = malloc(nx * sizeof(float)), *dy = malloc(ny * sizeof(float)), *dty = malloc(ny * sizeof(float));
    randn(x, nx, 11, 1.0f);
    randn(tx, nx, 12, 1.0f);
    randn(dy, ny, 13, 1.0f);
    randn(dty, ny, 14, 1.0f);
    float *g1 = malloc(n.n_params * sizeof(float)), *g2 = malloc(n.n_params * sizeof(float));
    for (int jvp = 0; jvp < 2; jvp++) {
        for (int k = 0; k < 2; k++) {
            net_zero_grad(&n);
            if (jvp) {
                const float *ty;
                net_jvp_forward(&n, &ctx, x, tx, B, &ty);
                net_jvp_backward(&n, &ctx, dy, dty, k ? NULL : dx, k ? NULL : dtx, B);
            } else {
                net_forward(&n, &ctx, x, B);
                net_backward(&n, &ctx, dy, k ? NULL : dx, B);
            }
            memcpy(k ? g2 : g1, n.grads, n.n_params * sizeof(float));
        }
        CHECK(memcmp(g1, g2, n.n_params * sizeof(float)) == 0, "%s: jvp=%d: gradients differ without dx", spec, jvp);
    }
    free(g1);
    free(g2);
    free(x);
    free(tx);
    free(dx);
    free(dtx);
    free(dy);
    free(dty);
    net_free(&n);
}

/* ---- spec errors ------------------------------------------------------------------------ */

/* 1 when building spec on in fails with exactly the message want; else prints why and 0. */
static inline int build_err(const char *spec, shape3_t in, const char *want) {
    net_t n;
    if (net_build(&n, spec, in, be) == 0) {
        printf("# spec '%s' was accepted, expected error '%s'\n", spec, want);
        net_free(&n);
        return 0;
    }
    if (strcmp(gt_errmsg(), want) != 0) {
        printf("# spec '%s': error '%s', expected '%s'\n", spec, gt_errmsg(), want);
        return 0;
    }
    return 1;
}

#endif
