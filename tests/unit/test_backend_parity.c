/* test_backend_parity.c: the CUDA backend against the CPU backend (ggml's test-backend-ops
 * idea): every operation of backend.h run on both from the same inputs, then whole training
 * steps of every preset and of specs that cover every layer, loss and optimizer, compared
 * tensor by tensor (tolerances.h says how closely, and why). Also what only the CUDA side
 * has: no cudaMalloc once training runs, and, under the host emulation, that kernels do not
 * depend on the order their threads run in, that host code touching device memory and
 * copies in the wrong direction fail loudly.
 *
 * Runs where the build has CUDA: on the host emulation in every `make check`, on a GPU when
 * the CUDA=1 build finds one. Elsewhere it skips with a message (a plan of 0). The CPU side
 * runs on one thread (its results do not depend on the thread count).
 * Figures (the worst deviation of each comparison, launches per training step) are printed
 * as TAP comments. GT_PARITY_QUICK=1 in the environment leaves out the training steps (the
 * operations alone take seconds). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "formats/safetensors.h"
#include "lib/backend/backend.h"
#include "lib/base/common.h"
#include "lib/backend/augment_math.h"
#include "lib/backend/conv_math.h"
#include "lib/backend/loss_math.h"
#include "lib/gan/model.h"
#include "lib/backend/opt_math.h"
#include "lib/base/philox.h"
#include "lib/gan/presets.h"
#include "lib/gan/trainer.h"
#include "lib/backend/train_math.h"
#include "harness.h"
#include "tolerances.h"

#ifdef GT_CUDA_EMU
void gt_emu_set_order(int reverse); /* kernels/cuda_emu.h */
#endif
#ifdef GT_HAVE_CUDA
extern size_t gt_cuda_idx32_max; /* kernels/cuda_check.h: launches up to it index in 32 bits */
#endif

static backend_t *cpu, *gpu;
static int verbose_worst = 1;

/* ---- a tensor on both backends ------------------------------------------------------------- */

typedef struct {
    float *c, *g; /* on the CPU backend, on the CUDA backend */
    size_t n;
} pair_t;

static uint32_t fill_step = 1;

/* n values: shift + scale * N(0, 1), the same on both sides (NULL pointers for n == 0 never used) */
static pair_t pair_new(size_t n, float scale, float shift) {
    pair_t p = {NULL, NULL, n};
    float *h = gt_xmalloc(sizeof(float) * (n ? n : 1));
    uint32_t step = fill_step++;
    for (size_t i = 0; i < n; i++) h[i] = shift + scale * philox_normal(5, PHILOX_STREAM_USER, step, i);
    p.c = cpu->alloc(cpu, sizeof(float) * (n ? n : 1));
    p.g = gpu->alloc(gpu, sizeof(float) * (n ? n : 1));
    cpu->upload(cpu, p.c, h, sizeof(float) * n);
    gpu->upload(gpu, p.g, h, sizeof(float) * n);
    free(h);
    return p;
}

static pair_t pair_zero(size_t n) { return pair_new(n, 0.0f, 0.0f); }

static void pair_free(pair_t *p) {
    cpu->free(cpu, p->c);
    gpu->free(gpu, p->g);
}

/* worst |x - y| / max(|y|, rms(y)) of n floats */
static double worst_rel(const float *x, const float *y, size_t n, size_t *where) {
    double ss = 0, w = 0;
    for (size_t i = 0; i < n; i++) ss += (double)y[i] * y[i];
    double rms = n ? sqrt(ss / n) : 0;
    *where = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(x[i]) && isnan(y[i])) continue;
        double d = fabs((double)x[i] - y[i]), s = fabs(y[i]) > rms ? fabs(y[i]) : rms;
        double r = d == 0 ? 0 : s > 0 ? d / s : INFINITY;
        if (!(r <= w)) { /* NaN counts as worst */
            w = isnan(r) ? INFINITY : r;
            *where = i;
        }
        if (isnan(x[i]) != isnan(y[i])) {
            w = INFINITY;
            *where = i;
        }
    }
    return w;
}

/* Compare the CUDA side with the CPU side: within tol (0: the same bits). */
static void pair_check(const pair_t *p, const char *what, double tol) {
    float *x = gt_xmalloc(sizeof(float) * (p->n ? p->n : 1)), *y = gt_xmalloc(sizeof(float) * (p->n ? p->n : 1));
    gpu->download(gpu, x, p->g, sizeof(float) * p->n);
    cpu->download(cpu, y, p->c, sizeof(float) * p->n);
    if (tol == TOL_EXACT) {
        size_t i = 0;
        while (i < p->n && memcmp(&x[i], &y[i], sizeof(float)) == 0) i++;
        CHECK(i == p->n, "%s: element %zu is %.9g on cuda, %.9g on cpu (bit-exact wanted)", what, i, x[i], y[i]);
    } else {
        size_t at;
        double w = worst_rel(x, y, p->n, &at);
        CHECK(w <= tol, "%s: element %zu is %.9g on cuda, %.9g on cpu: relative %.3g > %g", what, at, x[at], y[at], w, tol);
        if (verbose_worst && w > 0) printf("# %s: worst relative difference %.3g\n", what, w);
    }
    free(x);
    free(y);
}

/* doubles the backends wrote (losses, norms): within TOL_DOUBLE relative */
static void doubles_check(const double *dc, const double *dg, size_t n, const char *what, double tol) {
    double *x = gt_xmalloc(sizeof(double) * n), *y = gt_xmalloc(sizeof(double) * n);
    gpu->download(gpu, x, dg, sizeof(double) * n);
    cpu->download(cpu, y, dc, sizeof(double) * n);
    for (size_t i = 0; i < n; i++) {
        double s = fabs(y[i]) > 1e-30 ? fabs(y[i]) : 1e-30;
        CHECK(fabs(x[i] - y[i]) <= tol * s || (isnan(x[i]) && isnan(y[i])), "%s[%zu]: %.17g on cuda, %.17g on cpu",
              what, i, x[i], y[i]);
    }
    free(x);
    free(y);
}

typedef struct {
    double *c, *g;
    size_t n;
} dpair_t;

static dpair_t dpair_new(size_t n) {
    dpair_t p = {cpu->alloc(cpu, sizeof(double) * n), gpu->alloc(gpu, sizeof(double) * n), n};
    cpu->zero(cpu, p.c, sizeof(double) * n);
    gpu->zero(gpu, p.g, sizeof(double) * n);
    return p;
}
static void dpair_free(dpair_t *p) {
    cpu->free(cpu, p->c);
    gpu->free(gpu, p->g);
}

/* ---- operations ---------------------------------------------------------------------------- */

static void test_memory_and_fills(void) {
    pair_t a = pair_new(1000, 1.0f, 0.0f), b = pair_zero(1000);
    cpu->copy(cpu, b.c, a.c, sizeof(float) * 777);
    gpu->copy(gpu, b.g, a.g, sizeof(float) * 777);
    pair_check(&b, "copy", TOL_EXACT);
    cpu->zero(cpu, b.c + 100, sizeof(float) * 50);
    gpu->zero(gpu, b.g + 100, sizeof(float) * 50);
    pair_check(&b, "zero", TOL_EXACT);
    cpu->fill(cpu, b.c + 3, -2.5f, 501);
    gpu->fill(gpu, b.g + 3, -2.5f, 501);
    pair_check(&b, "fill", TOL_EXACT);
    for (int kind = 0; kind < 2; kind++)
        for (int shift = 0; shift < 2; shift++) {
            cpu->philox_fill(cpu, a.c, 999, (fill_kind_t)kind, 77, PHILOX_STREAM_USER, 3, 12345 + (uint64_t)shift,
                             0.02f, shift ? 1.0f : 0.0f);
            gpu->philox_fill(gpu, a.g, 999, (fill_kind_t)kind, 77, PHILOX_STREAM_USER, 3, 12345 + (uint64_t)shift,
                             0.02f, shift ? 1.0f : 0.0f);
            pair_check(&a, kind ? "philox_fill normal" : "philox_fill uniform", TOL_EXACT);
        }
    /* a large index: the Philox counter's high word */
    cpu->philox_fill(cpu, a.c, 1000, FILL_NORMAL, 1ull << 40, PHILOX_STREAM_Z, 9, (1ull << 33) + 1, 1.0f, 0.0f);
    gpu->philox_fill(gpu, a.g, 1000, FILL_NORMAL, 1ull << 40, PHILOX_STREAM_Z, 9, (1ull << 33) + 1, 1.0f, 0.0f);
    pair_check(&a, "philox_fill at index 2^33", TOL_EXACT);
    /* noise added to images (instance noise), out of place and in place */
    cpu->add_noise(cpu, b.c, a.c, 999, 5, PHILOX_STREAM_USER, 17, (1ull << 33) + 3, 0.3f);
    gpu->add_noise(gpu, b.g, a.g, 999, 5, PHILOX_STREAM_USER, 17, (1ull << 33) + 3, 0.3f);
    pair_check(&b, "add_noise", TOL_EXACT);
    cpu->add_noise(cpu, b.c, b.c, 1000, 5, PHILOX_STREAM_USER, 18, 7, 0.01f);
    gpu->add_noise(gpu, b.g, b.g, 1000, 5, PHILOX_STREAM_USER, 18, 7, 0.01f);
    pair_check(&b, "add_noise in place", TOL_EXACT);
    pair_free(&a);
    pair_free(&b);
}

static void gemm_case(int ta, int tb, int m, int n, int k, float alpha, float beta) {
    int arows = ta ? k : m, acols = ta ? m : k, brows = tb ? n : k, bcols = tb ? k : n;
    int lda = acols + 1, ldb = bcols + 2, ldc = n + 3;
    pair_t a = pair_new((size_t)arows * lda, 1, 0), b = pair_new((size_t)brows * ldb, 1, 0);
    pair_t c = pair_new((size_t)m * ldc, 1, 0);
    if (beta == 0.0f) { /* beta 0 ignores C: NaN there must not come through */
        cpu->fill(cpu, c.c, NAN, c.n);
        gpu->fill(gpu, c.g, NAN, c.n);
        for (int i = 0; i < m; i++) { /* but the padding keeps its values */
            cpu->fill(cpu, c.c + (size_t)i * ldc + n, 7.0f, 3);
            gpu->fill(gpu, c.g + (size_t)i * ldc + n, 7.0f, 3);
        }
    }
    cpu->gemm(cpu, ta, tb, m, n, k, alpha, a.c, lda, b.c, ldb, beta, c.c, ldc);
    gpu->gemm(gpu, ta, tb, m, n, k, alpha, a.g, lda, b.g, ldb, beta, c.g, ldc);
    char what[96];
    snprintf(what, sizeof what, "gemm ta=%d tb=%d %dx%dx%d alpha %g beta %g", ta, tb, m, n, k, alpha, beta);
    int v = verbose_worst;
    verbose_worst = 0;
    pair_check(&c, what, TOL_OP);
    verbose_worst = v;
    pair_free(&a);
    pair_free(&b);
    pair_free(&c);
}

static void test_gemm(void) {
    static const int sizes[][3] = {{1, 1, 1}, {3, 5, 7}, {17, 1, 33}, {1, 19, 4}, {64, 65, 63}, {33, 100, 129}};
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
                gemm_case(ta, tb, sizes[s][0], sizes[s][1], sizes[s][2], 1.0f, 0.0f);
                gemm_case(ta, tb, sizes[s][0], sizes[s][1], sizes[s][2], -0.5f, 1.0f);
            }
    gemm_case(0, 0, 5, 6, 0, 1.0f, 0.5f); /* k == 0: C = beta C */
    gemm_case(1, 1, 5, 6, 0, 1.0f, 0.0f);
}

static void test_bias(void) {
    long shapes[][3] = {{7, 13, 1}, {3, 5, 49}, {1, 300, 1}, {64, 1, 1}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        long o = shapes[s][0], C = shapes[s][1], in = shapes[s][2];
        pair_t y = pair_new((size_t)(o * C * in), 1, 0), b = pair_new((size_t)C, 1, 0.5f), db = pair_new((size_t)C, 1, 0);
        cpu->bias_add(cpu, y.c, b.c, o, C, in);
        gpu->bias_add(gpu, y.g, b.g, o, C, in);
        pair_check(&y, "bias_add", TOL_EXACT); /* one float addition */
        cpu->bias_grad(cpu, db.c, y.c, o, C, in);
        gpu->bias_grad(gpu, db.g, y.g, o, C, in);
        pair_check(&db, "bias_grad", TOL_ELEM);
        pair_free(&y);
        pair_free(&b);
        pair_free(&db);
    }
}

static void test_activations(void) {
    static const char *names[] = {"relu", "lrelu", "tanh", "sigmoid"};
    size_t n = 40000; /* above the CPU's threshold for threads */
    for (int k = 0; k < 4; k++) {
        char what[64];
        pair_t x = pair_new(n, 3, 0), tx = pair_new(n, 1, 0), dy = pair_new(n, 1, 0), dty = pair_new(n, 1, 0);
        pair_t y = pair_zero(n), ty = pair_zero(n), dx = pair_zero(n), dtx = pair_zero(n);
        float slope = 0.2f;
        cpu->act_forward(cpu, (act_kind_t)k, slope, y.c, x.c, n);
        gpu->act_forward(gpu, (act_kind_t)k, slope, y.g, x.g, n);
        snprintf(what, sizeof what, "%s forward", names[k]);
        pair_check(&y, what, TOL_ELEM);
        /* the backward passes from the CPU's y on both sides, so that only this pass is compared */
        gpu->upload(gpu, y.g, y.c, sizeof(float) * n);
        cpu->act_backward(cpu, (act_kind_t)k, slope, dx.c, dy.c, x.c, y.c, n);
        gpu->act_backward(gpu, (act_kind_t)k, slope, dx.g, dy.g, x.g, y.g, n);
        snprintf(what, sizeof what, "%s backward", names[k]);
        pair_check(&dx, what, TOL_ELEM);
        cpu->act_jvp_forward(cpu, (act_kind_t)k, slope, y.c, ty.c, x.c, tx.c, n);
        gpu->act_jvp_forward(gpu, (act_kind_t)k, slope, y.g, ty.g, x.g, tx.g, n);
        snprintf(what, sizeof what, "%s jvp forward y", names[k]);
        pair_check(&y, what, TOL_ELEM);
        snprintf(what, sizeof what, "%s jvp forward ty", names[k]);
        pair_check(&ty, what, TOL_ELEM);
        gpu->upload(gpu, y.g, y.c, sizeof(float) * n);
        for (int nulls = 0; nulls < 3; nulls++) { /* dy and dty given; dy NULL; dtx not wanted */
            const float *dyc = nulls == 1 ? NULL : dy.c, *dyg = nulls == 1 ? NULL : dy.g;
            cpu->act_jvp_backward(cpu, (act_kind_t)k, slope, dx.c, nulls == 2 ? NULL : dtx.c, dyc, dty.c, x.c, tx.c,
                                  y.c, n);
            gpu->act_jvp_backward(gpu, (act_kind_t)k, slope, dx.g, nulls == 2 ? NULL : dtx.g, dyg, dty.g, x.g, tx.g,
                                  y.g, n);
            snprintf(what, sizeof what, "%s jvp backward dx (case %d)", names[k], nulls);
            pair_check(&dx, what, TOL_ELEM);
            snprintf(what, sizeof what, "%s jvp backward dtx (case %d)", names[k], nulls);
            pair_check(&dtx, what, TOL_ELEM);
        }
        pair_t *all[] = {&x, &tx, &dy, &dty, &y, &ty, &dx, &dtx};
        for (int i = 0; i < 8; i++) pair_free(all[i]);
    }
}

/* BatchNorm with a fused activation k (bn_args_t.act, net.c's bn then relu or lrelu) on backend
 * be, from a0's inputs (x, dy, w, b, running statistics, sync): run 0 is bn_forward then
 * act_forward, act_backward then bn_backward; run 1 the fused passes. Both from the same running
 * statistics; the bits must be the same: the activation's output, dx, dw, db, mean, inv_std
 * and the running statistics. Returns run 1's values on the host (z, dx, then 6 C floats). */
static float *bn_act_bits(backend_t *be, const bn_args_t *a0, act_kind_t k, const char *what) {
    size_t C = (size_t)a0->C, n = (size_t)a0->B * C * (size_t)a0->S, nf = 2 * n + 6 * C;
    float *run0 = be->alloc(be, sizeof(float) * 2 * C), *dwb = be->alloc(be, sizeof(float) * 2 * C);
    float *y = be->alloc(be, sizeof(float) * n), *z = be->alloc(be, sizeof(float) * n);
    float *g = be->alloc(be, sizeof(float) * n), *dx = be->alloc(be, sizeof(float) * n);
    float *host[2];
    be->copy(be, run0, a0->running, sizeof(float) * 2 * C);
    for (int r = 0; r < 2; r++) {
        bn_args_t a = *a0;
        be->copy(be, a.running, run0, sizeof(float) * 2 * C);
        be->fill(be, dwb, 0.0f, 2 * C);
        if (a.dw) a.dw = dwb, a.db = dwb + C;
        a.dx = dx;
        if (r == 0) {
            a.y = y;
            be->bn_forward(be, &a);
            be->act_forward(be, k, 0.2f, z, y, n);
            be->act_backward(be, k, 0.2f, g, a0->dy, y, z, n);
            a.dy = g;
        } else {
            a.act = 1 + (int)k;
            a.slope = 0.2f;
            a.y = z;
            be->bn_forward(be, &a);
        }
        be->bn_backward(be, &a);
        float *h = host[r] = gt_xmalloc(sizeof(float) * nf);
        be->download(be, h, z, sizeof(float) * n);
        be->download(be, h + n, dx, sizeof(float) * n);
        be->download(be, h + 2 * n, dwb, sizeof(float) * 2 * C);
        be->download(be, h + 2 * n + 2 * C, a.mean, sizeof(float) * C);
        be->download(be, h + 2 * n + 3 * C, a.inv_std, sizeof(float) * C);
        be->download(be, h + 2 * n + 4 * C, a.running, sizeof(float) * 2 * C);
    }
    CHECK(!memcmp(host[0], host[1], sizeof(float) * nf), "%s on %s, %s fused: not the bits of bn then the activation",
          what, be == cpu ? "cpu" : "cuda", k == ACT_RELU ? "relu" : "lrelu");
    float *bufs[] = {run0, dwb, y, z, g, dx};
    for (int i = 0; i < 6; i++) be->free(be, bufs[i]);
    free(host[0]);
    return host[1];
}

/* synced: the data-parallel passes (backend.h bn_sync_t), in a run of one process (both
 * backends joined it in test_batchnorm), whose statistics are the same as unsynced ones.
 * Then the fused activations (bn_act_bits) on each backend, and the two backends' fused results
 * compared. */
static void bn_case(int B, int C, long S, int affine, int training, int synced) {
    size_t n = (size_t)B * C * S;
    char what[96];
    pair_t x = pair_new(n, 2, 0.5f), dy = pair_new(n, 1, 0), y = pair_zero(n), dx = pair_zero(n);
    pair_t w = pair_new((size_t)C, 0.1f, 1), b = pair_new((size_t)C, 0.1f, 0), dw = pair_new((size_t)C, 1, 0),
           db = pair_new((size_t)C, 1, 0);
    pair_t run = pair_new(2 * (size_t)C, 0.1f, 1), saved = pair_zero(2 * (size_t)C);
    bn_args_t a[2];
    for (int side = 0; side < 2; side++) {
        int g = side == 1;
        memset(&a[side], 0, sizeof a[side]);
        a[side] = (bn_args_t){B, C, S, 1e-5, 0.1, training, g ? x.g : x.c, affine ? (g ? w.g : w.c) : NULL,
                              affine ? (g ? b.g : b.c) : NULL, g ? dy.g : dy.c, g ? y.g : y.c, g ? dx.g : dx.c,
                              affine ? (g ? dw.g : dw.c) : NULL, affine ? (g ? db.g : db.c) : NULL,
                              g ? saved.g : saved.c, (g ? saved.g : saved.c) + C, g ? run.g : run.c, NULL, 0, 0.0f};
    }
    bn_sync_t sync[2] = {{B, cpu->alloc(cpu, sizeof(double) * 2 * (size_t)C)},
                         {B, gpu->alloc(gpu, sizeof(double) * 2 * (size_t)C)}};
    if (synced) a[0].sync = &sync[0], a[1].sync = &sync[1];
    cpu->bn_forward(cpu, &a[0]);
    gpu->bn_forward(gpu, &a[1]);
    snprintf(what, sizeof what, "bn %dx%dx%ld affine %d training %d%s", B, C, S, affine, training,
             synced ? " synced" : "");
    char w2[160];
    snprintf(w2, sizeof w2, "%s: y", what);
    pair_check(&y, w2, TOL_OP);
    snprintf(w2, sizeof w2, "%s: mean, inv_std", what);
    pair_check(&saved, w2, TOL_OP);
    snprintf(w2, sizeof w2, "%s: running statistics", what);
    pair_check(&run, w2, TOL_OP);
    cpu->bn_backward(cpu, &a[0]);
    gpu->bn_backward(gpu, &a[1]);
    snprintf(w2, sizeof w2, "%s: dx", what);
    pair_check(&dx, w2, TOL_OP);
    if (affine) {
        snprintf(w2, sizeof w2, "%s: dw", what);
        pair_check(&dw, w2, TOL_OP);
        snprintf(w2, sizeof w2, "%s: db", what);
        pair_check(&db, w2, TOL_OP);
    }
    /* dx not wanted: only the parameter gradients */
    a[0].dx = a[1].dx = NULL;
    cpu->bn_backward(cpu, &a[0]);
    gpu->bn_backward(gpu, &a[1]);
    if (affine) {
        snprintf(w2, sizeof w2, "%s: dw without dx", what);
        pair_check(&dw, w2, TOL_OP);
    }
    for (int k = 0; k < 2; k++) {
        act_kind_t kind = k ? ACT_LRELU : ACT_RELU;
        float *hc = bn_act_bits(cpu, &a[0], kind, what), *hg = bn_act_bits(gpu, &a[1], kind, what);
        size_t at, parts[4][2] = {{0, n}, {n, n}, {2 * n, affine ? 2 * (size_t)C : 0}, {2 * n + 2 * (size_t)C, 4 * (size_t)C}};
        const char *names[4] = {"z", "dx", "dw, db", "statistics"};
        for (int p = 0; p < 4; p++) {
            double w = worst_rel(hg + parts[p][0], hc + parts[p][0], parts[p][1], &at);
            CHECK(w <= TOL_OP, "%s, %s fused: %s: cuda and cpu differ by %.3g", what, k ? "lrelu" : "relu", names[p], w);
        }
        free(hc);
        free(hg);
    }
    cpu->free(cpu, sync[0].scratch);
    gpu->free(gpu, sync[1].scratch);
    pair_t *all[] = {&x, &dy, &y, &dx, &w, &b, &dw, &db, &run, &saved};
    for (int i = 0; i < 10; i++) pair_free(all[i]);
}

static void test_batchnorm(void) {
    bn_case(16, 7, 1, 1, 1, 0);     /* BatchNorm1d */
    bn_case(4, 5, 49, 1, 1, 0);     /* BatchNorm2d */
    bn_case(3, 64, 196, 1, 1, 0);   /* above the CPU's threshold for threads */
    bn_case(2, 3, 1, 0, 1, 0);      /* noaffine, n = 2 */
    bn_case(1, 4, 1, 1, 1, 0);      /* n = 1 */
    bn_case(5, 6, 10, 1, 0, 0);     /* eval */
    bn_case(5, 6, 10, 0, 0, 0);
    /* the data-parallel passes (kernels/norm.cu's synced ones), in a run of one process: the
     * backends' sum_procs (MPI, NCCL or its emulation) then leave the sums as they are
     * (tests/mpi.bats and tests/emu/mpi.bats run them across processes) */
    static dist_t world = {0, 1, 0};
    if (cpu->join(cpu, &world) || gpu->join(gpu, &world)) {
        printf("# synced BatchNorm not compared: %s\n", gt_errmsg());
        return;
    }
    bn_case(16, 7, 1, 1, 1, 1);
    bn_case(4, 5, 49, 1, 1, 1);
    bn_case(3, 64, 196, 0, 1, 1);
    bn_case(5, 6, 10, 1, 0, 1);     /* eval: sync unused */
}

/* LayerNorm (C = 0) or instance normalization of C channels (ln_args_t) */
static void ln_case(int B, long N, int affine, int C) {
    size_t n = (size_t)B * N, rows = (size_t)B * (C ? (size_t)C : 1), np = C ? (size_t)C : (size_t)N;
    char what[96], w2[160];
    snprintf(what, sizeof what, "%s %dx%ld affine %d", C ? "instance norm" : "ln", B, N, affine);
    pair_t x = pair_new(n, 2, 0.3f), tx = pair_new(n, 1, 0), dy = pair_new(n, 1, 0), dty = pair_new(n, 1, 0);
    pair_t y = pair_zero(n), ty = pair_zero(n), dx = pair_zero(n), dtx = pair_zero(n);
    pair_t w = pair_new(np, 0.2f, 1), b = pair_new(np, 0.2f, 0), dw = pair_new(np, 1, 0), db = pair_new(np, 1, 0);
    pair_t saved = pair_zero(2 * rows), ws = pair_zero(2 * rows);
    ln_args_t a[2];
    for (int side = 0; side < 2; side++) {
        int g = side == 1;
#define P(p) (g ? (p).g : (p).c)
        a[side] = (ln_args_t){B,
                              N,
                              C,
                              1e-5,
                              P(x),
                              P(tx),
                              P(dy),
                              P(dty),
                              affine ? P(w) : NULL,
                              affine ? P(b) : NULL,
                              P(y),
                              P(ty),
                              P(dx),
                              P(dtx),
                              affine ? P(dw) : NULL,
                              affine ? P(db) : NULL,
                              P(saved),
                              P(ws)};
#undef P
    }
    cpu->ln_forward(cpu, &a[0]);
    gpu->ln_forward(gpu, &a[1]);
    snprintf(w2, sizeof w2, "%s: y", what);
    pair_check(&y, w2, TOL_ELEM);
    snprintf(w2, sizeof w2, "%s: mean, inv_std", what);
    pair_check(&saved, w2, TOL_ELEM);
    cpu->ln_backward(cpu, &a[0]);
    gpu->ln_backward(gpu, &a[1]);
    snprintf(w2, sizeof w2, "%s: dx", what);
    pair_check(&dx, w2, TOL_ELEM);
    if (affine) {
        snprintf(w2, sizeof w2, "%s: dw, db", what);
        pair_check(&dw, w2, TOL_ELEM);
        pair_check(&db, w2, TOL_ELEM);
    }
    cpu->ln_jvp_forward(cpu, &a[0]);
    gpu->ln_jvp_forward(gpu, &a[1]);
    snprintf(w2, sizeof w2, "%s: jvp forward y", what);
    pair_check(&y, w2, TOL_ELEM);
    snprintf(w2, sizeof w2, "%s: jvp forward ty", what);
    pair_check(&ty, w2, TOL_ELEM);
    for (int c = 0; c < 3; c++) { /* everything; dy NULL (the penalty's pass); dx not wanted */
        a[0].dy = c == 1 ? NULL : dy.c;
        a[1].dy = c == 1 ? NULL : dy.g;
        a[0].dx = c == 2 ? NULL : dx.c;
        a[1].dx = c == 2 ? NULL : dx.g;
        cpu->ln_jvp_backward(cpu, &a[0]);
        gpu->ln_jvp_backward(gpu, &a[1]);
        snprintf(w2, sizeof w2, "%s: jvp backward dx, dtx (case %d)", what, c);
        pair_check(&dx, w2, TOL_ELEM);
        pair_check(&dtx, w2, TOL_ELEM);
        snprintf(w2, sizeof w2, "%s: jvp backward workspace (case %d)", what, c);
        pair_check(&ws, w2, TOL_ELEM);
        if (affine) {
            snprintf(w2, sizeof w2, "%s: jvp backward dw, db (case %d)", what, c);
            pair_check(&dw, w2, TOL_ELEM);
            pair_check(&db, w2, TOL_ELEM);
        }
    }
    pair_t *all[] = {&x, &tx, &dy, &dty, &y, &ty, &dx, &dtx, &w, &b, &dw, &db, &saved, &ws};
    for (int i = 0; i < 14; i++) pair_free(all[i]);
}

static void test_layernorm(void) {
    ln_case(5, 17, 1, 0);
    ln_case(3, 64 * 49, 1, 0); /* above the CPU's threshold for threads */
    ln_case(4, 9, 0, 0);
    ln_case(1, 1000, 1, 0);
    /* instance normalization: rows of (sample, channel), one scale per channel */
    ln_case(3, 4 * 25, 1, 4);
    ln_case(2, 64 * 49, 1, 64);
    ln_case(3, 6 * 9, 0, 6);
}

static void test_dropout(void) {
    size_t n = 50001;
    pair_t x = pair_new(n, 1, 0), t = pair_new(n, 1, 0), o1 = pair_zero(n), o2 = pair_zero(n);
    pair_t mask = pair_zero((n + 3) / 4); /* n mask bytes */
    unsigned char *mc = (unsigned char *)mask.c, *mg = (unsigned char *)mask.g;
    float ps[] = {0.3f, 0.5f, 0.9f};
    for (int k = 0; k < 3; k++) {
        uint64_t base = 3 + 1000 * (uint64_t)k; /* a base that is not a multiple of 4 */
        cpu->dropout(cpu, o1.c, x.c, o2.c, t.c, mc, 1, n, 42, 7, base, ps[k]);
        gpu->dropout(gpu, o1.g, x.g, o2.g, t.g, mg, 1, n, 42, 7, base, ps[k]);
        pair_check(&o1, "dropout o1", TOL_EXACT);
        pair_check(&o2, "dropout o2", TOL_EXACT);
        pair_check(&mask, "dropout mask bytes", TOL_EXACT);
        /* backward: the saved mask applied to other inputs (seed, step, base ignored) */
        cpu->dropout(cpu, o1.c, t.c, o2.c, NULL, mc, 0, n, 0, 0, 0, ps[k]);
        gpu->dropout(gpu, o1.g, t.g, o2.g, NULL, mg, 0, n, 0, 0, 0, ps[k]);
        pair_check(&o1, "dropout backward from the mask", TOL_EXACT);
        pair_check(&o2, "dropout backward of zeros", TOL_EXACT);
        cpu->dropout(cpu, o1.c, NULL, NULL, NULL, mc, 1, n, 42, 8, base, ps[k]);
        gpu->dropout(gpu, o1.g, NULL, NULL, NULL, mg, 1, n, 42, 8, base, ps[k]);
        pair_check(&o1, "dropout of zeros", TOL_EXACT);
        pair_check(&mask, "dropout mask bytes of another step", TOL_EXACT);
    }
    pair_t *all[] = {&x, &t, &o1, &o2, &mask};
    for (int i = 0; i < 5; i++) pair_free(all[i]);
}

/* bias_act (net.c's fused linear layer and activation): CPU and GPU agree, and on the CPU the
 * fused pass is the bits of bias_add then act_forward, split over threads (130 x 300) or not, with
 * inner 1 (linear) and more */
static void test_bias_act(void) {
    long shapes[][3] = {{130, 300, 1}, {3, 5, 49}};
    for (size_t s = 0; s < 2; s++)
        for (int k = 0; k < 4; k++) {
            long o = shapes[s][0], C = shapes[s][1], in = shapes[s][2];
            size_t n = (size_t)(o * C * in);
            pair_t y = pair_new(n, 2, 0), b = pair_new((size_t)C, 1, 0.1f), z = pair_zero(n);
            float *ref = gt_xmalloc(sizeof(float) * n), *rz = gt_xmalloc(sizeof(float) * n);
            cpu->copy(cpu, ref, y.c, sizeof(float) * n);
            cpu->bias_add(cpu, ref, b.c, o, C, in);
            cpu->act_forward(cpu, (act_kind_t)k, 0.2f, rz, ref, n);
            cpu->bias_act(cpu, (act_kind_t)k, 0.2f, y.c, z.c, b.c, o, C, in);
            gpu->bias_act(gpu, (act_kind_t)k, 0.2f, y.g, z.g, b.g, o, C, in);
            pair_check(&y, "bias_act y", TOL_EXACT); /* one float addition */
            pair_check(&z, "bias_act z", TOL_ELEM);
            CHECK(!memcmp(ref, y.c, sizeof(float) * n) && !memcmp(rz, z.c, sizeof(float) * n),
                  "bias_act (kind %d, %ldx%ldx%ld): not the bits of bias_add then act_forward", k, o, C, in);
            free(ref);
            free(rz);
            pair_free(&y);
            pair_free(&b);
            pair_free(&z);
        }
}

/* act_dropout (net.c's fused activation and dropout): CPU and GPU agree, mask included, and on
 * the CPU the fused passes are the bits of act_forward then dropout (backward: dropout's then
 * act_backward), the backward in place (dx = dy's buffer) as net.c runs it */
static void test_act_dropout(void) {
    size_t n = 40003; /* the CPU's parallel path; not a multiple of 4 */
    pair_t x = pair_new(n, 2, 0), dy = pair_new(n, 1, 0), y = pair_zero(n), dx = pair_zero(n);
    pair_t mask = pair_zero((n + 3) / 4);
    float *ref = gt_xmalloc(sizeof(float) * n), *tmp = gt_xmalloc(sizeof(float) * n);
    unsigned char *mref = gt_xmalloc(n);
    for (int k = 0; k < 2; k++) {
        act_kind_t kind = k ? ACT_LRELU : ACT_RELU;
        uint64_t base = ((uint64_t)2 << 48) + 5;
        cpu->act_dropout(cpu, kind, 0.2f, 0, y.c, NULL, x.c, (unsigned char *)mask.c, n, 42, 7, base, 0.3f);
        gpu->act_dropout(gpu, kind, 0.2f, 0, y.g, NULL, x.g, (unsigned char *)mask.g, n, 42, 7, base, 0.3f);
        pair_check(&y, "act_dropout forward", TOL_EXACT);
        pair_check(&mask, "act_dropout mask bytes", TOL_EXACT);
        cpu->act_forward(cpu, kind, 0.2f, tmp, x.c, n);
        cpu->dropout(cpu, ref, tmp, NULL, NULL, mref, 1, n, 42, 7, base, 0.3f);
        CHECK(!memcmp(ref, y.c, sizeof(float) * n) && !memcmp(mref, mask.c, n),
              "act_dropout forward (kind %d): not the bits of act_forward then dropout", (int)kind);
        cpu->copy(cpu, dx.c, dy.c, sizeof(float) * n);
        gpu->copy(gpu, dx.g, dy.g, sizeof(float) * n);
        cpu->act_dropout(cpu, kind, 0.2f, 1, dx.c, dx.c, x.c, (unsigned char *)mask.c, n, 0, 0, 0, 0.3f);
        gpu->act_dropout(gpu, kind, 0.2f, 1, dx.g, dx.g, x.g, (unsigned char *)mask.g, n, 0, 0, 0, 0.3f);
        pair_check(&dx, "act_dropout backward (in place)", TOL_EXACT);
        cpu->dropout(cpu, tmp, dy.c, NULL, NULL, mref, 0, n, 0, 0, 0, 0.3f);
        cpu->act_backward(cpu, kind, 0.2f, ref, tmp, x.c, NULL, n);
        CHECK(!memcmp(ref, dx.c, sizeof(float) * n),
              "act_dropout backward (kind %d): not the bits of dropout's backward then act_backward", (int)kind);
    }
    free(ref);
    free(tmp);
    free(mref);
    pair_t *all[] = {&x, &dy, &y, &dx, &mask};
    for (int i = 0; i < 5; i++) pair_free(all[i]);
}

/* add_noise as the noise layer calls it: a large n (the CPU's parallel path), a layer key, x
 * NULL (the noise alone) */
static void test_add_noise_layer(void) {
    size_t n = 40001;
    pair_t x = pair_new(n, 1, 0), y = pair_zero(n);
    uint64_t base = ((uint64_t)3 << 48) + 7; /* a layer key and a base not a multiple of 4 */
    cpu->add_noise(cpu, y.c, x.c, n, 42, PHILOX_STREAM_NOISE, 7, base, 0.3f);
    gpu->add_noise(gpu, y.g, x.g, n, 42, PHILOX_STREAM_NOISE, 7, base, 0.3f);
    pair_check(&y, "add_noise, a layer's key", TOL_EXACT);
    cpu->add_noise(cpu, y.c, NULL, n, 43, PHILOX_STREAM_NOISE, 9, 1, 2.0f);
    gpu->add_noise(gpu, y.g, NULL, n, 43, PHILOX_STREAM_NOISE, 9, 1, 2.0f);
    pair_check(&y, "add_noise of zeros", TOL_EXACT);
    pair_free(&x);
    pair_free(&y);
}

static void test_losses(void) {
    int Bs[] = {1, 64, 1000};
    for (int bi = 0; bi < 3; bi++) {
        int B = Bs[bi];
        pair_t logit = pair_new((size_t)B, 4, 0.5f), dl = pair_zero((size_t)B);
        dpair_t out = dpair_new(2);
        for (int loss = 0; loss < LOSS_COUNT; loss++)
            for (int which = 0; which < 3; which++) {
                double smooth = which == 0 && loss <= LOSS_NS ? 0.1 : 0.0;
                cpu->loss(cpu, loss, smooth, which, dl.c, out.c, logit.c, B, B);
                gpu->loss(gpu, loss, smooth, which, dl.g, out.g, logit.g, B, B);
                char what[64];
                snprintf(what, sizeof what, "loss %s which %d B %d: dl", gan_loss_name((gan_loss_t)loss), which, B);
                pair_check(&dl, what, TOL_OP);
                snprintf(what, sizeof what, "loss %s which %d B %d: loss, mean", gan_loss_name((gan_loss_t)loss),
                         which, B);
                doubles_check(out.c, out.g, 2, what, TOL_DOUBLE);
            }
        /* per-sample targets: two-sided smoothing, a third of them flipped */
        cpu->loss_targets(cpu, 0.9, 0.05, 0.3, 7, 33, 5, dl.c, out.c, logit.c, B, B + 3);
        gpu->loss_targets(gpu, 0.9, 0.05, 0.3, 7, 33, 5, dl.g, out.g, logit.g, B, B + 3);
        pair_check(&dl, "loss_targets: dl", TOL_OP);
        doubles_check(out.c, out.g, 2, "loss_targets: loss, mean", TOL_DOUBLE);
        pair_free(&logit);
        pair_free(&dl);
        dpair_free(&out);
    }
}

static void test_gather(void) {
    int N = 50, B = 13;
    size_t sz = 3 * 5 * 7;
    uint8_t *u8 = gt_xmalloc((size_t)N * sz);
    float *f32 = gt_xmalloc(sizeof(float) * (size_t)N * sz);
    for (size_t i = 0; i < (size_t)N * sz; i++) {
        u8[i] = (uint8_t)philox_u32(3, PHILOX_STREAM_USER, 1, i);
        f32[i] = philox_normal(3, PHILOX_STREAM_USER, 2, i);
    }
    int64_t perm[50];
    for (int i = 0; i < N; i++) perm[i] = (i * 17 + 5) % N;
    int64_t *pc = cpu->alloc(cpu, sizeof perm), *pg = gpu->alloc(gpu, sizeof perm);
    cpu->upload(cpu, pc, perm, sizeof perm);
    gpu->upload(gpu, pg, perm, sizeof perm);
    for (int k = 0; k < 2; k++) {
        const void *host = k ? (const void *)f32 : (const void *)u8;
        size_t bytes = (size_t)N * sz * (k ? 4 : 1);
        const void *dc = cpu->upload_const ? cpu->upload_const(cpu, host, bytes) : NULL;
        void *dg = gpu->alloc(gpu, bytes);
        gpu->upload(gpu, dg, host, bytes);
        pair_t out = pair_zero((size_t)B * sz);
        cpu->gather(cpu, out.c, dc, !k, pc, 30, B, sz);
        gpu->gather(gpu, out.g, dg, !k, pg, 30, B, sz);
        pair_check(&out, k ? "gather float32" : "gather uint8", TOL_EXACT);
        gpu->free(gpu, dg);
        pair_free(&out);
    }
    cpu->free(cpu, pc);
    gpu->free(gpu, pg);
    free(u8);
    free(f32);
}

/* the class-conditional operations (class_math.h): the same code on both sides, bit-exact;
 * S positions and F features, more than CLASS_CHUNK to sum in several chunks */
static void class_ops_sized(long S, int F) {
    int B = 11, C = 3, E = 5, K = 4;
    int64_t lab[11], perm[20], all[20];
    for (int i = 0; i < 20; i++) {
        all[i] = (i * 7 + 3) % K;
        perm[i] = (i * 13 + 2) % 20;
    }
    int64_t *ac = cpu->alloc(cpu, sizeof all), *ag = gpu->alloc(gpu, sizeof all);
    int64_t *pc = cpu->alloc(cpu, sizeof perm), *pg = gpu->alloc(gpu, sizeof perm);
    int64_t *lc = cpu->alloc(cpu, sizeof lab), *lg = gpu->alloc(gpu, sizeof lab);
    cpu->upload(cpu, ac, all, sizeof all);
    gpu->upload(gpu, ag, all, sizeof all);
    cpu->upload(cpu, pc, perm, sizeof perm);
    gpu->upload(gpu, pg, perm, sizeof perm);
    cpu->gather_labels(cpu, lc, ac, pc, 7, B);
    gpu->gather_labels(gpu, lg, ag, pg, 7, B);
    int64_t got[11];
    cpu->download(cpu, lab, lc, sizeof lab);
    gpu->download(gpu, got, lg, sizeof got);
    CHECK(memcmp(lab, got, sizeof lab) == 0, "gather_labels differs");
    for (int i = 0; i < B; i++) CHECK(lab[i] == all[perm[7 + i]], "gather_labels[%d] = %lld", i, (long long)lab[i]);

    pair_t x = pair_new((size_t)B * C * S, 1, 0), table = pair_new((size_t)K * E, 1, 0);
    for (int kind = 0; kind < 3; kind++) {
        pair_t y = pair_zero((size_t)B * (C + E) * S);
        cpu->class_concat(cpu, kind, y.c, x.c, kind ? NULL : table.c, lc, B, C, E, S);
        gpu->class_concat(gpu, kind, y.g, x.g, kind ? NULL : table.g, lg, B, C, E, S);
        pair_check(&y, kind == 0 ? "class_concat table" : kind == 1 ? "class_concat one-hot" : "class_concat zero",
                   TOL_EXACT);
        pair_free(&y);
    }
    pair_t dy = pair_new((size_t)B * (C + E) * S, 1, 0), dx = pair_zero((size_t)B * C * S),
           dt = pair_new((size_t)K * E, 1, 0);
    cpu->class_concat_backward(cpu, dx.c, dt.c, dy.c, lc, B, C, E, S, K);
    gpu->class_concat_backward(gpu, dx.g, dt.g, dy.g, lg, B, C, E, S, K);
    pair_check(&dx, "class_concat_backward dx", TOL_EXACT);
    pair_check(&dt, "class_concat_backward dtable", TOL_EXACT);

    pair_t w = pair_new((size_t)K * C, 0.5f, 1), b = pair_new((size_t)K * C, 1, 0), ya = pair_zero((size_t)B * C * S);
    cpu->class_affine(cpu, ya.c, x.c, w.c, b.c, lc, B, C, S);
    gpu->class_affine(gpu, ya.g, x.g, w.g, b.g, lg, B, C, S);
    pair_check(&ya, "class_affine", TOL_EXACT);
    pair_t dya = pair_new((size_t)B * C * S, 1, 0), dxa = pair_zero((size_t)B * C * S),
           dw = pair_new((size_t)K * C, 1, 0), db = pair_new((size_t)K * C, 1, 0);
    cpu->class_affine_backward(cpu, dxa.c, dw.c, db.c, dya.c, x.c, w.c, lc, B, C, S, K);
    gpu->class_affine_backward(gpu, dxa.g, dw.g, db.g, dya.g, x.g, w.g, lg, B, C, S, K);
    pair_check(&dxa, "class_affine_backward dxhat", TOL_EXACT);
    pair_check(&dw, "class_affine_backward dw", TOL_EXACT);
    pair_check(&db, "class_affine_backward db", TOL_EXACT);

    pair_t h = pair_new((size_t)B * F, 1, 0), pt = pair_new((size_t)K * F, 1, 0), yp = pair_new((size_t)B, 1, 0);
    cpu->class_proj(cpu, yp.c, h.c, pt.c, lc, B, F);
    gpu->class_proj(gpu, yp.g, h.g, pt.g, lg, B, F);
    pair_check(&yp, "class_proj", TOL_EXACT);
    pair_t dyp = pair_new((size_t)B, 1, 0), dh = pair_new((size_t)B * F, 1, 0), dpt = pair_new((size_t)K * F, 1, 0);
    cpu->class_proj_backward(cpu, dh.c, dpt.c, dyp.c, h.c, pt.c, lc, B, F, K);
    gpu->class_proj_backward(gpu, dh.g, dpt.g, dyp.g, h.g, pt.g, lg, B, F, K);
    pair_check(&dh, "class_proj_backward dh", TOL_EXACT);
    pair_check(&dpt, "class_proj_backward dtable", TOL_EXACT);

    pair_t *all_pairs[] = {&x, &table, &dy, &dx, &dt, &w, &b, &ya, &dya, &dxa, &dw, &db, &h, &pt, &yp, &dyp, &dh, &dpt};
    for (size_t i = 0; i < sizeof all_pairs / sizeof all_pairs[0]; i++) pair_free(all_pairs[i]);
    cpu->free(cpu, ac);
    gpu->free(gpu, ag);
    cpu->free(cpu, pc);
    gpu->free(gpu, pg);
    cpu->free(cpu, lc);
    gpu->free(gpu, lg);
}

/* weight normalization's operations on (rows, cols) weights, the second above the CPU's
 * threshold for threads: the rows' norms, W = v g / ||v||, and the gradient to g and v */
static void test_weight_norm(void) {
    long shapes[2][2] = {{7, 300}, {64, 2000}};
    for (int q = 0; q < 2; q++) {
        long rows = shapes[q][0], cols = shapes[q][1];
        size_t n = (size_t)rows * (size_t)cols;
        pair_t v = pair_new(n, 0.3f, 0), g = pair_new((size_t)rows, 0.5f, 1), nrm = pair_zero((size_t)rows);
        pair_t w = pair_zero(n), dw = pair_new(n, 1, 0), dv = pair_new(n, 0.1f, 0), dg = pair_new((size_t)rows, 0.1f, 0);
        char what[64];
        backend_t *be[2] = {cpu, gpu};
        for (int k = 0; k < 2; k++) {
            backend_t *b = be[k];
            int G = k == 1;
#define P(p) (G ? (p).g : (p).c)
            b->wn_norms(b, P(nrm), P(v), rows, cols);
            b->wn_weight(b, P(w), P(g), P(v), P(nrm), rows, cols);
            b->wn_grad(b, P(dg), P(dv), P(dw), P(g), P(v), P(nrm), rows, cols);
#undef P
        }
        snprintf(what, sizeof what, "wn_norms %ldx%ld", rows, cols);
        pair_check(&nrm, what, TOL_OP);
        snprintf(what, sizeof what, "wn_weight %ldx%ld", rows, cols);
        pair_check(&w, what, TOL_OP);
        snprintf(what, sizeof what, "wn_grad %ldx%ld: dg", rows, cols);
        pair_check(&dg, what, TOL_OP);
        snprintf(what, sizeof what, "wn_grad %ldx%ld: dv", rows, cols);
        pair_check(&dv, what, TOL_OP);
        pair_t *all[] = {&v, &g, &nrm, &w, &dw, &dv, &dg};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) pair_free(all[i]);
    }
}

static void test_class_ops(void) {
    class_ops_sized(6, 37);
    class_ops_sized(150, 200);
}

/* spectral normalization's operations on W_mat of a (d0, d1, inner) weight, dim 0 and dim 1
 * (a transposed convolution's): one power iteration, sigma and W, the gradient through W */
static void test_spectral_norm(void) {
    for (int dim = 0; dim < 2; dim++) {
        sn_shape_t s = {dim ? 5 : 40, dim ? 12 : 7, 9, dim};
        size_t rows = (size_t)sn_rows(&s), cols = (size_t)sn_cols(&s), n = sn_count(&s);
        pair_t w0 = pair_new(n, 0.3f, 0), w = pair_zero(n), u = pair_new(rows, 1, 0), v = pair_zero(cols);
        pair_t t = pair_zero(rows), dw = pair_new(n, 1, 0), dw0 = pair_new(n, 0.1f, 0);
        dpair_t sc = dpair_new(2);
        char what[64];
        backend_t *be[2] = {cpu, gpu};
        for (int k = 0; k < 2; k++) {
            backend_t *b = be[k];
            int g = k == 1;
            b->sn_matvec(b, &s, g ? v.g : v.c, g ? w0.g : w0.c, g ? u.g : u.c, 1);
        }
        snprintf(what, sizeof what, "sn_matvec transposed, dim %d", dim);
        pair_check(&v, what, TOL_OP);
        for (int k = 0; k < 2; k++) {
            backend_t *b = be[k];
            int g = k == 1;
            b->sn_normalize(b, g ? v.g : v.c, g ? v.g : v.c, cols, 1e-12);
            b->sn_matvec(b, &s, g ? t.g : t.c, g ? w0.g : w0.c, g ? v.g : v.c, 0);
        }
        snprintf(what, sizeof what, "sn_normalize, dim %d", dim);
        pair_check(&v, what, TOL_OP);
        snprintf(what, sizeof what, "sn_matvec, dim %d", dim);
        pair_check(&t, what, TOL_OP);
        for (int k = 0; k < 2; k++) {
            backend_t *b = be[k];
            int g = k == 1;
            b->sn_normalize(b, g ? u.g : u.c, g ? t.g : t.c, rows, 1e-12);
            b->sn_weight(b, &s, g ? w.g : w.c, g ? sc.g : sc.c, g ? w0.g : w0.c, g ? u.g : u.c, g ? t.g : t.c);
            b->sn_grad(b, &s, g ? dw0.g : dw0.c, (g ? sc.g : sc.c) + 1, g ? dw.g : dw.c, g ? w.g : w.c, g ? u.g : u.c,
                       g ? v.g : v.c, g ? sc.g : sc.c);
        }
        snprintf(what, sizeof what, "sn_weight, dim %d", dim);
        pair_check(&w, what, TOL_OP);
        doubles_check(sc.c, sc.g, 2, "sn sigma and <dW, W>", TOL_DOUBLE);
        snprintf(what, sizeof what, "sn_grad, dim %d", dim);
        pair_check(&dw0, what, TOL_OP);
        /* a zero vector stays zero (the divisor is eps, not 0) */
        for (int k = 0; k < 2; k++) be[k]->zero(be[k], k ? t.g : t.c, sizeof(float) * rows);
        cpu->sn_normalize(cpu, u.c, t.c, rows, 1e-12);
        gpu->sn_normalize(gpu, u.g, t.g, rows, 1e-12);
        pair_check(&u, "sn_normalize of zeros", TOL_EXACT);
        pair_t *all[] = {&w0, &w, &u, &v, &t, &dw, &dw0};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) pair_free(all[i]);
        dpair_free(&sc);
    }
}

static void test_penalty_and_norms(void) {
    int B = 9;
    size_t sz = 300;
    pair_t real = pair_new((size_t)B * sz, 1, 0), fake = pair_new((size_t)B * sz, 1, 0), xhat = pair_zero((size_t)B * sz);
    cpu->gp_mix(cpu, xhat.c, real.c, fake.c, B, sz, 5, 17, 40);
    gpu->gp_mix(gpu, xhat.g, real.g, fake.g, B, sz, 5, 17, 40);
    pair_check(&xhat, "gp_mix", TOL_EXACT);
    dpair_t out = dpair_new(4);
    pair_t g = pair_new((size_t)B * sz, 0.05f, 0);
    cpu->fill(cpu, g.c + sz, 0.0f, sz); /* a zero gradient: factor 0 */
    gpu->fill(gpu, g.g + sz, 0.0f, sz);
    cpu->gp_scale(cpu, g.c, out.c, B, B, sz, 10.0);
    gpu->gp_scale(gpu, g.g, out.g, B, B, sz, 10.0);
    pair_check(&g, "gp_scale cotangents", TOL_OP);
    doubles_check(out.c, out.g, 1, "gp_scale penalty", TOL_DOUBLE);
    /* R1/R2 as one slice (B_mean = 2 B) of a data-parallel batch, against its definition */
    pair_t r = pair_new((size_t)B * sz, 0.05f, 0);
    float *h = gt_xmalloc(sizeof(float) * r.n), *hv = gt_xmalloc(sizeof(float) * r.n);
    cpu->download(cpu, h, r.c, sizeof(float) * r.n);
    cpu->r1_scale(cpu, r.c, out.c + 2, B, 2 * B, sz, 3.0);
    gpu->r1_scale(gpu, r.g, out.g + 2, B, 2 * B, sz, 3.0);
    pair_check(&r, "r1_scale cotangents", TOL_OP);
    doubles_check(out.c + 2, out.g + 2, 1, "r1_scale penalty", TOL_DOUBLE);
    double want = 0, got, worst = 0;
    cpu->download(cpu, hv, r.c, sizeof(float) * r.n);
    cpu->download(cpu, &got, out.c + 2, sizeof got);
    for (size_t i = 0; i < r.n; i++) {
        want += 1.5 * h[i] * h[i] / (2 * B);
        double e = fabs(hv[i] - 3.0 / (2 * B) * h[i]);
        if (e > worst) worst = e;
    }
    CHECK(fabs(got - want) <= 1e-12 * want && worst <= 1e-7, "r1_scale: penalty %.17g, wanted %.17g; cotangent off by %g",
          got, want, worst);
    free(h);
    free(hv);
    pair_free(&r);
    cpu->sumsq(cpu, out.c + 1, real.c, real.n);
    gpu->sumsq(gpu, out.g + 1, real.g, real.n);
    doubles_check(out.c + 1, out.g + 1, 1, "sumsq", TOL_DOUBLE);
    /* nonfinite: none, then an infinity, then a NaN */
    for (int k = 0; k < 3; k++) {
        if (k) {
            cpu->fill(cpu, real.c + 1000 + k, k == 1 ? INFINITY : NAN, 1);
            gpu->fill(gpu, real.g + 1000 + k, k == 1 ? INFINITY : NAN, 1);
        }
        cpu->zero(cpu, out.c + 2, sizeof(double));
        gpu->zero(gpu, out.g + 2, sizeof(double));
        cpu->nonfinite(cpu, out.c + 2, real.c, real.n);
        gpu->nonfinite(gpu, out.g + 2, real.g, real.n);
        double fc, fg;
        cpu->download(cpu, &fc, out.c + 2, sizeof fc);
        gpu->download(gpu, &fg, out.g + 2, sizeof fg);
        CHECK(fc == (k > 0) && fg == fc, "nonfinite case %d: cpu %g cuda %g", k, fc, fg);
    }
    pair_t *all[] = {&real, &fake, &xhat, &g};
    for (int i = 0; i < 4; i++) pair_free(all[i]);
    dpair_free(&out);
}

/* DiffAugment's operations: the draws and both maps, bit for bit (the same float arithmetic on
 * both sides, given the same per-sample means); the spatial maps forward and adjoint for each
 * policy, on an odd-sized image so that shifts and cuts reach the borders. */
static void test_augment(void) {
    int B = 7, C = 3, H = 9, W = 11;
    size_t n = (size_t)B * C * H * W;
    pair_t prm = pair_zero((size_t)B * AUG_DRAWS), x = pair_new(n, 1, 0), y = pair_zero(n);
    pair_t mean = pair_new((size_t)B, 0.3f, 0);
    cpu->augment_draw(cpu, prm.c, B, H, W, 9, 16 * 4 + 2, 33);
    gpu->augment_draw(gpu, prm.g, B, H, W, 9, 16 * 4 + 2, 33);
    pair_check(&prm, "augment_draw", TOL_EXACT);
    for (int shift = 0; shift < 2; shift++) {
        cpu->augment_color(cpu, y.c, x.c, prm.c, mean.c, B, C, (long)H * W, shift);
        gpu->augment_color(gpu, y.g, x.g, prm.g, mean.g, B, C, (long)H * W, shift);
        pair_check(&y, shift ? "augment_color" : "augment_color linear part", TOL_EXACT);
    }
    cpu->augment_color(cpu, x.c, x.c, prm.c, mean.c, B, C, (long)H * W, 1); /* in place */
    gpu->augment_color(gpu, x.g, x.g, prm.g, mean.g, B, C, (long)H * W, 1);
    pair_check(&x, "augment_color in place", TOL_EXACT);
    const int policies[] = {AUG_TRANSLATION, AUG_CUTOUT, AUG_TRANSLATION | AUG_CUTOUT};
    for (int k = 0; k < 3; k++)
        for (int adj = 0; adj < 2; adj++) {
            char what[64];
            snprintf(what, sizeof what, "augment_spatial policy %d%s", policies[k], adj ? " adjoint" : "");
            cpu->augment_spatial(cpu, y.c, x.c, prm.c, policies[k], adj, B, C, H, W);
            gpu->augment_spatial(gpu, y.g, x.g, prm.g, policies[k], adj, B, C, H, W);
            pair_check(&y, what, TOL_EXACT);
        }
    pair_t *all[] = {&prm, &x, &y, &mean};
    for (int i = 0; i < 4; i++) pair_free(all[i]);
}

/* the Inception network's own operations (kernels/inception.cu): bilinear resize of 3 and of 1
 * channels, ReLU keeping NaN, a block of rows copied between strides, plane means */
static void test_inception_ops(void) {
    int B = 2, H = 7, W = 5, S = 11;
    pair_t x = pair_new((size_t)B * 3 * H * W, 1, 0), y = pair_zero((size_t)B * 3 * S * S);
    for (int C = 1; C <= 3; C += 2) {
        cpu->resize_bilinear(cpu, y.c, x.c, B, C, H, W, S);
        gpu->resize_bilinear(gpu, y.g, x.g, B, C, H, W, S);
        pair_check(&y, C == 1 ? "resize_bilinear, 1 channel" : "resize_bilinear", TOL_EXACT);
    }
    cpu->fill(cpu, y.c + 5, NAN, 3);
    gpu->fill(gpu, y.g + 5, NAN, 3);
    cpu->relu_keep_nan(cpu, y.c, y.n);
    gpu->relu_keep_nan(gpu, y.g, y.n);
    pair_check(&y, "relu_keep_nan", TOL_EXACT);
    pair_t r = pair_zero(7 * 13);
    cpu->copy_rows(cpu, r.c + 2, 13, x.c + 1, 9, 7, 10);
    gpu->copy_rows(gpu, r.g + 2, 13, x.g + 1, 9, 7, 10);
    pair_check(&r, "copy_rows", TOL_EXACT);
    pair_t m = pair_zero((size_t)B * 3);
    cpu->plane_means(cpu, m.c, x.c, B * 3, (long)H * W);
    gpu->plane_means(gpu, m.g, x.g, B * 3, (long)H * W);
    pair_check(&m, "plane_means", TOL_OP);
    pair_t *all[] = {&x, &y, &r, &m};
    for (int i = 0; i < 4; i++) pair_free(all[i]);
}

static void test_train_stats(void) {
    dpair_t st = dpair_new(TS_COUNT);
    double v[TS_COUNT];
    memset(v, 0, sizeof v);
    v[TS_LOSS_REAL] = 0.5;
    v[TS_LOSS_FAKE] = 0.25;
    v[TS_MEAN_REAL] = 0.7;
    v[TS_GP] = 0.125;
    v[TS_R1] = 0.0625; /* R1 and R2 of the first D update: added to it, then cleared */
    v[TS_R2] = 0.03125;
    v[TS_SUMSQ_D] = 4;
    v[TS_SUMSQ_G] = 9;
    v[TS_LOSS_G] = 1.5;
    cpu->upload(cpu, st.c, v, sizeof v);
    gpu->upload(gpu, st.g, v, sizeof v);
    int whats[] = {TS_AFTER_D, TS_AFTER_D_GP, TS_AFTER_G, TS_AFTER_G};
    for (int k = 0; k < 4; k++) {
        cpu->train_stats(cpu, st.c, whats[k], 3 + k);
        gpu->train_stats(gpu, st.g, whats[k], 3 + k);
        if (k == 0) {
            double f[TS_COUNT];
            gpu->download(gpu, f, st.g, sizeof f);
            CHECK(f[TS_LAST] == 0.75 + 0.09375 && f[TS_LAST + 4] == 0.09375 && f[TS_R1] == 0 && f[TS_R2] == 0,
                  "R1 and R2 in D's figures: loss %g penalty %g, slots %g %g", f[TS_LAST], f[TS_LAST + 4], f[TS_R1],
                  f[TS_R2]);
        }
    }
    /* then a bad D loss at step 8, a bad G weight at step 9: only the first is kept */
    double inf = INFINITY, one = 1;
    cpu->upload(cpu, st.c + TS_LOSS_FAKE, &inf, sizeof inf);
    gpu->upload(gpu, st.g + TS_LOSS_FAKE, &inf, sizeof inf);
    cpu->train_stats(cpu, st.c, TS_AFTER_D, 8);
    gpu->train_stats(gpu, st.g, TS_AFTER_D, 8);
    cpu->upload(cpu, st.c + TS_BAD_G, &one, sizeof one);
    gpu->upload(gpu, st.g + TS_BAD_G, &one, sizeof one);
    cpu->train_stats(cpu, st.c, TS_AFTER_G, 9);
    gpu->train_stats(gpu, st.g, TS_AFTER_G, 9);
    double a[TS_COUNT], b[TS_COUNT];
    cpu->download(cpu, a, st.c, sizeof a);
    gpu->download(gpu, b, st.g, sizeof b);
    CHECK(memcmp(a, b, sizeof a) == 0, "statistics slots differ");
    CHECK(a[TS_BAD_STEP] == 8 && a[TS_BAD_WHAT] == TS_BAD_D_LOSS && isinf(a[TS_BAD_VALUE]), "first bad: %g %g %g",
          a[TS_BAD_STEP], a[TS_BAD_WHAT], a[TS_BAD_VALUE]);
    CHECK(a[TS_SUM_N] == 3 && a[TS_LAST + 6] == 2 && a[TS_LAST + 5] == 3, "figures");
    dpair_free(&st);
}

static void optim_case(const char *text, int steps) {
    opt_conf_t c;
    CHECK(opt_conf_parse(text, &c) == 0, "%s", gt_errmsg());
    size_t n = 70001;
    /* states as a run leaves them: squared averages positive, s1 - s3^2 > 0 (rmsprop centered) */
    pair_t p = pair_new(n, 0.1f, 0), s1 = pair_new(n, 0.001f, 0.02f), s2 = pair_new(n, 0.001f, 0.01f),
           s3 = pair_new(n, 0.001f, 0), ema = pair_new(n, 0.1f, 0);
    float *h0 = gt_xmalloc(sizeof(float) * n), *hc = gt_xmalloc(sizeof(float) * n), *hg = gt_xmalloc(sizeof(float) * n);
    dpair_t figs = dpair_new(4);
    for (int t = 1; t <= steps; t++) {
        pair_t g = pair_new(n, 0.01f, 0);
        opt_step_t k = opt_step_make(c.kind, c.lr, c.b1, c.b2, c.eps, c.wd, c.momentum, c.nesterov, c.centered, t);
        int uses2 = c.kind == OPT_ADAM || (c.kind == OPT_RMSPROP && c.momentum != 0);
        int uses3 = c.kind == OPT_RMSPROP && c.centered;
        /* the gradient reset (zero_g) on one side in turn: the updates must not depend on it; that
         * side also computes the figures (sumsq, bad), which must have the bits of the sumsq op on
         * the gradients before and the nonfinite op on the parameters after */
        opt_step_t kc = k, kg = k;
        kc.zero_g = t & 1;
        kg.zero_g = !(t & 1);
        backend_t *fb = t & 1 ? cpu : gpu;
        double *fig = t & 1 ? figs.c : figs.g;
        (t & 1 ? &kc : &kg)->fig.sumsq = fig + 1;
        (t & 1 ? &kc : &kg)->fig.bad = fig + 3;
        fb->sumsq(fb, fig, t & 1 ? g.c : g.g, n);
        cpu->download(cpu, h0, g.c, sizeof(float) * n);
        cpu->optim(cpu, &kc, p.c, g.c, s1.c, uses2 ? s2.c : NULL, uses3 ? s3.c : NULL, n);
        gpu->optim(gpu, &kg, p.g, g.g, s1.g, uses2 ? s2.g : NULL, uses3 ? s3.g : NULL, n);
        fb->nonfinite(fb, fig + 2, t & 1 ? p.c : p.g, n);
        double f[4];
        fb->download(fb, f, fig, sizeof f);
        CHECK(memcmp(&f[0], &f[1], sizeof(double)) == 0 && f[2] == 0 && f[3] == 0,
              "%s step %d (%s): fused sumsq %.17g, op %.17g; bad %g, op %g", text, t, fb->name, f[1], f[0], f[3], f[2]);
        cpu->download(cpu, hc, g.c, sizeof(float) * n);
        gpu->download(gpu, hg, g.g, sizeof(float) * n);
        const float *zeroed = t & 1 ? hc : hg, *kept = t & 1 ? hg : hc;
        size_t i = 0;
        while (i < n && zeroed[i] == 0.0f && !signbit(zeroed[i])) i++;
        CHECK(i == n, "%s step %d: gradient %zu is %g after zero_g", text, t, i, i < n ? zeroed[i] : 0.0f);
        CHECK(memcmp(kept, h0, sizeof(float) * n) == 0, "%s step %d: gradient written without zero_g", text, t);
        cpu->ema(cpu, ema.c, p.c, 0.9f, n);
        gpu->ema(gpu, ema.g, p.g, 0.9f, n);
        pair_free(&g);
    }
    char what[160];
    snprintf(what, sizeof what, "%s: parameters", text);
    pair_check(&p, what, TOL_ELEM);
    snprintf(what, sizeof what, "%s: state", text);
    pair_check(&s1, what, TOL_ELEM);
    pair_check(&s2, what, TOL_ELEM);
    pair_check(&s3, what, TOL_ELEM);
    snprintf(what, sizeof what, "%s: ema", text);
    pair_check(&ema, what, TOL_ELEM);
    cpu->clip(cpu, p.c, 0.05f, n);
    gpu->clip(gpu, p.g, 0.05f, n);
    snprintf(what, sizeof what, "%s: clipped", text);
    pair_check(&p, what, TOL_ELEM);
    pair_t *all[] = {&p, &s1, &s2, &s3, &ema};
    for (int i = 0; i < 5; i++) pair_free(all[i]);
    /* an infinite gradient: the step's figures are an infinite sum and a bad flag, as the ops' */
    size_t m = 37;
    pair_t q = pair_new(m, 0.1f, 0), u1 = pair_new(m, 0.001f, 0.02f), u2 = pair_new(m, 0.001f, 0.01f),
           u3 = pair_new(m, 0.001f, 0), gi = pair_new(m, 0.01f, 0);
    float inf = INFINITY;
    backend_t *bs[2] = {cpu, gpu};
    int uses2 = c.kind == OPT_ADAM || (c.kind == OPT_RMSPROP && c.momentum != 0);
    int uses3 = c.kind == OPT_RMSPROP && c.centered;
    for (int side = 0; side < 2; side++) {
        backend_t *b = bs[side];
        int c_ = side == 0;
        double *fig = c_ ? figs.c : figs.g;
        b->zero(b, fig, 4 * sizeof(double));
        b->upload(b, (c_ ? gi.c : gi.g) + 5, &inf, sizeof inf);
        opt_step_t k = opt_step_make(c.kind, c.lr, c.b1, c.b2, c.eps, c.wd, c.momentum, c.nesterov, c.centered, 1);
        k.fig.sumsq = fig + 1;
        k.fig.bad = fig + 3;
        b->sumsq(b, fig, c_ ? gi.c : gi.g, m);
        b->optim(b, &k, c_ ? q.c : q.g, c_ ? gi.c : gi.g, c_ ? u1.c : u1.g, uses2 ? (c_ ? u2.c : u2.g) : NULL,
                uses3 ? (c_ ? u3.c : u3.g) : NULL, m);
        b->nonfinite(b, fig + 2, c_ ? q.c : q.g, m);
        double f[4];
        b->download(b, f, fig, sizeof f);
        CHECK(isinf(f[0]) && f[1] == f[0] && f[2] == 1 && f[3] == 1, "%s (%s), infinite gradient: fused %g %g, ops %g %g",
              text, b->name, f[1], f[3], f[0], f[2]);
    }
    pair_t *few[] = {&q, &u1, &u2, &u3, &gi};
    for (int i = 0; i < 5; i++) pair_free(few[i]);
    dpair_free(&figs);
    free(h0);
    free(hc);
    free(hg);
}

/* The sharded step's figures (lib/gan/ddp.c): Adam over a vector of 3 parts and a piece,
 * stepped as two slices of whole parts, each writing its parts' figures (opt_step_t.fig.parts),
 * which sum_parts adds: the CPU's give the bits of its sumsq op on the gradients, the CUDA
 * backend's each part's sum to rounding, and a non-finite updated weight in the last part is
 * counted there and flagged; the parameters are the whole step's on either backend. */
static void test_optim_parts(void) {
    opt_conf_t c;
    CHECK(opt_conf_parse("adam:lr=2e-4,b1=0.5,b2=0.999", &c) == 0, "%s", gt_errmsg());
    size_t n = 3 * BE_FIG_PART + 1234, cut = 2 * BE_FIG_PART;
    long parts = 4;
    backend_t *bs[2] = {cpu, gpu};
    pair_t g = pair_new(n, 0.01f, 0), p = pair_new(n, 0.1f, 0), s1 = pair_zero(n), s2 = pair_zero(n);
    pair_t pw = pair_new(n, 0.1f, 0), w1 = pair_zero(n), w2 = pair_zero(n); /* the whole step's */
    dpair_t figs = dpair_new(2 * (size_t)parts + 4);
    float big = 3e38f, nbig = -3e38f, zero = 0; /* p - lr g = 3e38 + 3e38 overflows to +inf */
    for (int side = 0; side < 2; side++) {
        backend_t *b = bs[side];
        int c_ = side == 0;
        double *fig = c_ ? figs.c : figs.g;
        float *pp = c_ ? p.c : p.g, *gg = c_ ? g.c : g.g, *m1 = c_ ? s1.c : s1.g, *m2 = c_ ? s2.c : s2.g;
        b->zero(b, fig, sizeof(double) * (2 * (size_t)parts + 4));
        b->sumsq(b, fig + 2 * parts, gg, n);
        opt_step_t k = opt_step_make(c.kind, c.lr, c.b1, c.b2, c.eps, c.wd, c.momentum, c.nesterov, c.centered, 1);
        b->optim(b, &k, c_ ? pw.c : pw.g, gg, c_ ? w1.c : w1.g, c_ ? w2.c : w2.g, NULL, n);
        k.fig.parts = fig;
        b->optim(b, &k, pp, gg, m1, m2, NULL, cut);
        k.fig.parts = fig + 2 * (cut / BE_FIG_PART);
        b->optim(b, &k, pp + cut, gg + cut, m1 + cut, m2 + cut, NULL, n - cut);
        b->sum_parts(b, fig + 2 * parts + 1, fig + 2 * parts + 2, fig, parts);
        double f[2 * 4 + 4];
        b->download(b, f, fig, sizeof f);
        CHECK(memcmp(&f[8], &f[9], sizeof(double)) == 0 || !c_, "cpu: summed parts %.17g, sumsq op %.17g", f[9], f[8]);
        CHECK(fabs(f[9] - f[8]) <= TOL_DOUBLE * f[8] && f[10] == 0, "%s: summed parts %.17g, sumsq op %.17g, bad %g",
              b->name, f[9], f[8], f[10]);
        for (int i = 0; i < 4; i++) CHECK(f[2 * i + 1] == 0, "%s: part %d counts %g non-finite", b->name, i, f[2 * i + 1]);
        /* a weight that overflows in the last part */
        b->upload(b, pp + n - 7, &big, sizeof big);
        b->upload(b, gg + n - 7, &nbig, sizeof nbig);
        k = opt_step_make(OPT_SGD, 1, 0, 0, 0, 0, 0, 0, 0, 1);
        k.fig.parts = fig + 2 * (cut / BE_FIG_PART);
        b->optim(b, &k, pp + cut, gg + cut, NULL, NULL, NULL, n - cut);
        b->sum_parts(b, NULL, fig + 2 * parts + 2, fig, parts);
        b->download(b, f, fig, sizeof f);
        CHECK(f[7] == 1 && f[5] == 0 && f[10] == 1, "%s: the overflow's part counts %g, the flag %g", b->name, f[7], f[10]);
        b->upload(b, pp + n - 7, &zero, sizeof zero);
    }
    pair_check(&p, "sharded step: parameters", TOL_OP);
    float *a = gt_xmalloc(sizeof(float) * n), *w = gt_xmalloc(sizeof(float) * n);
    for (int side = 0; side < 2; side++) { /* before the overflow step, the slices' step was the whole one's */
        backend_t *b = bs[side];
        b->download(b, a, side ? s2.g : s2.c, sizeof(float) * n);
        b->download(b, w, side ? w2.g : w2.c, sizeof(float) * n);
        CHECK(memcmp(a, w, sizeof(float) * n) == 0, "%s: the slices' state is not the whole step's", b->name);
    }
    free(a);
    free(w);
    pair_t *all[] = {&g, &p, &s1, &s2, &pw, &w1, &w2};
    for (int i = 0; i < 7; i++) pair_free(all[i]);
    dpair_free(&figs);
}

static void test_optimizers(void) {
    optim_case("adam:lr=2e-4,b1=0.5,b2=0.999", 3);
    optim_case("adam:lr=1e-3,b1=0,b2=0.9,wd=0.01", 2);
    optim_case("sgd:lr=0.01", 2);
    optim_case("sgd:lr=0.01,momentum=0.9,nesterov,wd=1e-4", 3);
    optim_case("rmsprop:lr=5e-5", 2);
    optim_case("rmsprop:lr=1e-3,momentum=0.5,centered", 3);
}

static void test_latents(void) {
    int rows = 11, zd = 7;
    int64_t ia[11], ib[11];
    double t[11];
    for (int i = 0; i < rows; i++) {
        ia[i] = 3 * i + 1;
        ib[i] = i % 3 ? 5 + i : -1;
        t[i] = (i % 4) / 4.0;
    }
    int64_t *iac = cpu->alloc(cpu, sizeof ia), *iag = gpu->alloc(gpu, sizeof ia);
    int64_t *ibc = cpu->alloc(cpu, sizeof ib), *ibg = gpu->alloc(gpu, sizeof ib);
    double *tc = cpu->alloc(cpu, sizeof t), *tg = gpu->alloc(gpu, sizeof t);
    cpu->upload(cpu, iac, ia, sizeof ia);
    gpu->upload(gpu, iag, ia, sizeof ia);
    cpu->upload(cpu, ibc, ib, sizeof ib);
    gpu->upload(gpu, ibg, ib, sizeof ib);
    cpu->upload(cpu, tc, t, sizeof t);
    gpu->upload(gpu, tg, t, sizeof t);
    pair_t z = pair_zero((size_t)rows * zd), zin = pair_new(40 * (size_t)zd, 1, 0);
    double truncs[] = {0, 0.5};
    for (int k = 0; k < 2; k++) {
        cpu->latents(cpu, z.c, rows, zd, NULL, 99, truncs[k], iac, ibc, tc);
        gpu->latents(gpu, z.g, rows, zd, NULL, 99, truncs[k], iag, ibg, tg);
        pair_check(&z, k ? "latents truncated" : "latents drawn", TOL_EXACT);
    }
    cpu->latents(cpu, z.c, rows, zd, zin.c, 99, 0, iac, ibc, tc);
    gpu->latents(gpu, z.g, rows, zd, zin.g, 99, 0, iag, ibg, tg);
    pair_check(&z, "latents from --z-in rows", TOL_EXACT);
    pair_free(&z);
    pair_free(&zin);
    cpu->free(cpu, iac);
    gpu->free(gpu, iag);
    cpu->free(cpu, ibc);
    gpu->free(gpu, ibg);
    cpu->free(cpu, tc);
    gpu->free(gpu, tg);
}

/* ---- convolutions and pooling: data movement and sums in the CPU's order, so bit-exact ---- */

static void conv_case(conv_geom_t g, int o_ch, int nb) {
    char what[160];
    long G = (long)g.gh * g.gw, HW = (long)g.h * g.w, kk = (long)g.kh * g.kw;
    snprintf(what, sizeof what, "conv c%d %dx%d grid %dx%d k%dx%d s%dx%d p%dx%d nb%d", g.c, g.h, g.w, g.gh, g.gw, g.kh,
             g.kw, g.sh, g.sw, g.ph, g.pw, nb);
    char w2[200];
    pair_t img = pair_new((size_t)nb * g.c * HW, 1, 0), col = pair_zero((size_t)g.c * kk * nb * G);
    cpu->im2col(cpu, &g, col.c, img.c, nb);
    gpu->im2col(gpu, &g, col.g, img.g, nb);
    snprintf(w2, sizeof w2, "%s: im2col", what);
    pair_check(&col, w2, TOL_EXACT);
    /* gemm_im2col: B the column matrix (a 16-row A) or its transpose (16 rows of C: our sgemm where it runs) */
    for (int tb = 0; tb < 2; tb++) {
        int rows = (int)(g.c * kk), cols = (int)(nb * G), m = 16, n = tb ? rows : cols, k = tb ? cols : rows;
        pair_t a = pair_new((size_t)m * k, 1, 0), c = pair_new((size_t)m * n, 1, 0), ws = pair_zero(col.n);
        cpu->gemm_im2col(cpu, &g, img.c, nb, ws.c, NULL, 0, tb, m, 1.0f, a.c, k, 0.5f, c.c, n);
        gpu->gemm_im2col(gpu, &g, img.g, nb, ws.g, NULL, 0, tb, m, 1.0f, a.g, k, 0.5f, c.g, n);
        snprintf(w2, sizeof w2, "%s: gemm_im2col tb=%d", what, tb);
        pair_check(&c, w2, TOL_OP);
        pair_free(&a);
        pair_free(&c);
        pair_free(&ws);
    }
    pair_t col2 = pair_new(col.n, 1, 0), img2 = pair_zero(img.n), bias = pair_new((size_t)g.c, 1, 0);
    for (int b = 0; b < 2; b++) {
        cpu->col2im(cpu, &g, img2.c, col2.c, b ? bias.c : NULL, nb);
        gpu->col2im(gpu, &g, img2.g, col2.g, b ? bias.g : NULL, nb);
        snprintf(w2, sizeof w2, "%s: col2im%s", what, b ? " with bias" : "");
        pair_check(&img2, w2, TOL_EXACT);
    }
    /* gemm_col2im, op(A) = A^T as the layers give it (o_ch grid-side channels): the CPU by our
     * sgemm's phases and by OpenBLAS then col2im (GT_GEMM), the GPU by cuBLAS then col2im */
    {
        int rows = (int)(g.c * kk), cols = (int)(nb * G);
        pair_t a = pair_new((size_t)o_ch * rows, 1, 0), bm = pair_new((size_t)o_ch * cols, 1, 0),
               out = pair_zero(img.n), ws = pair_zero(col.n), wa = pair_zero((size_t)rows * o_ch);
        for (int e = 0; e < 2; e++) {
            setenv("GT_GEMM", e ? "openblas" : "ours", 1);
            backend_cpu(1);
            cpu->gemm_col2im(cpu, &g, out.c, bias.c, nb, ws.c, wa.c, NULL, 1, o_ch, a.c, rows, bm.c, cols);
            gpu->gemm_col2im(gpu, &g, out.g, bias.g, nb, ws.g, wa.g, NULL, 1, o_ch, a.g, rows, bm.g, cols);
            snprintf(w2, sizeof w2, "%s: gemm_col2im (cpu: %s)", what, e ? "openblas" : "ours");
            pair_check(&out, w2, TOL_OP);
        }
        unsetenv("GT_GEMM");
        backend_cpu(1);
        pair_t *all[] = {&a, &bm, &out, &ws, &wa};
        for (int i = 0; i < 5; i++) pair_free(all[i]);
    }
    if (g.sh == 1 && g.sw == 1) { /* kn2row: z one row per (o, tap), columns over the image */
        pair_t z = pair_new((size_t)o_ch * kk * nb * HW, 1, 0), y = pair_zero((size_t)nb * o_ch * G),
               ob = pair_new((size_t)o_ch, 1, 0), dz = pair_zero(z.n);
        cpu->shiftsum(cpu, &g, o_ch, y.c, z.c, ob.c, nb);
        gpu->shiftsum(gpu, &g, o_ch, y.g, z.g, ob.g, nb);
        snprintf(w2, sizeof w2, "%s: shiftsum", what);
        pair_check(&y, w2, TOL_EXACT);
        cpu->shiftscatter(cpu, &g, o_ch, dz.c, y.c, nb);
        gpu->shiftscatter(gpu, &g, o_ch, dz.g, y.g, nb);
        snprintf(w2, sizeof w2, "%s: shiftscatter", what);
        pair_check(&dz, w2, TOL_EXACT);
        pair_t *all[] = {&z, &y, &ob, &dz};
        for (int i = 0; i < 4; i++) pair_free(all[i]);
    }
    /* channel-major transposes, with bias and accumulating */
    pair_t cm = pair_zero(img.n), back = pair_new(img.n, 1, 0);
    cpu->to_cmajor(cpu, cm.c, img.c, g.c, HW, nb);
    gpu->to_cmajor(gpu, cm.g, img.g, g.c, HW, nb);
    snprintf(w2, sizeof w2, "%s: to_cmajor", what);
    pair_check(&cm, w2, TOL_EXACT);
    for (int k = 0; k < 3; k++) {
        cpu->from_cmajor(cpu, back.c, cm.c, k == 1 ? bias.c : NULL, g.c, HW, nb, k == 2);
        gpu->from_cmajor(gpu, back.g, cm.g, k == 1 ? bias.g : NULL, g.c, HW, nb, k == 2);
        snprintf(w2, sizeof w2, "%s: from_cmajor (case %d)", what, k);
        pair_check(&back, w2, TOL_EXACT);
    }
    pair_t *all[] = {&img, &col, &col2, &img2, &bias, &cm, &back};
    for (int i = 0; i < 7; i++) pair_free(all[i]);
}

static void test_convolutions(void) {
    /* conv 64 k4 s2 p1 on 28x28; a 7x7 conv p3 to 1 channel (kn2row); odd, non-square shapes */
    conv_case((conv_geom_t){1, 28, 28, 14, 14, 4, 4, 2, 2, 1, 1}, 64, 3);
    conv_case((conv_geom_t){5, 9, 9, 9, 9, 7, 7, 1, 1, 3, 3}, 1, 2);
    conv_case((conv_geom_t){3, 7, 10, 5, 4, 3, 4, 1, 2, 0, 1}, 2, 2);
    conv_case((conv_geom_t){2, 6, 5, 6, 5, 3, 1, 1, 1, 1, 0}, 3, 4);
    conv_case((conv_geom_t){4, 8, 8, 3, 3, 2, 2, 3, 3, 0, 0}, 1, 1); /* stride larger than the kernel */
    conv_case((conv_geom_t){16, 14, 14, 7, 7, 4, 4, 2, 2, 1, 1}, 8, 2); /* dcgan's convT k4 s2 p1, 16 channels */
}

/* The data-movement kernels (kernels/cuda_check.h: GT_LAUNCH_IDX) index in 32 bits, as every
 * launch of this suite does, up to 2^31 - 1 elements, and in 64 bits beyond: the tests of the
 * operations they serve (bias, convolutions, pooling and upsampling, BatchNorm, LayerNorm,
 * gather, class-conditional, penalty, DiffAugment, Inception, spectral and weight
 * normalization, latents) again, with the threshold lowered to 0 so that the 64-bit path runs. */
static void test_index_path_64bit(void);

static void pool_case(int kind, int planes, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw, int scale,
                      int nopad) {
    static const char *names[] = {"maxpool", "avgpool", "upsample"};
    int ho = kind == 2 ? h * scale : conv_out_len(h, kh, sh, ph), wo = kind == 2 ? w * scale : conv_out_len(w, kw, sw, pw);
    size_t ni = (size_t)planes * h * w, no = (size_t)planes * ho * wo;
    pair_t x = pair_new(ni, 1, 0), tx = pair_new(ni, 1, 0), y = pair_zero(no), ty = pair_zero(no);
    pair_t dy = pair_new(no, 1, 0), dty = pair_new(no, 1, 0), dx = pair_zero(ni), dtx = pair_zero(ni);
    pair_t am = pair_zero(no); /* argmax: int32 in float-sized slots */
    if (kind == 0) { /* ties and a NaN: the first maximum wins, NaN propagates */
        cpu->fill(cpu, x.c, 0.5f, 7);
        gpu->fill(gpu, x.g, 0.5f, 7);
        cpu->fill(cpu, x.c + 11, NAN, 1);
        gpu->fill(gpu, x.g + 11, NAN, 1);
    }
    pool_args_t a[2];
    for (int side = 0; side < 2; side++) {
        int g = side == 1;
#define P(p) (g ? (p).g : (p).c)
        pool_args_t v = {planes, h, w, ho, wo, kh, kw, sh, sw, ph, pw, scale, nopad, P(x), P(tx), P(dy), P(dty),
                         P(y), P(ty), P(dx), P(dtx), (int32_t *)P(am)};
#undef P
        a[side] = v;
    }
    void (*fwd[3])(backend_t *, const pool_args_t *) = {cpu->maxpool_forward, cpu->avgpool_forward,
                                                        cpu->upsample_forward};
    void (*bwd[3])(backend_t *, const pool_args_t *) = {cpu->maxpool_backward, cpu->avgpool_backward,
                                                        cpu->upsample_backward};
    void (*gfwd[3])(backend_t *, const pool_args_t *) = {gpu->maxpool_forward, gpu->avgpool_forward,
                                                         gpu->upsample_forward};
    void (*gbwd[3])(backend_t *, const pool_args_t *) = {gpu->maxpool_backward, gpu->avgpool_backward,
                                                         gpu->upsample_backward};
    char what[160];
    snprintf(what, sizeof what, "%s %dx%d k%dx%d s%dx%d p%dx%d x%d%s", names[kind], h, w, kh, kw, sh, sw, ph, pw, scale,
             nopad ? " nopad" : "");
    fwd[kind](cpu, &a[0]);
    gfwd[kind](gpu, &a[1]);
    pair_check(&y, what, TOL_EXACT);
    pair_check(&ty, what, TOL_EXACT);
    if (kind == 0) pair_check(&am, "maxpool argmax", TOL_EXACT);
    bwd[kind](cpu, &a[0]);
    gbwd[kind](gpu, &a[1]);
    pair_check(&dx, what, TOL_EXACT);
    pair_check(&dtx, what, TOL_EXACT);
    a[0].dy = a[1].dy = NULL; /* no cotangent: zeros */
    a[0].dtx = a[1].dtx = NULL;
    bwd[kind](cpu, &a[0]);
    gbwd[kind](gpu, &a[1]);
    pair_check(&dx, what, TOL_EXACT);
    pair_t *all[] = {&x, &tx, &y, &ty, &dy, &dty, &dx, &dtx, &am};
    for (int i = 0; i < 9; i++) pair_free(all[i]);
}

static void test_pooling(void) {
    for (int kind = 0; kind < 2; kind++) {
        pool_case(kind, 6, 14, 14, 2, 2, 2, 2, 0, 0, 0, 0);
        pool_case(kind, 3, 9, 11, 3, 3, 2, 2, 1, 1, 0, 0);
        pool_case(kind, 2, 7, 5, 3, 2, 1, 1, 1, 1, 0, 0); /* overlapping windows */
        pool_case(kind, 40, 35, 35, 3, 3, 2, 2, 0, 0, 0, 0); /* above the CPU's threshold for threads */
        pool_case(kind, 4, 8, 9, 3, 3, 1, 1, 1, 1, 0, 1);     /* nopad (Inception's average pools) */
    }
    for (int k = 1; k <= 5; k++) pool_case(2, 3, 5, 4, 0, 0, 0, 0, 0, 0, k, 0);
    pool_case(2, 30, 33, 33, 0, 0, 0, 0, 0, 0, 3, 0);
}

/* ---- training steps -------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *preset;  /* or NULL: the specs below */
    const char *g, *d;
    const char *loss, *opt_g, *opt_d;
    double ema, smooth, clip;
    shape3_t shape;
    int zdim, batch, n_data, f32_data;
} run_conf_t;

/* R1/R2 settings of a run (gan_settings_t's r1, r2, reg_every) */
typedef struct {
    double r1, r2;
    int reg_every;
} reg_conf_t;

#define SMALL_G "linear 64; bn; lrelu 0.2; linear 128; bn noaffine; relu; linear 144; tanh; reshape 1x12x12"
#define SMALL_D "flatten; linear 96; lrelu 0.2; dropout 0.3; linear 48; sigmoid; linear 1"
#define LN_D "flatten; linear 96; ln; lrelu 0.2; dropout 0.2; linear 48; ln noaffine; tanh; linear 1"
#define COND_G "embed 7 6; linear 64; cbn 7; lrelu 0.2; linear 144; tanh; reshape 1x12x12"
#define COND_D "onehot 7; flatten; linear 96; ln; lrelu 0.2; linear 48; tanh; proj 7"
#define SN_G                                                                                                   \
    "embed 7 6 sn; linear 144 sn; lrelu 0.2; reshape 4x6x6; block { convT 4 k4 s2 p1 sn=2; relu; conv 4 k3 p1 "  \
    "sn } skip { upsample 2; conv 4 k1 sn }; relu; conv 1 k3 p1 sn; tanh"
#define SN_D                                                                                                   \
    "conv 8 k4 s2 p1 sn; lrelu 0.2; block { conv 8 k3 p1 sn; lrelu 0.2; conv 8 k3 p1 sn=2 } skip { conv 8 k1 "  \
    "sn }; lrelu 0.2; flatten; linear 48 sn; tanh; proj 7"
#define RES_G                                                                                                  \
    "embed 7 6; linear 72; reshape 8x3x3; block { cbn 7; relu; upsample 2; conv 4 k3 p1; cbn 7; relu; "         \
    "conv 4 k3 p1 } skip { upsample 2; conv 4 k1 }; block { bn; relu; upsample 2; conv 4 k3 p1 } skip { "       \
    "upsample 2 }; bn; relu; conv 1 k3 p1; tanh"
#define RES_D                                                                                                  \
    "onehot 7; block { conv 4 k3 p1; lrelu 0.2; conv 4 k3 p1; avgpool k2 } skip { conv 4 k1; avgpool k2 }; "    \
    "block { lrelu 0.2; dropout 0.2; conv 4 k3 p1 }; lrelu 0.2; sumpool; proj 7"

static const run_conf_t runs[] = {
    {"mlp preset, ns", "mlp", NULL, NULL, "ns", NULL, NULL, 0.999, 0, 0, {1, 28, 28}, 100, 32, 200, 0},
    {"dcgan preset, ns", "dcgan", NULL, NULL, "ns", NULL, NULL, 0, 0, 0, {1, 28, 28}, 100, 16, 100, 0},
    {"dcgan32 preset, hinge", "dcgan32", NULL, NULL, "hinge", NULL, NULL, 0, 0, 0, {3, 32, 32}, 100, 16, 100, 1},
    {"wgan-gp preset", "wgan-gp", NULL, NULL, "wgan-gp", NULL, NULL, 0, 0, 0, {1, 28, 28}, 64, 8, 100, 0},
    {"bce, label smoothing, sgd nesterov", NULL, SMALL_G, SMALL_D, "bce", "sgd:lr=0.01,momentum=0.9,nesterov",
     "sgd:lr=0.02", 0.9, 0.1, 0, {1, 12, 12}, 10, 32, 300, 0},
    {"lsgan, float32 data, rmsprop centered", NULL, SMALL_G, SMALL_D, "lsgan", "rmsprop:lr=1e-3,momentum=0.5,centered",
     "adam:lr=1e-3,wd=0.01", 0, 0, 0, {1, 12, 12}, 10, 32, 300, 1},
    {"wgan: 5 critic steps, clipping", NULL, SMALL_G, SMALL_D, "wgan", NULL, NULL, 0, 0, 0.01, {1, 12, 12}, 10, 16,
     300, 0},
    {"wgan-gp: ln, dropout, tanh, sigmoid critic", NULL, SMALL_G, LN_D, "wgan-gp", NULL, NULL, 0.5, 0, 0, {1, 12, 12},
     10, 16, 300, 0},
    {"cdcgan preset (10 classes), ns", "cdcgan", NULL, NULL, "ns", NULL, NULL, 0, 0, 0, {1, 28, 28}, 100, 16, 100, 0},
    {"wgan-gp: embed, cbn; onehot, proj critic", NULL, COND_G, COND_D, "wgan-gp", NULL, NULL, 0, 0, 0, {1, 12, 12}, 10,
     16, 300, 0},
    {"wgan-gp: spectral norm on embed, linear, convT, conv, in blocks' main and skip paths", NULL, SN_G, SN_D,
     "wgan-gp", NULL, NULL, 0, 0, 0, {1, 12, 12}, 10, 16, 300, 0},
    {"wgan-gp: residual blocks (cbn, dropout inside), sumpool", NULL, RES_G, RES_D, "wgan-gp", NULL, NULL, 0, 0, 0,
     {1, 12, 12}, 10, 8, 100, 0},
};

/* labels for n images of K classes (Philox) */
static void make_labels(tensor_t *t, int64_t n, int K) {
    tensor_alloc(t, DT_I64, 1, &n);
    for (int64_t i = 0; i < n; i++) ((int64_t *)t->data)[i] = philox_u32(32, PHILOX_STREAM_USER, 5, (uint64_t)i) % K;
}

static char *tmp_path(const char *tag) {
    static int k;
    char *p = gt_xmalloc(256);
    snprintf(p, 256, "/tmp/gt-parity-%d-%d-%s.st", (int)getpid(), k++, tag);
    return p;
}

static int save(const gan_model_t *m, const char *path) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int rc = model_save(m, f);
    return fclose(f) || rc ? -1 : 0;
}

/* the data: n images from Philox, uint8 or float32 */
static void make_data(tensor_t *t, const run_conf_t *r) {
    int64_t shape[4] = {r->n_data, r->shape.c, r->shape.h, r->shape.w};
    tensor_alloc(t, r->f32_data ? DT_F32 : DT_U8, 4, shape);
    size_t n = (size_t)tensor_numel(t);
    for (size_t i = 0; i < n; i++) {
        uint32_t v = philox_u32(31, PHILOX_STREAM_USER, 4, i) & 255;
        if (r->f32_data) ((float *)t->data)[i] = ((float)v - 127.5f) / 127.5f;
        else ((uint8_t *)t->data)[i] = (uint8_t)v;
    }
}


/* The float arrays of a model that a step reads or writes, with their names: parameters,
 * BatchNorm state, optimizer state, EMA. */
typedef struct {
    const char *name;
    float *p;
    size_t n;
} arr_t;

static int model_arrays(const gan_model_t *m, arr_t *v) {
    int k = 0;
    v[k++] = (arr_t){"G params", m->G.params, m->G.n_params};
    v[k++] = (arr_t){"G state", m->G.state, m->G.n_state};
    v[k++] = (arr_t){"D params", m->D.params, m->D.n_params};
    v[k++] = (arr_t){"D state", m->D.state, m->D.n_state};
    if (m->G_ema) v[k++] = (arr_t){"G_ema", m->G_ema, m->G.n_params};
    const optim_state_t *o[2] = {&m->opt_G, &m->opt_D};
    static const char *names[2][3] = {{"opt_G s1", "opt_G s2", "opt_G s3"}, {"opt_D s1", "opt_D s2", "opt_D s3"}};
    for (int w = 0; w < 2; w++) {
        float *s[3] = {o[w]->s1, o[w]->s2, o[w]->s3};
        for (int j = 0; j < 3; j++)
            if (s[j]) v[k++] = (arr_t){names[w][j], s[j], o[w]->n};
    }
    return k;
}

/* Make dst (on the GPU) the CPU model src: every array, counter and BatchNorm count. */
static void sync_model(gan_model_t *dst, const gan_model_t *src) {
    arr_t a[16], b[16];
    int na = model_arrays(src, a), nb = model_arrays(dst, b);
    CHECK(na == nb, "models differ in their arrays");
    for (int i = 0; i < na && i < nb; i++) {
        float *h = gt_xmalloc(sizeof(float) * (a[i].n ? a[i].n : 1));
        cpu->download(cpu, h, a[i].p, sizeof(float) * a[i].n);
        gpu->upload(gpu, b[i].p, h, sizeof(float) * a[i].n);
        free(h);
    }
    memcpy(dst->G.bn_batches, src->G.bn_batches, sizeof(long long) * ((size_t)src->G.n_numbered + 1));
    memcpy(dst->D.bn_batches, src->D.bn_batches, sizeof(long long) * ((size_t)src->D.n_numbered + 1));
    dst->step = src->step;
    dst->epoch = src->epoch;
    dst->epoch_pos = src->epoch_pos;
    dst->data_n = src->data_n;
    dst->reg_steps = src->reg_steps;
    dst->opt_G.t = src->opt_G.t;
    dst->opt_D.t = src->opt_D.t;
}

/* Compare the models' arrays after a step (tolerances.h, TOL_STEP_RMS): per array, the rms of
 * the difference against the array's rms. Returns the worst such ratio (and its array); the
 * worst single element is reported too, for information. Counters must be equal. */
static double compare_models(const char *what, const gan_model_t *mc, const gan_model_t *mg, double *worst_elem,
                             const char **worst_name) {
    arr_t a[16], b[16];
    int na = model_arrays(mc, a), nb = model_arrays(mg, b);
    double worst = 0;
    for (int i = 0; i < na && i < nb; i++) {
        size_t n = a[i].n;
        float *x = gt_xmalloc(sizeof(float) * (n ? n : 1)), *y = gt_xmalloc(sizeof(float) * (n ? n : 1));
        gpu->download(gpu, x, b[i].p, sizeof(float) * n);
        cpu->download(cpu, y, a[i].p, sizeof(float) * n);
        double ss = 0, sd = 0;
        for (size_t q = 0; q < n; q++) {
            ss += (double)y[q] * y[q];
            sd += ((double)x[q] - y[q]) * ((double)x[q] - y[q]);
        }
        double r = sd == 0 ? 0 : ss > 0 ? sqrt(sd / ss) : INFINITY;
        CHECK(r <= TOL_STEP_RMS, "%s: %s differs by %.3g of its rms", what, a[i].name, r);
        if (r > worst) {
            worst = r;
            *worst_name = a[i].name;
        }
        size_t at;
        double w = worst_rel(x, y, n, &at);
        if (w > *worst_elem) *worst_elem = w;
        free(x);
        free(y);
    }
    int same = mc->step == mg->step && mc->epoch == mg->epoch && mc->epoch_pos == mg->epoch_pos &&
               mc->opt_G.t == mg->opt_G.t && mc->opt_D.t == mg->opt_D.t && mc->reg_steps == mg->reg_steps &&
               !memcmp(mc->G.bn_batches, mg->G.bn_batches, sizeof(long long) * ((size_t)mc->G.n_numbered + 1)) &&
               !memcmp(mc->D.bn_batches, mg->D.bn_batches, sizeof(long long) * ((size_t)mc->D.n_numbered + 1));
    CHECK(same, "%s: counters differ", what);
    return worst;
}

/* 10 training steps on each backend, each step from the same state: the CPU's after the step
 * before (see tolerances.h, TOL_STEP_RMS, for why not 10 free-running steps). */
static void run_steps(const run_conf_t *r, const reg_conf_t *reg, int augment) {
    gan_settings_t s;
    gan_loss_t loss;
    gan_loss_parse(r->loss, &loss);
    gan_settings_default(&s, loss);
    s.batch = r->batch;
    s.ema = r->ema;
    s.label_smooth = r->smooth;
    if (r->clip > 0) s.clip = r->clip;
    s.augment = augment;
    if (reg) {
        s.r1 = reg->r1;
        s.r2 = reg->r2;
        s.reg_every = reg->reg_every;
    }
    if (r->opt_g) opt_conf_parse(r->opt_g, &s.opt_g);
    if (r->opt_d) opt_conf_parse(r->opt_d, &s.opt_d);
    const char *g = r->g, *d = r->d;
    int init = INIT_TORCH;
    preset_t p = {0};
    if (r->preset) {
        CHECK(preset_get_classes(r->preset, r->shape, r->zdim, r->preset[0] == 'c' ? 10 : 0, &p) == 0, "%s",
              gt_errmsg());
        g = p.g;
        d = p.d;
        init = p.init;
    }
    gan_model_t m0;
    if (model_new(&m0, g, d, r->shape, r->zdim, &s, init, 1234, cpu, r->batch)) {
        CHECK(0, "%s: %s", r->name, gt_errmsg());
        preset_free(&p);
        return;
    }
    char *p0 = tmp_path("m0");
    CHECK(save(&m0, p0) == 0, "save");
    model_free(&m0);
    tensor_t data;
    make_data(&data, r);
    gan_model_t mc, mg;
    CHECK(model_load(&mc, p0, cpu, 0) == 0, "%s", gt_errmsg());
    CHECK(model_load(&mg, p0, gpu, 0) == 0, "%s", gt_errmsg());
    trainer_t tc, tg;
    CHECK(trainer_init(&tc, &mc, &data) == 0, "%s", gt_errmsg());
    CHECK(trainer_init(&tg, &mg, &data) == 0, "%s", gt_errmsg());
    if (mc.classes) {
        tensor_t lab;
        make_labels(&lab, r->n_data, mc.classes);
        CHECK(trainer_set_labels(&tc, &lab) == 0, "%s", gt_errmsg());
        CHECK(trainer_set_labels(&tg, &lab) == 0, "%s", gt_errmsg());
        tensor_free(&lab);
    }
    uint64_t mallocs = 0, launches = 0, graphs = gpu->counters.graph_launches;
    double worst = 0, worst_fig = 0, worst_elem = 0;
    const char *wname = "";
    for (int step = 0; step < 10; step++) {
        sync_model(&mg, &mc);
        train_step(&tc);
        uint64_t l0 = gpu->counters.launches;
        train_step(&tg);
        if (step == 0) mallocs = gpu->counters.device_mallocs;
        if (step == 9) launches = gpu->counters.launches - l0;
        CHECK(trainer_check(&tc) == 0, "%s: cpu: %s", r->name, gt_errmsg());
        CHECK(trainer_check(&tg) == 0, "%s: cuda: %s", r->name, gt_errmsg());
        train_stats_t fa, fb;
        trainer_stats(&tc, &fa, NULL, NULL);
        trainer_stats(&tg, &fb, NULL, NULL);
        const double *va = &fa.loss_d, *vb = &fb.loss_d;
        for (int k = 0; k < 7; k++) {
            double sc = fabs(va[k]) > 1e-6 ? fabs(va[k]) : 1e-6, e = fabs(va[k] - vb[k]) / sc;
            CHECK(e <= TOL_FIGURES, "%s: step %d: figure %d is %.9g on cuda, %.9g on cpu", r->name, step + 1, k, vb[k],
                  va[k]);
            if (e > worst_fig) worst_fig = e;
        }
        char what[128];
        snprintf(what, sizeof what, "%s, step %d", r->name, step + 1);
        const char *wn = "";
        double w = compare_models(what, &mc, &mg, &worst_elem, &wn);
        if (w > worst) {
            worst = w;
            wname = wn;
        }
    }
    CHECK(gpu->counters.device_mallocs == mallocs, "%s: %llu cudaMalloc calls after the first step", r->name,
          (unsigned long long)(gpu->counters.device_mallocs - mallocs));
    graphs = gpu->counters.graph_launches - graphs; /* steps recorded as a CUDA graph (trainer.c graph_begin) */
    CHECK(graphs > 0 || !gpu->graphs, "%s: no step ran as a CUDA graph", r->name);
    printf("# %s: 10 steps: worst rms difference %.3g (%s), worst element %.3g, worst figure %.3g; "
           "%llu launches in step 10 at batch %d (%llu steps as one CUDA graph)\n",
           r->name, worst, worst > 0 ? wname : "bit-identical", worst_elem, worst_fig, (unsigned long long)launches,
           r->batch, (unsigned long long)graphs);
    trainer_free(&tc);
    trainer_free(&tg);
    model_free(&mc);
    model_free(&mg);
    tensor_free(&data);
    remove(p0);
    free(p0);
    preset_free(&p);
}

static void test_training_steps(void) {
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) run_steps(&runs[i], NULL, 0);
    /* DiffAugment through D's passes, G's gradient and the penalty's tangent pass */
    run_conf_t a = runs[4], gp = runs[7];
    a.name = "bce, label smoothing, sgd nesterov; augment color,translation,cutout";
    gp.name = "wgan-gp: ln, dropout, tanh, sigmoid critic; augment color,translation,cutout";
    run_steps(&a, NULL, AUG_ALL);
    run_steps(&gp, NULL, AUG_ALL);
    static const run_conf_t reg_run = {"ns, R1 and R2 lazily every 2: ln, dropout critic", NULL, SMALL_G, LN_D, "ns",
                                       NULL, NULL, 0, 0, 0, {1, 12, 12}, 10, 16, 300, 0};
    const reg_conf_t reg = {5, 0.5, 2};
    run_steps(&reg_run, &reg, 0);
}

/* A NaN in training is found on the device and named by step (trainer.h). */
static void test_bad_step_is_named(void) {
    const run_conf_t *r = &runs[4];
    gan_settings_t s;
    gan_settings_default(&s, LOSS_NS);
    s.batch = r->batch;
    opt_conf_parse("sgd:lr=1e38", &s.opt_d);
    gan_model_t m;
    CHECK(model_new(&m, r->g, r->d, r->shape, r->zdim, &s, INIT_TORCH, 5, gpu, r->batch) == 0, "%s", gt_errmsg());
    tensor_t data;
    make_data(&data, r);
    trainer_t t;
    CHECK(trainer_init(&t, &m, &data) == 0, "%s", gt_errmsg());
    int rc = train_loop(&t, 50, NULL, NULL, NULL);
    CHECK(rc == -1 && strstr(gt_errmsg(), "step ") && strstr(gt_errmsg(), "stopping"), "rc %d: %s", rc, gt_errmsg());
    printf("# a diverging run on cuda: %s\n", gt_errmsg());
    trainer_free(&t);
    model_free(&m);
    tensor_free(&data);
}

/* ---- the emulation's own checks ----------------------------------------------------------- */

#ifdef GT_CUDA_EMU
/* Compare two checkpoints: float tensors within tol (against each tensor's rms), counters and
 * int64 tensors exactly. */
static void compare_checkpoints(const char *what, const char *pc, const char *pg, double tol) {
    st_file_t a, b;
    CHECK(st_load(pc, &a) == 0 && st_load(pg, &b) == 0, "%s: checkpoints do not load", what);
    CHECK(a.n == b.n, "%s: %d and %d tensors", what, a.n, b.n);
    double worst = 0;
    const char *wname = "";
    for (int i = 0; i < a.n && i < b.n; i++) {
        const st_entry_t *x = &b.entries[i], *y = &a.entries[i];
        CHECK(strcmp(x->name, y->name) == 0, "%s: tensor %d is %s and %s", what, i, x->name, y->name);
        size_t n = (size_t)tensor_numel(&y->t);
        if (y->t.dtype == DT_F32) {
            size_t at;
            double w = worst_rel((const float *)x->t.data, (const float *)y->t.data, n, &at);
            if (w > worst) {
                worst = w;
                wname = y->name;
            }
            CHECK(w <= tol, "%s: %s[%zu] is %.9g on cuda, %.9g on cpu (relative %.3g)", what, y->name, at,
                  ((const float *)x->t.data)[at], ((const float *)y->t.data)[at], w);
        } else {
            CHECK(tensor_nbytes(&x->t) == tensor_nbytes(&y->t) && !memcmp(x->t.data, y->t.data, tensor_nbytes(&y->t)),
                  "%s: %s differs", what, y->name);
        }
    }
    static const char *keys[] = {"step", "epoch", "epoch_pos", "opt_G_steps", "opt_D_steps", "seed"};
    for (int k = 0; k < 6; k++) {
        const char *u = st_meta_get(&a, keys[k]), *v = st_meta_get(&b, keys[k]);
        CHECK(u && v && strcmp(u, v) == 0, "%s: metadata %s: %s and %s", what, keys[k], u ? u : "-", v ? v : "-");
    }
    printf("# %s: worst relative difference after the steps %.3g (%s)\n", what, worst, worst > 0 ? wname : "bit-identical");
    st_free(&a);
    st_free(&b);
}

/* Kernels whose threads depended on each other would give other results with the grid run
 * backwards. */
static void test_emulation_thread_order(void) {
    const run_conf_t *r = &runs[7];
    char *paths[2];
    for (int rev = 0; rev < 2; rev++) {
        gt_emu_set_order(rev);
        gan_settings_t s;
        gan_settings_default(&s, LOSS_WGAN_GP);
        s.batch = r->batch;
        s.ema = 0.9;
        gan_model_t m;
        CHECK(model_new(&m, r->g, r->d, r->shape, r->zdim, &s, INIT_TORCH, 3, gpu, r->batch) == 0, "%s", gt_errmsg());
        tensor_t data;
        make_data(&data, r);
        trainer_t t;
        trainer_init(&t, &m, &data);
        for (int k = 0; k < 3; k++) train_step(&t);
        paths[rev] = tmp_path(rev ? "rev" : "fwd");
        CHECK(save(&m, paths[rev]) == 0, "save");
        trainer_free(&t);
        model_free(&m);
        tensor_free(&data);
    }
    gt_emu_set_order(0);
    compare_checkpoints("threads in reverse order", paths[0], paths[1], TOL_EXACT);
    for (int k = 0; k < 2; k++) {
        remove(paths[k]);
        free(paths[k]);
    }
}

/* Run fn in a child; return its status. */
static int in_child(void (*fn)(void)) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", 1);
        dup2(devnull, 2);
        fn();
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return st;
}

static void touch_device_memory(void) {
    float *p = gpu->alloc(gpu, 64);
    p[3] = 1.0f; /* host code writing device memory: the emulation must stop this */
}

static void copy_wrong_way(void) {
    float host[4] = {0}, host2[4];
    gpu->upload(gpu, host2, host, sizeof host); /* destination is host memory */
}

static void test_emulation_catches_host_access(void) {
    int st = in_child(touch_device_memory);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "host write to device memory: status %d", st);
    st = in_child(copy_wrong_way);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1, "upload to host memory: status %d", st);
}
#endif

static void test_index_path_64bit(void) {
#ifdef GT_HAVE_CUDA
    size_t keep = gt_cuda_idx32_max;
    gt_cuda_idx32_max = 0;
    test_bias();
    test_convolutions();
    test_pooling();
    test_batchnorm();
    test_layernorm();
    test_gather();
    test_class_ops();
    test_penalty_and_norms();
    test_augment();
    test_inception_ops();
    test_spectral_norm();
    test_weight_norm();
    test_latents();
    gt_cuda_idx32_max = keep;
#endif
}

int main(void) {
    gt_progname = "test_backend_parity";
    gpu = backend_cuda();
    if (!gpu) {
        printf("1..0 # SKIP no CUDA backend: %s\n", gt_errmsg());
        return 0;
    }
    cpu = backend_cpu(1);
    printf("# cuda backend: %s\n", gpu->description);
    RUN(test_memory_and_fills);
    RUN(test_gemm);
    RUN(test_bias);
    RUN(test_activations);
    RUN(test_batchnorm);
    RUN(test_layernorm);
    RUN(test_dropout);
    RUN(test_act_dropout);
    RUN(test_bias_act);
    RUN(test_add_noise_layer);
    RUN(test_losses);
    RUN(test_gather);
    RUN(test_class_ops);
    RUN(test_penalty_and_norms);
    RUN(test_augment);
    RUN(test_inception_ops);
    RUN(test_spectral_norm);
    RUN(test_weight_norm);
    RUN(test_train_stats);
    RUN(test_optimizers);
    RUN(test_optim_parts);
    RUN(test_latents);
    RUN(test_convolutions);
    RUN(test_pooling);
    RUN(test_index_path_64bit);
    if (!getenv("GT_PARITY_QUICK")) RUN(test_training_steps);
    RUN(test_bad_step_is_named);
#ifdef GT_CUDA_EMU
    RUN(test_emulation_thread_order);
    RUN(test_emulation_catches_host_access);
#endif
    return harness_done();
}
