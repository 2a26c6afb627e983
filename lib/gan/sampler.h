/* sampler.h: images from a GAN model's generator (model.h), batch by batch, into host
 * buffers: the sampling loop of gan-sample, for any program that wants a model's images (a
 * training-time evaluation, the tests).
 *
 * A run is a sequence of `total` images; image i is a pure function of the settings and i:
 *   base latents  n of them: draw j is N(0,1) from Philox (seed, PHILOX_STREAM_SAMPLE, step 0,
 *                 index j*z_dim + k), components beyond +-trunc redrawn (train_math.h,
 *                 sample_draw); or row j of the caller's latents (zin)
 *   best_of K     draws 0..K n-1 are scored by D (its logit, eval mode, each draw with the
 *                 class of its draw number) and the n best kept in draw order (ties: the earlier
 *                 draw); base latent j is then the j-th kept draw, and its image the class of it
 *   interp K      image i = s K + j lies at t = j/K from base latent s towards s+1, then the
 *                 last base latent alone: (n-1) K + 1 images
 *   per_class     n images of every one of the K classes in class order: image k n + j is of
 *                 class k with base latent j (n K images)
 *   classes       of a class-conditional model (m->classes = K > 0): cls when >= 0, else
 *                 classes[i] when given, else (per_class) i / n, else i mod K
 * G runs in evaluation mode (BatchNorm's running statistics, no dropout) with the EMA weights
 * when the model has them and no_ema is 0. Everything runs on the model's backend; only the
 * requested images, latents and classes are downloaded.
 *
 * Bits: an image's values do not depend on the batch it is computed in up to rounding (a
 * matrix product's may depend on its row count); the same batches give the same bits, so
 * cutting a run at the same batch boundaries (sampler_seek) reproduces it byte for byte. */
#ifndef GT_SAMPLER_H
#define GT_SAMPLER_H

#include <stdint.h>

#include "model.h"

/* What to sample (sampler_conf_default fills the defaults). */
typedef struct {
    int64_t n;              /* base latents, >= 1 (with zin: its rows) */
    uint64_t seed;          /* of the drawn latents */
    const float *zin;       /* (n, z_dim) host latents to use instead of draws; NULL: draw */
    double trunc;           /* > 0: redraw components beyond +-trunc (draws only); 0: off */
    int interp;             /* > 0: interpolate between the base latents (n >= 2); 0: off */
    int best_of;            /* > 1: keep the best n of best_of n draws (draws only); 1: off */
    int no_ema;             /* 1: G's trained weights even when the model has an EMA copy */
    int64_t cls;            /* >= 0: every image of this class; -1: off */
    const int64_t *classes; /* (n) image i is of class classes[i]; NULL: off */
    int per_class;          /* 1: n images of every class (see above); 0: off */
    int batch;              /* images per batch at most, 1..the model's allocated batch */
} sampler_conf_t;

/* A run over a model. The fields are read-only for callers; total and next are public. */
typedef struct {
    gan_model_t *m;
    backend_t *be;
    sampler_conf_t c;       /* the settings (classes: the sampler's copy; zin: NULL, see zin_d) */
    int64_t total;          /* images in the run */
    int64_t next;           /* index of the image sampler_next makes first */
    int64_t *classes;       /* (n) copy of c.classes, or NULL */
    int64_t *sel;           /* (n) best_of: base latent j is draw sel[j]; NULL otherwise */
    nn_ctx_t cg;            /* G's evaluation-mode pass */
    float *zin_d;           /* (n, z_dim) device copy of zin, or NULL */
    float *z;               /* (batch, z_dim) device latents of the current batch */
    int64_t *ia, *ib;       /* (batch) per image: base latents mixed (ib -1: none) ... */
    double *t;              /* ... with weight t (host) */
    int64_t *ia_d, *ib_d;   /* the same on the device */
    double *t_d;
    int64_t *lab, *lab_d;   /* (batch) the current batch's classes, host and device (K > 0) */
    float *saved;           /* (G.n_params) device: G's trained weights while the EMA's run; NULL
                               when G runs on its own weights */
} sampler_t;

/* Defaults: n 64, seed 0, no zin, trunc 0, interp 0, best_of 1, EMA on, no class rules, batch
 * 256. */
void sampler_conf_default(sampler_conf_t *c);

/* Prepare a run over m (loaded or made for batches of at least c->batch) with settings c,
 * checked against the model: n >= 1; batch in 1..G's (and, with best_of, D's) allocated
 * batch; trunc >= 0; zin excludes trunc and best_of; interp needs n >= 2 and, on a
 * class-conditional model, cls; at most one of cls, classes, per_class, which need a
 * class-conditional model and classes in 0..K-1; classes and per_class exclude interp and
 * best_of. c->zin and c->classes are copied (the caller may free them after). With best_of,
 * scores all the draws through G and D now. Leaves the model's weights as they were. Returns 0,
 * or -1 with a message (s is then freed). */
int sampler_init(sampler_t *s, gan_model_t *m, const sampler_conf_t *c);

/* Make images next .. next+b-1 (b in 1..batch, next + b <= total) and advance next by b:
 * x (b, C*H*W) float32 in G's output range; when not NULL, z (b, z_dim) their latents and labels
 * (b) their classes (labels only for a class-conditional model). Host buffers. Runs G on the
 * backend and waits for the results; the model's weights are left as they were (so a sampler
 * can live beside a trainer: G's activations are overwritten, which a step does not read).
 * G's observer (net.h net_observe) at the time of the call watches its pass; best_of's scoring
 * in sampler_init is not watched unless the observer is set before it.
 * Returns 0, or -1 with a message on a bad b or labels request (nothing made). */
int sampler_next(sampler_t *s, int b, float *x, float *z, int64_t *labels);

/* Continue the run at image `first` (0..total), e.g. a shard's first image or 0 to make the same
 * images again. Returns 0, or -1 with a message. */
int sampler_seek(sampler_t *s, int64_t first);

/* Free the sampler's memory (not the model); safe on a zeroed or freed sampler. */
void sampler_free(sampler_t *s);

#endif
