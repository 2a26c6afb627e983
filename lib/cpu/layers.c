/* layers.c: the CPU backend's layer operations (lib/backend/backend_ops.h): fills, bias,
 * activations, dropout, additive noise (BatchNorm and LayerNorm are norm.c's). The per-element math comes from
 * act_math.h, norm_math.h and philox.h (shared with kernels/layers.cu); this file is the loops.
 *
 * Loops over many elements are split over the CPU threads (cpu_parallel_for) so that each
 * output element is computed by exactly one thread, with its reductions in a fixed order:
 * results never depend on the thread count. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "lib/backend/act_math.h"
#include "lib/base/common.h"
#include "cpu_ops.h"
#include "lib/backend/norm_math.h"
#include "lib/base/philox.h"

/* ---- fills ------------------------------------------------------------------------------ */

void cpu_fill(backend_t *be, float *dst, float value, size_t n) {
    (void)be;
    for (size_t i = 0; i < n; i++) dst[i] = value;
}

void cpu_philox_fill(backend_t *be, float *dst, size_t n, fill_kind_t kind, uint64_t seed, uint32_t stream,
                     uint32_t step, uint64_t index0, float scale, float shift) {
    (void)be;
    for (size_t j = 0; j < n; j++) dst[j] = philox_fill_value(kind, seed, stream, step, index0 + j, scale, shift);
}

/* ---- bias ------------------------------------------------------------------------------- */

CPU_VEC_CLONES void cpu_bias_add(backend_t *be, float *y, const float *b, long outer, long C, long inner) {
    (void)be;
    for (long o = 0; o < outer; o++)
        for (long c = 0; c < C; c++) {
            float *r = y + ((size_t)o * C + c) * inner;
            for (long i = 0; i < inner; i++) r[i] += b[c];
        }
}

/* Each channel's sum runs over outer, then inner, in order, in double. Items: blocks of 256
 * channels read row by row when inner == 1 (linear layers), else blocks of BIAS_PLANES channels
 * whose planes are summed side by side: each channel's sum is one chain of dependent additions
 * (its order fixed), and a chain alone waits out each addition's latency, so BIAS_PLANES of
 * them are interleaved. */
typedef struct {
    float *db;
    const float *dy;
    long outer, C, inner;
} bias_job_t;

enum { BIAS_BLK = 256, BIAS_PLANES = 8 };

CPU_VEC_CLONES static void bias_grad_items(void *arg, long i0, long i1) {
    const bias_job_t *j = arg;
    long C = j->C, inner = j->inner, blk = inner == 1 ? BIAS_BLK : BIAS_PLANES;
    for (long it = i0; it < i1; it++) {
        long c0 = it * blk, n = C - c0 < blk ? C - c0 : blk;
        double acc[BIAS_BLK] = {0};
        for (long o = 0; o < j->outer; o++) {
            const float *row = j->dy + ((size_t)o * C + c0) * inner;
            if (inner == 1)
                for (long c = 0; c < n; c++) acc[c] += row[c];
            else if (n == BIAS_PLANES) { /* the chains in registers */
                double a[BIAS_PLANES];
                for (int c = 0; c < BIAS_PLANES; c++) a[c] = acc[c];
                for (long i = 0; i < inner; i++) {
#pragma GCC unroll 8
                    for (int c = 0; c < BIAS_PLANES; c++) a[c] += row[c * inner + i];
                }
                for (int c = 0; c < BIAS_PLANES; c++) acc[c] = a[c];
            } else
                for (long i = 0; i < inner; i++)
                    for (long c = 0; c < n; c++) acc[c] += row[c * inner + i];
        }
        for (long c = 0; c < n; c++) j->db[c0 + c] += (float)acc[c];
    }
}

void cpu_bias_grad(backend_t *be, float *db, const float *dy, long outer, long C, long inner) {
    bias_job_t j = {db, dy, outer, C, inner};
    long blk = inner == 1 ? BIAS_BLK : BIAS_PLANES, items = (C + blk - 1) / blk;
    if (items > 1 && outer * C * inner >= 32768) cpu_parallel_for(be, items, bias_grad_items, &j);
    else bias_grad_items(&j, 0, items);
}

/* ---- activations ------------------------------------------------------------------------ */

typedef struct {
    int kind, pass;
    float slope;
    float *y, *ty, *dx, *dtx;
    const float *x, *tx, *dy, *dty, *yin;
} act_job_t;

/* first derivative at element i from x (relu/lrelu) or y (tanh/sigmoid) */
#define D1(J, i)                                                                        \
    ((J)->kind == ACT_RELU    ? act_relu_d((J)->x[i])                                   \
     : (J)->kind == ACT_LRELU ? act_lrelu_d((J)->x[i], (J)->slope)                      \
     : (J)->kind == ACT_TANH  ? act_tanh_d((J)->yin[i])                                 \
                              : act_sigmoid_d((J)->yin[i]))

CPU_VEC_CLONES static void act_fwd_range(const act_job_t *j, long b, long e) {
    const float *x = j->x;
    float *y = j->y;
    switch (j->kind) {
    case ACT_RELU: for (long i = b; i < e; i++) y[i] = act_relu(x[i]); break;
    case ACT_LRELU: for (long i = b; i < e; i++) y[i] = act_lrelu(x[i], j->slope); break;
    case ACT_TANH: for (long i = b; i < e; i++) y[i] = act_tanh(x[i]); break;
    default: for (long i = b; i < e; i++) y[i] = act_sigmoid(x[i]); break;
    }
}

CPU_VEC_CLONES static void act_bwd_range(const act_job_t *j, long b, long e) {
    const float *x = j->x, *y = j->yin, *dy = j->dy;
    float *dx = j->dx;
    switch (j->kind) {
    case ACT_RELU: for (long i = b; i < e; i++) dx[i] = act_relu_bwd(x[i], dy[i]); break;
    case ACT_LRELU: for (long i = b; i < e; i++) dx[i] = act_lrelu_d(x[i], j->slope) * dy[i]; break;
    case ACT_TANH: for (long i = b; i < e; i++) dx[i] = act_tanh_d(y[i]) * dy[i]; break;
    default: for (long i = b; i < e; i++) dx[i] = act_sigmoid_d(y[i]) * dy[i]; break;
    }
}

CPU_VEC_CLONES static void act_range(void *arg, long b, long e) {
    const act_job_t *j = arg;
    switch (j->pass) {
    case P_FWD: act_fwd_range(j, b, e); break;
    case P_BWD: act_bwd_range(j, b, e); break;
    case P_JVP_FWD: /* y first (tanh/sigmoid derivatives read it), then the tangent */
        act_fwd_range(j, b, e);
        for (long i = b; i < e; i++) j->ty[i] = D1(j, i) * j->tx[i];
        break;
    default: /* P_JVP_BWD */
        for (long i = b; i < e; i++) {
            float d = D1(j, i), d2 = 0.0f;
            if (j->kind == ACT_TANH) d2 = act_tanh_d2(j->yin[i]);
            else if (j->kind == ACT_SIGMOID) d2 = act_sigmoid_d2(j->yin[i]);
            float dyi = j->dy ? j->dy[i] : 0.0f, dtyi = j->dty ? j->dty[i] : 0.0f;
            if (j->dx) j->dx[i] = d * dyi + d2 * j->tx[i] * dtyi;
            if (j->dtx) j->dtx[i] = d * dtyi;
        }
        break;
    }
}

static void act_run(backend_t *be, act_job_t *j, size_t n) {
    if (n >= 32768) cpu_parallel_for(be, (long)n, act_range, j);
    else act_range(j, 0, (long)n);
}

/* ---- bias and activation fused (net.c): rows of C x inner, split by rows ------------------ */

typedef struct {
    float *y, *z;
    const float *b;
    long C, inner;
    act_kind_t kind;
    float slope;
} bias_act_job_t;

/* the loop for one kind (a constant, so that act_value inlines to its own vector loop) */
#define BIAS_ACT_LOOP(K)                                                                                  \
    for (long r = r0; r < r1; r++) {                                                                      \
        float *y = j->y + (size_t)r * C * inner, *z = j->z + (size_t)r * C * inner;                       \
        if (inner == 1)                                                                                   \
            for (long c = 0; c < C; c++) {                                                                \
                float v = y[c] + j->b[c];                                                                 \
                y[c] = v;                                                                                 \
                z[c] = act_value(K, j->slope, v);                                                         \
            }                                                                                             \
        else                                                                                              \
            for (long c = 0; c < C; c++)                                                                  \
                for (long i = c * inner; i < (c + 1) * inner; i++) {                                      \
                    float v = y[i] + j->b[c];                                                             \
                    y[i] = v;                                                                             \
                    z[i] = act_value(K, j->slope, v);                                                     \
                }                                                                                         \
    }

CPU_VEC_CLONES static void bias_act_rows(void *arg, long r0, long r1) {
    const bias_act_job_t *j = arg;
    long C = j->C, inner = j->inner;
    switch (j->kind) {
    case ACT_RELU: BIAS_ACT_LOOP(ACT_RELU) break;
    case ACT_LRELU: BIAS_ACT_LOOP(ACT_LRELU) break;
    case ACT_TANH: BIAS_ACT_LOOP(ACT_TANH) break;
    default: BIAS_ACT_LOOP(ACT_SIGMOID) break;
    }
}
#undef BIAS_ACT_LOOP

void cpu_bias_act(backend_t *be, act_kind_t k, float slope, float *y, float *z, const float *b, long outer, long C,
                  long inner) {
    bias_act_job_t j = {y, z, b, C, inner, k, slope};
    if (outer > 1 && outer * C * inner >= 32768) cpu_parallel_for(be, outer, bias_act_rows, &j);
    else bias_act_rows(&j, 0, outer);
}

void cpu_act_forward(backend_t *be, act_kind_t k, float slope, float *y, const float *x, size_t n) {
    act_job_t j = {k, P_FWD, slope, y, NULL, NULL, NULL, x, NULL, NULL, NULL, NULL};
    act_run(be, &j, n);
}

void cpu_act_backward(backend_t *be, act_kind_t k, float slope, float *dx, const float *dy, const float *x,
                      const float *y, size_t n) {
    act_job_t j = {k, P_BWD, slope, NULL, NULL, dx, NULL, x, NULL, dy, NULL, y};
    act_run(be, &j, n);
}

void cpu_act_jvp_forward(backend_t *be, act_kind_t k, float slope, float *y, float *ty, const float *x,
                         const float *tx, size_t n) {
    act_job_t j = {k, P_JVP_FWD, slope, y, ty, NULL, NULL, x, tx, NULL, NULL, y};
    act_run(be, &j, n);
}

void cpu_act_jvp_backward(backend_t *be, act_kind_t k, float slope, float *dx, float *dtx, const float *dy,
                          const float *dty, const float *x, const float *tx, const float *y, size_t n) {
    act_job_t j = {k, P_JVP_BWD, slope, NULL, NULL, dx, dtx, x, tx, dy, dty, y};
    act_run(be, &j, n);
}

/* ---- dropout: the mask bytes first, then one vectorized pass of products ------------------ */

typedef struct {
    uint64_t seed, base; /* base: global flat index of the first element */
    uint32_t step;
    float p, scale;
    float *o1, *o2;
    const float *i1, *i2;
    unsigned char *mask;
} drop_job_t;

/* o1 = mask i1 * scale, o2 = mask i2 * scale over local elements [b, e) from the mask bytes
 * (scale times keep as 0/1, without a branch: the mask is random, a branch on it mispredicted) */
CPU_VEC_CLONES static void drop_apply(const drop_job_t *j, long b, long e) {
    const unsigned char *mask = j->mask;
    float scale = j->scale;
    for (int k = 0; k < 2; k++) {
        float *o = k ? j->o2 : j->o1;
        const float *in = k ? j->i2 : j->i1;
        if (!o) continue;
        if (!in) {
            memset(o + b, 0, sizeof(float) * (size_t)(e - b));
            continue;
        }
        for (long i = b; i < e; i++) o[i] = in[i] * dropout_mask_factor(mask[i], scale);
    }
}

/* forward over local elements [b, e): the mask bytes, PHILOX_LANES Philox blocks (4 elements
 * each) at a time (philox_blocks: the same bits as one philox_block per block), then the
 * products */
static void drop_draw_mask(const drop_job_t *j, long b, long e) {
    unsigned char *mask = j->mask;
    uint64_t base = j->base;
    uint64_t g0 = base + (uint64_t)b, g1 = base + (uint64_t)e; /* global [g0, g1) */
    for (uint64_t blk0 = g0 >> 2; blk0 <= (g1 - 1) >> 2; blk0 += PHILOX_LANES) {
        uint32_t w[4][PHILOX_LANES];
        philox_blocks(j->seed, PHILOX_STREAM_DROPOUT, j->step, blk0, w);
        uint64_t lo = blk0 << 2 < g0 ? g0 : blk0 << 2;
        uint64_t hi = (blk0 + PHILOX_LANES) << 2 > g1 ? g1 : (blk0 + PHILOX_LANES) << 2;
        for (uint64_t g = lo; g < hi; g++)
            mask[g - base] = (unsigned char)dropout_keep_bits(w[g & 3][(g >> 2) - blk0], j->p);
    }
}

static void drop_draw_range(void *arg, long b, long e) {
    const drop_job_t *j = arg;
    if (b >= e) return;
    drop_draw_mask(j, b, e);
    drop_apply(j, b, e);
}

/* backward over [b, e): the forward's mask applied */
static void drop_saved_range(void *arg, long b, long e) { drop_apply(arg, b, e); }

void cpu_dropout(backend_t *be, float *o1, const float *i1, float *o2, const float *i2, unsigned char *mask, int draw,
                 size_t n, uint64_t seed, uint32_t step, uint64_t base, float p) {
    drop_job_t j = {seed, base, step, p, dropout_scale(p), o1, o2, i1, i2, mask};
    void (*fn)(void *, long, long) = draw ? drop_draw_range : drop_saved_range;
    if (n >= 16384) cpu_parallel_for(be, (long)n, fn, &j);
    else fn(&j, 0, (long)n);
}

/* ---- activation and dropout fused (net.c): dropout's mask code, then one pass ------------ */

typedef struct {
    drop_job_t d; /* o1 = out, i1 = in, mask, key */
    const float *x;
    act_kind_t kind;
    float slope;
    int backward;
} act_drop_job_t;

/* the loop for one kind (a constant, so that the shared functions inline to a vector loop) */
#define ACT_DROP_LOOP(K)                                                                                   \
    do {                                                                                                   \
        if (j->backward)                                                                                   \
            for (long i = b; i < e; i++)                                                                   \
                out[i] = act_dropout_backward_value(K, j->slope, x[i], in[i], dropout_mask_factor(mask[i], scale)); \
        else                                                                                               \
            for (long i = b; i < e; i++)                                                                   \
                out[i] = act_dropout_forward_value(K, j->slope, x[i], dropout_mask_factor(mask[i], scale)); \
    } while (0)

CPU_VEC_CLONES static void act_drop_range(void *arg, long b, long e) {
    const act_drop_job_t *j = arg;
    if (b >= e) return;
    if (!j->backward) drop_draw_mask(&j->d, b, e);
    const unsigned char *mask = j->d.mask;
    const float *x = j->x, *in = j->d.i1;
    float *out = j->d.o1, scale = j->d.scale;
    if (j->kind == ACT_RELU) ACT_DROP_LOOP(ACT_RELU);
    else ACT_DROP_LOOP(ACT_LRELU);
}
#undef ACT_DROP_LOOP

void cpu_act_dropout(backend_t *be, act_kind_t k, float slope, int backward, float *out, const float *in,
                     const float *x, unsigned char *mask, size_t n, uint64_t seed, uint32_t step, uint64_t base,
                     float p) {
    if (k != ACT_RELU && k != ACT_LRELU) gt_fatal(1, "act_dropout: internal error: activation %d does not read x", (int)k);
    act_drop_job_t j = {{seed, base, step, p, dropout_scale(p), out, NULL, in, NULL, mask}, x, k, slope, backward};
    if (n >= 16384) cpu_parallel_for(be, (long)n, act_drop_range, &j);
    else act_drop_range(&j, 0, (long)n);
}

/* ---- additive noise: each element from its own index --------------------------------------- */

typedef struct {
    float *y;
    const float *x;
    uint64_t seed, index0;
    uint32_t stream, step;
    float sigma;
} noise_job_t;

static void noise_range(void *arg, long b, long e) {
    const noise_job_t *j = arg;
    for (long k = b; k < e; k++)
        j->y[k] = (j->x ? j->x[k] : 0.0f) +
                  philox_fill_value(FILL_NORMAL, j->seed, j->stream, j->step, j->index0 + (uint64_t)k, j->sigma, 0.0f);
}

void cpu_add_noise(backend_t *be, float *y, const float *x, size_t n, uint64_t seed, uint32_t stream, uint32_t step,
                   uint64_t index0, float sigma) {
    noise_job_t j = {y, x, seed, index0, stream, step, sigma};
    if (n >= 16384) cpu_parallel_for(be, (long)n, noise_range, &j);
    else noise_range(&j, 0, (long)n);
}
