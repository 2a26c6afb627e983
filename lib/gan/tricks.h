/* tricks.h: the classic tutorials' training tricks as functions of the settings and the step
 * counter, which the trainer (trainer.c) applies: instance noise on D's inputs; label flipping and
 * two-sided label smoothing; learning-rate schedules.
 *
 * Instance noise (settings.h instance_noise = sigma, instance_noise_steps = N): every image D
 * sees in the step that starts at step counter t (real, fake and the penalty's interpolates in
 * the D updates, the fakes in G's update) gets x + sigma_t z, with
 *   sigma_t = sigma * max(0, 1 - t / N)   (N > 0; sigma_t = sigma for every t when N = 0),
 * z standard normal from Philox (seed, PHILOX_STREAM_INSTANCE_NOISE, t * 16 + pass, global
 * sample * C*H*W + element), pass as DiffAugment's (trainer.h): the noise comes before
 * DiffAugment, so D sees T(x + sigma_t z); noise on the data, not a part of the augmentation's
 * differentiable map. Its Jacobian is the identity, so G's gradient and the penalties' input
 * gradients pass it unchanged; R1 and R2 redraw the noise of the pass they accompany (the very
 * D input whose loss the update takes). When sigma_t is 0 no noise is drawn: a run whose noise
 * has annealed away computes what a run without the option computes. */
#ifndef GT_TRICKS_H
#define GT_TRICKS_H

#include <stdint.h>

#include "settings.h"

/* sigma_t above, for the step that starts at step counter t (0: no noise). */
double gan_instance_noise_sigma(const gan_settings_t *s, int64_t t);

/* Label flipping and smoothing (bce and ns losses only; gan_settings_check refuses others).
 * D's targets are 1 - label_smooth for real images (one-sided smoothing, --label-smooth) and
 * label_smooth_fake for fakes (0 by default; two-sided smoothing with --label-smooth-fake).
 * With label_flip = P, in each D update the target of each real and each fake sample is the
 * other kind's with chance P: sample i (global index) of the pass keyed by Philox step
 * t * 16 + pass (pass 3c real, 3c+1 fake, trainer.h) is flipped iff philox_uniform(seed,
 * PHILOX_STREAM_LABEL_FLIP, t * 16 + pass, i) < P. Per sample the loss is then BCE(logit, its
 * target) (loss_math.h loss_bce_target), the mean over the batch as always. G's loss and the
 * penalties are unchanged. Nonzero when the per-sample targets are needed at all. */
static inline int gan_label_targets(const gan_settings_t *s) { return s->label_flip > 0 || s->label_smooth_fake > 0; }

/* Learning-rate schedules (settings.h lr_sched_t; one for G's optimizer, one for D's): in the
 * step that starts at step counter t every update of that optimizer uses lr * f(t), f as
 * torch.optim.lr_scheduler's closed forms when the scheduler is stepped once per training step
 * (after G's update), from a fresh scheduler at step 0:
 *   constant  1
 *   linear:N  LinearLR(start_factor=1, end_factor=0, total_iters=N): 1 - min(t, N) / N
 *   cosine:N  CosineAnnealingLR(T_max=N, eta_min=0): (1 + cos(pi t / N)) / 2 (after N it rises
 *             again, as torch's does: give N = the run's length)
 *   step:E:G  StepLR(step_size=E, gamma=G): G^floor(t / E)
 * f depends on t alone, which the checkpoint stores: a resumed run continues the schedule. */
double gan_lr_factor(const lr_sched_t *l, int64_t t);

#endif
