/* class.c: the CPU backend's class-conditional operations (lib/backend/backend_ops.h,
 * "class-conditional layers"): loops over output elements that call lib/backend/class_math.h,
 * the same functions the CUDA kernels call (kernels/class.cu), so both give the same bits.
 * Single-threaded: these passes are a few percent of a conditional step next to its GEMMs. */
#include <stddef.h>
#include <stdint.h>

#include "lib/backend/class_math.h"
#include "cpu_ops.h"

void cpu_gather_labels(backend_t *be, int64_t *dst, const int64_t *labels, const int64_t *perm, int64_t pos, int B) {
    (void)be;
    for (int i = 0; i < B; i++) dst[i] = labels[perm[pos + i]];
}

void cpu_class_concat(backend_t *be, int kind, float *y, const float *x, const float *table, const int64_t *labels,
                      int B, int C, int E, long S) {
    (void)be;
    for (size_t b = 0; b < (size_t)B; b++)
        for (long c = 0; c < (long)C + E; c++)
            for (size_t s = 0; s < (size_t)S; s++) *y++ = class_concat_value(kind, x, table, labels, C, E, S, b, c, s);
}

void cpu_class_concat_backward(backend_t *be, float *dx, float *dtable, const float *dy, const int64_t *labels, int B,
                               int C, int E, long S, int K) {
    (void)be;
    if (dx) {
        for (size_t b = 0; b < (size_t)B; b++)
            for (size_t c = 0; c < (size_t)C; c++)
                for (size_t s = 0; s < (size_t)S; s++) *dx++ = class_concat_dx(dy, C, E, S, b, c, s);
    }
    if (dtable)
        for (int k = 0; k < K; k++)
            for (int e = 0; e < E; e++)
                dtable[(size_t)k * (size_t)E + (size_t)e] += (float)class_concat_dtable(dy, labels, B, C, E, S, k, e);
}

void cpu_class_affine(backend_t *be, float *y, const float *xhat, const float *w, const float *b, const int64_t *labels,
                      int B, int C, long S) {
    (void)be;
    size_t i = 0;
    for (size_t bi = 0; bi < (size_t)B; bi++)
        for (size_t c = 0; c < (size_t)C; c++)
            for (long k = 0; k < S; k++, i++) y[i] = class_affine_value(xhat, w, b, labels, C, bi, c, i);
}

void cpu_class_affine_backward(backend_t *be, float *dxhat, float *dw, float *db, const float *dy, const float *xhat,
                               const float *w, const int64_t *labels, int B, int C, long S, int K) {
    (void)be;
    for (int k = 0; k < K; k++)
        for (int c = 0; c < C; c++) {
            double sw, sb;
            class_affine_dwb(dy, xhat, labels, B, C, S, k, c, &sw, &sb);
            dw[(size_t)k * (size_t)C + (size_t)c] += (float)sw;
            db[(size_t)k * (size_t)C + (size_t)c] += (float)sb;
        }
    if (dxhat) {
        size_t i = 0;
        for (size_t b = 0; b < (size_t)B; b++)
            for (size_t c = 0; c < (size_t)C; c++)
                for (long k = 0; k < S; k++, i++) dxhat[i] = class_affine_dxhat(dy, w, labels, C, b, c, i);
    }
}

void cpu_class_proj(backend_t *be, float *y, const float *h, const float *table, const int64_t *labels, int B, int F) {
    (void)be;
    for (int b = 0; b < B; b++) y[b] = (float)((double)y[b] + class_proj_dot(h, table, labels, F, b));
}

void cpu_class_proj_backward(backend_t *be, float *dh, float *dtable, const float *dy, const float *h,
                             const float *table, const int64_t *labels, int B, int F, int K) {
    (void)be;
    if (dtable)
        for (int k = 0; k < K; k++)
            for (int f = 0; f < F; f++)
                dtable[(size_t)k * (size_t)F + (size_t)f] += (float)class_proj_dtable(dy, h, labels, B, F, k, f);
    if (dh) {
        for (size_t b = 0; b < (size_t)B; b++)
            for (size_t f = 0; f < (size_t)F; f++) *dh++ += class_proj_dh(dy, table, labels, F, b, f);
    }
}
