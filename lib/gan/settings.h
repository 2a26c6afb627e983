/* settings.h: the training settings of a GAN model and their text forms: the loss, the two
 * optimizers ("adam:lr=2e-4,b1=0.5"), the D steps per G step, the penalties, the EMA decay,
 * the batch, the R1/R2 penalties, and the data shape ("1x28x28"). Programs parse them from options, checkpoints
 * store them (lib/gan/checkpoint.c), and a run may change them (gan-step's overrides). */
#ifndef GT_SETTINGS_H
#define GT_SETTINGS_H

#include <stddef.h>

#include "lib/base/cli.h"          /* cli_range_t */
#include "lib/backend/augment_math.h" /* AUG_* */
#include "lib/backend/loss_math.h" /* gan_loss_t */
#include "lib/backend/opt_math.h"  /* opt_kind_t */
#include "lib/nn/layer.h"          /* shape3_t */

/* Optimizer settings (PyTorch's torch.optim semantics). */
typedef struct {
    opt_kind_t kind;
    double lr, b1, b2, eps, wd; /* adam: betas, eps; rmsprop: b1 = alpha; sgd: b1 = momentum */
    double momentum;            /* rmsprop momentum */
    int nesterov, centered;
} opt_conf_t;

/* A learning-rate schedule (torch.optim.lr_scheduler's, stepped once per training step; the
 * factor of step t is gan_lr_factor, lib/gan/tricks.h): constant; linear:N (LinearLR from 1 to
 * 0 over N steps); cosine:N (CosineAnnealingLR, T_max N, eta_min 0); step:EVERY:GAMMA (StepLR). */
typedef enum { LR_CONSTANT = 0, LR_LINEAR, LR_COSINE, LR_STEP } lr_sched_kind_t;
typedef struct {
    lr_sched_kind_t kind;
    int n;        /* linear, cosine: N; step: EVERY */
    double gamma; /* step: the factor every EVERY steps */
} lr_sched_t;

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
    int augment;         /* DiffAugment policies before D (augment_math.h AUG_* bits; 0: off) */
    double r1, r2;       /* R1 and R2 penalty weights gamma: gamma/2 mean |grad_x D(x)|^2 on the real
                            (R1), the fake (R2) batch, added to D's loss (0: off) */
    int reg_every;       /* lazy regularization: R1/R2 every reg_every-th D update, times reg_every */
    double instance_noise;    /* instance noise: Gaussian noise of this standard deviation added to
                                 every image D sees, before DiffAugment (0: off) ... */
    int instance_noise_steps; /* ... annealed linearly to 0 at this step (0: not annealed; tricks.h) */
    double label_flip;        /* the chance that a D target is flipped, real <-> fake (bce, ns; 0: off) */
    double label_smooth_fake; /* D's fake target (bce, ns): two-sided smoothing with label_smooth */
    lr_sched_t lr_sched_g, lr_sched_d; /* the optimizers' learning-rate schedules */
    int bn_local;             /* data-parallel runs: BatchNorm normalizes by each process's own
                                 slice's statistics (--bn-sync local), not the global batch's
                                 (synced, 0: the default); lib/gan/trainer.h */
} gan_settings_t;

#define GAN_MAX_CRITIC 5

/* The numeric settings' ranges, one row each (indexed by gan_setting_k), both ends included:
 * what the programs' options accept (cli_range(&gan_setting_ranges[GAN_SET_EMA], text)) and
 * what gan_settings_check and a checkpoint's reader allow. */
typedef enum { GAN_SET_N_CRITIC, GAN_SET_GP, GAN_SET_CLIP, GAN_SET_LABEL_SMOOTH, GAN_SET_EMA, GAN_SET_BATCH,
               GAN_SET_R1, GAN_SET_R2, GAN_SET_REG_EVERY, GAN_SET_INSTANCE_NOISE, GAN_SET_INSTANCE_NOISE_STEPS,
               GAN_SET_LABEL_FLIP, GAN_SET_LABEL_SMOOTH_FAKE, GAN_SET_BN_LOCAL, GAN_SET_COUNT } gan_setting_k;
/* Settings from this one on are optional in a checkpoint: written only when they differ from
 * gan_settings_default's value, which an absent one takes (so that a checkpoint of a run that
 * does not use them is the one earlier versions wrote). */
#define GAN_SET_FIRST_OPTIONAL GAN_SET_R1
extern const cli_range_t gan_setting_ranges[GAN_SET_COUNT];
/* Setting k of s, and setting it (an integer setting takes v as it is: check v first). */
double gan_setting_get(const gan_settings_t *s, gan_setting_k k);
void gan_setting_set(gan_settings_t *s, gan_setting_k k, double v);

/* "ns" -> LOSS_NS ...; returns -1 with a message for an unknown name. */
int gan_loss_parse(const char *s, gan_loss_t *out);
const char *gan_loss_name(gan_loss_t l);
/* Defaults for a loss: optimizers, n_critic, gp, clip (gan-init's table); batch 64; no R1 or R2,
 * reg_every 1. */
void gan_settings_default(gan_settings_t *s, gan_loss_t loss);
/* DiffAugment's policies: "color,translation,cutout" (any of them, in that order, each at most
 * once) or "none" -> AUG_* bits into *out; -1 with a message naming the bad part. */
int gan_augment_parse(const char *s, int *out);
/* The text of policy bits (what gan_augment_parse reads back; "none" for 0) into buf. */
void gan_augment_text(int policy, char *buf, size_t n);

/* Parse "adam:lr=2e-4,b1=0.5,b2=0.999", "sgd:lr=0.01,momentum=0.9,nesterov",
 * "rmsprop:lr=5e-5,alpha=0.99,momentum=0,centered"; unset values take torch's defaults
 * (adam lr 1e-3 betas 0.9/0.999 eps 1e-8; sgd lr 1e-3; rmsprop lr 1e-2 alpha 0.99 eps 1e-8).
 * Returns 0 or -1 with a message naming the bad part. */
int opt_conf_parse(const char *s, opt_conf_t *c);
/* Canonical text of c into buf (every setting, %.9g): for messages. */
void opt_conf_format(const opt_conf_t *c, char *buf, size_t n);
/* The same text with every number exact (gt_format_exact, at least 15 digits): opt_conf_parse
 * reads it back to identical settings. What checkpoints store. */
void opt_conf_text(const opt_conf_t *c, char *buf, size_t n);
/* Check the loss and that every numeric setting lies in its range (gan_setting_ranges); -1
 * with a message naming the first that does not ("n_critic 7 is out of range [1, 5]"); and that
 * label flipping and a fake target come with the bce or ns loss. */
int gan_settings_check(const gan_settings_t *s);

/* ---- the settings' command-line options, shared by gan-init and gan-step ----------------
 * Each program puts GAN_SETTINGS_LONGOPTS into its getopt_long table (after including
 * <getopt.h>), hands every code getopt_long returns to gan_overrides_option first, and later
 * applies what was given to a settings struct with gan_overrides_apply. A new setting is one
 * row here and in settings.c's option table (and its manual pages). */
typedef enum {
    GAN_OV_OPT_G = GAN_SET_COUNT, GAN_OV_OPT_D, GAN_OV_AUGMENT, GAN_OV_LR_G, GAN_OV_LR_D,
    GAN_OV_LR /* both schedules: sets the GAN_OV_LR_G and GAN_OV_LR_D bits */, GAN_OV_COUNT
} gan_override_k; /* beyond the numeric settings (gan_setting_k) */
#define GAN_OPT_CODE(k) (0x1000 + (k)) /* getopt_long's code of the option of setting k */
#define GAN_SETTINGS_LONGOPTS                                                                             \
    {"n-critic", required_argument, 0, GAN_OPT_CODE(GAN_SET_N_CRITIC)},                                   \
    {"gp", required_argument, 0, GAN_OPT_CODE(GAN_SET_GP)},                                               \
    {"clip", required_argument, 0, GAN_OPT_CODE(GAN_SET_CLIP)},                                           \
    {"label-smooth", required_argument, 0, GAN_OPT_CODE(GAN_SET_LABEL_SMOOTH)},                           \
    {"ema", required_argument, 0, GAN_OPT_CODE(GAN_SET_EMA)},                                             \
    {"batch", required_argument, 0, GAN_OPT_CODE(GAN_SET_BATCH)},                                         \
    {"r1", required_argument, 0, GAN_OPT_CODE(GAN_SET_R1)},                                               \
    {"r2", required_argument, 0, GAN_OPT_CODE(GAN_SET_R2)},                                               \
    {"reg-every", required_argument, 0, GAN_OPT_CODE(GAN_SET_REG_EVERY)},                                 \
    {"opt-g", required_argument, 0, GAN_OPT_CODE(GAN_OV_OPT_G)},                                          \
    {"opt-d", required_argument, 0, GAN_OPT_CODE(GAN_OV_OPT_D)},                                          \
    {"augment", required_argument, 0, GAN_OPT_CODE(GAN_OV_AUGMENT)},                                      \
    {"instance-noise", required_argument, 0, GAN_OPT_CODE(GAN_SET_INSTANCE_NOISE)},                       \
    {"instance-noise-steps", required_argument, 0, GAN_OPT_CODE(GAN_SET_INSTANCE_NOISE_STEPS)},           \
    {"label-flip", required_argument, 0, GAN_OPT_CODE(GAN_SET_LABEL_FLIP)},                               \
    {"label-smooth-fake", required_argument, 0, GAN_OPT_CODE(GAN_SET_LABEL_SMOOTH_FAKE)},                 \
    {"bn-sync", required_argument, 0, GAN_OPT_CODE(GAN_SET_BN_LOCAL)},                                    \
    {"lr-schedule", required_argument, 0, GAN_OPT_CODE(GAN_OV_LR)},                                       \
    {"lr-schedule-g", required_argument, 0, GAN_OPT_CODE(GAN_OV_LR_G)},                                   \
    {"lr-schedule-d", required_argument, 0, GAN_OPT_CODE(GAN_OV_LR_D)}

/* The settings options given on a command line. */
typedef struct {
    unsigned given;            /* bit k: the option of gan_setting_k / gan_override_k k was given */
    gan_settings_t v;          /* the numeric values and the augmentation given */
    const char *opt_g, *opt_d; /* the optimizer texts given (parsed by gan_overrides_apply) */
} gan_overrides_t;

/* If code is a settings option's (GAN_OPT_CODE), take its argument into o (a bad number or
 * policy ends the program with a usage error, as cli_range does) and return 1; else 0. */
int gan_overrides_option(gan_overrides_t *o, int code, const char *arg);
/* Was setting k given? */
static inline int gan_overrides_given(const gan_overrides_t *o, int k) { return (o->given >> k) & 1u; }
/* Apply the given settings to *s, in a fixed order (batch, the optimizers, n_critic, gp, clip,
 * label smoothing, r1, r2, reg_every, the EMA decay, augmentation, then the later settings).
 * When say is not NULL, each that changes a value is said through it ("gp 10 -> 5"), once the
 * result has passed gan_settings_check. Returns 0, or -1 with a message naming the option
 * ("--opt-g: adam: lr must be positive") and *s unchanged. */
int gan_overrides_apply(gan_settings_t *s, const gan_overrides_t *o, void (*say)(const char *fmt, ...));

/* A whole string as a finite number into *v: 0, or -1 (no message) for anything else. */
int gan_parse_number(const char *s, double *v);

/* "constant", "linear:N", "cosine:N", "step:EVERY:GAMMA" (N, EVERY in [1, 10^8], GAMMA in
 * (0, 1]) -> *out; -1 with a message. */
int lr_sched_parse(const char *s, lr_sched_t *out);
/* The text of a schedule (what lr_sched_parse reads back to the same; GAMMA exact) into buf. */
void lr_sched_text(const lr_sched_t *l, char *buf, size_t n);

/* "1x28x28" -> shape; -1 with a message. */
int shape3_parse(const char *s, shape3_t *out);

#endif
