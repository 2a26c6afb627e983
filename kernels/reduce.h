/* reduce.h: deterministic segmented sums in double for the CUDA backend, without shared
 * memory, __syncthreads or atomics (so the host emulation runs them faithfully).
 *
 * A reduction sums K quantities over the elements of each of `segs` segments (a BatchNorm
 * channel, a LayerNorm sample, a bias column...). A segment's elements are e = o inner + i,
 * o < outer, i < inner: the caller's functor F adds element (o, i) of segment s into
 * acc[0..K): f(s, o, i, acc), so that it needs no division per element (gt_reduce_2d; plain
 * gt_reduce has one row, f(s, e, acc)). Then:
 *   partial  thread t = s P + p visits elements e = p, p + P, p + 2P, ... of segment s, the
 *            m-th of them into chain m mod GT_REDUCE_CHAINS (independent accumulators, so the
 *            additions of one chain wait on each other, not on the other chains'), and adds
 *            its chains as (c0 + c1) + (c2 + c3)
 *   combine  while P > GT_REDUCE_FAN: each thread sums GT_REDUCE_FAN consecutive partials of its
 *            segment, in order (P becomes P / GT_REDUCE_FAN, rounded up)
 *   final    thread s sums its last partials in order, then calls g(s, sums)
 * P depends only on segs and the element count (a power of two: about GT_REDUCE_THREADS
 * threads in all, about what a large GPU keeps resident, each summing at least GT_REDUCE_MIN
 * elements), so the order of every addition is fixed: the same bits run to run, and the
 * emulation computes exactly the GPU's sums (IEEE double additions). The CPU backend sums
 * in element order instead; the two agree to rounding (tests/unit/tolerances.h).
 * Consecutive threads read consecutive elements when F's elements are contiguous. Two
 * launches for short reductions, up to four for the longest (a million parameters).
 * A tree reduction in shared memory would need fewer launches; it would need this one as its
 * emulated twin, checked against it on a GPU.
 * Each launch counts its busiest thread's chain of dependent additions (gt_count_depth). */
#ifndef GT_REDUCE_H
#define GT_REDUCE_H

#include "cuda_check.h"

enum { GT_REDUCE_FAN = 32, GT_REDUCE_CHAINS = 4, GT_REDUCE_MIN = 8 };
#define GT_REDUCE_THREADS 262144L

/* the next element of a thread's walk: e + P as (o, i), with P = po inner + pi */
__device__ static inline void gt_reduce_advance(long &e, long &o, long &i, long P, long po, long pi, long inner) {
    e += P;
    o += po;
    i += pi;
    if (i >= inner) {
        i -= inner;
        o++;
    }
}

template <int K, class F>
__global__ void k_reduce_partial(double *part, long segs, long P, long inner, long count, F f) {
    size_t t = GT_TID();
    if (t >= (size_t)segs * P) return;
    long s = (long)(t / P);
    long p = (long)(t % P);
    long e = p, o = p / inner, i = p % inner, po = P / inner, pi = P % inner;
    double a0[K], a1[K], a2[K], a3[K];
    for (int j = 0; j < K; j++) a0[j] = a1[j] = a2[j] = a3[j] = 0;
    while (e + 3 * P < count) {
        f(s, o, i, a0);
        gt_reduce_advance(e, o, i, P, po, pi, inner);
        f(s, o, i, a1);
        gt_reduce_advance(e, o, i, P, po, pi, inner);
        f(s, o, i, a2);
        gt_reduce_advance(e, o, i, P, po, pi, inner);
        f(s, o, i, a3);
        gt_reduce_advance(e, o, i, P, po, pi, inner);
    }
    if (e < count) {
        f(s, o, i, a0);
        gt_reduce_advance(e, o, i, P, po, pi, inner);
    }
    if (e < count) {
        f(s, o, i, a1);
        gt_reduce_advance(e, o, i, P, po, pi, inner);
    }
    if (e < count) f(s, o, i, a2);
    for (int j = 0; j < K; j++) part[t * K + j] = (a0[j] + a1[j]) + (a2[j] + a3[j]);
}

/* out (segs, Q, K): thread (s, q) sums partials q FAN .. q FAN + FAN - 1 (< P) of segment s */
template <int K> __global__ void k_reduce_combine(double *out, const double *in, long segs, long P, long Q) {
    size_t t = GT_TID();
    if (t >= (size_t)segs * Q) return;
    long s = (long)(t / Q), q = (long)(t % Q);
    double acc[K];
    for (int j = 0; j < K; j++) acc[j] = 0;
    for (long p = q * GT_REDUCE_FAN; p < (q + 1) * GT_REDUCE_FAN && p < P; p++)
        for (int j = 0; j < K; j++) acc[j] += in[((size_t)s * P + p) * K + j];
    for (int j = 0; j < K; j++) out[t * K + j] = acc[j];
}

template <int K, class G> __global__ void k_reduce_final(const double *part, long segs, long P, G g) {
    size_t s = GT_TID();
    if (s >= (size_t)segs) return;
    double acc[K];
    for (int j = 0; j < K; j++) acc[j] = 0;
    for (long p = 0; p < P; p++)
        for (int j = 0; j < K; j++) acc[j] += part[(s * P + p) * K + j];
    g((long)s, acc);
}

/* Partials per segment for segs segments of count elements. */
static inline long gt_reduce_parts(long segs, long count) {
    long want = GT_REDUCE_THREADS / (segs > 0 ? segs : 1), most = (count + GT_REDUCE_MIN - 1) / GT_REDUCE_MIN;
    long P = 1;
    while (P * 2 <= want && P * 2 <= most) P *= 2;
    return P;
}

/* Sum with f over segments of outer x inner elements, finish with g (both functors with
 * __device__ operator()). op: the backend operation that asks, which its launches are
 * reported under (cuda_check.h). */
template <int K, class F, class G>
void gt_reduce_2d(long segs, long outer, long inner, F f, G g, const char *op = __builtin_FUNCTION()) {
    if (segs <= 0) return;
    long count = outer * inner;
    long P = gt_reduce_parts(segs, count);
    /* room for the partials and, behind them, the first combined level */
    double *part = (double *)gt_cuda_scratch(GT_SCRATCH_PARTIAL, sizeof(double) * K * (size_t)segs * (P + P / 2 + 1));
    double *other = part + (size_t)K * segs * P;
    void (*partial)(double *, long, long, long, long, F) = k_reduce_partial<K, F>;
    void (*combine)(double *, const double *, long, long, long) = k_reduce_combine<K>;
    void (*final_)(const double *, long, long, G) = k_reduce_final<K, G>;
    long per = (count + P - 1) / P; /* elements of the busiest thread */
    gt_count_depth((per + GT_REDUCE_CHAINS - 1) / GT_REDUCE_CHAINS + 2);
    GT_LAUNCH_NAMED("k_reduce_partial", op, partial, gt_blocks((size_t)segs * P), GT_BLOCK, part, segs, P,
                    inner > 0 ? inner : 1, count, f);
    while (P > GT_REDUCE_FAN) {
        long Q = (P + GT_REDUCE_FAN - 1) / GT_REDUCE_FAN;
        gt_count_depth(GT_REDUCE_FAN);
        GT_LAUNCH_NAMED("k_reduce_combine", op, combine, gt_blocks((size_t)segs * Q), GT_BLOCK, other,
                        (const double *)part, segs, P, Q);
        double *t = part;
        part = other;
        other = t;
        P = Q;
    }
    gt_count_depth(P);
    GT_LAUNCH_NAMED("k_reduce_final", op, final_, gt_blocks((size_t)segs), GT_BLOCK, (const double *)part, segs, P, g);
}

/* one row of count elements per segment: f(s, e, acc) */
template <class F> struct gt_reduce_row {
    F f;
    __device__ void operator()(long s, long o, long i, double *acc) const {
        (void)o;
        f(s, i, acc);
    }
};

template <int K, class F, class G>
void gt_reduce(long segs, long count, F f, G g, const char *op = __builtin_FUNCTION()) {
    gt_reduce_2d<K>(segs, 1, count, gt_reduce_row<F>{f}, g, op);
}

#endif
