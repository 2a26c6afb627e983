/* test_act_math.c: lib/backend/act_math.h's tanh (its own float arithmetic, the same on the CPU
 * and the GPU) against tanh in double: every 61st float in [0, 9.5) (the other side by its odd
 * symmetry, checked separately) within 1.5 ulps of the rounded-to-float reference, and at most
 * 0.05% of them past 1 ulp (over every float: 1.44 ulps at most, 0.008% past 1); the edges: +-0
 * keep their sign, subnormals, the last floats below 0.55 where the two formulas meet, the
 * saturation to exactly +-1 (from 9.0109 on, as tanh in float rounds), +-inf, NaN. Runs in
 * every build. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/backend/act_math.h"
#include "harness.h"

/* |y - tanh(x)| in units of the last place of tanh(x) rounded to float (subnormal ulps below 2^-126) */
static double ulps(float x, float y) {
    double ref = tanh((double)x), mag = fabs(ref);
    double ulp = mag < 0x1p-126 ? 0x1p-149 : ldexp(1.0, ilogb(mag) - 23);
    return fabs((double)y - ref) / ulp;
}

static void test_tanh_accuracy(void) {
    double worst = 0;
    float worst_x = 0;
    long past_one = 0, n = 0;
    const uint32_t end = 0x41180000u; /* 9.5f */
    for (uint32_t u = 0; u < end; u += 61, n++) {
        float x = act_bits_float(u);
        double e = ulps(x, act_tanh(x));
        if (e > worst) worst = e, worst_x = x;
        if (e > 1.0) past_one++;
    }
    CHECK(worst <= 1.5, "%.3f ulps at x = %a", worst, (double)worst_x);
    CHECK(past_one <= n / 2000, "%ld of %ld floats past 1 ulp", past_one, n);
}

static void test_tanh_symmetry(void) {
    long bad = 0;
    for (uint32_t u = 0; u < 0x41200000u; u += 9973) { /* up to 10 */
        float x = act_bits_float(u);
        if (act_float_bits(act_tanh(-x)) != (act_float_bits(act_tanh(x)) ^ 0x80000000u)) bad++;
    }
    CHECK(bad == 0, "%ld floats where tanh(-x) is not -tanh(x) bit for bit", bad);
}

static void test_tanh_edges(void) {
    float pz = act_tanh(0.0f), nz = act_tanh(-0.0f);
    CHECK(pz == 0.0f && !signbit(pz) && nz == 0.0f && signbit(nz), "tanh(+-0) = %a, %a", (double)pz, (double)nz);
    float sub[] = {0x1p-149f, 0x1.5p-140f, 0x1.fffffcp-127f, 0x1p-126f, 0x1p-30f};
    for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++)
        CHECK(act_tanh(sub[i]) == sub[i] && act_tanh(-sub[i]) == -sub[i], "tanh(%a) = %a", (double)sub[i],
              (double)act_tanh(sub[i]));
    for (uint32_t u = 0x3f0cccc0u; u <= 0x3f0cccd8u; u++) { /* around 0.55: both formulas' sides */
        float x = act_bits_float(u);
        CHECK(ulps(x, act_tanh(x)) <= 1.5, "%.3f ulps at x = %a", ulps(x, act_tanh(x)), (double)x);
    }
    float big[] = {9.0110f, 9.4999f, 9.5f, 9.5001f, 20.0f, 1e30f, INFINITY};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++)
        CHECK(act_tanh(big[i]) == 1.0f && act_tanh(-big[i]) == -1.0f, "tanh(%g) = %a", (double)big[i],
              (double)act_tanh(big[i]));
    CHECK(act_tanh(9.0f) < 1.0f, "tanh(9) = 1: saturates too early");
    CHECK(isnan(act_tanh(NAN)) && isnan(act_tanh(-NAN)), "tanh(NaN) is not NaN");
}

int main(void) {
    RUN(test_tanh_accuracy);
    RUN(test_tanh_symmetry);
    RUN(test_tanh_edges);
    return harness_done();
}
