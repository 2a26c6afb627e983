/* tricks.c: the training tricks' schedules (tricks.h). */
#include <math.h>

#include "tricks.h"

double gan_instance_noise_sigma(const gan_settings_t *s, int64_t t) {
    if (!(s->instance_noise > 0)) return 0;
    if (s->instance_noise_steps <= 0) return s->instance_noise;
    double f = 1.0 - (double)t / (double)s->instance_noise_steps;
    return f > 0 ? s->instance_noise * f : 0;
}

double gan_lr_factor(const lr_sched_t *l, int64_t t) {
    double n = l->n;
    switch (l->kind) {
    case LR_LINEAR: return t >= l->n ? 0 : 1 - (double)t / n;
    case LR_COSINE: return (1 + cos(3.14159265358979323846 * (double)t / n)) / 2;
    case LR_STEP: return pow(l->gamma, (double)(t / l->n));
    default: return 1;
    }
}
