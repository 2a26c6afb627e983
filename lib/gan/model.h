/* model.h: a GAN model: generator G and discriminator D, the data shape, the training
 * settings (settings.h), both optimizers' state (optimizer.h), an EMA copy of G's weights,
 * counters and the seed; and its checkpoint, a safetensors file (written and read in
 * checkpoint.c; the schema is in cmd/gan-init.md, "CHECKPOINT").
 *
 * Everything that decides what a training run does next lives here, so a run continued from
 * a checkpoint is bit for bit the run that never stopped. */
#ifndef GT_MODEL_H
#define GT_MODEL_H

#include <stdint.h>
#include <stdio.h>

#include "lib/backend/backend.h"
#include "lib/nn/net.h"
#include "optimizer.h"
#include "settings.h"

typedef struct {
    gan_settings_t set;
    shape3_t shape;     /* data (and G output) C x H x W */
    int z_dim;
    int classes;        /* K of a class-conditional model (its layers embed, onehot, cbn, proj all
                           have K classes; labels in [0, K)); 0: unconditional */
    int init;           /* init_mode_t used at creation */
    uint64_t seed;
    int64_t step;       /* training steps done (each: n_critic D updates and one G update) */
    int64_t epoch;      /* current epoch of the data permutation */
    int64_t epoch_pos;  /* position in the epoch's permutation of the next real batch */
    int64_t data_n;     /* number of images of the data the counters refer to (0: none yet) */
    int64_t reg_steps;  /* D updates taken while R1 or R2 was on: the lazy regularization's
                           counter (settings.h reg_every); stored when not 0 */
    net_t G, D;
    float *G_ema;       /* (G.n_params) EMA of G's parameters (device); NULL when set.ema == 0 */
    optim_state_t opt_G, opt_D;
    backend_t *be;
} gan_model_t;

/* ---- life cycle (model.c) -------------------------------------------------------------- */

/* A new model: build G (input z_dim x 1 x 1) and D (input shape) from their specs, check
 * G's output is `shape` and D's is a single logit, allocate for batches of max_batch
 * (0: s->batch) and initialise: G from seed, D from seed ^ GAN_D_SEED_XOR, EMA = G.
 * The model's classes come from its class-conditional layers, which must agree on K. */
#define GAN_D_SEED_XOR 0x9E3779B97F4A7C15ULL
int model_new(gan_model_t *m, const char *g_spec, const char *d_spec, shape3_t shape, int z_dim,
              const gan_settings_t *s, int init, uint64_t seed, backend_t *be, int max_batch);
/* The step model_new and model_load share: build G and D from their specs for m's z_dim,
 * shape, loss and backend (which the caller has set), check their outputs as model_new says,
 * set m->classes and allocate for batches of max_batch. The weights are not set, nor the
 * optimizers and EMA. Returns 0, or -1 with a message (then release m with model_free). */
int model_build(gan_model_t *m, const char *g_spec, const char *d_spec, int max_batch);
void model_free(gan_model_t *m);

/* Switch optimizer settings (a new kind resets that optimizer's state: optim_set). */
void model_set_opt(gan_model_t *m, int which_d, const opt_conf_t *c);
/* Turn EMA on (copy of G's weights) or off. */
void model_set_ema(gan_model_t *m, double decay);

/* The number of classes of the class-conditional layers of n into *k (0 when it has none), or
 * -1 with a message naming the first layer whose K differs from an earlier one's. */
int net_classes(const net_t *n, int *k);

/* ---- checkpoint (checkpoint.c) --------------------------------------------------------- */

/* Read a checkpoint from PATH (NULL or "-": stdin) and build the model for batches of
 * max_batch (0: the stored batch). Every field is validated; messages name the file. */
int model_load(gan_model_t *m, const char *path, backend_t *be, int max_batch);
/* Write the checkpoint. The bytes depend only on the model's state (no times, no paths), so
 * two runs that reach the same state write identical files. Returns 0 or -1 with a message
 * (a failed write says why: "write failed: No space left on device"). */
int model_save(const gan_model_t *m, FILE *f);
/* model_save with n_extra more metadata entries keys[i] = vals[i] (names the model's own
 * metadata does not use, e.g. gan-step --keep-best's eval_*); model_load ignores them. */
int model_save_extra(const gan_model_t *m, FILE *f, int n_extra, const char *const *keys, const char *const *vals);

#endif
