/* layer.c: the table of layer kinds the spec parser knows (built from layer_kinds.h), and what
 * several kinds share: the initialisation of weights and biases, and the passes of the kinds
 * affine in their input; and the one place a layer's pass is run from (layer_forward and the
 * others), which adds spectral or weight normalization's steps around the kind's pass and shows
 * the pass's tensors to the context's observer (layer.h nn_observer_t). */
#include <math.h>
#include <string.h>

#include "layer.h"
#include "lib/base/common.h"
#include "lib/base/philox.h"

const layer_ops_t *const layer_kinds[] = {
#define LAYER_KIND(kind) &layer_##kind##_ops,
#include "layer_kinds.h"
#undef LAYER_KIND
    NULL,
};

const layer_ops_t *layer_kind_find(const char *name) {
    for (int i = 0; layer_kinds[i]; i++)
        if (strcmp(layer_kinds[i]->name, name) == 0) return layer_kinds[i];
    return NULL;
}

int layer_setup_checked(layer_t *l, const char *prefix) {
    if (l->ops->setup(l) || layer_sn_setup(l) || layer_wn_setup(l)) return gt_err_prefix(prefix);
    if (l->out.c <= 0 || l->out.h <= 0 || l->out.w <= 0)
        return gt_err("%s: output %dx%dx%d is empty (input %dx%dx%d)", prefix, l->out.c, l->out.h, l->out.w, l->in.c,
                      l->in.h, l->in.w);
    uint64_t sz;
    if (gt_mul_overflow((uint64_t)l->out.c * (uint64_t)l->out.h, (uint64_t)l->out.w, &sz) || sz > (1u << 30))
        return gt_err("%s: output %dx%dx%d is too large", prefix, l->out.c, l->out.h, l->out.w);
    if (l->n_bias + l->n_extra > l->n_params) return gt_err("%s: internal error: bias larger than parameters", prefix);
    return 0;
}

void layer_observe(const nn_ctx_t *ctx, const char *name, const char *kind, int grad, shape3_t shape,
                   const float *t, int B) {
    if (!ctx->observer || !t) return;
    nn_event_t e = {name, kind, grad, shape, B, t};
    ctx->observer->fn(ctx->observer->arg, ctx, &e);
}

void nn_event_download(const nn_ctx_t *ctx, const nn_event_t *e, float *host) {
    size_t n = (size_t)e->B * (size_t)shape3_size(e->shape);
    if (n) ctx->be->download(ctx->be, host, e->data, sizeof(float) * n);
}

void layer_forward(const nn_ctx_t *ctx, layer_t *l, float *y, const float *x, int B) {
    if (l->sn) layer_sn_forward(ctx, l, ctx->training);
    if (l->wn) layer_wn_forward(ctx, l);
    l->ops->forward(ctx, l, y, x, B);
    if (ctx->observer) layer_observe(ctx, l->name, l->ops->name, 0, l->out, y, B);
}

void layer_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, const float *dy, const float *x, const float *y,
                    int B) {
    if (ctx->observer) layer_observe(ctx, l->name, l->ops->name, 1, l->out, dy, B);
    int sn = l->sn && !ctx->skip_param_grads, wn = l->wn && !ctx->skip_param_grads;
    if (sn) layer_sn_backward_begin(ctx, l);
    if (wn) layer_wn_backward_begin(ctx, l);
    l->ops->backward(ctx, l, dx, dy, x, y, B);
    if (sn) layer_sn_backward_end(ctx, l);
    if (wn) layer_wn_backward_end(ctx, l);
}

/* ---- sequences with fused pairs (layer.h layer_seq_*) ------------------------------------- */

int layer_fuse_at(const nn_ctx_t *ctx, const layer_t *l, int cnt, int i) {
    if (ctx->fuse_off || ctx->observer || i < 0 || i + 1 >= cnt) return FUSE_NONE;
    if (layer_act_dropout_ok(ctx, &l[i], &l[i + 1])) return FUSE_ACT_DROPOUT;
    if (i + 2 < cnt && layer_act_dropout_ok(ctx, &l[i + 1], &l[i + 2])) return FUSE_NONE;
    if (layer_linear_act_ok(&l[i], &l[i + 1])) return FUSE_LINEAR_ACT;
    if (layer_bn_act_ok(&l[i], &l[i + 1])) return FUSE_BN_ACT;
    return FUSE_NONE;
}

int layer_seq_first_param(const layer_t *ls, int cnt) {
    for (int i = 0; i < cnt; i++)
        if (ls[i].n_params) return i;
    return cnt;
}

void layer_seq_forward(const nn_ctx_t *ctx, layer_t *ls, int cnt, float *const *outs, const float *x, int B) {
    for (int i = 0; i < cnt; i++) {
        layer_t *l = &ls[i];
        const float *in = i ? outs[i - 1] : x;
        int f = layer_fuse_at(ctx, ls, cnt, i);
        if (f == FUSE_NONE) {
            layer_forward(ctx, l, outs[i], in, B);
            continue;
        }
        if (f == FUSE_ACT_DROPOUT) layer_act_dropout_forward(ctx, l, l + 1, outs[i + 1], in, B);
        else if (f == FUSE_LINEAR_ACT) layer_linear_act_forward(ctx, l, l + 1, outs[i], outs[i + 1], in, B);
        else layer_bn_act_forward(ctx, l, l + 1, outs[i + 1], in, B);
        i++;
    }
}

/* where layer i of a sequence writes its input gradient: gx for the first, NULL when nobody
 * needs it (no gx, and no layer with parameters before it) */
static float *seq_grad_in(float *const *bufs, int i, float *gx, int first) {
    if (i == 0) return gx;
    if (!gx && i <= first) return NULL;
    return bufs[i & 1];
}

static void seq_hook(const nn_ctx_t *ctx, const layer_t *l, size_t *from) {
    if (from && ctx->grad_hook && l->n_params) ctx->grad_hook->fn(ctx->grad_hook->arg, *from -= l->n_params);
}

void layer_seq_backward(const nn_ctx_t *ctx, layer_t *ls, int cnt, float *const *outs, const float *x,
                        const float *g, float *gx, float *const *bufs, size_t *from, int B) {
    int first = layer_seq_first_param(ls, cnt);
    for (int i = cnt - 1; i >= 0; i--) {
        layer_t *l = &ls[i];
        if (!gx && i < first) break;
        int f = layer_fuse_at(ctx, ls, cnt, i - 1);
        const float *in0 = i > 1 ? outs[i - 2] : x; /* layer i-1's input, when fused */
        float *gin2 = f == FUSE_ACT_DROPOUT ? seq_grad_in(bufs, i - 1, gx, first) : NULL;
        if (gin2) { /* layers i-1 and i in one pass (gin2 may be g's buffer: element-wise) */
            layer_act_dropout_backward(ctx, l - 1, l, gin2, g, in0, B);
            g = gin2;
            i--;
            continue;
        }
        if (f == FUSE_BN_ACT) { /* bn i-1 and its activation i; bn's dx may be NULL (grads only) */
            float *gin = seq_grad_in(bufs, i - 1, gx, first);
            layer_bn_act_backward(ctx, l - 1, l, gin, g, in0, B);
            g = gin;
            i--;
            seq_hook(ctx, l - 1, from);
            continue;
        }
        float *gin = seq_grad_in(bufs, i, gx, first);
        layer_backward(ctx, l, gin, g, i ? outs[i - 1] : x, outs[i], B);
        g = gin;
        seq_hook(ctx, l, from);
    }
}

void layer_jvp_forward(const nn_ctx_t *ctx, layer_t *l, float *y, float *ty, const float *x, const float *tx, int B) {
    if (l->sn) layer_sn_forward(ctx, l, 0);
    if (l->wn) layer_wn_forward(ctx, l);
    l->ops->jvp_forward(ctx, l, y, ty, x, tx, B);
}

void layer_jvp_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, float *dtx, const float *dy, const float *dty,
                        const float *x, const float *tx, const float *y, const float *ty, int B) {
    int sn = l->sn && !ctx->skip_param_grads, wn = l->wn && !ctx->skip_param_grads;
    if (sn) layer_sn_backward_begin(ctx, l);
    if (wn) layer_wn_backward_begin(ctx, l);
    l->ops->jvp_backward(ctx, l, dx, dtx, dy, dty, x, tx, y, ty, B);
    if (sn) layer_sn_backward_end(ctx, l);
    if (wn) layer_wn_backward_end(ctx, l);
}

void layer_jvp_tangent(const nn_ctx_t *ctx, layer_t *l, float *y, float *ty, const float *x, const float *tx, int B) {
    if (!l->ops->jvp_tangent) {
        layer_jvp_forward(ctx, l, y, ty, x, tx, B);
        return;
    }
    if (l->sn) layer_sn_forward(ctx, l, 0); /* W as layer_jvp_forward makes it (the forward's W) */
    if (l->wn) layer_wn_forward(ctx, l);
    l->ops->jvp_tangent(ctx, l, ty, x, tx, B);
}

int layer_jvp_curved(const layer_t *l) {
    for (int j = 0; j < l->n_sub; j++)
        if (layer_jvp_curved(&l->sub[j])) return 1;
    return l->ops->jvp_curved;
}

void layer_init_affine(backend_t *be, layer_t *l, init_mode_t mode, uint64_t seed, double fan_in) {
    size_t nw = l->n_params - l->n_bias;
    uint32_t step = (uint32_t)l->index;
    if (mode == INIT_DCGAN) {
        be->philox_fill(be, l->w, nw, FILL_NORMAL, seed, PHILOX_STREAM_INIT, step, 0, 0.02f, 0.0f);
        if (l->n_bias) be->fill(be, l->b, 0.0f, l->n_bias);
    } else {
        float bound = (float)(1.0 / sqrt(fan_in));
        be->philox_fill(be, l->w, nw, FILL_UNIFORM_PM, seed, PHILOX_STREAM_INIT, step, 0, bound, 0.0f);
        if (l->n_bias)
            be->philox_fill(be, l->b, l->n_bias, FILL_UNIFORM_PM, seed, PHILOX_STREAM_INIT, step, nw, bound, 0.0f);
    }
}

void layer_affine_forward(const nn_ctx_t *ctx, layer_t *l, float *y, const float *x, int B) {
    l->ops->apply(ctx, l, y, x, B, 1);
}

void layer_affine_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, const float *dy, const float *x,
                           const float *y, int B) {
    (void)y;
    l->ops->grad(ctx, l, dx, dy, x, B, 1);
}

void layer_affine_jvp_forward(const nn_ctx_t *ctx, layer_t *l, float *y, float *ty, const float *x,
                              const float *tx, int B) {
    l->ops->apply(ctx, l, y, x, B, 1);
    layer_affine_jvp_tangent(ctx, l, ty, x, tx, B);
}

void layer_affine_jvp_tangent(const nn_ctx_t *ctx, layer_t *l, float *ty, const float *x, const float *tx, int B) {
    (void)x;
    l->ops->apply(ctx, l, ty, tx, B, 0);
}

void layer_affine_jvp_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, float *dtx, const float *dy,
                               const float *dty, const float *x, const float *tx, const float *y,
                               const float *ty, int B) {
    (void)y;
    (void)ty;
    size_t nx = (size_t)B * (size_t)shape3_size(l->in);
    if (dy) l->ops->grad(ctx, l, dx, dy, x, B, 1);
    else if (dx) ctx->be->zero(ctx->be, dx, sizeof(float) * nx);
    if (dty) l->ops->grad(ctx, l, dtx, dty, tx, B, 0);
    else if (dtx) ctx->be->zero(ctx->be, dtx, sizeof(float) * nx);
}
