/* train_bench: times our GAN training step (lib/gan/trainer.h) for a preset, batch and thread count,
 * or measures OpenBLAS's sgemm ceiling on this machine; for bench/bench_train_step.py.
 *
 *   train_bench --arch mlp|dcgan|wgan-gp|sngan --batch B [--steps N] [--warmup W] [--threads T] [--r1 GAMMA]
 *       builds the preset for 1x28x28 data (z 100, the loss, optimizers and critic steps
 *       gan-init --arch gives it: mlp and dcgan the ns loss and Adam, wgan-gp the WGAN loss with
 *       the gradient penalty (lambda 10), Adam lr 1e-4 betas (0, 0.9) and 5 critic steps, sngan
 *       the hinge loss, Adam betas (0, 0.9) and 5 critic steps; --r1 adds the R1 penalty on the
 *       real batch of every critic update), trains W steps, then N timed steps on random uint8
 *       images, and prints one line (img_s counts the real images a step consumes, B x n_critic):
 *       arch=.. batch=.. threads=.. step_ms=<median> img_s=.. gflop_step=.. gflops=..
 *       peak_rss_mb=.. allocs_after_first=.. cpu_ms=<CPU time of all threads per step, mean>
 *   train_bench --arch A --batch B ... --gemm-profile
 *       the same, and then one line per GEMM shape of the timed steps (lib/cpu/sgemm.h
 *       sgemm_observer), the most time first: kind (mat: a plain product; conv: a convolution's
 *       gather side, B its column matrix or, tb 1, the transpose; scatter: its scatter side), the
 *       shape, the engine, calls and milliseconds a step, the share of the step's wall time and
 *       GFLOP/s (2 threads' wall time, the ceiling's measure)
 *   train_bench --gemm [--isa avx2|avx512] [--reps N]
 *       our sgemm (lib/cpu/sgemm.h) beside OpenBLAS's cblas_sgemm, one thread each, on the MLP's
 *       and the DCGAN's GEMM shapes, in turns (ours packed, ours, OpenBLAS) N times (default 5);
 *       one line per shape: where ta tb m n k ours_gflops packed_gflops openblas_gflops (the best
 *       turn, thread CPU time; packed: ours with the small-m path off, sgemm_set_small_m(0)) isa
 *       core hash (FNV-1a of our C's bits: packing changes must keep it; a shape whose bits differ
 *       between ours and packed fails the run). --small-m M: ours takes the small-m path up to M
 *       rows (default: sgemm's own bound)
 *   train_bench --sgemm-ceiling
 *       prints sgemm1=<GFLOP/s> sgemm2=<GFLOP/s> core=<OpenBLAS's kernel family>: OpenBLAS's own
 *       cblas_sgemm with 1 and 2 of its threads, best over large shapes (square 2048 and the
 *       DCGAN's 2048 x 3136 x 256).
 *   train_bench --cross-core
 *       prints own_ms=<ms> other_ms=<ms> ratio=<other/own>: an Adam step (with its gradient-norm
 *       figures) over 1.5M parameters on 2 threads, the gradients just written by the two threads
 *       (a GEMM's role in a step, after the caches were swept), each thread then updating the half
 *       it wrote (own) or the half the other thread wrote (other); the median of 40 turns each. Near 1
 *       when the two cores share their last-level cache; about 2 where they do not (where a pass
 *       whose split differs from the pass before it reads the other core's data: lib/cpu/README.md,
 *       "The two cores' caches").
 *
 * gflop_step counts the convolution and linear arithmetic of a step as lib/gan/trainer.h runs it:
 * per critic update D forward twice (real, fake) and backward on both (weight gradients, and
 * input gradients but for D's first layer) and G forward; then D forward and backward in G's
 * update (input gradients only), G backward (no input gradient for G's first layer); with the
 * gradient penalty (wgan-gp), per critic update also its passes at the interpolates
 * (trainer.c's gradient_penalty): D forward, D backward for the input gradient (all layers'
 * input gradients, no weight gradients), the forward-mode pass (the tangents only: each linear
 * or convolution once, the primal being the forward's, net.h net_jvp_tangent) and its reverse
 * (each layer's weight gradient and input gradient, but the first layer's, from the tangent's
 * cotangent, and again from the primal's where that is not known zero: only in front of a
 * curved layer such as tanh or LayerNorm, none in a critic whose activations are piecewise
 * linear; net.h net_jvp_backward); with --r1 the same passes at the real batch (trainer.c's
 * reg_penalty); 2 flops per multiply-add; the layers inside residual blocks counted one by one. (PyTorch's step also
 * computes D's weight gradients in G's update: 0.84 GFLOP more for dcgan at batch 64.)
 * allocs_after_first counts malloc family calls made by the steps after the first (they must be
 * none). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <cblas.h>

#include "lib/base/common.h"
#include "lib/gan/model.h"
#include "lib/base/philox.h"
#include "lib/cpu/sgemm.h"
#include "lib/gan/presets.h"
#include "lib/gan/trainer.h"

/* ---- counting allocations: malloc and friends wrapped around glibc's ------------------- */

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
static volatile int counting;
static long n_allocs;

void *malloc(size_t n) {
    if (counting) __atomic_add_fetch(&n_allocs, 1, __ATOMIC_RELAXED);
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b) {
    if (counting) __atomic_add_fetch(&n_allocs, 1, __ATOMIC_RELAXED);
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n) {
    if (counting) __atomic_add_fetch(&n_allocs, 1, __ATOMIC_RELAXED);
    return __libc_realloc(p, n);
}
void *aligned_alloc(size_t a, size_t n) {
    if (counting) __atomic_add_fetch(&n_allocs, 1, __ATOMIC_RELAXED);
    return __libc_memalign(a, n);
}
int posix_memalign(void **p, size_t a, size_t n) {
    if (counting) __atomic_add_fetch(&n_allocs, 1, __ATOMIC_RELAXED);
    *p = __libc_memalign(a, n);
    return *p ? 0 : 12;
}

/* ---- timing ------------------------------------------------------------------------------ */


/* CPU seconds of the process (all threads, user and system) */
static double cpu_now(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
           1e-6 * (double)ru.ru_stime.tv_usec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- flops of a step --------------------------------------------------------------------- */

/* multiply-adds of one layer's forward for one sample (conv, convT, linear; 0 otherwise) */
static double layer_macs(const layer_t *l) {
    const char *k = l->ops->name;
    double w = (double)(l->n_params - l->n_bias);
    if (strcmp(k, "linear") == 0) return w;
    if (strcmp(k, "conv") == 0) return w * l->out.h * l->out.w;
    if (strcmp(k, "convT") == 0) return w * l->in.h * l->in.w;
    return 0;
}

/* add the flops of layers l[0..n) (a block's: its children's) to the sums of net_flops; *first
 * is set once the first layer with arithmetic has been counted */
static void layers_flops(const layer_t *l, int n, int *first, double *fwd, double *dw, double *dx, double *dx0) {
    for (int i = 0; i < n; i++) {
        if (l[i].n_sub) {
            layers_flops(l[i].sub, l[i].n_sub, first, fwd, dw, dx, dx0);
            continue;
        }
        double m = 2 * layer_macs(&l[i]);
        *fwd += m;
        *dw += m;
        if (m > 0 && !*first) *dx0 += m, *first = 1;
        else *dx += m;
    }
}

/* forward, weight-gradient and input-gradient flops of a net for one sample; the input gradient
 * of the first layer with parameters is counted apart (dx0), as passes that need no input
 * gradient skip it */
static void net_flops(const net_t *n, double *fwd, double *dw, double *dx, double *dx0) {
    int first = 0;
    *fwd = *dw = *dx = *dx0 = 0;
    layers_flops(n->layers, n->n_layers, &first, fwd, dw, dx, dx0);
}

/* the first layer of l[0..n) (inside blocks too) with arithmetic, or NULL */
static const layer_t *first_macs(const layer_t *l, int n) {
    for (int i = 0; i < n; i++) {
        const layer_t *f = l[i].n_sub ? first_macs(l[i].sub, l[i].n_sub) : layer_macs(&l[i]) > 0 ? &l[i] : NULL;
        if (f) return f;
    }
    return NULL;
}

/* the flops of the penalty's forward-mode reverse pass over l[0..n) for one sample, run last to
 * first as net.c's net_jvp_backward does: each layer's weight and input gradients from the
 * tangent's cotangent, and from the primal's only where that is not known zero (*zero: the
 * cotangent of the layers' output is zero, as the penalty's is at the critic's output; it stays
 * zero back through the layers that are not curved, layer.h layer_jvp_curved); no input
 * gradient for the first layer with arithmetic (first) */
static double jvp_bwd_flops(const layer_t *l, int n, int *zero, const layer_t *first) {
    double f = 0;
    for (int i = n - 1; i >= 0; i--) {
        if (l[i].n_sub) { /* both paths from the block's output cotangent */
            int zm = *zero, zs = *zero;
            f += jvp_bwd_flops(l[i].sub, l[i].n_main, &zm, first);
            f += jvp_bwd_flops(l[i].sub + l[i].n_main, l[i].n_sub - l[i].n_main, &zs, first);
        } else {
            double m = 2 * layer_macs(&l[i]), passes = *zero ? 1 : 2;
            f += passes * m * (&l[i] == first ? 1 : 2);
        }
        if (*zero && layer_jvp_curved(&l[i])) *zero = 0;
    }
    return f;
}

/* --gemm-profile: the timed steps' GEMMs by shape (sgemm_observer) */
typedef struct {
    int ta, tb, m, n, k, kind, ours;
    long calls;
    double seconds;
} gemm_tally_t;

enum { GEMM_TALLY_MAX = 256 };
static gemm_tally_t gemm_tally[GEMM_TALLY_MAX];
static int n_gemm_tally, gemm_tally_full;

static void gemm_profile_add(int ta, int tb, int m, int n, int k, int kind, int ours, double seconds) {
    for (int i = 0; i < n_gemm_tally; i++) {
        gemm_tally_t *e = &gemm_tally[i];
        if (e->ta == ta && e->tb == tb && e->m == m && e->n == n && e->k == k && e->kind == kind && e->ours == ours) {
            e->calls++;
            e->seconds += seconds;
            return;
        }
    }
    if (n_gemm_tally == GEMM_TALLY_MAX) {
        gemm_tally_full = 1;
        return;
    }
    gemm_tally[n_gemm_tally++] = (gemm_tally_t){ta, tb, m, n, k, kind, ours, 1, seconds};
}

static int cmp_tally_time(const void *a, const void *b) {
    double x = ((const gemm_tally_t *)a)->seconds, y = ((const gemm_tally_t *)b)->seconds;
    return x < y ? 1 : x > y ? -1 : 0;
}

static void gemm_profile_print(int steps, double step_seconds) {
    static const char *const kinds[] = {"mat", "conv", "scatter"};
    qsort(gemm_tally, (size_t)n_gemm_tally, sizeof *gemm_tally, cmp_tally_time);
    double total = 0;
    for (int i = 0; i < n_gemm_tally; i++) total += gemm_tally[i].seconds;
    printf("gemm_ms_step=%.2f share=%.1f%% shapes=%d%s\n", total * 1e3 / steps, 100 * total / (step_seconds * steps),
           n_gemm_tally, gemm_tally_full ? " (more shapes not counted)" : "");
    for (int i = 0; i < n_gemm_tally; i++) {
        const gemm_tally_t *e = &gemm_tally[i];
        double flops = 2.0 * e->m * e->n * (double)e->k * (double)e->calls;
        printf("  %-7s ta%d tb%d %6d x %6d x %6d %-8s calls/step %5.2f ms/step %7.3f %5.1f%% %6.1f GFLOP/s\n",
               kinds[e->kind], e->ta, e->tb, e->m, e->n, e->k, e->ours ? "ours" : "openblas", (double)e->calls / steps,
               e->seconds * 1e3 / steps, 100 * e->seconds / (step_seconds * steps), flops / e->seconds * 1e-9);
    }
}

/* --cross-core: which half of g each thread writes before the step (cross_core_write) */
typedef struct {
    float *g;
    size_t n;
    int swapped; /* 0: the caller's thread (part 0) writes the first half, as the step reads it */
} cross_job_t;

static void cross_core_write(void *arg, long t0, long t1) {
    const cross_job_t *j = arg;
    for (long t = t0; t < t1; t++) {
        int first = (t == 0) != j->swapped;
        size_t lo = first ? 0 : j->n / 2, hi = first ? j->n / 2 : j->n;
        for (size_t i = lo; i < hi; i++) j->g[i] = 1e-3f * (float)(i % 7);
    }
}

static int cross_core(void) {
    backend_t *be = backend_cpu(2);
    const size_t n = 1500000, sweep = (size_t)64 << 20; /* floats: 256 MB, past any cache */
    float *p = be->alloc(be, n * sizeof(float)), *g = be->alloc(be, n * sizeof(float)),
          *m = be->alloc(be, n * sizeof(float)), *v = be->alloc(be, n * sizeof(float));
    double *fig = be->alloc(be, 2 * sizeof(double));
    float *junk = gt_xmalloc(sweep * sizeof(float));
    for (size_t i = 0; i < sweep; i++) junk[i] = (float)(i & 255);
    for (size_t i = 0; i < n; i++) p[i] = 0.1f, m[i] = v[i] = 0.0f;
    enum { TURNS = 40 };
    double ms[2][TURNS];
    volatile float sink = 0;
    for (int turn = 0; turn < 2 * TURNS; turn++) {
        int swapped = turn >= TURNS;
        float s = 0;
        for (size_t i = 0; i < sweep; i += 16) s += junk[i];
        sink += s;
        cross_job_t j = {g, n, swapped};
        cpu_parallel_for(be, 2, cross_core_write, &j);
        opt_step_t c = opt_step_make(OPT_ADAM, 2e-4, 0.5, 0.999, 1e-8, 0, 0, 0, 0, turn % TURNS + 1);
        c.zero_g = 1;
        c.fig.sumsq = fig;
        c.fig.bad = fig + 1;
        double t0 = gt_seconds();
        be->optim(be, &c, p, g, m, v, NULL, n);
        ms[swapped][turn % TURNS] = (gt_seconds() - t0) * 1e3;
    }
    qsort(ms[0], TURNS, sizeof(double), cmp_double);
    qsort(ms[1], TURNS, sizeof(double), cmp_double);
    double own = ms[0][TURNS / 2], other = ms[1][TURNS / 2];
    printf("own_ms=%.3f other_ms=%.3f ratio=%.2f\n", own, other, other / own);
    free(junk);
    float *bufs[] = {p, g, m, v};
    for (int i = 0; i < 4; i++) be->free(be, bufs[i]);
    be->free(be, fig);
    return 0;
}

static double sgemm_best(int threads) {
    openblas_set_num_threads(threads);
    static const int shapes[][3] = {{2048, 2048, 2048}, {2048, 3136, 256}};
    double best = 0;
    for (int s = 0; s < 2; s++) {
        int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *a = gt_aligned_alloc(sizeof(float) * (size_t)m * k), *b = gt_aligned_alloc(sizeof(float) * (size_t)k * n);
        float *c = gt_aligned_alloc(sizeof(float) * (size_t)m * n);
        for (size_t i = 0; i < (size_t)m * k; i++) a[i] = (float)(i % 7) * 0.1f;
        for (size_t i = 0; i < (size_t)k * n; i++) b[i] = (float)(i % 5) * 0.1f;
        for (int r = 0; r < 5; r++) {
            double t0 = gt_seconds();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
            double g = 2.0 * m * n * k / (gt_seconds() - t0) / 1e9;
            if (g > best) best = g;
        }
        gt_aligned_free(a);
        gt_aligned_free(b);
        gt_aligned_free(c);
    }
    return best;
}

/* ---- --gemm: our sgemm beside OpenBLAS's on the presets' shapes ------------------------- */

typedef struct {
    const char *where;
    int ta, tb, m, n, k;
} gemm_shape_t;

/* The linear layers: forward N T (B, out, in), dW T N (out, in, B), dx N N (B, in, out) (P=2:
 * one of two MPI ranks' share of a batch of 64). The
 * convolutions' as lib/nn/layer_conv.c and layer_convT.c make them in a dcgan step at batch 64
 * (xN: calls per step; those with C under 16 x 32 left out: OpenBLAS computes them). */
static const gemm_shape_t gemm_shapes[] = {
    {"mlp G 100-256 fwd", 0, 1, 64, 256, 100},   {"mlp G 100-256 dW", 1, 0, 256, 100, 64},
    {"mlp G 256-512 fwd", 0, 1, 64, 512, 256},   {"mlp G 256-512 dW", 1, 0, 512, 256, 64},
    {"mlp G 256-512 dx", 0, 0, 64, 256, 512},    {"mlp G 512-1024 fwd", 0, 1, 64, 1024, 512},
    {"mlp G 512-1024 dW", 1, 0, 1024, 512, 64},  {"mlp G 512-1024 dx", 0, 0, 64, 512, 1024},
    {"mlp G 1024-784 fwd", 0, 1, 64, 784, 1024}, {"mlp G 1024-784 dW", 1, 0, 784, 1024, 64},
    {"mlp G 1024-784 dx", 0, 0, 64, 1024, 784},  {"mlp D 784-1024 fwd", 0, 1, 64, 1024, 784},
    {"mlp D 784-1024 dW", 1, 0, 1024, 784, 64},  {"mlp D 784-1024 dx", 0, 0, 64, 784, 1024},
    {"mlp D 1024-512 fwd", 0, 1, 64, 512, 1024}, {"mlp D 1024-512 dW", 1, 0, 512, 1024, 64},
    {"mlp D 1024-512 dx", 0, 0, 64, 1024, 512},  {"mlp D 512-256 fwd", 0, 1, 64, 256, 512},
    {"mlp D 512-256 dW", 1, 0, 256, 512, 64},    {"mlp D 512-256 dx", 0, 0, 64, 512, 256},
    {"mlp256 D 784-1024 fwd", 0, 1, 256, 1024, 784}, {"mlp256 D 784-1024 dW", 1, 0, 1024, 784, 256},
    {"mlp256 D 784-1024 dx", 0, 0, 256, 784, 1024},  {"mlp256 G 1024-784 fwd", 0, 1, 256, 784, 1024},
    {"mlp256 G 1024-784 dW", 1, 0, 784, 1024, 256},  {"mlp256 G 1024-784 dx", 0, 0, 256, 1024, 784},
    {"mlp P=2 D 784-1024 fwd", 0, 1, 32, 1024, 784}, {"mlp P=2 D 784-1024 dx", 0, 0, 32, 784, 1024},
    {"mlp P=2 G 1024-784 fwd", 0, 1, 32, 784, 1024}, {"mlp P=2 G 1024-784 dx", 0, 0, 32, 1024, 784},
    {"dcgan x6", 0, 0, 128, 3136, 1024},
    {"dcgan x6", 0, 0, 128, 3528, 1024},
    {"dcgan x2", 0, 0, 128, 1960, 1024},
    {"dcgan x2", 0, 0, 256, 1813, 2048},
    {"dcgan x2", 0, 0, 256, 1323, 2048},
    {"dcgan x6", 0, 0, 64, 12544, 16},
    {"dcgan x2", 0, 0, 64, 13328, 49},
    {"dcgan x2", 0, 0, 64, 36848, 49},
    {"dcgan x4", 0, 1, 128, 1024, 3136},
    {"dcgan x6", 0, 1, 128, 1024, 3528},
    {"dcgan x2", 0, 1, 256, 2048, 1813},
    {"dcgan x2", 0, 1, 64, 12544, 100},
    {"dcgan x2", 0, 1, 64, 49, 36848},
    {"dcgan x6", 1, 0, 1024, 3136, 128},
    {"dcgan x6", 1, 0, 1024, 3528, 128},
    {"dcgan x2", 1, 0, 2048, 1813, 256},
    {"dcgan x2", 1, 0, 12544, 100, 64},
    {"dcgan x2", 1, 0, 49, 36848, 64},
    {"dcgan x2", 1, 0, 16, 12544, 64},

};

static double thread_cpu(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* FNV-1a of C's bits */
static uint32_t gemm_hash(const float *c, size_t nc) {
    uint32_t h = 2166136261u;
    for (size_t j = 0; j < nc; j++) {
        uint32_t v;
        memcpy(&v, &c[j], sizeof v);
        h = (h ^ v) * 16777619u;
    }
    return h;
}

/* GFLOP/s of thread CPU time over calls lasting at least 20 ms in all; ours: 0 OpenBLAS, 1 our
 * sgemm as it runs, 2 our sgemm with its small-m path off (every operand packed) */
static double gemm_rate(int ours, const gemm_shape_t *s, const float *a, const float *b, float *c) {
    int lda = s->ta ? s->m : s->k, ldb = s->tb ? s->k : s->n, calls = 0;
    int small = ours == 2 ? sgemm_set_small_m(0) : -1;
    double t0 = thread_cpu(), t;
    do {
        if (ours) sgemm(s->ta, s->tb, s->m, s->n, s->k, 1.0f, a, lda, b, ldb, 0.0f, c, s->n);
        else
            cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans, s->m, s->n,
                        s->k, 1.0f, a, lda, b, ldb, 0.0f, c, s->n);
        calls++;
    } while ((t = thread_cpu() - t0) < 0.02);
    if (small >= 0) sgemm_set_small_m(small);
    return 2.0 * s->m * s->n * s->k * calls / t / 1e9;
}

static int gemm_bench(const char *isa, int reps) {
    openblas_set_num_threads(1);
    if (isa) {
        sgemm_isa_t want = !strcmp(isa, "avx2") ? SGEMM_AVX2 : !strcmp(isa, "avx512") ? SGEMM_AVX512 : SGEMM_C;
        if (strcmp(isa, sgemm_isa_name(want)) || !sgemm_force_isa(want)) {
            fprintf(stderr, "train_bench: --isa %s: not avx2 or avx512, or this CPU lacks it\n", isa);
            return 2;
        }
    }
    printf("where\tta\ttb\tm\tn\tk\tours\tpacked\topenblas\tisa\tcore\thash\n");
    for (size_t i = 0; i < sizeof gemm_shapes / sizeof gemm_shapes[0]; i++) {
        const gemm_shape_t *s = &gemm_shapes[i];
        size_t na = (size_t)s->m * s->k, nb = (size_t)s->k * s->n, nc = (size_t)s->m * s->n;
        float *a = gt_aligned_alloc(sizeof(float) * na), *b = gt_aligned_alloc(sizeof(float) * nb);
        float *c = gt_aligned_alloc(sizeof(float) * nc);
        for (size_t j = 0; j < na; j++) a[j] = 2.0f * philox_uniform(7, PHILOX_STREAM_USER, 1, j) - 1.0f;
        for (size_t j = 0; j < nb; j++) b[j] = 2.0f * philox_uniform(7, PHILOX_STREAM_USER, 2, j) - 1.0f;
        double best[3] = {0, 0, 0};
        for (int r = 0; r < reps; r++)
            for (int e = 2; e >= 0; e--) { /* in turns: packed, ours, OpenBLAS */
                double g = gemm_rate(e, s, a, b, c);
                best[e] = g > best[e] ? g : best[e];
            }
        int lda = s->ta ? s->m : s->k, ldb = s->tb ? s->k : s->n, small = sgemm_set_small_m(0);
        sgemm(s->ta, s->tb, s->m, s->n, s->k, 1.0f, a, lda, b, ldb, 0.0f, c, s->n);
        uint32_t hp = gemm_hash(c, nc);
        sgemm_set_small_m(small);
        sgemm(s->ta, s->tb, s->m, s->n, s->k, 1.0f, a, lda, b, ldb, 0.0f, c, s->n);
        uint32_t h = gemm_hash(c, nc);
        if (h != hp) {
            fprintf(stderr, "train_bench: %s %dx%dx%d: the small-m path gives other bits than the packed one\n",
                    s->where, s->m, s->n, s->k);
            return 1;
        }
        printf("%s\t%d\t%d\t%d\t%d\t%d\t%.1f\t%.1f\t%.1f\t%s\t%s\t%08x\n", s->where, s->ta, s->tb, s->m, s->n,
               s->k, best[1], best[2], best[0], sgemm_isa_name(sgemm_isa()), openblas_get_corename(), h);
        fflush(stdout);
        gt_aligned_free(a);
        gt_aligned_free(b);
        gt_aligned_free(c);
    }
    return 0;
}

static void usage(void) {
    fprintf(stderr, "usage: train_bench --arch mlp|dcgan|wgan-gp|sngan --batch B [--steps N] [--warmup W] [--threads T]\n"
                    "                   [--r1 GAMMA] [--gemm-profile]\n"
                    "       train_bench --gemm [--isa avx2|avx512] [--reps N] [--small-m M]\n"
                    "       train_bench --sgemm-ceiling\n"
                    "       train_bench --cross-core\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *arch = NULL;
    int B = 64, steps = 10, warmup = 2, threads = 0, gemm_profile = 0;
    double r1 = 0;
    if (argc > 1 && strcmp(argv[1], "--gemm") == 0) {
        const char *isa = NULL;
        int reps = 5;
        for (int i = 2; i < argc; i++) {
            if (i + 1 >= argc) usage();
            if (strcmp(argv[i], "--isa") == 0) isa = argv[++i];
            else if (strcmp(argv[i], "--reps") == 0) reps = atoi(argv[++i]);
            else if (strcmp(argv[i], "--small-m") == 0) sgemm_set_small_m(atoi(argv[++i]));
            else usage();
        }
        if (reps < 1) usage();
        return gemm_bench(isa, reps);
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--cross-core") == 0) return cross_core();
        if (strcmp(argv[i], "--gemm-profile") == 0) {
            gemm_profile = 1;
            continue;
        }
        if (strcmp(argv[i], "--sgemm-ceiling") == 0) {
            double g1 = sgemm_best(1), g2 = sgemm_best(2);
            printf("sgemm1=%.1f sgemm2=%.1f core=%s\n", g1, g2, openblas_get_corename());
            return 0;
        }
        if (i + 1 >= argc) usage();
        if (strcmp(argv[i], "--arch") == 0) arch = argv[++i];
        else if (strcmp(argv[i], "--batch") == 0) B = atoi(argv[++i]);
        else if (strcmp(argv[i], "--steps") == 0) steps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--warmup") == 0) warmup = atoi(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0) threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--r1") == 0) r1 = atof(argv[++i]);
        else usage();
    }
    if (!arch || B < 1 || steps < 1 || warmup < 1 || !(r1 >= 0)) usage();
    shape3_t shape = {1, 28, 28};
    preset_t p;
    if (preset_get(arch, shape, 100, &p)) {
        fprintf(stderr, "train_bench: %s\n", gt_errmsg());
        return 1;
    }
    backend_t *be = backend_cpu(threads);
    gan_settings_t s;
    gan_settings_default(&s, p.loss);
    if (p.opt) opt_conf_parse(p.opt, &s.opt_g), s.opt_d = s.opt_g;
    if (p.n_critic) s.n_critic = p.n_critic;
    s.batch = B;
    s.r1 = r1;
    const int K = s.n_critic;
    gan_model_t m;
    if (model_new(&m, p.g, p.d, shape, 100, &s, (int)p.init, 1, be, B)) {
        fprintf(stderr, "train_bench: %s\n", gt_errmsg());
        return 1;
    }
    tensor_t data;
    int64_t n_img = 4 * (int64_t)B * K > 4096 ? 4 * (int64_t)B * K : 4096, dshape[4] = {n_img, 1, 28, 28};
    tensor_alloc(&data, DT_U8, 4, dshape);
    uint8_t *px = data.data;
    for (int64_t i = 0; i < n_img * 784; i++) px[i] = (uint8_t)(philox_u32(7, PHILOX_STREAM_USER, 0, (uint64_t)i) >> 24);
    trainer_t t;
    if (trainer_init(&t, &m, &data)) {
        fprintf(stderr, "train_bench: %s\n", gt_errmsg());
        return 1;
    }
    double *ms = gt_xcalloc((size_t)steps, sizeof *ms), cpu0 = 0;
    for (int i = 0; i < warmup + steps; i++) {
        if (i == 1) counting = 1; /* every step after the first */
        if (i == warmup) cpu0 = cpu_now();
        if (i == warmup && gemm_profile) sgemm_observer = gemm_profile_add;
        double t0 = gt_seconds();
        if (train_step(&t) || trainer_check(&t)) {
            fprintf(stderr, "train_bench: %s\n", gt_errmsg());
            return 1;
        }
        if (i >= warmup) ms[i - warmup] = (gt_seconds() - t0) * 1e3;
    }
    counting = 0;
    sgemm_observer = NULL;
    double cpu_ms = (cpu_now() - cpu0) * 1e3 / steps, total_ms = 0;
    for (int i = 0; i < steps; i++) total_ms += ms[i];
    if (gemm_profile) gemm_profile_print(steps, total_ms / 1e3 / steps); /* before the summary line, */
                                                                         /* which scripts read last */
    qsort(ms, (size_t)steps, sizeof *ms, cmp_double);
    double med = steps % 2 ? ms[steps / 2] : 0.5 * (ms[steps / 2 - 1] + ms[steps / 2]);
    double gf, gw, gx, gx0, df, dw, dx, dx0;
    net_flops(&m.G, &gf, &gw, &gx, &gx0);
    net_flops(&m.D, &df, &dw, &dx, &dx0);
    /* per critic update: D two forwards, real and fake backward (weights and input gradients
     * but the first layer's), G forward; G's update: D forward, D input gradients only
     * (skip_param_grads), G weights and input gradients but the first layer's. */
    /* a penalty's passes (trainer.c gradient_penalty, reg_penalty): forward, input gradient; the
     * tangents, jvp backward; per critic update for wgan-gp and for R1 */
    int zero = 1;
    double pen = df + (dx + dx0) + df + jvp_bwd_flops(m.D.layers, m.D.n_layers, &zero, first_macs(m.D.layers, m.D.n_layers));
    double gp = (s.loss == LOSS_WGAN_GP) * pen + (r1 > 0) * pen;
    double flop = (double)B * (K * (2 * df + 2 * (dw + dx) + gf + gp) + df + (dx + dx0) + gw + gx);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("arch=%s batch=%d threads=%d step_ms=%.2f img_s=%.1f gflop_step=%.3f gflops=%.1f peak_rss_mb=%.1f "
           "allocs_after_first=%ld cpu_ms=%.2f\n",
           arch, B, be->threads, med, B * K / (med / 1e3), flop / 1e9, flop / 1e9 / (med / 1e3), ru.ru_maxrss / 1024.0,
           n_allocs, cpu_ms);
    free(ms);
    trainer_free(&t);
    tensor_free(&data);
    model_free(&m);
    preset_free(&p);
    return 0;
}
