/* layer_class.c: the class-conditional layers (lib/nn/spec.md, "Class-conditional layers"). They
 * read the batch's classes from the pass's context (ctx->labels: B int64 in [0, K) on the
 * device) and compute through the backend's class operations (backend_ops.h; math in
 * lib/backend/class_math.h). K is the layer's `classes`; a model checks that every conditional layer
 * has the model's K (lib/gan/model.c, net_classes).
 *
 *   embed K N   x (B, C, S) -> y (B, C + N, S): x, then the class's learned embedding
 *               table[label] (weight (K, N), torch nn.Embedding) at every position. For a
 *               generator: z joined with the class embedding.
 *   onehot K    x (B, C, S) -> y (B, C + K, S): x, then the one-hot planes of the class.
 *   cbn K       conditional BatchNorm: y = xhat w[label, c] + b[label, c], xhat the batch-
 *               normalised x (BatchNorm without affine, running statistics shared by the
 *               classes); weight, bias (K, C).
 *               saved: mean (C), inv_std (C), then xhat (B, C, S); workspace: dxhat (B, C, S).
 *   proj K      the projection discriminator's output: h (B, F) -> y (B, 1) =
 *               h W^T + b + <table[label], h> (Miyato & Koyama 2018); weight (1, F), bias (1)
 *               (nobias drops it), embed.weight (K, F). Linear in h, so its tangent passes are
 *               exact and a WGAN-GP critic may end with it.
 *
 * Initialisation, from Philox (seed, PHILOX_STREAM_INIT, step = layer index):
 *   embed: table N(0, 1) in both modes (torch's nn.Embedding; DCGAN's 0.02 would make the
 *          class 50 times quieter than z).
 *   cbn:   weight 1 (torch) or 1 + 0.02 N(0, 1) (dcgan), bias 0, like bn.
 *   proj:  weight and bias as linear 1's; the table from the weight's distribution (uniform
 *          +-1/sqrt(F), or 0.02 N(0, 1)) at indices after the bias. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "lib/backend/class_math.h"
#include "lib/base/common.h"
#include "layer.h"
#include "lib/base/philox.h"

static int classes_ok(const layer_t *l) {
    if (l->classes < 1) return gt_err("the number of classes must be at least 1");
    return 0;
}

/* ---- embed K N, onehot K: class channels joined to the input ----------------------------- */

static int concat_width(const layer_t *l) { return l->ops->name[0] == 'e' ? l->units : l->classes; }

static int concat_setup(layer_t *l) {
    if (classes_ok(l)) return -1;
    int E = concat_width(l);
    if ((long)l->in.c + E > 100000000) return gt_err("too many channels");
    l->out = (shape3_t){l->in.c + E, l->in.h, l->in.w};
    l->n_bias = 0;
    l->n_params = l->ops->name[0] == 'e' ? (size_t)l->classes * (size_t)E : 0;
    l->w_ndim = 2;
    l->w_shape[0] = l->classes;
    l->w_shape[1] = E;
    l->n_state = l->n_saved = l->n_saved_fixed = l->workspace = 0;
    return 0;
}

static void embed_init(backend_t *be, layer_t *l, init_mode_t mode, uint64_t seed) {
    (void)mode;
    be->philox_fill(be, l->w, l->n_params, FILL_NORMAL, seed, PHILOX_STREAM_INIT, (uint32_t)l->index, 0, 1.0f, 0.0f);
}

static void concat_forward(const nn_ctx_t *ctx, layer_t *l, float *y, const float *x, int B) {
    int kind = l->n_params ? CLASS_CAT_TABLE : CLASS_CAT_ONEHOT;
    ctx->be->class_concat(ctx->be, kind, y, x, l->w, ctx->labels, B, l->in.c, concat_width(l),
                          (long)l->in.h * l->in.w);
}

static void concat_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, const float *dy, const float *x,
                            const float *y, int B) {
    (void)x;
    (void)y;
    float *dtable = l->n_params && !ctx->skip_param_grads ? l->dw : NULL;
    ctx->be->class_concat_backward(ctx->be, dx, dtable, dy, ctx->labels, B, l->in.c,
                                   concat_width(l), (long)l->in.h * l->in.w, l->classes);
}

/* the class channels do not depend on x: their tangent is zero */
static void concat_jvp_tangent(const nn_ctx_t *ctx, layer_t *l, float *ty, const float *x, const float *tx, int B) {
    (void)x;
    ctx->be->class_concat(ctx->be, CLASS_CAT_ZERO, ty, tx, NULL, ctx->labels, B, l->in.c, concat_width(l),
                          (long)l->in.h * l->in.w);
}

static void concat_jvp_forward(const nn_ctx_t *ctx, layer_t *l, float *y, float *ty, const float *x,
                               const float *tx, int B) {
    concat_forward(ctx, l, y, x, B);
    concat_jvp_tangent(ctx, l, ty, x, tx, B);
}

/* dy NULL (zero): no table gradient, dx zeros */
static void concat_jvp_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, float *dtx, const float *dy,
                                const float *dty, const float *x, const float *tx, const float *y,
                                const float *ty, int B) {
    (void)tx;
    (void)ty;
    if (dy) concat_backward(ctx, l, dx, dy, x, y, B);
    else if (dx) ctx->be->zero(ctx->be, dx, sizeof(float) * (size_t)B * (size_t)shape3_size(l->in));
    if (dtx)
        ctx->be->class_concat_backward(ctx->be, dtx, NULL, dty, ctx->labels, B, l->in.c, concat_width(l),
                                       (long)l->in.h * l->in.w, l->classes);
}

const layer_ops_t layer_embed_ops = {
    .name = "embed",
    .args = SPEC_CLASSES | SPEC_UNITS | SPEC_SN,
    .size_name = "embedding size N",
    .setup = concat_setup,
    .init = embed_init,
    .forward = concat_forward,
    .backward = concat_backward,
    .jvp_forward = concat_jvp_forward,
    .jvp_backward = concat_jvp_backward,
    .jvp_tangent = concat_jvp_tangent,
};

const layer_ops_t layer_onehot_ops = {
    .name = "onehot",
    .args = SPEC_CLASSES,
    .setup = concat_setup,
    .forward = concat_forward,
    .backward = concat_backward,
    .jvp_forward = concat_jvp_forward,
    .jvp_backward = concat_jvp_backward,
    .jvp_tangent = concat_jvp_tangent,
};

/* ---- cbn K: conditional BatchNorm ---------------------------------------------------------- */

static int cbn_setup(layer_t *l) {
    if (classes_ok(l)) return -1;
    if (!(l->eps > 0)) return gt_err("eps must be positive");
    if (!(l->momentum >= 0 && l->momentum <= 1)) return gt_err("momentum must be in [0, 1]");
    size_t C = (size_t)l->in.c, S = (size_t)l->in.h * (size_t)l->in.w;
    l->out = l->in;
    l->n_bias = (size_t)l->classes * C;
    l->n_params = 2 * l->n_bias;
    l->w_ndim = l->b_ndim = 2;
    l->w_shape[0] = l->b_shape[0] = l->classes;
    l->w_shape[1] = l->b_shape[1] = (int)C;
    l->n_state = 2 * C;
    l->n_saved = C * S;
    l->n_saved_fixed = 2 * C;
    l->workspace = C * S;
    return 0;
}

static void cbn_init(backend_t *be, layer_t *l, init_mode_t mode, uint64_t seed) {
    layer_bn_init(be, l, mode, seed, l->n_bias);
}

/* the plain normalisation (w, b, dw, db NULL): the class's scale and shift are applied here */
static bn_args_t cbn_args(const nn_ctx_t *ctx, const layer_t *l, int B) { return layer_bn_args(ctx, l, B); }

static float *cbn_xhat(const layer_t *l) { return l->saved + 2 * (size_t)l->in.c; }

static void cbn_forward(const nn_ctx_t *ctx, layer_t *l, float *y, const float *x, int B) {
    bn_args_t a = cbn_args(ctx, l, B);
    float *xhat = cbn_xhat(l);
    a.x = x;
    a.y = xhat;
    ctx->be->bn_forward(ctx->be, &a);
    if (ctx->training && l->num_batches_tracked) ++*l->num_batches_tracked;
    ctx->be->class_affine(ctx->be, y, xhat, l->w, l->b, ctx->labels, B, l->in.c, a.S);
}

static void cbn_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, const float *dy, const float *x,
                         const float *y, int B) {
    (void)y;
    /* cbn's parameter gradients are computed even under ctx->skip_param_grads: that flag is set
     * only on D's passes (G's update, the penalty's first pass), and gan-init refuses cbn in a
     * wgan-gp critic; in a D of another loss the extra sums are discarded with D's gradients. */
    bn_args_t a = cbn_args(ctx, l, B);
    float *dxhat = dx ? ctx->workspace : NULL;
    ctx->be->class_affine_backward(ctx->be, dxhat, l->dw, l->db, dy, cbn_xhat(l), l->w, ctx->labels, B, l->in.c,
                                   a.S, l->classes);
    if (!dx) return;
    a.x = x;
    a.dy = dxhat;
    a.dx = dx;
    ctx->be->bn_backward(ctx->be, &a);
}

const layer_ops_t layer_cbn_ops = {
    .name = "cbn",
    .args = SPEC_CLASSES | SPEC_EPS | SPEC_MOM,
    .setup = cbn_setup,
    .init = cbn_init,
    .forward = cbn_forward,
    .backward = cbn_backward,
};

/* ---- proj K: linear 1 plus the projection term ---------------------------------------------- */

static int proj_setup(layer_t *l) {
    if (classes_ok(l)) return -1;
    if (l->in.h != 1 || l->in.w != 1)
        return gt_err("input is %dx%dx%d, not a feature vector: put flatten before proj", l->in.c, l->in.h, l->in.w);
    size_t F = (size_t)l->in.c;
    l->out = (shape3_t){1, 1, 1};
    l->n_bias = l->has_bias ? 1 : 0;
    l->n_extra = (size_t)l->classes * F;
    l->n_params = F + l->n_bias + l->n_extra;
    l->w_ndim = 2;
    l->w_shape[0] = 1;
    l->w_shape[1] = (int)F;
    l->b_ndim = 1;
    l->b_shape[0] = 1;
    l->e_shape[0] = l->classes;
    l->e_shape[1] = (int)F;
    l->n_state = l->n_saved = l->n_saved_fixed = l->workspace = 0;
    return 0;
}

static void proj_init(backend_t *be, layer_t *l, init_mode_t mode, uint64_t seed) {
    size_t F = (size_t)l->in.c;
    float bound = (float)(1.0 / sqrt((double)F));
    uint32_t step = (uint32_t)l->index;
    uint64_t e0 = F + l->n_bias;
    if (mode == INIT_DCGAN) {
        be->philox_fill(be, l->w, F, FILL_NORMAL, seed, PHILOX_STREAM_INIT, step, 0, 0.02f, 0.0f);
        if (l->n_bias) be->fill(be, l->b, 0.0f, 1);
        be->philox_fill(be, l->e, l->n_extra, FILL_NORMAL, seed, PHILOX_STREAM_INIT, step, e0, 0.02f, 0.0f);
    } else {
        be->philox_fill(be, l->w, F, FILL_UNIFORM_PM, seed, PHILOX_STREAM_INIT, step, 0, bound, 0.0f);
        if (l->n_bias) be->philox_fill(be, l->b, 1, FILL_UNIFORM_PM, seed, PHILOX_STREAM_INIT, step, F, bound, 0.0f);
        be->philox_fill(be, l->e, l->n_extra, FILL_UNIFORM_PM, seed, PHILOX_STREAM_INIT, step, e0, bound, 0.0f);
    }
}

/* y (B, 1) = h W^T (+ b) + <table[label], h> */
static void proj_apply(const nn_ctx_t *ctx, const layer_t *l, float *y, const float *h, int B, int with_bias) {
    backend_t *be = ctx->be;
    int F = l->in.c;
    be->gemm(be, 0, 1, B, 1, F, 1.0f, h, F, l->w, F, 0.0f, y, 1);
    if (with_bias && l->b) be->bias_add(be, y, l->b, B, 1, 1);
    be->class_proj(be, y, h, l->e, ctx->labels, B, F);
}

/* the gradients of y's cotangent dy (B): dW += dy^T h, db += sum dy, dtable (all three left
 * alone under ctx->skip_param_grads), and dh when wanted */
static void proj_grads(const nn_ctx_t *ctx, layer_t *l, float *dh, const float *dy, const float *h, int B,
                       int with_bias) {
    backend_t *be = ctx->be;
    int F = l->in.c, pg = !ctx->skip_param_grads;
    if (pg) be->gemm(be, 1, 0, 1, F, B, 1.0f, dy, 1, h, F, 1.0f, l->dw, F);
    if (pg && with_bias && l->db) be->bias_grad(be, l->db, dy, B, 1, 1);
    if (dh) be->gemm(be, 0, 0, B, F, 1, 1.0f, dy, 1, l->w, F, 0.0f, dh, F);
    be->class_proj_backward(be, dh, pg ? l->de : NULL, dy, h, l->e, ctx->labels, B, F, l->classes);
}

static void proj_forward(const nn_ctx_t *ctx, layer_t *l, float *y, const float *x, int B) {
    proj_apply(ctx, l, y, x, B, 1);
}

static void proj_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, const float *dy, const float *x,
                          const float *y, int B) {
    (void)y;
    proj_grads(ctx, l, dx, dy, x, B, 1);
}

static void proj_jvp_tangent(const nn_ctx_t *ctx, layer_t *l, float *ty, const float *x, const float *tx, int B) {
    (void)x;
    proj_apply(ctx, l, ty, tx, B, 0);
}

static void proj_jvp_forward(const nn_ctx_t *ctx, layer_t *l, float *y, float *ty, const float *x, const float *tx,
                             int B) {
    proj_apply(ctx, l, y, x, B, 1);
    proj_jvp_tangent(ctx, l, ty, x, tx, B);
}

/* dy NULL (zero): only the tangent's products */
static void proj_jvp_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, float *dtx, const float *dy,
                              const float *dty, const float *x, const float *tx, const float *y, const float *ty,
                              int B) {
    (void)y;
    (void)ty;
    if (dy) proj_grads(ctx, l, dx, dy, x, B, 1);
    else if (dx) ctx->be->zero(ctx->be, dx, sizeof(float) * (size_t)B * (size_t)l->in.c);
    proj_grads(ctx, l, dtx, dty, tx, B, 0);
}

const layer_ops_t layer_proj_ops = {
    .name = "proj",
    .args = SPEC_CLASSES | SPEC_NOBIAS,
    .setup = proj_setup,
    .init = proj_init,
    .forward = proj_forward,
    .backward = proj_backward,
    .jvp_forward = proj_jvp_forward,
    .jvp_backward = proj_jvp_backward,
    .jvp_tangent = proj_jvp_tangent,
};
