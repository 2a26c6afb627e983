/* layer_conv.c: 2-D convolution, torch.nn.Conv2d (dilation 1, groups 1, zero padding).
 *
 *   x (B, C, H, W)   W (O, C, kh, kw)   b (O)   y (B, O, Ho, Wo)
 *   Ho = floor((H + 2 ph - kh) / sh) + 1, Wo likewise;  P = Ho*Wo, Q = H*W, kk = kh*kw
 *
 * The batch is processed in chunks of nb samples (a fixed function of the shapes: the chunk's
 * buffers stay near CONV_CHUNK_FLOATS), each chunk by batch-wide GEMMs, one of two ways,
 * chosen at setup by which needs less memory:
 *   im2col:  col (C*kk, nb*P) = im2col(x);  yt (O, nb*P) = W col;  y = yt transposed + b.
 *            backward: dyt = dy channel-major;  dW += dyt col^T;  dcol = W^T dyt;  dx = col2im(dcol)
 *            The GEMMs by col and col^T are backend_ops.h's gemm_im2col, which reads x itself:
 *            with our sgemm (lib/cpu/README.md, "Convolutions without the column matrix") col
 *            is never made, its panels are packed from x; otherwise im2col into the workspace.
 *            dx is gemm_col2im: with our sgemm one GEMM per phase of x's pixels (modulo the
 *            stride) whose B is packed from dyt, so dcol is never made either ("The scatter
 *            side"); otherwise the GEMM into the workspace, then col2im.
 *   kn2row:  (stride 1 and few output channels, e.g. a generator's last 7x7 conv to 1 channel,
 *            where col would be C*kk times the image)  xt (C, nb*Q) = x channel-major;
 *            z (O*kk, nb*Q) = W'^T xt with W' (C, O*kk) the weight regrouped (W itself when
 *            O = 1);  y = b + the shifted sum of z's rows (backend_ops.h shiftsum).
 *            backward: dz = the shifted scatter of dy;  dW' += xt dz^T;  dxt = W' dz;  dx = dxt
 *            transposed back.
 * Both compute the same sums; every GEMM goes through the backend (blocks that depend only on
 * the shapes), every loop splits over independent outputs: no result depends on the thread
 * count. Nothing is saved: backward recomputes im2col from x.
 *
 * The layer is affine in x: its passes are layer.c's layer_affine_* made from conv_apply and
 * conv_grad. Gradient penalty (jvp): ty = W * tx (no bias), and the reverse pass runs backward
 * twice: dW += from (dy, x) and from (dty, tx), db from dy, dx = W^T dy, dtx = W^T dty.
 *
 * Initialisation, from Philox (seed, PHILOX_STREAM_INIT, step = layer index), element j of the
 * weight (PyTorch layout) at index j and element j of the bias at index O*C*kk + j:
 *   INIT_TORCH: w, b = (2u - 1) / sqrt(C*kk)   (kaiming_uniform_(a=sqrt(5)) and torch's bias bound)
 *   INIT_DCGAN: w = 0.02 * philox_normal, b = 0. */
#include <stddef.h>

#include "lib/base/common.h"
#include "lib/backend/conv_math.h"
#include "conv_common.h"
#include "layer.h"

static conv_geom_t geom(const layer_t *l) {
    conv_geom_t g = {l->in.c, l->in.h, l->in.w, l->out.h, l->out.w, l->kh, l->kw, l->sh, l->sw, l->ph, l->pw};
    return g;
}

/* kn2row when it needs less memory than im2col (and stride 1: one tap per image position) */
static int use_kn2row(const layer_t *l) {
    long kk = conv_kk(l), P = (long)l->out.h * l->out.w, Q = (long)l->in.h * l->in.w;
    long C = l->in.c, O = l->out.c;
    return l->sh == 1 && l->sw == 1 && (C + O * kk) * Q < (C * kk + O) * P;
}

/* floats per sample of a chunk's buffers */
static size_t per_sample(const layer_t *l) {
    long kk = conv_kk(l), P = (long)l->out.h * l->out.w, Q = (long)l->in.h * l->in.w;
    long C = l->in.c, O = l->out.c;
    return use_kn2row(l) ? (size_t)((C + O * kk) * Q) : (size_t)((C * kk + O) * P);
}

static int conv_setup(layer_t *l) {
    shape3_t in = l->in;
    if (l->channels <= 0) return gt_err("number of output channels must be positive");
    if (in.h + 2L * l->ph < l->kh || in.w + 2L * l->pw < l->kw)
        return gt_err("kernel %dx%d is larger than the padded input %ldx%ld", l->kh, l->kw, in.h + 2L * l->ph,
                      in.w + 2L * l->pw);
    if (conv_check_kernel(l)) return -1;
    long kk = conv_kk(l), O = l->channels;
    l->out = (shape3_t){l->channels, conv_out_len(in.h, l->kh, l->sh, l->ph), conv_out_len(in.w, l->kw, l->sw, l->pw)};
    l->n_bias = l->has_bias ? (size_t)O : 0;
    l->n_params = (size_t)O * (size_t)in.c * (size_t)kk + l->n_bias;
    l->w_ndim = 4;
    l->w_shape[0] = l->channels;
    l->w_shape[1] = in.c;
    l->w_shape[2] = l->kh;
    l->w_shape[3] = l->kw;
    l->b_ndim = 1;
    l->b_shape[0] = l->channels;
    l->n_state = l->n_saved = l->n_saved_fixed = 0;
    if (conv_workspace(l, per_sample(l))) return -1;
    /* kn2row with several output channels: W' and dW' (C, O*kk); im2col: gemm_col2im's wa */
    l->workspace_fixed = !use_kn2row(l) ? conv_align16((size_t)in.c * (size_t)(O * kk))
                         : O > 1        ? 2 * conv_align16((size_t)in.c * (size_t)(O * kk))
                                        : 0;
    return 0;
}

static void conv_init(backend_t *be, layer_t *l, init_mode_t mode, uint64_t seed) {
    layer_init_affine(be, l, mode, seed, (double)l->in.c * (double)conv_kk(l));
}

/* kn2row's regrouped weight: wp (C, O*kk) from w (O, C, kk), wp[c, o*kk + t] = w[o, c, t]: the
 * channel-major transpose with O as the "batch"; and back, accumulating into dw. */

/* ---- passes -------------------------------------------------------------------------- */

/* y (B, O, Ho, Wo) = conv(x) (+ b when with_bias) */
static void conv_apply(const nn_ctx_t *ctx, const layer_t *l, float *y, const float *x, int B, int with_bias) {
    backend_t *be = ctx->be;
    conv_geom_t g = geom(l);
    int C = l->in.c, O = l->out.c, nb = conv_chunk(per_sample(l), B);
    long kk = conv_kk(l), P = (long)l->out.h * l->out.w, Q = (long)l->in.h * l->in.w;
    const float *bias = with_bias ? l->b : NULL;
    if (use_kn2row(l)) {
        const float *wp = l->w;
        float *ws = ctx->workspace;
        if (O > 1) {
            be->to_cmajor(be, ws, l->w, C, kk, O);
            wp = ws;
            ws += l->workspace_fixed;
        }
        for (int b0 = 0; b0 < B; b0 += nb) {
            int n = B - b0 < nb ? B - b0 : nb;
            float *xt = ws, *z = ws + conv_align16((size_t)C * n * Q);
            be->to_cmajor(be, xt, x + (size_t)b0 * C * Q, C, Q, n);
            be->gemm(be, 1, 0, (int)(O * kk), (int)(n * Q), C, 1.0f, wp, (int)(O * kk), xt, (int)(n * Q), 0.0f, z,
                     (int)(n * Q));
            be->shiftsum(be, &g, O, y + (size_t)b0 * O * P, z, bias, n);
        }
        return;
    }
    for (int b0 = 0; b0 < B; b0 += nb) {
        int n = B - b0 < nb ? B - b0 : nb;
        float *col = ctx->workspace, *yt = col + conv_align16((size_t)C * kk * n * P);
        be->gemm_im2col(be, &g, x + (size_t)b0 * C * Q, n, col, NULL, 0, 0, O, 1.0f, l->w, (int)(C * kk), 0.0f, yt,
                        (int)(n * P));
        be->from_cmajor(be, y + (size_t)b0 * O * P, yt, bias, O, P, n, 0);
    }
}

/* dW += the weight gradient of (dy, x) and db += sum dy when with_bias (neither when
 * ctx->skip_param_grads); dx = W^T dy unless NULL */
static void conv_grad(const nn_ctx_t *ctx, layer_t *l, float *dx, const float *dy, const float *x, int B,
                      int with_bias) {
    backend_t *be = ctx->be;
    conv_geom_t g = geom(l);
    int C = l->in.c, O = l->out.c, nb = conv_chunk(per_sample(l), B);
    long kk = conv_kk(l), P = (long)l->out.h * l->out.w, Q = (long)l->in.h * l->in.w;
    int pg = !ctx->skip_param_grads;
    if (!pg && !dx) return;
    if (pg && with_bias && l->db) be->bias_grad(be, l->db, dy, B, O, P);
    if (use_kn2row(l)) {
        const float *wp = l->w;
        float *dwp = l->dw, *ws = ctx->workspace;
        if (O > 1) {
            size_t nwp = conv_align16((size_t)C * (size_t)(O * kk));
            be->to_cmajor(be, ws, l->w, C, kk, O);
            wp = ws;
            dwp = ws + nwp;
            be->zero(be, dwp, sizeof(float) * (size_t)C * (size_t)(O * kk));
            ws += l->workspace_fixed;
        }
        for (int b0 = 0; b0 < B; b0 += nb) {
            int n = B - b0 < nb ? B - b0 : nb;
            float *dz = ws, *xt = ws + conv_align16((size_t)(O * kk) * n * Q);
            be->shiftscatter(be, &g, O, dz, dy + (size_t)b0 * O * P, n);
            if (pg) {
                be->to_cmajor(be, xt, x + (size_t)b0 * C * Q, C, Q, n);
                be->gemm(be, 0, 1, C, (int)(O * kk), (int)(n * Q), 1.0f, xt, (int)(n * Q), dz, (int)(n * Q), 1.0f,
                         dwp, (int)(O * kk));
            }
            if (dx) {
                be->gemm(be, 0, 0, C, (int)(n * Q), (int)(O * kk), 1.0f, wp, (int)(O * kk), dz, (int)(n * Q), 0.0f,
                         xt, (int)(n * Q));
                be->from_cmajor(be, dx + (size_t)b0 * C * Q, xt, NULL, C, Q, n, 0);
            }
        }
        if (O > 1 && pg) be->from_cmajor(be, l->dw, dwp, NULL, C, kk, O, 1);
        return;
    }
    float *wa = ctx->workspace; /* room for the weights regrouped (workspace_fixed) */
    int wa_ready = 0;           /* regrouped by the first chunk's call, kept for the others */
    for (int b0 = 0; b0 < B; b0 += nb) {
        int n = B - b0 < nb ? B - b0 : nb;
        float *dyt = wa + l->workspace_fixed, *col = dyt + conv_align16((size_t)O * n * P);
        be->to_cmajor(be, dyt, dy + (size_t)b0 * O * P, O, P, n);
        if (pg) {
            be->gemm_im2col(be, &g, x + (size_t)b0 * C * Q, n, col, NULL, 0, 1, O, 1.0f, dyt, (int)(n * P), 1.0f,
                            l->dw, (int)(C * kk));
        }
        if (dx)
            be->gemm_col2im(be, &g, dx + (size_t)b0 * C * Q, NULL, n, col, wa, &wa_ready, 1, O, l->w, (int)(C * kk),
                            dyt, (int)(n * P));
    }
}

const layer_ops_t layer_conv_ops = {
    .name = "conv",
    .args = SPEC_UNITS | SPEC_K | SPEC_S | SPEC_P | SPEC_NOBIAS | SPEC_SN | SPEC_WN,
    .size_name = "number of output channels",
    .setup = conv_setup,
    .init = conv_init,
    .forward = layer_affine_forward,
    .backward = layer_affine_backward,
    .jvp_forward = layer_affine_jvp_forward,
    .jvp_backward = layer_affine_jvp_backward,
    .jvp_tangent = layer_affine_jvp_tangent,
    .apply = conv_apply,
    .grad = conv_grad,
};
