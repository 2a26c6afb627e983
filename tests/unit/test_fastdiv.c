/* test_fastdiv.c: kernels/fastdiv.h, the CUDA kernels' division of 32-bit indices by a
 * precomputed multiplier and shift, against C's / and % (the header's host form computes the
 * device's __umulhi as the high word of a 64-bit product). Every divisor up to 4096 with
 * random dividends and the dividends around its multiples, random divisors over the whole
 * range, and the edges: d = 1, powers of two and their neighbours, 2^31 - 1, 2^31; n = 0 and
 * n = 2^31 - 1. Runs in every build. */
#include <stdint.h>
#include <stdio.h>

#include "kernels/fastdiv.h"
#include "harness.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

/* splitmix64 */
static uint64_t rng(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static long failures;

/* one dividend against one divisor: quotient, remainder and the divmod form */
static void check_one(uint32_t n, fastdiv_t f) {
    uint32_t q, r = fastdiv_divmod(n, f, &q);
    if (fastdiv_div(n, f) == n / f.d && fastdiv_mod(n, f) == n % f.d && q == n / f.d && r == n % f.d) return;
    if (failures++ < 10)
        printf("# %u / %u: fastdiv %u rem %u, expected %u rem %u (m %u, l %u)\n", n, f.d, fastdiv_div(n, f),
               fastdiv_mod(n, f), n / f.d, n % f.d, f.m, f.l);
}

/* the edges of the dividend range, the dividends around the first and last multiples of d,
 * and `random` random dividends */
static void check_divisor(uint32_t d, int random) {
    fastdiv_t f = fastdiv_make(d);
    uint32_t top = FASTDIV_N_MAX / d * d; /* the last multiple of d in range */
    uint32_t edges[] = {0, 1, d - 1, d, d + 1, 2 * (uint64_t)d <= FASTDIV_N_MAX ? 2 * d - 1 : 0, top - 1, top,
                        FASTDIV_N_MAX - 1, FASTDIV_N_MAX};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        if (edges[i] <= FASTDIV_N_MAX) check_one(edges[i], f);
    for (int i = 0; i < random; i++) check_one((uint32_t)(rng() & FASTDIV_N_MAX), f);
}

static void test_small_divisors(void) {
    failures = 0;
    for (uint32_t d = 1; d <= 4096; d++) check_divisor(d, 2000);
    CHECK(failures == 0, "%ld wrong results", failures);
}

static void test_edge_divisors(void) {
    failures = 0;
    for (int k = 0; k <= 31; k++) {
        uint32_t p = (uint32_t)1 << k;
        check_divisor(p, 20000);
        if (p > 1) check_divisor(p - 1, 20000);
        if (k < 31) check_divisor(p + 1, 20000);
    }
    check_divisor(FASTDIV_N_MAX, 100000);
    check_divisor(FASTDIV_N_MAX - 1, 100000);
    /* the powers of two shift only */
    CHECK(fastdiv_make(1).l == 0 && fastdiv_make(1).m == 1, "d = 1: m %u l %u", fastdiv_make(1).m, fastdiv_make(1).l);
    CHECK(fastdiv_make(1u << 31).l == 31 && fastdiv_make(1u << 31).m == 1, "d = 2^31");
    CHECK(failures == 0, "%ld wrong results", failures);
}

static void test_random_divisors(void) {
    failures = 0;
    for (int i = 0; i < 20000; i++) {
        uint64_t x = rng();
        /* divisors spread over every bit length: 1 .. 2^31 */
        uint32_t d = (uint32_t)((x & FASTDIV_N_MAX) >> (x >> 59)) + 1;
        check_divisor(d, 100);
    }
    CHECK(failures == 0, "%ld wrong results", failures);
}

int main(void) {
    RUN(test_small_divisors);
    RUN(test_edge_divisors);
    RUN(test_random_divisors);
    return harness_done();
}
