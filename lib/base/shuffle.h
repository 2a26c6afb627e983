/* shuffle.h: the epoch permutation used by training, a pure function of (seed, epoch).
 *
 * The permutation of epoch e over n items is a Fisher-Yates shuffle of the identity driven
 * by Philox (philox.h): for i = n-1 down to 1, a 64-bit draw r_i made of the two words
 * philox_u32(seed, PHILOX_STREAM_SHUFFLE, e, 2i) (low) and (.., 2i+1) (high) picks
 * j = r_i mod (i+1), and positions i and j are swapped. (The modulo's bias is below
 * n / 2^64, far below anything measurable.) Nothing else decides the order, so a run that
 * resumes at (epoch, position) sees exactly the batches an uninterrupted run would. */
#ifndef GT_SHUFFLE_H
#define GT_SHUFFLE_H

#include <stdint.h>

/* Fill perm[0..n) with epoch `epoch`'s permutation of 0..n-1 for `seed`. n >= 0.
 * It is philox_shuffle(perm, n, seed, PHILOX_STREAM_SHUFFLE, epoch). */
void shuffle_perm(int64_t *perm, int64_t n, uint64_t seed, uint32_t epoch);
/* The same Fisher-Yates shuffle on another Philox stream and step (e.g. KID's subsets: fid.h). */
void philox_shuffle(int64_t *perm, int64_t n, uint64_t seed, uint32_t stream, uint32_t step);

#endif
