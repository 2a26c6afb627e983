/* train.h: GAN training: one step (n_critic D updates, one G update) and the loop, over a
 * model (model.h) and an image tensor. Used by gan-step; a distributed version can reuse the
 * step with its own batches.
 *
 * What a step does (K = n_critic, B = batch, t = the model's step counter before the step):
 *   for c in 0..K-1:                                   (a D update)
 *     real = the next B images of the epoch's permutation (shuffle.h); an epoch's last
 *            partial batch is dropped: the next epoch starts instead
 *     D forward/backward on real                        dropout pass 3c
 *     z    = N(0,1) from Philox (seed, PHILOX_STREAM_Z, step t, index (c*B + i)*z_dim + k)
 *     fake = G(z) (training mode)                       dropout pass 3c+2
 *     D forward/backward on fake                        dropout pass 3c+1
 *     wgan-gp: add the gradient penalty lambda * mean (|grad_x D(xhat)| - 1)^2 and its gradient,
 *              xhat = e real + (1 - e) fake, e from Philox (seed, PHILOX_STREAM_GP, t, c*B + i)
 *     D optimizer step; wgan/clip > 0: clip D's weights to [-clip, clip]
 *   G update: D forward on the last fake batch (pass 15), backward through D into the fake
 *     images and through G (D's parameter gradients are not computed in this pass:
 *     nn_ctx_t.skip_param_grads); G optimizer step; EMA of G's weights when on.
 * Dropout masks use Philox (seed, PHILOX_STREAM_DROPOUT, step t * 16 + pass, sample index
 * within the batch). So a step depends only on the model (weights, optimizer state,
 * counters, seed) and the data. */
#ifndef GT_TRAIN_H
#define GT_TRAIN_H

#include <signal.h>
#include <stdint.h>

#include "../lib/tensor.h"
#include "model.h"

typedef struct {
    double loss_d, loss_g;   /* D's loss (last critic update), G's loss */
    double d_real, d_fake;   /* mean D(x), mean D(G(z)): sigmoid of logits for bce/ns, raw otherwise */
    double gp;               /* gradient penalty (wgan-gp; 0 otherwise) */
    double gnorm_g, gnorm_d; /* L2 norms of G's and D's parameter gradients before their updates */
} train_stats_t;

typedef struct {
    gan_model_t *m;
    const tensor_t *data;    /* N x C x H x W, float32 in [-1, 1] or uint8 (x - 127.5) / 127.5 */
    int64_t n;
    int B;
    int64_t *perm;           /* (n) the permutation of epoch perm_epoch */
    int64_t perm_epoch;      /* -1: none yet */
    float *real;             /* (B, C*H*W) */
    float *z;                /* (B, z_dim) */
    float *dfake;            /* (B, C*H*W) gradient of G's loss w.r.t. the fake images */
    float *dlogit;           /* (B) */
    float *xhat, *gx;        /* (B, C*H*W) wgan-gp: interpolates, their input gradients / v */
    float *ones;             /* (B) wgan-gp */
    double *red;             /* (max parameters / 65536 + 1) partial sums of the gradient norms and checks */
    float u8_lut[256];
} trainer_t;

/* Prepare training of m on data (checked: shape must be m's, N >= batch). When the data's
 * size differs from the one the model's counters refer to, a new epoch starts. Returns 0
 * or -1 with a message. */
int trainer_init(trainer_t *t, gan_model_t *m, const tensor_t *data);
void trainer_free(trainer_t *t);

/* One training step. On a NaN or Inf in a loss or a weight returns -1 with a message naming
 * the step (the model is then poisoned: do not save it). */
int train_step(trainer_t *t, train_stats_t *st);

/* The loop: steps until the model's step counter reaches `until_step`, or *stop becomes
 * non-zero (checked after each step), or after_step returns non-zero. Returns 0, or -1 when
 * a step failed. */
int train_loop(trainer_t *t, int64_t until_step, volatile sig_atomic_t *stop,
               int (*after_step)(void *arg, const train_stats_t *st), void *arg);

/* Image `index` of the data into out (C*H*W floats), uint8 converted as idx2tensor does. */
void train_get_image(const trainer_t *t, int64_t index, float *out);

#endif
