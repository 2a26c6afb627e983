/* fastdiv.h: division of 32-bit indices by a divisor fixed for a whole launch, by a multiply
 * and a shift (Granlund and Montgomery's method), host+device (lib/base/hd.h) and valid C11,
 * so tests/unit/test_fastdiv.c checks the kernels' arithmetic on the host.
 *
 * A GPU has no integer divider: `/` and `%` on 64-bit operands are a long software sequence,
 * on 32-bit ones a shorter one. The data-movement kernels split a thread's flat index into
 * coordinates by the same few divisors for every thread, so the launch computes, once per
 * divisor d (1 <= d <= 2^31), l = ceil(log2 d) and m = floor(2^32 (2^l - d) / d) + 1; then for
 * every n < 2^31
 *     n / d == (umulhi(n, m) + n) >> l
 * where umulhi is the high word of the 64-bit product (__umulhi on the device). m < 2^32 for
 * every such d, and the sum cannot overflow: umulhi(n, m) < n < 2^31. With n up to 2^32 - 1
 * the sum would need a 33rd bit, which is why the kernels take this path only when their
 * indices stay below 2^31 (kernels/README.md: "Index arithmetic"). */
#ifndef GT_FASTDIV_H
#define GT_FASTDIV_H

#include <stdint.h>

#include "lib/base/hd.h"

/* Largest dividend (and divisor) the method is exact for. */
#define FASTDIV_N_MAX 0x7fffffffu

typedef struct {
    uint32_t d; /* the divisor */
    uint32_t m; /* the multiplier */
    uint32_t l; /* the shift: ceil(log2 d) */
} fastdiv_t;

/* The divisor d, 1 <= d <= 2^31 (the caller checks). */
GT_HD static inline fastdiv_t fastdiv_make(uint32_t d) {
    fastdiv_t f;
    uint32_t l = 0;
    while (l < 31 && ((uint32_t)1 << l) < d) l++;
    f.d = d;
    f.l = l;
    f.m = (uint32_t)((((uint64_t)1 << 32) * (((uint64_t)1 << l) - d)) / d + 1);
    return f;
}

/* The high 32 bits of a * b. */
GT_HD static inline uint32_t fastdiv_umulhi(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
    return __umulhi(a, b);
#else
    return (uint32_t)(((uint64_t)a * b) >> 32);
#endif
}

/* n / f.d for n <= FASTDIV_N_MAX */
GT_HD static inline uint32_t fastdiv_div(uint32_t n, fastdiv_t f) { return (fastdiv_umulhi(n, f.m) + n) >> f.l; }

/* n % f.d for n <= FASTDIV_N_MAX */
GT_HD static inline uint32_t fastdiv_mod(uint32_t n, fastdiv_t f) { return n - fastdiv_div(n, f) * f.d; }

/* n / f.d into *q, and n % f.d returned: one multiply-high for both. */
GT_HD static inline uint32_t fastdiv_divmod(uint32_t n, fastdiv_t f, uint32_t *q) {
    *q = fastdiv_div(n, f);
    return n - *q * f.d;
}

#endif
