/* red.h: the CPU backend's reductions over a parameter vector (train.c: sumsq, nonfinite; optim.c:
 * the same figures computed by the optimizer step as it streams the vector, opt_step_t sumsq/bad).
 * A vector is reduced in parts of RED_PART elements, each by one thread, the parts' results added
 * in part order (RED_BATCH parts at a time, through a buffer on the stack: no allocation in a step),
 * so a result depends on the vector only, not on the thread count. Within a part, the sum of squares
 * goes into eight partial sums (element i of the part into sum i % 8, in element order) added as
 * ((s0 + s1) + s2) + ... + s7: red_sumsq_add may be called on consecutive pieces of a part (each but
 * the last a multiple of 8 long) with the same bits as one call on the whole part. Private to lib/cpu/. */
#ifndef GT_CPU_RED_H
#define GT_CPU_RED_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cpu_ops.h"

#define RED_PART BE_FIG_PART
#define RED_BATCH 64

/* Part k of a vector of a reduction: its two figures into out[0], out[1] (the part function's
 * choice of what they are). */
typedef void (*red_part_fn)(const void *job, long k, double out[2]);

/* total[i] = the sum over the parts of a vector of n elements of their figures out[i], added in
 * part order; each part computed by one thread (train.c). */
void red_run(backend_t *be, size_t n, red_part_fn fn, const void *job, double total[2]);
/* The parts' figures themselves: part k's into out[2k], out[2k + 1] (the optimizer step's
 * opt_step_t.fig.parts; cpu_sum_parts adds them as red_run does). */
void red_run_parts(backend_t *be, size_t n, red_part_fn fn, const void *job, double *out);

/* add the squares of p[0..n), the piece of a part that starts at a multiple of 8, into acc[8] */
static inline void red_sumsq_add(double acc[8], const float *p, size_t n) {
    size_t n8 = n - n % 8;
    for (size_t i = 0; i < n8; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += (double)p[i + k] * p[i + k];
    for (size_t i = n8; i < n; i++) acc[i % 8] += (double)p[i] * p[i];
}

static inline double red_sumsq_total(const double acc[8]) {
    double s = 0;
    for (int k = 0; k < 8; k++) s += acc[k];
    return s;
}

/* the number of infinities and NaNs (all exponent bits set) in p[0..n), tested on the bits so
 * that the loop has no branch and vectorizes */
static inline uint32_t red_nonfinite(const float *p, size_t n) {
    uint32_t bad = 0;
    size_t n16 = n - n % 16;
    for (size_t i = 0; i < n16; i += 16) {
        uint32_t u[16];
        memcpy(u, p + i, sizeof u);
        for (int k = 0; k < 16; k++) bad += (u[k] & 0x7f800000u) == 0x7f800000u;
    }
    for (size_t i = n16; i < n; i++) bad += !isfinite(p[i]);
    return bad;
}

#endif
