/* conv_loops.c: the CPU loops of the convolution layers (conv_loops.h). Each loop is a
 * function over one independent output (a row of a column matrix, an image plane, a channel)
 * calling conv_math.h's index arithmetic, and a driver that splits the outputs over the
 * backend's threads. */
#include <string.h>

#include "common.h"
#include "conv_loops.h"
#include "conv_math.h"

/* below this many floats written, a loop runs in the calling thread */
#define PAR_MIN 32768L

typedef struct {
    const conv_geom_t *g;
    int o_ch, nb;
    long ld;      /* columns of the matrix operand: nb * positions */
    float *dst;
    const float *src, *bias;
} conv_job_t;

static void run(backend_t *be, long items, long floats, void (*fn)(void *, long, long), conv_job_t *j) {
    if (items > 1 && floats >= PAR_MIN) cpu_parallel_for(be, items, fn, j);
    else fn(j, 0, items);
}

/* the tap's grid range [*lo, *hi) along one axis, empty as lo == hi */
static void tap_range(int t, int s, int p, int in, int n_out, int *lo, int *hi) {
    *lo = conv_tap_lo(t, s, p);
    *hi = conv_tap_hi(t, s, p, in, n_out);
    if (*lo > n_out) *lo = n_out;
    if (*hi < *lo) *hi = *lo;
}

/* ---- im2col ---------------------------------------------------------------------------- */

/* One row of the column matrix for one sample: dst (gh*gw) from plane (h x w) at tap (ty, tx). */
static void im2col_row(const conv_geom_t *g, float *dst, const float *plane, int ty, int tx) {
    int ylo, yhi, xlo, xhi;
    tap_range(ty, g->sh, g->ph, g->h, g->gh, &ylo, &yhi);
    tap_range(tx, g->sw, g->pw, g->w, g->gw, &xlo, &xhi);
    for (int oy = 0; oy < g->gh; oy++) {
        float *d = dst + (long)oy * g->gw;
        if (oy < ylo || oy >= yhi) {
            memset(d, 0, sizeof(float) * (size_t)g->gw);
            continue;
        }
        const float *srow = plane + (long)conv_src(oy, ty, g->sh, g->ph) * g->w;
        for (int ox = 0; ox < xlo; ox++) d[ox] = 0.0f;
        if (g->sw == 1) {
            const float *s = srow + conv_src(0, tx, 1, g->pw);
            for (int ox = xlo; ox < xhi; ox++) d[ox] = s[ox];
        } else {
            for (int ox = xlo; ox < xhi; ox++) d[ox] = srow[conv_src(ox, tx, g->sw, g->pw)];
        }
        for (int ox = xhi; ox < g->gw; ox++) d[ox] = 0.0f;
    }
}

/* items: (row, sample) pairs in row-major order, so consecutive items write consecutive memory */
static void im2col_items(void *arg, long i0, long i1) {
    const conv_job_t *j = arg;
    const conv_geom_t *g = j->g;
    long G = (long)g->gh * g->gw, kk = (long)g->kh * g->kw, HW = (long)g->h * g->w;
    for (long i = i0; i < i1; i++) {
        long r = i / j->nb;
        int b = (int)(i % j->nb);
        int ch = (int)(r / kk), t = (int)(r % kk);
        im2col_row(g, j->dst + r * j->ld + b * G, j->src + ((long)b * g->c + ch) * HW, t / g->kw, t % g->kw);
    }
}

void conv_im2col(backend_t *be, const conv_geom_t *g, float *col, const float *img, int nb) {
    long G = (long)g->gh * g->gw, rows = (long)g->c * g->kh * g->kw;
    conv_job_t j = {g, 0, nb, nb * G, col, img, NULL};
    run(be, rows * nb, rows * nb * G, im2col_items, &j);
}

/* ---- col2im ---------------------------------------------------------------------------- */

/* One image plane (h x w) of channel ch: bias, plus every column entry of its rows at the
 * position it was read from, taps in order. col points at the sample's first column. */
static void col2im_plane(const conv_geom_t *g, float *plane, const float *col, long ld, int ch, float bias) {
    long HW = (long)g->h * g->w;
    for (long k = 0; k < HW; k++) plane[k] = bias;
    for (int ty = 0; ty < g->kh; ty++)
        for (int tx = 0; tx < g->kw; tx++) {
            const float *row = col + ((long)(ch * g->kh + ty) * g->kw + tx) * ld;
            int ylo, yhi, xlo, xhi;
            tap_range(ty, g->sh, g->ph, g->h, g->gh, &ylo, &yhi);
            tap_range(tx, g->sw, g->pw, g->w, g->gw, &xlo, &xhi);
            for (int oy = ylo; oy < yhi; oy++) {
                float *prow = plane + (long)conv_src(oy, ty, g->sh, g->ph) * g->w;
                const float *crow = row + (long)oy * g->gw;
                if (g->sw == 1) {
                    float *p = prow + conv_src(0, tx, 1, g->pw);
                    for (int ox = xlo; ox < xhi; ox++) p[ox] += crow[ox];
                } else {
                    for (int ox = xlo; ox < xhi; ox++) prow[conv_src(ox, tx, g->sw, g->pw)] += crow[ox];
                }
            }
        }
}

/* items: (sample, channel) planes */
static void col2im_items(void *arg, long i0, long i1) {
    const conv_job_t *j = arg;
    const conv_geom_t *g = j->g;
    long G = (long)g->gh * g->gw, HW = (long)g->h * g->w;
    for (long i = i0; i < i1; i++) {
        int b = (int)(i / g->c), ch = (int)(i % g->c);
        col2im_plane(g, j->dst + i * HW, j->src + b * G, j->ld, ch, j->bias ? j->bias[ch] : 0.0f);
    }
}

void conv_col2im(backend_t *be, const conv_geom_t *g, float *img, const float *col, const float *bias, int nb) {
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

void conv_shiftsum(backend_t *be, const conv_geom_t *g, int o_ch, float *y, const float *z, const float *bias,
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
static void shiftscatter_items(void *arg, long i0, long i1) {
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

void conv_shiftscatter(backend_t *be, const conv_geom_t *g, int o_ch, float *dz, const float *dy, int nb) {
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

void conv_to_cmajor(backend_t *be, float *dst, const float *src, int C, long S, int nb) {
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

void conv_from_cmajor(backend_t *be, float *dst, const float *src, const float *bias, int C, long S, int nb,
                      int accumulate) {
    cm_job_t j = {dst, src, bias, C, nb, S, accumulate};
    long items = (long)C * nb;
    if (items > 1 && items * S >= PAR_MIN) cpu_parallel_for(be, items, from_cmajor_items, &j);
    else from_cmajor_items(&j, 0, items);
}
