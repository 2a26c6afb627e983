/* backend.h: the compute backend interface (DESIGN.md, "Computation").
 *
 * A backend is a struct of function pointers (ggml style): memory on its device, the one
 * row-major GEMM entry point, and every other operation that loops over tensor data: the
 * layers' passes, losses, the training step's bookkeeping, optimizers, random fills.
 * Layers (lib/layer_*.c), the training step (lib/gan/trainer.c), the model and its checkpoints
 * (lib/gan/model.c) and the programs (cmd/) call these and never read or write tensor memory
 * themselves, so one layer file serves every device. Two implementations:
 *   CPU   lib/cpu/backend_cpu.c (memory, gemm, thread pool), lib/cpu/layers.c, lib/cpu/train.c
 *   CUDA  kernels/ (kernels/backend_cuda.cu and one .cu per group of operations); built with
 *         `make CUDA=1`, or as a host emulation with `make CUDA=emu` (kernels/cuda_emu.h).
 * The per-element arithmetic of every operation is written once, in `GT_HD static inline`
 * functions (lib/base/hd.h) in lib/backend/act_math.h, norm_math.h, loss_math.h, opt_math.h,
 * train_math.h, class_math.h and philox.h; the CPU loops and the CUDA kernels both call them, so the CPU
 * tests check the GPU's arithmetic. Only indexing, reductions, launches and memory differ.
 *
 * Conventions for every operation below:
 *  - Pointers to tensor data are device pointers of this backend (from alloc, or from
 *    upload_const); on the CPU backend they are host pointers. Shapes are in the comments;
 *    "n" counts elements. Outputs come first (STYLE.md), then inputs, then sizes.
 *  - Operations are queued in order on the backend's one stream; a download waits for the
 *    work before it. Nothing returns a value computed from device data: results that the
 *    host wants later (losses, norms, flags) are written into small device arrays of doubles
 *    (e.g. the trainer's statistics slots, train_math.h) and downloaded when needed.
 *  - Reductions accumulate in double (DESIGN.md). Each backend sums in a fixed order, so
 *    results do not depend on thread count or timing; the CPU and the CUDA backends may sum
 *    in different orders (tests/unit/tolerances.h says how close they must be).
 *  - A slot marked "optional" may be NULL; the caller then does what its comment says.
 *  - Failures of the device itself (a CUDA error) end the program with a message naming the
 *    file, line and error (kernels/cuda_check.h); operations do not return errors. */
#ifndef GT_BACKEND_H
#define GT_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "act_math.h"  /* act_kind_t */
#include "conv_math.h" /* conv_geom_t */

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { DEV_CPU = 0, DEV_CUDA = 1 } device_t;


/* What philox_fill writes, element j of n, with r = Philox at index index0 + j
 * (seed, stream, step): see philox_fill_value in lib/philox.h. */
typedef enum {
    FILL_UNIFORM_PM = 0, /* (2 u - 1) * scale, u = philox_uniform */
    FILL_NORMAL = 1      /* scale * z (+ shift when shift != 0), z = philox_normal */
} fill_kind_t;

/* BatchNorm, one call (lib/nn/layer_bn.c says what the layer computes). x, y, dy, dx are
 * (B, C, S); w, b, dw, db are (C) or NULL without affine parameters; dw, db are NULL too when
 * the pass wants no parameter gradients (nn_ctx_t.skip_param_grads). */
typedef struct {
    int B, C;
    long S;
    double eps, momentum;
    int training;           /* batch statistics (and running-statistics update), or running ones */
    const float *x, *w, *b, *dy;
    float *y, *dx, *dw, *db; /* outputs; dx NULL when not wanted (backward) */
    float *mean, *inv_std;   /* (C) written by forward, read by backward */
    float *running;          /* (2C) running_mean then running_var */
    const struct bn_sync *sync; /* NULL, or: the B samples are one process's slice (below) */
} bn_args_t;

/* Data-parallel BatchNorm (lib/gan/trainer.c, lib/base/dist.h): the statistics are over the global batch
 * of `batch` samples whose slices the processes hold. In training mode the forward pass sums
 * each channel's values, then their squared deviations from the global mean, over the slice
 * and then over the processes (the backend's sum_procs); the backward pass likewise sums dy and
 * dy x_hat, adding only the slice's sums to dw and db (the trainer sums the gradients across
 * processes). scratch is 2 C doubles of the backend's memory for the widest BatchNorm, made
 * with the run, so that steps allocate nothing. */
typedef struct bn_sync {
    int batch;
    double *scratch;
} bn_sync_t;

/* LayerNorm over each sample's N values (lib/nn/layer_ln.c has the formulas). x, tx, dy, dty, y,
 * ty, dx, dtx are (B, N); w, b, dw, db (N) or NULL without affine parameters (dw, db also NULL
 * when no parameter gradients are wanted: nn_ctx_t.skip_param_grads); dy, dty may be
 * NULL in the jvp backward pass (zeros); dx, dtx NULL when not wanted. */
typedef struct {
    int B;
    long N;
    double eps;
    const float *x, *tx, *dy, *dty, *w, *b;
    float *y, *ty, *dx, *dtx, *dw, *db;
    float *saved; /* (B, 2): mean, inv_std per sample, written by the forward passes */
    float *ws;    /* (B, 2): scratch of the jvp backward pass */
} ln_args_t;

/* Pooling and nearest upsampling over `planes` = B * C image planes (lib/nn/layer_pool.c says
 * what each computes): x, tx, dx, dtx are
 * (planes, h, w); y, ty, dy, dty are (planes, ho, wo). Forward writes y (and ty from tx when
 * ty is not NULL); backward overwrites dx from dy (and dtx from dty when dtx is not NULL); dy
 * or dty NULL count as zeros. argmax (planes, ho, wo): max pooling's int32 index of each
 * output's maximum in its input plane (-1 for an empty window), written by forward. */
typedef struct {
    long planes;
    int h, w, ho, wo;
    int kh, kw, sh, sw, ph, pw; /* pooling window */
    int scale;                  /* upsampling factor */
    int exclude_pad;            /* average pooling divides by the window's part inside the image
                                   (count_include_pad=False; conv_math.h, pool_divisor) */
    const float *x, *tx, *dy, *dty;
    float *y, *ty, *dx, *dtx;
    int32_t *argmax;
} pool_args_t;

/* One optimizer step's constants, computed on the host from the settings and the step
 * count (lib/backend/opt_math.h: opt_step_make); the per-element update is opt_math.h's. */
typedef struct opt_step opt_step_t;

/* Counters the CUDA backend keeps (zero on the CPU): launches (kernels, cuBLAS calls, and
 * device-side copies and memsets, one each: what the stream must start), FLOPs of the gemms,
 * bytes that the operations must at least read and write, device allocations that went to
 * the device allocator (cudaMalloc) rather than the cache, and host<->device transfers. */
typedef struct {
    uint64_t launches, gemms, device_mallocs, transfers;
    double flops, bytes;
    uint64_t proc_sums;    /* sums across processes (sum_procs calls), on either backend */
    double proc_sum_bytes; /* the bytes they summed */
} backend_counters_t;

struct dist; /* lib/base/dist.h */
typedef struct backend backend_t;

struct backend {
    const char *name;   /* "cpu", "cuda" */
    device_t device;
    int threads;        /* CPU threads for our own loops and for OpenBLAS */
    int tf32;           /* CUDA: gemms may use TF32 tensor cores (gan-step --tf32); CPU ignores it */
    char description[160]; /* for messages: "cpu (2 threads)", "cuda: NVIDIA H100 ..." */
    backend_counters_t counters;

    /* ---- memory ----------------------------------------------------------------------- */
    /* alloc never returns NULL (dies on exhaustion); buffers are 64-byte aligned (256 on
     * CUDA). The CUDA backend caches freed blocks, so a step never calls cudaMalloc. */
    void *(*alloc)(backend_t *be, size_t bytes);
    void (*free)(backend_t *be, void *p);
    /* host -> device, device -> host (waits for queued work), device -> device */
    void (*upload)(backend_t *be, void *dst, const void *src, size_t bytes);
    void (*download)(backend_t *be, void *dst, const void *src, size_t bytes);
    void (*copy)(backend_t *be, void *dst, const void *src, size_t bytes);
    void (*zero)(backend_t *be, void *p, size_t bytes);
    /* optional: a device copy of host data that the caller keeps unchanged while the copy
     * is in use (the training set). The CPU backend returns src itself (no copy). NULL:
     * alloc + upload. Release with release_const (optional too: NULL means free). */
    const void *(*upload_const)(backend_t *be, const void *src, size_t bytes);
    void (*release_const)(backend_t *be, const void *p);
    /* optional: wait for all queued work (NULL: every call is synchronous) */
    void (*sync)(backend_t *be);

    /* ---- data-parallel runs (lib/base/dist.h, lib/gan/trainer.c) --------------------------------- */
    /* optional (NULL: the backend cannot run data-parallel): make the backend able to sum
     * its buffers across the processes of d, on every process of d (a collective). The CPU
     * backend sums host memory with MPI (dist_sum_*); the CUDA backend makes an NCCL
     * communicator, its id broadcast from rank 0 over MPI, and sums device memory on its
     * stream. Returns 0, or -1 with a message (gt_err). */
    int (*join)(backend_t *be, struct dist *d);
    /* In place on every process, queued on the stream: v (n floats, or n doubles when f64)
     * = the sum over the processes of their v. Every process gets the same bits (each element
     * is reduced once, in an order that depends on the process count only). Only after join;
     * every process must make the same calls in the same order. */
    void (*sum_procs)(backend_t *be, void *v, size_t n, int f64);

    /* ---- gemm ------------------------------------------------------------------------- */
    /* Row-major C (M x N) = alpha * op(A) * op(B) + beta * C, op(X) = X or X^T.
     * A is M x K after op (stored K x M when trans_a), lda/ldb/ldc are row strides.
     * beta == 0 ignores C's old contents (NaN included); k == 0 gives beta * C.
     * Results do not depend on the thread count: OpenBLAS's rounding depends on the shape of
     * each call, so the CPU backend cuts C into blocks that depend only on (m, n, k) and shares
     * whole blocks over its threads (backend_cpu.c): at most 4 blocks, along the longer side of C,
     * at least 128 rows (columns) each. Cost, measured on 2 shared cores against one part per
     * thread: within the run-to-run noise (about 5%) on the DCGAN and MLP shapes; on one thread,
     * where the blocks run in turn, 4 blocks cost the MLP step about 2% (16 cost 10%). cuBLAS's
     * results are the same run to run (one stream, one device). */
    void (*gemm)(backend_t *be, int trans_a, int trans_b, int m, int n, int k, float alpha,
                 const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);

    /* ---- fills -------------------------------------------------------------------------- */
    void (*fill)(backend_t *be, float *dst, float value, size_t n);
    /* dst (n): Philox values (fill_kind_t above) at indices index0 .. index0 + n - 1 */
    void (*philox_fill)(backend_t *be, float *dst, size_t n, fill_kind_t kind, uint64_t seed, uint32_t stream,
                        uint32_t step, uint64_t index0, float scale, float shift);

    /* ---- layers ----------------------------------------------------------------------- */
    /* y (outer, C, inner) += b (C) */
    void (*bias_add)(backend_t *be, float *y, const float *b, long outer, long C, long inner);
    /* db (C) += sum over outer and inner of dy (outer, C, inner), accumulated in double */
    void (*bias_grad)(backend_t *be, float *db, const float *dy, long outer, long C, long inner);

    /* Activations over n elements (act_math.h). backward reads x (relu, lrelu) or y (tanh,
     * sigmoid). jvp_forward: y = f(x), ty = f'(x) tx. jvp_backward: dx = f' dy + f'' tx dty,
     * dtx = f' dty; dy or dty NULL mean zeros, dx or dtx NULL are not written. */
    void (*act_forward)(backend_t *be, act_kind_t k, float slope, float *y, const float *x, size_t n);
    void (*act_backward)(backend_t *be, act_kind_t k, float slope, float *dx, const float *dy, const float *x,
                         const float *y, size_t n);
    void (*act_jvp_forward)(backend_t *be, act_kind_t k, float slope, float *y, float *ty, const float *x,
                            const float *tx, size_t n);
    void (*act_jvp_backward)(backend_t *be, act_kind_t k, float slope, float *dx, float *dtx, const float *dy,
                             const float *dty, const float *x, const float *tx, const float *y, size_t n);

    /* BatchNorm: forward writes y, mean, inv_std and (training) updates running; backward
     * accumulates dw, db (when w) and writes dx (when not NULL). */
    void (*bn_forward)(backend_t *be, const bn_args_t *a);
    void (*bn_backward)(backend_t *be, const bn_args_t *a);

    /* LayerNorm: forward (y, saved); backward (dx, dw, db); jvp_forward (y, ty, saved);
     * jvp_backward (dx, dtx, dw, db; uses ws). Parameter gradients accumulate. */
    void (*ln_forward)(backend_t *be, const ln_args_t *a);
    void (*ln_backward)(backend_t *be, const ln_args_t *a);
    void (*ln_jvp_forward)(backend_t *be, const ln_args_t *a);
    void (*ln_jvp_backward)(backend_t *be, const ln_args_t *a);

    /* Inverted dropout over n elements whose global flat indices start at base, with a keep mask
     * of one byte per element. draw != 0 (forward): mask[k] = 1 iff philox_uniform(seed,
     * PHILOX_STREAM_DROPOUT, step, base + k) >= p, else 0. draw == 0 (backward): the mask bytes a
     * forward wrote are read (seed, step, base unused). Both: o1 = mask * i1 / (1 - p),
     * o2 = mask * i2 / (1 - p) (norm_math.h). o1 or o2 may be NULL; an input i1 or i2 that is
     * NULL counts as zeros. */
    void (*dropout)(backend_t *be, float *o1, const float *i1, float *o2, const float *i2, unsigned char *mask,
                    int draw, size_t n, uint64_t seed, uint32_t step, uint64_t base, float p);

    /* ---- convolutions (lib/cpu/conv_loops.h documents each; conv_math.h has the geometry) ---- */
    /* col (c*kh*kw, nb*gh*gw) = im2col of img (nb, c, h, w), zeros outside the image */
    void (*im2col)(backend_t *be, const conv_geom_t *g, float *col, const float *img, int nb);
    /* img (nb, c, h, w) = bias[ch] (bias may be NULL) + the adjoint of im2col of col */
    void (*col2im)(backend_t *be, const conv_geom_t *g, float *img, const float *col, const float *bias, int nb);
    /* kn2row: y (nb, o_ch, gh, gw) = bias + the shifted sum of z's rows; dz = its adjoint of dy */
    void (*shiftsum)(backend_t *be, const conv_geom_t *g, int o_ch, float *y, const float *z, const float *bias,
                     int nb);
    void (*shiftscatter)(backend_t *be, const conv_geom_t *g, int o_ch, float *dz, const float *dy, int nb);
    /* dst (C, nb*S) = src (nb, C, S) channel-major; and back: dst (nb, C, S) = src (C, nb*S)
     * + bias[c] (bias may be NULL), or += when accumulate */
    void (*to_cmajor)(backend_t *be, float *dst, const float *src, int C, long S, int nb);
    void (*from_cmajor)(backend_t *be, float *dst, const float *src, const float *bias, int C, long S, int nb,
                        int accumulate);

    /* ---- pooling (pool_args_t above) ------------------------------------------------------ */
    void (*maxpool_forward)(backend_t *be, const pool_args_t *a);
    void (*maxpool_backward)(backend_t *be, const pool_args_t *a);
    void (*avgpool_forward)(backend_t *be, const pool_args_t *a);
    void (*avgpool_backward)(backend_t *be, const pool_args_t *a);
    void (*upsample_forward)(backend_t *be, const pool_args_t *a);
    void (*upsample_backward)(backend_t *be, const pool_args_t *a);

    /* ---- the Inception feature network (lib/fid/inception_net.c; inception_math.h) ---------------- */
    /* y (B, 3, S, S) = x (B, C, H, W) resized bilinearly (align_corners=False); C == 1 repeats
     * the channel */
    void (*resize_bilinear)(backend_t *be, float *y, const float *x, int B, int C, int H, int W, int S);
    /* x = max(x, 0) in place over n, NaN kept (inception_relu) */
    void (*relu_keep_nan)(backend_t *be, float *x, size_t n);
    /* rows of cols floats: dst[r dst_ld + k] = src[r src_ld + k] (a channel concatenation) */
    void (*copy_rows)(backend_t *be, float *dst, long dst_ld, const float *src, long src_ld, long rows, long cols);
    /* out[p] = the mean of plane p of x (planes, hw), summed in double */
    void (*plane_means)(backend_t *be, float *out, const float *x, long planes, long hw);

    /* ---- training step (lib/gan/trainer.c; the math is in loss_math.h and train_math.h) -------- */
    /* Loss of B logits (loss_math.h: loss kind, label smoothing, which = LOSS_ON_*) as part of
     * a mean over B_mean >= B samples (B_mean = B in one process; the global batch when the
     * B are one process's slice of it, lib/base/dist.h): writes dl (B) = dloss/dlogit of that mean
     * (d / B_mean), out[0] = the sum of the B losses / B_mean and out[1] = the sum of D's output
     * as logged (sigmoid of the logits for bce/ns, else the logits) / B_mean. */
    void (*loss)(backend_t *be, int loss, double smooth, int which, float *dl, double *out, const float *logit,
                 int B, int B_mean);
    /* dst (B, sz) = images perm[pos], ..., perm[pos + B - 1] of data (N, sz): float32, or
     * uint8 mapped by train_u8_to_unit. perm is a device array of N int64. */
    void (*gather)(backend_t *be, float *dst, const void *data, int data_u8, const int64_t *perm, int64_t pos,
                   int B, size_t sz);
    /* Gradient penalty: xhat (B, sz) = e_i real + (1 - e_i) fake with e_i = philox_uniform(
     * seed, PHILOX_STREAM_GP, step, index0 + i); */
    void (*gp_mix)(backend_t *be, float *xhat, const float *real, const float *fake, int B, size_t sz,
                   uint64_t seed, uint32_t step, uint64_t index0);
    /* given g (B, sz) = grad_x D(xhat): out[0] = lambda sum_i (|g_i| - 1)^2 / B_mean, and g_i is
     * replaced by its cotangent v_i = 2 lambda / B_mean (|g_i| - 1) / |g_i| g_i (0 when g_i = 0);
     * B_mean as for loss: B in one process */
    void (*gp_scale)(backend_t *be, float *g, double *out, int B, int B_mean, size_t sz, double lambda);
    /* out[0] = sum of x_i^2 over n, in double */
    void (*sumsq)(backend_t *be, double *out, const float *x, size_t n);
    /* out[0] = 1 when any of x (n) is NaN or infinite (left as it is otherwise) */
    void (*nonfinite)(backend_t *be, double *out, const float *x, size_t n);
    /* The step's bookkeeping on the statistics slots st (train_math.h: train_stats_apply). */
    void (*train_stats)(backend_t *be, double *st, int what, int64_t stepno);

    /* ---- optimizers and friends (opt_math.h) ------------------------------------------ */
    /* One step of the optimizer over n parameters p with gradients g and state s1, s2, s3
     * (those the kind uses; others NULL). */
    void (*optim)(backend_t *be, const opt_step_t *c, float *p, const float *g, float *s1, float *s2, float *s3,
                  size_t n);
    /* avg = decay avg + (1 - decay) p over n */
    void (*ema)(backend_t *be, float *avg, const float *p, float decay, size_t n);
    /* p = clamp(p, -c, c) over n */
    void (*clip)(backend_t *be, float *p, float c, size_t n);

    /* ---- sampling (lib/gan/sampler.c; train_math.h: sample_latent) ---------------------- */
    /* z (rows, zd): row i mixes base latents ia[i] and ib[i] (ib[i] < 0: ia[i] alone) with
     * weight t[i]; a base latent j is row j of zin (zin != NULL) or Philox draw number j
     * (seed, with components beyond trunc > 0 redrawn). ia, ib, t are device arrays. */
    void (*latents)(backend_t *be, float *z, int rows, int zd, const float *zin, uint64_t seed, double trunc,
                    const int64_t *ia, const int64_t *ib, const double *t);

    /* ---- class-conditional layers (lib/nn/layer_class.c; the math is lib/backend/class_math.h) ------ *
     * labels is a device array of B int64 class indices in [0, K), checked by the caller
     * (gan-step, gan-sample) before upload. Parameter gradients accumulate (+=); the sum for
     * class k runs over the samples of class k in batch order, then positions, in double. */
    /* dst (B) = labels[perm[pos + i]] of labels (N): the batch's classes, gathered like images */
    void (*gather_labels)(backend_t *be, int64_t *dst, const int64_t *labels, const int64_t *perm, int64_t pos,
                          int B);
    /* y (B, C + E, S): channels 0..C-1 are x (B, C, S); channel C + e, at every position, is
     * (kind, class_math.h CLASS_CAT_*) table[label_b * E + e] (a learned class embedding),
     * 1 or 0 for e == label_b or not (one-hot), or 0 (the tangent of either). */
    void (*class_concat)(backend_t *be, int kind, float *y, const float *x, const float *table,
                         const int64_t *labels, int B, int C, int E, long S);
    /* dx (B, C, S) = the first C channels of dy (B, C + E, S) (dx may be NULL); dtable (K, E)
     * += the sum over the samples of class k and the positions of dy's channel C + e
     * (dtable may be NULL). */
    void (*class_concat_backward)(backend_t *be, float *dx, float *dtable, const float *dy, const int64_t *labels,
                                  int B, int C, int E, long S, int K);
    /* Conditional BatchNorm's per-class affine: y (B, C, S) = xhat w[label_b, c] + b[label_b, c]
     * with w, b (K, C). */
    void (*class_affine)(backend_t *be, float *y, const float *xhat, const float *w, const float *b,
                         const int64_t *labels, int B, int C, long S);
    /* dxhat (B, C, S) = dy w[label_b, c] (dxhat may be NULL); dw[k, c] += sum of dy xhat and
     * db[k, c] += sum of dy over the samples of class k and the positions. */
    void (*class_affine_backward)(backend_t *be, float *dxhat, float *dw, float *db, const float *dy,
                                  const float *xhat, const float *w, const int64_t *labels, int B, int C, long S,
                                  int K);
    /* The projection discriminator's term: y (B) += sum_f table[label_b, f] h[b, f], table (K, F),
     * h (B, F), the sum in double. */
    void (*class_proj)(backend_t *be, float *y, const float *h, const float *table, const int64_t *labels, int B,
                       int F);
    /* dh (B, F) += dy_b table[label_b, f] (dh may be NULL); dtable (K, F) += the sum over the
     * samples b of class k of dy_b h[b, f] (dtable may be NULL). */
    void (*class_proj_backward)(backend_t *be, float *dh, float *dtable, const float *dy, const float *h,
                                const float *table, const int64_t *labels, int B, int F, int K);
};

/* The CPU backend; threads <= 0 picks the number of online cores. Sets OpenBLAS's thread
 * count to match. Returns a static instance (one per process). */
backend_t *backend_cpu(int threads);

/* The CUDA backend (kernels/backend_cuda.cu) on GPU dist_local_rank() mod the GPUs it sees (the
 * first, except for the processes of a data-parallel run sharing a node), or NULL with a message
 * (gt_err) when the build has no CUDA or no usable GPU is found. Under the host emulation
 * (make CUDA=emu) the "GPU" is the emulator; GT_EMU_NO_GPU=1 in the environment makes it
 * report none, for testing. A static instance, created on the first call. */
backend_t *backend_cuda(void);

/* Split [0, n) over the CPU backend's threads and call fn(arg, begin, end) on each part
 * (in the calling thread when threads == 1 or n is small). Work must be independent per
 * index so results never depend on the thread count. A call from inside fn (a nested loop,
 * or a gemm inside a parallel loop) runs inline in that thread; calls from several threads
 * take turns. Part t of p covers [floor(n t / p), floor(n (t+1) / p)). */
void cpu_parallel_for(backend_t *be, long n, void (*fn)(void *arg, long begin, long end), void *arg);

/* Helpers over the slots above. */
static inline void be_sync(backend_t *be) {
    if (be->sync) be->sync(be);
}

#ifdef __cplusplus
}
#endif

#endif
