/* backend_cpu.c: the CPU backend: host memory, the GEMM (our sgemm or OpenBLAS's), a small
 * persistent thread pool for our own loops (cpu_parallel_for), and the backend struct that
 * gathers the operations of the other files of lib/cpu/ (cpu_ops.h, made from
 * lib/backend/backend_ops.h).
 *
 * Thread fight (bench/README.md, "The peer's threads"): OpenBLAS's own worker threads spin for a while after each call,
 * on the cores our loops need next (measured: a 2-thread tanh over 1M floats right after an
 * OpenBLAS 2-thread gemm took 6.7 ms instead of 4.6, and the gemm itself fell from ~200 to
 * ~125 GFLOP/s when alternating with our loops). So OpenBLAS runs single-threaded, and a
 * large gemm is cut into blocks of rows (or columns) of C that depend only on its shape,
 * shared out over our pool, each block one single-threaded call to our sgemm (sgemm.c: on
 * AVX-512 machines where OpenBLAS runs its AVX2 kernels) or cblas_sgemm: results are the same
 * bits with any thread count. Our workers spin briefly, then sleep on a condition variable
 * between jobs (the pool section below). Every call is synchronous. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cblas.h>

#include "lib/backend/backend.h"
#include "lib/base/common.h"
#include "cpu_ops.h"
#include "sgemm.h"

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
/* large buffers (a net's gradients) are zeroed in parts of ZERO_PART bytes over the threads */
#define ZERO_PART ((size_t)1 << 18)
typedef struct {
    char *p;
    size_t bytes;
} zero_job_t;

static void zero_parts(void *arg, long k0, long k1) {
    const zero_job_t *z = arg;
    size_t b = (size_t)k0 * ZERO_PART, e = (size_t)k1 * ZERO_PART < z->bytes ? (size_t)k1 * ZERO_PART : z->bytes;
    memset(z->p + b, 0, e - b);
}

static void cpu_zero(backend_t *be, void *p, size_t bytes) {
    if (!bytes) return;
    if (be->threads > 1 && bytes >= 4 * ZERO_PART) {
        zero_job_t z = {p, bytes};
        cpu_parallel_for(be, (long)((bytes + ZERO_PART - 1) / ZERO_PART), zero_parts, &z);
        return;
    }
    memset(p, 0, bytes);
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

/* Which engine computes a block: ours (sgemm.c) or OpenBLAS, whichever made the MLP and DCGAN
 * steps faster (README.md, "The GEMM"). Ours needs AVX-512 (our AVX2 kernel lost to
 * OpenBLAS's) and C at least 16 x 32: thinner products (one output channel, the critic's last
 * linear layer, the 16-column weight gradient of a one-channel convolution) would mostly pad
 * our 8 x 32 tiles. It replaces OpenBLAS's AVX2 kernels (what OPENBLAS_CORETYPE=Haswell
 * selects), which it beat on every such shape. Beside OpenBLAS's own AVX-512 kernels (SkylakeX,
 * Cooperlake, SapphireRapids) it takes the convolutions (conv = 1: gemm_im2col and
 * gemm_col2im), whose column matrix only ours can do without (B packed from the image, the
 * scatter side by output phases): the dcgan step 0.92x the CPU time of OpenBLAS's, sngan 0.69x,
 * wgan-gp 0.93x. The plain products stay OpenBLAS's: ours on them took 7% more at batch 256
 * (MLP) and tied at 64 (its small-m path too, though it won per shape by 1.02-1.6x: in the
 * step those products are bound by reading the weights from memory). GT_GEMM=openblas or
 * GT_GEMM=ours in the environment forces one (for measurements), read once by backend_cpu.
 * The choice depends only on the call's shape and kind and the machine, so results stay
 * independent of the thread count. */
static int gemm_engine = -1;    /* -1: by shape; 0: OpenBLAS; 1: ours */
static int openblas_avx512 = 0; /* OpenBLAS runs its AVX-512 kernels */

static int use_ours(int m, int n, int conv) {
    if (gemm_engine >= 0) return gemm_engine;
    return (conv || !openblas_avx512) && sgemm_isa() == SGEMM_AVX512 && m >= 16 && n >= 32;
}

static void sgemm1(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                   const float *b, int ldb, float beta, float *c, int ldc, int ours) {
    if (ours) {
        sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k,
                alpha, a, lda, b, ldb, beta, c, ldc);
}

/* Blocks of C. OpenBLAS's rounding depends on the shape of each call (it has kernels for
 * small matrices and picks its blocking by size), so a gemm whose parts depended on the
 * thread count would give other bits with 1 and with 2 threads. Instead a gemm is cut into
 * blocks of rows (or of columns) of C that depend only on (m, n, k), each computed by one
 * single-threaded cblas_sgemm call; threads only share out whole blocks, and one thread runs
 * the very same calls in turn. K is never split, so every element of C is one dot product
 * summed by one call. */
typedef struct {
    int ta, tb, m, n, k, by_rows, blocks, ours;
    float alpha, beta;
    const float *a, *b;
    float *c;
    int lda, ldb, ldc;
    const conv_cols_t *cols; /* B is this image's column matrix (ours only), b unused */
    float *a_packed;         /* with cols and column blocks: A packed once for all blocks (sgemm.h) */
} gemm_job_t;

#define GEMM_ALIGN 16              /* block boundaries on multiples of this many rows/columns */
#define GEMM_MAX_BLOCKS 4          /* even shares for 2 and 4 threads; each block packs the shared
                                      operand again: 16 blocks cost the MLP step 10% on one thread */
#define GEMM_BLOCK_FLOPS 4.0e6     /* below twice this a gemm is one block (thread start-up costs more) */
#define GEMM_MIN_BLOCK 128         /* rows (columns) per block at least: each block packs the other
                                      operand again, which cost 40% at 16-row blocks */
#define GEMM_MIN_ROWS_SMALL_M 32   /* ... but row blocks of our sgemm's small-m path (README.md), which
                                      packs only its own rows of A and reads B in place: nothing is
                                      packed twice, and a 64-row product of large k gets 2 threads */

/* Start of block t of `blocks` over a dimension of `len`: a multiple of GEMM_ALIGN near
 * len * t / blocks (the last block ends at len). */
static int gemm_block_start(int len, int blocks, int t) {
    if (t >= blocks) return len;
    long s = (long)len * t / blocks;
    return (int)(s - s % GEMM_ALIGN);
}

/* The number of blocks for a shape: 1, or a power of two up to GEMM_MAX_BLOCKS with at least
 * GEMM_BLOCK_FLOPS and GEMM_MIN_BLOCK rows (columns) each (GEMM_MIN_ROWS_SMALL_M rows for our
 * small-m path). Even counts share evenly over 2 threads. */
static int gemm_blocks(int m, int n, int k, int by_rows, int ours) {
    double flops = 2.0 * m * n * k;
    int len = by_rows ? m : n, blocks = 1;
    int min_len = ours && by_rows && m <= SGEMM_SMALL_M ? GEMM_MIN_ROWS_SMALL_M : GEMM_MIN_BLOCK;
    while (blocks < GEMM_MAX_BLOCKS && flops / (2 * blocks) >= GEMM_BLOCK_FLOPS && len / (2 * blocks) >= min_len)
        blocks *= 2;
    return blocks;
}

/* rows (by_rows) or columns [lo, hi) of g's C */
static void gemm_block(const gemm_job_t *g, int lo, int hi) {
    const float *a = g->a, *b = g->b;
    float *c = g->c;
    int m = g->m, n = g->n;
    if (g->by_rows) {
        a += g->ta ? (size_t)lo : (size_t)lo * g->lda;
        c += (size_t)lo * g->ldc;
        m = hi - lo;
    } else {
        b += g->cols ? 0 : g->tb ? (size_t)lo * g->ldb : (size_t)lo;
        c += lo;
        n = hi - lo;
    }
    if (g->cols && g->a_packed)
        sgemm_pb_packed_a(m, n, g->k, g->alpha, g->a_packed, cpu_pack_cols, g->cols, lo, g->beta, c, g->ldc);
    else if (g->cols)
        sgemm_pb(g->ta, m, n, g->k, g->alpha, a, g->lda, cpu_pack_cols, g->cols, g->by_rows ? 0 : lo, g->beta, c,
                 g->ldc);
    else
        sgemm1(g->ta, g->tb, m, n, g->k, g->alpha, a, g->lda, b, g->ldb, g->beta, c, g->ldc, g->ours);
}

/* chunks [t0, t1) of k of g's A into g->a_packed */
static void gemm_pack_a_part(void *arg, long t0, long t1) {
    const gemm_job_t *g = arg;
    sgemm_pack_a(g->ta, g->m, g->k, g->a, g->lda, (int)t0, (int)t1, g->a_packed);
}

static void gemm_part(void *arg, long t0, long t1) {
    const gemm_job_t *g = arg;
    for (long t = t0; t < t1; t++) {
        int len = g->by_rows ? g->m : g->n;
        int lo = gemm_block_start(len, g->blocks, (int)t), hi = gemm_block_start(len, g->blocks, (int)t + 1);
        if (hi > lo) gemm_block(g, lo, hi);
    }
}

/* C = alpha op(A) op(B) + beta C, or with cols: B that image's column matrix (our sgemm's
 * packer, so ours must be 1); ours: which engine (use_ours) */
/* sgemm.h: the benchmarks' view of every GEMM */
void (*sgemm_observer)(int trans_a, int trans_b, int m, int n, int k, int kind, int ours, double seconds);

/* kind: what the product is, for sgemm_observer (sgemm.h): 0 a plain product, 1 a convolution's
 * gather side (B its column matrix or the transpose), 2 its scatter side (the column matrix that
 * col2im adds up, or an output phase) */
static void gemm_run(backend_t *be, int ours, int kind, int trans_a, int trans_b, int m, int n, int k, float alpha,
                     const float *a, int lda, const float *b, int ldb, const conv_cols_t *cols, float beta, float *c,
                     int ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) { /* C = beta * C: BLAS implementations disagree on k == 0, so do it here */
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) c[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[(size_t)i * ldc + j];
        return;
    }
    /* Blocks along the longer side of C: measured on the DCGAN/MLP shapes, column blocks of a
     * 64-row gemm keep OpenBLAS's speed where row blocks lose 30%. */
    int by_rows = m >= n;
    gemm_job_t g = {trans_a, trans_b, m, n, k, by_rows, gemm_blocks(m, n, k, by_rows, ours), ours, alpha, beta,
                    a, b, c, lda, ldb, ldc, cols, NULL};
    double t0 = sgemm_observer ? gt_seconds() : 0;
    if (g.blocks == 1) {
        gemm_block(&g, 0, by_rows ? m : n);
    } else {
        /* Column blocks of a convolution's product would each pack all of A again (for a weight
         * gradient, dY: half as many floats as the column matrix): pack it once, shared out by
         * chunks of k, and let the blocks read it. The same panels, so the same bits. */
        if (cols && !by_rows) {
            g.a_packed = sgemm_a_buffer(sgemm_packed_a_floats(m, k));
            cpu_parallel_for(be, sgemm_a_chunks(k), gemm_pack_a_part, &g);
        }
        cpu_parallel_for(be, g.blocks, gemm_part, &g);
    }
    if (sgemm_observer)
        sgemm_observer(trans_a, trans_b, m, n, k, kind, ours, gt_seconds() - t0);
}

static void cpu_gemm(backend_t *be, int trans_a, int trans_b, int m, int n, int k, float alpha,
                     const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    gemm_run(be, use_ours(m, n, 0), 0, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, NULL, beta, c, ldc);
}

/* With our sgemm, B's panels are packed from the image (conv.c cpu_pack_cols): the same
 * values as im2col's matrix packed, so the same bits, without writing and reading col. With
 * OpenBLAS: im2col into ws, then the gemm. */
void cpu_gemm_im2col(backend_t *be, const conv_geom_t *g, const float *img, int nb, float *ws, int *ws_col,
                     int trans_a, int trans_b, int m, float alpha, const float *a, int lda, float beta, float *c,
                     int ldc) {
    int rows = g->c * g->kh * g->kw, cols = nb * g->gh * g->gw;
    int n = trans_b ? rows : cols, k = trans_b ? cols : rows;
    int ours = use_ours(m, n, 1);
    if (ours && !(ws_col && *ws_col)) {
        conv_cols_t v = {g, img, nb, trans_b, 0, 0};
        gemm_run(be, 1, 1, trans_a, trans_b, m, n, k, alpha, a, lda, NULL, 0, &v, beta, c, ldc);
        return;
    }
    if (!ws_col || !*ws_col) cpu_im2col(be, g, ws, img, nb);
    if (ws_col) *ws_col = 1;
    gemm_run(be, ours, 1, trans_a, trans_b, m, n, k, alpha, a, lda, ws, cols, NULL, beta, c, ldc);
}

/* With our sgemm, phase by phase (cpu_ops.h conv_phase_t, README.md "The scatter side"): wa =
 * the phases' weights, each phase's C (c x nb*area) into ws one after another (they fit: a
 * phase's area is at most its taps times gh*gw), B packed from b by cpu_pack_cols; then one
 * pass puts them in place with the bias. wa is regrouped once a pass (wa_ready), not per
 * chunk. With OpenBLAS: the GEMM into ws, then col2im. */
void cpu_gemm_col2im(backend_t *be, const conv_geom_t *g, float *img, const float *bias, int nb, float *ws,
                     float *wa, int *wa_ready, int trans_a, int k, const float *a, int lda, const float *b, int ldb) {
    int rows = g->c * g->kh * g->kw, cols = nb * g->gh * g->gw;
    if (!wa || !use_ours(g->c, nb * g->h * g->w, 1)) {
        gemm_run(be, use_ours(rows, cols, 1), 2, trans_a, 0, rows, cols, k, 1.0f, a, lda, b, ldb, NULL, 0.0f, ws, cols);
        cpu_col2im(be, g, img, ws, bias, nb);
        return;
    }
    if (!wa_ready || !*wa_ready) cpu_phase_weights(be, g, k, trans_a, a, lda, wa);
    if (wa_ready) *wa_ready = 1;
    float *cq = ws;
    for (int q = 0; q < g->sh * g->sw; q++) {
        conv_phase_t p;
        if (cpu_conv_phase(g, k, q, &p)) {
            conv_cols_t v = {&p.vg, b, nb, 0, ldb, (long)g->gh * g->gw};
            int n = (int)(nb * p.area);
            gemm_run(be, 1, 2, 0, 0, g->c, n, (int)p.kq, 1.0f, wa, (int)p.kq, NULL, 0, &v, 0.0f, cq, n);
            cq += (long)g->c * n;
        }
        wa += (long)g->c * p.kq;
    }
    cpu_phase_join(be, g, img, ws, bias, nb);
}

/* ---- thread pool ----------------------------------------------------------------------- *
 * The caller posts a job (fn, arg, n, parts) and bumps `gen`; worker t runs part t, the caller
 * part 0, and the caller returns when `pending` reaches 0. A thread that finds nothing to do
 * first spins for up to `spin_s` (pause instructions, then yields, each followed by a look at
 * the counter), then sleeps on a condition variable: a step runs hundreds of short jobs back to back, and a
 * sleeping worker costs a futex wake-up (and the kernel's scheduling) per job. The counters are
 * C11 atomics (sequentially consistent); a thread that is about to sleep says so in `sleepers`
 * (workers) or `caller_sleeps` under the mutex, and the other side looks at that flag after its
 * own store, so one of the two always sees the other: no wake-up is lost. Spinning changes only
 * when a thread notices work, never which part it does, so results stay the same bits. */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    pthread_t *tid;
    int n_workers;             /* threads besides the caller */
    _Atomic unsigned long gen; /* bumped for every job */
    unsigned long start_gen;   /* gen when the workers were started (no job in flight then) */
    _Atomic int pending;       /* workers not yet finished with the current job */
    _Atomic int sleepers;      /* workers asleep (or about to be) on `wake` */
    _Atomic int caller_sleeps; /* the caller asleep (or about to be) on `done` */
    _Atomic int quit;
    double spin_s; /* seconds of spinning before sleeping (GT_CPU_SPIN_US) */
    /* the current job, written before gen is bumped */
    void (*fn)(void *, long, long);
    void *arg;
    long n;
    int parts;
} pool_t;

static pool_t pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER,
                      .done = PTHREAD_COND_INITIALIZER};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Microseconds a thread spins before it sleeps (GT_CPU_SPIN_US=N, 0: sleep at once). Measured by
 * the clock, not in rounds of a pause instruction, whose length differs 10-fold between CPUs
 * (18.7 ns on the development machine, 40-140 cycles on others). Measured on the 2-core
 * development machine (lib/cpu/README.md, "The pool's spinning"): 37 us (the 2000 rounds of
 * before) let the MLP step's workers fall asleep between its jobs (12-15 futex sleeps a step,
 * each woken at a hypervisor's cost); 400 us took its step time to 0.90-0.99. Past
 * POOL_SPIN_PAUSE_S the spin yields instead of pausing (below). */
#define POOL_SPIN_US_DEFAULT 400

/* Past this long a spinning thread yields its core at each round (sched_yield) instead of
 * pausing: alone on its core the call returns at once, but on a machine busy with other work
 * the spin then does not hold a core that another process's thread is waiting for. */
#define POOL_SPIN_PAUSE_S 40e-6

typedef struct {
    unsigned round;
    int yielding;
    double start; /* the first look at the clock (0: not yet) */
} spin_t;

/* one round of spinning: a pause or a yield, and a look at the clock every 64 pauses (about a
 * microsecond) or every yield; returns 0 once pool.spin_s has passed since the first look */
static int spin_round(spin_t *sp) {
    if (sp->yielding) sched_yield();
    else cpu_relax();
    if (!sp->yielding && ++sp->round % 64) return 1;
    double t = gt_seconds();
    if (sp->start == 0) sp->start = t;
    sp->yielding = t - sp->start >= POOL_SPIN_PAUSE_S;
    return t - sp->start < pool.spin_s;
}

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
    unsigned long seen = pool.start_gen;
    for (;;) {
        spin_t sp = {0, 0, 0};
        while (pool.spin_s > 0 && pool.gen == seen && !pool.quit && spin_round(&sp)) {
        }
        if (pool.gen == seen && !pool.quit) {
            pthread_mutex_lock(&pool.mu);
            pool.sleepers++;
            while (!pool.quit && pool.gen == seen) pthread_cond_wait(&pool.wake, &pool.mu);
            pool.sleepers--;
            pthread_mutex_unlock(&pool.mu);
        }
        if (pool.quit) break;
        seen = pool.gen;
        if (me < pool.parts) {
            long b, e;
            part_range(pool.n, pool.parts, me, &b, &e);
            in_part = 1;
            if (e > b) pool.fn(pool.arg, b, e);
            in_part = 0;
        }
        if (--pool.pending == 0 && pool.caller_sleeps) {
            pthread_mutex_lock(&pool.mu);
            pthread_cond_signal(&pool.done);
            pthread_mutex_unlock(&pool.mu);
        }
    }
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
    const char *sp = getenv("GT_CPU_SPIN_US");
    double us = sp && *sp ? atof(sp) : POOL_SPIN_US_DEFAULT;
    pool.spin_s = us > 0 ? us * 1e-6 : 0;
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
    .join = cpu_join,
    .sum_procs = cpu_sum_procs,
    .sum_procs_start = cpu_sum_procs_start,
    .sum_procs_poll = cpu_sum_procs_poll,
    .sum_procs_wait = cpu_sum_procs_wait,
    .reduce_procs_start = cpu_reduce_procs_start,
    .gather_procs = cpu_gather_procs,
    .alloc_shared = cpu_alloc_shared,
    .gemm = cpu_gemm,
    /* every compute operation: .name = cpu_name (a missing one does not link) */
#define BACKEND_OP(name, params) .name = cpu_##name,
#include "lib/backend/backend_ops.h"
#undef BACKEND_OP
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
    const char *engine = getenv("GT_GEMM");
    gemm_engine = !engine || !*engine ? -1 : !strcmp(engine, "openblas") ? 0 : !strcmp(engine, "ours") ? 1 : -2;
    if (gemm_engine == -2) gt_fatal(2, "GT_GEMM must be 'openblas' or 'ours', not '%s'", engine);
    const char *core = openblas_get_corename();
    openblas_avx512 = core && (strstr(core, "SkylakeX") || strstr(core, "Cooperlake") || strstr(core, "Sapphire"));
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
    pool.fn = fn;
    pool.arg = arg;
    pool.n = n;
    pool.parts = parts;
    pool.pending = pool.n_workers;
    pool.gen++; /* publishes the job to spinning workers */
    if (pool.sleepers) {
        pthread_mutex_lock(&pool.mu);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.mu);
    }

    long b, e;
    part_range(n, parts, 0, &b, &e);
    in_part = 1;
    if (e > b) fn(arg, b, e);
    in_part = 0;

    spin_t sp = {0, 0, 0};
    while (pool.spin_s > 0 && pool.pending > 0 && spin_round(&sp)) {
    }
    if (pool.pending > 0) {
        pthread_mutex_lock(&pool.mu);
        pool.caller_sleeps = 1;
        while (pool.pending > 0) pthread_cond_wait(&pool.done, &pool.mu);
        pool.caller_sleeps = 0;
        pthread_mutex_unlock(&pool.mu);
    }
    pthread_mutex_unlock(&job_mu);
}
