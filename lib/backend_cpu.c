/* backend_cpu.c: the CPU backend: host memory, OpenBLAS's row-major sgemm, a small
 * persistent thread pool for our own loops (cpu_parallel_for), and the backend struct that
 * gathers the operations of lib/cpu_layers.c and lib/cpu_train.c (cpu_ops.h).
 *
 * Thread fight (PERF.md): OpenBLAS's own worker threads spin for a while after each call,
 * on the cores our loops need next (measured: a 2-thread tanh over 1M floats right after an
 * OpenBLAS 2-thread gemm took 6.7 ms instead of 4.6, and the gemm itself fell from ~200 to
 * ~125 GFLOP/s when alternating with our loops). So OpenBLAS runs single-threaded, and a
 * large gemm is split into blocks of rows (or columns) of C computed in parallel by our
 * pool, each block by one single-threaded cblas_sgemm. Our workers sleep on a condition
 * variable between jobs (they never spin). Every call is synchronous. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cblas.h>

#include "backend.h"
#include "common.h"
#include "cpu_ops.h"

/* ---- memory ---------------------------------------------------------------------------- */

static void *cpu_alloc(backend_t *be, size_t bytes) {
    (void)be;
    return gt_aligned_alloc(bytes ? bytes : 1);
}
static void cpu_free(backend_t *be, void *p) {
    (void)be;
    gt_aligned_free(p);
}
static void cpu_copy(backend_t *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (bytes) memmove(dst, src, bytes);
}
static void cpu_zero(backend_t *be, void *p, size_t bytes) {
    (void)be;
    if (bytes) memset(p, 0, bytes);
}
/* host data is already where the CPU computes: no copy */
static const void *cpu_upload_const(backend_t *be, const void *src, size_t bytes) {
    (void)be;
    (void)bytes;
    return src;
}
static void cpu_release_const(backend_t *be, const void *p) {
    (void)be;
    (void)p;
}

/* ---- gemm ------------------------------------------------------------------------------ */

static void sgemm1(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                   const float *b, int ldb, float beta, float *c, int ldc) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k,
                alpha, a, lda, b, ldb, beta, c, ldc);
}

/* A gemm split over the pool: each part computes a block of rows (or of columns) of C with
 * single-threaded OpenBLAS in its own thread. */
typedef struct {
    int ta, tb, m, n, k, by_rows;
    float alpha, beta;
    const float *a, *b;
    float *c;
    int lda, ldb, ldc;
} gemm_job_t;

#define GEMM_ALIGN 16 /* part boundaries on multiples of this many rows/columns */

static void gemm_part(void *arg, long p0, long p1) {
    const gemm_job_t *g = arg;
    int lo = (int)p0 * GEMM_ALIGN, hi = (int)p1 * GEMM_ALIGN;
    if (g->by_rows) {
        if (hi > g->m) hi = g->m;
        const float *a = g->ta ? g->a + lo : g->a + (size_t)lo * g->lda;
        sgemm1(g->ta, g->tb, hi - lo, g->n, g->k, g->alpha, a, g->lda, g->b, g->ldb, g->beta,
               g->c + (size_t)lo * g->ldc, g->ldc);
    } else {
        if (hi > g->n) hi = g->n;
        const float *b = g->tb ? g->b + (size_t)lo * g->ldb : g->b + lo;
        sgemm1(g->ta, g->tb, g->m, hi - lo, g->k, g->alpha, g->a, g->lda, b, g->ldb, g->beta, g->c + lo, g->ldc);
    }
}

static void cpu_gemm(backend_t *be, int trans_a, int trans_b, int m, int n, int k, float alpha,
                     const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) { /* C = beta * C: BLAS implementations disagree on k == 0, so do it here */
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) c[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[(size_t)i * ldc + j];
        return;
    }
    double flops = 2.0 * m * n * k;
    /* Split rows of C unless there are few (then columns): measured on 2 cores, row parts beat
     * OpenBLAS's own 2-thread gemm on the DCGAN/MLP shapes, and leave no spinning threads. */
    int by_rows = m >= 256 || m >= n;
    long blocks = ((by_rows ? m : n) + GEMM_ALIGN - 1) / GEMM_ALIGN;
    if (be->threads > 1 && flops >= 4e6 && blocks >= 2) {
        gemm_job_t g = {trans_a, trans_b, m, n, k, by_rows, alpha, beta, a, b, c, lda, ldb, ldc};
        cpu_parallel_for(be, blocks, gemm_part, &g);
        return;
    }
    sgemm1(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* ---- thread pool ----------------------------------------------------------------------- */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    pthread_t *tid;
    int n_workers;      /* threads besides the caller */
    unsigned long gen;  /* bumped for every job */
    unsigned long start_gen; /* gen when the workers were started (no job in flight then) */
    int pending;        /* workers not yet finished with the current job */
    int quit;
    /* the current job */
    void (*fn)(void *, long, long);
    void *arg;
    long n;
    int parts;
} pool_t;

static pool_t pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
                      NULL, 0, 0, 0, 0, 0, NULL, NULL, 0, 0};

/* Part t of [0, n) split in `parts`: a fixed function of (t, n, parts). */
static void part_range(long n, int parts, int t, long *b, long *e) {
    long q = n / parts, r = n % parts; /* floor(n * t / parts) without overflow */
    *b = q * t + r * t / parts;
    *e = q * (t + 1) + r * (t + 1) / parts;
}

/* Set while this thread runs a part of a job: a nested cpu_parallel_for (e.g. a gemm called
 * inside a parallel loop) then runs inline instead of waiting on the busy pool. */
static _Thread_local int in_part;
/* Held by the thread that owns the pool for the duration of a job (several caller threads
 * take turns). */
static pthread_mutex_t job_mu = PTHREAD_MUTEX_INITIALIZER;

static void *pool_worker(void *p) {
    int me = (int)(intptr_t)p; /* 1 .. n_workers; the caller does part 0 */
    pthread_mutex_lock(&pool.mu);
    unsigned long seen = pool.start_gen;
    for (;;) {
        while (!pool.quit && pool.gen == seen) pthread_cond_wait(&pool.wake, &pool.mu);
        if (pool.quit) break;
        seen = pool.gen;
        if (me < pool.parts) {
            void (*fn)(void *, long, long) = pool.fn;
            void *arg = pool.arg;
            long b, e;
            part_range(pool.n, pool.parts, me, &b, &e);
            pthread_mutex_unlock(&pool.mu);
            in_part = 1;
            if (e > b) fn(arg, b, e);
            in_part = 0;
            pthread_mutex_lock(&pool.mu);
        }
        if (--pool.pending == 0) pthread_cond_signal(&pool.done);
    }
    pthread_mutex_unlock(&pool.mu);
    return NULL;
}

static void pool_stop(void) {
    if (!pool.n_workers) return;
    pthread_mutex_lock(&pool.mu);
    pool.quit = 1;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.mu);
    for (int i = 0; i < pool.n_workers; i++) pthread_join(pool.tid[i], NULL);
    free(pool.tid);
    pool.tid = NULL;
    pool.n_workers = 0;
    pool.quit = 0;
}

static void pool_start(int workers) {
    pool.tid = gt_xcalloc((size_t)workers, sizeof *pool.tid);
    pool.start_gen = pool.gen;
    for (int i = 0; i < workers; i++) {
        if (pthread_create(&pool.tid[i], NULL, pool_worker, (void *)(intptr_t)(i + 1)) != 0) break;
        pool.n_workers = i + 1; /* fewer threads if the system refuses: results do not change */
    }
}

static backend_t cpu_backend = {
    .name = "cpu",
    .device = DEV_CPU,
    .threads = 1,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .copy = cpu_copy,
    .zero = cpu_zero,
    .upload_const = cpu_upload_const,
    .release_const = cpu_release_const,
    .sync = NULL,
    .gemm = cpu_gemm,
    .fill = cpu_fill,
    .philox_fill = cpu_philox_fill,
    .bias_add = cpu_bias_add,
    .bias_grad = cpu_bias_grad,
    .act_forward = cpu_act_forward,
    .act_backward = cpu_act_backward,
    .act_jvp_forward = cpu_act_jvp_forward,
    .act_jvp_backward = cpu_act_jvp_backward,
    .bn_forward = cpu_bn_forward,
    .bn_backward = cpu_bn_backward,
    .ln_forward = cpu_ln_forward,
    .ln_backward = cpu_ln_backward,
    .ln_jvp_forward = cpu_ln_jvp_forward,
    .ln_jvp_backward = cpu_ln_jvp_backward,
    .dropout = cpu_dropout,
    .loss = cpu_loss,
    .gather = cpu_gather,
    .gp_mix = cpu_gp_mix,
    .gp_scale = cpu_gp_scale,
    .sumsq = cpu_sumsq,
    .nonfinite = cpu_nonfinite,
    .train_stats = cpu_train_stats,
    .optim = cpu_optim,
    .ema = cpu_ema,
    .clip = cpu_clip,
    .latents = cpu_latents,
};

backend_t *backend_cpu(int threads) {
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    if (threads > 256) threads = 256;
    if (threads - 1 != pool.n_workers) {
        pool_stop();
        if (threads > 1) pool_start(threads - 1);
    }
    cpu_backend.threads = threads;
    snprintf(cpu_backend.description, sizeof cpu_backend.description, "cpu (%d thread%s)", threads,
             threads == 1 ? "" : "s");
    openblas_set_num_threads(1); /* our pool splits the gemms: no OpenBLAS threads spin beside our loops */
    return &cpu_backend;
}

void cpu_parallel_for(backend_t *be, long n, void (*fn)(void *arg, long begin, long end), void *arg) {
    if (n <= 0) return;
    int parts = be && be->threads > 1 ? be->threads : 1;
    if (parts > pool.n_workers + 1) parts = pool.n_workers + 1;
    if (parts > n) parts = (int)n;
    if (parts <= 1 || in_part) {
        fn(arg, 0, n);
        return;
    }
    pthread_mutex_lock(&job_mu);
    pthread_mutex_lock(&pool.mu);
    pool.fn = fn;
    pool.arg = arg;
    pool.n = n;
    pool.parts = parts;
    pool.pending = pool.n_workers;
    pool.gen++;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.mu);

    long b, e;
    part_range(n, parts, 0, &b, &e);
    in_part = 1;
    if (e > b) fn(arg, b, e);
    in_part = 0;

    pthread_mutex_lock(&pool.mu);
    while (pool.pending > 0) pthread_cond_wait(&pool.done, &pool.mu);
    pthread_mutex_unlock(&pool.mu);
    pthread_mutex_unlock(&job_mu);
}
