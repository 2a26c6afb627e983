/* layer_convT.c: transposed 2-D convolution, torch.nn.ConvTranspose2d (dilation 1, groups 1).
 *
 *   x (B, I, H, W)   W (I, O, kh, kw)   b (O)   y (B, O, Ho, Wo)
 *   Ho = (H - 1) sh - 2 ph + kh + oph, Wo likewise (output padding < stride);  Q = H*W, kk = kh*kw
 *
 * It is the adjoint of a convolution from y's shape to x's (conv_math.h's geometry with the
 * image side y and the grid side x). The batch is processed in chunks of nb samples (a fixed
 * function of the shapes), each chunk by batch-wide GEMMs (torch 1.13 runs one small GEMM per
 * sample here):
 *   forward:  xt (I, nb*Q) = x channel-major;  col (O*kk, nb*Q) = W^T xt;  y = col2im(col) + b
 *             (backend_ops.h's gemm_col2im: with our sgemm, one GEMM per output phase instead,
 *             lib/cpu/README.md "The scatter side"; col never made)
 *   backward: dcol = im2col(dy);  xt = x channel-major;  dW += xt dcol^T;  dxt = W dcol (into xt's
 *             buffer);  dx = dxt transposed back;  db += sum of dy per channel.
 *             The GEMMs by dcol^T and dcol are backend_ops.h's gemm_im2col, reading dy itself
 *             (with our sgemm dcol is never made, its panels are packed from dy; otherwise the
 *             first call makes it in the workspace and the second reuses it).
 * Every GEMM goes through the backend (blocks that depend only on the shapes) and every loop
 * splits over independent outputs, so no result depends on the thread count. Nothing saved.
 *
 * The layer is affine in x: its passes are layer.c's layer_affine_* made from convT_apply and
 * convT_grad. Gradient penalty (jvp): ty = convT(tx) without bias, and the reverse pass runs
 * backward for (dy, x) and for (dty, tx), both accumulating dW (db from dy only).
 *
 * Initialisation, from Philox (seed, PHILOX_STREAM_INIT, step = layer index), element j of the
 * weight (PyTorch layout I, O, kh, kw) at index j and element j of the bias at index I*O*kk + j:
 *   INIT_TORCH: w, b = (2u - 1) / sqrt(O*kk)   (torch computes fan_in from the weight's second
 *               dimension, which for a transposed convolution is the output channels)
 *   INIT_DCGAN: w = 0.02 * philox_normal, b = 0. */
#include <stddef.h>

#include "lib/base/common.h"
#include "lib/backend/conv_math.h"
#include "conv_common.h"
#include "layer.h"

/* image side: the output y; grid side: the input x */
static conv_geom_t geom(const layer_t *l) {
    conv_geom_t g = {l->out.c, l->out.h, l->out.w, l->in.h, l->in.w, l->kh, l->kw, l->sh, l->sw, l->ph, l->pw};
    return g;
}

static size_t per_sample(const layer_t *l) {
    return (size_t)(((long)l->in.c + (long)l->out.c * conv_kk(l)) * ((long)l->in.h * l->in.w));
}

static int convT_setup(layer_t *l) {
    shape3_t in = l->in;
    if (l->channels <= 0) return gt_err("number of output channels must be positive");
    if (l->oph >= l->sh || l->opw >= l->sw)
        return gt_err("output padding %dx%d must be smaller than the stride %dx%d", l->oph, l->opw, l->sh, l->sw);
    if (conv_check_kernel(l)) return -1;
    long kk = conv_kk(l), O = l->channels;
    long ho = (long)(in.h - 1) * l->sh - 2L * l->ph + l->kh + l->oph;
    long wo = (long)(in.w - 1) * l->sw - 2L * l->pw + l->kw + l->opw;
    if (ho <= 0 || wo <= 0)
        return gt_err("output %ldx%ld is empty (input %dx%d, padding %dx%d)", ho, wo, in.h, in.w, l->ph, l->pw);
    if (ho > (1L << 20) || wo > (1L << 20)) return gt_err("output %ldx%ld is too large", ho, wo);
    l->out = (shape3_t){l->channels, (int)ho, (int)wo};
    l->n_bias = l->has_bias ? (size_t)O : 0;
    l->n_params = (size_t)in.c * (size_t)O * (size_t)kk + l->n_bias;
    l->w_ndim = 4;
    l->w_shape[0] = in.c;
    l->w_shape[1] = l->channels;
    l->w_shape[2] = l->kh;
    l->w_shape[3] = l->kw;
    l->b_ndim = 1;
    l->b_shape[0] = l->channels;
    l->n_state = l->n_saved = l->n_saved_fixed = 0;
    if (conv_workspace(l, per_sample(l))) return -1;
    l->workspace_fixed = conv_align16((size_t)in.c * (size_t)(O * kk)); /* gemm_col2im's wa */
    return 0;
}

static void convT_init(backend_t *be, layer_t *l, init_mode_t mode, uint64_t seed) {
    layer_init_affine(be, l, mode, seed, (double)l->out.c * (double)conv_kk(l));
}

/* y (B, O, Ho, Wo) = convT(x) (+ b when with_bias) */
static void convT_apply(const nn_ctx_t *ctx, const layer_t *l, float *y, const float *x, int B, int with_bias) {
    backend_t *be = ctx->be;
    conv_geom_t g = geom(l);
    int I = l->in.c, O = l->out.c, nb = conv_chunk(per_sample(l), B);
    long kk = conv_kk(l), Q = (long)l->in.h * l->in.w, P = (long)l->out.h * l->out.w;
    float *wa = ctx->workspace; /* room for the weights regrouped (workspace_fixed) */
    int wa_ready = 0;           /* regrouped by the first chunk's call, kept for the others */
    for (int b0 = 0; b0 < B; b0 += nb) {
        int n = B - b0 < nb ? B - b0 : nb;
        float *xt = wa + l->workspace_fixed, *col = xt + conv_align16((size_t)I * n * Q);
        be->to_cmajor(be, xt, x + (size_t)b0 * I * Q, I, Q, n);
        be->gemm_col2im(be, &g, y + (size_t)b0 * O * P, with_bias ? l->b : NULL, n, col, wa, &wa_ready, 1, I, l->w,
                        (int)(O * kk), xt, (int)(n * Q));
    }
}

/* dW += the weight gradient of (dy, x) and db += sum dy when with_bias (neither when
 * ctx->skip_param_grads); dx = the input gradient unless NULL */
static void convT_grad(const nn_ctx_t *ctx, layer_t *l, float *dx, const float *dy, const float *x, int B,
                       int with_bias) {
    backend_t *be = ctx->be;
    conv_geom_t g = geom(l);
    int I = l->in.c, O = l->out.c, nb = conv_chunk(per_sample(l), B);
    long kk = conv_kk(l), Q = (long)l->in.h * l->in.w, P = (long)l->out.h * l->out.w;
    int pg = !ctx->skip_param_grads;
    if (!pg && !dx) return;
    if (pg && with_bias && l->db) be->bias_grad(be, l->db, dy, B, O, P);
    for (int b0 = 0; b0 < B; b0 += nb) {
        int n = B - b0 < nb ? B - b0 : nb;
        float *dcol = ctx->workspace, *xt = dcol + conv_align16((size_t)(O * kk) * n * Q);
        const float *dyc = dy + (size_t)b0 * O * P;
        int have_dcol = 0; /* dcol made by the first gemm_im2col, reused by the second */
        if (pg) {
            be->to_cmajor(be, xt, x + (size_t)b0 * I * Q, I, Q, n);
            be->gemm_im2col(be, &g, dyc, n, dcol, &have_dcol, 0, 1, I, 1.0f, xt, (int)(n * Q), 1.0f, l->dw,
                            (int)(O * kk));
        }
        if (dx) {
            be->gemm_im2col(be, &g, dyc, n, dcol, &have_dcol, 0, 0, I, 1.0f, l->w, (int)(O * kk), 0.0f, xt,
                            (int)(n * Q));
            be->from_cmajor(be, dx + (size_t)b0 * I * Q, xt, NULL, I, Q, n, 0);
        }
    }
}

const layer_ops_t layer_convT_ops = {
    .name = "convT",
    .args = SPEC_UNITS | SPEC_K | SPEC_S | SPEC_P | SPEC_OP | SPEC_NOBIAS | SPEC_SN | SPEC_WN,
    .size_name = "number of output channels",
    .setup = convT_setup,
    .init = convT_init,
    .forward = layer_affine_forward,
    .backward = layer_affine_backward,
    .jvp_forward = layer_affine_jvp_forward,
    .jvp_backward = layer_affine_jvp_backward,
    .jvp_tangent = layer_affine_jvp_tangent,
    .apply = convT_apply,
    .grad = convT_grad,
    .sn_dim = 1,
};
