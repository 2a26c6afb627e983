/* tolerances.h: how closely the CUDA backend must agree with the CPU backend, in one header
 * (ARCHITECTURE.md, "The backend contract"); used by tests/unit/test_backend_parity.c.
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
 * Under the host emulation the libm and the reductions' rounding to float coincide with the
 * CPU's, and every operation but the GEMM gives the CPU's bits; the GEMM differs where the CPU
 * backend cuts a product into blocks (backend_cpu.c) and the emulated cuBLAS makes one call.
 *
 * Bit-exact (TOL_EXACT): random numbers (Philox is integer arithmetic; the normals go through
 * double log/sin/cos, whose 1-2 ulp differences on a GPU change the rounded float once in
 * about 2^28 values), batch gathering, dropout masks, shuffling, counters, flags.
 *
 * TOL_DOUBLE: results the backends return in double (losses, norms, the penalty): sums of
 * double terms, so only the order of additions differs.
 *
 * Whole training steps (TOL_FIGURES, TOL_STEP_RMS). A GAN step is a chaotic function of its
 * rounding: discrete branches (relu and lrelu at 0, the hinge at 1, max pooling's ties) flip
 * for values within rounding of the branch point, and Adam with eps 1e-8 turns the rounding
 * noise of a near-zero gradient into a step of lr. One step from the same state moves D by
 * about 1e-5 of its rms on the two devices (measured under the emulation), and G's gradient
 * taken through that D moves by up to 2e-3 of its rms in the presets (wgan-gp, 5 critic
 * updates; a controlled experiment on the CPU alone, D perturbed by 1e-5 of itself, moves it
 * by 4e-3 after one step). So free-running runs part ways within a few steps whatever the
 * arithmetic's quality, and the suite compares steps one at a time from
 * a common state (the CPU's after the step before), for 10 steps:
 *   TOL_FIGURES   relative difference of the step's losses, mean outputs, penalty and
 *                 gradient norms (measured at most 3e-4)
 *   TOL_STEP_RMS  per tensor (weights, BatchNorm statistics, optimizer state, EMA): the rms
 *                 of the difference against the tensor's rms (measured at most 2e-3)
 * A wrong formula anywhere in a step moves these by orders of magnitude more; the precision
 * of each operation is what the per-operation tolerances above check. */
#ifndef GT_TOLERANCES_H
#define GT_TOLERANCES_H

#define TOL_EXACT 0.0
#define TOL_OP 1e-5
#define TOL_DOUBLE 1e-10
#define TOL_FIGURES 2e-3
#define TOL_STEP_RMS 1e-2

/* TOL_ELEM: the element-wise operations without libm calls or reductions across threads (the
 * optimizer steps and EMA, BatchNorm, the activations and their fused passes, bias). Under the
 * host emulation the kernels run the CPU's per-element functions compiled for baseline x86-64
 * (SSE2), while the CPU backend runs its AVX-512F or AVX2 copies of the same loops
 * (lib/cpu/cpu_ops.h, CPU_VEC_CLONES): there the two must agree bit for bit, which shows that
 * every copy computes exactly what the C says (a contracted a*b+c fails it). On a GPU, TOL_OP. */
#ifdef GT_CUDA_EMU
#define TOL_ELEM TOL_EXACT
#else
#define TOL_ELEM TOL_OP
#endif

#endif
