/* net.c: a network of layers (net.h): building from a spec with shape inference, one
 * allocation per buffer kind, forward/backward, the gradient penalty's tangent passes and the
 * checkpoint view of parameters and state.
 *
 * Memory (all in net_alloc / net_alloc_jvp, none in a pass):
 *   params, grads   n_params floats each, layer i's weight then bias at its offset
 *   state           n_state floats (per layer: BatchNorm running mean then var, or spectral
 *                   normalization's u then v)
 *   sn              per spectral-normalized layer: W, dW and a scratch vector (layer_sn.c),
 *                   and two doubles (sigma, <dW, W>) in sn_scalars
 *   acts[i]         input of layer i, (max_batch, in_i); acts[0] points at the caller's x
 *   dacts           two (max_batch, max size) buffers, used in turn going backward
 *   tacts[i]        tangents, like acts; dtacts two buffers like dacts
 *   saved           each layer's B * n_saved + n_saved_fixed floats
 *   workspace       max over layers of workspace * max_batch (or * workspace_batch) +
 *                   workspace_fixed floats */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/common.h"
#include "net.h"

static const char *kind(const layer_t *l) { return l->ops->name; }

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
        snprintf(prefix, sizeof prefix, "layer %d (%s)", i + 1, kind(l));
        l->index = i;
        l->in = cur;
        if (l->ops->setup(l) || layer_sn_setup(l)) {
            gt_err_prefix(prefix);
            goto fail;
        }
        if (l->out.c <= 0 || l->out.h <= 0 || l->out.w <= 0) {
            gt_err("%s: output %dx%dx%d is empty (input %dx%dx%d)", prefix, l->out.c, l->out.h, l->out.w, cur.c,
                   cur.h, cur.w);
            goto fail;
        }
        uint64_t sz;
        if (gt_mul_overflow((uint64_t)l->out.c * (uint64_t)l->out.h, (uint64_t)l->out.w, &sz) || sz > (1u << 30)) {
            gt_err("%s: output %dx%dx%d is too large", prefix, l->out.c, l->out.h, l->out.w);
            goto fail;
        }
        if (l->n_bias + l->n_extra > l->n_params) {
            gt_err("%s: internal error: bias larger than parameters", prefix);
            goto fail;
        }
        n->n_params += l->n_params;
        n->n_state += l->n_state + layer_sn_state(l);
        n->sn_floats += layer_sn_floats(l);
        if (l->sn) n->sn_layers++;
        cur = l->out;
    }
    n->out = cur;
    n->spec = spec_format(n->layers, n->n_layers);
    return 0;
fail:
    free(n->layers);
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

int net_alloc(net_t *n, int max_batch) {
    if (max_batch <= 0) return gt_err("batch size must be positive");
    backend_t *be = n->be;
    n->max_batch = max_batch;
    size_t B = (size_t)max_batch;
    n->params = be->alloc(be, sizeof(float) * n->n_params);
    n->grads = be->alloc(be, sizeof(float) * n->n_params);
    be->zero(be, n->params, sizeof(float) * n->n_params);
    be->zero(be, n->grads, sizeof(float) * n->n_params);
    n->state = be->alloc(be, sizeof(float) * n->n_state);
    be->zero(be, n->state, sizeof(float) * n->n_state);
    n->bn_batches = gt_xcalloc((size_t)n->n_layers + 1, sizeof *n->bn_batches);
    if (n->sn_layers) {
        n->sn_buf = be->alloc(be, sizeof(float) * n->sn_floats);
        n->sn_scalars = be->alloc(be, sizeof(double) * 2 * (size_t)n->sn_layers);
        be->zero(be, n->sn_buf, sizeof(float) * n->sn_floats);
        be->zero(be, n->sn_scalars, sizeof(double) * 2 * (size_t)n->sn_layers);
    }
    size_t sno = 0;
    int snk = 0;

    n->acts = gt_xcalloc((size_t)n->n_layers + 1, sizeof *n->acts);
    n->dacts = gt_xcalloc(2, sizeof *n->dacts);
    size_t saved = 0, ws = 0, po = 0, so = 0;
    for (int i = 0; i < n->n_layers; i++) {
        layer_t *l = &n->layers[i];
        n->acts[i + 1] = be->alloc(be, sizeof(float) * B * (size_t)shape3_size(l->out));
        saved += B * l->n_saved + l->n_saved_fixed;
        size_t wb = l->workspace_batch > 0 && (size_t)l->workspace_batch < B ? (size_t)l->workspace_batch : B;
        if (l->workspace * wb + l->workspace_fixed > ws) ws = l->workspace * wb + l->workspace_fixed;
        if (l->n_params) {
            size_t nw = l->n_params - l->n_bias - l->n_extra;
            l->w = n->params + po;
            l->dw = n->grads + po;
            l->b = l->n_bias ? l->w + nw : NULL;
            l->db = l->n_bias ? l->dw + nw : NULL;
            l->e = l->n_extra ? l->w + nw + l->n_bias : NULL;
            l->de = l->n_extra ? l->dw + nw + l->n_bias : NULL;
            po += l->n_params;
        }
        if (l->n_state) {
            l->state = n->state + so;
            so += l->n_state;
            l->num_batches_tracked = &n->bn_batches[i];
        }
        if (l->sn) { /* the kind's passes see W and dW; W_orig and its gradient are the params' */
            size_t nw = sn_count(&l->sn_shape);
            l->sn_w_orig = l->w;
            l->sn_dw_orig = l->dw;
            l->w = n->sn_buf + sno;
            l->dw = l->w + nw;
            l->sn_t = l->dw + nw;
            sno += layer_sn_floats(l);
            l->sn_u = n->state + so;
            l->sn_v = l->sn_u + sn_rows(&l->sn_shape);
            so += layer_sn_state(l);
            l->sn_sigma = n->sn_scalars + 2 * snk++;
        }
    }
    size_t m = max_act(n);
    for (int k = 0; k < 2; k++) n->dacts[k] = be->alloc(be, sizeof(float) * B * m);
    n->saved = be->alloc(be, sizeof(float) * (saved ? saved : 1));
    size_t off = 0;
    for (int i = 0; i < n->n_layers; i++) {
        layer_t *l = &n->layers[i];
        size_t k = B * l->n_saved + l->n_saved_fixed;
        l->saved = k ? n->saved + off : NULL;
        off += k;
    }
    n->workspace_floats = ws;
    n->workspace = be->alloc(be, sizeof(float) * (ws ? ws : 1));
    return 0;
}

void net_alloc_jvp(net_t *n) {
    if (n->tacts) return;
    backend_t *be = n->be;
    size_t B = (size_t)n->max_batch;
    n->tacts = gt_xcalloc((size_t)n->n_layers + 1, sizeof *n->tacts);
    for (int i = 0; i < n->n_layers; i++)
        n->tacts[i + 1] = be->alloc(be, sizeof(float) * B * (size_t)shape3_size(n->layers[i].out));
    n->dtacts = gt_xcalloc(2, sizeof *n->dtacts);
    size_t m = max_act(n);
    for (int k = 0; k < 2; k++) n->dtacts[k] = be->alloc(be, sizeof(float) * B * m);
    n->dzero = be->alloc(be, sizeof(float) * B * (size_t)shape3_size(n->out));
    be->zero(be, n->dzero, sizeof(float) * B * (size_t)shape3_size(n->out));
}

void net_init(net_t *n, init_mode_t mode, uint64_t seed) {
    n->be->zero(n->be, n->params, sizeof(float) * n->n_params);
    n->be->zero(n->be, n->state, sizeof(float) * n->n_state);
    for (int i = 0; i < n->n_layers; i++) {
        layer_t *l = &n->layers[i];
        if (l->sn) layer_sn_init(n->be, l, mode, seed);
        else if (l->ops->init) l->ops->init(n->be, l, mode, seed);
        n->bn_batches[i] = 0;
    }
}

void net_free(net_t *n) {
    backend_t *be = n->be;
    if (be) {
        if (n->acts)
            for (int i = 1; i <= n->n_layers; i++) be->free(be, n->acts[i]);
        if (n->tacts)
            for (int i = 1; i <= n->n_layers; i++) be->free(be, n->tacts[i]);
        for (int k = 0; k < 2; k++) {
            if (n->dacts) be->free(be, n->dacts[k]);
            if (n->dtacts) be->free(be, n->dtacts[k]);
        }
        if (n->params) be->free(be, n->params);
        if (n->grads) be->free(be, n->grads);
        if (n->state) be->free(be, n->state);
        if (n->saved) be->free(be, n->saved);
        if (n->workspace) be->free(be, n->workspace);
        if (n->dzero) be->free(be, n->dzero);
        if (n->sn_buf) be->free(be, n->sn_buf);
        if (n->sn_scalars) be->free(be, n->sn_scalars);
    }
    free(n->acts);
    free(n->tacts);
    free(n->dacts);
    free(n->dtacts);
    free(n->bn_batches);
    free(n->layers);
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
    return c;
}

void net_zero_grad(net_t *n) { n->be->zero(n->be, n->grads, sizeof(float) * n->n_params); }

const float *net_forward(net_t *n, const nn_ctx_t *ctx, const float *x, int B) {
    n->acts[0] = (float *)x;
    for (int i = 0; i < n->n_layers; i++) {
        layer_t *l = &n->layers[i];
        if (l->sn) layer_sn_forward(ctx, l, ctx->training);
        l->ops->forward(ctx, l, n->acts[i + 1], n->acts[i], B);
    }
    return n->acts[n->n_layers];
}

/* The first layer with parameters: when the caller wants no input gradient, layers up to
 * this one need not compute theirs (e.g. the D's first linear after a flatten). */
static int first_param_layer(const net_t *n) {
    for (int i = 0; i < n->n_layers; i++)
        if (n->layers[i].n_params) return i;
    return n->n_layers;
}

/* where layer i writes its input gradient: NULL when nobody needs it */
static float *grad_in(float **bufs, int i, float *dx, int first) {
    if (i == 0) return dx;
    if (!dx && i <= first) return NULL;
    return bufs[i & 1];
}

void net_backward(net_t *n, const nn_ctx_t *ctx, const float *dy, float *dx, int B) {
    const float *g = dy;
    int first = first_param_layer(n);
    for (int i = n->n_layers - 1; i >= 0; i--) {
        layer_t *l = &n->layers[i];
        if (!dx && i < first) break;
        float *gin = grad_in(n->dacts, i, dx, first);
        int sn = l->sn && !ctx->skip_param_grads;
        if (sn) layer_sn_backward_begin(ctx, l);
        l->ops->backward(ctx, l, gin, g, n->acts[i], n->acts[i + 1], B);
        if (sn) layer_sn_backward_end(ctx, l);
        g = gin;
    }
}

int net_jvp_ok(const net_t *n) {
    for (int i = 0; i < n->n_layers; i++)
        if (!n->layers[i].ops->jvp_forward || !n->layers[i].ops->jvp_backward)
            return gt_err("layer %d (%s) cannot be in a gradient-penalty critic", i + 1, kind(&n->layers[i]));
    return 0;
}

const float *net_jvp_forward(net_t *n, const nn_ctx_t *ctx, const float *x, const float *tx, int B,
                             const float **ty) {
    net_alloc_jvp(n);
    n->acts[0] = (float *)x;
    n->tacts[0] = (float *)tx;
    for (int i = 0; i < n->n_layers; i++) {
        layer_t *l = &n->layers[i];
        if (l->sn) layer_sn_forward(ctx, l, 0); /* the same use as the net_forward before it */
        l->ops->jvp_forward(ctx, l, n->acts[i + 1], n->tacts[i + 1], n->acts[i], n->tacts[i], B);
    }
    *ty = n->tacts[n->n_layers];
    return n->acts[n->n_layers];
}

void net_jvp_backward(net_t *n, const nn_ctx_t *ctx, const float *dy, const float *dty, float *dx, float *dtx,
                      int B) {
    const float *g = dy ? dy : n->dzero, *tg = dty;
    int first = first_param_layer(n);
    for (int i = n->n_layers - 1; i >= 0; i--) {
        layer_t *l = &n->layers[i];
        if (!dx && !dtx && i < first) break;
        int none = !dx && !dtx && i <= first;
        float *gin = none ? NULL : i > 0 ? n->dacts[i & 1] : dx;
        float *tgin = none ? NULL : i > 0 ? n->dtacts[i & 1] : dtx;
        int sn = l->sn && !ctx->skip_param_grads;
        if (sn) layer_sn_backward_begin(ctx, l);
        l->ops->jvp_backward(ctx, l, gin, tgin, g, tg, n->acts[i], n->tacts[i], n->acts[i + 1], n->tacts[i + 1], B);
        if (sn) layer_sn_backward_end(ctx, l);
        g = gin;
        tg = tgin;
    }
}

/* ---- checkpoint view ------------------------------------------------------------------- */

int net_n_tensors(const net_t *n) {
    int k = 0;
    for (int i = 0; i < n->n_layers; i++) {
        const layer_t *l = &n->layers[i];
        if (l->n_params > l->n_bias + l->n_extra) k++;
        if (l->n_bias) k++;
        if (l->n_extra) k++;
        if (l->n_state) k += 3;
        if (l->sn) k += 2;
    }
    return k;
}

void net_tensor(const net_t *n, int j, net_tensor_t *t) {
    memset(t, 0, sizeof *t);
    for (int i = 0; i < n->n_layers; i++) {
        const layer_t *l = &n->layers[i];
        size_t nw = l->n_params - l->n_bias - l->n_extra;
        if (nw) {
            if (j-- == 0) {
                snprintf(t->name, sizeof t->name, l->sn ? "%d.weight_orig" : "%d.weight", i);
                t->is_param = 1;
                t->data = l->sn ? l->sn_w_orig : l->w;
                t->count = nw;
                t->ndim = l->w_ndim ? l->w_ndim : 1;
                for (int d = 0; d < 4; d++) t->shape[d] = l->w_ndim ? l->w_shape[d] : d == 0 ? (int64_t)nw : 0;
                return;
            }
        }
        if (l->n_bias) {
            if (j-- == 0) {
                snprintf(t->name, sizeof t->name, "%d.bias", i);
                t->is_param = 1;
                t->data = l->b;
                t->count = l->n_bias;
                t->ndim = l->b_ndim ? l->b_ndim : 1;
                for (int d = 0; d < 4; d++)
                    t->shape[d] = l->b_ndim ? l->b_shape[d] : d == 0 ? (int64_t)l->n_bias : 0;
                return;
            }
        }
        if (l->n_extra) {
            if (j-- == 0) {
                snprintf(t->name, sizeof t->name, "%d.embed.weight", i);
                t->is_param = 1;
                t->data = l->e;
                t->count = l->n_extra;
                t->ndim = 2;
                t->shape[0] = l->e_shape[0];
                t->shape[1] = l->e_shape[1];
                return;
            }
        }
        if (l->n_state) {
            if (j < 3) {
                static const char *nm[3] = {"running_mean", "running_var", "num_batches_tracked"};
                snprintf(t->name, sizeof t->name, "%d.%s", i, nm[j]);
                if (j < 2) {
                    t->data = l->state + (size_t)j * (l->n_state / 2);
                    t->count = l->n_state / 2;
                    t->ndim = 1;
                    t->shape[0] = (int64_t)t->count;
                } else {
                    t->i64 = l->num_batches_tracked;
                    t->count = 1;
                    t->ndim = 0;
                }
                return;
            }
            j -= 3;
        }
        if (l->sn) {
            if (j < 2) {
                snprintf(t->name, sizeof t->name, j ? "%d.weight_v" : "%d.weight_u", i);
                t->data = j ? l->sn_v : l->sn_u;
                t->count = (size_t)(j ? sn_cols(&l->sn_shape) : sn_rows(&l->sn_shape));
                t->ndim = 1;
                t->shape[0] = (int64_t)t->count;
                return;
            }
            j -= 2;
        }
    }
}
