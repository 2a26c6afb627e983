/* hd.h: marks functions compiled for both host and device.
 *
 * Element-wise math (activations, losses, optimizer updates, Philox) is written once as
 * `GT_HD static inline` functions in headers that are valid C11 and CUDA C++; the CPU loops
 * and the CUDA kernels call the same functions, so the CPU tests check the GPU's arithmetic. */
#ifndef GT_HD_H
#define GT_HD_H
#if defined(__CUDACC__)
#define GT_HD __host__ __device__
#else
#define GT_HD
#endif
#endif
