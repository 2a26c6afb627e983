/* test_layer_conv.c: the spatial layers (lib/nn/layer_conv.c, layer_convT.c, layer_pool.c)
 * and their index arithmetic (lib/backend/conv_math.h): output
 * shapes and the errors that name a bad layer; initialisation draws (torch's fan-in of each
 * kind); backward, jvp_forward and jvp_backward of each kind, alone and stacked, against
 * central differences accumulated in double (odd sizes, non-square kernels, strides, padding,
 * output padding, no bias, both convolution paths); a batch split into several chunks against
 * one sample at a time; bit-identical results with 1, 2 and 3 threads; backward with
 * skip_param_grads (every kind with parameters) leaves the gradients alone and gives the same
 * input gradients. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/common.h"
#include "lib/backend/conv_math.h"
#include "lib/nn/net.h"
#include "lib/base/philox.h"
#include "harness.h"
#include "net_check.h"

/* ---- index arithmetic against its definition --------------------------------------------- */

static void test_index_maps(void) {
    int bad = 0;
    for (int in = 1; in <= 9; in++)
        for (int k = 1; k <= 5; k++)
            for (int s = 1; s <= 3; s++)
                for (int p = 0; p <= 3; p++) {
                    int n = conv_out_len(in, k, s, p);
                    int want_n = in + 2 * p >= k ? (in + 2 * p - k) / s + 1 : 0;
                    bad |= n != want_n;
                    for (int t = 0; t < k; t++) { /* the grid range whose tap t lands inside */
                        int lo = n, hi = 0;
                        for (int o = 0; o < n; o++) {
                            int src = conv_src(o, t, s, p);
                            if (src >= 0 && src < in) {
                                if (o < lo) lo = o;
                                hi = o + 1;
                            }
                        }
                        int glo = conv_tap_lo(t, s, p), ghi = conv_tap_hi(t, s, p, in, n);
                        if (hi > lo) bad |= glo != lo || ghi != hi;
                        else bad |= ghi > glo && glo < n; /* empty either way */
                    }
                    if (2 * p > k || n <= 0) continue;
                    for (int o = 0; o < n; o++) { /* pooling windows: torch's clipping and padded count */
                        int lo, hi, cnt = pool_window(o, k, s, p, in, &lo, &hi);
                        int start = o * s - p, end = start + k < in + p ? start + k : in + p;
                        bad |= cnt != end - start || lo != (start > 0 ? start : 0) || hi != (end < in ? end : in);
                        bad |= lo >= hi; /* never empty when the padding is at most half the kernel */
                    }
                }
    CHECK(!bad, "conv_out_len / conv_tap_lo / conv_tap_hi / pool_window disagree with their definitions");
    /* torch's nearest map equals dst / K for every size a layer accepts here */
    bad = 0;
    for (int K = 1; K <= 16; K++)
        for (int in = 1; in <= 300; in += 7)
            for (int d = 0; d < in * K; d++) bad |= upsample_src(d, in, K) != d / K;
    CHECK(!bad, "upsample_src differs from dst / K");
    CHECK(convT_out_len(7, 4, 2, 1, 0) == 14 && convT_out_len(3, 3, 2, 1, 1) == 6, "convT_out_len");
    CHECK(maxpool_takes(1.0f, 0.5f) && !maxpool_takes(0.5f, 0.5f) && maxpool_takes(NAN, 3.0f) &&
              !maxpool_takes(3.0f, NAN),
          "maxpool_takes: larger or NaN takes over, ties keep the first");
}

/* ---- shapes, errors, normalised text --------------------------------------------------- */

static int out_is(const char *spec, shape3_t in, int c, int h, int w) {
    net_t n;
    if (net_build(&n, spec, in, be)) {
        printf("# spec '%s': %s\n", spec, gt_errmsg());
        return 0;
    }
    int ok = n.out.c == c && n.out.h == h && n.out.w == w;
    if (!ok) printf("# spec '%s': output %dx%dx%d, expected %dx%dx%d\n", spec, n.out.c, n.out.h, n.out.w, c, h, w);
    net_free(&n);
    return ok;
}

static void test_shapes_and_errors(void) {
    shape3_t img = {3, 28, 27};
    CHECK(out_is("conv 8 k3", img, 8, 26, 25), "conv k3");
    CHECK(out_is("conv 8 k4 s2 p1", img, 8, 14, 13), "conv k4 s2 p1");
    CHECK(out_is("conv 5 k3x5 s2x3 p1x2 nobias", img, 5, 14, 9), "conv non-square");
    CHECK(out_is("convT 4 k4 s2 p1", (shape3_t){3, 7, 6}, 4, 14, 12), "convT k4 s2 p1");
    CHECK(out_is("convT 4 k3x2 s2x3 p1x0 op1x2", (shape3_t){3, 5, 4}, 4, 10, 13), "convT output padding");
    CHECK(out_is("maxpool k2", img, 3, 14, 13), "maxpool k2");
    CHECK(out_is("maxpool k3 s2 p1", img, 3, 14, 14), "maxpool k3 s2 p1");
    CHECK(out_is("avgpool k3x2 s1x2 p1x1", img, 3, 28, 14), "avgpool");
    CHECK(out_is("upsample 3", img, 3, 84, 81), "upsample 3");
    CHECK(build_err("conv 4 k9", (shape3_t){1, 5, 5}, "layer 1 (conv): kernel 9x9 is larger than the padded input 5x5"),
          "conv kernel");
    CHECK(build_err("convT 4 k4 s2 op2", (shape3_t){1, 5, 5},
                    "layer 1 (convT): output padding 2x2 must be smaller than the stride 2x2"),
          "convT output padding");
    CHECK(build_err("convT 4 k1 p3", (shape3_t){1, 5, 5},
                    "layer 1 (convT): output -1x-1 is empty (input 5x5, padding 3x3)"),
          "convT empty");
    CHECK(build_err("maxpool k3 p2", (shape3_t){1, 5, 5},
                    "layer 1 (maxpool): padding 2x2 must be at most half the kernel 3x3"),
          "maxpool padding");
    CHECK(build_err("avgpool k6", (shape3_t){1, 5, 5},
                    "layer 1 (avgpool): kernel 6x6 is larger than the padded input 5x5"),
          "avgpool kernel");
    CHECK(build_err("conv 4", img, "layer 1 (conv): missing the kernel size kN"), "conv no kernel");
    CHECK(build_err("upsample", img, "layer 1 (upsample): missing the scale factor"), "upsample no factor");
    /* normalised text: every argument written out, and it builds the same net */
    net_t n, m;
    const char *spec = "conv 8 k3x2 s2 nobias; maxpool k3 s2 p1; convT 4 k3 s2 p1 op1; avgpool k2; upsample 2";
    int rc = net_build(&n, spec, img, be);
    CHECK(rc == 0, "%s", gt_errmsg());
    if (rc) return;
    CHECK(strcmp(n.spec, "conv 8 k3x2 s2 p0 nobias; maxpool k3 s2 p1; convT 4 k3 s2 p1 op1; avgpool k2 s2 p0; "
                         "upsample 2") == 0,
          "normalised: '%s'", n.spec);
    rc = net_build(&m, n.spec, img, be);
    CHECK(rc == 0 && strcmp(m.spec, n.spec) == 0 && m.out.h == n.out.h && m.out.w == n.out.w, "round trip");
    if (!rc) net_free(&m);
    net_free(&n);
}

/* ---- initialisation ------------------------------------------------------------------- */

/* the documented draws, element by element, and the bound 1/sqrt(fan_in) */
static void check_init(const char *spec, shape3_t in, long fan_in) {
    net_t n;
    int rc = net_build(&n, spec, in, be);
    CHECK(rc == 0, "%s", gt_errmsg());
    if (rc) return;
    net_alloc(&n, 1);
    net_init(&n, INIT_TORCH, 42);
    layer_t *l = &n.layers[1];
    size_t nw = l->n_params - l->n_bias;
    float bound = (float)(1.0 / sqrt((double)fan_in));
    int bad = 0;
    double mx = 0;
    for (size_t j = 0; j < nw; j++) {
        bad |= l->w[j] != (2.0f * philox_uniform(42, PHILOX_STREAM_INIT, 1, j) - 1.0f) * bound;
        mx = fmax(mx, fabs(l->w[j]));
    }
    for (size_t j = 0; j < l->n_bias; j++)
        bad |= l->b[j] != (2.0f * philox_uniform(42, PHILOX_STREAM_INIT, 1, nw + j) - 1.0f) * bound;
    CHECK(!bad, "%s: torch init differs from the documented draw", spec);
    CHECK(mx <= bound && mx > 0.9 * bound, "%s: max |w| %g, bound %g (fan_in %ld)", spec, mx, bound, fan_in);
    net_init(&n, INIT_DCGAN, 42);
    double s2 = 0;
    for (size_t j = 0; j < nw; j++) s2 += (double)l->w[j] * l->w[j];
    CHECK(fabs(sqrt(s2 / (double)nw) / 0.02 - 1) < 0.05, "%s: dcgan std %g", spec, sqrt(s2 / (double)nw));
    CHECK(l->w[3] == 0.02f * philox_normal(42, PHILOX_STREAM_INIT, 1, 3), "%s: dcgan draw", spec);
    for (size_t j = 0; j < l->n_bias; j++) bad |= l->b[j] != 0.0f;
    CHECK(!bad, "%s: dcgan bias not 0", spec);
    net_free(&n);
}

static void test_init_draws(void) {
    check_init("relu; conv 40 k3x5", (shape3_t){20, 9, 9}, 20 * 15);   /* Conv2d: in * kh * kw */
    check_init("relu; convT 30 k4x3 s2", (shape3_t){50, 5, 5}, 30 * 12); /* ConvTranspose2d: out * kh * kw */
}

/* ---- finite differences ---------------------------------------------------------------- */

static void test_fd_conv(void) {
    fd_check("conv 3 k3x2 s2x1 p1x0", (shape3_t){2, 7, 6}, 2);   /* im2col path, non-square, strided */
    fd_check("conv 2 k3 nobias", (shape3_t){3, 5, 5}, 2);
    fd_check("conv 4 k2 s3 p2", (shape3_t){2, 6, 7}, 3);         /* padding larger than the kernel's reach */
    fd_check("conv 1 k5 p2", (shape3_t){4, 6, 5}, 2);            /* kn2row path, one output channel */
    fd_check("conv 2 k3x1 p1x0 nobias", (shape3_t){5, 4, 6}, 2); /* kn2row path, weight regrouped */
}

static void test_fd_convT(void) {
    fd_check("convT 3 k4 s2 p1", (shape3_t){2, 3, 4}, 2);
    fd_check("convT 2 k3x2 s2x3 p1x0 op1x2 nobias", (shape3_t){3, 3, 2}, 2);
    fd_check("convT 2 k3 p1", (shape3_t){3, 4, 3}, 2);
    fd_check("convT 3 k2 s3 p1", (shape3_t){2, 3, 3}, 2); /* taps that land in no output pixel */
}

/* inputs that are a shuffled grid of well-separated values, so that a step of 1e-3 never
 * changes which element of a pooling window is the largest */
static float *spaced(size_t n, uint32_t step) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = 0.05f * ((float)i - (float)n / 2);
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)philox_u32(5, PHILOX_STREAM_USER, step, i) % (i + 1);
        float t = x[i];
        x[i] = x[j];
        x[j] = t;
    }
    return x;
}

static void test_fd_pool_upsample(void) {
    shape3_t s = {2, 7, 6};
    float *x = spaced(2 * 2 * 7 * 6, 1);
    fd_check_x("maxpool k2", s, 2, x);
    fd_check_x("maxpool k3 s2 p1", s, 2, x);
    fd_check_x("maxpool k3x2 s1x2 p1x1", s, 2, x); /* overlapping windows: gradients add */
    fd_check_x("maxpool k3 s2 p1; tanh; conv 2 k2", s, 2, x);
    free(x);
    fd_check("avgpool k2", s, 2);
    fd_check("avgpool k3 s2 p1", s, 2);
    fd_check("avgpool k2x3 s1x2 p1", s, 2);
    fd_check("upsample 2", (shape3_t){2, 3, 4}, 2);
    fd_check("upsample 3; tanh", (shape3_t){2, 3, 2}, 2);
}

/* stacks with curvature between the linear maps, so the tangent passes' second-order terms
 * flow through every kind */
static void test_fd_stacks(void) {
    fd_check("conv 3 k3 p1; tanh; avgpool k2; upsample 2; convT 2 k4 s2 p1; sigmoid; conv 1 k3 p1; flatten; linear 2",
             (shape3_t){2, 4, 6}, 2);
    /* max pooling first, on separated inputs: after a trainable layer, a step of 1e-3 in a weight
     * could change a window's argmax, and with it the tangent (ty = tx at the argmax) by a jump */
    float *x = spaced(2 * 2 * 8 * 8, 2);
    fd_check_x("maxpool k2; conv 4 k3 s2 p1 nobias; lrelu 0.2; ln; tanh; convT 2 k3 s2 p1 op1; tanh; flatten; linear 1",
               (shape3_t){2, 8, 8}, 2, x);
    free(x);
}

/* ---- chunks ------------------------------------------------------------------------------- */

/* A batch processed in several chunks (the layer's workspace_batch) gives each sample what it
 * gets alone, and the weight gradient of the whole batch is the sum of the samples'. */
static void chunk_check(const char *spec, shape3_t in, int B) {
    net_t n;
    int rc = net_build(&n, spec, in, be);
    CHECK(rc == 0, "%s", gt_errmsg());
    if (rc) return;
    CHECK(n.layers[0].workspace_batch > 0 && n.layers[0].workspace_batch < B, "%s: one chunk of %d for B = %d",
          spec, n.layers[0].workspace_batch, B);
    net_alloc(&n, B);
    net_init(&n, INIT_TORCH, 4);
    size_t sx = (size_t)shape3_size(in), sy = (size_t)shape3_size(n.out), np = n.n_params;
    float *x = malloc(B * sx * sizeof(float)), *dy = malloc(B * sy * sizeof(float));
    float *y = malloc(B * sy * sizeof(float)), *dx = malloc(B * sx * sizeof(float)), *dx1 = malloc(sx * sizeof(float));
    double *gsum = calloc(np, sizeof(double));
    randn(x, B * sx, 21, 1.0f);
    randn(dy, B * sy, 22, 1.0f);
    nn_ctx_t ctx = net_ctx(&n, 1, 1, 0, 0);
    net_zero_grad(&n);
    memcpy(y, net_forward(&n, &ctx, x, B), B * sy * sizeof(float));
    net_backward(&n, &ctx, dy, dx, B);
    float *g = malloc(np * sizeof(float));
    memcpy(g, n.grads, np * sizeof(float));
    double ey = 0, edx = 0, my = 0, mdx = 0, eg = 0, mg = 0;
    for (int b = 0; b < B; b++) {
        net_zero_grad(&n);
        const float *y1 = net_forward(&n, &ctx, x + b * sx, 1);
        for (size_t k = 0; k < sy; k++) {
            ey = fmax(ey, fabs(y1[k] - y[b * sy + k]));
            my = fmax(my, fabs(y[b * sy + k]));
        }
        net_backward(&n, &ctx, dy + b * sy, dx1, 1);
        for (size_t k = 0; k < sx; k++) {
            edx = fmax(edx, fabs(dx1[k] - dx[b * sx + k]));
            mdx = fmax(mdx, fabs(dx[b * sx + k]));
        }
        for (size_t k = 0; k < np; k++) gsum[k] += n.grads[k];
    }
    for (size_t k = 0; k < np; k++) {
        eg = fmax(eg, fabs(gsum[k] - g[k]));
        mg = fmax(mg, fabs(gsum[k]));
    }
    CHECK(ey <= 1e-5 * my && edx <= 1e-5 * mdx && eg <= 1e-5 * mg, "%s: y %g, dx %g, dparams %g (relative)", spec,
          ey / my, edx / mdx, eg / mg);
    free(x), free(dy), free(y), free(dx), free(dx1), free(gsum), free(g);
    net_free(&n);
}

static void test_chunks(void) {
    chunk_check("conv 64 k3 p1", (shape3_t){64, 32, 32}, 8);     /* im2col: 6 samples per chunk */
    chunk_check("conv 2 k5 p2", (shape3_t){400, 40, 40}, 7);     /* kn2row: 5 per chunk */
    chunk_check("convT 128 k4 s2 p1", (shape3_t){256, 7, 7}, 40); /* 37 per chunk */
}

/* ---- skipping parameter gradients -------------------------------------------------------- */

/* backward (and with jvp, jvp_backward) with ctx.skip_param_grads writes the same dx (dtx) bit
 * for bit and leaves every parameter gradient as it was */
static int skip_same(const char *spec, shape3_t in, int B, int jvp) {
    net_t n;
    if (net_build(&n, spec, in, be)) {
        printf("# %s: %s\n", spec, gt_errmsg());
        return 0;
    }
    net_alloc(&n, B);
    net_init(&n, INIT_TORCH, 6);
    size_t nx = (size_t)B * (size_t)shape3_size(in), ny = (size_t)B * (size_t)shape3_size(n.out);
    float *x = malloc(nx * sizeof(float)), *tx = malloc(nx * sizeof(float)), *dy = malloc(ny * sizeof(float));
    float *dx[2], *dtx[2];
    randn(x, nx, 31, 1.0f);
    randn(tx, nx, 32, 1.0f);
    randn(dy, ny, 33, 1.0f);
    int ok = 1;
    for (int k = 0; k < 2; k++) {
        dx[k] = calloc(nx, sizeof(float));
        dtx[k] = calloc(nx, sizeof(float));
        nn_ctx_t ctx = net_ctx(&n, 1, 1, 0, 0);
        ctx.skip_param_grads = k;
        for (size_t i = 0; i < n.n_params; i++) n.grads[i] = 7.0f;
        if (jvp) {
            const float *ty;
            net_jvp_forward(&n, &ctx, x, tx, B, &ty);
            net_jvp_backward(&n, &ctx, dy, dy, dx[k], dtx[k], B);
        } else {
            net_forward(&n, &ctx, x, B);
            net_backward(&n, &ctx, dy, dx[k], B);
        }
        int untouched = 1;
        for (size_t i = 0; i < n.n_params; i++) untouched &= n.grads[i] == 7.0f;
        if (k == 1 && !untouched) printf("# %s: a parameter gradient changed with skip_param_grads\n", spec);
        if (k == 0 && untouched) printf("# %s: no parameter gradient changed without skip_param_grads\n", spec);
        ok &= k == 1 ? untouched : !untouched;
    }
    ok &= !memcmp(dx[0], dx[1], nx * sizeof(float)) && !memcmp(dtx[0], dtx[1], nx * sizeof(float));
    for (int k = 0; k < 2; k++) free(dx[k]), free(dtx[k]);
    free(x), free(tx), free(dy);
    net_free(&n);
    return ok;
}

static void test_skip_param_grads(void) {
    CHECK(skip_same("conv 4 k3 p1; bn; lrelu 0.2; convT 3 k4 s2 p1; ln; tanh; conv 1 k3 p1; flatten; linear 5",
                    (shape3_t){3, 6, 5}, 3, 0),
          "plain passes");
    CHECK(skip_same("conv 4 k3 s2 p1; lrelu 0.2; convT 3 k4 s2 p1; ln; tanh; conv 2 k3 p1; flatten; linear 1",
                    (shape3_t){3, 6, 6}, 3, 1),
          "tangent passes");
}

/* ---- threads -------------------------------------------------------------------------------- */

static void test_thread_independence(void) {
    const char *stack = "conv 32 k4 s2 p1; lrelu 0.2; convT 16 k4 s2 p1 op1; tanh; maxpool k3 s2 p1; avgpool k2; "
                        "upsample 2; conv 2 k3 p1; flatten; linear 3";
    CHECK(same_runs(stack, (shape3_t){3, 32, 30}, 24, 1, 2), "1 and 2 threads differ");
    CHECK(same_runs(stack, (shape3_t){3, 32, 30}, 13, 1, 3), "1 and 3 threads differ");
}

int main(void) {
    be = backend_cpu(1);
    RUN(test_index_maps);
    RUN(test_shapes_and_errors);
    RUN(test_init_draws);
    RUN(test_fd_conv);
    RUN(test_fd_convT);
    RUN(test_fd_pool_upsample);
    RUN(test_fd_stacks);
    RUN(test_chunks);
    RUN(test_skip_param_grads);
    RUN(test_thread_independence);
    return harness_done();
}
