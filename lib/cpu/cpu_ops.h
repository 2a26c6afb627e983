/* cpu_ops.h: the CPU backend's operations: cpu_NAME for every entry NAME of
 * lib/backend/backend_ops.h (which documents them), defined in lib/cpu/layers.c, norm.c,
 * conv.c, pool.c, inception.c, train.c, optim.c, class.c, augment.c and sn.c, and the data-parallel slots of
 * backend.h, defined in lib/cpu/dist_mpi.c; gathered into the backend struct by
 * lib/cpu/backend_cpu.c. Private to lib/cpu/: everyone else calls them through backend_t. */
#ifndef GT_CPU_OPS_H
#define GT_CPU_OPS_H

#include "lib/backend/backend.h"

/* CPU_VEC_CLONES before a function with a hot element-wise loop: GCC compiles it three times, for
 * AVX-512F, AVX2 and the generic x86-64 baseline (SSE2), and the loader picks the copy for the CPU
 * it runs on (an ifunc). The build stays generic, so without it these loops run 4 floats at a time,
 * and there Adam's square root and two divisions, not memory, bound the optimizer step. IEEE
 * arithmetic gives the same result at every vector width, and -std=c11 never contracts a*b+c, so
 * every copy computes the same bits (lib/cpu/README.md, "Vector widths"). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CPU_VEC_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CPU_VEC_CLONES
#endif

#define BACKEND_OP(name, params) void cpu_##name params;
#include "lib/backend/backend_ops.h"
#undef BACKEND_OP

/* dist_mpi.c: data-parallel runs (backend.h join, sum_procs) */
int cpu_join(backend_t *be, struct dist *d);
void cpu_sum_procs(backend_t *be, void *v, size_t n, int f64);
void cpu_sum_procs_start(backend_t *be, void *v, size_t n, int f64, int more);
void cpu_sum_procs_poll(backend_t *be);
void cpu_sum_procs_wait(backend_t *be);
void cpu_reduce_procs_start(backend_t *be, float *v, size_t off, size_t n, const size_t *cut, int more);
void cpu_gather_procs(backend_t *be, void *v, const size_t *cut, int f64);
void *cpu_alloc_shared(backend_t *be, size_t n);

/* conv.c: an image batch read as its column matrix (backend_ops.h im2col) by our sgemm
 * (sgemm.h sgemm_pb): B = col (trans 0) or col^T (trans 1) of the nb samples at img.
 * cpu_pack_cols is its sgemm_pack_b_fn (ctx: a conv_cols_t). cs, bs: the floats between
 * channel planes and between samples of img; 0, 0: batch-major (h*w and c*h*w). */
typedef struct {
    const conv_geom_t *g;
    const float *img;
    int nb, trans;
    long cs, bs;
} conv_cols_t;
void cpu_pack_cols(const void *ctx, int p0, int kc, long j0, int nc, int nr, float *dst);

/* conv.c: the scatter side (backend_ops.h gemm_col2im) by output phases. Phase q = ry*sw + rx
 * of the image side of g holds the pixels (y, x) with (y + ph) % sh == ry and (x + pw) % sw
 * == rx; the taps that reach it are ty = ry + sh*u, tx = rx + sw*v, from grid position
 * (Y - u, X - v) where y = Y*sh + ry - ph. So the phase is a stride-1 correlation of the grid
 * side's k channels with the phase's taps in reverse order: vg, whose image is the grid side
 * (k channels, gh x gw) and whose grid is the phase's pixels that some tap reaches, pixel
 * (Y', X') of it at image (y0 + Y'*sh, x0 + X'*sw). Its GEMM: C (c x nb*area) = Wq (c x kq)
 * times vg's column matrix (kq = k * its taps), Wq from op(A) by cpu_phase_weights. */
typedef struct {
    conv_geom_t vg;
    int y0, x0;
    long kq, area; /* rows of the phase's B, and its pixels per sample (vg.gh * vg.gw) */
} conv_phase_t;
/* phase q of g with k grid-side channels; returns its area (0: no tap reaches the phase) */
long cpu_conv_phase(const conv_geom_t *g, int k, int q, conv_phase_t *p);
/* wa = the phases' Wq one after another, from op(A) (c*kh*kw x k): Wq[ch, (i, u', v')] =
 * op(A)[(ch, ty, tx), i] for the phase's taps, u' and v' counting them from the last */
void cpu_phase_weights(backend_t *be, const conv_geom_t *g, int k, int trans_a, const float *a, int lda, float *wa);
/* img (nb, c, h, w) = bias[ch] (0 when NULL) + the phases' C, stored one after another in cb
 * (phase q's C: c x nb*area, row stride nb*area); bias alone where no tap reaches */
void cpu_phase_join(backend_t *be, const conv_geom_t *g, float *img, const float *cb, const float *bias, int nb);

/* The passes of an operation with a tangent (activations in layers.c, LayerNorm in norm.c):
 * forward, backward, and their jvp forms (backend_ops.h act_*, ln_*). */
enum { P_FWD, P_BWD, P_JVP_FWD, P_JVP_BWD };

#endif
