/* sgemm.c: our single-threaded sgemm (sgemm.h). The classic blocked layout: C is computed in
 * tiles of MR x NR held in registers; B is packed SGEMM_KC rows x SGEMM_NC columns at a time
 * into panels of NR columns (row p of a panel: NR consecutive floats), A SGEMM_MC rows x
 * SGEMM_KC at a time into panels of MR rows (column p: MR consecutive floats); the
 * micro-kernel walks one A panel and one B panel, one rank-1 update per p. Partial tiles at
 * the edges are padded with zeros when packed and computed into a scratch tile, then the
 * valid part is written out with the same arithmetic as a full tile's, so an element's bits
 * never depend on where its tile lies.
 *
 * The kernels are compiled for their ISA with __attribute__((target)), so the rest of the
 * project stays generic x86-64; the choice is made once, by the CPU (__builtin_cpu_supports).
 *
 * Every element: acc = sum over p of a*b (fused, in p order) over each chunk of SGEMM_KC,
 * then C = alpha*acc + beta*C for the first chunk and C = alpha*acc + C after it (products
 * and sum rounded separately, as written: -std=c11 never contracts them). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stddef.h>
#include <string.h>

#include "lib/base/common.h"
#include "sgemm.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define SGEMM_X86 1
#else
#define SGEMM_X86 0
#endif

#define SGEMM_MC 144  /* rows of A per packed block: a multiple of every MR (8, 6, 4) */
#define SGEMM_KC 256  /* the chunk of k: an A panel (MR x KC) and a B panel (KC x NR) stay in L1/L2 */
#define SGEMM_NC 2048 /* columns of B per packed block (KC x NC floats: 2 MiB, in L3) */
#define MAX_MR 8
#define MAX_NR 32

/* ---- packing ----------------------------------------------------------------------------- *
 * Packing only moves floats, so every path below gives the same panels. Where the CPU has AVX2
 * (`vec`: every ISA but the C fallback) the transposing cases move 8 x 8 blocks through
 * registers and the straight ones copy whole panel rows as vectors; the edges and the zero
 * padding take the scalar loops. */

#if SGEMM_X86
/* Rows [0, rows) (rows <= 8; the others read as zeros) x columns [0, 8) of s (row stride ls)
 * transposed: r[p] = (s[0][p], ..., s[7][p]). */
__attribute__((target("avx2"))) static inline void tr8x8(const float *s, size_t ls, int rows, __m256 r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i++) t[i] = i < rows ? _mm256_loadu_ps(s + i * ls) : _mm256_setzero_ps();
    for (int i = 0; i < 8; i += 2) {
        u[i] = _mm256_unpacklo_ps(t[i], t[i + 1]);
        u[i + 1] = _mm256_unpackhi_ps(t[i], t[i + 1]);
    }
    /* u[0] = (s00 s10 s01 s11 | s04 s14 s05 s15), u[1] = (s02 s12 s03 s13 | ...), u[2], u[3] rows 2 and 3 */
    for (int h = 0; h < 8; h += 4) {
        t[h] = _mm256_shuffle_ps(u[h], u[h + 2], 0x44), t[h + 1] = _mm256_shuffle_ps(u[h], u[h + 2], 0xEE);
        t[h + 2] = _mm256_shuffle_ps(u[h + 1], u[h + 3], 0x44), t[h + 3] = _mm256_shuffle_ps(u[h + 1], u[h + 3], 0xEE);
    }
    /* t[q] (q < 4): column q of rows 0-3 | column q + 4 of rows 0-3; t[q + 4]: the same of rows 4-7 */
    for (int q = 0; q < 4; q++) {
        r[q] = _mm256_permute2f128_ps(t[q], t[q + 4], 0x20);
        r[q + 4] = _mm256_permute2f128_ps(t[q], t[q + 4], 0x31);
    }
}

/* B transposed, rows [0, w) x columns [0, kc8) of s (stride ls; w and kc8 multiples of 8) into
 * a panel of nr columns: d[p * nr + j] = s[j * ls + p]. 8 source rows at a time, each read
 * front to back (8 streams the prefetcher follows; 8 columns of the panel written). */
__attribute__((target("avx2"))) static void pack_tr8(const float *s, size_t ls, int w, int kc8, float *d, int nr) {
    __m256 r[8];
    for (int j = 0; j < w; j += 8)
        for (int p8 = 0; p8 < kc8; p8 += 8) {
            tr8x8(s + (size_t)j * ls + p8, ls, 8, r);
            for (int p = 0; p < 8; p++) _mm256_storeu_ps(d + (size_t)(p8 + p) * nr + j, r[p]);
        }
}

/* A, mr (8 or 6) whole rows of s (stride ls) x kc8 columns (a multiple of 8) into a panel:
 * d[p * mr + i] = s[i * ls + p] */
__attribute__((target("avx2"))) static void pack_a_tr(const float *s, size_t ls, int kc8, int mr, float *d) {
    __m256 r[8];
    if (mr == 8) {
        for (int p8 = 0; p8 < kc8; p8 += 8) {
            tr8x8(s + p8, ls, 8, r);
            for (int p = 0; p < 8; p++) _mm256_storeu_ps(d + (size_t)(p8 + p) * 8, r[p]);
        }
        return;
    }
    for (int p8 = 0; p8 < kc8; p8 += 8) { /* mr == 6: 4 + 2 floats per column */
        tr8x8(s + p8, ls, 6, r);
        for (int p = 0; p < 8; p++) {
            float *dp = d + (size_t)(p8 + p) * 6;
            _mm_storeu_ps(dp, _mm256_castps256_ps128(r[p]));
            _mm_storel_pi((__m64 *)(dp + 4), _mm256_extractf128_ps(r[p], 1));
        }
    }
}

/* n floats (a multiple of 8) from s to d */
__attribute__((target("avx2"))) static void copy8(const float *s, float *d, int n) {
    for (int j = 0; j < n; j += 8) _mm256_storeu_ps(d + j, _mm256_loadu_ps(s + j));
}
#endif

/* A (m x k after op) rows [i0, i0+mc), columns [p0, p0+kc) into panels of mr rows at
 * dst + panel * mr * kc, element (i, p) of a panel at p * mr + i; rows past mc are zero. */
static void pack_a(int ta, const float *a, int lda, int i0, int mc, int p0, int kc, int mr, float *dst, int vec) {
    (void)vec; /* the C build's packing has no vector path */
    for (int ir = 0; ir < mc; ir += mr) {
        float *d = dst + (size_t)ir * kc;
        int r = mc - ir < mr ? mc - ir : mr;
        if (!ta) {
            int p8 = 0;
#if SGEMM_X86
            if (vec && r == mr && (mr == 8 || mr == 6)) {
                p8 = kc - kc % 8;
                pack_a_tr(a + (size_t)(i0 + ir) * lda + p0, (size_t)lda, p8, mr, d);
            }
#endif
            for (int i = 0; i < r; i++) {
                const float *s = a + (size_t)(i0 + ir + i) * lda + p0;
                for (int p = p8; p < kc; p++) d[(size_t)p * mr + i] = s[p];
            }
        } else {
            for (int p = 0; p < kc; p++) {
                const float *s = a + (size_t)(p0 + p) * lda + i0 + ir;
                if (r == 8 && mr == 8) memcpy(d + (size_t)p * 8, s, 8 * sizeof(float)); /* one vector move */
                else
                    for (int i = 0; i < r; i++) d[(size_t)p * mr + i] = s[i];
            }
        }
        if (r < mr)
            for (int p = 0; p < kc; p++)
                for (int i = r; i < mr; i++) d[(size_t)p * mr + i] = 0.0f;
    }
}

/* B (k x n after op) rows [p0, p0+kc), columns [j0, j0+nc) into panels of nr columns at
 * dst + panel * nr * kc, element (p, j) of a panel at p * nr + j; columns past nc are zero. */
static void pack_b(int tb, const float *b, int ldb, int p0, int kc, int j0, int nc, int nr, float *dst, int vec) {
    (void)vec;
    for (int jr = 0; jr < nc; jr += nr) {
        float *d = dst + (size_t)jr * kc;
        int r = nc - jr < nr ? nc - jr : nr;
        if (!tb) {
            int r8 = 0;
#if SGEMM_X86
            if (vec) r8 = r - r % 8;
#endif
            for (int p = 0; p < kc; p++) {
                const float *s = b + (size_t)(p0 + p) * ldb + j0 + jr;
                float *dp = d + (size_t)p * nr;
#if SGEMM_X86
                if (r8) copy8(s, dp, r8);
#endif
                for (int j = r8; j < r; j++) dp[j] = s[j];
                for (int j = r; j < nr; j++) dp[j] = 0.0f;
            }
        } else {
            /* 8 rows of the panel at a time: walking a whole column of it per source row
             * would sweep the panel (32 KiB) through L1 once per column */
            int r8 = 0, kc8 = kc - kc % 8;
#if SGEMM_X86
            if (vec && kc8) r8 = r - r % 8;
            if (r8) pack_tr8(b + (size_t)(j0 + jr) * ldb + p0, (size_t)ldb, r8, kc8, d, nr);
#endif
            for (int p8 = 0; p8 < kc; p8 += 8) {
                int pe = kc - p8 < 8 ? kc - p8 : 8, j = p8 < kc8 ? r8 : 0;
                for (; j < r; j++) {
                    const float *s = b + (size_t)(j0 + jr + j) * ldb + p0 + p8;
                    for (int p = 0; p < pe; p++) d[(size_t)(p8 + p) * nr + j] = s[p];
                }
                for (int p = 0; p < pe; p++)
                    for (int jj = r; jj < nr; jj++) d[(size_t)(p8 + p) * nr + jj] = 0.0f;
            }
        }
    }
}

/* ---- micro-kernels: C (MR x NR at c, row stride ldc) = alpha * Ap Bp + beta * C ---------- */

typedef void (*kernel_fn)(int kc, const float *ap, const float *bp, float *c, long ldc, float alpha, float beta);
typedef void (*kernel_s_fn)(int kc, const float *ap, long ai, long ap_, const float *bp, long bp_, float *c, long ldc,
                            float alpha, float beta);

/* The kernels read element (i, p) of A at ap[i * ai + p * ap_] and row p of B at bp + p * bp_:
 * packed panels (ai 1, ap_ MR, bp_ NR, the constants of each ISA's `kernel_*`) or a matrix
 * read in place (`*_s`: sgemm's small-m path, below). One body per ISA, inlined into both, so
 * the arithmetic is the same. */

/* The fallback: 4 x 16, each product rounded before the sum. */
static inline __attribute__((always_inline)) void body_c(int kc, const float *ap, long ai, long ap_,
                                                         const float *bp, long bp_, float *c, long ldc, float alpha,
                                                         float beta) {
    float acc[4][16];
    memset(acc, 0, sizeof acc);
    for (int p = 0; p < kc; p++) {
        const float *a = ap + (size_t)p * ap_, *b = bp + (size_t)p * bp_;
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 16; j++) acc[i][j] += a[i * ai] * b[j];
    }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 16; j++)
            c[i * ldc + j] = beta == 0.0f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * c[i * ldc + j];
}
static void kernel_c(int kc, const float *ap, const float *bp, float *c, long ldc, float alpha, float beta) {
    body_c(kc, ap, 1, 4, bp, 16, c, ldc, alpha, beta);
}
static void kernel_c_s(int kc, const float *ap, long ai, long ap_, const float *bp, long bp_, float *c, long ldc,
                       float alpha, float beta) {
    body_c(kc, ap, ai, ap_, bp, bp_, c, ldc, alpha, beta);
}

#if SGEMM_X86
/* AVX2 + FMA: 6 x 16, twelve ymm accumulators. */
static inline __attribute__((always_inline, target("avx2,fma"))) void
body_avx2(int kc, const float *ap, long ai, long ap_, const float *bp, long bp_, float *c, long ldc, float alpha,
          float beta) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00,
           c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int p = 0; p < kc; p++) {
        __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8), a;
#define ROW(i)                                   \
    a = _mm256_broadcast_ss(ap + i * ai);        \
    c##i##0 = _mm256_fmadd_ps(a, b0, c##i##0);   \
    c##i##1 = _mm256_fmadd_ps(a, b1, c##i##1);
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5)
#undef ROW
        ap += ap_;
        bp += bp_;
    }
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#define OUT(i)                                                                                                   \
    if (beta == 0.0f) {                                                                                          \
        _mm256_storeu_ps(c + i * ldc, _mm256_mul_ps(va, c##i##0));                                               \
        _mm256_storeu_ps(c + i * ldc + 8, _mm256_mul_ps(va, c##i##1));                                           \
    } else {                                                                                                     \
        _mm256_storeu_ps(c + i * ldc,                                                                            \
                         _mm256_add_ps(_mm256_mul_ps(va, c##i##0), _mm256_mul_ps(vb, _mm256_loadu_ps(c + i * ldc)))); \
        _mm256_storeu_ps(c + i * ldc + 8, _mm256_add_ps(_mm256_mul_ps(va, c##i##1),                              \
                                                        _mm256_mul_ps(vb, _mm256_loadu_ps(c + i * ldc + 8))));   \
    }
    OUT(0) OUT(1) OUT(2) OUT(3) OUT(4) OUT(5)
#undef OUT
}

__attribute__((target("avx2,fma"))) static void kernel_avx2(int kc, const float *ap, const float *bp, float *c,
                                                            long ldc, float alpha, float beta) {
    body_avx2(kc, ap, 1, 6, bp, 16, c, ldc, alpha, beta);
}
__attribute__((target("avx2,fma"))) static void kernel_avx2_s(int kc, const float *ap, long ai, long ap_,
                                                              const float *bp, long bp_, float *c, long ldc,
                                                              float alpha, float beta) {
    body_avx2(kc, ap, ai, ap_, bp, bp_, c, ldc, alpha, beta);
}

/* AVX-512F: 8 x 32, sixteen zmm accumulators. */
static inline __attribute__((always_inline, target("avx512f,avx2,fma"))) void
body_avx512(int kc, const float *ap, long ai, long ap_, const float *bp, long bp_, float *c, long ldc, float alpha,
            float beta) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00,
           c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
    for (int p = 0; p < kc; p++) {
        __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16), a;
#define ROW(i)                                   \
    a = _mm512_set1_ps(ap[i * ai]);              \
    c##i##0 = _mm512_fmadd_ps(a, b0, c##i##0);   \
    c##i##1 = _mm512_fmadd_ps(a, b1, c##i##1);
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5) ROW(6) ROW(7)
#undef ROW
        ap += ap_;
        bp += bp_;
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#define OUT(i)                                                                                                   \
    if (beta == 0.0f) {                                                                                          \
        _mm512_storeu_ps(c + i * ldc, _mm512_mul_ps(va, c##i##0));                                               \
        _mm512_storeu_ps(c + i * ldc + 16, _mm512_mul_ps(va, c##i##1));                                          \
    } else {                                                                                                     \
        _mm512_storeu_ps(c + i * ldc,                                                                            \
                         _mm512_add_ps(_mm512_mul_ps(va, c##i##0), _mm512_mul_ps(vb, _mm512_loadu_ps(c + i * ldc)))); \
        _mm512_storeu_ps(c + i * ldc + 16, _mm512_add_ps(_mm512_mul_ps(va, c##i##1),                             \
                                                         _mm512_mul_ps(vb, _mm512_loadu_ps(c + i * ldc + 16)))); \
    }
    OUT(0) OUT(1) OUT(2) OUT(3) OUT(4) OUT(5) OUT(6) OUT(7)
#undef OUT
}
__attribute__((target("avx512f,avx2,fma"))) static void kernel_avx512(int kc, const float *ap, const float *bp,
                                                                      float *c, long ldc, float alpha, float beta) {
    body_avx512(kc, ap, 1, 8, bp, 32, c, ldc, alpha, beta);
}
__attribute__((target("avx512f,avx2,fma"))) static void kernel_avx512_s(int kc, const float *ap, long ai, long ap_,
                                                                        const float *bp, long bp_, float *c,
                                                                        long ldc, float alpha, float beta) {
    body_avx512(kc, ap, ai, ap_, bp, bp_, c, ldc, alpha, beta);
}
#endif

typedef struct {
    kernel_fn fn;
    kernel_s_fn fs; /* the same with the operands' strides given */
    int mr, nr;
} kernel_t;

static const kernel_t kernels[3] = {
    {kernel_c, kernel_c_s, 4, 16},
#if SGEMM_X86
    {kernel_avx2, kernel_avx2_s, 6, 16},
    {kernel_avx512, kernel_avx512_s, 8, 32},
#else
    {kernel_c, kernel_c_s, 4, 16},
    {kernel_c, kernel_c_s, 4, 16},
#endif
};

/* ---- the ISA ----------------------------------------------------------------------------- */

static int cpu_has(sgemm_isa_t isa) {
#if SGEMM_X86
    __builtin_cpu_init();
    if (isa == SGEMM_AVX512) return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
    if (isa == SGEMM_AVX2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return isa == SGEMM_C;
}

static int isa_now = -1; /* -1: not chosen yet (atomic: any thread may make the choice) */

sgemm_isa_t sgemm_isa(void) {
    int i = __atomic_load_n(&isa_now, __ATOMIC_RELAXED);
    if (i < 0) {
        i = cpu_has(SGEMM_AVX512) ? SGEMM_AVX512 : cpu_has(SGEMM_AVX2) ? SGEMM_AVX2 : SGEMM_C;
        __atomic_store_n(&isa_now, i, __ATOMIC_RELAXED);
    }
    return (sgemm_isa_t)i;
}

int sgemm_force_isa(sgemm_isa_t isa) {
    if ((int)isa < 0 || isa > SGEMM_AVX512 || !cpu_has(isa)) return 0;
    __atomic_store_n(&isa_now, (int)isa, __ATOMIC_RELAXED);
    return 1;
}

const char *sgemm_isa_name(sgemm_isa_t isa) {
    return isa == SGEMM_AVX512 ? "avx512" : isa == SGEMM_AVX2 ? "avx2" : "c";
}

/* ---- the packing buffers: one pair per thread, made at its first call, freed when it ends -- */

static pthread_key_t buf_key, abuf_key; /* the packing buffers; a packed A (sgemm_a_buffer) */
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;
static void buf_free(void *p) {
    gt_aligned_free(p);
}
static void buf_keys_make(void) {
    if (pthread_key_create(&buf_key, buf_free) != 0 || pthread_key_create(&abuf_key, buf_free) != 0)
        gt_fatal(1, "sgemm: cannot create a thread-specific key");
}
/* this thread's buffer under `key` of at least `floats` floats, reallocated only to grow: a
 * header (its capacity) and the floats, kept until the thread ends */
static float *thread_buffer(pthread_key_t *key, size_t floats) {
    pthread_once(&buf_once, buf_keys_make);
    float *p = pthread_getspecific(*key);
    const size_t head = 16; /* floats before the buffer: its capacity, and the alignment kept */
    if (p && *(size_t *)p >= floats) return p + head;
    gt_aligned_free(p);
    p = gt_aligned_alloc(sizeof(float) * (head + floats));
    *(size_t *)p = floats;
    if (pthread_setspecific(*key, p) != 0) gt_fatal(1, "sgemm: cannot set a thread-specific buffer");
    return p + head;
}
static float *thread_buffers(void) {
    return thread_buffer(&buf_key, (size_t)SGEMM_MC * SGEMM_KC + (size_t)SGEMM_KC * SGEMM_NC);
}

/* rows of an A packed whole (sgemm_pack_a): m rounded up to the kernel's MR */
static size_t packed_rows(int m, int mr) {
    return (size_t)((m + mr - 1) / mr) * mr;
}

/* ---- the driver -------------------------------------------------------------------------- */

/* The valid mm x nn part of a kernel's sum in the scratch tile (row stride nr) out to C, with
 * the kernel's own epilogue arithmetic: C = alpha * t (+ beta * C) */
static void tile_out(const float *tile, int nr, int mm, int nn, float *cp, int ldc, float alpha, float bet) {
    for (int i = 0; i < mm; i++)
        for (int j = 0; j < nn; j++) {
            float t = tile[i * nr + j], *cv = cp + (size_t)i * ldc + j;
            *cv = bet == 0.0f ? alpha * t : alpha * t + bet * *cv;
        }
}

/* C = alpha op(A) B + beta C with B's panels made by pack (sgemm.h): the one loop nest behind
 * sgemm and sgemm_pb. */
static void driver(int trans_a, int m, int n, int k, float alpha, const float *a, int lda, const float *a_packed,
                   sgemm_pack_b_fn pack, const void *ctx, long j_off, float beta, float *c, int ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) c[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[(size_t)i * ldc + j];
        return;
    }
    const sgemm_isa_t isa = sgemm_isa();
    const kernel_t kd = kernels[isa];
    const int mr = kd.mr, nr = kd.nr, vec = isa != SGEMM_C; /* vec: the CPU has AVX2 */
    float *abuf = thread_buffers(), *bbuf = abuf + (size_t)SGEMM_MC * SGEMM_KC;
    const size_t m_pad = packed_rows(m, mr); /* a_packed's rows (sgemm_pack_a) */
    _Alignas(64) float tile[MAX_MR * MAX_NR];
    for (int jc = 0; jc < n; jc += SGEMM_NC) {
        int nc = n - jc < SGEMM_NC ? n - jc : SGEMM_NC;
        for (int pc = 0; pc < k; pc += SGEMM_KC) {
            int kc = k - pc < SGEMM_KC ? k - pc : SGEMM_KC;
            float bet = pc == 0 ? beta : 1.0f;
            pack(ctx, pc, kc, j_off + jc, nc, nr, bbuf);
            for (int ic = 0; ic < m; ic += SGEMM_MC) {
                int mc = m - ic < SGEMM_MC ? m - ic : SGEMM_MC;
                const float *ablk = abuf;
                if (a_packed) ablk = a_packed + (size_t)pc * m_pad + (size_t)ic * kc;
                else pack_a(trans_a, a, lda, ic, mc, pc, kc, mr, abuf, vec);
                for (int jr = 0; jr < nc; jr += nr) {
                    int nn = nc - jr < nr ? nc - jr : nr;
                    const float *bp = bbuf + (size_t)jr * kc;
                    for (int ir = 0; ir < mc; ir += mr) {
                        int mm = mc - ir < mr ? mc - ir : mr;
                        const float *ap = ablk + (size_t)ir * kc;
                        float *cp = c + (size_t)(ic + ir) * ldc + jc + jr;
                        if (mm == mr && nn == nr) {
                            kd.fn(kc, ap, bp, cp, ldc, alpha, bet);
                            continue;
                        }
                        /* an edge tile: the kernel's sum into the scratch tile (1 * acc + 0 is
                         * acc exactly), then the same epilogue on the valid part */
                        kd.fn(kc, ap, bp, tile, nr, 1.0f, 0.0f);
                        tile_out(tile, nr, mm, nn, cp, ldc, alpha, bet);
                    }
                }
            }
        }
    }
}

/* ---- the small-m path ----------------------------------------------------------------------- *
 * With few rows of C (the linear layers at a small batch) each element of B is used only m times,
 * so packing B costs about as much as the kernel's work on it. Here only op(A) (m x k, the
 * small operand) is packed and B (the weights) is read where it lies:
 *   op(B) = B (k x n): the kernel's B rows are B's rows, NR floats at stride ldb;
 *   op(B) = B^T: C^T (n x m) = B op(A)^T, B's rows (k floats at stride ldb) are the kernel's A
 *   operand, broadcast one float at a time, op(A)^T packed into B panels; the tile is C's
 *   transposed and goes out transposed.
 * Products commute exactly (a * b and fma(a, b, c) are symmetric), and every element is still one
 * chain of fused multiply-adds over k in index order, in the same chunks of SGEMM_KC, with the
 * same epilogue: the bits are the packed path's. Edges (a last partial NR columns of B, or MR
 * rows of B^T) are packed, zero-padded, as the packed path packs them.
 * In a training step the weights come from memory (the optimizer has swept them out of the
 * caches), and their rows read in place are short streams the hardware prefetcher follows late:
 * each tile's call first prefetches its share of the next B panel's rows (or of B's next MR
 * rows), which took 4-6% off these GEMMs' time in the MLP step (perf samples, two runs each). */

static int small_m_max = SGEMM_SMALL_M; /* read atomically: tests and benchmarks change it */

int sgemm_set_small_m(int max) {
    if (max > SGEMM_MC) max = SGEMM_MC; /* A is packed whole into the MC x KC buffer */
    if (max < 0) max = 0;
    return __atomic_exchange_n(&small_m_max, max, __ATOMIC_RELAXED);
}

#if SGEMM_X86
/* tile_out of a tile with 8 valid rows, transposed: C[j][i] from tile[i * nr + j], columns
 * [0, nn) of the tile (rows of C) 8 at a time through registers, the same arithmetic per element */
__attribute__((target("avx2"))) static void tile_out_t8(const float *tile, int nr, int nn, float *cp, int ldc,
                                                        float alpha, float bet) {
    __m256 r[8], va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(bet);
    for (int j8 = 0; j8 < nn; j8 += 8) {
        tr8x8(tile + j8, (size_t)nr, 8, r); /* r[q]: column j8 + q of the tile = 8 floats of row j8 + q of C */
        int q1 = nn - j8 < 8 ? nn - j8 : 8;
        for (int q = 0; q < q1; q++) {
            float *cv = cp + (size_t)(j8 + q) * ldc;
            __m256 v = _mm256_mul_ps(va, r[q]);
            if (bet != 0.0f) v = _mm256_add_ps(v, _mm256_mul_ps(vb, _mm256_loadu_ps(cv)));
            _mm256_storeu_ps(cv, v);
        }
    }
}
#endif

/* tile_out transposed: C[j][i] (j < nn, i < mm) from tile[i * nr + j] */
static void tile_out_t(const float *tile, int nr, int mm, int nn, float *cp, int ldc, float alpha, float bet,
                       int vec) {
#if SGEMM_X86
    if (vec && mm == 8) {
        tile_out_t8(tile, nr, nn, cp, ldc, alpha, bet);
        return;
    }
#endif
    (void)vec;
    for (int j = 0; j < nn; j++)
        for (int i = 0; i < mm; i++) {
            float t = tile[i * nr + j], *cv = cp + (size_t)j * ldc + i;
            *cv = bet == 0.0f ? alpha * t : alpha * t + bet * *cv;
        }
}

static void small_m(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                    int ldb, float beta, float *c, int ldc) {
    const sgemm_isa_t isa = sgemm_isa();
    const kernel_t kd = kernels[isa];
    const int mr = kd.mr, nr = kd.nr, vec = isa != SGEMM_C;
    float *abuf = thread_buffers(), *bbuf = abuf + (size_t)SGEMM_MC * SGEMM_KC;
    _Alignas(64) float tile[MAX_MR * MAX_NR];
    for (int pc = 0; pc < k; pc += SGEMM_KC) {
        int kc = k - pc < SGEMM_KC ? k - pc : SGEMM_KC;
        float bet = pc == 0 ? beta : 1.0f;
        if (!tb) { /* C = op(A) B: A packed (all m rows), B's rows read in place */
            pack_a(ta, a, lda, 0, m, pc, kc, mr, abuf, vec);
            for (int jr = 0; jr < n; jr += nr) {
                int nn = n - jr < nr ? n - jr : nr;
                const float *bp = b + (size_t)pc * ldb + jr;
                long bs = ldb;
                if (nn < nr) { /* the last columns: zero-padded, as the packed path has them */
                    pack_b(0, b, ldb, pc, kc, jr, nn, nr, bbuf, vec);
                    bp = bbuf, bs = nr;
                }
                int tiles = (m + mr - 1) / mr, jn = jr + nr;
                for (int ir = 0; ir < m; ir += mr) {
                    int mm = m - ir < mr ? m - ir : mr;
                    const float *ap = abuf + (size_t)ir * kc;
                    float *cp = c + (size_t)ir * ldc + jr;
                    if (jn + nr <= n) { /* this tile's share of the next panel's rows on its way to L2 */
                        int t = ir / mr, p0 = kc * t / tiles, p1 = kc * (t + 1) / tiles;
                        for (int p = p0; p < p1; p++) {
                            const char *q = (const char *)(b + (size_t)(pc + p) * ldb + jn);
                            __builtin_prefetch(q, 0, 2);
                            __builtin_prefetch(q + 64, 0, 2);
                            if (nr > 16) __builtin_prefetch(q + 124, 0, 2);
                        }
                    }
                    if (mm == mr && nn == nr) {
                        kd.fs(kc, ap, 1, mr, bp, bs, cp, ldc, alpha, bet);
                        continue;
                    }
                    kd.fs(kc, ap, 1, mr, bp, bs, tile, nr, 1.0f, 0.0f);
                    tile_out(tile, nr, mm, nn, cp, ldc, alpha, bet);
                }
            }
        } else { /* C^T = B op(A)^T: op(A)^T (kc x m) packed into B panels, B's rows read in place */
            pack_b(!ta, a, lda, pc, kc, 0, m, nr, bbuf, vec);
            for (int ir = 0; ir < n; ir += mr) {
                int mm = n - ir < mr ? n - ir : mr;
                const float *ap = b + (size_t)ir * ldb + pc;
                long as_i = ldb, as_p = 1;
                if (mm < mr) { /* the last rows of B: zero-padded, as the packed path has them */
                    pack_a(0, b, ldb, ir, mm, pc, kc, mr, abuf, vec);
                    ap = abuf, as_i = 1, as_p = mr;
                }
                int in = ir + mr, tiles = (m + nr - 1) / nr;
                for (int jr = 0; jr < m; jr += nr) {
                    int nn = m - jr < nr ? m - jr : nr;
                    if (in < n) { /* this tile's share of B's next MR rows on its way to L2 */
                        int t = jr / nr, i0 = mr * t / tiles, i1 = mr * (t + 1) / tiles;
                        for (int i = i0; i < i1 && in + i < n; i++) {
                            const char *q = (const char *)(b + (size_t)(in + i) * ldb + pc);
                            for (int o = 0; o < kc * 4; o += 64) __builtin_prefetch(q + o, 0, 2);
                        }
                    }
                    kd.fs(kc, ap, as_i, as_p, bbuf + (size_t)jr * kc, nr, tile, nr, 1.0f, 0.0f);
                    tile_out_t(tile, nr, mm, nn, c + (size_t)jr * ldc + ir, ldc, alpha, bet, vec);
                }
            }
        }
    }
}

/* a B held as a matrix: pack_b over it */
typedef struct {
    int tb, ldb, vec; /* vec: pack with the AVX2 helpers */
    const float *b;
} matrix_b_t;

static void pack_matrix_b(const void *ctx, int p0, int kc, long j0, int nc, int nr, float *dst) {
    const matrix_b_t *mb = ctx;
    pack_b(mb->tb, mb->b, mb->ldb, p0, kc, (int)j0, nc, nr, dst, mb->vec);
}

void sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
           int ldb, float beta, float *c, int ldc) {
    if (m > 0 && n > 0 && k > 0 && m <= __atomic_load_n(&small_m_max, __ATOMIC_RELAXED)) {
        small_m(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    matrix_b_t mb = {trans_b, ldb, sgemm_isa() != SGEMM_C, b};
    driver(trans_a, m, n, k, alpha, a, lda, NULL, pack_matrix_b, &mb, 0, beta, c, ldc);
}

void sgemm_pb(int trans_a, int m, int n, int k, float alpha, const float *a, int lda, sgemm_pack_b_fn pack,
              const void *ctx, long j_off, float beta, float *c, int ldc) {
    driver(trans_a, m, n, k, alpha, a, lda, NULL, pack, ctx, j_off, beta, c, ldc);
}

/* ---- op(A) packed once for several calls ------------------------------------------------- *
 * The chunk of k from pc (kc columns) of all m rows at a_packed + pc * m_pad, m_pad = m rounded
 * up to MR, in pack_a's panels: the driver's block of rows from ic is at + ic * kc, where it
 * would otherwise have packed the same floats into its own buffer. */

size_t sgemm_packed_a_floats(int m, int k) {
    return (size_t)(m + MAX_MR - 1) * (size_t)(k > 0 ? k : 0);
}

float *sgemm_a_buffer(size_t floats) {
    return thread_buffer(&abuf_key, floats);
}

void sgemm_pack_a(int trans_a, int m, int k, const float *a, int lda, int c0, int c1, float *a_packed) {
    const sgemm_isa_t isa = sgemm_isa();
    const int mr = kernels[isa].mr;
    const size_t m_pad = packed_rows(m, mr);
    for (int ch = c0; ch < c1 && ch * SGEMM_KC < k; ch++) {
        int pc = ch * SGEMM_KC, kc = k - pc < SGEMM_KC ? k - pc : SGEMM_KC;
        pack_a(trans_a, a, lda, 0, m, pc, kc, mr, a_packed + (size_t)pc * m_pad, isa != SGEMM_C);
    }
}

int sgemm_a_chunks(int k) {
    return k > 0 ? (k + SGEMM_KC - 1) / SGEMM_KC : 0;
}

void sgemm_pb_packed_a(int m, int n, int k, float alpha, const float *a_packed, sgemm_pack_b_fn pack,
                       const void *ctx, long j_off, float beta, float *c, int ldc) {
    driver(0, m, n, k, alpha, NULL, 0, a_packed, pack, ctx, j_off, beta, c, ldc);
}
