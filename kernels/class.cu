/* class.cu: the CUDA backend's class-conditional operations (lib/backend/backend_ops.h,
 * "class-conditional layers"). One thread per output element calls lib/backend/class_math.h,
 * the functions the CPU loops call (lib/cpu/class.c). The sums over positions (and the
 * projection's over features) are two launches: a thread per (sample, element, chunk of
 * CLASS_CHUNK terms) writes a partial in double, then a thread per (class, element), or per
 * sample for the projection, adds its samples' partials in batch order (class_sum_parts): the
 * CPU's order, so the GPU gives the CPU's bits without atomics. The serial depth counted for a
 * per-class thread is its chain through the class sum plus one sample's chunks, in the worst
 * case (every sample in its class): B + J. The element kernels split their index by precomputed
 * divisors (gt_split; kernels/README.md, "Index arithmetic"). */
#include "cuda_check.h"
#include "cuda_ops.h"

#include "lib/backend/class_math.h"

__global__ void k_gather_labels(int64_t *dst, const int64_t *labels, const int64_t *perm, int64_t pos, int B) {
    size_t i = GT_TID();
    if (i < (size_t)B) dst[i] = labels[perm[pos + (int64_t)i]];
}

void cuda_gather_labels(backend_t *be, int64_t *dst, const int64_t *labels, const int64_t *perm, int64_t pos, int B) {
    (void)be;
    if (B <= 0) return;
    gt_count_bytes(24.0 * B);
    GT_LAUNCH(k_gather_labels, gt_blocks((size_t)B), GT_BLOCK, dst, labels, perm, pos, B);
}

/* ---- concatenated class channels (embedding or one-hot) ---------------------------------- */

template <class I>
__global__ void k_class_concat(int kind, float *y, const float *x, const float *table, const int64_t *labels, int C,
                               int E, gt_idiv S, gt_idiv Ct, size_t n) {
    I i = GT_TID_AS(I), b, c, s;
    if (i >= n) return;
    s = gt_split(i, S, Ct, &b, &c);
    y[i] = class_concat_value(kind, x, table, labels, C, E, (long)S.d, b, (long)c, s);
}

void cuda_class_concat(backend_t *be, int kind, float *y, const float *x, const float *table, const int64_t *labels,
                       int B, int C, int E, long S) {
    (void)be;
    size_t n = (size_t)B * ((size_t)C + (size_t)E) * (size_t)S;
    if (!n) return;
    gt_count_bytes(8.0 * n);
    GT_LAUNCH_IDX(n, k_class_concat, gt_blocks(n), GT_BLOCK, kind, y, x, table, labels, C, E, gt_idiv_make(S),
                  gt_idiv_make((size_t)C + E), n);
}

template <class I> __global__ void k_class_concat_dx(float *dx, const float *dy, gt_idiv C, int E, gt_idiv S, size_t n) {
    I i = GT_TID_AS(I), b, c, s;
    if (i >= n) return;
    s = gt_split(i, S, C, &b, &c);
    dx[i] = class_concat_dx(dy, (int)C.d, E, (long)S.d, b, c, s);
}

/* part (B, E, J): thread (b, e, j) sums chunk j of sample b's class channel e */
template <class I>
__global__ void k_class_concat_dtable_part(double *part, const float *dy, int C, gt_idiv E, long S, gt_idiv J, size_t n) {
    I i = GT_TID_AS(I), b, e, j;
    if (i >= n) return;
    j = gt_split(i, J, E, &b, &e);
    part[i] = class_concat_dtable_chunk(dy, C, (int)E.d, S, (int)b, (int)e, (long)j);
}

template <class I>
__global__ void k_class_concat_dtable(float *dtable, const double *part, const int64_t *labels, int B, gt_idiv E,
                                      long J, size_t n) {
    I i = GT_TID_AS(I), k;
    if (i >= n) return;
    int e = (int)E.divmod(i, &k);
    dtable[i] += (float)class_sum_parts(part, labels, B, (int)k, (int)E.d, e, J, 1, 0);
}

void cuda_class_concat_backward(backend_t *be, float *dx, float *dtable, const float *dy, const int64_t *labels, int B,
                                int C, int E, long S, int K) {
    (void)be;
    size_t nx = (size_t)B * (size_t)C * (size_t)S, nt = (size_t)K * (size_t)E;
    if (dx && nx) {
        gt_count_bytes(8.0 * nx);
        GT_LAUNCH_IDX(nx, k_class_concat_dx, gt_blocks(nx), GT_BLOCK, dx, dy, gt_idiv_make(C), E, gt_idiv_make(S), nx);
    }
    if (dtable && nt) {
        long J = class_chunks(S);
        size_t np = (size_t)B * (size_t)E * (size_t)J;
        if (!np) return;
        double *part = (double *)gt_cuda_scratch(GT_SCRATCH_OP, sizeof(double) * np);
        gt_count_bytes(4.0 * (double)B * E * S + 16.0 * np + 8.0 * nt);
        gt_count_depth(S < CLASS_CHUNK ? S : (long)CLASS_CHUNK);
        GT_LAUNCH_IDX(np, k_class_concat_dtable_part, gt_blocks(np), GT_BLOCK, part, dy, C, gt_idiv_make(E), S,
                      gt_idiv_make(J), np);
        gt_count_depth((long)B + J);
        GT_LAUNCH_IDX(nt, k_class_concat_dtable, gt_blocks(nt), GT_BLOCK, dtable, (const double *)part, labels, B,
                      gt_idiv_make(E), J, nt);
    }
}

/* ---- conditional BatchNorm's per-class affine --------------------------------------------- */

template <class I>
__global__ void k_class_affine(float *y, const float *xhat, const float *w, const float *b, const int64_t *labels,
                               gt_idiv C, gt_idiv S, size_t n) {
    I i = GT_TID_AS(I), bi, c;
    if (i >= n) return;
    gt_split(i, S, C, &bi, &c);
    y[i] = class_affine_value(xhat, w, b, labels, (int)C.d, bi, c, i);
}

void cuda_class_affine(backend_t *be, float *y, const float *xhat, const float *w, const float *b,
                       const int64_t *labels, int B, int C, long S) {
    (void)be;
    size_t n = (size_t)B * (size_t)C * (size_t)S;
    if (!n) return;
    gt_count_bytes(8.0 * n);
    GT_LAUNCH_IDX(n, k_class_affine, gt_blocks(n), GT_BLOCK, y, xhat, w, b, labels, gt_idiv_make(C), gt_idiv_make(S), n);
}

template <class I>
__global__ void k_class_affine_dxhat(float *dxhat, const float *dy, const float *w, const int64_t *labels, gt_idiv C,
                                     gt_idiv S, size_t n) {
    I i = GT_TID_AS(I), b, c;
    if (i >= n) return;
    gt_split(i, S, C, &b, &c);
    dxhat[i] = class_affine_dxhat(dy, w, labels, (int)C.d, b, c, i);
}

/* part (B, C, J, 2): thread (b, c, j) sums chunk j of sample b's channel c */
template <class I>
__global__ void k_class_affine_dwb_part(double *part, const float *dy, const float *xhat, gt_idiv C, long S, gt_idiv J,
                                        size_t n) {
    I i = GT_TID_AS(I), b, c, j;
    if (i >= n) return;
    j = gt_split(i, J, C, &b, &c);
    class_affine_dwb_chunk(dy, xhat, (int)C.d, S, (int)b, (int)c, (long)j, part + 2 * (size_t)i, part + 2 * (size_t)i + 1);
}

template <class I>
__global__ void k_class_affine_dwb(float *dw, float *db, const double *part, const int64_t *labels, int B, gt_idiv C,
                                   long J, size_t n) {
    I i = GT_TID_AS(I), k;
    if (i >= n) return;
    int c = (int)C.divmod(i, &k);
    dw[i] += (float)class_sum_parts(part, labels, B, (int)k, (int)C.d, c, J, 2, 0);
    db[i] += (float)class_sum_parts(part, labels, B, (int)k, (int)C.d, c, J, 2, 1);
}

void cuda_class_affine_backward(backend_t *be, float *dxhat, float *dw, float *db, const float *dy, const float *xhat,
                                const float *w, const int64_t *labels, int B, int C, long S, int K) {
    (void)be;
    size_t n = (size_t)B * (size_t)C * (size_t)S, nk = (size_t)K * (size_t)C;
    long J = class_chunks(S);
    size_t np = (size_t)B * (size_t)C * (size_t)J;
    if (nk && np) {
        double *part = (double *)gt_cuda_scratch(GT_SCRATCH_OP, sizeof(double) * 2 * np);
        gt_count_bytes(8.0 * n + 32.0 * np + 16.0 * nk);
        gt_count_depth(S < CLASS_CHUNK ? S : (long)CLASS_CHUNK);
        GT_LAUNCH_IDX(np, k_class_affine_dwb_part, gt_blocks(np), GT_BLOCK, part, dy, xhat, gt_idiv_make(C), S,
                      gt_idiv_make(J), np);
        gt_count_depth((long)B + J);
        GT_LAUNCH_IDX(nk, k_class_affine_dwb, gt_blocks(nk), GT_BLOCK, dw, db, (const double *)part, labels, B,
                      gt_idiv_make(C), J, nk);
    }
    if (dxhat && n) {
        gt_count_bytes(8.0 * n);
        GT_LAUNCH_IDX(n, k_class_affine_dxhat, gt_blocks(n), GT_BLOCK, dxhat, dy, w, labels, gt_idiv_make(C),
                      gt_idiv_make(S), n);
    }
}

/* ---- projection discriminator term -------------------------------------------------------- */

/* part (B, J): thread (b, j) sums chunk j of sample b's term */
template <class I>
__global__ void k_class_proj_part(double *part, const float *h, const float *table, const int64_t *labels, int F,
                                  gt_idiv J, size_t n) {
    I i = GT_TID_AS(I), b;
    if (i >= n) return;
    long j = (long)J.divmod(i, &b);
    part[i] = class_proj_chunk(h, table, labels, F, (int)b, j);
}

/* thread b adds its chunks in order, as class_proj_dot does */
__global__ void k_class_proj(float *y, const double *part, int B, long J) {
    size_t b = GT_TID();
    if (b >= (size_t)B) return;
    double sum = 0;
    for (long j = 0; j < J; j++) sum += part[b * (size_t)J + (size_t)j];
    y[b] = (float)((double)y[b] + sum);
}

void cuda_class_proj(backend_t *be, float *y, const float *h, const float *table, const int64_t *labels, int B, int F) {
    (void)be;
    if (B <= 0) return;
    long J = class_chunks(F);
    size_t np = (size_t)B * (size_t)J;
    if (!np) return;
    double *part = (double *)gt_cuda_scratch(GT_SCRATCH_OP, sizeof(double) * np);
    gt_count_bytes(8.0 * (double)B * F + 16.0 * np + 8.0 * B);
    gt_count_depth(F < CLASS_CHUNK ? (long)F : (long)CLASS_CHUNK);
    GT_LAUNCH_IDX(np, k_class_proj_part, gt_blocks(np), GT_BLOCK, part, h, table, labels, F, gt_idiv_make(J), np);
    gt_count_depth(J);
    GT_LAUNCH(k_class_proj, gt_blocks((size_t)B), GT_BLOCK, y, (const double *)part, B, J);
}

template <class I>
__global__ void k_class_proj_dh(float *dh, const float *dy, const float *table, const int64_t *labels, gt_idiv F,
                                size_t n) {
    I i = GT_TID_AS(I), b;
    if (i >= n) return;
    I f = F.divmod(i, &b);
    dh[i] += class_proj_dh(dy, table, labels, (int)F.d, b, f);
}

template <class I>
__global__ void k_class_proj_dtable(float *dtable, const float *dy, const float *h, const int64_t *labels, int B,
                                    gt_idiv F, size_t n) {
    I i = GT_TID_AS(I), k;
    if (i >= n) return;
    int f = (int)F.divmod(i, &k);
    dtable[i] += (float)class_proj_dtable(dy, h, labels, B, (int)F.d, (int)k, f);
}

void cuda_class_proj_backward(backend_t *be, float *dh, float *dtable, const float *dy, const float *h,
                              const float *table, const int64_t *labels, int B, int F, int K) {
    (void)be;
    size_t n = (size_t)B * (size_t)F, nt = (size_t)K * (size_t)F;
    if (dtable && nt) {
        gt_count_bytes(4.0 * n + 8.0 * nt);
        gt_count_depth(B);
        GT_LAUNCH_IDX(nt, k_class_proj_dtable, gt_blocks(nt), GT_BLOCK, dtable, dy, h, labels, B, gt_idiv_make(F), nt);
    }
    if (dh && n) {
        gt_count_bytes(12.0 * n);
        GT_LAUNCH_IDX(n, k_class_proj_dh, gt_blocks(n), GT_BLOCK, dh, dy, table, labels, gt_idiv_make(F), n);
    }
}
