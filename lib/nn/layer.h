/* layer.h: one layer of a network: its kinds, hyper-parameters, parameters and the ops
 * every kind provides (x_forward / x_backward pairs, outputs first).
 *
 * Shapes are per sample: C x H x W; a 1-D feature vector of n is n x 1 x 1. Activations are
 * batch-major: x is (B, C, H, W) contiguous. Parameters and their gradients are slices of
 * the network's single parameter buffer (net.h); gradients accumulate (+=) and net.c zeroes
 * them. Layouts of parameters are PyTorch's:
 *   Linear.weight (out, in)      Conv2d.weight (O, I, kH, kW)   ConvTranspose2d.weight (I, O, kH, kW)
 *   BatchNorm / LayerNorm weight and bias (C) or (C*H*W) as torch's normalized_shape says.
 *
 * Each kind lives in one file (lib/nn/layer_KIND.c; a few related kinds may share one) that
 * exports its `const layer_ops_t layer_KIND_ops`: the kind's spec keyword, its grammar (which of
 * the spec language's argument forms it takes, SPEC_*) and its passes. lib/nn/layer_kinds.h lists
 * the kinds, one line each; the spec parser (spec.c) knows no kind by name. The tensors a layer
 * sees (x, y, gradients, w, b, state, saved, workspace) live on the backend's device: a layer
 * computes only through ctx->be's operations (backend.h) and never reads or writes them itself,
 * so the same file serves the CPU and the GPU. */
#ifndef GT_LAYER_H
#define GT_LAYER_H

#include <stddef.h>
#include <stdint.h>
#include "lib/backend/backend.h"

typedef struct { int c, h, w; } shape3_t;

static inline long shape3_size(shape3_t s) { return (long)s.c * s.h * s.w; }

typedef enum {
    INIT_TORCH = 0, /* torch.nn defaults: kaiming_uniform(a=sqrt(5)) weights, uniform(+-1/sqrt(fan_in)) bias */
    INIT_DCGAN = 1  /* DCGAN: weights N(0, 0.02), biases 0; BatchNorm weight N(1, 0.02), bias 0 */
} init_mode_t;

/* What a forward or backward call needs besides its tensors. */
typedef struct nn_ctx {
    backend_t *be;
    int training;        /* BatchNorm uses batch statistics and updates running ones; Dropout drops */
    uint64_t seed;       /* Philox key for dropout masks */
    uint32_t rng_step;   /* Philox step for this pass (PHILOX_STREAM_DROPOUT) */
    uint64_t sample_base;/* global index of the batch's first sample (masks are keyed by it) */
    float *workspace;    /* scratch of at least net->workspace_floats floats, reused by every layer */
    int skip_param_grads;/* backward passes leave dw/db alone (G's update needs only D's input
                            gradient; the gradient penalty's first pass only g = dD/dx) */
    const int64_t *labels; /* (B) device array of the batch's classes in [0, K), for the class-
                              conditional layers (lib/nn/layer_class.c); NULL for a net without them */
    const bn_sync_t *bn_sync; /* NULL, or data-parallel BatchNorm statistics (backend.h) */
    const struct nn_observer *observer; /* NULL, or shown every layer's output and output gradient */
    const struct nn_grad_hook *grad_hook; /* NULL, or told in net_backward as the parameter
                                             gradients become final (below) */
    int fuse_off;        /* no fused passes (layer_fuse_at; net_fuse sets it for its net's passes) */
} nn_ctx_t;

/* Called by net_backward after each top-level layer with parameters, and once at the end:
 * the net's grads [from, n_params) are final for this pass (queued on the backend's stream),
 * those below still to come (the layers run last to first, and their parameters lie in layer
 * order). Data-parallel training starts their sums here (lib/gan/ddp.c). */
typedef struct nn_grad_hook {
    void (*fn)(void *arg, size_t from);
    void *arg;
} nn_grad_hook_t;

typedef struct layer layer_t;

/* What an observer (nn_observer_t, below) is shown: one tensor of a pass, on the backend's device,
 * valid only during the call (copy it to the host with nn_event_download). */
typedef struct {
    const char *name;   /* the layer's torch name: "3", "3.main.2", "3.skip.0"; "input" for the net's input */
    const char *kind;   /* its spec keyword ("conv", "block"); "input" */
    int grad;           /* 0: the output of a forward pass (the input itself for "input");
                           1: in a backward pass, the gradient w.r.t. that output (w.r.t. the net's
                           input for "input", when the caller asked for it) */
    shape3_t shape;     /* per sample */
    int B;              /* samples */
    const float *data;  /* (B, shape) floats on the backend's device */
} nn_event_t;

/* A callback run after each layer's forward (with its output) and before each layer's backward
 * (with the gradient w.r.t. its output), inside residual blocks too (the children of either path,
 * then the block, whose output is the sum), and for the net's input. It must not write the tensor:
 * observing changes no computed bit. The gradient penalty's tangent passes are not observed.
 * Set on a net with net_observe (net.h); net_ctx copies it into the pass's context. */
typedef struct nn_observer {
    void (*fn)(void *arg, const struct nn_ctx *ctx, const nn_event_t *e);
    void *arg;
} nn_observer_t;

/* The argument forms of the spec language (lib/nn/spec.md), which a kind's grammar (its
 * layer_ops_t's args) combines. At most one positional form is taken, except that SPEC_CLASSES
 * comes first and may be followed by SPEC_UNITS (embed K N). */
enum {
    SPEC_UNITS = 1 << 0,   /* positional int: units and channels (linear's out features, conv's out
                              channels, embed's N) */
    SPEC_SLOPE = 1 << 1,   /* positional float: slope (lrelu) */
    SPEC_PROB = 1 << 2,    /* positional float: probability in [0, 1) (dropout) */
    SPEC_SHAPE = 1 << 3,   /* positional CxHxW (reshape) */
    SPEC_SCALE = 1 << 4,   /* positional int: factor (upsample) */
    SPEC_K = 1 << 5,       /* kN / kHxW, required */
    SPEC_S = 1 << 6,       /* sN / sHxW: stride */
    SPEC_P = 1 << 7,       /* pN / pHxW: padding */
    SPEC_OP = 1 << 8,      /* opN / opHxW: output padding */
    SPEC_NOBIAS = 1 << 9,  /* flag nobias: has_bias = 0 */
    SPEC_AFFINE = 1 << 10, /* flag noaffine: has_bias = 0 */
    SPEC_EPS = 1 << 11,    /* eps=X, X > 0 */
    SPEC_MOM = 1 << 12,    /* momentum=X, X in [0, 1] */
    SPEC_POOL = 1 << 13,   /* not a form: the stride defaults to the kernel (torch's pooling) */
    SPEC_NOPAD = 1 << 14,  /* flag nopad: exclude_pad = 1 */
    SPEC_CLASSES = 1 << 15,/* first positional int: the number of classes K (conditional layers) */
    SPEC_SN = 1 << 16,     /* flag sn or sn=N: spectral normalization of the weight with N power
                              iterations (1 for plain sn), l->sn = N (layer_sn.c) */
    SPEC_SIGMA = 1 << 17,  /* positional float >= 0, required: a standard deviation, l->sigma (noise) */
    SPEC_WN = 1 << 18      /* flag wn: weight normalization of the weight, l->wn = 1 (layer_wn.c) */
};

/* The two passes of a kind that is affine in its input, y = A x + b (conv, convT): apply writes
 * y = A x (+ b when with_bias); grad accumulates the parameter gradients of (dy, x) (db only
 * when with_bias; none under ctx->skip_param_grads) and writes dx = A^T dy when dx is not NULL. */
typedef void (*affine_apply_fn)(const nn_ctx_t *ctx, const layer_t *l, float *y, const float *x, int B,
                                int with_bias);
typedef void (*affine_grad_fn)(const nn_ctx_t *ctx, layer_t *l, float *dx, const float *dy, const float *x, int B,
                               int with_bias);

typedef struct layer_ops {
    const char *name;      /* spec keyword: "linear", "conv", "convT", "bn", ... */
    int args;              /* its grammar: the SPEC_* forms it takes (0: none) */
    const char *size_name; /* with SPEC_UNITS: what the size is, for the parser's "missing the
                              SIZE_NAME" (e.g. "number of output channels") */

    /* Infer l->out from l->in and the hyper-parameters, check them, and set n_params,
     * n_state, n_saved (floats per sample kept for backward), n_saved_fixed and workspace (floats needed
     * for a batch of B = 1; scaled by B by the caller, or by at most workspace_batch samples, plus
     * workspace_fixed). Returns 0 or -1 with a message
     * (gt_err) that names the problem; net.c prefixes "layer N (KIND): ". */
    int (*setup)(layer_t *l);
    /* Fill l->w, l->b (and state such as running_var = 1) for the init mode, from Philox
     * stream PHILOX_STREAM_INIT with step = layer index, through be's fill operations. */
    void (*init)(backend_t *be, layer_t *l, init_mode_t mode, uint64_t seed);

    /* y (B, out) from x (B, in). May write l->saved (B * n_saved floats). */
    void (*forward)(const nn_ctx_t *ctx, layer_t *l, float *y, const float *x, int B);
    /* Given dy, accumulate dw/db (unless ctx->skip_param_grads) and write dx (B, in); dx may be
     * NULL when not needed.
     * x and y are the forward's input and output (still valid). */
    void (*backward)(const nn_ctx_t *ctx, layer_t *l, float *dx, const float *dy, const float *x,
                     const float *y, int B);

    /* Optional (NULL when the kind cannot be in a gradient-penalty critic): forward-mode
     * tangent propagation and its reverse, for the exact WGAN-GP parameter gradient.
     * jvp_forward: y = f(x), ty = J_f(x) tx.  jvp_backward: given the cotangents dy of y and
     * dty of ty, accumulate dw/db for the pair (unless ctx->skip_param_grads) and write dx, dtx
     * (either may be NULL). dy NULL says the cotangent of y is zero: the products of dy are
     * not formed (no parameter gradient from it), and dx, when asked, is the tangent's term
     * alone (f'' tx dty; zeros for a kind that is not jvp_curved). */
    void (*jvp_forward)(const nn_ctx_t *ctx, layer_t *l, float *y, float *ty, const float *x,
                        const float *tx, int B);
    void (*jvp_backward)(const nn_ctx_t *ctx, layer_t *l, float *dx, float *dtx, const float *dy,
                         const float *dty, const float *x, const float *tx, const float *y,
                         const float *ty, int B);
    /* Optional: ty = J_f(x) tx alone, for y = f(x) already computed from x by a forward with
     * the same ctx (layer_jvp_tangent); y and the saved tensors are left as they are. NULL: the
     * kind's jvp_forward runs instead (y written again, with the same bits). The kinds whose
     * primal pass costs arithmetic (linear, convolutions) have it. */
    void (*jvp_tangent)(const nn_ctx_t *ctx, layer_t *l, float *ty, const float *x, const float *tx, int B);
    /* 1 when the kind's second derivative is not zero (tanh, sigmoid, ln, in): a zero cotangent
     * of y gives a nonzero dx in jvp_backward; 0 for the kinds linear or piecewise linear in x,
     * through which a zero cotangent stays zero (layer_jvp_curved; net.c and layer_block.c skip
     * the products of the gradient penalty's zero primal cotangent with it). */
    int jvp_curved;

    /* Optional (NULL but for kinds affine in x): the two passes from which layer_affine_forward,
     * _backward, _jvp_forward and _jvp_backward make the four above. */
    affine_apply_fn apply;
    affine_grad_fn grad;

    /* With SPEC_SN: the weight dimension spectral normalization takes as W_mat's rows (torch's
     * choice: 1 for transposed convolutions, whose weight is (in, out, ...), else 0). */
    int sn_dim;
} layer_ops_t;

struct layer {
    const layer_ops_t *ops;
    char name[32];         /* its torch name, set by net_build: "3", or "3.main.2" inside block 3 */
    int index;             /* the layer's Philox number (init step, dropout's layer key): for a layer of
                              the network's top-level sequence its position from 0 (torch's Sequential
                              index); layers inside residual blocks are numbered after the last
                              top-level layer, block by block, main path then shortcut (spec.md,
                              "Initialisation"). Messages say "layer position+1". */
    shape3_t in, out;

    /* hyper-parameters (each kind uses the ones it needs; the spec parser sets them) */
    int units;             /* linear: out features */
    int channels;          /* conv/convT: out channels */
    int kh, kw, sh, sw, ph, pw, oph, opw; /* kernel, stride, padding, output_padding */
    int has_bias;          /* linear/conv/convT: 1 by default; BN/LN: affine */
    int scale;             /* upsample factor */
    int exclude_pad;       /* avgpool nopad: divide by the part of the window inside the image
                              (torch's count_include_pad=False) */
    float slope;           /* LeakyReLU negative slope */
    float p;               /* dropout probability */
    float sigma;           /* noise: standard deviation of the added Gaussian noise */
    double eps, momentum;  /* BatchNorm / LayerNorm */
    shape3_t reshape;      /* reshape target */
    int classes;           /* class-conditional kinds (embed, onehot, cbn, proj): K; 0 for the others */

    /* parameters (slices of the net's buffers; NULL when n_params == 0) */
    size_t n_params;       /* weights followed by biases (and n_extra) */
    size_t n_bias;         /* setup sets it: floats of the bias, the last n_bias of n_params (0: no b) */
    int w_ndim, w_shape[4];/* setup sets them: PyTorch shape of the weight tensor (checkpoint names);
                              w_ndim 0 means 1-D of n_params - n_bias */
    int b_ndim, b_shape[4];/* likewise for the bias; b_ndim 0 means 1-D of n_bias */
    size_t n_extra;        /* setup sets it: floats of a third tensor after the bias (proj's class
                              table, checkpoint name "embed.weight", shape e_shape); 0: none */
    int e_shape[2];
    float *w, *b, *dw, *db;
    float *e, *de;         /* the third tensor and its gradient (NULL when n_extra == 0) */
    size_t n_state;        /* non-trained state saved in checkpoints (BN running mean then var):
                              a layer with n_state > 0 has two 1-D halves, "running_mean" and
                              "running_var", and a num_batches_tracked counter (net.c) */
    float *state;
    long long *num_batches_tracked; /* BN only; points into the net's counter array */

    size_t n_saved;        /* floats per sample saved by forward for backward */
    size_t n_saved_fixed;  /* plus floats independent of B (e.g. BatchNorm's batch mean, inv std) */
    float *saved;          /* B * n_saved + n_saved_fixed floats, owned by the net */
    size_t workspace;      /* floats of ctx->workspace needed per sample */
    int workspace_batch;   /* > 0: the layer works on chunks of at most this many samples, so it needs
                              workspace * min(B, workspace_batch) floats (0: workspace * B) */
    size_t workspace_fixed;/* plus floats independent of B */

    /* spectral normalization (lib/nn/layer_sn.c); all zero/NULL when sn == 0 */
    int sn;                /* power iterations per training-mode forward (spec `sn`, `sn=N`); 0: off */
    sn_shape_t sn_shape;   /* the weight as W_mat (sn_math.h): rows x cols */
    float *sn_w_orig, *sn_dw_orig; /* the trained weight W_orig and its gradient: the slices of the
                              net's params and grads that l->w, l->dw are without sn. With sn, l->w
                              is W = W_orig / sigma and l->dw the pass's dL/dW, both in the net's
                              sn buffer, so the kind's passes are unchanged */
    float *sn_u, *sn_v;    /* u (rows), v (cols): slices of the net's state */
    float *sn_t;           /* scratch: max(rows, cols) floats */
    double *sn_sigma;      /* [0] sigma of the last forward, [1] <dW, W> of the last backward */

    /* weight normalization (lib/nn/layer_wn.c); all zero/NULL when wn == 0. The trained tensors
       are weight_v (the net's params slice that l->w is without wn) and weight_g (the extra
       tensor after the bias: l->e, l->de, rows floats); l->w and l->dw are W = v g / ||v|| and the
       pass's dL/dW in the net's sn buffer, so the kind's passes are unchanged */
    int wn;                /* spec flag `wn` */
    long wn_rows, wn_cols; /* the weight as rows (its dimension 0) x the rest */
    float *wn_v, *wn_dv;   /* v and its gradient (params and grads slices) */
    float *wn_norm;        /* (rows) ||v_r|| of the last forward, in the sn buffer */

    /* a residual block (kind "block", lib/nn/layer_block.c): y = main(x) + skip(x) */
    struct layer *sub;     /* n_sub children (spec_parse allocates them): the main path's n_main
                              layers, then the shortcut's n_sub - n_main (none: the identity) */
    int n_sub, n_main;
    float **sub_acts;      /* sub_acts[j] (max_batch, sub[j].out): child j's output (net_alloc) */
    float **sub_tacts;     /* their tangents (net_alloc_jvp) */
    float *gtmp[3], *tgtmp[3]; /* (max_batch, sub_max) gradient scratch (net_alloc, net_alloc_jvp) */
    size_t sub_max;        /* setup sets it: the most floats per sample of the block's input and its
                              children's outputs */
};

/* Every kind, layer_KIND_ops, as listed in layer_kinds.h */
#define LAYER_KIND(kind) extern const layer_ops_t layer_##kind##_ops;
#include "layer_kinds.h"
#undef LAYER_KIND

/* The residual block, not in the table of kinds: the spec parser makes it from `block { ... }`
 * (lib/nn/spec.md, "Residual blocks"). */
extern const layer_ops_t layer_block_ops;

/* Run l's setup and check what it gives (outputs not empty nor over 2^30 floats per sample,
 * bias within the parameters); returns 0 or -1 with the message prefixed by PREFIX. */
int layer_setup_checked(layer_t *l, const char *prefix);

/* The table of kinds, for the spec parser: NULL-terminated, in layer_kinds.h's order. */
extern const layer_ops_t *const layer_kinds[];
/* The kind whose keyword is name, or NULL. */
const layer_ops_t *layer_kind_find(const char *name);

/* The initialisation of the weight-and-bias layers (linear, conv, convT): with INIT_DCGAN,
 * weights N(0, 0.02) and zero biases; otherwise torch's default, weights and biases
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with a = sqrt(5) gives that bound for the
 * weights). Weights draw Philox (seed, PHILOX_STREAM_INIT, layer index) from offset 0, biases
 * from offset n_weights, so every layer's draws are its own. */
void layer_init_affine(backend_t *be, layer_t *l, init_mode_t mode, uint64_t seed, double fan_in);

/* The passes of a kind affine in its input (conv, convT), from its ops' apply and grad:
 * forward is apply with the bias, backward grad with it. The tangent is ty = A tx (apply without
 * the bias), and the reverse pass sums the parameter gradients of the pairs (dy, x) and
 * (dty, tx), db from dy only; dx = A^T dy, dtx = A^T dty (either may be NULL); a NULL cotangent
 * counts as zero. Their signatures are layer_ops_t's forward, backward, jvp_forward and
 * jvp_backward. */
void layer_affine_forward(const nn_ctx_t *ctx, layer_t *l, float *y, const float *x, int B);
void layer_affine_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, const float *dy, const float *x,
                           const float *y, int B);
void layer_affine_jvp_forward(const nn_ctx_t *ctx, layer_t *l, float *y, float *ty, const float *x,
                              const float *tx, int B);
void layer_affine_jvp_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, float *dtx, const float *dy,
                               const float *dty, const float *x, const float *tx, const float *y,
                               const float *ty, int B);

/* A layer's passes as a network runs them, at the top level (net.c) and inside a residual
 * block's paths (layer_block.c): the kind's forward, backward, jvp_forward or jvp_backward, with
 * spectral normalization's steps around it when l->sn, weight normalization's when l->wn (below).
 * layer_forward iterates u, v when ctx->training; layer_jvp_forward never does (it is the same
 * use of the layer as the layer_forward before it); the reverse passes add dL/dW_orig (or dL/dg,
 * dL/dv) unless ctx->skip_param_grads. */
void layer_forward(const nn_ctx_t *ctx, layer_t *l, float *y, const float *x, int B);
void layer_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, const float *dy, const float *x, const float *y,
                    int B);
void layer_jvp_forward(const nn_ctx_t *ctx, layer_t *l, float *y, float *ty, const float *x, const float *tx, int B);
/* Show ctx->observer (when set) tensor t of B samples of the given shape (nn_event_t). */
void layer_observe(const nn_ctx_t *ctx, const char *name, const char *kind, int grad, shape3_t shape,
                   const float *t, int B);
/* Copy an observed tensor to host memory (B * shape floats): a download, which waits for the
 * queued work and changes nothing on the device. */
void nn_event_download(const nn_ctx_t *ctx, const nn_event_t *e, float *host);
void layer_jvp_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, float *dtx, const float *dy, const float *dty,
                        const float *x, const float *tx, const float *y, const float *ty, int B);
/* layer_jvp_forward after a layer_forward of the same ctx on the same x, whose y (and saved
 * tensors) are still in place: ty = J(x) tx by the kind's jvp_tangent when it has one (y not
 * written), else its jvp_forward (y written again with the same bits). */
void layer_jvp_tangent(const nn_ctx_t *ctx, layer_t *l, float *y, float *ty, const float *x, const float *tx, int B);
/* Whether a zero cotangent of l's output can give a nonzero dx in its jvp_backward: the kind's
 * jvp_curved, or for a residual block whether any layer inside it is curved. */
int layer_jvp_curved(const layer_t *l);
/* The affine kinds' jvp_tangent: ty = A tx (apply without the bias). */
void layer_affine_jvp_tangent(const nn_ctx_t *ctx, layer_t *l, float *ty, const float *x, const float *tx, int B);

/* Spectral normalization (lib/nn/layer_sn.c says what it computes), for a layer with l->sn > 0.
 * layer_setup_checked calls layer_sn_setup; net.c sizes, binds and initialises the layers' sn
 * memory with the others; the passes above call layer_sn_forward and _backward_begin / _end, and
 * nothing else does.
 * layer_sn_setup: after the kind's setup, sets l->sn_shape from the weight's shape; 0 or -1
 *     with a message. layer_sn_state: floats of state (u then v; 0 without sn).
 *     layer_sn_floats: floats of the net's sn buffer the layer needs (W, dW, scratch).
 * layer_sn_init: the kind's init into W_orig, then u and v.
 * layer_sn_forward: before the kind's forward (or jvp_forward): the power iteration when
 *     iterate, then sigma and W = W_orig / sigma into l->w.
 * layer_sn_backward_begin / _end: around a backward pass that computes parameter gradients:
 *     zero l->dw, then add its gradient through W_orig / sigma to l->sn_dw_orig. */
int layer_sn_setup(layer_t *l);
size_t layer_sn_state(const layer_t *l);
size_t layer_sn_floats(const layer_t *l);
void layer_sn_init(backend_t *be, layer_t *l, init_mode_t mode, uint64_t seed);
void layer_sn_forward(const nn_ctx_t *ctx, layer_t *l, int iterate);
void layer_sn_backward_begin(const nn_ctx_t *ctx, layer_t *l);
void layer_sn_backward_end(const nn_ctx_t *ctx, layer_t *l);

/* Weight normalization (lib/nn/layer_wn.c says what it computes), for a layer with l->wn, run
 * like spectral normalization's functions above: layer_wn_setup after the kind's setup (adds
 * weight_g as the layer's extra tensor; refuses sn with wn), layer_wn_floats (the net's sn
 * buffer: W, dW, norms), layer_wn_init (the kind's init into v, then g = ||v|| per row),
 * layer_wn_forward (W from g and v, before the kind's forward or jvp_forward), and
 * layer_wn_backward_begin / _end around a pass that computes parameter gradients. */
int layer_wn_setup(layer_t *l);
size_t layer_wn_floats(const layer_t *l);
void layer_wn_init(backend_t *be, layer_t *l, init_mode_t mode, uint64_t seed);
void layer_wn_forward(const nn_ctx_t *ctx, layer_t *l);
void layer_wn_backward_begin(const nn_ctx_t *ctx, layer_t *l);
void layer_wn_backward_end(const nn_ctx_t *ctx, layer_t *l);

/* Activation then dropout in one pass (net.c fuses them; backend_ops.h act_dropout), the bits of
 * the two layers' passes one after the other. layer_act_dropout_ok: act is relu or lrelu (its
 * backward reads only x) and drop is a dropout layer that would draw a mask in this pass
 * (ctx->training, p > 0). layer_act_dropout_forward: y = drop(act(x)), drop's mask saved, act's
 * output not written; _backward: dx = act'(x) drop'(dy) from the saved mask (dx may be dy). */
int layer_act_dropout_ok(const nn_ctx_t *ctx, const layer_t *act, const layer_t *drop);
/* 1 when l is relu or lrelu (a backward that reads only x), with its kind in *k (layer_act.c) */
int layer_act_reads_x(const layer_t *l, act_kind_t *k);
/* 1 when l is an activation (relu, lrelu, tanh, sigmoid), with its kind in *k (layer_act.c) */
int layer_act_kind(const layer_t *l, act_kind_t *k);

/* A linear layer's bias and the activation after it in one pass (net.c fuses them; backend_ops.h
 * bias_act), forward only, the bits of the two layers' forward passes: layer_linear_act_ok: lin
 * is linear with a bias, without sn or wn, and act an activation; layer_linear_act_forward:
 * y = x W^T + b (lin's output) and z = act(y) (act's), both written, so each layer's backward
 * runs on its own as without fusion (layer_linear.c). */
int layer_linear_act_ok(const layer_t *lin, const layer_t *act);
void layer_linear_act_forward(const nn_ctx_t *ctx, layer_t *lin, const layer_t *act, float *y, float *z,
                              const float *x, int B);
void layer_act_dropout_forward(const nn_ctx_t *ctx, const layer_t *act, layer_t *drop, float *y, const float *x,
                               int B);
void layer_act_dropout_backward(const nn_ctx_t *ctx, const layer_t *act, layer_t *drop, float *dx, const float *dy,
                                const float *x, int B);

/* BatchNorm and the activation after it in one layer's passes (layer_fuse_at below; backend.h
 * bn_args_t.act), the bits of the two layers' passes one after the other. layer_bn_act_ok: bn
 * is bn (not cbn) and act a relu or lrelu (its backward reads only x, which the fused backward
 * recomputes from bn's input). layer_bn_act_forward: z = act(bn(x)), bn's output not written;
 * _backward: dx, bn's dw and db from dz (the gradient w.r.t. act's output) and bn's input x;
 * dx may be NULL (parameter gradients only). */
int layer_bn_act_ok(const layer_t *bn, const layer_t *act);
void layer_bn_act_forward(const nn_ctx_t *ctx, layer_t *bn, const layer_t *act, float *z, const float *x, int B);
void layer_bn_act_backward(const nn_ctx_t *ctx, layer_t *bn, const layer_t *act, float *dx, const float *dz,
                           const float *x, int B);

/* A sequence of layers ls[0 .. cnt) run in order, a net's top level (net.c) or a residual block's
 * path (layer_block.c), with consecutive layers fused where the pairs' functions above allow it.
 * layer_fuse_at: what ls[i] and ls[i+1] run as: FUSE_ACT_DROPOUT (forward and backward), else,
 * unless ls[i+1] fuses with a dropout after it, FUSE_LINEAR_ACT (forward only) or FUSE_BN_ACT
 * (forward and backward); FUSE_NONE when ctx->fuse_off, or an observer watches (it is shown
 * every layer's output). Forward and backward decide alike, and each layer's backward reads
 * only what both ways leave (act's x, dropout's mask, bn's x).
 * layer_seq_forward: layer j's output into outs[j] (a fused pass leaves the unfused
 *     intermediate output unwritten, but for FUSE_LINEAR_ACT), x the input.
 * layer_seq_backward: from g, the gradient w.r.t. outs[cnt - 1], to gx at x (NULL: not wanted,
 *     and the layers before the first with parameters are not run); gradients between layers in
 *     bufs[j & 1] (two buffers, neither gx); from not NULL: after each layer with parameters,
 *     ctx->grad_hook (when set) is told *from -= its n_params. */
enum { FUSE_NONE, FUSE_ACT_DROPOUT, FUSE_LINEAR_ACT, FUSE_BN_ACT };
int layer_fuse_at(const nn_ctx_t *ctx, const layer_t *ls, int cnt, int i);
/* The index of the first layer of ls[0..cnt) with parameters; cnt when none has any. */
int layer_seq_first_param(const layer_t *ls, int cnt);
void layer_seq_forward(const nn_ctx_t *ctx, layer_t *ls, int cnt, float *const *outs, const float *x, int B);
void layer_seq_backward(const nn_ctx_t *ctx, layer_t *ls, int cnt, float *const *outs, const float *x,
                        const float *g, float *gx, float *const *bufs, size_t *from, int B);

/* BatchNorm's pieces that conditional BatchNorm (cbn) shares (lib/nn/layer_bn.c says what they do) */
void layer_bn_init(backend_t *be, layer_t *l, init_mode_t mode, uint64_t seed, size_t n_affine);
bn_args_t layer_bn_args(const nn_ctx_t *ctx, const layer_t *l, int B);

#endif
