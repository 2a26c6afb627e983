/* net.c: a network of layers (net.h): building from a spec with shape inference, one
 * allocation per buffer kind, forward/backward, the gradient penalty's tangent passes and the
 * checkpoint view of parameters and state.
 *
 * Memory (all in net_alloc / net_alloc_jvp, none in a pass):
 *   params, grads   n_params floats each, layer i's weight then bias at its offset
 *   state           n_state floats (per layer: BatchNorm running mean then var, or spectral
 *                   normalization's u then v)
 *   sn_buf          per spectral-normalized layer, inside blocks too: W, dW and a scratch
 *                   vector (layer_sn.c), and two doubles (sigma, <dW, W>) in sn_scalars; per
 *                   weight-normalized layer: W, dW and the rows' norms (layer_wn.c)
 *   acts[i]         input of layer i, (max_batch, in_i); acts[0] points at the caller's x
 *   dacts           two (max_batch, max size) buffers, used in turn going backward
 *   tacts[i]        tangents, like acts; dtacts two buffers like dacts
 *   saved           each layer's B * n_saved + n_saved_fixed floats
 *   in each residual block (layer_block.c): its children's outputs and three gradient buffers
 *                   (sub_acts, gtmp), their tangents (sub_tacts, tgtmp) with the jvp buffers;
 *                   the children's parameters, state, sn memory and saved tensors are slices
 *                   of the above, in order (a block's main path, then its shortcut)
 *   workspace       max over layers of workspace * max_batch (or * workspace_batch) +
 *                   workspace_fixed floats */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/common.h"
#include "net.h"

static const char *kind(const layer_t *l) { return l->ops->name; }

/* Add the spectral normalization memory of l, or of the layers inside it when it is a block:
 * u and v to n_state, W, dW and scratch to sn_floats, one pair of scalars each; and weight
 * normalization's W, dW and norms to sn_floats. */
static void count_sn(net_t *n, const layer_t *l) {
    for (int j = 0; j < l->n_sub; j++) count_sn(n, &l->sub[j]);
    n->sn_floats += layer_wn_floats(l);
    if (!l->sn) return;
    n->n_state += layer_sn_state(l);
    n->sn_floats += layer_sn_floats(l);
    n->sn_layers++;
}

/* The layers' torch names (layer.h name): PREFIX + position; a block's children are its
 * Sequentials' "main.j" and "skip.j" (net_tensor's names without the tensor's). */
static void name_seq(layer_t *ls, int cnt, const char *prefix) {
    for (int i = 0; i < cnt; i++) {
        layer_t *l = &ls[i];
        snprintf(l->name, sizeof l->name, "%s%d", prefix, i);
        if (!l->n_sub) continue;
        char p[sizeof l->name + 8];
        snprintf(p, sizeof p, "%s.main.", l->name);
        name_seq(l->sub, l->n_main, p);
        snprintf(p, sizeof p, "%s.skip.", l->name);
        name_seq(l->sub + l->n_main, l->n_sub - l->n_main, p);
    }
}

int net_build(net_t *n, const char *spec, shape3_t in, backend_t *be) {
    memset(n, 0, sizeof *n);
    if (in.c <= 0 || in.h <= 0 || in.w <= 0) return gt_err("input shape %dx%dx%d is not positive", in.c, in.h, in.w);
    if (spec_parse(spec, &n->layers, &n->n_layers)) return -1;
    n->be = be;
    n->in = in;
    shape3_t cur = in;
    for (int i = 0; i < n->n_layers; i++) {
        layer_t *l = &n->layers[i];
        char prefix[64];
        if (l->n_sub) snprintf(prefix, sizeof prefix, "block %d", i + 1);
        else snprintf(prefix, sizeof prefix, "layer %d (%s)", i + 1, kind(l));
        l->in = cur;
        if (layer_setup_checked(l, prefix)) goto fail;
        n->n_params += l->n_params;
        n->n_state += l->n_state;
        count_sn(n, l);
        if (l->index >= n->n_numbered) n->n_numbered = l->index + 1;
        for (int j = 0; j < l->n_sub; j++)
            if (l->sub[j].index >= n->n_numbered) n->n_numbered = l->sub[j].index + 1;
        cur = l->out;
    }
    n->out = cur;
    n->spec = spec_format(n->layers, n->n_layers);
    name_seq(n->layers, n->n_layers, "");
    return 0;
fail:
    spec_free(n->layers, n->n_layers);
    memset(n, 0, sizeof *n);
    return -1;
}

int net_check_output(const net_t *n, shape3_t want) {
    shape3_t o = n->out;
    if (o.c == want.c && o.h == want.h && o.w == want.w) return 0;
    int spatial = o.h != want.h || o.w != want.w;
    int last = n->n_layers - 1;
    for (int i = n->n_layers - 1; i >= 0; i--) {
        const layer_t *l = &n->layers[i];
        int changes = spatial ? (l->in.h != l->out.h || l->in.w != l->out.w) : (l->in.c != l->out.c);
        if (changes) {
            last = i;
            break;
        }
    }
    const layer_t *l = &n->layers[last];
    if (spatial)
        return gt_err("layer %d (%s): output %dx%d, expected %dx%d (network output %dx%dx%d, data %dx%dx%d)",
                      last + 1, kind(l), l->out.h, l->out.w, want.h, want.w, o.c, o.h, o.w, want.c, want.h, want.w);
    return gt_err("layer %d (%s): output has %d channels, expected %d (network output %dx%dx%d, data %dx%dx%d)",
                  last + 1, kind(l), l->out.c, want.c, o.c, o.h, o.w, want.c, want.h, want.w);
}

static size_t max_act(const net_t *n) {
    size_t m = (size_t)shape3_size(n->in);
    for (int i = 0; i < n->n_layers; i++)
        if ((size_t)shape3_size(n->layers[i].out) > m) m = (size_t)shape3_size(n->layers[i].out);
    return m;
}

/* Where bind_seq has got to: offsets into params (and grads), state and the sn buffer, the
 * next pair of sn scalars, and the saved floats and workspace counted so far. */
typedef struct {
    size_t po, so, sno;
    int snk;
    size_t saved, ws;
} bind_t;

/* Give the layers ls[0..cnt) their slices of params, grads and state, their BatchNorm counters
 * and their spectral normalization memory, allocate the blocks' activations and gradient scratch
 * (B samples), and add up the saved floats and the workspace the layers need. */
static void bind_seq(net_t *n, layer_t *ls, int cnt, size_t B, bind_t *o) {
    backend_t *be = n->be;
    for (int i = 0; i < cnt; i++) {
        layer_t *l = &ls[i];
        if (l->n_sub) {
            l->sub_acts = gt_xcalloc((size_t)l->n_sub, sizeof *l->sub_acts);
            for (int j = 0; j < l->n_sub; j++)
                l->sub_acts[j] = be->alloc(be, sizeof(float) * B * (size_t)shape3_size(l->sub[j].out));
            for (int k = 0; k < 3; k++) l->gtmp[k] = be->alloc(be, sizeof(float) * B * l->sub_max);
            bind_seq(n, l->sub, l->n_sub, B, o);
            continue;
        }
        o->saved += B * l->n_saved + l->n_saved_fixed;
        size_t wb = l->workspace_batch > 0 && (size_t)l->workspace_batch < B ? (size_t)l->workspace_batch : B;
        if (l->workspace * wb + l->workspace_fixed > o->ws) o->ws = l->workspace * wb + l->workspace_fixed;
        if (l->ops == &layer_cbn_ops) n->skip_writes_grads = 1; /* layer_class.c cbn_backward */
        if (l->n_params) {
            size_t nw = l->n_params - l->n_bias - l->n_extra;
            l->w = n->params + o->po;
            l->dw = n->grads + o->po;
            l->b = l->n_bias ? l->w + nw : NULL;
            l->db = l->n_bias ? l->dw + nw : NULL;
            l->e = l->n_extra ? l->w + nw + l->n_bias : NULL;
            l->de = l->n_extra ? l->dw + nw + l->n_bias : NULL;
            o->po += l->n_params;
        }
        if (l->n_state) {
            l->state = n->state + o->so;
            o->so += l->n_state;
            l->num_batches_tracked = &n->bn_batches[l->index];
        }
        if (l->sn) { /* the kind's passes see W and dW; W_orig and its gradient are the params' */
            size_t nw = sn_count(&l->sn_shape);
            l->sn_w_orig = l->w;
            l->sn_dw_orig = l->dw;
            l->w = n->sn_buf + o->sno;
            l->dw = l->w + nw;
            l->sn_t = l->dw + nw;
            o->sno += layer_sn_floats(l);
            l->sn_u = n->state + o->so;
            l->sn_v = l->sn_u + sn_rows(&l->sn_shape);
            o->so += layer_sn_state(l);
            l->sn_sigma = n->sn_scalars + 2 * o->snk++;
        }
        if (l->wn) { /* likewise: the kind sees W and dW, v and its gradient are the params' */
            size_t nw = (size_t)l->wn_rows * (size_t)l->wn_cols;
            l->wn_v = l->w;
            l->wn_dv = l->dw;
            l->w = n->sn_buf + o->sno;
            l->dw = l->w + nw;
            l->wn_norm = l->dw + nw;
            o->sno += layer_wn_floats(l);
        }
    }
}

/* The layers' slices of the saved buffer, in the order bind_seq counted them. */
static void bind_saved(net_t *n, layer_t *ls, int cnt, size_t B, size_t *off) {
    for (int i = 0; i < cnt; i++) {
        layer_t *l = &ls[i];
        if (l->n_sub) {
            bind_saved(n, l->sub, l->n_sub, B, off);
            continue;
        }
        size_t k = B * l->n_saved + l->n_saved_fixed;
        l->saved = k ? n->saved + *off : NULL;
        *off += k;
    }
}

int net_alloc(net_t *n, int max_batch) {
    if (max_batch <= 0) return gt_err("batch size must be positive");
    backend_t *be = n->be;
    n->max_batch = max_batch;
    size_t B = (size_t)max_batch;
    n->params = be->alloc(be, sizeof(float) * n->n_params);
    n->grads = be->alloc(be, sizeof(float) * n->n_params);
    be->zero(be, n->params, sizeof(float) * n->n_params);
    be->zero(be, n->grads, sizeof(float) * n->n_params);
    n->grads_zero = 1;
    n->state = be->alloc(be, sizeof(float) * n->n_state);
    be->zero(be, n->state, sizeof(float) * n->n_state);
    n->bn_batches = gt_xcalloc((size_t)n->n_numbered + 1, sizeof *n->bn_batches);
    if (n->sn_floats) {
        n->sn_buf = be->alloc(be, sizeof(float) * n->sn_floats);
        be->zero(be, n->sn_buf, sizeof(float) * n->sn_floats);
    }
    if (n->sn_layers) {
        n->sn_scalars = be->alloc(be, sizeof(double) * 2 * (size_t)n->sn_layers);
        be->zero(be, n->sn_scalars, sizeof(double) * 2 * (size_t)n->sn_layers);
    }

    n->acts = gt_xcalloc((size_t)n->n_layers + 1, sizeof *n->acts);
    n->dacts = gt_xcalloc(2, sizeof *n->dacts);
    for (int i = 0; i < n->n_layers; i++)
        n->acts[i + 1] = be->alloc(be, sizeof(float) * B * (size_t)shape3_size(n->layers[i].out));
    bind_t o = {0, 0, 0, 0, 0, 0};
    bind_seq(n, n->layers, n->n_layers, B, &o);
    size_t m = max_act(n);
    for (int k = 0; k < 2; k++) n->dacts[k] = be->alloc(be, sizeof(float) * B * m);
    n->saved = be->alloc(be, sizeof(float) * (o.saved ? o.saved : 1));
    size_t off = 0;
    bind_saved(n, n->layers, n->n_layers, B, &off);
    n->workspace_floats = o.ws;
    n->workspace = be->alloc(be, sizeof(float) * (o.ws ? o.ws : 1));
    return 0;
}

/* The blocks' tangent buffers, like bind_seq's activations and scratch. */
static void alloc_jvp_seq(backend_t *be, layer_t *ls, int cnt, size_t B) {
    for (int i = 0; i < cnt; i++) {
        layer_t *l = &ls[i];
        if (!l->n_sub) continue;
        l->sub_tacts = gt_xcalloc((size_t)l->n_sub, sizeof *l->sub_tacts);
        for (int j = 0; j < l->n_sub; j++)
            l->sub_tacts[j] = be->alloc(be, sizeof(float) * B * (size_t)shape3_size(l->sub[j].out));
        for (int k = 0; k < 3; k++) l->tgtmp[k] = be->alloc(be, sizeof(float) * B * l->sub_max);
        alloc_jvp_seq(be, l->sub, l->n_sub, B);
    }
}

void net_alloc_jvp(net_t *n) {
    if (n->tacts) return;
    backend_t *be = n->be;
    size_t B = (size_t)n->max_batch;
    n->tacts = gt_xcalloc((size_t)n->n_layers + 1, sizeof *n->tacts);
    for (int i = 0; i < n->n_layers; i++)
        n->tacts[i + 1] = be->alloc(be, sizeof(float) * B * (size_t)shape3_size(n->layers[i].out));
    alloc_jvp_seq(be, n->layers, n->n_layers, B);
    n->dtacts = gt_xcalloc(2, sizeof *n->dtacts);
    size_t m = max_act(n);
    for (int k = 0; k < 2; k++) n->dtacts[k] = be->alloc(be, sizeof(float) * B * m);
}

static void init_seq(net_t *n, layer_t *ls, int cnt, init_mode_t mode, uint64_t seed) {
    for (int i = 0; i < cnt; i++) {
        layer_t *l = &ls[i];
        if (l->n_sub) init_seq(n, l->sub, l->n_sub, mode, seed);
        else if (l->sn) layer_sn_init(n->be, l, mode, seed);
        else if (l->wn) layer_wn_init(n->be, l, mode, seed);
        else if (l->ops->init) l->ops->init(n->be, l, mode, seed);
    }
}

void net_init(net_t *n, init_mode_t mode, uint64_t seed) {
    n->be->zero(n->be, n->params, sizeof(float) * n->n_params);
    n->be->zero(n->be, n->state, sizeof(float) * n->n_state);
    init_seq(n, n->layers, n->n_layers, mode, seed);
    memset(n->bn_batches, 0, sizeof *n->bn_batches * ((size_t)n->n_numbered + 1));
}

/* The blocks' device buffers (their children's arrays go with spec_free). */
static void free_seq(backend_t *be, layer_t *ls, int cnt) {
    for (int i = 0; i < cnt; i++) {
        layer_t *l = &ls[i];
        if (!l->n_sub) continue;
        free_seq(be, l->sub, l->n_sub);
        for (int j = 0; j < l->n_sub; j++) {
            if (l->sub_acts) be->free(be, l->sub_acts[j]);
            if (l->sub_tacts) be->free(be, l->sub_tacts[j]);
        }
        for (int k = 0; k < 3; k++) {
            if (l->gtmp[k]) be->free(be, l->gtmp[k]);
            if (l->tgtmp[k]) be->free(be, l->tgtmp[k]);
        }
        free(l->sub_acts);
        free(l->sub_tacts);
        l->sub_acts = l->sub_tacts = NULL;
    }
}

/* *p moved from [from, from + n) to to, when it points there */
static void move_ptr(float **p, const float *from, float *to, size_t n) {
    if (*p && *p >= from && *p < from + n) *p = to + (*p - from);
}

static void move_params_seq(layer_t *ls, int cnt, const float *p0, float *p1, const float *g0, float *g1, size_t n) {
    for (int i = 0; i < cnt; i++) {
        layer_t *l = &ls[i];
        move_params_seq(l->sub, l->n_sub, p0, p1, g0, g1, n);
        float **in_params[] = {&l->w, &l->b, &l->e, &l->sn_w_orig, &l->wn_v};
        float **in_grads[] = {&l->dw, &l->db, &l->de, &l->sn_dw_orig, &l->wn_dv};
        for (size_t k = 0; k < sizeof in_params / sizeof in_params[0]; k++) move_ptr(in_params[k], p0, p1, n);
        for (size_t k = 0; k < sizeof in_grads / sizeof in_grads[0]; k++) move_ptr(in_grads[k], g0, g1, n);
    }
}

void net_move_params(net_t *n, float *params, float *grads) {
    backend_t *be = n->be;
    size_t bytes = sizeof(float) * n->n_params;
    be->copy(be, params, n->params, bytes);
    be->copy(be, grads, n->grads, bytes);
    move_params_seq(n->layers, n->n_layers, n->params, params, n->grads, grads, n->n_params);
    if (!n->params_moved) {
        be->free(be, n->params);
        be->free(be, n->grads);
    }
    n->params = params;
    n->grads = grads;
    n->params_moved = 1;
}

void net_free(net_t *n) {
    backend_t *be = n->be;
    if (be) {
        free_seq(be, n->layers, n->n_layers);
        if (n->acts)
            for (int i = 1; i <= n->n_layers; i++) be->free(be, n->acts[i]);
        if (n->tacts)
            for (int i = 1; i <= n->n_layers; i++) be->free(be, n->tacts[i]);
        for (int k = 0; k < 2; k++) {
            if (n->dacts) be->free(be, n->dacts[k]);
            if (n->dtacts) be->free(be, n->dtacts[k]);
        }
        if (n->params && !n->params_moved) be->free(be, n->params);
        if (n->grads && !n->params_moved) be->free(be, n->grads);
        if (n->state) be->free(be, n->state);
        if (n->saved) be->free(be, n->saved);
        if (n->workspace) be->free(be, n->workspace);
        if (n->sn_buf) be->free(be, n->sn_buf);
        if (n->sn_scalars) be->free(be, n->sn_scalars);
    }
    free(n->acts);
    free(n->tacts);
    free(n->dacts);
    free(n->dtacts);
    free(n->bn_batches);
    spec_free(n->layers, n->n_layers);
    free(n->spec);
    memset(n, 0, sizeof *n);
}

nn_ctx_t net_ctx(net_t *n, int training, uint64_t seed, uint32_t rng_step, uint64_t sample_base) {
    nn_ctx_t c;
    c.be = n->be;
    c.training = training;
    c.seed = seed;
    c.rng_step = rng_step;
    c.sample_base = sample_base;
    c.workspace = n->workspace;
    c.skip_param_grads = 0;
    c.labels = NULL;
    c.bn_sync = NULL;
    c.observer = n->observer;
    c.grad_hook = NULL;
    c.fuse_off = 0;
    return c;
}

void net_observe(net_t *n, const nn_observer_t *o) { n->observer = o; }

void net_zero_grad(net_t *n) {
    if (!n->grads_zero) n->be->zero(n->be, n->grads, sizeof(float) * n->n_params);
    n->grads_zero = 1;
}

void net_grads_zeroed(net_t *n) { n->grads_zero = 1; }

/* A backward pass may write the grads unless it skips them and no layer ignores that */
static void grads_touched(net_t *n, const nn_ctx_t *ctx) {
    if (!ctx->skip_param_grads || n->skip_writes_grads) n->grads_zero = 0;
}

/* Fused passes: the top level runs as layer.h's sequence (layer_seq_*: consecutive layers fused
 * where the pairs allow it, residual blocks' paths alike); net_fuse(n, 0) turns that off for the
 * net's passes, as an observer does. */
void net_fuse(net_t *n, int on) { n->fuse_off = !on; }

/* the context of one of n's passes: ctx, with fusion off when net_fuse said so */
static nn_ctx_t pass_ctx(const net_t *n, const nn_ctx_t *ctx) {
    nn_ctx_t c = *ctx;
    if (n->fuse_off) c.fuse_off = 1;
    return c;
}

const float *net_forward(net_t *n, const nn_ctx_t *ctx, const float *x, int B) {
    n->acts[0] = (float *)x;
    n->fwd_x = x;
    n->fwd_B = B;
    if (ctx->observer) layer_observe(ctx, "input", "input", 0, n->in, x, B);
    nn_ctx_t c = pass_ctx(n, ctx);
    layer_seq_forward(&c, n->layers, n->n_layers, n->acts + 1, x, B);
    return n->acts[n->n_layers];
}

/* The first layer with parameters: when the caller wants no input gradient, layers up to
 * this one need not compute theirs (e.g. the D's first linear after a flatten). */
void net_backward(net_t *n, const nn_ctx_t *ctx, const float *dy, float *dx, int B) {
    size_t from = n->n_params; /* grads [from, n_params) are final (ctx->grad_hook) */
    grads_touched(n, ctx);
    nn_ctx_t c = pass_ctx(n, ctx);
    layer_seq_backward(&c, n->layers, n->n_layers, n->acts + 1, n->acts[0], dy, dx, n->dacts, &from, B);
    if (ctx->grad_hook) ctx->grad_hook->fn(ctx->grad_hook->arg, 0);
    if (dx && ctx->observer) layer_observe(ctx, "input", "input", 1, n->in, dx, B);
}

/* The first layer of ls[0..cnt) without tangent passes, named as its messages name it */
static int jvp_ok_seq(const layer_t *ls, int cnt, const char *where) {
    for (int i = 0; i < cnt; i++) {
        const layer_t *l = &ls[i];
        if (l->n_sub) {
            char w[64];
            snprintf(w, sizeof w, "block %d: main", i + 1);
            if (jvp_ok_seq(l->sub, l->n_main, w)) return -1;
            snprintf(w, sizeof w, "block %d: skip", i + 1);
            if (jvp_ok_seq(l->sub + l->n_main, l->n_sub - l->n_main, w)) return -1;
        } else if (!l->ops->jvp_forward || !l->ops->jvp_backward) {
            return gt_err("%s%slayer %d (%s) cannot be in a gradient-penalty critic", where, *where ? " " : "", i + 1,
                          kind(l));
        }
    }
    return 0;
}

int net_jvp_ok(const net_t *n) { return jvp_ok_seq(n->layers, n->n_layers, ""); }

const float *net_jvp_forward(net_t *n, const nn_ctx_t *ctx, const float *x, const float *tx, int B,
                             const float **ty) {
    net_alloc_jvp(n);
    n->acts[0] = (float *)x;
    n->tacts[0] = (float *)tx;
    n->fwd_x = x;
    n->fwd_B = B;
    for (int i = 0; i < n->n_layers; i++) {
        layer_t *l = &n->layers[i];
        layer_jvp_forward(ctx, l, n->acts[i + 1], n->tacts[i + 1], n->acts[i], n->tacts[i], B);
    }
    *ty = n->tacts[n->n_layers];
    return n->acts[n->n_layers];
}

const float *net_jvp_tangent(net_t *n, const nn_ctx_t *ctx, const float *x, const float *tx, int B,
                             const float **ty) {
    if (x != n->fwd_x || B != n->fwd_B) gt_fatal(1, "net_jvp_tangent: not after net_forward on the same batch");
    net_alloc_jvp(n);
    n->tacts[0] = (float *)tx;
    for (int i = 0; i < n->n_layers; i++) {
        layer_t *l = &n->layers[i];
        layer_jvp_tangent(ctx, l, n->acts[i + 1], n->tacts[i + 1], n->acts[i], n->tacts[i], B);
    }
    *ty = n->tacts[n->n_layers];
    return n->acts[n->n_layers];
}

void net_jvp_backward(net_t *n, const nn_ctx_t *ctx, const float *dy, const float *dty, float *dx, float *dtx,
                      int B) {
    const float *g = dy, *tg = dty; /* g NULL: the cotangent of y is zero (net.h) */
    int first = layer_seq_first_param(n->layers, n->n_layers);
    grads_touched(n, ctx);
    for (int i = n->n_layers - 1; i >= 0; i--) {
        layer_t *l = &n->layers[i];
        if (!dx && !dtx && i < first) break;
        int none = !dx && !dtx && i <= first, zero = !g && !layer_jvp_curved(l);
        float *gin = none || zero ? NULL : i > 0 ? n->dacts[i & 1] : dx;
        float *tgin = none ? NULL : i > 0 ? n->dtacts[i & 1] : dtx;
        layer_jvp_backward(ctx, l, gin, tgin, g, tg, n->acts[i], n->tacts[i], n->acts[i + 1], n->tacts[i + 1], B);
        g = gin;
        tg = tgin;
    }
    if (dx && !g) n->be->zero(n->be, dx, sizeof(float) * (size_t)B * (size_t)shape3_size(n->in));
}

/* ---- checkpoint view ------------------------------------------------------------------- */

/* Tensors of the layers ls[0..cnt), named PREFIX + their torch names: a block at position i
 * holds the Sequentials "i.main" and "i.skip". */
static int n_tensors_seq(const layer_t *ls, int cnt) {
    int k = 0;
    for (int i = 0; i < cnt; i++) {
        const layer_t *l = &ls[i];
        if (l->n_sub) {
            k += n_tensors_seq(l->sub, l->n_sub);
            continue;
        }
        if (l->n_params > l->n_bias + l->n_extra) k++;
        if (l->n_bias) k++;
        if (l->n_extra) k++;
        if (l->n_state) k += 3;
        if (l->sn) k += 2;
    }
    return k;
}

int net_n_tensors(const net_t *n) { return n_tensors_seq(n->layers, n->n_layers); }

/* Fill t with tensor *j of ls[0..cnt) and return 1, or count *j down past them and return 0. */
static int tensor_seq(const layer_t *ls, int cnt, const char *prefix, int *j, net_tensor_t *t) {
    for (int i = 0; i < cnt; i++) {
        const layer_t *l = &ls[i];
        char p[sizeof t->name];
        if (l->n_sub) {
            snprintf(p, sizeof p, "%s%d.main.", prefix, i);
            if (tensor_seq(l->sub, l->n_main, p, j, t)) return 1;
            snprintf(p, sizeof p, "%s%d.skip.", prefix, i);
            if (tensor_seq(l->sub + l->n_main, l->n_sub - l->n_main, p, j, t)) return 1;
            continue;
        }
        size_t nw = l->n_params - l->n_bias - l->n_extra;
        if (nw) {
            if ((*j)-- == 0) {
                snprintf(t->name, sizeof t->name,
                         l->sn ? "%s%d.weight_orig" : l->wn ? "%s%d.weight_v" : "%s%d.weight", prefix, i);
                t->is_param = 1;
                t->data = l->sn ? l->sn_w_orig : l->wn ? l->wn_v : l->w;
                t->count = nw;
                t->ndim = l->w_ndim ? l->w_ndim : 1;
                for (int d = 0; d < 4; d++) t->shape[d] = l->w_ndim ? l->w_shape[d] : d == 0 ? (int64_t)nw : 0;
                return 1;
            }
        }
        if (l->n_bias) {
            if ((*j)-- == 0) {
                snprintf(t->name, sizeof t->name, "%s%d.bias", prefix, i);
                t->is_param = 1;
                t->data = l->b;
                t->count = l->n_bias;
                t->ndim = l->b_ndim ? l->b_ndim : 1;
                for (int d = 0; d < 4; d++)
                    t->shape[d] = l->b_ndim ? l->b_shape[d] : d == 0 ? (int64_t)l->n_bias : 0;
                return 1;
            }
        }
        if (l->n_extra && l->wn) { /* weight_g: (rows, 1, ...) in the weight's rank, as torch keeps it */
            if ((*j)-- == 0) {
                snprintf(t->name, sizeof t->name, "%s%d.weight_g", prefix, i);
                t->is_param = 1;
                t->data = l->e;
                t->count = l->n_extra;
                t->ndim = l->w_ndim;
                for (int d = 0; d < 4; d++) t->shape[d] = d == 0 ? (int64_t)l->n_extra : d < l->w_ndim ? 1 : 0;
                return 1;
            }
        } else if (l->n_extra) {
            if ((*j)-- == 0) {
                snprintf(t->name, sizeof t->name, "%s%d.embed.weight", prefix, i);
                t->is_param = 1;
                t->data = l->e;
                t->count = l->n_extra;
                t->ndim = 2;
                t->shape[0] = l->e_shape[0];
                t->shape[1] = l->e_shape[1];
                return 1;
            }
        }
        if (l->n_state) {
            if (*j < 3) {
                static const char *nm[3] = {"running_mean", "running_var", "num_batches_tracked"};
                snprintf(t->name, sizeof t->name, "%s%d.%s", prefix, i, nm[*j]);
                if (*j < 2) {
                    t->data = l->state + (size_t)*j * (l->n_state / 2);
                    t->count = l->n_state / 2;
                    t->ndim = 1;
                    t->shape[0] = (int64_t)t->count;
                } else {
                    t->i64 = l->num_batches_tracked;
                    t->count = 1;
                    t->ndim = 0;
                }
                return 1;
            }
            *j -= 3;
        }
        if (l->sn) {
            if (*j < 2) {
                snprintf(t->name, sizeof t->name, *j ? "%s%d.weight_v" : "%s%d.weight_u", prefix, i);
                t->data = *j ? l->sn_v : l->sn_u;
                t->count = (size_t)(*j ? sn_cols(&l->sn_shape) : sn_rows(&l->sn_shape));
                t->ndim = 1;
                t->shape[0] = (int64_t)t->count;
                return 1;
            }
            *j -= 2;
        }
    }
    return 0;
}

void net_tensor(const net_t *n, int j, net_tensor_t *t) {
    memset(t, 0, sizeof *t);
    tensor_seq(n->layers, n->n_layers, "", &j, t);
}

static int max_channels_seq(const layer_t *ls, int cnt) {
    int m = 1;
    for (int i = 0; i < cnt; i++) {
        int c = ls[i].n_sub ? max_channels_seq(ls[i].sub, ls[i].n_sub) : ls[i].in.c;
        if (c > m) m = c;
    }
    return m;
}

int net_max_channels(const net_t *n) { return max_channels_seq(n->layers, n->n_layers); }
