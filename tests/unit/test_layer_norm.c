/* test_layer_norm.c: the normalisation, dropout and noise layers (lib/nn/layer_bn.c, layer_ln.c,
 * layer_in.c, layer_dropout.c, layer_noise.c) built directly as layer_t structs: BatchNorm training-mode backward
 * (2d, and 1d at B = 2) and eval-mode backward against central differences of forward;
 * running statistics and num_batches_tracked against a plain double computation; LayerNorm
 * forward statistics, backward, jvp_forward against differences of forward and jvp_backward
 * against differences of jvp_forward's outputs; instance normalization's statistics per
 * (sample, channel), its backward and tangent passes likewise; dropout's zero fraction, scale, masks keyed
 * by (seed, step, layer index, global sample index) whatever the batch split, backward and tangent masks;
 * the noise layer's draw by its definition and keys, its moments, and its straight-through passes;
 * thread-count independence of every result. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/common.h"
#include "lib/nn/layer.h"
#include "lib/base/philox.h"
#include "harness.h"

static backend_t *be;

/* ---- a layer with its own buffers ----------------------------------------------------- */

typedef struct {
    layer_t l;
    float *params, *grads, *state, *saved, *ws;
    long long nbt;
    int B;
} tl_t;

static float *fcalloc(size_t n) { return gt_xcalloc(n ? n : 1, sizeof(float)); }

static void tl_make(tl_t *t, const layer_ops_t *ops, shape3_t in, int B, int affine, double eps, double mom,
                    float p) {
    memset(t, 0, sizeof *t);
    layer_t *l = &t->l;
    l->ops = ops;
    l->index = 2;
    l->in = in;
    l->has_bias = affine;
    l->eps = eps;
    l->momentum = mom;
    l->p = p;     /* dropout's probability */
    l->sigma = p; /* noise's standard deviation */
    int rc = ops->setup(l);
    CHECK(rc == 0, "setup failed: %s", gt_errmsg());
    t->B = B;
    t->params = fcalloc(l->n_params);
    t->grads = fcalloc(l->n_params);
    t->state = fcalloc(l->n_state);
    t->saved = fcalloc((size_t)B * l->n_saved + l->n_saved_fixed);
    t->ws = fcalloc((size_t)B * l->workspace);
    if (l->n_params) {
        l->w = t->params;
        l->b = t->params + (l->n_params - l->n_bias);
        l->dw = t->grads;
        l->db = t->grads + (l->n_params - l->n_bias);
    }
    l->state = l->n_state ? t->state : NULL;
    l->saved = t->saved;
    l->num_batches_tracked = l->n_state ? &t->nbt : NULL;
    if (ops->init) ops->init(be, l, INIT_TORCH, 7);
}

static void tl_free(tl_t *t) {
    free(t->params);
    free(t->grads);
    free(t->state);
    free(t->saved);
    free(t->ws);
}

static nn_ctx_t mkctx(tl_t *t, int training) {
    nn_ctx_t c = {be, training, 1234, 5, 0, t->ws, 0, NULL, NULL, NULL, NULL, 0};
    return c;
}

static void fill(float *a, size_t n, uint32_t step, float scale, float shift) {
    for (size_t i = 0; i < n; i++) a[i] = shift + scale * philox_normal(99, PHILOX_STREAM_USER, step, i);
}

static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static double maxabs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}

/* ---- finite differences of L = sum dy . forward(x) -------------------------------------- */

/* L(x) with training flag; state is restored so running statistics do not drift */
static double loss_fwd(tl_t *t, int training, const float *x, const float *dy, float *y) {
    nn_ctx_t c = mkctx(t, training);
    float st[4096];
    size_t ns = t->l.n_state;
    memcpy(st, t->state, sizeof(float) * ns);
    t->l.ops->forward(&c, &t->l, y, x, t->B);
    memcpy(t->state, st, sizeof(float) * ns);
    return dot(dy, y, (size_t)t->B * shape3_size(t->l.out));
}

/* central difference of L in coordinate v[k], relative step h */
static double fd_coord(tl_t *t, int training, float *x, const float *dy, float *y, float *v, size_t k, double h) {
    float old = v[k];
    float step = (float)(h * fmax(1.0, fabs(old)));
    v[k] = old + step;
    double lp = loss_fwd(t, training, x, dy, y);
    float up = v[k];
    v[k] = old - step;
    double lm = loss_fwd(t, training, x, dy, y);
    float dn = v[k];
    v[k] = old;
    return (lp - lm) / ((double)up - (double)dn);
}

/* backward vs central differences for x and every parameter; returns the worst error
 * relative to the gradient's largest magnitude */
static double grad_check(tl_t *t, int training) {
    size_t nx = (size_t)t->B * shape3_size(t->l.in), ny = (size_t)t->B * shape3_size(t->l.out);
    float *x = fcalloc(nx), *dy = fcalloc(ny), *y = fcalloc(ny), *dx = fcalloc(nx);
    fill(x, nx, 1, 1.5f, 0.3f);
    fill(dy, ny, 2, 1.0f, 0.0f);
    for (size_t i = 0; i < t->l.n_params; i++) t->params[i] += 0.3f * philox_normal(3, PHILOX_STREAM_USER, 3, i);
    nn_ctx_t c = mkctx(t, training);
    loss_fwd(t, training, x, dy, y);
    memset(t->grads, 0, sizeof(float) * t->l.n_params);
    t->l.ops->backward(&c, &t->l, dx, dy, x, y, t->B);
    double worst = 0, sx = fmax(maxabs(dx, nx), 1e-3), sp = fmax(maxabs(t->grads, t->l.n_params), 1e-3);
    for (size_t k = 0; k < nx; k++) worst = fmax(worst, fabs(fd_coord(t, training, x, dy, y, x, k, 1e-2) - dx[k]) / sx);
    for (size_t k = 0; k < t->l.n_params; k++)
        worst = fmax(worst, fabs(fd_coord(t, training, x, dy, y, t->params, k, 1e-2) - t->grads[k]) / sp);
    free(x), free(dy), free(y), free(dx);
    return worst;
}

/* ---- BatchNorm ---------------------------------------------------------------------------- */

static void test_bn2d_train_backward(void) {
    tl_t t;
    tl_make(&t, &layer_bn_ops, (shape3_t){3, 2, 3}, 4, 1, 1e-5, 0.1, 0);
    double e = grad_check(&t, 1);
    CHECK(e < 1e-2, "BN2d training backward vs finite differences: worst relative error %g", e);
    tl_free(&t);
}

static void test_bn1d_train_backward_b2(void) {
    tl_t t;
    /* with two samples x_hat is +-(x1 - x2) / sqrt((x1 - x2)^2 / 4 + eps): with eps = 1e-5 its
     * derivative is nearly 0 and differences in float32 are noise, so a large eps gives the
     * check something to see (the formula is the same) */
    tl_make(&t, &layer_bn_ops, (shape3_t){5, 1, 1}, 2, 1, 0.5, 0.1, 0);
    double e = grad_check(&t, 1);
    CHECK(e < 1e-2, "BN1d (B = 2) training backward vs finite differences: worst relative error %g", e);
    tl_free(&t);
    tl_make(&t, &layer_bn_ops, (shape3_t){4, 1, 1}, 3, 0, 1e-3, 0.1, 0);
    e = grad_check(&t, 1);
    CHECK(e < 1e-2, "BN1d noaffine backward: worst relative error %g", e);
    tl_free(&t);
}

static void test_bn2d_eval(void) {
    tl_t t;
    tl_make(&t, &layer_bn_ops, (shape3_t){3, 2, 2}, 3, 1, 1e-5, 0.1, 0);
    for (int c = 0; c < 3; c++) {
        t.state[c] = 0.2f * (float)c - 0.1f;
        t.state[3 + c] = 0.5f + (float)c;
    }
    double e = grad_check(&t, 0);
    CHECK(e < 1e-2, "BN2d eval backward vs finite differences: worst relative error %g", e);
    /* eval output by the formula, and the state untouched */
    float x[36], y[36];
    fill(x, 36, 9, 1.0f, 0.0f);
    nn_ctx_t c = mkctx(&t, 0);
    float st[6];
    memcpy(st, t.state, sizeof st);
    t.l.ops->forward(&c, &t.l, y, x, 3);
    double worst = 0;
    for (int i = 0; i < 3; i++)
        for (int ch = 0; ch < 3; ch++)
            for (int k = 0; k < 4; k++) {
                int o = (i * 3 + ch) * 4 + k;
                double want = (x[o] - st[ch]) / sqrt(st[3 + ch] + 1e-5) * t.params[ch] + t.params[3 + ch];
                worst = fmax(worst, fabs(y[o] - want));
            }
    CHECK(worst < 1e-5, "eval output differs from (x - rm) / sqrt(rv + eps) w + b by %g", worst);
    CHECK(memcmp(st, t.state, sizeof st) == 0, "eval mode changed the running statistics");
    CHECK(t.nbt == 0, "eval mode counted a batch");
    tl_free(&t);
}

/* running statistics after three training passes, against a plain double computation */
static void test_bn_running_stats(void) {
    enum { C = 3, S = 5, B = 4 };
    tl_t t;
    tl_make(&t, &layer_bn_ops, (shape3_t){C, 1, 5}, B, 1, 1e-5, 0.3, 0);
    CHECK(t.state[0] == 0.0f && t.state[C] == 1.0f, "init: running_mean 0, running_var 1");
    double rm[C] = {0}, rv[C] = {1, 1, 1};
    float x[B * C * S], y[B * C * S];
    for (int pass = 0; pass < 3; pass++) {
        fill(x, B * C * S, 20 + pass, 1.0f + pass, (float)pass);
        nn_ctx_t c = mkctx(&t, 1);
        t.l.ops->forward(&c, &t.l, y, x, B);
        for (int ch = 0; ch < C; ch++) {
            double s = 0, q = 0, n = B * S;
            for (int i = 0; i < B; i++)
                for (int k = 0; k < S; k++) s += x[(i * C + ch) * S + k];
            for (int i = 0; i < B; i++)
                for (int k = 0; k < S; k++) q += pow(x[(i * C + ch) * S + k] - s / n, 2);
            rm[ch] = 0.7 * rm[ch] + 0.3 * s / n;
            rv[ch] = 0.7 * rv[ch] + 0.3 * q / (n - 1);
            /* the output is normalised with the biased variance: mean 0, mean square n/(n) */
            double ys = 0, yq = 0;
            for (int i = 0; i < B; i++)
                for (int k = 0; k < S; k++) {
                    double v = y[(i * C + ch) * S + k];
                    ys += v;
                    yq += v * v;
                }
            CHECK(fabs(ys / n) < 1e-5 && fabs(yq / n - q / n / (q / n + 1e-5)) < 1e-5,
                  "pass %d channel %d: output mean %g, mean square %g", pass, ch, ys / n, yq / n);
        }
    }
    for (int ch = 0; ch < C; ch++) {
        CHECK_CLOSE(t.state[ch], rm[ch], 1e-6);
        CHECK_CLOSE(t.state[C + ch], rv[ch], 1e-6);
    }
    CHECK(t.nbt == 3, "num_batches_tracked %lld after 3 passes", t.nbt);
    tl_free(&t);
}

static void test_bn_init_dcgan(void) {
    tl_t t;
    tl_make(&t, &layer_bn_ops, (shape3_t){512, 1, 1}, 1, 1, 1e-5, 0.1, 0);
    t.l.ops->init(be, &t.l, INIT_DCGAN, 11);
    double s = 0, q = 0;
    int zero_b = 1;
    for (int c = 0; c < 512; c++) {
        s += t.params[c];
        q += (t.params[c] - 1) * (t.params[c] - 1);
        zero_b &= t.params[512 + c] == 0.0f;
    }
    CHECK(fabs(s / 512 - 1) < 0.005 && fabs(sqrt(q / 512) - 0.02) < 0.004, "DCGAN BN weight mean %g sd %g", s / 512,
          sqrt(q / 512));
    CHECK(zero_b, "DCGAN BN bias not zero");
    t.l.ops->init(be, &t.l, INIT_TORCH, 11);
    CHECK(t.params[0] == 1.0f && t.params[511] == 1.0f && t.params[512] == 0.0f, "torch BN init is w 1, b 0");
    tl_free(&t);
}

static void test_setup_errors(void) {
    layer_t l = {0};
    l.ops = &layer_bn_ops;
    l.in = (shape3_t){2, 1, 1};
    l.eps = 0;
    l.momentum = 0.1;
    CHECK(layer_bn_ops.setup(&l) == -1 && strcmp(gt_errmsg(), "eps must be positive") == 0, "bn eps 0: %s",
          gt_errmsg());
    l.ops = &layer_dropout_ops;
    l.p = 1.0f;
    CHECK(layer_dropout_ops.setup(&l) == -1, "dropout p = 1 accepted");
    l.p = -0.1f;
    CHECK(layer_dropout_ops.setup(&l) == -1, "dropout p < 0 accepted");
}

/* ---- LayerNorm ------------------------------------------------------------------------- */

static void test_ln_forward_backward(void) {
    tl_t t;
    tl_make(&t, &layer_ln_ops, (shape3_t){2, 3, 2}, 3, 0, 1e-5, 0, 0);
    CHECK(t.l.n_params == 0 && t.l.w == NULL, "noaffine ln has parameters");
    float x[36], y[36];
    fill(x, 36, 30, 2.0f, 1.0f);
    nn_ctx_t c = mkctx(&t, 1);
    t.l.ops->forward(&c, &t.l, y, x, 3);
    for (int i = 0; i < 3; i++) {
        double s = 0, q = 0;
        for (int k = 0; k < 12; k++) s += y[i * 12 + k], q += (double)y[i * 12 + k] * y[i * 12 + k];
        CHECK(fabs(s / 12) < 1e-6 && fabs(q / 12 - 1) < 1e-4, "sample %d: mean %g mean square %g", i, s / 12, q / 12);
    }
    double e = grad_check(&t, 1);
    CHECK(e < 1e-2, "LN noaffine backward: worst relative error %g", e);
    tl_free(&t);
    tl_make(&t, &layer_ln_ops, (shape3_t){2, 3, 2}, 3, 1, 1e-5, 0, 0);
    CHECK(t.l.w_ndim == 3 && t.l.w_shape[0] == 2 && t.l.w_shape[1] == 3 && t.l.w_shape[2] == 2,
          "LN weight shape is not C x H x W");
    e = grad_check(&t, 1);
    CHECK(e < 1e-2, "LN affine backward: worst relative error %g", e);
    tl_free(&t);
    tl_make(&t, &layer_ln_ops, (shape3_t){6, 1, 1}, 2, 1, 1e-5, 0, 0);
    CHECK(t.l.w_ndim == 0, "LN on features has a 1-D weight");
    e = grad_check(&t, 1);
    CHECK(e < 1e-2, "LN on features backward: worst relative error %g", e);
    tl_free(&t);
}

/* S = sum dy . y + sum dty . ty from jvp_forward */
static double jvp_loss(tl_t *t, const float *x, const float *tx, const float *dy, const float *dty, float *y,
                       float *ty) {
    nn_ctx_t c = mkctx(t, 1);
    size_t n = (size_t)t->B * shape3_size(t->l.out);
    t->l.ops->jvp_forward(&c, &t->l, y, ty, x, tx, t->B);
    return dot(dy, y, n) + dot(dty, ty, n);
}

static double jvp_check(tl_t *t, const layer_ops_t *ops, int dropout_ctx) {
    (void)ops;
    int B = t->B;
    size_t n = (size_t)B * shape3_size(t->l.in);
    float *x = fcalloc(n), *tx = fcalloc(n), *dy = fcalloc(n), *dty = fcalloc(n), *y = fcalloc(n), *ty = fcalloc(n),
          *y2 = fcalloc(n), *y3 = fcalloc(n), *dx = fcalloc(n), *dtx = fcalloc(n), *xp = fcalloc(n);
    fill(x, n, 40, 1.5f, 0.5f);
    fill(tx, n, 41, 1.0f, 0.0f);
    fill(dy, n, 42, 1.0f, 0.0f);
    fill(dty, n, 43, 1.0f, 0.0f);
    for (size_t i = 0; i < t->l.n_params; i++) t->params[i] += 0.3f * philox_normal(3, PHILOX_STREAM_USER, 44, i);
    nn_ctx_t c = mkctx(t, 1);
    (void)dropout_ctx;
    /* ty against differences of forward along tx */
    t->l.ops->jvp_forward(&c, &t->l, y, ty, x, tx, B);
    double h = 1e-2, worst = 0, sty = fmax(maxabs(ty, n), 1e-3);
    for (size_t k = 0; k < n; k++) xp[k] = x[k] + (float)h * tx[k];
    t->l.ops->forward(&c, &t->l, y2, xp, B);
    for (size_t k = 0; k < n; k++) xp[k] = x[k] - (float)h * tx[k];
    t->l.ops->forward(&c, &t->l, y3, xp, B);
    for (size_t k = 0; k < n; k++) worst = fmax(worst, fabs((y2[k] - y3[k]) / (2 * h) - ty[k]) / sty);
    CHECK(worst < 1e-2, "jvp_forward's ty vs differences of forward: worst relative error %g", worst);
    /* y of jvp_forward equals forward's */
    t->l.ops->forward(&c, &t->l, y2, x, B);
    CHECK(memcmp(y, y2, sizeof(float) * n) == 0, "jvp_forward's y differs from forward's");
    /* jvp_backward against differences of S in x, tx and the parameters */
    t->l.ops->jvp_forward(&c, &t->l, y, ty, x, tx, B);
    memset(t->grads, 0, sizeof(float) * t->l.n_params);
    t->l.ops->jvp_backward(&c, &t->l, dx, dtx, dy, dty, x, tx, y, ty, B);
    double sx = fmax(maxabs(dx, n), 1e-3), stx = fmax(maxabs(dtx, n), 1e-3),
           sp = fmax(maxabs(t->grads, t->l.n_params), 1e-3), e2 = 0;
    float *vs[3] = {x, tx, t->params};
    const float *gs[3] = {dx, dtx, t->grads};
    double sc[3] = {sx, stx, sp};
    size_t ns[3] = {n, n, t->l.n_params};
    for (int v = 0; v < 3; v++)
        for (size_t k = 0; k < ns[v]; k++) {
            float old = vs[v][k], st = (float)(1e-2 * fmax(1.0, fabs(old)));
            vs[v][k] = old + st;
            float up = vs[v][k];
            double lp = jvp_loss(t, x, tx, dy, dty, y, ty);
            vs[v][k] = old - st;
            float dn = vs[v][k];
            double lm = jvp_loss(t, x, tx, dy, dty, y, ty);
            vs[v][k] = old;
            e2 = fmax(e2, fabs((lp - lm) / ((double)up - dn) - gs[v][k]) / sc[v]);
        }
    free(x), free(tx), free(dy), free(dty), free(y), free(ty), free(y2), free(y3), free(dx), free(dtx), free(xp);
    return e2;
}

static void test_ln_jvp(void) {
    tl_t t;
    tl_make(&t, &layer_ln_ops, (shape3_t){2, 2, 3}, 3, 1, 1e-5, 0, 0);
    double e = jvp_check(&t, &layer_ln_ops, 0);
    CHECK(e < 1e-2, "LN jvp_backward vs differences of jvp_forward: worst relative error %g", e);
    tl_free(&t);
    tl_make(&t, &layer_ln_ops, (shape3_t){5, 1, 1}, 2, 0, 1e-5, 0, 0);
    e = jvp_check(&t, &layer_ln_ops, 0);
    CHECK(e < 1e-2, "LN noaffine jvp_backward: worst relative error %g", e);
    tl_free(&t);
}

/* ---- instance normalization ---------------------------------------------------------------- */

static void test_in(void) {
    tl_t t;
    enum { B = 3, C = 2, S = 6 };
    tl_make(&t, &layer_in_ops, (shape3_t){C, 3, 2}, B, 0, 1e-5, 0, 0);
    CHECK(t.l.n_params == 0 && t.l.n_state == 0, "noaffine in has parameters or state");
    float x[B * C * S], y[B * C * S], y2[B * C * S];
    fill(x, B * C * S, 30, 2.0f, 1.0f);
    for (int k = 0; k < S; k++) x[S + k] = 5.0f * x[S + k] - 3.0f; /* a channel of another scale */
    nn_ctx_t c = mkctx(&t, 1);
    t.l.ops->forward(&c, &t.l, y, x, B);
    for (int r = 0; r < B * C; r++) { /* every (sample, channel) has mean 0 and variance 1 */
        double sm = 0, q = 0;
        for (int k = 0; k < S; k++) sm += y[r * S + k], q += (double)y[r * S + k] * y[r * S + k];
        CHECK(fabs(sm / S) < 1e-6 && fabs(q / S - 1) < 1e-4, "row %d: mean %g mean square %g", r, sm / S, q / S);
    }
    c.training = 0; /* no running statistics: evaluation mode computes the same */
    t.l.ops->forward(&c, &t.l, y2, x, B);
    CHECK(memcmp(y, y2, sizeof y) == 0, "eval mode differs from training mode");
    double e = grad_check(&t, 1);
    CHECK(e < 1e-2, "in noaffine backward: worst relative error %g", e);
    e = jvp_check(&t, &layer_in_ops, 0);
    CHECK(e < 1e-2, "in noaffine jvp_backward: worst relative error %g", e);
    tl_free(&t);
    tl_make(&t, &layer_in_ops, (shape3_t){3, 2, 2}, 2, 1, 1e-5, 0, 0);
    CHECK(t.l.n_params == 6 && t.l.n_bias == 3 && t.l.w_ndim == 0, "in affine: a weight and a bias of C");
    e = grad_check(&t, 1);
    CHECK(e < 1e-2, "in affine backward: worst relative error %g", e);
    e = grad_check(&t, 0);
    CHECK(e < 1e-2, "in affine backward in eval mode: worst relative error %g", e);
    e = jvp_check(&t, &layer_in_ops, 0);
    CHECK(e < 1e-2, "in affine jvp_backward: worst relative error %g", e);
    tl_free(&t);
    layer_t l;
    memset(&l, 0, sizeof l);
    l.in = (shape3_t){4, 1, 1};
    l.eps = 1e-5;
    CHECK(layer_in_ops.setup(&l) == -1 &&
              strcmp(gt_errmsg(), "input is 4x1x1: instance normalization needs more than one position per channel") ==
                  0,
          "in on features: %s", gt_errmsg());
}

/* ---- Dropout --------------------------------------------------------------------------- */

static void test_dropout_fraction_and_scale(void) {
    enum { B = 8, N = 12500 };
    tl_t t;
    tl_make(&t, &layer_dropout_ops, (shape3_t){5, 50, 50}, B, 0, 0, 0, 0.3f);
    float *x = fcalloc(B * N), *y = fcalloc(B * N);
    fill(x, B * N, 50, 1.0f, 3.0f);
    nn_ctx_t c = mkctx(&t, 1);
    t.l.ops->forward(&c, &t.l, y, x, B);
    long zeros = 0, bad = 0;
    float sc = (float)(1.0 / 0.7);
    for (long k = 0; k < B * N; k++) {
        if (y[k] == 0.0f) zeros++;
        else if (y[k] != x[k] * sc) bad++;
    }
    double frac = (double)zeros / (B * N); /* sd of the fraction is sqrt(0.21 / 1e5) = 0.0014 */
    CHECK(fabs(frac - 0.3) < 0.007, "fraction of zeros %g, want 0.3", frac);
    CHECK(bad == 0, "%ld kept elements are not x / (1 - p)", bad);
    c.training = 0;
    t.l.ops->forward(&c, &t.l, y, x, B);
    CHECK(memcmp(x, y, sizeof(float) * B * N) == 0, "eval mode is not the identity");
    free(x), free(y);
    tl_free(&t);
}

static void test_dropout_masks(void) {
    enum { B = 6, N = 20 };
    tl_t t;
    tl_make(&t, &layer_dropout_ops, (shape3_t){N, 1, 1}, B, 0, 0, 0, 0.5f);
    float x[B * N], y[B * N], y2[B * N], y3[B * N], dy[B * N], dx[B * N];
    for (int k = 0; k < B * N; k++) x[k] = 1.0f + (float)k;
    nn_ctx_t c = mkctx(&t, 1);
    c.sample_base = 100;
    t.l.ops->forward(&c, &t.l, y, x, B);
    /* the same samples split in two batches (base 100 with 2 samples, base 102 with 4) */
    nn_ctx_t c2 = c;
    t.l.ops->forward(&c2, &t.l, y2, x, 2);
    c2.sample_base = 102;
    t.l.ops->forward(&c2, &t.l, y2 + 2 * N, x + 2 * N, 4);
    CHECK(memcmp(y, y2, sizeof y) == 0, "masks depend on how the batch is split");
    /* by definition: element k of sample i of layer L keyed by L * 2^48 + (base + i) * N + k */
    int defn = 1;
    uint64_t layer_key = (uint64_t)t.l.index << 48;
    for (int i = 0; i < B; i++)
        for (int k = 0; k < N; k++) {
            uint64_t key = layer_key + (uint64_t)(100 + i) * N + k;
            int keep = philox_uniform(1234, PHILOX_STREAM_DROPOUT, 5, key) >= 0.5f;
            defn &= (y[i * N + k] != 0.0f) == keep;
        }
    CHECK(defn, "mask is not philox_uniform(seed, DROPOUT, step, L * 2^48 + (base + i) * N + k) >= p");
    /* another layer of the same pass: other masks (the index keeps two dropout layers apart) */
    int index = t.l.index;
    t.l.index = index + 1;
    t.l.ops->forward(&c, &t.l, y3, x, B);
    t.l.index = index;
    CHECK(memcmp(y, y3, sizeof y) != 0, "another layer draws the same mask");
    /* another step, another seed: other masks */
    c2 = c;
    c2.rng_step = 6;
    t.l.ops->forward(&c2, &t.l, y3, x, B);
    CHECK(memcmp(y, y3, sizeof y) != 0, "same mask at another step");
    c2 = c;
    c2.seed = 1235;
    t.l.ops->forward(&c2, &t.l, y3, x, B);
    CHECK(memcmp(y, y3, sizeof y) != 0, "same mask with another seed");
    /* backward applies the mask its forward saved (the forward just before it, on this batch) */
    for (int k = 0; k < B * N; k++) dy[k] = 0.5f - (float)k;
    t.l.ops->forward(&c, &t.l, y3, x, B);
    t.l.ops->backward(&c, &t.l, dx, dy, x, y, B);
    int okb = 1;
    for (int k = 0; k < B * N; k++) okb &= dx[k] == (y[k] != 0.0f ? dy[k] * 2.0f : 0.0f);
    CHECK(okb, "backward's mask differs from forward's");
    /* tangents get the same mask; jvp_backward likewise */
    float ty[B * N], dtx[B * N];
    t.l.ops->jvp_forward(&c, &t.l, y3, ty, x, dy, B);
    int okj = memcmp(y3, y, sizeof y) == 0;
    for (int k = 0; k < B * N; k++) okj &= ty[k] == (y[k] != 0.0f ? dy[k] * 2.0f : 0.0f);
    CHECK(okj, "jvp_forward's masks differ from forward's");
    t.l.ops->jvp_backward(&c, &t.l, dx, dtx, dy, x, x, dy, y, ty, B);
    int okjb = 1;
    for (int k = 0; k < B * N; k++)
        okjb &= dx[k] == (y[k] != 0.0f ? dy[k] * 2.0f : 0.0f) && dtx[k] == (y[k] != 0.0f ? x[k] * 2.0f : 0.0f);
    CHECK(okjb, "jvp_backward's masks differ from forward's");
    tl_free(&t);
}

/* ---- additive noise ------------------------------------------------------------------- */

static void test_noise(void) {
    enum { B = 6, N = 20 };
    tl_t t;
    tl_make(&t, &layer_noise_ops, (shape3_t){5, 2, 2}, B, 0, 0, 0, 0.7f);
    float x[B * N], y[B * N], y2[B * N], y3[B * N], dy[B * N], dx[B * N], ty[B * N], dtx[B * N];
    for (int k = 0; k < B * N; k++) x[k] = 1.0f + 0.25f * (float)k, dy[k] = 0.5f - (float)k;
    nn_ctx_t c = mkctx(&t, 1);
    c.sample_base = 100;
    t.l.ops->forward(&c, &t.l, y, x, B);
    /* by definition: x + sigma z, z the normal keyed by L * 2^48 + (base + i) * N + k */
    int defn = 1;
    for (int i = 0; i < B; i++)
        for (int k = 0; k < N; k++) {
            uint64_t key = ((uint64_t)t.l.index << 48) + (uint64_t)(100 + i) * N + k;
            defn &= y[i * N + k] == x[i * N + k] + 0.7f * philox_normal(1234, PHILOX_STREAM_NOISE, 5, key);
        }
    CHECK(defn, "noise is not x + sigma philox_normal(seed, NOISE, step, L * 2^48 + (base + i) * N + k)");
    /* the same samples in two batches draw the same noise */
    nn_ctx_t c2 = c;
    t.l.ops->forward(&c2, &t.l, y2, x, 2);
    c2.sample_base = 102;
    t.l.ops->forward(&c2, &t.l, y2 + 2 * N, x + 2 * N, 4);
    CHECK(memcmp(y, y2, sizeof y) == 0, "noise depends on how the batch is split");
    /* another layer, step or seed: another draw */
    t.l.index++;
    t.l.ops->forward(&c, &t.l, y3, x, B);
    t.l.index--;
    CHECK(memcmp(y, y3, sizeof y) != 0, "another layer draws the same noise");
    c2 = c;
    c2.rng_step = 6;
    t.l.ops->forward(&c2, &t.l, y3, x, B);
    CHECK(memcmp(y, y3, sizeof y) != 0, "same noise at another step");
    c2 = c;
    c2.seed = 1235;
    t.l.ops->forward(&c2, &t.l, y3, x, B);
    CHECK(memcmp(y, y3, sizeof y) != 0, "same noise with another seed");
    /* evaluation mode is the identity */
    c2 = c;
    c2.training = 0;
    t.l.ops->forward(&c2, &t.l, y3, x, B);
    CHECK(memcmp(x, y3, sizeof x) == 0, "eval mode is not the identity");
    /* the gradient and the tangent pass straight through; jvp's y is the forward's */
    t.l.ops->backward(&c, &t.l, dx, dy, x, y, B);
    CHECK(memcmp(dx, dy, sizeof dx) == 0, "backward is not dx = dy");
    t.l.ops->jvp_forward(&c, &t.l, y3, ty, x, dy, B);
    CHECK(memcmp(y3, y, sizeof y) == 0 && memcmp(ty, dy, sizeof ty) == 0, "jvp_forward is not (forward, tx)");
    t.l.ops->jvp_backward(&c, &t.l, dx, dtx, x, dy, x, dy, y, ty, B);
    CHECK(memcmp(dx, x, sizeof dx) == 0 && memcmp(dtx, dy, sizeof dtx) == 0, "jvp_backward is not (dy, dty)");
    t.l.ops->jvp_backward(&c, &t.l, dx, dtx, NULL, NULL, x, dy, y, ty, B);
    CHECK(maxabs(dx, B * N) == 0 && maxabs(dtx, B * N) == 0, "jvp_backward of zero cotangents is not zero");
    double e = jvp_check(&t, &layer_noise_ops, 0);
    CHECK(e < 1e-2, "noise jvp_backward vs differences of jvp_forward: worst relative error %g", e);
    tl_free(&t);
    /* a large draw has the normal's moments (sd of the mean 1/sqrt(n), of the variance sqrt(2/n)) */
    enum { M = 40000 };
    tl_make(&t, &layer_noise_ops, (shape3_t){M, 1, 1}, 1, 0, 0, 0, 2.0f);
    float *z = fcalloc(M), *w = fcalloc(M);
    c = mkctx(&t, 1);
    t.l.ops->forward(&c, &t.l, w, z, 1);
    double s = 0, q = 0;
    for (int k = 0; k < M; k++) s += w[k], q += (double)w[k] * w[k];
    double mean = s / M / 2.0, var = q / M / 4.0 - mean * mean;
    CHECK(fabs(mean) < 5.0 / sqrt(M) && fabs(var - 1.0) < 5.0 * sqrt(2.0 / M), "noise / sigma: mean %g, variance %g",
          mean, var);
    free(z), free(w);
    tl_free(&t);
    /* sigma must be >= 0 */
    layer_t l;
    memset(&l, 0, sizeof l);
    l.in = (shape3_t){3, 1, 1};
    l.sigma = -1.0f;
    CHECK(layer_noise_ops.setup(&l) == -1, "noise sigma < 0 accepted");
}

/* ---- thread-count independence ------------------------------------------------------- */

static void run_all(int threads, float *out, size_t *len) {
    backend_t *b = backend_cpu(threads);
    be = b;
    enum { B = 16 };
    shape3_t in = {8, 24, 24};
    size_t n = (size_t)B * shape3_size(in), o = 0;
    float *x = fcalloc(n), *dy = fcalloc(n), *y = fcalloc(n), *dx = fcalloc(n), *ty = fcalloc(n), *dtx = fcalloc(n);
    fill(x, n, 60, 1.0f, 0.2f);
    fill(dy, n, 61, 1.0f, 0.0f);
    const layer_ops_t *ops[] = {&layer_bn_ops, &layer_ln_ops, &layer_in_ops, &layer_dropout_ops, &layer_noise_ops};
    for (int k = 0; k < (int)(sizeof ops / sizeof ops[0]); k++) {
        tl_t t;
        tl_make(&t, ops[k], in, B, 1, 1e-5, 0.1, 0.25f);
        nn_ctx_t c = mkctx(&t, 1);
        t.l.ops->forward(&c, &t.l, y, x, B);
        t.l.ops->backward(&c, &t.l, dx, dy, x, y, B);
        memcpy(out + o, y, sizeof(float) * n), o += n;
        memcpy(out + o, dx, sizeof(float) * n), o += n;
        memcpy(out + o, t.grads, sizeof(float) * t.l.n_params), o += t.l.n_params;
        memcpy(out + o, t.state, sizeof(float) * t.l.n_state), o += t.l.n_state;
        if (t.l.ops->jvp_forward) {
            memset(t.grads, 0, sizeof(float) * t.l.n_params);
            t.l.ops->jvp_forward(&c, &t.l, y, ty, x, dy, B);
            t.l.ops->jvp_backward(&c, &t.l, dx, dtx, dy, x, x, dy, y, ty, B);
            memcpy(out + o, ty, sizeof(float) * n), o += n;
            memcpy(out + o, dx, sizeof(float) * n), o += n;
            memcpy(out + o, dtx, sizeof(float) * n), o += n;
            memcpy(out + o, t.grads, sizeof(float) * t.l.n_params), o += t.l.n_params;
        }
        tl_free(&t);
    }
    *len = o;
    free(x), free(dy), free(y), free(dx), free(ty), free(dtx);
}

static void test_thread_independence(void) {
    size_t cap = 24 * 16 * 8 * 24 * 24, n1, n2, n3;
    float *a = fcalloc(cap), *b = fcalloc(cap), *c = fcalloc(cap);
    run_all(1, a, &n1);
    run_all(2, b, &n2);
    run_all(3, c, &n3);
    CHECK(n1 == n2 && n1 == n3 && n1 <= cap, "lengths %zu %zu %zu", n1, n2, n3);
    CHECK(memcmp(a, b, sizeof(float) * n1) == 0, "results differ between 1 and 2 threads");
    CHECK(memcmp(a, c, sizeof(float) * n1) == 0, "results differ between 1 and 3 threads");
    be = backend_cpu(1);
    free(a), free(b), free(c);
}

int main(void) {
    be = backend_cpu(1);
    RUN(test_bn2d_train_backward);
    RUN(test_bn1d_train_backward_b2);
    RUN(test_bn2d_eval);
    RUN(test_bn_running_stats);
    RUN(test_bn_init_dcgan);
    RUN(test_setup_errors);
    RUN(test_ln_forward_backward);
    RUN(test_ln_jvp);
    RUN(test_in);
    RUN(test_dropout_fraction_and_scale);
    RUN(test_dropout_masks);
    RUN(test_noise);
    RUN(test_thread_independence);
    return harness_done();
}
