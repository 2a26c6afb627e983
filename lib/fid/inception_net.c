/* inception_net.c: pytorch-fid's Inception v3 feature network (inception_net.h), composed from the layer
 * ops (layer.h: conv, maxpool, avgpool nopad) with three helpers of its own: the bilinear
 * resize, the channel concatenation and the final global average (index arithmetic in
 * inception_math.h).
 *
 * Sections: the table of BasicConv2d units (names and shapes of pytorch-fid's state_dict),
 * loading (folding each BatchNorm into its convolution), the helpers, the blocks, the forward
 * pass. Buffers (all allocated by inception_load):
 *   trunk[2]   (max_batch, 64*147*147)  the main path: a block reads one and writes the other
 *   br[2]      (max_batch, 288*35*35)   a branch's intermediate results
 *   argmax     (max_batch, 64*73*73)    the max pools' saved indices (unused: forward only)
 *   workspace  the largest convolution workspace for max_batch */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/safetensors.h"
#include "lib/base/common.h"
#include "inception_net.h"
#include "lib/backend/inception_math.h"
#include "lib/nn/layer.h"

/* ---- the network's convolutions ------------------------------------------------------------ */

#define MAX_UNITS 96
#define BN_EPS 0.001

typedef struct {
    char name[48]; /* state_dict prefix, e.g. "Mixed_5b.branch1x1" */
    layer_t conv;  /* with the folded BatchNorm as its bias */
} unit_t;

struct inception {
    backend_t *be;
    int max_batch;
    int n_units;
    unit_t units[MAX_UNITS];
    float *params;           /* every unit's weights and biases */
    float *trunk[2], *br[2], *argmax, *workspace;
    size_t trunk_floats, br_floats, argmax_floats, ws_floats; /* per buffer, for max_batch */
    /* pools, in the order of the forward pass */
    layer_t maxpool1, maxpool2;       /* k3 s2 after the stem's 2b and 4a */
    layer_t avg35[3], avg17[4], avg8; /* k3 s1 p1 nopad: Mixed_5b-d, 6b-e, 7b */
    layer_t max35s2, max17s2, max8;   /* Mixed_6a, 7a (k3 s2), 7c (k3 s1 p1) */
};

/* Append a BasicConv2d: conv cin -> cout, kernel kh x kw, stride s, padding ph x pw, on an input of
 * h x w. Returns its index. */
static int add_unit(inception_t *n, const char *name, int cin, int h, int w, int cout, int kh, int kw, int s, int ph,
                    int pw) {
    unit_t *u = &n->units[n->n_units];
    snprintf(u->name, sizeof u->name, "%s", name);
    layer_t *l = &u->conv;
    memset(l, 0, sizeof *l);
    l->ops = layer_kind_find("conv");
    l->index = n->n_units;
    l->in = (shape3_t){cin, h, w};
    l->channels = l->units = cout;
    l->kh = kh, l->kw = kw, l->sh = l->sw = s, l->ph = ph, l->pw = pw;
    l->has_bias = 1;
    return n->n_units++;
}

static void set_pool(layer_t *l, const char *kind, shape3_t in, int k, int s, int p, int exclude_pad) {
    memset(l, 0, sizeof *l);
    l->ops = layer_kind_find(kind);
    l->in = in;
    l->kh = l->kw = k, l->sh = l->sw = s, l->ph = l->pw = p;
    l->exclude_pad = exclude_pad;
}

/* Units of each block, added in forward order; the block functions below look them up in the
 * same order. Shapes: 299 -> stem -> 192x35x35 -> 5b,5c,5d (256, 288, 288 x35x35) -> 6a
 * (768x17x17) -> 6b-e -> 7a (1280x8x8) -> 7b (2048x8x8) -> 7c. */
static void add_block_a(inception_t *n, const char *m, int cin, int pool_features) {
    char b[64];
#define U(SUFFIX, ...) (snprintf(b, sizeof b, "%s.%s", m, SUFFIX), add_unit(n, b, __VA_ARGS__))
    U("branch1x1", cin, 35, 35, 64, 1, 1, 1, 0, 0);
    U("branch5x5_1", cin, 35, 35, 48, 1, 1, 1, 0, 0);
    U("branch5x5_2", 48, 35, 35, 64, 5, 5, 1, 2, 2);
    U("branch3x3dbl_1", cin, 35, 35, 64, 1, 1, 1, 0, 0);
    U("branch3x3dbl_2", 64, 35, 35, 96, 3, 3, 1, 1, 1);
    U("branch3x3dbl_3", 96, 35, 35, 96, 3, 3, 1, 1, 1);
    U("branch_pool", cin, 35, 35, pool_features, 1, 1, 1, 0, 0);
}

static void add_block_b(inception_t *n, const char *m, int cin) {
    char b[64];
    U("branch3x3", cin, 35, 35, 384, 3, 3, 2, 0, 0);
    U("branch3x3dbl_1", cin, 35, 35, 64, 1, 1, 1, 0, 0);
    U("branch3x3dbl_2", 64, 35, 35, 96, 3, 3, 1, 1, 1);
    U("branch3x3dbl_3", 96, 35, 35, 96, 3, 3, 2, 0, 0);
}

static void add_block_c(inception_t *n, const char *m, int c7) {
    char b[64];
    U("branch1x1", 768, 17, 17, 192, 1, 1, 1, 0, 0);
    U("branch7x7_1", 768, 17, 17, c7, 1, 1, 1, 0, 0);
    U("branch7x7_2", c7, 17, 17, c7, 1, 7, 1, 0, 3);
    U("branch7x7_3", c7, 17, 17, 192, 7, 1, 1, 3, 0);
    U("branch7x7dbl_1", 768, 17, 17, c7, 1, 1, 1, 0, 0);
    U("branch7x7dbl_2", c7, 17, 17, c7, 7, 1, 1, 3, 0);
    U("branch7x7dbl_3", c7, 17, 17, c7, 1, 7, 1, 0, 3);
    U("branch7x7dbl_4", c7, 17, 17, c7, 7, 1, 1, 3, 0);
    U("branch7x7dbl_5", c7, 17, 17, 192, 1, 7, 1, 0, 3);
    U("branch_pool", 768, 17, 17, 192, 1, 1, 1, 0, 0);
}

static void add_block_d(inception_t *n, const char *m) {
    char b[64];
    U("branch3x3_1", 768, 17, 17, 192, 1, 1, 1, 0, 0);
    U("branch3x3_2", 192, 17, 17, 320, 3, 3, 2, 0, 0);
    U("branch7x7x3_1", 768, 17, 17, 192, 1, 1, 1, 0, 0);
    U("branch7x7x3_2", 192, 17, 17, 192, 1, 7, 1, 0, 3);
    U("branch7x7x3_3", 192, 17, 17, 192, 7, 1, 1, 3, 0);
    U("branch7x7x3_4", 192, 17, 17, 192, 3, 3, 2, 0, 0);
}

static void add_block_e(inception_t *n, const char *m, int cin) {
    char b[64];
    U("branch1x1", cin, 8, 8, 320, 1, 1, 1, 0, 0);
    U("branch3x3_1", cin, 8, 8, 384, 1, 1, 1, 0, 0);
    U("branch3x3_2a", 384, 8, 8, 384, 1, 3, 1, 0, 1);
    U("branch3x3_2b", 384, 8, 8, 384, 3, 1, 1, 1, 0);
    U("branch3x3dbl_1", cin, 8, 8, 448, 1, 1, 1, 0, 0);
    U("branch3x3dbl_2", 448, 8, 8, 384, 3, 3, 1, 1, 1);
    U("branch3x3dbl_3a", 384, 8, 8, 384, 1, 3, 1, 0, 1);
    U("branch3x3dbl_3b", 384, 8, 8, 384, 3, 1, 1, 1, 0);
    U("branch_pool", cin, 8, 8, 192, 1, 1, 1, 0, 0);
#undef U
}

static void add_all(inception_t *n) {
    add_unit(n, "Conv2d_1a_3x3", 3, 299, 299, 32, 3, 3, 2, 0, 0);
    add_unit(n, "Conv2d_2a_3x3", 32, 149, 149, 32, 3, 3, 1, 0, 0);
    add_unit(n, "Conv2d_2b_3x3", 32, 147, 147, 64, 3, 3, 1, 1, 1);
    add_unit(n, "Conv2d_3b_1x1", 64, 73, 73, 80, 1, 1, 1, 0, 0);
    add_unit(n, "Conv2d_4a_3x3", 80, 73, 73, 192, 3, 3, 1, 0, 0);
    add_block_a(n, "Mixed_5b", 192, 32);
    add_block_a(n, "Mixed_5c", 256, 64);
    add_block_a(n, "Mixed_5d", 288, 64);
    add_block_b(n, "Mixed_6a", 288);
    add_block_c(n, "Mixed_6b", 128);
    add_block_c(n, "Mixed_6c", 160);
    add_block_c(n, "Mixed_6d", 160);
    add_block_c(n, "Mixed_6e", 192);
    add_block_d(n, "Mixed_7a");
    add_block_e(n, "Mixed_7b", 1280);
    add_block_e(n, "Mixed_7c", 2048);
    set_pool(&n->maxpool1, "maxpool", (shape3_t){64, 147, 147}, 3, 2, 0, 0);
    set_pool(&n->maxpool2, "maxpool", (shape3_t){192, 71, 71}, 3, 2, 0, 0);
    static const int c35[3] = {192, 256, 288};
    for (int i = 0; i < 3; i++) set_pool(&n->avg35[i], "avgpool", (shape3_t){c35[i], 35, 35}, 3, 1, 1, 1);
    for (int i = 0; i < 4; i++) set_pool(&n->avg17[i], "avgpool", (shape3_t){768, 17, 17}, 3, 1, 1, 1);
    set_pool(&n->avg8, "avgpool", (shape3_t){1280, 8, 8}, 3, 1, 1, 1);
    set_pool(&n->max35s2, "maxpool", (shape3_t){288, 35, 35}, 3, 2, 0, 0);
    set_pool(&n->max17s2, "maxpool", (shape3_t){768, 17, 17}, 3, 2, 0, 0);
    set_pool(&n->max8, "maxpool", (shape3_t){2048, 8, 8}, 3, 1, 1, 0);
}

/* ---- loading ---------------------------------------------------------------------------------- */

/* The float32 tensor NAME of exactly the shape given (ndim dims), or NULL with a message. */
static const float *tensor_of(const st_file_t *f, const char *name, int ndim, const int64_t *shape) {
    const st_entry_t *e = st_find(f, name);
    char want[64] = "", got[64];
    for (int i = 0, k = 0; i < ndim; i++) k += snprintf(want + k, sizeof want - (size_t)k, i ? "x%lld" : "%lld", (long long)shape[i]);
    if (!e) {
        gt_err("no tensor '%s' (%s): not pytorch-fid's Inception weights; convert "
               "pt_inception-2015-12-05-6726825d.pth with tools/fid-weights.py",
               name, want);
        return NULL;
    }
    tensor_shape_str(&e->t, got, sizeof got);
    int same = e->t.ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = e->t.shape[i] == shape[i];
    if (!same) {
        gt_err("%s is %s, expected %s (pytorch-fid's FID Inception v3)", name, got, want);
        return NULL;
    }
    if (e->t.dtype != DT_F32) {
        gt_err("%s is %s, expected float32", name, dtype_name(e->t.dtype));
        return NULL;
    }
    const float *d = e->t.data;
    for (int64_t i = 0; i < tensor_numel(&e->t); i++)
        if (!isfinite(d[i])) {
            gt_err("%s holds NaN or infinite values", name);
            return NULL;
        }
    return d;
}

/* conv.weight and the BatchNorm of unit u -> the unit's folded weight and bias:
 *   s = gamma / sqrt(running_var + eps),  w' = w * s (per output channel),  b' = beta - mean * s. */
static int load_unit(backend_t *be, const st_file_t *f, unit_t *u) {
    layer_t *l = &u->conv;
    int64_t O = l->channels, C = l->in.c;
    int64_t ws[4] = {O, C, l->kh, l->kw}, cs[1] = {O};
    char nm[96];
    snprintf(nm, sizeof nm, "%s.conv.weight", u->name);
    const float *w = tensor_of(f, nm, 4, ws);
    if (!w) return -1;
    const float *bn[4];
    static const char *part[4] = {"weight", "bias", "running_mean", "running_var"};
    for (int k = 0; k < 4; k++) {
        snprintf(nm, sizeof nm, "%s.bn.%s", u->name, part[k]);
        if (!(bn[k] = tensor_of(f, nm, 1, cs))) return -1;
    }
    size_t per = (size_t)C * (size_t)l->kh * (size_t)l->kw;
    /* folded on the host, then uploaded to the backend's device */
    float *hw = gt_xmalloc(sizeof(float) * (size_t)O * per), *hb = gt_xmalloc(sizeof(float) * (size_t)O);
    for (int64_t o = 0; o < O; o++) {
        if (bn[3][o] < 0) {
            free(hw);
            free(hb);
            return gt_err("%s.bn.running_var[%lld] is negative", u->name, (long long)o);
        }
        double s = (double)bn[0][o] / sqrt((double)bn[3][o] + BN_EPS);
        for (size_t j = 0; j < per; j++) hw[(size_t)o * per + j] = (float)((double)w[(size_t)o * per + j] * s);
        hb[o] = (float)((double)bn[1][o] - (double)bn[2][o] * s);
    }
    be->upload(be, l->w, hw, sizeof(float) * (size_t)O * per);
    be->upload(be, l->b, hb, sizeof(float) * (size_t)O);
    free(hw);
    free(hb);
    return 0;
}

static size_t imax(size_t a, size_t b) { return a > b ? a : b; }

int inception_load(inception_t **out, const char *path, backend_t *be, int max_batch) {
    *out = NULL;
    if (max_batch < 1) return gt_err("batch size must be positive");
    inception_t *n = gt_xcalloc(1, sizeof *n);
    n->be = be;
    n->max_batch = max_batch;
    add_all(n);
    size_t B = (size_t)max_batch, n_params = 0, ws = 0, argmax = 0;
    for (int i = 0; i < n->n_units; i++) {
        layer_t *l = &n->units[i].conv;
        if (l->ops->setup(l)) {
            gt_err_prefix(n->units[i].name);
            inception_free(n);
            return gt_err_prefix("internal error: Inception unit");
        }
        n_params += l->n_params;
        size_t wb = l->workspace_batch > 0 && (size_t)l->workspace_batch < B ? (size_t)l->workspace_batch : B;
        ws = imax(ws, l->workspace * wb + l->workspace_fixed);
    }
    layer_t *pools[] = {&n->maxpool1, &n->maxpool2, &n->avg35[0], &n->avg35[1], &n->avg35[2], &n->avg17[0],
                        &n->avg17[1], &n->avg17[2], &n->avg17[3], &n->avg8, &n->max35s2, &n->max17s2, &n->max8};
    for (size_t i = 0; i < sizeof pools / sizeof pools[0]; i++) {
        if (pools[i]->ops->setup(pools[i])) {
            inception_free(n);
            return gt_err_prefix("internal error: Inception pool");
        }
        argmax = imax(argmax, pools[i]->n_saved * B);
    }
    n->params = be->alloc(be, sizeof(float) * n_params);
    size_t off = 0;
    for (int i = 0; i < n->n_units; i++) {
        layer_t *l = &n->units[i].conv;
        l->w = n->params + off;
        l->b = l->w + (l->n_params - l->n_bias);
        off += l->n_params;
    }
    st_file_t f;
    if (st_load(path, &f)) {
        inception_free(n);
        return -1;
    }
    for (int i = 0; i < n->n_units; i++)
        if (load_unit(be, &f, &n->units[i])) {
            st_free(&f);
            inception_free(n);
            return gt_err_prefix(path);
        }
    st_free(&f);
    n->trunk_floats = B * 64 * 147 * 147;
    n->br_floats = B * 288 * 35 * 35;
    n->argmax_floats = argmax;
    n->ws_floats = ws;
    for (int k = 0; k < 2; k++) {
        n->trunk[k] = be->alloc(be, sizeof(float) * n->trunk_floats);
        n->br[k] = be->alloc(be, sizeof(float) * n->br_floats);
    }
    n->argmax = be->alloc(be, sizeof(float) * (argmax ? argmax : 1));
    n->workspace = be->alloc(be, sizeof(float) * (ws ? ws : 1));
    for (size_t i = 0; i < sizeof pools / sizeof pools[0]; i++) pools[i]->saved = n->argmax;
    *out = n;
    return 0;
}

void inception_free(inception_t *n) {
    if (!n) return;
    backend_t *be = n->be;
    if (n->params) be->free(be, n->params);
    for (int k = 0; k < 2; k++) {
        if (n->trunk[k]) be->free(be, n->trunk[k]);
        if (n->br[k]) be->free(be, n->br[k]);
    }
    if (n->argmax) be->free(be, n->argmax);
    if (n->workspace) be->free(be, n->workspace);
    free(n);
}

/* ---- helpers: resize, BasicConv2d, concatenation, pooling, the global average ------------------ */

/* y = relu(conv(x) + b) for unit u on a batch of B */
static void unit_forward(inception_t *n, const nn_ctx_t *ctx, int u, float *y, const float *x, int B) {
    layer_t *l = &n->units[u].conv;
    l->ops->forward(ctx, l, y, x, B);
    n->be->relu_keep_nan(n->be, y, (size_t)B * (size_t)shape3_size(l->out));
}

/* dst (B, c_total, hw) channels [c_off, c_off + C) = src (B, C, hw) */
static void concat(inception_t *n, float *dst, int c_total, int c_off, const float *src, int C, long hw, int B) {
    n->be->copy_rows(n->be, dst + concat_plane(0, 0, c_off, c_total, hw), (long)c_total * hw, src, (long)C * hw, B,
                     (long)C * hw);
}

/* unit u's output straight into the concatenation dst at channel c_off (through br scratch) */
static void unit_into(inception_t *n, const nn_ctx_t *ctx, int u, float *dst, int c_total, int c_off, const float *x,
                      float *scratch, int B) {
    layer_t *l = &n->units[u].conv;
    unit_forward(n, ctx, u, scratch, x, B);
    concat(n, dst, c_total, c_off, scratch, l->out.c, (long)l->out.h * l->out.w, B);
}

static void pool_forward(const nn_ctx_t *ctx, layer_t *l, float *y, const float *x, int B) {
    l->ops->forward(ctx, l, y, x, B);
}

/* ---- blocks ----------------------------------------------------------------------------------- */

/* The blocks read x and write y (B, C_out, H, W); u is the index of the block's first unit. Each
 * branch runs through br[0] and br[1] and is copied into its channels of y. */

static int block_a(inception_t *n, const nn_ctx_t *ctx, int u, layer_t *avg, float *y, const float *x, int B) {
    float *t0 = n->br[0], *t1 = n->br[1];
    int ct = 64 + 64 + 96 + n->units[u + 6].conv.out.c; /* 256 or 288 */
    unit_into(n, ctx, u, y, ct, 0, x, t0, B);        /* branch1x1 */
    unit_forward(n, ctx, u + 1, t0, x, B);           /* branch5x5 */
    unit_into(n, ctx, u + 2, y, ct, 64, t0, t1, B);
    unit_forward(n, ctx, u + 3, t0, x, B);           /* branch3x3dbl */
    unit_forward(n, ctx, u + 4, t1, t0, B);
    unit_into(n, ctx, u + 5, y, ct, 128, t1, t0, B);
    pool_forward(ctx, avg, t0, x, B);                /* branch_pool: avg (nopad), 1x1 */
    unit_into(n, ctx, u + 6, y, ct, 224, t0, t1, B);
    return u + 7;
}

static int block_b(inception_t *n, const nn_ctx_t *ctx, int u, float *y, const float *x, int B) {
    float *t0 = n->br[0], *t1 = n->br[1];
    const int ct = 768;
    unit_into(n, ctx, u, y, ct, 0, x, t0, B); /* branch3x3 (stride 2) */
    unit_forward(n, ctx, u + 1, t0, x, B);    /* branch3x3dbl */
    unit_forward(n, ctx, u + 2, t1, t0, B);
    unit_into(n, ctx, u + 3, y, ct, 384, t1, t0, B);
    pool_forward(ctx, &n->max35s2, t0, x, B); /* max pool k3 s2 */
    concat(n, y, ct, 480, t0, 288, 17 * 17, B);
    return u + 4;
}

static int block_c(inception_t *n, const nn_ctx_t *ctx, int u, layer_t *avg, float *y, const float *x, int B) {
    float *t0 = n->br[0], *t1 = n->br[1];
    const int ct = 768;
    unit_into(n, ctx, u, y, ct, 0, x, t0, B); /* branch1x1 */
    unit_forward(n, ctx, u + 1, t0, x, B);    /* branch7x7 */
    unit_forward(n, ctx, u + 2, t1, t0, B);
    unit_into(n, ctx, u + 3, y, ct, 192, t1, t0, B);
    unit_forward(n, ctx, u + 4, t0, x, B); /* branch7x7dbl */
    unit_forward(n, ctx, u + 5, t1, t0, B);
    unit_forward(n, ctx, u + 6, t0, t1, B);
    unit_forward(n, ctx, u + 7, t1, t0, B);
    unit_into(n, ctx, u + 8, y, ct, 384, t1, t0, B);
    pool_forward(ctx, avg, t0, x, B); /* branch_pool */
    unit_into(n, ctx, u + 9, y, ct, 576, t0, t1, B);
    return u + 10;
}

static int block_d(inception_t *n, const nn_ctx_t *ctx, int u, float *y, const float *x, int B) {
    float *t0 = n->br[0], *t1 = n->br[1];
    const int ct = 1280;
    unit_forward(n, ctx, u, t0, x, B); /* branch3x3 */
    unit_into(n, ctx, u + 1, y, ct, 0, t0, t1, B);
    unit_forward(n, ctx, u + 2, t0, x, B); /* branch7x7x3 */
    unit_forward(n, ctx, u + 3, t1, t0, B);
    unit_forward(n, ctx, u + 4, t0, t1, B);
    unit_into(n, ctx, u + 5, y, ct, 320, t0, t1, B);
    pool_forward(ctx, &n->max17s2, t0, x, B); /* max pool k3 s2 */
    concat(n, y, ct, 512, t0, 768, 8 * 8, B);
    return u + 6;
}

static int block_e(inception_t *n, const nn_ctx_t *ctx, int u, layer_t *pool, float *y, const float *x, int B) {
    float *t0 = n->br[0], *t1 = n->br[1];
    const int ct = 2048;
    unit_into(n, ctx, u, y, ct, 0, x, t0, B); /* branch1x1 */
    unit_forward(n, ctx, u + 1, t0, x, B);    /* branch3x3: 1x1, then 1x3 and 3x1 side by side */
    unit_into(n, ctx, u + 2, y, ct, 320, t0, t1, B);
    unit_into(n, ctx, u + 3, y, ct, 704, t0, t1, B);
    unit_forward(n, ctx, u + 4, t0, x, B); /* branch3x3dbl: 1x1, 3x3, then 1x3 and 3x1 */
    unit_forward(n, ctx, u + 5, t1, t0, B);
    unit_into(n, ctx, u + 6, y, ct, 1088, t1, t0, B);
    unit_into(n, ctx, u + 7, y, ct, 1472, t1, t0, B);
    pool_forward(ctx, pool, t0, x, B); /* branch_pool: avg nopad (7b) or max (7c) */
    unit_into(n, ctx, u + 8, y, ct, 1856, t0, t1, B);
    return u + 9;
}

/* ---- forward ---------------------------------------------------------------------------------- */

int inception_forward(inception_t *n, float *feats, const float *x, int B, int C, int H, int W) {
    if (B < 1 || B > n->max_batch) return gt_err("batch of %d images: 1 to %d", B, n->max_batch);
    if (C != 1 && C != 3) return gt_err("images have %d channels; Inception takes gray (1) or RGB (3) images", C);
    if (H < 1 || W < 1) return gt_err("images of %dx%d pixels", H, W);
    nn_ctx_t ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.be = n->be;
    ctx.workspace = n->workspace;
    float *a = n->trunk[0], *b = n->trunk[1];
    n->be->resize_bilinear(n->be, a, x, B, C, H, W, INCEPTION_SIZE);
    /* stem */
    unit_forward(n, &ctx, 0, b, a, B);  /* 1a: 32x149x149 */
    unit_forward(n, &ctx, 1, a, b, B);  /* 2a: 32x147x147 */
    unit_forward(n, &ctx, 2, b, a, B);  /* 2b: 64x147x147 */
    pool_forward(&ctx, &n->maxpool1, a, b, B); /* 64x73x73 */
    unit_forward(n, &ctx, 3, b, a, B);  /* 3b: 80x73x73 */
    unit_forward(n, &ctx, 4, a, b, B);  /* 4a: 192x71x71 */
    pool_forward(&ctx, &n->maxpool2, b, a, B); /* 192x35x35 */
    int u = 5;
    u = block_a(n, &ctx, u, &n->avg35[0], a, b, B); /* 5b: 256x35x35 */
    u = block_a(n, &ctx, u, &n->avg35[1], b, a, B); /* 5c: 288 */
    u = block_a(n, &ctx, u, &n->avg35[2], a, b, B); /* 5d: 288 */
    u = block_b(n, &ctx, u, b, a, B);               /* 6a: 768x17x17 */
    u = block_c(n, &ctx, u, &n->avg17[0], a, b, B); /* 6b */
    u = block_c(n, &ctx, u, &n->avg17[1], b, a, B); /* 6c */
    u = block_c(n, &ctx, u, &n->avg17[2], a, b, B); /* 6d */
    u = block_c(n, &ctx, u, &n->avg17[3], b, a, B); /* 6e */
    u = block_d(n, &ctx, u, a, b, B);               /* 7a: 1280x8x8 */
    u = block_e(n, &ctx, u, &n->avg8, b, a, B);     /* 7b: 2048x8x8 */
    u = block_e(n, &ctx, u, &n->max8, a, b, B);     /* 7c */
    if (u != n->n_units) return gt_err("internal error: %d of %d Inception units used", u, n->n_units);
    n->be->plane_means(n->be, feats, a, (long)B * INCEPTION_DIM, 64); /* the global average of 8 x 8 */
    return 0;
}
