/* philox.h: Philox 4x32-10 counter-based random numbers (Salmon et al., SC'11), host+device.
 *
 * Every random number in gan-tools is a pure function of (seed, stream, step, index):
 *   key     = (seed low 32 bits, seed high 32 bits)
 *   counter = (index low 32, index high 32, step, stream)
 * One call yields four 32-bit words; element i of a stream at a step uses counter index
 * i / 4 and word i % 4 (so a pass over n elements costs n/4 Philox blocks). The result does
 * not depend on thread count, device or order of evaluation, and a run resumes from a step
 * number alone.  Streams (PHILOX_STREAM_*) keep uses apart: noise, dropout, shuffling ... */
#ifndef GT_PHILOX_H
#define GT_PHILOX_H

#include <stdint.h>
#include "hd.h"

enum {
    PHILOX_STREAM_INIT = 1,    /* weight initialisation (step = layer index) */
    PHILOX_STREAM_SHUFFLE = 2, /* epoch permutation (step = epoch) */
    PHILOX_STREAM_Z = 3,       /* latent noise for training (step = training step) */
    PHILOX_STREAM_DROPOUT = 4, /* dropout masks (step = training step * 16 + pass) */
    PHILOX_STREAM_GP = 5,      /* gradient-penalty interpolation weights */
    PHILOX_STREAM_SAMPLE = 6,  /* gan-sample latents (step = 0, index = sample * zdim + k) */
    PHILOX_STREAM_KID = 7,     /* gan-fid --kid subsets (step = 2 * subset + set; fid.h) */
    PHILOX_STREAM_AUGMENT = 8, /* DiffAugment draws (step = training step * 16 + pass,
                                  index = global sample * 8 + draw; augment_math.h) */
    PHILOX_STREAM_NOISE = 9,   /* the noise layer's Gaussian draws (step = training step * 16 + pass,
                                  index = layer * 2^48 + global sample * N + element; layer_noise.c) */
    PHILOX_STREAM_INSTANCE_NOISE = 10, /* instance noise on D's inputs (step = training step * 16
                                          + pass, index = global sample * C*H*W + element) */
    PHILOX_STREAM_LABEL_FLIP = 11, /* label flipping (step = training step * 16 + pass, index =
                                      global sample) */
    PHILOX_STREAM_USER = 16    /* first free stream for tests and new uses */
};

typedef struct { uint32_t v[4]; } philox_u4;

GT_HD static inline uint32_t philox_mulhilo(uint32_t a, uint32_t b, uint32_t *hi) {
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

/* The raw block function: 10 rounds over counter c with key k. (Unrolled, GCC keeps the four
 * words in registers: 10.6 -> 7.5 ns per block, which is most of a dropout layer's forward.) */
GT_HD static inline philox_u4 philox4x32_10(philox_u4 c, uint32_t k0, uint32_t k1) {
#if defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
#pragma GCC unroll 10
#endif
    for (int r = 0; r < 10; r++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = philox_mulhilo(0xD2511F53u, c.v[0], &hi0);
        uint32_t lo1 = philox_mulhilo(0xCD9E8D57u, c.v[2], &hi1);
        philox_u4 n;
        n.v[0] = hi1 ^ c.v[1] ^ k0;
        n.v[1] = lo1;
        n.v[2] = hi0 ^ c.v[3] ^ k1;
        n.v[3] = lo0;
        c = n;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return c;
}

/* Block `block` (= element index / 4) of (seed, stream, step). */
GT_HD static inline philox_u4 philox_block(uint64_t seed, uint32_t stream, uint32_t step, uint64_t block) {
    philox_u4 c;
    c.v[0] = (uint32_t)block;
    c.v[1] = (uint32_t)(block >> 32);
    c.v[2] = step;
    c.v[3] = stream;
    return philox4x32_10(c, (uint32_t)seed, (uint32_t)(seed >> 32));
}

/* 32 random bits for element `index`. */
GT_HD static inline uint32_t philox_u32(uint64_t seed, uint32_t stream, uint32_t step, uint64_t index) {
    philox_u4 r = philox_block(seed, stream, step, index >> 2);
    return r.v[index & 3];
}

/* Uniform float in [0, 1) with 24 random bits (exactly representable, never 1). */
GT_HD static inline float philox_uniform_bits(uint32_t bits) { return (float)(bits >> 8) * (1.0f / 16777216.0f); }

GT_HD static inline float philox_uniform(uint64_t seed, uint32_t stream, uint32_t step, uint64_t index) {
    return philox_uniform_bits(philox_u32(seed, stream, step, index));
}

/* Standard normal for element `index`, by Box-Muller on the pair of words (2j, 2j+1) of
 * its block in double precision, rounded to float: element 2j takes the cosine, 2j+1 the
 * sine of the same pair, so both come from one evaluation and neither depends on the other
 * element being computed. u1 is taken in (0, 1] so the log is finite. */
#ifndef __CUDACC__
#include <math.h>
#endif

GT_HD static inline float philox_normal(uint64_t seed, uint32_t stream, uint32_t step, uint64_t index) {
    philox_u4 r = philox_block(seed, stream, step, index >> 2);
    unsigned pair = (unsigned)(index & 3) >> 1;
    uint32_t a = r.v[2 * pair], b = r.v[2 * pair + 1];
    double u1 = ((double)a + 1.0) * (1.0 / 4294967296.0); /* (0, 1] */
    double u2 = (double)b * (1.0 / 4294967296.0);         /* [0, 1) */
    double rad = sqrt(-2.0 * log(u1));
    double ang = 6.283185307179586476925 * u2;
    return (float)((index & 1) ? rad * sin(ang) : rad * cos(ang));
}

/* The value backend.h's philox_fill writes at element `index` (kind: fill_kind_t, 0 uniform
 * in [-scale, scale), 1 normal): (2u - 1) * scale, or scale * z (+ shift when shift != 0,
 * so that a zero shift leaves the product's bits alone). */
GT_HD static inline float philox_fill_value(int kind, uint64_t seed, uint32_t stream, uint32_t step, uint64_t index,
                                            float scale, float shift) {
    if (kind == 0) return (2.0f * philox_uniform(seed, stream, step, index) - 1.0f) * scale;
    float v = scale * philox_normal(seed, stream, step, index);
    return shift != 0.0f ? shift + v : v;
}

#endif
