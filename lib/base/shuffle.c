/* shuffle.c: the epoch permutation (shuffle.h). */
#include "shuffle.h"
#include "philox.h"

void shuffle_perm(int64_t *perm, int64_t n, uint64_t seed, uint32_t epoch) {
    philox_shuffle(perm, n, seed, PHILOX_STREAM_SHUFFLE, epoch);
}

void philox_shuffle(int64_t *perm, int64_t n, uint64_t seed, uint32_t stream, uint32_t step) {
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        /* words 2i and 2i+1 lie in the same Philox block (2i is even) */
        philox_u4 blk = philox_block(seed, stream, step, (uint64_t)i >> 1);
        unsigned w = (unsigned)((2 * (uint64_t)i) & 3);
        uint64_t r = (uint64_t)blk.v[w] | ((uint64_t)blk.v[w + 1] << 32);
        int64_t j = (int64_t)(r % (uint64_t)(i + 1));
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}
