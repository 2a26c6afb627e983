/* optimizer.h: an optimizer's state over a flat vector of parameters on a backend's device, and
 * its step: torch.optim's Adam, SGD and RMSprop (settings in settings.h, formulas in
 * lib/backend/opt_math.h). A GAN model keeps one for G and one for D (model.h). */
#ifndef GT_OPTIM_H
#define GT_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "lib/backend/backend.h"
#include "settings.h"

/* Optimizer state over a flat parameter vector of n floats (on the backend's device). */
typedef struct {
    opt_conf_t conf;
    size_t n;
    int64_t t;          /* steps taken */
    float *s1, *s2, *s3; /* adam: exp_avg, exp_avg_sq; sgd: momentum_buffer; rmsprop: square_avg,
                            momentum_buffer, grad_avg (those the settings use; else NULL) */
    backend_t *be;       /* the backend that holds the state and runs the update */
} optim_state_t;

/* Fresh state for settings c over n parameters on be: the buffers the settings use, zeroed,
 * t = 0. o must be zeroed or hold state (which is freed). */
void optim_init(optim_state_t *o, backend_t *be, const opt_conf_t *c, size_t n);
/* Switch o to settings c (o zeroed or holding state over n parameters): the state is kept when
 * the new settings use the same buffers (same kind; for sgd momentum on or off alike; for
 * rmsprop momentum and centered alike), otherwise it starts afresh (optim_init). */
void optim_set(optim_state_t *o, backend_t *be, const opt_conf_t *c, size_t n);
/* Release the buffers; safe on a zeroed state. */
void optim_free(optim_state_t *o);

/* One step of the optimizer on params p with gradients g (n floats each, on o's device). */
void optim_step(optim_state_t *o, float *p, const float *g);
/* The same with the learning rate lr * factor (a schedule's; factor 1 is optim_step exactly);
 * zero_g sets each gradient to 0 as the step reads it (net_zero_grad's pass, saved: the caller
 * then marks the net's gradients zero, net_grads_zeroed), else g is left alone. sumsq and bad
 * (on o's device, or NULL): the step also writes the sum of squares of g as it was into sumsq[0]
 * and sets bad[0] = 1 when an updated parameter is not finite, the bits of the backend's sumsq and
 * nonfinite ops, without their passes over the vectors (opt_step_t.fig). */
void optim_step_lr(optim_state_t *o, float *p, float *g, double factor, int zero_g, double *sumsq, double *bad);

/* The same step (counted as one) over elements [lo, hi) only, the rest of p, g and the state left
 * alone (the sharded step, lib/gan/ddp.c); with parts (on o's device, or NULL) the figures of
 * the slice's parts (opt_step_t.fig.parts, lo a multiple of BE_FIG_PART). */
void optim_step_slice(optim_state_t *o, float *p, float *g, size_t lo, size_t hi, double factor, int zero_g,
                      double *parts);

/* Buffer j (0..2) of o and its torch state name ("exp_avg", ...), or NULL when the settings do
 * not use it. What a checkpoint stores as opt_G.<name> (lib/gan/checkpoint.c). */
float *optim_buffer(const optim_state_t *o, int j, const char **name);

#endif
