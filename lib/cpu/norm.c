/* norm.c: the CPU backend's BatchNorm and LayerNorm (and instance normalization) operations
 * (lib/backend/backend_ops.h bn_*, ln_*; the layers' formulas are in lib/nn/layer_bn.c and
 * lib/nn/layer_ln.c). The
 * per-element terms and outputs come from norm_math.h (shared with kernels/norm.cu); this
 * file is the loops.
 *
 * Work is split over the CPU threads (cpu_parallel_for) by channels, blocks of features,
 * samples or parameter elements, so that each output is computed by exactly one thread, with
 * its reductions in double in a fixed order: results never depend on the thread count. */
#include <stddef.h>

#include "cpu_ops.h"
#include "lib/base/common.h"
#include "lib/backend/norm_math.h"

/* ---- BatchNorm2d: channels split over threads, each channel's sums in a fixed order -------- *
 * A channel's planes are summed with eight partial sums: element k of a plane goes into partial
 * sum k % 8 and the eight are added in a fixed tree, so the additions do not wait on each other
 * (one running double sum was latency-bound) and the result stays a fixed function of the
 * values. Planes add into the channel's total in sample order. */

/* LOOP(A) with A the constant value of bn_args_t.act (0, or 1 + ACT_RELU or ACT_LRELU: a fused
 * activation): a loop per kind, so that bn_out and bn_act_grad (norm_math.h) inline to their own
 * vector loop. cpu_bn_forward and _backward refuse other values. */
#define BN_ACT_CASES(act, LOOP)                                                                            \
    switch (act) {                                                                                         \
    case 0: LOOP(0) break;                                                                                 \
    case 1 + ACT_RELU: LOOP(1 + ACT_RELU) break;                                                           \
    default: LOOP(1 + ACT_LRELU) break;                                                                    \
    }

static double lanes_total(const double *acc) {
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* sum of x[0..n) */
CPU_VEC_CLONES static double plane_sum(const float *x, long n) {
    double acc[8] = {0};
    long n8 = n - n % 8;
    for (long i = 0; i < n8; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += x[i + k];
    for (long i = n8; i < n; i++) acc[i % 8] += x[i];
    return lanes_total(acc);
}

/* sum of (x - m)^2 over x[0..n) */
CPU_VEC_CLONES static double plane_sqdev(const float *x, long n, double m) {
    double acc[8] = {0};
    long n8 = n - n % 8;
    for (long i = 0; i < n8; i += 8)
        for (int k = 0; k < 8; k++) {
            double d = x[i + k] - m;
            acc[k] += d * d;
        }
    for (long i = n8; i < n; i++) {
        double d = x[i] - m;
        acc[i % 8] += d * d;
    }
    return lanes_total(acc);
}

/* *sg += sum g, *sgx += sum g x_hat over one plane, g the gradient w.r.t. BatchNorm's output
 * (dy, or through a fused activation: bn_act_grad) */
CPU_VEC_CLONES static void plane_bwd_sums(const float *dy, const float *x, long n, float mean, float istd, float w, float b, int act,
                           float slope, double *sg, double *sgx) {
    double a[8] = {0}, q[8] = {0};
    long n8 = n - n % 8;
#define SUMS(A)                                                                                            \
    for (long i = 0; i < n8; i += 8)                                                                       \
        for (int k = 0; k < 8; k++) {                                                                      \
            double g = bn_act_grad(dy[i + k], x[i + k], mean, istd, w, b, A, slope);                       \
            a[k] += g;                                                                                     \
            q[k] += g * norm_hat(x[i + k], mean, istd);                                                    \
        }                                                                                                  \
    for (long i = n8; i < n; i++) {                                                                        \
        double g = bn_act_grad(dy[i], x[i], mean, istd, w, b, A, slope);                                   \
        a[i % 8] += g;                                                                                     \
        q[i % 8] += g * norm_hat(x[i], mean, istd);                                                        \
    }
    BN_ACT_CASES(act, SUMS)
#undef SUMS
    *sg += lanes_total(a);
    *sgx += lanes_total(q);
}

/* y = BatchNorm's output over one plane, or the fused activation's (bn_out) */
CPU_VEC_CLONES static void plane_apply(float *y, const float *x, long n, float mean, float istd, float w, float b, int act,
                        float slope) {
#define APPLY(A) for (long k = 0; k < n; k++) y[k] = bn_out(x[k], mean, istd, w, b, A, slope);
    BN_ACT_CASES(act, APPLY)
#undef APPLY
}

/* dx over one plane from the channel's terms sg_n, sgx_n (dy through a fused activation) */
CPU_VEC_CLONES static void plane_dx(float *dx, const float *dy, const float *x, long n, float mean, float istd, float w, float b,
                     int act, float slope, double sg_n, double sgx_n) {
#define DX(A)                                                                                              \
    for (long k = 0; k < n; k++)                                                                           \
        dx[k] = norm_dx(bn_act_grad(dy[k], x[k], mean, istd, w, b, A, slope) * w, norm_hat(x[k], mean, istd), \
                        istd, sg_n, sgx_n);
    BN_ACT_CASES(act, DX)
#undef DX
}

/* forward for channels [c0, c1) */
CPU_VEC_CLONES static void bn_fwd_range(void *arg, long c0, long c1) {
    const bn_args_t *j = arg;
    int C = j->C, B = j->B;
    long S = j->S;
    double n = (double)B * (double)S;
    for (long c = c0; c < c1; c++) {
        float mean, istd;
        if (j->training) {
            double s = 0;
            for (int i = 0; i < B; i++) s += plane_sum(j->x + ((size_t)i * C + c) * S, S);
            double m = s / n, q = 0;
            for (int i = 0; i < B; i++) q += plane_sqdev(j->x + ((size_t)i * C + c) * S, S, m);
            double var = q / n;
            mean = (float)m;
            istd = (float)norm_inv_std(var, j->eps);
            norm_running_update(j->running + c, j->running + C + c, m, var, n, j->momentum);
        } else {
            mean = j->running[c];
            istd = (float)norm_inv_std(j->running[C + c], j->eps);
        }
        j->mean[c] = mean;
        j->inv_std[c] = istd;
        float w = j->w ? j->w[c] : 1.0f, b = j->b ? j->b[c] : 0.0f;
        for (int i = 0; i < B; i++) {
            size_t o = ((size_t)i * C + c) * S;
            plane_apply(j->y + o, j->x + o, S, mean, istd, w, b, j->act, j->slope);
        }
    }
}

/* backward for channels [c0, c1): dw, db (when wanted) and dx of each channel */
CPU_VEC_CLONES static void bn_bwd_range(void *arg, long c0, long c1) {
    const bn_args_t *j = arg;
    int C = j->C, B = j->B;
    long S = j->S;
    double n = (double)B * (double)S;
    for (long c = c0; c < c1; c++) {
        float mean = j->mean[c], istd = j->inv_std[c], w = j->w ? j->w[c] : 1.0f, b = j->b ? j->b[c] : 0.0f;
        double sg = 0, sgx = 0; /* sum g, sum g x_hat (g: dy, through a fused activation) */
        for (int i = 0; i < B; i++) {
            size_t o = ((size_t)i * C + c) * S;
            plane_bwd_sums(j->dy + o, j->x + o, S, mean, istd, w, b, j->act, j->slope, &sg, &sgx);
        }
        if (j->dw) {
            j->dw[c] += (float)sgx;
            j->db[c] += (float)sg;
        }
        if (!j->dx) continue;
        double sg_n = j->training ? w * sg / n : 0, sgx_n = j->training ? w * sgx / n : 0;
        for (int i = 0; i < B; i++) {
            size_t o = ((size_t)i * C + c) * S;
            plane_dx(j->dx + o, j->dy + o, j->x + o, S, mean, istd, w, b, j->act, j->slope, sg_n, sgx_n);
        }
    }
}

/* ---- BatchNorm1d (S == 1): blocks of BN1D_BLK features, each sample's row read contiguously - *
 * (a feature at a time read one value per row: 6 ns per value for the DCGAN's 12544 features).
 * Each feature's sums run over the samples in order. */
enum { BN1D_BLK = 128 };

CPU_VEC_CLONES static void bn1d_fwd_blocks(void *arg, long k0, long k1) {
    const bn_args_t *j = arg;
    int C = j->C, B = j->B;
    for (long blk = k0; blk < k1; blk++) {
        long c0 = blk * BN1D_BLK, nc = C - c0 < BN1D_BLK ? C - c0 : BN1D_BLK;
        if (j->training) {
            double s[BN1D_BLK] = {0}, q[BN1D_BLK] = {0}, m[BN1D_BLK];
            for (int i = 0; i < B; i++) {
                const float *row = j->x + (size_t)i * C + c0;
                for (long k = 0; k < nc; k++) s[k] += row[k];
            }
            for (long k = 0; k < nc; k++) m[k] = s[k] / B;
            for (int i = 0; i < B; i++) {
                const float *row = j->x + (size_t)i * C + c0;
                for (long k = 0; k < nc; k++) {
                    double d = row[k] - m[k];
                    q[k] += d * d;
                }
            }
            for (long k = 0; k < nc; k++) {
                double var = q[k] / B;
                j->mean[c0 + k] = (float)m[k];
                j->inv_std[c0 + k] = (float)norm_inv_std(var, j->eps);
                norm_running_update(j->running + c0 + k, j->running + C + c0 + k, m[k], var, (double)B, j->momentum);
            }
        } else {
            for (long k = 0; k < nc; k++) {
                j->mean[c0 + k] = j->running[c0 + k];
                j->inv_std[c0 + k] = (float)norm_inv_std(j->running[C + c0 + k], j->eps);
            }
        }
        const float *ms = j->mean + c0, *is = j->inv_std + c0;
        float wv[BN1D_BLK], bv[BN1D_BLK];
        for (long k = 0; k < nc; k++) {
            wv[k] = j->w ? j->w[c0 + k] : 1.0f;
            bv[k] = j->b ? j->b[c0 + k] : 0.0f;
        }
        float slope = j->slope;
        for (int i = 0; i < B; i++) {
            const float *row = j->x + (size_t)i * C + c0;
            float *yrow = j->y + (size_t)i * C + c0;
#define APPLY(A) for (long k = 0; k < nc; k++) yrow[k] = bn_out(row[k], ms[k], is[k], wv[k], bv[k], A, slope);
            BN_ACT_CASES(j->act, APPLY)
#undef APPLY
        }
    }
}

CPU_VEC_CLONES static void bn1d_bwd_blocks(void *arg, long k0, long k1) {
    const bn_args_t *j = arg;
    int C = j->C, B = j->B;
    for (long blk = k0; blk < k1; blk++) {
        long c0 = blk * BN1D_BLK, nc = C - c0 < BN1D_BLK ? C - c0 : BN1D_BLK;
        const float *ms = j->mean + c0, *is = j->inv_std + c0;
        double sg[BN1D_BLK] = {0}, sgx[BN1D_BLK] = {0}, sg_n[BN1D_BLK], sgx_n[BN1D_BLK];
        float wv[BN1D_BLK], bv[BN1D_BLK], slope = j->slope;
        for (long k = 0; k < nc; k++) {
            wv[k] = j->w ? j->w[c0 + k] : 1.0f;
            bv[k] = j->b ? j->b[c0 + k] : 0.0f;
        }
        for (int i = 0; i < B; i++) {
            const float *row = j->x + (size_t)i * C + c0, *g = j->dy + (size_t)i * C + c0;
#define SUMS(A)                                                                                            \
    for (long k = 0; k < nc; k++) {                                                                        \
        double gk = bn_act_grad(g[k], row[k], ms[k], is[k], wv[k], bv[k], A, slope);                       \
        sg[k] += gk;                                                                                       \
        sgx[k] += gk * norm_hat(row[k], ms[k], is[k]);                                                     \
    }
            BN_ACT_CASES(j->act, SUMS)
#undef SUMS
        }
        if (j->dw)
            for (long k = 0; k < nc; k++) {
                j->dw[c0 + k] += (float)sgx[k];
                j->db[c0 + k] += (float)sg[k];
            }
        if (!j->dx) continue;
        for (long k = 0; k < nc; k++) {
            sg_n[k] = j->training ? wv[k] * sg[k] / B : 0;
            sgx_n[k] = j->training ? wv[k] * sgx[k] / B : 0;
        }
        for (int i = 0; i < B; i++) {
            const float *row = j->x + (size_t)i * C + c0, *g = j->dy + (size_t)i * C + c0;
            float *dxr = j->dx + (size_t)i * C + c0;
#define DX(A)                                                                                              \
    for (long k = 0; k < nc; k++)                                                                          \
        dxr[k] = norm_dx(bn_act_grad(g[k], row[k], ms[k], is[k], wv[k], bv[k], A, slope) * wv[k],          \
                         norm_hat(row[k], ms[k], is[k]), is[k], sg_n[k], sgx_n[k]);
            BN_ACT_CASES(j->act, DX)
#undef DX
        }
    }
}

/* features (S == 1) by blocks of features, images by channels; split over threads when large */
static void bn_run(backend_t *be, const bn_args_t *a, int backward) {
    long work = (long)a->B * a->C * a->S;
    int one_d = a->S == 1;
    long items = one_d ? (a->C + BN1D_BLK - 1) / BN1D_BLK : a->C;
    void (*fn)(void *, long, long) = one_d ? (backward ? bn1d_bwd_blocks : bn1d_fwd_blocks)
                                           : (backward ? bn_bwd_range : bn_fwd_range);
    if (items > 1 && work >= 32768) cpu_parallel_for(be, items, fn, (void *)a);
    else fn((void *)a, 0, items);
}

/* Data-parallel BatchNorm (backend.h bn_sync_t): each channel's sums over the slice summed
 * over the processes before use, and n the global batch's count: forward, the moments about the
 * running mean in one sum (norm_math.h norm_shifted_moments); backward, the same passes as
 * above. One thread: the sums are waited for between passes. */
static void bn_sums(const bn_args_t *j, int what, double *out) {
    int C = j->C, B = j->B;
    long S = j->S;
    for (long c = 0; c < C; c++) {
        double s0 = 0, s1 = 0;
        float fm = what == 2 ? j->mean[c] : 0, istd = what == 2 ? j->inv_std[c] : 0;
        float w = j->w ? j->w[c] : 1.0f, b = j->b ? j->b[c] : 0.0f;
        double r = what == 1 && j->running ? j->running[c] : 0; /* the shift */
        for (int i = 0; i < B; i++) {
            size_t o = ((size_t)i * C + c) * S;
            for (long k = 0; k < S; k++) {
                if (what == 1) {
                    double d = j->x[o + k] - r;
                    s0 += d;
                    s1 += d * d;
                } else {
                    double g = bn_act_grad(j->dy[o + k], j->x[o + k], fm, istd, w, b, j->act, j->slope);
                    s0 += g;
                    s1 += g * norm_hat(j->x[o + k], fm, istd);
                }
            }
        }
        out[c] = s0;
        out[C + c] = s1;
    }
}

static void bn_forward_synced(backend_t *be, const bn_args_t *j) {
    int C = j->C, B = j->B;
    long S = j->S;
    double n = (double)j->sync->batch * (double)S;
    double *s = j->sync->scratch; /* sum (x - r) (C), then sum (x - r)^2 (C) */
    bn_sums(j, 1, s);
    be->sum_procs(be, s, 2 * (size_t)C, 1);
    for (int c = 0; c < C; c++) {
        double m, var;
        norm_shifted_moments(j->running ? j->running[c] : 0, s[c], s[C + c], n, &m, &var);
        float mean = (float)m, istd = (float)norm_inv_std(var, j->eps);
        norm_running_update(j->running + c, j->running + C + c, m, var, n, j->momentum);
        j->mean[c] = mean;
        j->inv_std[c] = istd;
        float w = j->w ? j->w[c] : 1.0f, b = j->b ? j->b[c] : 0.0f;
        for (int i = 0; i < B; i++) {
            size_t o = ((size_t)i * C + c) * S;
            plane_apply(j->y + o, j->x + o, S, mean, istd, w, b, j->act, j->slope);
        }
    }
}

static void bn_backward_synced(backend_t *be, const bn_args_t *j) {
    int C = j->C, B = j->B;
    long S = j->S;
    double n = (double)j->sync->batch * (double)S;
    double *s = j->sync->scratch; /* sum dy (C), then sum dy x_hat (C) */
    bn_sums(j, 2, s);
    if (j->dw)
        for (int c = 0; c < C; c++) { /* this slice's share: the trainer sums gradients */
            j->dw[c] += (float)s[C + c];
            j->db[c] += (float)s[c];
        }
    if (j->dx) {
        be->sum_procs(be, s, 2 * (size_t)C, 1);
        for (int c = 0; c < C; c++) {
            float mean = j->mean[c], istd = j->inv_std[c], w = j->w ? j->w[c] : 1.0f, b = j->b ? j->b[c] : 0.0f;
            double sg_n = w * s[c] / n, sgx_n = w * s[C + c] / n;
            for (int i = 0; i < B; i++) {
                size_t o = ((size_t)i * C + c) * S;
                plane_dx(j->dx + o, j->dy + o, j->x + o, S, mean, istd, w, b, j->act, j->slope, sg_n, sgx_n);
            }
        }
    }
}

/* a fused activation is a relu or lrelu (bn_args_t.act) */
static void bn_act_check(const bn_args_t *a) {
    if (a->act && a->act != 1 + ACT_RELU && a->act != 1 + ACT_LRELU)
        gt_fatal(1, "bn: internal error: fused activation %d does not read x", a->act - 1);
}

void cpu_bn_forward(backend_t *be, const bn_args_t *a) {
    bn_act_check(a);
    if (a->sync && a->training) bn_forward_synced(be, a);
    else bn_run(be, a, 0);
}

void cpu_bn_backward(backend_t *be, const bn_args_t *a) {
    if (!a->dx && !a->dw) return;
    bn_act_check(a);
    if (a->sync && a->training) bn_backward_synced(be, a);
    else bn_run(be, a, 1);
}

/* ---- LayerNorm and instance normalization: rows split over threads; parameter gradients split over
 * elements (LayerNorm) or channels (instance normalization) ------- */

typedef struct {
    const ln_args_t *a;
    int pass;
} ln_job_t;

/* the affine parameters' index for element k of row i: k (LayerNorm) or the row's channel */
#define AIX(a, i, k) ((a)->C > 0 ? (i) % (a)->C : (k))
#define W(a, i, k) ((a)->w ? (a)->w[AIX(a, i, k)] : 1.0f)
#define GET(p, k) ((p) ? (p)[k] : 0.0f)

/* rows of the normalization (ln_args_t) and their length */
static long ln_rows(const ln_args_t *a) { return a->C > 0 ? (long)a->B * a->C : a->B; }
static long ln_len(const ln_args_t *a) { return a->C > 0 ? a->N / a->C : a->N; }

/* per row: statistics, y (and ty); dx (and dtx) */
static void ln_sample_range(void *arg, long i0, long i1) {
    const ln_job_t *job = arg;
    const ln_args_t *j = job->a;
    int pass = job->pass;
    long N = ln_len(j);
    for (long i = i0; i < i1; i++) {
        size_t o = (size_t)i * N;
        const float *x = j->x + o;
        float mean, r;
        if (pass == P_FWD || pass == P_JVP_FWD) {
            double s = 0, q = 0;
            for (long k = 0; k < N; k++) s += x[k];
            double m = s / (double)N;
            for (long k = 0; k < N; k++) q += (x[k] - m) * (x[k] - m);
            mean = (float)m;
            r = (float)norm_inv_std(q / (double)N, j->eps);
            j->saved[2 * i] = mean;
            j->saved[2 * i + 1] = r;
            float *y = j->y + o;
            for (long k = 0; k < N; k++)
                y[k] = norm_affine(norm_hat(x[k], mean, r), W(j, i, k), j->b ? j->b[AIX(j, i, k)] : 0.0f);
        } else {
            mean = j->saved[2 * i];
            r = j->saved[2 * i + 1];
        }
        double n = (double)N;
        if (pass == P_BWD) {
            if (!j->dx) continue;
            const float *dy = j->dy + o;
            double sa = 0, sax = 0;
            for (long k = 0; k < N; k++) {
                double a = (double)W(j, i, k) * dy[k];
                sa += a;
                sax += a * norm_hat(x[k], mean, r);
            }
            for (long k = 0; k < N; k++)
                j->dx[o + k] = norm_dx(W(j, i, k) * dy[k], norm_hat(x[k], mean, r), r, sa / n, sax / n);
            continue;
        }
        if (pass == P_FWD) continue;
        /* tangent statistics: mean(tx), mean(x_hat tx) */
        const float *tx = j->tx + o;
        double st = 0, sxt = 0;
        for (long k = 0; k < N; k++) {
            st += tx[k];
            sxt += (double)norm_hat(x[k], mean, r) * tx[k];
        }
        double mt = st / n, m = sxt / n;
        if (pass == P_JVP_FWD) {
            for (long k = 0; k < N; k++)
                j->ty[o + k] = W(j, i, k) * ln_tangent_hat(tx[k], norm_hat(x[k], mean, r), r, mt, m);
            continue;
        }
        /* P_JVP_BWD */
        j->ws[2 * i] = (float)mt;
        j->ws[2 * i + 1] = (float)m;
        if (!j->dx && !j->dtx) continue;
        double sa = 0, sax = 0, sc = 0, scx = 0, T = 0;
        for (long k = 0; k < N; k++) {
            double xh = norm_hat(x[k], mean, r), w = W(j, i, k);
            double a = w * GET(j->dy, o + k), c = w * GET(j->dty, o + k);
            double th = r * ((double)tx[k] - mt - xh * m);
            sa += a;
            sax += a * xh;
            sc += c;
            scx += c * xh;
            T += c * th;
        }
        ln_jvp_sums_t s = ln_jvp_sums(n, sa, sax, sc, scx, T);
        for (long k = 0; k < N; k++) {
            double xh = norm_hat(x[k], mean, r), w = W(j, i, k);
            double a = w * GET(j->dy, o + k), c = w * GET(j->dty, o + k);
            double th = r * ((double)tx[k] - mt - xh * m);
            ln_jvp_dx(j->dx ? j->dx + o + k : NULL, j->dtx ? j->dtx + o + k : NULL, a, c, xh, th, r, m, &s);
        }
    }
}

/* per element: dw, db summed over the samples in order; elements [k0, k1) by blocks of
 * LN_BLK so that each sample's rows are read contiguously (a stride of N per read was 3x
 * slower) */
enum { LN_BLK = 256 };

static void ln_param_range(void *arg, long k0, long k1) {
    const ln_job_t *job = arg;
    const ln_args_t *j = job->a;
    long N = j->N;
    int jvp = job->pass == P_JVP_BWD && j->dty;
    for (long kb = k0; kb < k1; kb += LN_BLK) {
        long nk = k1 - kb < LN_BLK ? k1 - kb : LN_BLK;
        double sw[LN_BLK] = {0}, sb[LN_BLK] = {0};
        for (int i = 0; i < j->B; i++) {
            size_t o = (size_t)i * N + kb;
            float mean = j->saved[2 * i], r = j->saved[2 * i + 1];
            for (long k = 0; k < nk; k++) {
                double xh = norm_hat(j->x[o + k], mean, r), dy = GET(j->dy, o + k);
                sw[k] += dy * xh;
                sb[k] += dy;
                if (jvp) {
                    double th = r * ((double)j->tx[o + k] - j->ws[2 * i] - xh * j->ws[2 * i + 1]);
                    sw[k] += (double)j->dty[o + k] * th;
                }
            }
        }
        for (long k = 0; k < nk; k++) {
            j->dw[kb + k] += (float)sw[k];
            j->db[kb + k] += (float)sb[k];
        }
    }
}

/* instance normalization: per channel c, dw[c], db[c] summed over the samples in order, each
 * sample's row in order */
static void in_param_range(void *arg, long c0, long c1) {
    const ln_job_t *job = arg;
    const ln_args_t *j = job->a;
    long C = j->C, L = ln_len(j);
    int jvp = job->pass == P_JVP_BWD && j->dty;
    for (long c = c0; c < c1; c++) {
        double sw = 0, sb = 0;
        for (long i = 0; i < j->B; i++) {
            long row = i * C + c;
            size_t o = (size_t)row * L;
            float mean = j->saved[2 * row], r = j->saved[2 * row + 1];
            for (long k = 0; k < L; k++) {
                double xh = norm_hat(j->x[o + k], mean, r), dy = GET(j->dy, o + k);
                sw += dy * xh;
                sb += dy;
                if (jvp) {
                    double th = r * ((double)j->tx[o + k] - j->ws[2 * row] - xh * j->ws[2 * row + 1]);
                    sw += (double)j->dty[o + k] * th;
                }
            }
        }
        j->dw[c] += (float)sw;
        j->db[c] += (float)sb;
    }
}

static void ln_run(backend_t *be, const ln_args_t *a, int pass) {
    ln_job_t job = {a, pass};
    long work = (long)a->B * a->N, rows = ln_rows(a);
    if (work >= 32768 && rows > 1) cpu_parallel_for(be, rows, ln_sample_range, &job);
    else ln_sample_range(&job, 0, rows);
    if ((pass == P_BWD || pass == P_JVP_BWD) && a->dw) {
        long np = a->C > 0 ? a->C : a->N;
        void (*fn)(void *, long, long) = a->C > 0 ? in_param_range : ln_param_range;
        if (work >= 32768) cpu_parallel_for(be, np, fn, &job);
        else fn(&job, 0, np);
    }
}

void cpu_ln_forward(backend_t *be, const ln_args_t *a) { ln_run(be, a, P_FWD); }
void cpu_ln_backward(backend_t *be, const ln_args_t *a) { ln_run(be, a, P_BWD); }
void cpu_ln_jvp_forward(backend_t *be, const ln_args_t *a) { ln_run(be, a, P_JVP_FWD); }
void cpu_ln_jvp_backward(backend_t *be, const ln_args_t *a) { ln_run(be, a, P_JVP_BWD); }
