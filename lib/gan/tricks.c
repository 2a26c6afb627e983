/* tricks.c: the training tricks' schedules (tricks.h). */
#include "tricks.h"

double gan_instance_noise_sigma(const gan_settings_t *s, int64_t t) {
    if (!(s->instance_noise > 0)) return 0;
    if (s->instance_noise_steps <= 0) return s->instance_noise;
    double f = 1.0 - (double)t / (double)s->instance_noise_steps;
    return f > 0 ? s->instance_noise * f : 0;
}
