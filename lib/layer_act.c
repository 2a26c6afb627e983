/* layer_act.c: element-wise activations relu, lrelu, tanh, sigmoid (torch.nn.ReLU, LeakyReLU,
 * Tanh, Sigmoid): forward, backward and the tangent passes of the gradient penalty.
 * The math lives in act_math.h (shared with the CUDA kernels); this file is the loops.
 * No parameters, no saved tensors: backward reads the forward's x (relu, lrelu) or y
 * (tanh, sigmoid). Loops over B * size elements are split over the CPU threads; each
 * element is computed by one thread, so results never depend on the thread count. */
#include <stddef.h>

#include "act_math.h"
#include "common.h"
#include "layer.h"

enum { K_RELU, K_LRELU, K_TANH, K_SIGMOID };
enum { P_FWD, P_BWD, P_JVP_FWD, P_JVP_BWD };

typedef struct {
    int kind, pass;
    float slope;
    float *y, *ty, *dx, *dtx;
    const float *x, *tx, *dy, *dty, *yin, *tyin;
} act_job_t;

/* first derivative at element i from x (relu/lrelu) or y (tanh/sigmoid) */
#define D1(J, i)                                                                        \
    ((J)->kind == K_RELU    ? act_relu_d((J)->x[i])                                     \
     : (J)->kind == K_LRELU ? act_lrelu_d((J)->x[i], (J)->slope)                        \
     : (J)->kind == K_TANH  ? act_tanh_d((J)->yin[i])                                   \
                            : act_sigmoid_d((J)->yin[i]))

static void act_fwd_range(const act_job_t *j, long b, long e) {
    const float *x = j->x;
    float *y = j->y;
    switch (j->kind) {
    case K_RELU: for (long i = b; i < e; i++) y[i] = act_relu(x[i]); break;
    case K_LRELU: for (long i = b; i < e; i++) y[i] = act_lrelu(x[i], j->slope); break;
    case K_TANH: for (long i = b; i < e; i++) y[i] = act_tanh(x[i]); break;
    default: for (long i = b; i < e; i++) y[i] = act_sigmoid(x[i]); break;
    }
}

static void act_bwd_range(const act_job_t *j, long b, long e) {
    const float *x = j->x, *y = j->yin, *dy = j->dy;
    float *dx = j->dx;
    switch (j->kind) {
    case K_RELU: for (long i = b; i < e; i++) dx[i] = act_relu_bwd(x[i], dy[i]); break;
    case K_LRELU: for (long i = b; i < e; i++) dx[i] = act_lrelu_d(x[i], j->slope) * dy[i]; break;
    case K_TANH: for (long i = b; i < e; i++) dx[i] = act_tanh_d(y[i]) * dy[i]; break;
    default: for (long i = b; i < e; i++) dx[i] = act_sigmoid_d(y[i]) * dy[i]; break;
    }
}

static void act_range(void *arg, long b, long e) {
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
            if (j->kind == K_TANH) d2 = act_tanh_d2(j->yin[i]);
            else if (j->kind == K_SIGMOID) d2 = act_sigmoid_d2(j->yin[i]);
            float dyi = j->dy ? j->dy[i] : 0.0f, dtyi = j->dty ? j->dty[i] : 0.0f;
            if (j->dx) j->dx[i] = d * dyi + d2 * j->tx[i] * dtyi;
            if (j->dtx) j->dtx[i] = d * dtyi;
        }
        break;
    }
}

static void act_run(const nn_ctx_t *ctx, act_job_t *j, long n) {
    if (n >= 32768) cpu_parallel_for(ctx->be, n, act_range, j);
    else act_range(j, 0, n);
}

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

static int kind_of(const layer_t *l) {
    const char *n = l->ops->name;
    return n[0] == 'r' ? K_RELU : n[0] == 'l' ? K_LRELU : n[0] == 't' ? K_TANH : K_SIGMOID;
}

static void act_forward(const nn_ctx_t *ctx, layer_t *l, float *y, const float *x, int B) {
    act_job_t j = {kind_of(l), P_FWD, l->slope, y, NULL, NULL, NULL, x, NULL, NULL, NULL, NULL, NULL};
    act_run(ctx, &j, (long)B * shape3_size(l->in));
}

static void act_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, const float *dy, const float *x,
                         const float *y, int B) {
    if (!dx) return;
    act_job_t j = {kind_of(l), P_BWD, l->slope, NULL, NULL, dx, NULL, x, NULL, dy, NULL, y, NULL};
    act_run(ctx, &j, (long)B * shape3_size(l->in));
}

static void act_jvp_forward(const nn_ctx_t *ctx, layer_t *l, float *y, float *ty, const float *x,
                            const float *tx, int B) {
    act_job_t j = {kind_of(l), P_JVP_FWD, l->slope, y, ty, NULL, NULL, x, tx, NULL, NULL, y, NULL};
    act_run(ctx, &j, (long)B * shape3_size(l->in));
}

static void act_jvp_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, float *dtx, const float *dy,
                             const float *dty, const float *x, const float *tx, const float *y,
                             const float *ty, int B) {
    (void)ty;
    if (!dx && !dtx) return;
    act_job_t j = {kind_of(l), P_JVP_BWD, l->slope, NULL, NULL, dx, dtx, x, tx, dy, dty, y, NULL};
    act_run(ctx, &j, (long)B * shape3_size(l->in));
}

const layer_ops_t layer_relu_ops = {"relu", act_setup, NULL, act_forward, act_backward, act_jvp_forward,
                                    act_jvp_backward};
const layer_ops_t layer_lrelu_ops = {"lrelu", lrelu_setup, NULL, act_forward, act_backward, act_jvp_forward,
                                     act_jvp_backward};
const layer_ops_t layer_tanh_ops = {"tanh", act_setup, NULL, act_forward, act_backward, act_jvp_forward,
                                    act_jvp_backward};
const layer_ops_t layer_sigmoid_ops = {"sigmoid", act_setup, NULL, act_forward, act_backward, act_jvp_forward,
                                       act_jvp_backward};
