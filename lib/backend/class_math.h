/* class_math.h: the arithmetic of the class-conditional operations (backend_ops.h, "class-
 * conditional layers"), written once for the CPU loops (lib/cpu/class.c) and the CUDA kernels
 * (kernels/class.cu). Each function computes one output element or one partial sum, so both
 * backends give the same bits and need no atomics.
 *
 * The order of the sums, in double, fixed by the sizes alone: a sum over positions (or over
 * the projection's features) is cut into chunks of CLASS_CHUNK consecutive terms; each chunk is
 * summed in order, and a sample's sum is its chunks' sums added in order. A parameter gradient
 * of class k is then the sum of its samples' sums in batch order. The CPU nests these loops;
 * the GPU runs a thread per (sample, element, chunk), then a thread per (class, element) that
 * adds the partials in the same order (class_sum_parts), so the bits are the same.
 *
 * Shapes: labels (B) int64 in [0, K); x (B, C, S); y of class_concat (B, C + E, S);
 * table (K, E) or (K, F); w, b of the per-class affine (K, C); h (B, F). */
#ifndef GT_CLASS_MATH_H
#define GT_CLASS_MATH_H

#include <stddef.h>
#include <stdint.h>

#include "lib/base/hd.h"

/* terms per chunk of a sample's sum */
enum { CLASS_CHUNK = 64 };

/* Chunks of a sum of n terms. */
GT_HD static inline long class_chunks(long n) { return (n + CLASS_CHUNK - 1) / CLASS_CHUNK; }

/* Chunk j's range [*lo, *hi) of n terms. */
GT_HD static inline void class_chunk_range(long n, long j, long *lo, long *hi) {
    *lo = j * CLASS_CHUNK;
    *hi = *lo + CLASS_CHUNK < n ? *lo + CLASS_CHUNK : n;
}

/* The sum over the samples b of class k, in batch order, of sample b's sum of its J chunk
 * partials: part holds W sums per (sample, element, chunk), element x of X, sum w. */
GT_HD static inline double class_sum_parts(const double *part, const int64_t *labels, int B, int k, long X, long x,
                                           long J, int W, int w) {
    double sum = 0;
    for (int b = 0; b < B; b++) {
        if (labels[b] != k) continue;
        const double *p = part + (((size_t)b * (size_t)X + (size_t)x) * (size_t)J) * (size_t)W + (size_t)w;
        double ps = 0;
        for (long j = 0; j < J; j++) ps += p[(size_t)j * (size_t)W];
        sum += ps;
    }
    return sum;
}

/* what class_concat puts in the E class channels */
enum { CLASS_CAT_TABLE = 0, CLASS_CAT_ONEHOT = 1, CLASS_CAT_ZERO = 2 };

/* Element (b, c, s) of y (B, C + E, S) of class_concat. The element functions take their
 * coordinates, not a flat index: the CPU's loops nest, the kernels split their index by
 * precomputed divisors (kernels/README.md, "Index arithmetic"). */
GT_HD static inline float class_concat_value(int kind, const float *x, const float *table, const int64_t *labels,
                                             int C, int E, long S, size_t b, long c, size_t s) {
    if (c < C) return x[(b * (size_t)C + (size_t)c) * (size_t)S + s];
    long e = c - C;
    if (kind == CLASS_CAT_TABLE) return table[(size_t)labels[b] * (size_t)E + (size_t)e];
    if (kind == CLASS_CAT_ONEHOT) return labels[b] == e ? 1.0f : 0.0f;
    return 0.0f;
}

/* Element (b, c, s) of dx (B, C, S): dy's element at the same sample, channel and position. */
GT_HD static inline float class_concat_dx(const float *dy, int C, int E, long S, size_t b, size_t c, size_t s) {
    return dy[(b * ((size_t)C + (size_t)E) + c) * (size_t)S + s];
}

/* Chunk j of sample b's sum of dy[b, C + e, s] over the positions s. */
GT_HD static inline double class_concat_dtable_chunk(const float *dy, int C, int E, long S, int b, int e, long j) {
    const float *row = dy + ((size_t)b * ((size_t)C + (size_t)E) + (size_t)C + (size_t)e) * (size_t)S;
    long lo, hi;
    class_chunk_range(S, j, &lo, &hi);
    double sum = 0;
    for (long s = lo; s < hi; s++) sum += row[s];
    return sum;
}

/* dtable[k, e]'s increment: the sum of dy[b, C + e, s] over the samples b of class k and s
 * (the CPU's loop; the GPU adds the same chunks with class_sum_parts). */
GT_HD static inline double class_concat_dtable(const float *dy, const int64_t *labels, int B, int C, int E, long S,
                                               int k, int e) {
    double sum = 0;
    for (int b = 0; b < B; b++) {
        if (labels[b] != k) continue;
        double ps = 0;
        for (long j = 0; j < class_chunks(S); j++) ps += class_concat_dtable_chunk(dy, C, E, S, b, e, j);
        sum += ps;
    }
    return sum;
}

/* Element i, at sample b and channel c, of y (B, C, S) of the per-class affine:
 * xhat w[label, c] + b[label, c]. */
GT_HD static inline float class_affine_value(const float *xhat, const float *w, const float *bias,
                                             const int64_t *labels, int C, size_t b, size_t c, size_t i) {
    size_t kc = (size_t)labels[b] * (size_t)C + c;
    return xhat[i] * w[kc] + bias[kc];
}

/* Element i, at sample b and channel c, of dxhat (B, C, S): dy w[label, c]. */
GT_HD static inline float class_affine_dxhat(const float *dy, const float *w, const int64_t *labels, int C, size_t b,
                                             size_t c, size_t i) {
    return dy[i] * w[(size_t)labels[b] * (size_t)C + c];
}

/* Chunk j of sample b's sums over the positions of channel c: of dy xhat (*dw) and dy (*db). */
GT_HD static inline void class_affine_dwb_chunk(const float *dy, const float *xhat, int C, long S, int b, int c, long j,
                                                double *dw, double *db) {
    size_t o = ((size_t)b * (size_t)C + (size_t)c) * (size_t)S;
    long lo, hi;
    class_chunk_range(S, j, &lo, &hi);
    double sw = 0, sb = 0;
    for (long s = lo; s < hi; s++) {
        sw += (double)dy[o + (size_t)s] * xhat[o + (size_t)s];
        sb += dy[o + (size_t)s];
    }
    *dw = sw;
    *db = sb;
}

/* The increments of dw[k, c] (sum of dy xhat) and db[k, c] (sum of dy) over the samples of
 * class k and the positions (the CPU's loop; the GPU adds the same chunks with
 * class_sum_parts). */
GT_HD static inline void class_affine_dwb(const float *dy, const float *xhat, const int64_t *labels, int B, int C,
                                          long S, int k, int c, double *dw, double *db) {
    double sw = 0, sb = 0;
    for (int b = 0; b < B; b++) {
        if (labels[b] != k) continue;
        double pw = 0, pb = 0;
        for (long j = 0; j < class_chunks(S); j++) {
            double cw, cb;
            class_affine_dwb_chunk(dy, xhat, C, S, b, c, j, &cw, &cb);
            pw += cw;
            pb += cb;
        }
        sw += pw;
        sb += pb;
    }
    *dw = sw;
    *db = sb;
}

/* Chunk j of the projection term of sample b: sum_f table[label_b, f] h[b, f] over the chunk. */
GT_HD static inline double class_proj_chunk(const float *h, const float *table, const int64_t *labels, int F, int b,
                                            long j) {
    const float *e = table + (size_t)labels[b] * (size_t)F, *hb = h + (size_t)b * (size_t)F;
    long lo, hi;
    class_chunk_range(F, j, &lo, &hi);
    double sum = 0;
    for (long f = lo; f < hi; f++) sum += (double)e[f] * hb[f];
    return sum;
}

/* The projection term of sample b, sum_f table[label_b, f] h[b, f]: its chunks added in order
 * (the CPU's loop; the GPU adds the same chunks from a thread per chunk). */
GT_HD static inline double class_proj_dot(const float *h, const float *table, const int64_t *labels, int F, int b) {
    double sum = 0;
    for (long j = 0; j < class_chunks(F); j++) sum += class_proj_chunk(h, table, labels, F, b, j);
    return sum;
}

/* Element (b, f) of dh (B, F)'s increment: dy_b table[label_b, f]. */
GT_HD static inline float class_proj_dh(const float *dy, const float *table, const int64_t *labels, int F, size_t b,
                                        size_t f) {
    return dy[b] * table[(size_t)labels[b] * (size_t)F + f];
}

/* dtable[k, f]'s increment: the sum of dy_b h[b, f] over the samples b of class k. */
GT_HD static inline double class_proj_dtable(const float *dy, const float *h, const int64_t *labels, int B, int F,
                                             int k, int f) {
    double sum = 0;
    for (int b = 0; b < B; b++)
        if (labels[b] == k) sum += (double)dy[b] * h[(size_t)b * (size_t)F + (size_t)f];
    return sum;
}

#endif
