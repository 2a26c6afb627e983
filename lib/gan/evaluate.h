/* evaluate.h: a score of a model's generator during training (gan-step --eval-every): K images
 * from the sampler (sampler.h, default settings: EMA weights when the model has them, seed 0,
 * latents 0..K-1, classes i mod K on a class-conditional model) in batches of min(K, the
 * model's allocated batch), their features (features.h) and a distance to a reference set:
 *   fd   the Frechet distance (FID in Inception features) to the reference's statistics
 *   kid  KID (fid.h fid_kid, KID_SUBSETS subsets of min(KID_SUBSET_SIZE, K, reference) samples,
 *        seed 0) to the reference's features; needs the reference's images or features
 * The same K images and the same number come from `gan-sample -n K --batch b` of the model at
 * that step and `gan-fid REF SAMPLES` in the same features (REF first).
 *
 * The reference is a statistics file (`gan-fid --save-stats`; fd only), an images .npy
 * (N x C x H x W, uint8 or float in [-1, 1], read as gan-fid reads it) or a features .npy
 * (N x D float). It is read once, at gan_eval_init.
 *
 * Nothing a training step reads is changed: the sampler leaves G's weights as they were (it
 * overwrites G's activations, which a step recomputes), G runs in evaluation mode (BatchNorm's
 * running statistics are read, not updated; no dropout, no spectral-norm iteration), the
 * latents are Philox PHILOX_STREAM_SAMPLE draws (not the training streams) and KID's subsets
 * PHILOX_STREAM_KID's. So a run with evaluation trains the same bits as one without. */
#ifndef GT_EVALUATE_H
#define GT_EVALUATE_H

#include <stdint.h>

#include "features.h"
#include "sampler.h"

typedef enum { EVAL_FD, EVAL_KID } eval_metric_t;

typedef struct {
    eval_metric_t metric;
    int64_t n;             /* images per evaluation (K) */
    int threads;           /* of the distance (CPU) */
    extractor_t ex;
    sampler_t smp;
    float *x;              /* (batch, C*H*W) a batch of images */
    fid_stats_t ref;       /* fd: the reference's statistics */
    float *ref_feats;      /* kid: (ref_n, d) the reference's features */
    int64_t ref_n;
    float *feats;          /* kid: (n, d) the images' features */
    char label[NAME_LEN + 8]; /* what the score is called: "FID", "FD(pixels)", "KID", ... */
} gan_eval_t;

/* "fd" or "kid" to *metric; -1 with a message otherwise. */
int gan_eval_metric_parse(const char *s, eval_metric_t *metric);
const char *gan_eval_metric_name(eval_metric_t metric);

/* Prepare evaluations of model m: features named `features` (features.h; weights: the Inception
 * weights file or NULL; clean: Inception resizes as clean-fid does, extractor_t's clean), n images, the reference at ref_path, on m's backend; the distance on
 * `threads` CPU threads. Checks the reference against the feature space (its features' name
 * and dimension) and the metric. Returns 0, or -1 (bad data) / -2 (bad usage) with a message
 * (e is then freed). */
int gan_eval_init(gan_eval_t *e, gan_model_t *m, const char *features, const char *weights, int clean,
                  eval_metric_t metric, int64_t n, const char *ref_path, int threads);

/* The score of m's generator now into *score (lower is better). Returns 0 or -1 with a message. */
int gan_eval_score(gan_eval_t *e, double *score);

void gan_eval_free(gan_eval_t *e);

#endif
