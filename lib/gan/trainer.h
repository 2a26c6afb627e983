/* trainer.h: GAN training: one step (n_critic D updates, one G update) and the loop, over a
 * model (model.h) and an image tensor, in one process or data-parallel over several
 * (trainer_distribute, below). Used by gan-step.
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
 *     r1/r2 > 0, on every reg_every-th D update (counted by the model's reg_steps, which
 *              counts the D updates taken while either is on), with w = gamma * reg_every:
 *              R1 w/2 mean_i |grad_x D(real_i)|^2 (the passes of the real batch: dropout pass
 *              3c), R2 the same on the fake batch (dropout pass 3c+1), added to D's loss and
 *              their gradients to D's (forward-over-reverse, as the gradient penalty)
 *     D optimizer step; wgan/clip > 0: clip D's weights to [-clip, clip]
 *   G update: D forward on the last fake batch (pass 15), backward through D into the fake
 *     images and through G (D's parameter gradients are not computed in this pass:
 *     nn_ctx_t.skip_param_grads); G optimizer step; EMA of G's weights when on.
 * DiffAugment (set.augment, diffaug.h): D sees T(x) for x the real, fake or interpolated images,
 * T drawn afresh for each pass from Philox (seed, PHILOX_STREAM_AUGMENT, step t * 16 + pass,
 * global sample * AUG_DRAWS + draw) with pass 3c (real), 3c+1 (fake), 3c+2 (the penalty) and
 * 15 (G's update); G's gradient flows back through T (its adjoint). The critic is D o T
 * throughout: the penalty is on grad_xhat D(T(xhat)), as the authors' code penalises the
 * gradient of D(DiffAugment(x)) w.r.t. x, and its forward-mode pass carries T's linear part.
 * R1 and R2 likewise penalise grad_x D(T(x)) (through T's adjoint; the forward-mode pass
 * carries T's linear part) with the draws of the loss pass they accompany, pass 3c for R1
 * and 3c+1 for R2, as they take that pass's dropout masks: each penalises the very D(T(x))
 * whose loss the update takes, and draws nothing of its own.
 * Instance noise (tricks.h): D sees T(x + sigma_t z) in every pass above, z keyed as T's draws
 * but on PHILOX_STREAM_INSTANCE_NOISE.
 * Class-conditional models (trainer_set_labels): every pass gets the real batch's classes;
 * G draws its fakes for those classes.
 * Dropout masks use Philox (seed, PHILOX_STREAM_DROPOUT, step t * 16 + pass, sample index
 * within the batch). So a step depends only on the model (weights, optimizer state,
 * counters, seed) and the data.
 *
 * Where things live: everything a step touches is on the model's backend device: the data
 * (uploaded once, uint8 stays uint8), the epoch's permutation (computed on the host by
 * shuffle.h, uploaded once per epoch), the batches, noise and gradients. A step only queues
 * work: its figures (losses, norms) and its checks (a NaN or Inf in a loss or a weight) are
 * kept on the device in statistics slots (train_math.h), and the host reads them only when it
 * asks (trainer_stats, trainer_check). The device remembers the first step that went bad, so
 * the error still names that step however late the host looks; train_loop looks after
 * every step on the CPU (free there) and about once a second on a GPU, and callers must call
 * trainer_check before writing a checkpoint, so a poisoned model is never saved.
 * On a backend with graphs (CUDA), a step is recorded and launched as one graph (backend.h
 * graph_begin; kernels/README.md, "CUDA graphs"), except the first of its kind, a step that
 * starts an epoch, data-parallel and observed steps: the same operations, the same bits.
 *
 * Data-parallel (trainer_distribute; lib/base/dist.h): P processes hold the same model and data and
 * compute the same function as one process with the same global batch B. Process r takes
 * samples [lo, lo + b) of every global batch, lo = floor(B r / P), b = floor(B (r+1) / P) - lo,
 * in the epoch's global order. Everything random is keyed by the global sample index: noise
 * index ((c*B + lo + i) * z_dim + k), the penalty's e at c*B + lo + i, dropout masks at
 * sample_base lo (B + lo in the penalty's passes). Losses are means over the global batch
 * (the backend's loss, gp_scale and r1_scale divide by B, not b), so the gradients of the slices add up
 * to the one-process gradient: after each backward pass the trainer sums the parameter
 * gradients (float32) and the step's loss figures (float64) across the processes
 * (lib/gan/ddp.h, through the backend's sum_procs: MPI on the CPU, NCCL on GPUs), and every
 * process then takes the same optimizer step on the same sums; or, with the optimizer sharded
 * (shard_optimizer, the default when the backend can), each process steps its own slice of the
 * parameters on the sums reduced to it, and the updated slices are gathered (ddp.h). BatchNorm in training mode
 * takes its statistics over the global batch (backend.h bn_sync_t: per-channel sums in float64
 * summed across processes). What is bit-exact against
 * one process and what agrees to rounding: README, "Distributed training". */
#ifndef GT_TRAINER_H
#define GT_TRAINER_H

#include <signal.h>
#include <stdint.h>

#include "lib/base/tensor.h"
#include "lib/base/dist.h"
#include "ddp.h"
#include "diffaug.h"
#include "model.h"

typedef struct {
    double loss_d, loss_g;   /* D's loss (last critic update), G's loss */
    double d_real, d_fake;   /* mean D(x), mean D(G(z)): sigmoid of logits for bce/ns, raw otherwise */
    double gp;               /* the penalties added to D's loss: wgan-gp's, R1's and R2's (0: none) */
    double gnorm_g, gnorm_d; /* L2 norms of G's and D's parameter gradients before their updates */
} train_stats_t;

typedef struct {
    gan_model_t *m;
    backend_t *be;
    const tensor_t *data;    /* N x C x H x W, float32 in [-1, 1] or uint8 (x - 127.5) / 127.5 (host) */
    const void *data_dev;    /* the same on the device (upload_const) */
    int64_t n;
    int B;
    int64_t *perm;           /* (n) the permutation of epoch perm_epoch (host) */
    int64_t *perm_dev;       /* (n) the same on the device */
    int64_t perm_epoch;      /* -1: none yet */
    /* device buffers */
    float *real;             /* (B, C*H*W) */
    float *z;                /* (B, z_dim) */
    float *dfake;            /* (B, C*H*W) gradient of G's loss w.r.t. the fake images */
    float *dlogit;           /* (B) */
    float *xhat;             /* (B, C*H*W) wgan-gp: interpolates */
    float *gx;               /* (B, C*H*W) wgan-gp, R1, R2: input gradients / their cotangents v */
    float *ones;             /* (B) wgan-gp, R1, R2 */
    diffaug_t aug;           /* DiffAugment (set.augment != 0; policy 0 otherwise) */
    float *aug_x, *aug_dx;   /* (B, C*H*W) augmented images D sees, the gradient w.r.t. them */
    float *noisy;            /* (B, C*H*W) images with instance noise (tricks.h; NULL when off) */
    int64_t *labels_dev;     /* (n) the images' classes (class-conditional models; NULL otherwise) */
    int64_t *batch_labels;   /* (B) the current real batch's classes, which its fakes share */
    double *stats;           /* (TS_COUNT) statistics slots (train_math.h) */
    double last_check;       /* when train_loop last looked for a bad step (seconds) */
    /* data-parallel (trainer_distribute): NULL, 0, B in one process */
    dist_t *dist;
    int lo, b;               /* this process's slice [lo, lo + b) of each global batch */
    bn_sync_t bn_sync;       /* BatchNorm statistics over the global batch */
    int graph_seen;          /* CUDA graphs (train_step): kinds of step run uncaptured, 1 without R1/R2, 2 with */
    double bucket_mb;        /* gradient sums started during the backward pass in buckets of at
                                least this many MB (0: after it); set before trainer_distribute */
    ddp_t ddp;
    int shard_optimizer;     /* shard the optimizer step over the processes (ddp.h) when the
                                backend can: 1 (trainer_init's default) or 0; set before
                                trainer_distribute */
    int sharded;             /* it is (trainer_distribute) */
    int params_shared;       /* sharded, and both nets' parameters and gradients are in memory the
                                processes share (backend.h alloc_shared): the CPU backend on one
                                machine */
    int64_t state_every[2];  /* sharded: at steps that are multiples of these (> 0), train_loop
                                completes the optimizer state on every process before after_step
                                (trainer_sync_state), for the checkpoints after_step writes */
} trainer_t;

enum { TRAINER_BUCKET_MB = 25 }; /* bucket_mb's default (trainer_init) */

/* Prepare training of m on data (checked: shape must be m's, N >= batch) on the model's
 * backend: uploads the data. When the data's size differs from the one the model's counters
 * refer to, a new epoch starts. Returns 0 or -1 with a message. */
int trainer_init(trainer_t *t, gan_model_t *m, const tensor_t *data);
void trainer_free(trainer_t *t);

/* The images' classes for a class-conditional model (m->classes = K > 0), after trainer_init:
 * labels is N int64 or uint8 values (shape N, or N x 1), one per image, each in [0, K). They are
 * uploaded once and shuffled with the images (the same permutation); each real batch's
 * classes are gathered with it, and the batch's fakes are drawn for the same classes. Returns
 * 0, or -1 with a one-line message (not conditional, count, dtype, a label out of range). */
int trainer_set_labels(trainer_t *t, const tensor_t *labels);

/* Make t process d->rank of d->size of a data-parallel run (see above); call after
 * trainer_init, before the first step, on every process with the same model and data (a
 * collective: the backend joins the run, backend.h join). Needs a backend that can sum across
 * processes (the CPU's; the CUDA backend's when built with NCCL) and a batch of at least
 * d->size. Returns 0 or -1 with a message. */
int trainer_distribute(trainer_t *t, dist_t *d);

/* Queue one training step. Returns -1 with a message only when the step counter is
 * exhausted; a NaN or Inf shows later, in trainer_check. */
int train_step(trainer_t *t);

/* 0 when no step so far went bad, else -1 with a message naming the first bad step and what
 * went bad ("step 12: D's loss is nan; stopping"); the model is then poisoned: do not save it.
 * Waits for the queued work. */
int trainer_check(trainer_t *t);

/* Wait for the queued work and read the figures: *last of the latest step (when last is not
 * NULL) and, when mean is not NULL, their mean over the steps since the previous call that
 * asked for a mean (*count of them; that call's interval then ends). */
void trainer_stats(trainer_t *t, train_stats_t *last, train_stats_t *mean, int64_t *count);

/* Sharded (trainer_t.sharded): complete each process's optimizer state from the slices' owners
 * (a collective: every process calls it at the same point), which a checkpoint needs; no-op
 * otherwise. */
void trainer_sync_state(trainer_t *t);

/* The loop: steps until the model's step counter reaches `until_step`, or *stop becomes
 * non-zero (checked after each step), or after_step returns non-zero. Looks for a bad step
 * (trainer_check) after every step on the CPU, about once a second on another device, and
 * at the end. Returns 0, or -1 with a message when a step went bad. Data-parallel: the
 * processes agree after every step on stopping (the largest *stop of any process is stored
 * into *stop on every one; after_step's wish to stop counts as one), so all leave the loop
 * after the same step. */
int train_loop(trainer_t *t, int64_t until_step, volatile sig_atomic_t *stop, int (*after_step)(void *arg),
               void *arg);

#endif
