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

/* ---- host: PHILOX_LANES consecutive blocks at once ------------------------------------ *
 * philox_blocks(seed, stream, step, blk0, w) sets w[j][i] = philox_block(seed, stream, step,
 * blk0 + i).v[j] for i < PHILOX_LANES: the same bits, computed for 8 counters side by side.
 * The rounds are the block function's, lane by lane; on x86-64 CPUs with AVX2 (checked at run
 * time) they run as 8-lane vectors (the 32x32->64 products as two vpmuludq on the even and odd
 * lanes), elsewhere as a plain loop over the lanes. Host code only: a CUDA thread draws its own
 * block. A loop that draws a block per 4 elements (dropout's mask, lib/cpu/layers.c) spends
 * most of its time here. */
#if !defined(__CUDACC__)
#define PHILOX_LANES 8

static inline void philox_blocks_lanes(uint64_t seed, uint32_t stream, uint32_t step, uint64_t blk0,
                                       uint32_t w[4][PHILOX_LANES]) {
    uint32_t c0[PHILOX_LANES], c1[PHILOX_LANES], c2[PHILOX_LANES], c3[PHILOX_LANES];
    for (int i = 0; i < PHILOX_LANES; i++) {
        uint64_t b = blk0 + (uint64_t)i;
        c0[i] = (uint32_t)b;
        c1[i] = (uint32_t)(b >> 32);
        c2[i] = step;
        c3[i] = stream;
    }
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        for (int i = 0; i < PHILOX_LANES; i++) {
            uint64_t p0 = (uint64_t)0xD2511F53u * c0[i], p1 = (uint64_t)0xCD9E8D57u * c2[i];
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[i] ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3[i] ^ k1;
            c0[i] = n0;
            c1[i] = (uint32_t)p1;
            c2[i] = n2;
            c3[i] = (uint32_t)p0;
        }
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    for (int i = 0; i < PHILOX_LANES; i++) {
        w[0][i] = c0[i];
        w[1][i] = c1[i];
        w[2][i] = c2[i];
        w[3][i] = c3[i];
    }
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__cplusplus)
#include <immintrin.h>
#define PHILOX_HAVE_AVX2 1
/* lo and hi words of the 8 products a[i] * m (m in every 32-bit lane) */
__attribute__((target("avx2"))) static inline void philox_mul8(__m256i a, __m256i m, __m256i *lo, __m256i *hi) {
    __m256i ev = _mm256_mul_epu32(a, m);                         /* lanes 0, 2, 4, 6 as 64-bit products */
    __m256i od = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m); /* lanes 1, 3, 5, 7 */
    *lo = _mm256_blend_epi32(ev, _mm256_slli_epi64(od, 32), 0xAA);
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(ev, 32), od, 0xAA);
}

__attribute__((target("avx2"))) static inline void philox_blocks_avx2(uint64_t seed, uint32_t stream, uint32_t step,
                                                                       uint64_t blk0, uint32_t w[4][PHILOX_LANES]) {
    uint32_t lo[PHILOX_LANES], hi[PHILOX_LANES];
    for (int i = 0; i < PHILOX_LANES; i++) {
        uint64_t b = blk0 + (uint64_t)i;
        lo[i] = (uint32_t)b;
        hi[i] = (uint32_t)(b >> 32);
    }
    __m256i c0 = _mm256_loadu_si256((const __m256i *)lo), c1 = _mm256_loadu_si256((const __m256i *)hi);
    __m256i c2 = _mm256_set1_epi32((int)step), c3 = _mm256_set1_epi32((int)stream);
    const __m256i m0 = _mm256_set1_epi32((int)0xD2511F53u), m1 = _mm256_set1_epi32((int)0xCD9E8D57u);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        __m256i lo0, hi0, lo1, hi1;
        philox_mul8(c0, m0, &lo0, &hi0);
        philox_mul8(c2, m1, &lo1, &hi1);
        c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32((int)k0));
        c1 = lo1;
        c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32((int)k1));
        c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    _mm256_storeu_si256((__m256i *)w[0], c0);
    _mm256_storeu_si256((__m256i *)w[1], c1);
    _mm256_storeu_si256((__m256i *)w[2], c2);
    _mm256_storeu_si256((__m256i *)w[3], c3);
}
#endif

static inline void philox_blocks(uint64_t seed, uint32_t stream, uint32_t step, uint64_t blk0,
                                 uint32_t w[4][PHILOX_LANES]) {
#ifdef PHILOX_HAVE_AVX2
    if (__builtin_cpu_supports("avx2")) {
        philox_blocks_avx2(seed, stream, step, blk0, w);
        return;
    }
#endif
    philox_blocks_lanes(seed, stream, step, blk0, w);
}
#endif

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
