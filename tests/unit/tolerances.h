/* tolerances.h: how closely the CUDA backend must agree with the CPU backend (DESIGN.md:
 * "tolerances live in one header"); used by tests/unit/test_backend_parity.c.
 *
 * A float result x of the CUDA backend agrees with the CPU's y when
 *     |x - y| <= tol * max(|y|, rms(Y))
 * where rms(Y) is the root mean square of the whole tensor Y the element belongs to: relative
 * for ordinary elements, and, for elements near zero (where a relative error means nothing:
 * a sum that cancels), relative to the tensor's typical size.
 *
 * Why these values. The CUDA kernels call the CPU's own per-element functions (GT_HD), both
 * sides compile without FMA contraction (-std=c11, nvcc --fmad=false), and IEEE operations
 * (+ - * /, sqrtf) round identically, so what differs is: the order of the double sums in
 * reductions (a few double ulps, invisible after rounding to float but for rare ties),
 * cuBLAS's order of the float sums in a GEMM (about sqrt(k) float ulps), and CUDA's libm
 * (tanhf, expf, log, sin, cos: 1-2 ulps). TOL_OP = 1e-5 is about 80 float ulps: every
 * operation's documented error with a margin, and far below any formula bug.
 * Under the host emulation the libm, the reductions' rounding to float and the GEMM (the same
 * OpenBLAS kernels) coincide with the one-thread CPU backend, and the measured differences
 * are zero.
 *
 * Bit-exact (TOL_EXACT): random numbers (Philox is integer arithmetic; the normals go through
 * double log/sin/cos, whose 1-2 ulp differences on a GPU change the rounded float once in
 * about 2^28 values), batch gathering, dropout masks, shuffling, counters, flags.
 *
 * TOL_DOUBLE: results the backends return in double (losses, norms, the penalty): sums of
 * double terms, so only the order of additions differs.
 *
 * TOL_TRAIN: 10 whole training steps, compared tensor by tensor at the end. Differences of
 * TOL_OP in one step feed the next; Adam divides by the root of the squared gradients, which
 * lets a parameter whose gradient is tiny move by up to lr whatever the gradient's rounding.
 * 1e-4 against the tensor's rms is an order of magnitude above what such drift gives in 10
 * steps at the presets' learning rates, and an order below any wrong formula. */
#ifndef GT_TOLERANCES_H
#define GT_TOLERANCES_H

#define TOL_EXACT 0.0
#define TOL_OP 1e-5
#define TOL_DOUBLE 1e-10
#define TOL_TRAIN 1e-4

#endif
