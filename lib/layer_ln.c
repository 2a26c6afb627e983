/* layer_ln.c: layer normalisation, torch.nn.LayerNorm over the whole per-sample shape
 * (normalized_shape [C] for a feature vector C x 1 x 1, [C, H, W] otherwise).
 *
 *   x (B, N)  N = C*H*W     w (N)  b (N)  (absent with noaffine)     y (B, N)
 *   saved per sample: mean, inv_std        workspace per sample: 2 floats (jvp_backward)
 *
 * y = x_hat * w + b, x_hat = (x - mean) r, r = 1 / sqrt(var + eps), mean and biased variance
 * of the sample's N values accumulated in double (two passes).
 *
 * Backward: with a = w dy,  dx = r P(a),  where for any v
 *   P(v) = v - mean(v) - x_hat mean(x_hat v)      (the Jacobian of x_hat is r P, P = P^T);
 *   dw += sum over samples of dy x_hat, db += sum of dy.
 * Tangent (gradient penalty): t_hat = r P(tx), ty = w t_hat.
 * Its reverse, given dy and dty, with a = w dy, c = w dty, m = mean(x_hat tx),
 * Cx = sum c x_hat, T = sum c t_hat:
 *   dtx = r P(c)
 *   dx  = r P(a) - r (Cx/N) t_hat - r^2 m P(c) - r (T/N) x_hat
 *   dw += sum of dy x_hat + dty t_hat,  db += sum of dy.
 * (From T = r sum c (u - m x_hat), u = tx - mean(tx): dr = -r^2 mean(x_hat dx) and
 * d x_hat = r P(dx), then P's symmetry; checked against finite differences of jvp_forward
 * in tests/unit/test_layer_norm.c and against torch's double backward in
 * tests/ref/test_layers_norm.py.)
 * Samples are split over threads for y, dx, dtx; the parameter gradients are summed over
 * samples per element in a second loop split over elements, so no result depends on the
 * thread count. */
#include <stddef.h>

#include "common.h"
#include "layer.h"
#include "norm_math.h"

static int ln_setup(layer_t *l) {
    if (!(l->eps > 0)) return gt_err("eps must be positive");
    size_t N = (size_t)shape3_size(l->in);
    l->out = l->in;
    l->n_bias = l->has_bias ? N : 0;
    l->n_params = 2 * l->n_bias;
    if (l->in.h == 1 && l->in.w == 1) {
        l->w_ndim = l->b_ndim = 0;
    } else {
        l->w_ndim = l->b_ndim = 3;
        l->w_shape[0] = l->b_shape[0] = l->in.c;
        l->w_shape[1] = l->b_shape[1] = l->in.h;
        l->w_shape[2] = l->b_shape[2] = l->in.w;
    }
    l->n_state = 0;
    l->n_saved = 2;
    l->n_saved_fixed = 0;
    l->workspace = 2;
    return 0;
}

static void ln_init(layer_t *l, init_mode_t mode, uint64_t seed) {
    (void)mode;
    (void)seed;
    for (size_t j = 0; j < l->n_bias; j++) {
        l->w[j] = 1.0f;
        l->b[j] = 0.0f;
    }
}

enum { P_FWD, P_BWD, P_JVP_FWD, P_JVP_BWD };

typedef struct {
    const layer_t *l;
    int pass, B;
    long N;
    float *y, *ty, *dx, *dtx, *ws;
    const float *x, *tx, *dy, *dty;
} ln_job_t;

#define W(l, k) ((l)->w ? (l)->w[k] : 1.0f)
#define GET(p, k) ((p) ? (p)[k] : 0.0f)

/* per sample: statistics, y (and ty); dx (and dtx) */
static void ln_sample_range(void *arg, long i0, long i1) {
    const ln_job_t *j = arg;
    const layer_t *l = j->l;
    long N = j->N;
    for (long i = i0; i < i1; i++) {
        size_t o = (size_t)i * N;
        const float *x = j->x + o;
        float mean, r;
        if (j->pass == P_FWD || j->pass == P_JVP_FWD) {
            double s = 0, q = 0;
            for (long k = 0; k < N; k++) s += x[k];
            double m = s / (double)N;
            for (long k = 0; k < N; k++) q += (x[k] - m) * (x[k] - m);
            mean = (float)m;
            r = (float)norm_inv_std(q / (double)N, l->eps);
            l->saved[2 * i] = mean;
            l->saved[2 * i + 1] = r;
            float *y = j->y + o;
            for (long k = 0; k < N; k++) y[k] = norm_affine(norm_hat(x[k], mean, r), W(l, k), l->b ? l->b[k] : 0.0f);
        } else {
            mean = l->saved[2 * i];
            r = l->saved[2 * i + 1];
        }
        double n = (double)N;
        if (j->pass == P_BWD) {
            if (!j->dx) continue;
            const float *dy = j->dy + o;
            double sa = 0, sax = 0;
            for (long k = 0; k < N; k++) {
                double a = (double)W(l, k) * dy[k];
                sa += a;
                sax += a * norm_hat(x[k], mean, r);
            }
            for (long k = 0; k < N; k++)
                j->dx[o + k] = norm_dx(W(l, k) * dy[k], norm_hat(x[k], mean, r), r, sa / n, sax / n);
            continue;
        }
        if (j->pass == P_FWD) continue;
        /* tangent statistics: mean(tx), mean(x_hat tx) */
        const float *tx = j->tx + o;
        double st = 0, sxt = 0;
        for (long k = 0; k < N; k++) {
            st += tx[k];
            sxt += (double)norm_hat(x[k], mean, r) * tx[k];
        }
        double mt = st / n, m = sxt / n;
        if (j->pass == P_JVP_FWD) {
            for (long k = 0; k < N; k++)
                j->ty[o + k] = W(l, k) * (float)(r * ((double)tx[k] - mt - (double)norm_hat(x[k], mean, r) * m));
            continue;
        }
        /* P_JVP_BWD */
        j->ws[2 * i] = (float)mt;
        j->ws[2 * i + 1] = (float)m;
        if (!j->dx && !j->dtx) continue;
        double sa = 0, sax = 0, sc = 0, scx = 0, T = 0;
        for (long k = 0; k < N; k++) {
            double xh = norm_hat(x[k], mean, r), w = W(l, k);
            double a = w * GET(j->dy, o + k), c = w * GET(j->dty, o + k);
            double th = r * ((double)tx[k] - mt - xh * m);
            sa += a;
            sax += a * xh;
            sc += c;
            scx += c * xh;
            T += c * th;
        }
        for (long k = 0; k < N; k++) {
            double xh = norm_hat(x[k], mean, r), w = W(l, k);
            double a = w * GET(j->dy, o + k), c = w * GET(j->dty, o + k);
            double th = r * ((double)tx[k] - mt - xh * m);
            double pc = c - sc / n - xh * scx / n, pa = a - sa / n - xh * sax / n;
            if (j->dtx) j->dtx[o + k] = (float)(r * pc);
            if (j->dx) j->dx[o + k] = (float)(r * pa - r * (scx / n) * th - (double)r * r * m * pc - r * (T / n) * xh);
        }
    }
}

/* per element: dw, db summed over the samples in order; elements [k0, k1) by blocks of
 * LN_BLK so that each sample's rows are read contiguously (a stride of N per read was 3x
 * slower) */
enum { LN_BLK = 256 };

static void ln_param_range(void *arg, long k0, long k1) {
    const ln_job_t *j = arg;
    const layer_t *l = j->l;
    long N = j->N;
    int jvp = j->pass == P_JVP_BWD && j->dty;
    for (long kb = k0; kb < k1; kb += LN_BLK) {
        long nk = k1 - kb < LN_BLK ? k1 - kb : LN_BLK;
        double sw[LN_BLK] = {0}, sb[LN_BLK] = {0};
        for (int i = 0; i < j->B; i++) {
            size_t o = (size_t)i * N + kb;
            float mean = l->saved[2 * i], r = l->saved[2 * i + 1];
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
            l->dw[kb + k] += (float)sw[k];
            l->db[kb + k] += (float)sb[k];
        }
    }
}

static void ln_run(const nn_ctx_t *ctx, ln_job_t *j) {
    long work = (long)j->B * j->N;
    if (work >= 32768 && j->B > 1) cpu_parallel_for(ctx->be, j->B, ln_sample_range, j);
    else ln_sample_range(j, 0, j->B);
    if ((j->pass == P_BWD || j->pass == P_JVP_BWD) && j->l->dw && !ctx->skip_param_grads) {
        if (work >= 32768) cpu_parallel_for(ctx->be, j->N, ln_param_range, j);
        else ln_param_range(j, 0, j->N);
    }
}

static void ln_forward(const nn_ctx_t *ctx, layer_t *l, float *y, const float *x, int B) {
    ln_job_t j = {l, P_FWD, B, shape3_size(l->in), y, NULL, NULL, NULL, NULL, x, NULL, NULL, NULL};
    ln_run(ctx, &j);
}

static void ln_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, const float *dy, const float *x,
                        const float *y, int B) {
    (void)y;
    ln_job_t j = {l, P_BWD, B, shape3_size(l->in), NULL, NULL, dx, NULL, NULL, x, NULL, dy, NULL};
    ln_run(ctx, &j);
}

static void ln_jvp_forward(const nn_ctx_t *ctx, layer_t *l, float *y, float *ty, const float *x,
                           const float *tx, int B) {
    ln_job_t j = {l, P_JVP_FWD, B, shape3_size(l->in), y, ty, NULL, NULL, NULL, x, tx, NULL, NULL};
    ln_run(ctx, &j);
}

static void ln_jvp_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, float *dtx, const float *dy,
                            const float *dty, const float *x, const float *tx, const float *y,
                            const float *ty, int B) {
    (void)y;
    (void)ty;
    ln_job_t j = {l, P_JVP_BWD, B, shape3_size(l->in), NULL, NULL, dx, dtx, ctx->workspace, x, tx, dy, dty};
    ln_run(ctx, &j);
}

const layer_ops_t layer_ln_ops = {"ln", ln_setup, ln_init, ln_forward, ln_backward, ln_jvp_forward,
                                  ln_jvp_backward};
