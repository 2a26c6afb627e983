/* test_shuffle.c: the epoch permutation (lib/base/shuffle.h): a permutation, a pure function of
 * (seed, epoch), the documented Fisher-Yates draw, and uniform over many epochs. */
#include <stdlib.h>
#include <string.h>

#include "lib/base/philox.h"
#include "lib/base/shuffle.h"
#include "harness.h"

static int is_perm(const int64_t *p, int64_t n) {
    char *seen = calloc((size_t)n + 1, 1);
    int ok = 1;
    for (int64_t i = 0; i < n; i++) {
        if (p[i] < 0 || p[i] >= n || seen[p[i]]) ok = 0;
        else seen[p[i]] = 1;
    }
    free(seen);
    return ok;
}

static void test_is_permutation(void) {
    static const int64_t sizes[] = {0, 1, 2, 3, 7, 64, 1000, 60000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int64_t n = sizes[s];
        int64_t *p = malloc(sizeof *p * (size_t)(n + 1));
        for (uint32_t e = 0; e < 3; e++) {
            shuffle_perm(p, n, 12345, e);
            CHECK(is_perm(p, n), "n=%lld epoch %u", (long long)n, e);
        }
        free(p);
    }
}

static void test_pure_function(void) {
    int64_t a[500], b[500], c[500], d[500];
    shuffle_perm(a, 500, 7, 3);
    shuffle_perm(b, 500, 7, 3);
    CHECK(memcmp(a, b, sizeof a) == 0, "same (seed, epoch) differ");
    shuffle_perm(c, 500, 7, 4);
    CHECK(memcmp(a, c, sizeof a) != 0, "epochs 3 and 4 gave the same order");
    shuffle_perm(d, 500, 8, 3);
    CHECK(memcmp(a, d, sizeof a) != 0, "seeds 7 and 8 gave the same order");
    int fixed = 0;
    for (int i = 0; i < 500; i++) fixed += a[i] == i;
    CHECK(fixed < 20, "%d fixed points out of 500: not shuffled", fixed);
}

/* The documented draw, written independently with philox_u32 word by word. */
static void test_documented_draw(void) {
    enum { N = 257 };
    int64_t p[N], q[N];
    uint64_t seed = 0x123456789abcdefULL;
    uint32_t epoch = 11;
    for (int i = 0; i < N; i++) q[i] = i;
    for (int i = N - 1; i > 0; i--) {
        uint64_t lo = philox_u32(seed, PHILOX_STREAM_SHUFFLE, epoch, 2 * (uint64_t)i);
        uint64_t hi = philox_u32(seed, PHILOX_STREAM_SHUFFLE, epoch, 2 * (uint64_t)i + 1);
        uint64_t r = lo | hi << 32;
        int j = (int)(r % (uint64_t)(i + 1));
        int64_t t = q[i];
        q[i] = q[j];
        q[j] = t;
    }
    shuffle_perm(p, N, seed, epoch);
    CHECK(memcmp(p, q, sizeof p) == 0, "differs from the documented Fisher-Yates draw");
}

/* All 24 orders of 4 items over 24000 epochs: chi-square with 23 degrees of freedom. */
static void test_uniform(void) {
    int count[24] = {0};
    const int E = 24000;
    for (int e = 0; e < E; e++) {
        int64_t p[4];
        shuffle_perm(p, 4, 99, (uint32_t)e);
        /* Lehmer code of the permutation */
        int code = 0, fact[4] = {6, 2, 1, 1};
        for (int i = 0; i < 4; i++) {
            int smaller = 0;
            for (int j = i + 1; j < 4; j++) smaller += p[j] < p[i];
            code += smaller * fact[i];
        }
        count[code]++;
    }
    double expect = E / 24.0, chi = 0;
    for (int k = 0; k < 24; k++) chi += (count[k] - expect) * (count[k] - expect) / expect;
    /* 23 d.o.f.: the 99.9% quantile is 49.7 */
    CHECK(chi < 49.7, "chi-square %.1f over 24 orders", chi);
    int missing = 0;
    for (int k = 0; k < 24; k++) missing += count[k] == 0;
    CHECK(missing == 0, "%d orders never drawn", missing);
}

int main(void) {
    RUN(test_is_permutation);
    RUN(test_pure_function);
    RUN(test_documented_draw);
    RUN(test_uniform);
    return harness_done();
}
