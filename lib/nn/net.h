/* net.h: a network: a sequence of layers built from a spec, one parameter buffer, and the
 * activation memory for batches up to max_batch, allocated once (no allocation in a step).
 *
 * Spec language (lib/nn/spec.c, documented in lib/nn/spec.md): one layer per line or separated by
 * ';', a keyword then arguments, e.g.
 *     linear 256; bn; lrelu 0.2; reshape 256x7x7; convT 128 k4 s2 p1; bn; lrelu 0.2; conv 1 k7 p3; tanh
 * Residual blocks, `block { main path } skip { shortcut }`, are layers whose children are their
 * paths' layers (layer.h, layer_block.c).
 * Shapes are inferred from the input shape and checked; errors point at the layer:
 *     "layer 4 (convT): output 27x27, expected 28x28", "block 3: main gives 8x4x4, skip gives 4x4x4". */
#ifndef GT_NET_H
#define GT_NET_H

#include <stdint.h>

#include "layer.h"

typedef struct net {
    char *spec;             /* the normalised spec text (what checkpoints store) */
    int n_layers;
    layer_t *layers;        /* the top-level sequence; a residual block holds its own layers (layer.h) */
    int n_numbered;         /* layers with a Philox number (layer.h index): top-level and inside blocks */
    shape3_t in, out;

    size_t n_params;        /* all layers' weights and biases, in layer order */
    float *params, *grads;  /* one allocation each on the backend's device */
    int params_moved;       /* params and grads are the caller's (net_move_params), not freed here */
    size_t n_state;         /* BatchNorm running statistics and spectral normalization's u, v,
                               in layer order */
    float *state;
    long long *bn_batches;  /* num_batches_tracked of each BatchNorm, at its layer's index (host) */

    int max_batch;
    float **acts;           /* acts[i]: input of layer i (acts[0] = network input copy or NULL),
                               acts[n_layers] = output; each (max_batch, size) */
    float **dacts;          /* gradient buffers: two (max_batch, max size) buffers used in turn */
    float **tacts;          /* tangents for the gradient penalty (NULL until net_alloc_jvp) */
    float **dtacts;         /* their gradients (two buffers used in turn, like dacts) */
    float *saved;           /* all layers' saved tensors */
    size_t workspace_floats;
    float *workspace;
    int sn_layers;          /* layers with spectral normalization (layer_sn.c) */
    size_t sn_floats;       /* their W, dW and scratch, and weight-normalized layers' W, dW and norms
                               (layer_wn.c), in sn_buf (inside blocks too, in order) */
    float *sn_buf;
    double *sn_scalars;     /* (sn_layers, 2): sigma, <dW, W> */
    const nn_observer_t *observer; /* NULL, or shown every pass's tensors (net_observe) */
    int fuse_off;           /* net_fuse(n, 0): every layer runs its own passes */
    int grads_zero;         /* grads are known to hold zeros (net_alloc, net_zero_grad,
                               net_grads_zeroed; a backward pass that may write them clears it) */
    int skip_writes_grads;  /* a layer writes parameter gradients even under skip_param_grads (cbn) */
    const float *fwd_x;     /* the input and batch of the last net_forward or net_jvp_forward */
    int fwd_B;              /* (net_jvp_tangent checks them) */
    backend_t *be;
} net_t;

/* Parse SPEC for input shape IN and build the layers (no memory for batches yet).
 * Returns 0 or -1 with a message naming the layer. */
int net_build(net_t *n, const char *spec, shape3_t in, backend_t *be);
/* Allocate parameters, state and activations for batches up to max_batch. */
int net_alloc(net_t *n, int max_batch);
/* Initialise parameters for the mode (see layer.h) from seed. */
void net_init(net_t *n, init_mode_t mode, uint64_t seed);
void net_free(net_t *n);
/* Move the parameters and gradients to params and grads (n_params floats each, memory of the
 * backend's device that the caller owns and keeps while the net lives, e.g. backend.h's
 * alloc_shared): the values copied, every layer's slices moved with them, the old buffers
 * freed. */
void net_move_params(net_t *n, float *params, float *grads);

/* Forward a batch x (B, in) -> returns the output (B, out), owned by the net (valid until
 * the next forward). B <= max_batch. */
const float *net_forward(net_t *n, const nn_ctx_t *ctx, const float *x, int B);
/* Backward from dy (B, out) after net_forward on the same batch: accumulates into grads
 * and writes dx (B, in) when dx != NULL. */
void net_backward(net_t *n, const nn_ctx_t *ctx, const float *dy, float *dx, int B);
/* Zero the grads; no pass over memory when they are known to hold zeros already (grads_zero:
 * after net_alloc, or net_grads_zeroed, with no backward pass since that may have written them). */
void net_zero_grad(net_t *n);
/* Tell the net its grads hold zeros (the optimizer step zeroed them as it read them:
 * optim_step_lr's zero_g), so the next net_zero_grad has nothing to do. */
void net_grads_zeroed(net_t *n);

/* Watch the net's passes (NULL: stop): every context net_ctx makes afterwards carries o, and
 * o->fn is shown (layer.h nn_event_t) the input and each layer's output in forward passes, and in
 * backward passes the gradient w.r.t. each layer's output (for the layers whose backward runs:
 * not those before the first layer with parameters when no input gradient is asked) and the
 * input gradient when asked; inside residual blocks too, named as the checkpoint names them
 * ("3.main.2"). The tensors are the pass's own buffers, shown between operations on the
 * backend's stream: nothing is computed differently, and without an observer nothing is shown. */
void net_observe(net_t *n, const nn_observer_t *o);

/* Fusion of consecutive layers into one pass over memory (on unless turned off; layer.h
 * layer_fuse_at: an activation then dropout, a linear layer's bias or BatchNorm then an
 * activation; at the top level and in residual blocks' paths), with the same bits either way.
 * A layer fused with the
 * one after it does not write its own output buffer; an observer turns fusion off. on = 0 runs
 * every layer on its own (the tests' reference). */
void net_fuse(net_t *n, int on);

/* The context for a pass (workspace filled in from the net). */
nn_ctx_t net_ctx(net_t *n, int training, uint64_t seed, uint32_t rng_step, uint64_t sample_base);

/* Check that the output shape is WANT; otherwise fail with a message naming the last layer
 * that changes the spatial size (or the channels): "layer 8 (convT): output 27x27, expected 28x28". */
int net_check_output(const net_t *n, shape3_t want);

/* The gradient penalty's forward-over-reverse passes (layer.h, jvp_*). net_alloc_jvp allocates
 * the tangent buffers (call once after net_alloc; net_jvp_forward does it on first use).
 * Every layer must have jvp ops (net_jvp_ok says which does not). */
int net_jvp_ok(const net_t *n);
void net_alloc_jvp(net_t *n);
/* y = net(x) and ty = J(x) tx for a batch; returns y (B, out) and sets *ty (B, out), both owned
 * by the net. x and tx must stay unchanged until net_jvp_backward. */
const float *net_jvp_forward(net_t *n, const nn_ctx_t *ctx, const float *x, const float *tx, int B,
                             const float **ty);
/* net_jvp_forward without the primal pass, the same bits: for use right after
 * net_forward(n, ctx, x, B) with the same ctx (training, seed, rng_step, sample_base, labels),
 * the same x, unchanged, and nothing run on n in between but net_backward (which leaves the
 * forward's activations and saved tensors alone), so that y and every layer's output are in
 * place. Only the tangents are computed, by each layer's jvp_tangent (the kinds without one run
 * their jvp_forward, writing their y again with the same bits): the gradient penalties
 * (lib/gan/trainer.c) save the critic's forward at the penalty's points. A different x pointer
 * or batch than the last forward's is a fatal error (the rest of the contract is the caller's). */
const float *net_jvp_tangent(net_t *n, const nn_ctx_t *ctx, const float *x, const float *tx, int B,
                             const float **ty);
/* Given cotangents dy and dty of y and ty, accumulate the parameter gradients into grads and
 * write dx, dtx (B, in) when not NULL. dy NULL says the cotangent of y is zero (the gradient
 * penalty's): it stays zero back through the layers that are not curved (layer.h
 * layer_jvp_curved: linear and piecewise-linear kinds), which then form none of its products,
 * and enters at the first curved one (tanh, sigmoid, ln, in); the same bits as a zero dy but for
 * the sign of zeros. */
void net_jvp_backward(net_t *n, const nn_ctx_t *ctx, const float *dy, const float *dty, float *dx, float *dtx,
                      int B);

/* Parameter and state tensors for checkpoints, in PyTorch's nn.Sequential state_dict order and
 * names: "3.weight", "3.bias", "3.running_mean", "3.running_var", "3.num_batches_tracked"; a
 * residual block at position 3 is a module whose Sequentials "main" and "skip" hold its layers:
 * "3.main.2.weight", "3.skip.0.weight", "3.main.0.running_mean"; a spectral-normalized layer
 * (torch.nn.utils.spectral_norm's names), at the top level or in a block, has "3.weight_orig" in
 * place of "3.weight", then after its bias "3.weight_u", "3.weight_v" (state): "3.main.0.weight_orig". */
typedef struct {
    char name[40];
    int is_param;       /* 1: in params (trained; grad at the same offset in grads); 0: state */
    float *data;        /* float32 data (NULL for num_batches_tracked) */
    long long *i64;     /* num_batches_tracked (a 0-dim int64 tensor in PyTorch) */
    size_t count;       /* elements */
    int ndim;
    int64_t shape[4];
} net_tensor_t;
int net_n_tensors(const net_t *n);
/* Tensor j (0 <= j < net_n_tensors) after net_alloc. */
void net_tensor(const net_t *n, int j, net_tensor_t *t);

/* Spec text (lib/nn/spec.c): parse into a new array of layers (hyper-parameters set, shapes not
 * inferred, residual blocks with their children; free with spec_free), and format layers back
 * into normalised text (malloc'd). */
int spec_parse(const char *spec, layer_t **layers, int *n_layers);
char *spec_format(const layer_t *layers, int n_layers);
void spec_free(layer_t *layers, int n_layers);

/* The most channels of any layer's input, inside blocks too (data-parallel BatchNorm's scratch). */
int net_max_channels(const net_t *n);

#endif
