/* layer_act.c: element-wise activations relu, lrelu, tanh, sigmoid (torch.nn.ReLU, LeakyReLU,
 * Tanh, Sigmoid): forward, backward and the tangent passes of the gradient penalty.
 * The math lives in act_math.h, the loops in the backend (backend_ops.h act_*).
 * No parameters, no saved tensors: backward reads the forward's x (relu, lrelu) or y
 * (tanh, sigmoid). */
#include <stddef.h>

#include "lib/base/common.h"
#include "layer.h"

static int act_setup(layer_t *l) {
    l->out = l->in;
    l->n_params = l->n_bias = l->n_state = l->n_saved = l->n_saved_fixed = l->workspace = 0;
    return 0;
}

static int lrelu_setup(layer_t *l) {
    if (!(l->slope == l->slope) || l->slope > 1e30f || l->slope < -1e30f)
        return gt_err("slope must be a finite number");
    return act_setup(l);
}

static act_kind_t kind_of(const layer_t *l) {
    const char *n = l->ops->name;
    return n[0] == 'r' ? ACT_RELU : n[0] == 'l' ? ACT_LRELU : n[0] == 't' ? ACT_TANH : ACT_SIGMOID;
}

int layer_act_kind(const layer_t *l, act_kind_t *k) {
    if (l->ops != &layer_relu_ops && l->ops != &layer_lrelu_ops && l->ops != &layer_tanh_ops &&
        l->ops != &layer_sigmoid_ops)
        return 0;
    *k = kind_of(l);
    return 1;
}

int layer_act_reads_x(const layer_t *l, act_kind_t *k) {
    if (l->ops != &layer_relu_ops && l->ops != &layer_lrelu_ops) return 0;
    *k = kind_of(l);
    return 1;
}

static size_t count(const layer_t *l, int B) { return (size_t)B * (size_t)shape3_size(l->in); }

static void act_forward(const nn_ctx_t *ctx, layer_t *l, float *y, const float *x, int B) {
    ctx->be->act_forward(ctx->be, kind_of(l), l->slope, y, x, count(l, B));
}

static void act_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, const float *dy, const float *x,
                         const float *y, int B) {
    if (!dx) return;
    ctx->be->act_backward(ctx->be, kind_of(l), l->slope, dx, dy, x, y, count(l, B));
}

static void act_jvp_forward(const nn_ctx_t *ctx, layer_t *l, float *y, float *ty, const float *x,
                            const float *tx, int B) {
    ctx->be->act_jvp_forward(ctx->be, kind_of(l), l->slope, y, ty, x, tx, count(l, B));
}

static void act_jvp_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, float *dtx, const float *dy,
                             const float *dty, const float *x, const float *tx, const float *y,
                             const float *ty, int B) {
    (void)ty;
    if (!dx && !dtx) return;
    ctx->be->act_jvp_backward(ctx->be, kind_of(l), l->slope, dx, dtx, dy, dty, x, tx, y, count(l, B));
}

const layer_ops_t layer_relu_ops = {
    .name = "relu",
    .args = 0,
    .setup = act_setup,
    .forward = act_forward,
    .backward = act_backward,
    .jvp_forward = act_jvp_forward,
    .jvp_backward = act_jvp_backward,
};

const layer_ops_t layer_lrelu_ops = {
    .name = "lrelu",
    .args = SPEC_SLOPE,
    .setup = lrelu_setup,
    .forward = act_forward,
    .backward = act_backward,
    .jvp_forward = act_jvp_forward,
    .jvp_backward = act_jvp_backward,
};

const layer_ops_t layer_tanh_ops = {
    .name = "tanh",
    .args = 0,
    .setup = act_setup,
    .forward = act_forward,
    .backward = act_backward,
    .jvp_forward = act_jvp_forward,
    .jvp_backward = act_jvp_backward,
    .jvp_curved = 1,
};

const layer_ops_t layer_sigmoid_ops = {
    .name = "sigmoid",
    .args = 0,
    .setup = act_setup,
    .forward = act_forward,
    .backward = act_backward,
    .jvp_forward = act_jvp_forward,
    .jvp_backward = act_jvp_backward,
    .jvp_curved = 1,
};
