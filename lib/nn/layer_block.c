/* layer_block.c: the residual block, y = main(x) + skip(x), written
 *     block { bn; relu; upsample 2; conv 64 k3 p1 } skip { upsample 2; conv 64 k1 }
 * (lib/nn/spec.md, "Residual blocks"; no skip part: the identity). Its torch equivalent is a
 * module with two Sequentials, `main` and `skip` (tests/ref/nnref.py, Residual).
 *
 *   x (B, in)    y (B, out)    main and skip must both map in to out
 *   children: l->sub[0 .. n_main) the main path, l->sub[n_main .. n_sub) the shortcut
 *   buffers (net.c allocates them for max_batch, once): sub_acts[j] child j's output,
 *   sub_tacts[j] its tangent, gtmp / tgtmp three (B, sub_max) gradient scratch buffers
 *
 * Every pass runs the children's passes in order through layer.h's layer_forward and the others,
 * each path a sequence as net.c runs the top level (layer_seq_forward and _backward: fused pairs
 * too; the tangent passes one layer at a time), so a child with spectral normalization gets its
 * steps (the context, with the batch's labels, the training flag and the dropout keys, goes to
 * each), then
 * adds the two paths with the backend's bias_add (C = n, inner = 1 is an elementwise sum).
 * Going back, the main path's input gradient is left in gtmp[2], the shortcut's (or dy itself)
 * in dx, and dx += gtmp[2]; gtmp[0] and gtmp[1] carry the gradients between the layers of a
 * path, as net.c's dacts do. The parameters, state (spectral normalization's u, v too), sn
 * buffers and saved tensors are the children's (net.c binds them). */
#include <stdio.h>

#include "lib/base/common.h"
#include "layer.h"

/* Set up children sub[a .. a+cnt) from input `in`: their output in *out */
static int path_setup(layer_t *l, int a, int cnt, const char *path, shape3_t *out) {
    shape3_t cur = l->in;
    for (int j = 0; j < cnt; j++) {
        layer_t *c = &l->sub[a + j];
        char prefix[64];
        snprintf(prefix, sizeof prefix, "%s layer %d (%s)", path, j + 1, c->ops->name);
        c->in = cur;
        if (layer_setup_checked(c, prefix)) return -1;
        cur = c->out;
    }
    *out = cur;
    return 0;
}

static int block_setup(layer_t *l) {
    shape3_t mo, so;
    if (path_setup(l, 0, l->n_main, "main", &mo) || path_setup(l, l->n_main, l->n_sub - l->n_main, "skip", &so))
        return -1;
    if (mo.c != so.c || mo.h != so.h || mo.w != so.w)
        return gt_err("main gives %dx%dx%d, %s gives %dx%dx%d", mo.c, mo.h, mo.w,
                      l->n_sub > l->n_main ? "skip" : "the identity shortcut", so.c, so.h, so.w);
    l->out = mo;
    l->n_params = l->n_state = 0;
    l->n_bias = l->n_extra = l->n_saved = l->n_saved_fixed = l->workspace = l->workspace_fixed = 0;
    l->classes = 0;
    l->sub_max = (size_t)shape3_size(l->in);
    int first = -1;
    for (int j = 0; j < l->n_sub; j++) {
        const layer_t *c = &l->sub[j];
        l->n_params += c->n_params;
        l->n_state += c->n_state;
        if ((size_t)shape3_size(c->out) > l->sub_max) l->sub_max = (size_t)shape3_size(c->out);
        if (c->classes <= 0) continue;
        if (first < 0) {
            first = j;
            l->classes = c->classes;
        } else if (c->classes != l->classes) {
            return gt_err("%s layer %d (%s) has %d classes but %s layer %d (%s) has %d", j < l->n_main ? "main" : "skip",
                          j < l->n_main ? j + 1 : j - l->n_main + 1, c->ops->name, c->classes,
                          first < l->n_main ? "main" : "skip", first < l->n_main ? first + 1 : first - l->n_main + 1,
                          l->sub[first].ops->name, l->classes);
        }
    }
    return 0;
}

static size_t numel(const layer_t *l, int B) { return (size_t)B * (size_t)shape3_size(l->out); }

/* y = a + b over the block's output (a or b NULL: zeros) */
static void sum_into(const nn_ctx_t *ctx, const layer_t *l, float *y, const float *a, const float *b, int B) {
    backend_t *be = ctx->be;
    size_t n = numel(l, B);
    if (a) {
        if (y != a) be->copy(be, y, a, sizeof(float) * n);
    } else {
        be->zero(be, y, sizeof(float) * n);
    }
    if (b) be->bias_add(be, y, b, 1, (long)n, 1);
}

static void block_forward(const nn_ctx_t *ctx, layer_t *l, float *y, const float *x, int B) {
    int ns = l->n_sub - l->n_main;
    layer_seq_forward(ctx, l->sub, l->n_main, l->sub_acts, x, B);
    if (ns) layer_seq_forward(ctx, l->sub + l->n_main, ns, l->sub_acts + l->n_main, x, B);
    sum_into(ctx, l, y, l->sub_acts[l->n_main - 1], ns ? l->sub_acts[l->n_sub - 1] : x, B);
}

/* the tangent pass, with the primal (jvp_forward) or after the block's forward (tangent_only:
 * layer_jvp_tangent, y and the children's outputs in place) */
static void block_tangent(const nn_ctx_t *ctx, layer_t *l, int tangent_only, float *y, float *ty, const float *x,
                          const float *tx, int B) {
    const float *h = x, *s = x, *th = tx, *ts = tx;
    for (int j = 0; j < l->n_sub; j++) {
        layer_t *c = &l->sub[j];
        int m = j < l->n_main;
        const float *in = m ? h : s, *tin = m ? th : ts;
        if (tangent_only) layer_jvp_tangent(ctx, c, l->sub_acts[j], l->sub_tacts[j], in, tin, B);
        else layer_jvp_forward(ctx, c, l->sub_acts[j], l->sub_tacts[j], in, tin, B);
        if (m) {
            h = l->sub_acts[j];
            th = l->sub_tacts[j];
        } else {
            s = l->sub_acts[j];
            ts = l->sub_tacts[j];
        }
    }
    if (!tangent_only) sum_into(ctx, l, y, h, s, B);
    sum_into(ctx, l, ty, th, ts, B);
}

static void block_jvp_forward(const nn_ctx_t *ctx, layer_t *l, float *y, float *ty, const float *x,
                              const float *tx, int B) {
    block_tangent(ctx, l, 0, y, ty, x, tx, B);
}

static void block_jvp_tangent(const nn_ctx_t *ctx, layer_t *l, float *ty, const float *x, const float *tx, int B) {
    block_tangent(ctx, l, 1, NULL, ty, x, tx, B);
}

/* The reverse pass of the path sub[a .. a+cnt) (cnt >= 1) from the cotangents g (and tg, when
 * jvp) of its output to gx (and tgx) at the block's input x (tx); gx and tgx NULL: not wanted,
 * and the layers before the path's first one with parameters are not run. With jvp, g NULL is
 * a zero cotangent, which stays NULL (the products of it not formed) back to the path's first
 * curved layer (layer_jvp_curved); gx is then zeroed if it was not reached. */
static void path_backward(const nn_ctx_t *ctx, layer_t *l, int a, int cnt, int jvp, const float *x, const float *tx,
                          const float *g, const float *tg, float *gx, float *tgx, int B) {
    if (!jvp) { /* with fused pairs, as the forward pass ran; the tangent passes below, one layer at a time */
        layer_seq_backward(ctx, l->sub + a, cnt, l->sub_acts + a, x, g, gx, l->gtmp, NULL, B);
        return;
    }
    int want = gx || tgx, first = layer_seq_first_param(l->sub + a, cnt);
    for (int j = cnt - 1; j >= 0; j--) {
        layer_t *c = &l->sub[a + j];
        if (!want && j < first) break;
        int none = !want && j <= first, zero = jvp && !g && !layer_jvp_curved(c);
        float *gin = none || zero ? NULL : j > 0 ? l->gtmp[j & 1] : gx;
        const float *in = j > 0 ? l->sub_acts[a + j - 1] : x;
        float *tgin = none ? NULL : j > 0 ? l->tgtmp[j & 1] : tgx;
        const float *tin = j > 0 ? l->sub_tacts[a + j - 1] : tx;
        layer_jvp_backward(ctx, c, gin, tgin, g, tg, in, tin, l->sub_acts[a + j], l->sub_tacts[a + j], B);
        tg = tgin;
        g = gin;
    }
    if (gx && !g) ctx->be->zero(ctx->be, gx, sizeof(float) * (size_t)B * (size_t)shape3_size(l->in));
}

/* Both paths' reverse passes and the sum of their input cotangents into dx (and dtx) */
static void block_reverse(const nn_ctx_t *ctx, layer_t *l, int jvp, float *dx, float *dtx, const float *dy,
                          const float *dty, const float *x, const float *tx, int B) {
    int ns = l->n_sub - l->n_main;
    float *mx = dx ? l->gtmp[2] : NULL, *mtx = jvp && dtx ? l->tgtmp[2] : NULL;
    path_backward(ctx, l, 0, l->n_main, jvp, x, tx, dy, dty, mx, mtx, B);
    if (ns) path_backward(ctx, l, l->n_main, ns, jvp, x, tx, dy, dty, dx, jvp ? dtx : NULL, B);
    /* the shortcut's input cotangent is in dx (dtx), or is dy (dty) for the identity */
    size_t n = (size_t)B * (size_t)shape3_size(l->in);
    if (dx) {
        if (!ns) sum_into(ctx, l, dx, dy, mx, B);
        else ctx->be->bias_add(ctx->be, dx, mx, 1, (long)n, 1);
    }
    if (jvp && dtx) {
        if (!ns) sum_into(ctx, l, dtx, dty, mtx, B);
        else ctx->be->bias_add(ctx->be, dtx, mtx, 1, (long)n, 1);
    }
}

static void block_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, const float *dy, const float *x,
                           const float *y, int B) {
    (void)y;
    block_reverse(ctx, l, 0, dx, NULL, dy, NULL, x, NULL, B);
}

static void block_jvp_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, float *dtx, const float *dy,
                               const float *dty, const float *x, const float *tx, const float *y,
                               const float *ty, int B) {
    (void)y;
    (void)ty;
    block_reverse(ctx, l, 1, dx, dtx, dy, dty, x, tx, B);
}

const layer_ops_t layer_block_ops = {
    .name = "block",
    .args = 0,
    .setup = block_setup,
    .forward = block_forward,
    .backward = block_backward,
    .jvp_forward = block_jvp_forward,
    .jvp_backward = block_jvp_backward,
    .jvp_tangent = block_jvp_tangent,
};
