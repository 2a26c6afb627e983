/* model.h: a GAN model: generator G and discriminator D, the data shape, loss and optimizer
 * settings, both optimizers' state, an EMA copy of G's weights, counters and the seed; and
 * its checkpoint, a safetensors file (the schema is in cmd/gan-init.md, "CHECKPOINT").
 *
 * Everything that decides what a training run does next lives here, so a run continued from
 * a checkpoint is bit for bit the run that never stopped. */
#ifndef GT_MODEL_H
#define GT_MODEL_H

#include <stdint.h>
#include <stdio.h>

#include "lib/backend/backend.h"
#include "lib/backend/loss_math.h" /* gan_loss_t */
#include "lib/nn/net.h"
#include "lib/backend/opt_math.h"  /* opt_kind_t and the updates */

/* Optimizer settings (PyTorch's torch.optim semantics). */
typedef struct {
    opt_kind_t kind;
    double lr, b1, b2, eps, wd; /* adam: betas, eps; rmsprop: b1 = alpha; sgd: b1 = momentum */
    double momentum;            /* rmsprop momentum */
    int nesterov, centered;
} opt_conf_t;

/* Settings a run may change (gan-step options override them, and they are stored). */
typedef struct {
    gan_loss_t loss;
    opt_conf_t opt_g, opt_d;
    int n_critic;        /* D steps per G step, 1..GAN_MAX_CRITIC */
    double gp;           /* gradient-penalty weight (wgan-gp) */
    double clip;         /* clip D's weights to [-clip, clip] after each D step (0: off) */
    double label_smooth; /* one-sided: D's real target is 1 - label_smooth (bce, ns) */
    double ema;          /* decay of the EMA of G's weights (0: off) */
    int batch;
} gan_settings_t;

#define GAN_MAX_CRITIC 5

/* Optimizer state over a flat parameter vector of n floats (on the backend's device). */
typedef struct {
    opt_conf_t conf;
    size_t n;
    int64_t t;          /* steps taken */
    float *s1, *s2, *s3; /* adam: exp_avg, exp_avg_sq; sgd: momentum_buffer; rmsprop: square_avg,
                            momentum_buffer, grad_avg (those the settings use; else NULL) */
    backend_t *be;       /* the backend that holds the state and runs the update */
} optim_state_t;

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
    net_t G, D;
    float *G_ema;       /* (G.n_params) EMA of G's parameters (device); NULL when set.ema == 0 */
    optim_state_t opt_G, opt_D;
    backend_t *be;
} gan_model_t;

/* ---- settings ------------------------------------------------------------------------ */

/* "ns" -> LOSS_NS ...; returns -1 with a message for an unknown name. */
int gan_loss_parse(const char *s, gan_loss_t *out);
const char *gan_loss_name(gan_loss_t l);
/* Defaults for a loss: optimizers, n_critic, gp, clip (gan-init's table); batch 64. */
void gan_settings_default(gan_settings_t *s, gan_loss_t loss);
/* Parse "adam:lr=2e-4,b1=0.5,b2=0.999", "sgd:lr=0.01,momentum=0.9,nesterov",
 * "rmsprop:lr=5e-5,alpha=0.99,momentum=0,centered"; unset values take torch's defaults
 * (adam lr 1e-3 betas 0.9/0.999 eps 1e-8; sgd lr 1e-3; rmsprop lr 1e-2 alpha 0.99 eps 1e-8).
 * Returns 0 or -1 with a message naming the bad part. */
int opt_conf_parse(const char *s, opt_conf_t *c);
/* Canonical text of c into buf (every setting, %.9g). */
void opt_conf_format(const opt_conf_t *c, char *buf, size_t n);
/* Check ranges of all settings; -1 with a message. */
int gan_settings_check(const gan_settings_t *s);

/* "1x28x28" -> shape; -1 with a message. */
int shape3_parse(const char *s, shape3_t *out);

/* ---- life cycle ---------------------------------------------------------------------- */

/* A new model: build G (input z_dim x 1 x 1) and D (input shape) from their specs, check
 * G's output is `shape` and D's is a single logit, allocate for batches of max_batch
 * (0: s->batch) and initialise: G from seed, D from seed ^ GAN_D_SEED_XOR, EMA = G.
 * The model's classes come from its class-conditional layers, which must agree on K. */
#define GAN_D_SEED_XOR 0x9E3779B97F4A7C15ULL
int model_new(gan_model_t *m, const char *g_spec, const char *d_spec, shape3_t shape, int z_dim,
              const gan_settings_t *s, int init, uint64_t seed, backend_t *be, int max_batch);
/* Read a checkpoint from PATH (NULL or "-": stdin) and build the model for batches of
 * max_batch (0: the stored batch). Every field is validated; messages name the file. */
int model_load(gan_model_t *m, const char *path, backend_t *be, int max_batch);
/* Write the checkpoint. The bytes depend only on the model's state (no times, no paths), so
 * two runs that reach the same state write identical files. Returns 0 or -1. */
int model_save(const gan_model_t *m, FILE *f);
void model_free(gan_model_t *m);

/* Switch optimizer settings (a new kind resets that optimizer's state). */
void model_set_opt(gan_model_t *m, int which_d, const opt_conf_t *c);
/* Turn EMA on (copy of G's weights) or off. */
void model_set_ema(gan_model_t *m, double decay);

/* The backend for `--device NAME` with `threads` CPU threads (0: all cores):
 *   cpu   the CPU backend
 *   cuda  the CUDA backend; NULL with a message (naming CUDA) when the build has none or no
 *         usable GPU is found
 *   auto  cuda when the build has CUDA and a GPU is found, else cpu
 * Returns NULL with a message when the device is unknown or not available. */
backend_t *gan_backend(const char *device, int threads);
/* After gan_backend("auto"): a line saying which device it chose and why, for the program
 * to print on stderr ("device cuda: NVIDIA H100 ...", "device cpu: no CUDA GPU (...)");
 * NULL when there was nothing to choose (the build has no CUDA, or the device was named). */
const char *gan_backend_note(void);

/* The number of classes of the class-conditional layers of n into *k (0 when it has none), or
 * -1 with a message naming the first layer whose K differs from an earlier one's. */
int net_classes(const net_t *n, int *k);

/* ---- optimizers ----------------------------------------------------------------------- */

/* One step of the optimizer on params p with gradients g (n floats each, on o's device). */
void optim_step(optim_state_t *o, float *p, const float *g);

#endif
