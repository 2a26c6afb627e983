/* net.h: a network: a sequence of layers built from a spec, one parameter buffer, and the
 * activation memory for batches up to max_batch, allocated once (no allocation in a step).
 *
 * Spec language (lib/spec.c, documented in lib/spec.md): one layer per line or separated by
 * ';', a keyword then arguments, e.g.
 *     linear 256; bn; lrelu 0.2; reshape 256x7x7; convT 128 k4 s2 p1; bn; lrelu 0.2; conv 1 k7 p3; tanh
 * Shapes are inferred from the input shape and checked; errors point at the layer:
 *     "layer 4 (convT): output 27x27, expected 28x28". */
#ifndef GT_NET_H
#define GT_NET_H

#include "layer.h"

typedef struct net {
    char *spec;             /* the normalised spec text (what checkpoints store) */
    int n_layers;
    layer_t *layers;
    shape3_t in, out;

    size_t n_params;        /* all layers' weights and biases, in layer order */
    float *params, *grads;  /* one allocation each on the backend's device */
    size_t n_state;         /* BatchNorm running statistics, in layer order */
    float *state;
    long long *bn_batches;  /* num_batches_tracked per BatchNorm layer (host) */

    int max_batch;
    float **acts;           /* acts[i]: input of layer i (acts[0] = network input copy or NULL),
                               acts[n_layers] = output; each (max_batch, size) */
    float **dacts;          /* gradient buffers, same shapes */
    float **tacts;          /* tangents for the gradient penalty (NULL until needed) */
    float *saved;           /* all layers' saved tensors */
    size_t workspace_floats;
    float *workspace;
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

/* Forward a batch x (B, in) -> returns the output (B, out), owned by the net (valid until
 * the next forward). B <= max_batch. */
const float *net_forward(net_t *n, const nn_ctx_t *ctx, const float *x, int B);
/* Backward from dy (B, out) after net_forward on the same batch: accumulates into grads
 * and writes dx (B, in) when dx != NULL. */
void net_backward(net_t *n, const nn_ctx_t *ctx, const float *dy, float *dx, int B);
void net_zero_grad(net_t *n);

/* The context for a pass (workspace filled in from the net). */
nn_ctx_t net_ctx(net_t *n, int training, uint64_t seed, uint32_t rng_step, uint64_t sample_base);

/* Name of parameter tensor j of layer i in PyTorch's nn.Sequential state_dict style
 * ("3.weight", "3.bias", "3.running_mean", ...), for checkpoints. */

#endif
