/* conv.c: the CPU backend's convolution operations (lib/backend/backend_ops.h: im2col,
 * col2im, shiftsum, shiftscatter, to_cmajor, from_cmajor; the layers are lib/nn/layer_conv.c
 * and layer_convT.c): the column matrix and its adjoint, the two shifted sums of the
 * few-output-channel convolution, channel-major transposes. kernels/conv.cu computes the same
 * on a GPU.
 *
 * Each loop is a function over one independent output (a row of a column matrix, an image
 * plane, a channel) calling conv_math.h's index arithmetic, and a driver that splits the
 * outputs over the backend's threads; each output is computed by one thread in a fixed order,
 * so results never depend on the thread count. */
#include <string.h>

#include "lib/base/common.h"
#include "cpu_ops.h"
#include "lib/backend/conv_math.h"
#include "sgemm.h"

/* below this many floats written, a loop runs in the calling thread */
#define PAR_MIN 32768L

typedef struct {
    const conv_geom_t *g;
    int o_ch, nb;
    long ld;      /* columns of the matrix operand: nb * positions */
    float *dst;
    const float *src, *bias;
} conv_job_t;

static void run(backend_t *be, long items, long floats, void (*fn)(void *, long, long), void *job) {
    if (items > 1 && floats >= PAR_MIN) cpu_parallel_for(be, items, fn, job);
    else fn(job, 0, items);
}

/* the tap's grid range [*lo, *hi) along one axis, empty as lo == hi */
static void tap_range(int t, int s, int p, int in, int n_out, int *lo, int *hi) {
    *lo = conv_tap_lo(t, s, p);
    *hi = conv_tap_hi(t, s, p, in, n_out);
    if (*lo > n_out) *lo = n_out;
    if (*hi < *lo) *hi = *lo;
}

/* ---- phases of strided rows -------------------------------------------------------------- *
 * With a horizontal stride sw > 1 a tap reads (im2col) or writes (col2im) every sw-th element of
 * an image row. Split once into its sw phases (x = j*sw + r), each row becomes sw contiguous
 * runs, and every tap copies or adds a contiguous run (which vectorizes) instead of striding.
 * A plane's phases live in a buffer on the stack: buf[(y*sw + r)*len + j], len = ceil(w / sw);
 * planes larger than PHASE_MAX floats take the strided loops. */
#define PHASE_MAX 8192

static long phase_size(const conv_geom_t *g) { return (long)g->h * g->sw * conv_phase_len(g->w, g->sw); }

/* buf = the phases of plane (h x w) */
static void phase_split(const conv_geom_t *g, float *buf, const float *plane) {
    int len = conv_phase_len(g->w, g->sw);
    for (int y = 0; y < g->h; y++)
        for (int r = 0; r < g->sw; r++) {
            float *d = buf + ((long)y * g->sw + r) * len;
            const float *s = plane + (long)y * g->w + r;
            for (int j = 0; r + j * g->sw < g->w; j++) d[j] = s[(long)j * g->sw];
        }
}

/* plane (h x w) = the phases in buf put back in place */
static void phase_join(const conv_geom_t *g, float *plane, const float *buf) {
    int len = conv_phase_len(g->w, g->sw);
    for (int y = 0; y < g->h; y++)
        for (int r = 0; r < g->sw; r++) {
            const float *s = buf + ((long)y * g->sw + r) * len;
            float *d = plane + (long)y * g->w + r;
            for (int j = 0; r + j * g->sw < g->w; j++) d[(long)j * g->sw] = s[j];
        }
}

/* ---- im2col ---------------------------------------------------------------------------- */

/* The kh*kw rows of the column matrix that one channel plane (h x w) of one sample gives: row
 * (ty, tx) at dst + (ty*kw + tx)*ld, gh*gw values each. ph: the plane's phases (stride > 1) or
 * NULL (then the strided reads). */
static void im2col_plane(const conv_geom_t *g, float *dst, long ld, const float *plane, const float *ph) {
    int len = conv_phase_len(g->w, g->sw);
    for (int ty = 0; ty < g->kh; ty++) {
        int ylo, yhi;
        tap_range(ty, g->sh, g->ph, g->h, g->gh, &ylo, &yhi);
        for (int tx = 0; tx < g->kw; tx++) {
            float *row = dst + (long)(ty * g->kw + tx) * ld;
            int xlo, xhi, r = conv_tap_phase(tx, g->sw, g->pw), shift = conv_tap_shift(tx, g->sw, g->pw);
            tap_range(tx, g->sw, g->pw, g->w, g->gw, &xlo, &xhi);
            for (int oy = 0; oy < g->gh; oy++) {
                float *d = row + (long)oy * g->gw;
                if (oy < ylo || oy >= yhi) {
                    memset(d, 0, sizeof(float) * (size_t)g->gw);
                    continue;
                }
                int y = conv_src(oy, ty, g->sh, g->ph);
                for (int ox = 0; ox < xlo; ox++) d[ox] = 0.0f;
                if (g->sw == 1 || ph) {
                    const float *s = g->sw == 1 ? plane + (long)y * g->w + (tx - g->pw)
                                                : ph + ((long)y * g->sw + r) * len + shift;
                    for (int ox = xlo; ox < xhi; ox++) d[ox] = s[ox];
                } else {
                    const float *srow = plane + (long)y * g->w;
                    for (int ox = xlo; ox < xhi; ox++) d[ox] = srow[conv_src(ox, tx, g->sw, g->pw)];
                }
                for (int ox = xhi; ox < g->gw; ox++) d[ox] = 0.0f;
            }
        }
    }
}

/* items: (channel, sample) pairs */
static void im2col_items(void *arg, long i0, long i1) {
    const conv_job_t *j = arg;
    const conv_geom_t *g = j->g;
    long G = (long)g->gh * g->gw, kk = (long)g->kh * g->kw, HW = (long)g->h * g->w;
    float buf[PHASE_MAX];
    int split = g->sw > 1 && phase_size(g) <= PHASE_MAX;
    for (long i = i0; i < i1; i++) {
        int ch = (int)(i / j->nb), b = (int)(i % j->nb);
        const float *plane = j->src + ((long)b * g->c + ch) * HW;
        if (split) phase_split(g, buf, plane);
        im2col_plane(g, j->dst + ch * kk * j->ld + b * G, j->ld, plane, split ? buf : NULL);
    }
}

void cpu_im2col(backend_t *be, const conv_geom_t *g, float *col, const float *img, int nb) {
    long G = (long)g->gh * g->gw, planes = (long)g->c * nb;
    conv_job_t j = {g, 0, nb, nb * G, col, img, NULL};
    run(be, planes, planes * g->kh * g->kw * G, im2col_items, &j);
}

/* ---- the column matrix read in place: our sgemm's B panels straight from the image ------ *
 * cpu_pack_cols (cpu_ops.h) writes what im2col then sgemm's packing of the matrix would (the
 * same values, zeros included), run by run along grid rows, so nothing col-sized is written. */

/* one row r = (ch, ty, tx) of the column matrix */
typedef struct {
    const float *plane; /* channel ch of sample 0 */
    long bs;            /* floats between samples */
    int ty, tx, ylo, yhi, xlo, xhi;
} col_row_t;

static col_row_t col_row(const conv_cols_t *v, long r) {
    const conv_geom_t *g = v->g;
    long kk = (long)g->kh * g->kw, HW = (long)g->h * g->w;
    int t = (int)(r % kk);
    col_row_t w = {v->img + (r / kk) * (v->cs ? v->cs : HW), v->cs ? v->bs : g->c * HW, t / g->kw, t % g->kw,
                   0, 0, 0, 0};
    tap_range(w.ty, g->sh, g->ph, g->h, g->gh, &w.ylo, &w.yhi);
    tap_range(w.tx, g->sw, g->pw, g->w, g->gw, &w.xlo, &w.xhi);
    return w;
}

/* dd[(x - ox) * ds] = col[row, column (sample b, grid oy, x)] for x in [ox, e) */
static inline void col_seg(const conv_geom_t *g, const col_row_t *w, int b, int oy, int ox, int e, float *dd,
                           long ds) {
    int x = ox;
    if (oy >= w->ylo && oy < w->yhi) {
        const float *s = w->plane + (long)b * w->bs + (long)conv_src(oy, w->ty, g->sh, g->ph) * g->w;
        int a = ox > w->xlo ? ox : w->xlo, z = e < w->xhi ? e : w->xhi;
        for (; x < a && x < e; x++) dd[(x - ox) * ds] = 0.0f;
        if (z > x) {
            if (g->sw == 1 && ds == 1) memcpy(dd + (x - ox), s + x - g->pw + w->tx, sizeof(float) * (size_t)(z - x));
            else
                for (int q = x; q < z; q++) dd[(q - ox) * ds] = s[conv_src(q, w->tx, g->sw, g->pw)];
            x = z;
        }
    }
    for (; x < e; x++) dd[(x - ox) * ds] = 0.0f;
}

/* A run of consecutive columns of col within one grid row: (sample b, grid oy, ox .. ox+len),
 * at offset `at` of the run of columns being packed. */
typedef struct {
    int b, oy, ox, len, at;
} col_span_t;

/* The spans of columns c0 .. c0 + len - 1 (at most max of them; returns how many) */
static int col_spans(const conv_geom_t *g, long c0, int len, col_span_t *sp, int max) {
    long G = (long)g->gh * g->gw, pos = c0 % G;
    int b = (int)(c0 / G), oy = (int)(pos / g->gw), ox = (int)(pos % g->gw), n = 0;
    for (int i = 0; i < len && n < max;) {
        int run = g->gw - ox < len - i ? g->gw - ox : len - i;
        sp[n++] = (col_span_t){b, oy, ox, run, i};
        i += run;
        ox = 0;
        if (++oy == g->gh) {
            oy = 0;
            b++;
        }
    }
    return n;
}

#define PACK_ROWS 256 /* rows whose col_row_t a call keeps (sgemm's KC) */
#define PACK_SPANS 64 /* spans a call keeps: every NR <= 32 columns fit; k runs of KC, unless grid rows are short */

/* dd[i * ds] = col[row, column c0 + i] for i < len (spans made on the way) */
static void col_run(const conv_geom_t *g, const col_row_t *w, long c0, int len, float *dd, long ds) {
    col_span_t sp[PACK_SPANS];
    for (int i = 0; i < len;) {
        int ns = col_spans(g, c0 + i, len - i, sp, PACK_SPANS), done = 0;
        for (int q = 0; q < ns; q++) {
            col_seg(g, w, sp[q].b, sp[q].oy, sp[q].ox, sp[q].ox + sp[q].len, dd + (long)(i + sp[q].at) * ds, ds);
            done = sp[q].at + sp[q].len;
        }
        i += done;
    }
}

/* One panel of B = col: rows p0 .. p0+kc-1, the r (<= nr <= 32) columns from c0, row stride nr
 * in d (columns past r zero). Each column's image position for tap (0, 0) is worked out once
 * (iy, ix, and its offset); then every element of a row (ch, ty, tx) is one load from the
 * channel's plane, or a zero where the tap falls outside the image: with AVX-512 (panels of 32)
 * masked loads of the panel's runs of consecutive positions, or masked gathers where the runs are
 * many (offsets within int range); else a scalar loop. Masked-off lanes are never read (AVX-512
 * suppresses their faults), so neither form reads outside the image. */
#define PANEL_MAX 32
#define PANEL_RUNS 12 /* runs' parts in the two halves; more than this: gathers */

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* rows of a panel of 32 columns by masked gathers: lane j of row p loads base[off[j]] when
 * iy[j] + ty lies in [0, h) and ix[j] + tx in [0, w) (lanes past r have iy = -2^30); base +
 * ahead is prefetched (the next panels' columns) */
__attribute__((target("avx512f"))) static void panel_gather(const float *plane, long cs, int h, int w, int kh,
                                                           int kw, int p0, int kc, const int *iy, const int *ix,
                                                           const int *off, long ahead, float *d) {
    long kk = (long)kh * kw;
    int ch = (int)(p0 / kk), t = (int)(p0 % kk), ty = t / kw, tx = t % kw;
    __m512i vy0 = _mm512_loadu_si512(iy), vy1 = _mm512_loadu_si512(iy + 16), vx0 = _mm512_loadu_si512(ix),
            vx1 = _mm512_loadu_si512(ix + 16), vo0 = _mm512_loadu_si512(off), vo1 = _mm512_loadu_si512(off + 16),
            vh = _mm512_set1_epi32(h), vw = _mm512_set1_epi32(w);
    for (int p = 0; p < kc; p++) {
        const float *base = plane + ch * cs + (long)ty * w + tx;
        _mm_prefetch((const char *)(base + ahead), _MM_HINT_T0); /* as in panel_runs */
        __m512i ty_ = _mm512_set1_epi32(ty), tx_ = _mm512_set1_epi32(tx);
        __mmask16 m0 = _mm512_cmplt_epu32_mask(_mm512_add_epi32(vy0, ty_), vh) &
                       _mm512_cmplt_epu32_mask(_mm512_add_epi32(vx0, tx_), vw);
        __mmask16 m1 = _mm512_cmplt_epu32_mask(_mm512_add_epi32(vy1, ty_), vh) &
                       _mm512_cmplt_epu32_mask(_mm512_add_epi32(vx1, tx_), vw);
        __m512 z = _mm512_setzero_ps();
        _mm512_storeu_ps(d + (size_t)p * 32, _mm512_mask_i32gather_ps(z, m0, vo0, base, 4));
        _mm512_storeu_ps(d + (size_t)p * 32 + 16, _mm512_mask_i32gather_ps(z, m1, vo1, base, 4));
        if (++tx == kw) {
            tx = 0;
            if (++ty == kh) {
                ty = 0;
                ch++;
            }
        }
    }
}

/* The same rows when the panel's columns form few runs of consecutive image positions (stride 1
 * along x: a run per grid row it spans). A run's part in one half of the panel (16 lanes: parts
 * [0, nrun0) in the first, [nrun0, nrun) in the second; lanes rm[q]) reads base[rs[q] + lane]:
 * one zero-masked load each, joined by ORs (the parts' lanes are disjoint; a merging load would
 * wait for the one before). */
__attribute__((target("avx512f"))) static void panel_runs(const float *plane, long cs, int h, int w, int kh,
                                                         int kw, int p0, int kc, const int *iy, const int *ix,
                                                         int nrun0, int nrun, const long *rs, const unsigned *rm,
                                                         float *d) {
    long kk = (long)kh * kw;
    int ch = (int)(p0 / kk), t = (int)(p0 % kk), ty = t / kw, tx = t % kw;
    __m512i vy0 = _mm512_loadu_si512(iy), vy1 = _mm512_loadu_si512(iy + 16), vx0 = _mm512_loadu_si512(ix),
            vx1 = _mm512_loadu_si512(ix + 16), vh = _mm512_set1_epi32(h), vw = _mm512_set1_epi32(w);
    for (int p = 0; p < kc; p++) {
        const float *base = plane + ch * cs + (long)ty * w + tx;
        __m512i ty_ = _mm512_set1_epi32(ty), tx_ = _mm512_set1_epi32(tx);
        __mmask16 m0 = _mm512_cmplt_epu32_mask(_mm512_add_epi32(vy0, ty_), vh) &
                       _mm512_cmplt_epu32_mask(_mm512_add_epi32(vx0, tx_), vw),
                  m1 = _mm512_cmplt_epu32_mask(_mm512_add_epi32(vy1, ty_), vh) &
                       _mm512_cmplt_epu32_mask(_mm512_add_epi32(vx1, tx_), vw);
        /* the next panels' columns of this row: 64 streams (one per channel) outrun the prefetcher */
        _mm_prefetch((const char *)(base + rs[nrun - 1] + 64), _MM_HINT_T0);
        __m512i a0 = _mm512_setzero_si512(), a1 = a0; /* registers: an array here went through memory */
        int q = 0;
        for (; q < nrun0; q++)
            a0 = _mm512_or_si512(a0, _mm512_maskz_loadu_epi32((__mmask16)(m0 & rm[q]), base + rs[q]));
        for (; q < nrun; q++)
            a1 = _mm512_or_si512(a1, _mm512_maskz_loadu_epi32((__mmask16)(m1 & rm[q]), base + rs[q]));
        _mm512_storeu_si512(d + (size_t)p * 32, a0);
        _mm512_storeu_si512(d + (size_t)p * 32 + 16, a1);
        if (++tx == kw) {
            tx = 0;
            if (++ty == kh) {
                ty = 0;
                ch++;
            }
        }
    }
}

/* One panel of B = col^T (the weight gradients' product): its rows p0 .. p0+kc-1 are image
 * positions (sample, grid row, grid column), its r <= 32 columns from j0 are rows of col (channel,
 * tap). One panel row of 32 lanes at a time by masked gathers: lane j loads its channel's pixel
 * under tap (ty[j], tx[j]) at the position, or 0 where that falls outside the image or j >= r
 * (ty = -2^30 there). Offsets from the sample's start, within int range (the caller checks). */
__attribute__((target("avx512f"))) static void colT_panel_gather(const conv_cols_t *v, int p0, int kc, long j0,
                                                                int r, float *d) {
    const conv_geom_t *g = v->g;
    long kk = (long)g->kh * g->kw, HW = (long)g->h * g->w, cs = v->cs ? v->cs : HW,
         bs = v->cs ? v->bs : g->c * HW, G = (long)g->gh * g->gw;
    int off[PANEL_MAX], ty[PANEL_MAX], tx[PANEL_MAX];
    for (int j = 0; j < PANEL_MAX; j++) {
        long row = j0 + (j < r ? j : 0);
        int t = (int)(row % kk);
        ty[j] = j < r ? t / g->kw : -(1 << 30);
        tx[j] = t % g->kw;
        off[j] = (int)((row / kk) * cs + (long)(t / g->kw) * g->w + t % g->kw);
    }
    __m512i vty0 = _mm512_loadu_si512(ty), vty1 = _mm512_loadu_si512(ty + 16), vtx0 = _mm512_loadu_si512(tx),
            vtx1 = _mm512_loadu_si512(tx + 16), vo0 = _mm512_loadu_si512(off), vo1 = _mm512_loadu_si512(off + 16),
            vh = _mm512_set1_epi32(g->h), vw = _mm512_set1_epi32(g->w);
    int b = (int)(p0 / G), pos = (int)(p0 % G), oy = pos / g->gw, ox = pos % g->gw;
    for (int p = 0; p < kc; p++) {
        int iy = oy * g->sh - g->ph, ix = ox * g->sw - g->pw;
        const float *base = v->img + (long)b * bs;
        __m512i y = _mm512_set1_epi32(iy), x = _mm512_set1_epi32(ix), at = _mm512_set1_epi32(iy * g->w + ix);
        __mmask16 m0 = _mm512_cmplt_epu32_mask(_mm512_add_epi32(vty0, y), vh) &
                       _mm512_cmplt_epu32_mask(_mm512_add_epi32(vtx0, x), vw);
        __mmask16 m1 = _mm512_cmplt_epu32_mask(_mm512_add_epi32(vty1, y), vh) &
                       _mm512_cmplt_epu32_mask(_mm512_add_epi32(vtx1, x), vw);
        __m512 z = _mm512_setzero_ps();
        _mm512_storeu_ps(d + (size_t)p * 32, _mm512_mask_i32gather_ps(z, m0, _mm512_add_epi32(vo0, at), base, 4));
        _mm512_storeu_ps(d + (size_t)p * 32 + 16, _mm512_mask_i32gather_ps(z, m1, _mm512_add_epi32(vo1, at), base, 4));
        if (++ox == g->gw) {
            ox = 0;
            if (++oy == g->gh) {
                oy = 0;
                b++;
            }
        }
    }
}

/* 16 x 16 floats transposed in registers: r[j] lane i -> r[i] lane j (the 4-step unpack and
 * 128-bit shuffle network) */
__attribute__((target("avx512f"))) static inline void transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
    for (int j = 0; j < 16; j += 2) {
        t[j] = _mm512_unpacklo_ps(r[j], r[j + 1]); /* lane k: r_j[4k], r_j+1[4k], r_j[4k+1], r_j+1[4k+1] */
        t[j + 1] = _mm512_unpackhi_ps(r[j], r[j + 1]);
    }
    for (int g = 0; g < 16; g += 4) { /* u[g + m], lane k: rows g .. g+3 at column 4k + m */
        __m512d a = _mm512_castps_pd(t[g]), b = _mm512_castps_pd(t[g + 1]), c = _mm512_castps_pd(t[g + 2]),
                d = _mm512_castps_pd(t[g + 3]);
        u[g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        u[g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        u[g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        u[g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int m = 0; m < 4; m++) { /* column 4k + m: lane k of u[m], u[4 + m], u[8 + m], u[12 + m] */
        __m512 x0 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0x44), x1 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0xEE),
               y0 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0x44),
               y1 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0xEE);
        r[m] = _mm512_shuffle_f32x4(x0, y0, 0x88);
        r[4 + m] = _mm512_shuffle_f32x4(x0, y0, 0xDD);
        r[8 + m] = _mm512_shuffle_f32x4(x1, y1, 0x88);
        r[12 + m] = _mm512_shuffle_f32x4(x1, y1, 0xDD);
    }
}

/* colT_panel_gather's panel where the positions of a sample are consecutive in the image
 * (stride 1 and the grid as wide as the image: "same" convolutions, 1x1 kernels without
 * padding): lane j's pixel at position pos is base[pos + off_j], so 16 consecutive positions of
 * one sample are one masked load per lane (zero where the tap falls outside the image), and
 * the 32 x 16 block is transposed into 16 panel rows. The same floats as the gathers. */
__attribute__((target("avx512f"))) static void colT_panel_lin(const conv_cols_t *v, int p0, int kc, long j0, int r,
                                                             float *d) {
    const conv_geom_t *g = v->g;
    long kk = (long)g->kh * g->kw, HW = (long)g->h * g->w, cs = v->cs ? v->cs : HW,
         bs = v->cs ? v->bs : g->c * HW, G = (long)g->gh * g->gw;
    long off[PANEL_MAX];
    int ty[PANEL_MAX], tx[PANEL_MAX];
    for (int j = 0; j < r; j++) {
        long row = j0 + j;
        int t = (int)(row % kk);
        ty[j] = t / g->kw - g->ph;
        tx[j] = t % g->kw - g->pw;
        off[j] = (row / kk) * cs + (long)ty[j] * g->w + tx[j];
    }
    __m512i vh = _mm512_set1_epi32(g->h), vw = _mm512_set1_epi32(g->w);
    long b = p0 / G, pos = p0 % G;
    for (int p = 0; p < kc;) {
        int n = kc - p < 16 ? kc - p : 16;
        if (G - pos < n) n = (int)(G - pos); /* one sample's positions */
        int iy[16], ix[16];
        for (int i = 0; i < 16; i++) {
            long q = pos + (i < n ? i : 0);
            iy[i] = (int)(q / g->w);
            ix[i] = (int)(q % g->w);
        }
        __m512i y = _mm512_loadu_si512(iy), x = _mm512_loadu_si512(ix);
        __mmask16 live = (__mmask16)((1u << n) - 1);
        const float *base = v->img + b * bs + pos;
        __m512 lo[16], hi[16];
        for (int j = 0; j < PANEL_MAX; j++) {
            __m512 l = _mm512_setzero_ps();
            if (j < r) {
                __mmask16 m = live & _mm512_cmplt_epu32_mask(_mm512_add_epi32(y, _mm512_set1_epi32(ty[j])), vh) &
                              _mm512_cmplt_epu32_mask(_mm512_add_epi32(x, _mm512_set1_epi32(tx[j])), vw);
                l = _mm512_maskz_loadu_ps(m, base + off[j]);
            }
            if (j < 16) lo[j] = l;
            else hi[j - 16] = l;
        }
        transpose16(lo);
        transpose16(hi);
        for (int i = 0; i < n; i++) {
            _mm512_storeu_ps(d + (size_t)(p + i) * 32, lo[i]);
            _mm512_storeu_ps(d + (size_t)(p + i) * 32 + 16, hi[i]);
        }
        p += n;
        pos += n;
        if (pos == G) {
            pos = 0;
            b++;
        }
    }
}
#define HAVE_PANEL_GATHER 1
#else
#define HAVE_PANEL_GATHER 0
#endif

static void pack_cols_panel(const conv_cols_t *v, int p0, int kc, long c0, int r, int nr, float *d, int gather) {
    const conv_geom_t *g = v->g;
    long HW = (long)g->h * g->w, cs = v->cs ? v->cs : HW, bs = v->cs ? v->bs : g->c * HW, G = (long)g->gh * g->gw;
    int iy[PANEL_MAX], ix[PANEL_MAX], off[PANEL_MAX];
    long offl[PANEL_MAX];
    long b = c0 / G, pos = c0 % G;
    int oy = (int)(pos / g->gw), ox = (int)(pos % g->gw);
    for (int j = 0; j < nr; j++) {
        if (j >= r) { /* a column past the panel's: no tap reaches it, always zero */
            iy[j] = -(1 << 30), ix[j] = 0, off[j] = 0, offl[j] = 0;
            continue;
        }
        iy[j] = conv_src(oy, 0, g->sh, g->ph);
        ix[j] = conv_src(ox, 0, g->sw, g->pw);
        offl[j] = b * bs + (long)iy[j] * g->w + ix[j];
        off[j] = (int)offl[j];
        if (++ox == g->gw) {
            ox = 0;
            if (++oy == g->gh) {
                oy = 0;
                b++;
            }
        }
    }
#if HAVE_PANEL_GATHER
    if (gather) {
        long rs[PANEL_RUNS];
        unsigned rm[PANEL_RUNS];
        int nrun = 0, nrun0 = 0;
        for (int j = 0; j < r && nrun <= PANEL_RUNS; j++) { /* a new part at a jump or a new half */
            if (j == 0 || j == 16 || offl[j] != offl[j - 1] + 1) {
                if (nrun == PANEL_RUNS) {
                    nrun++;
                    break;
                }
                rs[nrun] = offl[j] - j % 16;
                rm[nrun++] = 0;
            }
            rm[nrun - 1] |= 1u << j % 16;
            if (j < 16) nrun0 = nrun;
        }
        if (nrun <= PANEL_RUNS)
            panel_runs(v->img, cs, g->h, g->w, g->kh, g->kw, p0, kc, iy, ix, nrun0, nrun, rs, rm, d);
        else panel_gather(v->img, cs, g->h, g->w, g->kh, g->kw, p0, kc, iy, ix, off, offl[r - 1] + 64L * g->sw, d);
        return;
    }
#else
    (void)gather;
    (void)off;
#endif
    long kk = (long)g->kh * g->kw;
    int ch = (int)(p0 / kk), t = (int)(p0 % kk), ty = t / g->kw, tx = t % g->kw;
    for (int p = 0; p < kc; p++) {
        const float *base = v->img + ch * cs + (long)ty * g->w + tx;
        float *dp = d + (size_t)p * nr;
        for (int j = 0; j < nr; j++)
            dp[j] = (unsigned)(iy[j] + ty) < (unsigned)g->h && (unsigned)(ix[j] + tx) < (unsigned)g->w ? base[offl[j]]
                                                                                                      : 0.0f;
        if (++tx == g->kw) {
            tx = 0;
            if (++ty == g->kh) {
                ty = 0;
                ch++;
            }
        }
    }
}

void cpu_pack_cols(const void *ctx, int p0, int kc, long j0, int nc, int nr, float *dst) {
    const conv_cols_t *v = ctx;
    const conv_geom_t *g = v->g;
    if (!v->trans) { /* B = col: row p0 + p, columns j0 + jr .. of each panel */
        long HW = (long)g->h * g->w, bs = v->cs ? v->bs : g->c * HW;
        /* gathers: AVX-512's panels of 32, offsets (sample, row, column) within int range */
        int gather = nr == 32 && sgemm_isa() == SGEMM_AVX512 &&
                     (long)v->nb * bs + (long)(g->h + g->ph + g->kh) * g->w < (1L << 30) &&
                     (long)g->ph * g->w + g->pw < (1L << 30);
        for (int jr = 0; jr < nc; jr += nr) {
            int r = nc - jr < nr ? nc - jr : nr;
            pack_cols_panel(v, p0, kc, j0 + jr, r, nr, dst + (size_t)jr * kc, gather);
        }
    } else { /* B = col^T: column j of B is row j of col, rows p0 .. of B its columns */
#if HAVE_PANEL_GATHER
        long HW = (long)g->h * g->w, cs = v->cs ? v->cs : HW;
        if (nr == PANEL_MAX && sgemm_isa() == SGEMM_AVX512 &&
            (long)g->c * cs + (long)(2 * g->h + g->kh) * g->w + g->w < (1L << 30)) {
            int lin = g->sh == 1 && g->sw == 1 && g->gw == g->w;
            for (int jr = 0; jr < nc; jr += nr) {
                int r = nc - jr < nr ? nc - jr : nr;
                if (lin) colT_panel_lin(v, p0, kc, j0 + jr, r, dst + (size_t)jr * kc);
                else colT_panel_gather(v, p0, kc, j0 + jr, r, dst + (size_t)jr * kc);
            }
            return;
        }
#endif
        col_span_t sp[PACK_SPANS];
        int ns = col_spans(g, p0, kc, sp, PACK_SPANS);
        if (sp[ns - 1].at + sp[ns - 1].len < kc) ns = 0; /* short grid rows: col_run makes them row by row */
        for (int jr = 0; jr < nc; jr += nr) {
            int r = nc - jr < nr ? nc - jr : nr;
            float *d = dst + (size_t)jr * kc;
            for (int j = 0; j < r; j++) {
                col_row_t w = col_row(v, j0 + jr + j);
                if (ns)
                    for (int q = 0; q < ns; q++)
                        col_seg(g, &w, sp[q].b, sp[q].oy, sp[q].ox, sp[q].ox + sp[q].len, d + (size_t)sp[q].at * nr + j,
                                nr);
                else
                    col_run(g, &w, p0, kc, d + j, nr);
            }
            for (int p = 0; p < kc; p++)
                for (int j = r; j < nr; j++) d[(size_t)p * nr + j] = 0.0f;
        }
    }
}

/* ---- the scatter side by output phases (cpu_ops.h conv_phase_t; backend_cpu.c gemm_col2im) -- */

/* One axis of phase r (stride s, padding p, kernel k, image length n, grid length gn): *taps
 * (those t = r + s*u), and the phase positions [*lo, *hi) computed: image coordinate Y*s + r - p
 * inside [0, n) and some tap's grid position Y - u inside [0, gn). */
static void phase_axis(int r, int k, int s, int p, int n, int gn, int *taps, int *lo, int *hi) {
    *taps = r < k ? (k - r + s - 1) / s : 0;
    *lo = p - r <= 0 ? 0 : (p - r + s - 1) / s;
    int last = n - 1 + p - r; /* the last Y with Y*s + r - p <= n - 1, when last >= 0 */
    *hi = last < 0 ? 0 : last / s + 1;
    if (*hi > gn + *taps - 1) *hi = gn + *taps - 1;
    if (!*taps || *hi < *lo) *hi = *lo;
}

long cpu_conv_phase(const conv_geom_t *g, int k, int q, conv_phase_t *p) {
    int ry = q / g->sw, rx = q % g->sw, ny, nx, ylo, yhi, xlo, xhi;
    phase_axis(ry, g->kh, g->sh, g->ph, g->h, g->gh, &ny, &ylo, &yhi);
    phase_axis(rx, g->kw, g->sw, g->pw, g->w, g->gw, &nx, &xlo, &xhi);
    /* virtual tap u' = taps - 1 - u reads grid row Y - u = Y' + lo - (taps - 1) + u': padding taps - 1 - lo */
    p->vg = (conv_geom_t){k, g->gh, g->gw, yhi - ylo, xhi - xlo, ny, nx, 1, 1, ny - 1 - ylo, nx - 1 - xlo};
    p->y0 = ylo * g->sh + ry - g->ph;
    p->x0 = xlo * g->sw + rx - g->pw;
    p->kq = (long)k * ny * nx;
    p->area = (long)(yhi - ylo) * (xhi - xlo);
    return p->area;
}

typedef struct {
    const conv_geom_t *g;
    int k;
    long rs, is; /* op(A)[r, i] at a[r*rs + i*is] */
    const float *a;
    float *wa;
} phase_w_job_t;

/* items: image-side channels; each writes its row of every phase's Wq */
CPU_VEC_CLONES static void phase_weights_items(void *arg, long c0, long c1) {
    const phase_w_job_t *j = arg;
    const conv_geom_t *g = j->g;
    long kk = (long)g->kh * g->kw;
    for (long ch = c0; ch < c1; ch++) {
        float *d = j->wa;
        for (int q = 0; q < g->sh * g->sw; q++) {
            conv_phase_t p;
            cpu_conv_phase(g, j->k, q, &p);
            float *row = d + ch * p.kq;
            int ny = p.vg.kh, nx = p.vg.kw, ry = q / g->sw, rx = q % g->sw;
            for (int i = 0; i < j->k; i++)
                for (int u = 0; u < ny; u++)
                    for (int v = 0; v < nx; v++) {
                        long tap = (long)(ry + g->sh * (ny - 1 - u)) * g->kw + rx + g->sw * (nx - 1 - v);
                        *row++ = j->a[(ch * kk + tap) * j->rs + i * j->is];
                    }
            d += (long)g->c * p.kq;
        }
    }
}

void cpu_phase_weights(backend_t *be, const conv_geom_t *g, int k, int trans_a, const float *a, int lda, float *wa) {
    phase_w_job_t j = {g, k, trans_a ? 1 : lda, trans_a ? lda : 1, a, wa};
    long floats = (long)g->c * g->kh * g->kw * k;
    if (g->c > 1 && floats >= PAR_MIN) cpu_parallel_for(be, g->c, phase_weights_items, &j);
    else phase_weights_items(&j, 0, g->c);
}

/* Strides 2 x 2 where the four phases tile the image (each a full quarter: rows ry0 + 2y and
 * columns cx0 + 2x for the phase pair of row parity ry): the join writes each output row once,
 * interleaving the row's two phases (stores GCC vectorizes), instead of the bias fill and
 * four strided passes. The same sums: every pixel is its phase value plus the bias, or the
 * value alone. Returns 0 where the phases do not tile the image that way. */
typedef struct {
    long off[4]; /* phase (ry, rx)'s C in cb, at row ry*2 + rx: offset of channel 0, sample 0 */
    int y0[2];   /* the output row of each row phase's first row */
    int even[2]; /* for row phase ry: which rx (0 or 1) writes the even columns */
} phase_pairs_t;

static int phase_pairs(const conv_geom_t *g, int nb, phase_pairs_t *pp) {
    if (g->sh != 2 || g->sw != 2 || g->h % 2 || g->w % 2) return 0;
    long at = 0;
    int rows_seen = 0;
    for (int q = 0; q < 4; q++) {
        conv_phase_t p;
        if (!cpu_conv_phase(g, 0, q, &p)) return 0;
        if (p.vg.gh != g->h / 2 || p.vg.gw != g->w / 2 || p.y0 < 0 || p.y0 > 1 || p.x0 < 0 || p.x0 > 1) return 0;
        int ry = q / 2, rx = q % 2;
        pp->off[q] = at;
        at += (long)g->c * nb * p.area;
        if (rx == 0) {
            pp->y0[ry] = p.y0;
            pp->even[ry] = p.x0 == 0 ? 0 : 1;
            rows_seen |= 1 << p.y0;
        } else if (p.y0 != pp->y0[ry] || p.x0 == (pp->even[ry] == 0 ? 0 : 1)) {
            return 0; /* the pair must share its rows and split the columns */
        }
    }
    return rows_seen == 3;
}

typedef struct {
    const conv_job_t *j;
    phase_pairs_t pp;
} phase_pair_job_t;

CPU_VEC_CLONES static void phase_pair_items(void *arg, long i0, long i1) {
    const phase_pair_job_t *pj = arg;
    const conv_job_t *j = pj->j;
    const conv_geom_t *g = j->g;
    long HW = (long)g->h * g->w, area = HW / 4;
    int hw = g->w / 2;
    for (long i = i0; i < i1; i++) {
        int b = (int)(i / g->c), ch = (int)(i % g->c);
        float *plane = j->dst + i * HW;
        for (int ry = 0; ry < 2; ry++) {
            long at = ((long)ch * j->nb + b) * area;
            const float *ev = j->src + pj->pp.off[ry * 2 + pj->pp.even[ry]] + at;
            const float *od = j->src + pj->pp.off[ry * 2 + 1 - pj->pp.even[ry]] + at;
            for (int y = 0; y < g->h / 2; y++) {
                float *restrict d = plane + (long)(pj->pp.y0[ry] + 2 * y) * g->w;
                const float *restrict e = ev + (long)y * hw, *restrict o = od + (long)y * hw;
                if (j->bias) {
                    float bias = j->bias[ch];
                    for (int x = 0; x < hw; x++) {
                        d[2 * x] = e[x] + bias;
                        d[2 * x + 1] = o[x] + bias;
                    }
                } else {
                    for (int x = 0; x < hw; x++) {
                        d[2 * x] = e[x];
                        d[2 * x + 1] = o[x];
                    }
                }
            }
        }
    }
}

/* items: (sample, channel) planes: bias, then each phase's computed pixels */
CPU_VEC_CLONES static void phase_join_items(void *arg, long i0, long i1) {
    const conv_job_t *j = arg;
    const conv_geom_t *g = j->g;
    long HW = (long)g->h * g->w;
    for (long i = i0; i < i1; i++) {
        int b = (int)(i / g->c), ch = (int)(i % g->c);
        float bias = j->bias ? j->bias[ch] : 0.0f, *plane = j->dst + i * HW;
        for (long t = 0; t < HW; t++) plane[t] = bias;
        const float *cq = j->src;
        for (int q = 0; q < g->sh * g->sw; q++) {
            conv_phase_t p;
            if (!cpu_conv_phase(g, 0, q, &p)) continue;
            const float *s = cq + ((long)ch * j->nb + b) * p.area;
            for (int y = 0; y < p.vg.gh; y++) {
                float *d = plane + (long)(p.y0 + y * g->sh) * g->w + p.x0;
                const float *sr = s + (long)y * p.vg.gw;
                if (j->bias)
                    for (int x = 0; x < p.vg.gw; x++) d[(long)x * g->sw] = sr[x] + bias;
                else
                    for (int x = 0; x < p.vg.gw; x++) d[(long)x * g->sw] = sr[x];
            }
            cq += (long)g->c * j->nb * p.area;
        }
    }
}

void cpu_phase_join(backend_t *be, const conv_geom_t *g, float *img, const float *cb, const float *bias, int nb) {
    long planes = (long)nb * g->c;
    conv_job_t j = {g, 0, nb, 0, img, cb, bias};
    phase_pair_job_t pj = {&j, {{0}, {0}, {0}}};
    int paired = phase_pairs(g, nb, &pj.pp);
    run(be, planes, planes * g->h * g->w, paired ? phase_pair_items : phase_join_items, paired ? (void *)&pj : &j);
}

/* ---- col2im ---------------------------------------------------------------------------- */

/* Adds one tap's column row (crow: the sample's gh*gw entries) into the image of channel ch:
 * into the plane itself (stride 1, or ph == NULL: strided adds) or into its phases ph. */
static void col2im_tap(const conv_geom_t *g, float *plane, float *ph, const float *crow, int ty, int tx) {
    int ylo, yhi, xlo, xhi, len = conv_phase_len(g->w, g->sw);
    int r = conv_tap_phase(tx, g->sw, g->pw), shift = conv_tap_shift(tx, g->sw, g->pw);
    tap_range(ty, g->sh, g->ph, g->h, g->gh, &ylo, &yhi);
    tap_range(tx, g->sw, g->pw, g->w, g->gw, &xlo, &xhi);
    for (int oy = ylo; oy < yhi; oy++) {
        int y = conv_src(oy, ty, g->sh, g->ph);
        const float *c = crow + (long)oy * g->gw;
        if (g->sw == 1 || ph) {
            float *p = g->sw == 1 ? plane + (long)y * g->w + (tx - g->pw) : ph + ((long)y * g->sw + r) * len + shift;
            for (int ox = xlo; ox < xhi; ox++) p[ox] += c[ox];
        } else {
            float *prow = plane + (long)y * g->w;
            for (int ox = xlo; ox < xhi; ox++) prow[conv_src(ox, tx, g->sw, g->pw)] += c[ox];
        }
    }
}

/* One image plane (h x w) of channel ch: bias, plus every column entry of its rows at the
 * position it was read from, taps in order (so each pixel sums in the same order however the
 * plane is laid out). col points at the sample's first column; buf: room for the phases. */
static void col2im_plane(const conv_geom_t *g, float *plane, const float *col, long ld, int ch, float bias,
                         float *buf) {
    int split = g->sw > 1 && buf;
    long n = split ? phase_size(g) : (long)g->h * g->w;
    float *acc = split ? buf : plane;
    for (long k = 0; k < n; k++) acc[k] = bias;
    for (int ty = 0; ty < g->kh; ty++)
        for (int tx = 0; tx < g->kw; tx++)
            col2im_tap(g, plane, split ? buf : NULL, col + ((long)(ch * g->kh + ty) * g->kw + tx) * ld, ty, tx);
    if (split) phase_join(g, plane, buf);
}

/* items: (sample, channel) planes */
static void col2im_items(void *arg, long i0, long i1) {
    const conv_job_t *j = arg;
    const conv_geom_t *g = j->g;
    long G = (long)g->gh * g->gw, HW = (long)g->h * g->w;
    float buf[PHASE_MAX];
    int split = g->sw > 1 && phase_size(g) <= PHASE_MAX;
    for (long i = i0; i < i1; i++) {
        int b = (int)(i / g->c), ch = (int)(i % g->c);
        col2im_plane(g, j->dst + i * HW, j->src + b * G, j->ld, ch, j->bias ? j->bias[ch] : 0.0f, split ? buf : NULL);
    }
}

void cpu_col2im(backend_t *be, const conv_geom_t *g, float *img, const float *col, const float *bias, int nb) {
    long G = (long)g->gh * g->gw, planes = (long)nb * g->c;
    conv_job_t j = {g, 0, nb, nb * G, img, col, bias};
    run(be, planes, planes * g->kh * g->kw * G, col2im_items, &j);
}

/* ---- kn2row: shifted sums over image-side rows ----------------------------------------- */

/* One output plane (gh x gw) of channel o for one sample: bias plus, tap by tap, the z row
 * of (o, tap) read at the image positions the grid positions see. z points at the sample's
 * first column. */
static void shiftsum_plane(const conv_geom_t *g, float *out, const float *z, long ld, int o, float bias) {
    long G = (long)g->gh * g->gw;
    for (long k = 0; k < G; k++) out[k] = bias;
    for (int ty = 0; ty < g->kh; ty++)
        for (int tx = 0; tx < g->kw; tx++) {
            const float *row = z + ((long)(o * g->kh + ty) * g->kw + tx) * ld;
            int ylo, yhi, xlo, xhi;
            tap_range(ty, g->sh, g->ph, g->h, g->gh, &ylo, &yhi);
            tap_range(tx, g->sw, g->pw, g->w, g->gw, &xlo, &xhi);
            for (int oy = ylo; oy < yhi; oy++) {
                const float *srow = row + (long)conv_src(oy, ty, g->sh, g->ph) * g->w;
                float *orow = out + (long)oy * g->gw;
                for (int ox = xlo; ox < xhi; ox++) orow[ox] += srow[conv_src(ox, tx, g->sw, g->pw)];
            }
        }
}

static void shiftsum_items(void *arg, long i0, long i1) {
    const conv_job_t *j = arg;
    const conv_geom_t *g = j->g;
    long G = (long)g->gh * g->gw, HW = (long)g->h * g->w;
    for (long i = i0; i < i1; i++) {
        int b = (int)(i / j->o_ch), o = (int)(i % j->o_ch);
        shiftsum_plane(g, j->dst + i * G, j->src + b * HW, j->ld, o, j->bias ? j->bias[o] : 0.0f);
    }
}

void cpu_shiftsum(backend_t *be, const conv_geom_t *g, int o_ch, float *y, const float *z, const float *bias,
                  int nb) {
    long G = (long)g->gh * g->gw, HW = (long)g->h * g->w, planes = (long)nb * o_ch;
    conv_job_t j = {g, o_ch, nb, nb * HW, y, z, bias};
    run(be, planes, planes * g->kh * g->kw * G, shiftsum_items, &j);
}

/* One row of dz for one sample: dy's plane (gh x gw) of channel o placed at the image
 * positions the grid reads at tap (ty, tx); zero elsewhere. */
static void shiftscatter_row(const conv_geom_t *g, float *dst, const float *dyp, int ty, int tx) {
    int ylo, yhi, xlo, xhi;
    tap_range(ty, g->sh, g->ph, g->h, g->gh, &ylo, &yhi);
    tap_range(tx, g->sw, g->pw, g->w, g->gw, &xlo, &xhi);
    memset(dst, 0, sizeof(float) * (size_t)g->h * (size_t)g->w);
    for (int oy = ylo; oy < yhi; oy++) {
        float *drow = dst + (long)conv_src(oy, ty, g->sh, g->ph) * g->w;
        const float *grow = dyp + (long)oy * g->gw;
        for (int ox = xlo; ox < xhi; ox++) drow[conv_src(ox, tx, g->sw, g->pw)] = grow[ox];
    }
}

/* items: (row, sample) pairs in row-major order */
CPU_VEC_CLONES static void shiftscatter_items(void *arg, long i0, long i1) {
    const conv_job_t *j = arg;
    const conv_geom_t *g = j->g;
    long G = (long)g->gh * g->gw, HW = (long)g->h * g->w, kk = (long)g->kh * g->kw;
    for (long i = i0; i < i1; i++) {
        long r = i / j->nb;
        int b = (int)(i % j->nb);
        int o = (int)(r / kk), t = (int)(r % kk);
        shiftscatter_row(g, j->dst + r * j->ld + b * HW, j->src + ((long)b * j->o_ch + o) * G, t / g->kw, t % g->kw);
    }
}

void cpu_shiftscatter(backend_t *be, const conv_geom_t *g, int o_ch, float *dz, const float *dy, int nb) {
    long HW = (long)g->h * g->w, rows = (long)o_ch * g->kh * g->kw;
    conv_job_t j = {g, o_ch, nb, nb * HW, dz, dy, NULL};
    run(be, rows * nb, rows * nb * HW, shiftscatter_items, &j);
}

/* ---- channel-major transposes and the bias gradient ---------------------------------- */

typedef struct {
    float *dst;
    const float *src, *bias;
    int C, nb;
    long S;
    int accumulate;
} cm_job_t;

/* items: (channel, sample) in the order of dst */
static void to_cmajor_items(void *arg, long i0, long i1) {
    const cm_job_t *j = arg;
    for (long i = i0; i < i1; i++) {
        long c = i / j->nb, b = i % j->nb;
        memcpy(j->dst + i * j->S, j->src + (b * j->C + c) * j->S, sizeof(float) * (size_t)j->S);
    }
}

void cpu_to_cmajor(backend_t *be, float *dst, const float *src, int C, long S, int nb) {
    cm_job_t j = {dst, src, NULL, C, nb, S, 0};
    long items = (long)C * nb;
    if (items > 1 && items * S >= PAR_MIN) cpu_parallel_for(be, items, to_cmajor_items, &j);
    else to_cmajor_items(&j, 0, items);
}

/* items: (sample, channel) in the order of dst */
static void from_cmajor_items(void *arg, long i0, long i1) {
    const cm_job_t *j = arg;
    for (long i = i0; i < i1; i++) {
        long b = i / j->C, c = i % j->C;
        const float *s = j->src + (c * j->nb + b) * j->S;
        float *d = j->dst + i * j->S;
        if (j->accumulate) {
            for (long k = 0; k < j->S; k++) d[k] += s[k];
        } else if (j->bias) {
            float bc = j->bias[c];
            for (long k = 0; k < j->S; k++) d[k] = s[k] + bc;
        } else {
            memcpy(d, s, sizeof(float) * (size_t)j->S);
        }
    }
}

void cpu_from_cmajor(backend_t *be, float *dst, const float *src, const float *bias, int C, long S, int nb,
                     int accumulate) {
    cm_job_t j = {dst, src, bias, C, nb, S, accumulate};
    long items = (long)C * nb;
    if (items > 1 && items * S >= PAR_MIN) cpu_parallel_for(be, items, from_cmajor_items, &j);
    else from_cmajor_items(&j, 0, items);
}
