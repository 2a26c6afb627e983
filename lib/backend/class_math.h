/* class_math.h: the arithmetic of the class-conditional operations (backend_ops.h, "class-
 * conditional layers"), written once for the CPU loops (lib/cpu/class.c) and the CUDA kernels
 * (kernels/class.cu). Each function computes one output element; the parameter gradients are
 * gathered per (class, element) in a fixed order (samples of that class in batch order, then
 * positions) and summed in double, so both backends give the same bits and need no atomics.
 *
 * Shapes: labels (B) int64 in [0, K); x (B, C, S); y of class_concat (B, C + E, S);
 * table (K, E) or (K, F); w, b of the per-class affine (K, C); h (B, F). */
#ifndef GT_CLASS_MATH_H
#define GT_CLASS_MATH_H

#include <stddef.h>
#include <stdint.h>

#include "lib/base/hd.h"

/* what class_concat puts in the E class channels */
enum { CLASS_CAT_TABLE = 0, CLASS_CAT_ONEHOT = 1, CLASS_CAT_ZERO = 2 };

/* Element i of y (B, C + E, S) of class_concat. */
GT_HD static inline float class_concat_value(int kind, const float *x, const float *table, const int64_t *labels,
                                             int C, int E, long S, size_t i) {
    long Ct = (long)C + E;
    size_t s = i % (size_t)S, bc = i / (size_t)S;
    long c = (long)(bc % (size_t)Ct);
    size_t b = bc / (size_t)Ct;
    if (c < C) return x[(b * (size_t)C + (size_t)c) * (size_t)S + s];
    long e = c - C;
    if (kind == CLASS_CAT_TABLE) return table[(size_t)labels[b] * (size_t)E + (size_t)e];
    if (kind == CLASS_CAT_ONEHOT) return labels[b] == e ? 1.0f : 0.0f;
    return 0.0f;
}

/* Element i of dx (B, C, S): dy's element at the same sample, channel and position. */
GT_HD static inline float class_concat_dx(const float *dy, int C, int E, long S, size_t i) {
    size_t s = i % (size_t)S, bc = i / (size_t)S;
    size_t c = bc % (size_t)C, b = bc / (size_t)C;
    return dy[(b * ((size_t)C + (size_t)E) + c) * (size_t)S + s];
}

/* dtable[k, e]'s increment: the sum of dy[b, C + e, s] over the samples b of class k and s. */
GT_HD static inline double class_concat_dtable(const float *dy, const int64_t *labels, int B, int C, int E, long S,
                                               int k, int e) {
    double sum = 0;
    for (int b = 0; b < B; b++) {
        if (labels[b] != k) continue;
        const float *row = dy + ((size_t)b * ((size_t)C + (size_t)E) + (size_t)C + (size_t)e) * (size_t)S;
        for (long s = 0; s < S; s++) sum += row[s];
    }
    return sum;
}

/* Element i of y (B, C, S) of the per-class affine: xhat w[label, c] + b[label, c]. */
GT_HD static inline float class_affine_value(const float *xhat, const float *w, const float *bias,
                                             const int64_t *labels, int C, long S, size_t i) {
    size_t bc = i / (size_t)S;
    size_t c = bc % (size_t)C, b = bc / (size_t)C;
    size_t kc = (size_t)labels[b] * (size_t)C + c;
    return xhat[i] * w[kc] + bias[kc];
}

/* Element i of dxhat (B, C, S): dy w[label, c]. */
GT_HD static inline float class_affine_dxhat(const float *dy, const float *w, const int64_t *labels, int C, long S,
                                             size_t i) {
    size_t bc = i / (size_t)S;
    size_t c = bc % (size_t)C, b = bc / (size_t)C;
    return dy[i] * w[(size_t)labels[b] * (size_t)C + c];
}

/* The increments of dw[k, c] (sum of dy xhat) and db[k, c] (sum of dy) over the samples of
 * class k and the positions. */
GT_HD static inline void class_affine_dwb(const float *dy, const float *xhat, const int64_t *labels, int B, int C,
                                          long S, int k, int c, double *dw, double *db) {
    double sw = 0, sb = 0;
    for (int b = 0; b < B; b++) {
        if (labels[b] != k) continue;
        size_t o = ((size_t)b * (size_t)C + (size_t)c) * (size_t)S;
        for (long s = 0; s < S; s++) {
            sw += (double)dy[o + (size_t)s] * xhat[o + (size_t)s];
            sb += dy[o + (size_t)s];
        }
    }
    *dw = sw;
    *db = sb;
}

/* The projection term of sample b: sum_f table[label_b, f] h[b, f], in double. */
GT_HD static inline double class_proj_dot(const float *h, const float *table, const int64_t *labels, int F, int b) {
    const float *e = table + (size_t)labels[b] * (size_t)F, *hb = h + (size_t)b * (size_t)F;
    double sum = 0;
    for (int f = 0; f < F; f++) sum += (double)e[f] * hb[f];
    return sum;
}

/* Element i of dh (B, F)'s increment: dy_b table[label_b, f]. */
GT_HD static inline float class_proj_dh(const float *dy, const float *table, const int64_t *labels, int F, size_t i) {
    size_t b = i / (size_t)F, f = i % (size_t)F;
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
