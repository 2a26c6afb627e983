/* norm_math.h: element-wise math of the normalisation and dropout layers, host+device (hd.h).
 * lib/layer_bn.c, lib/layer_ln.c and lib/layer_dropout.c call these in their loops; the CUDA
 * kernels are to call the same functions. Reductions (means, variances, sums of products)
 * are not here: they are accumulated in double by the loops (DESIGN.md). */
#ifndef GT_NORM_MATH_H
#define GT_NORM_MATH_H

#include "hd.h"
#include "philox.h"
#ifndef __CUDACC__
#include <math.h>
#endif

/* 1 / sqrt(var + eps), from a double variance */
GT_HD static inline double norm_inv_std(double var, double eps) { return 1.0 / sqrt(var + eps); }

/* x_hat = (x - mean) * inv_std */
GT_HD static inline float norm_hat(float x, float mean, float inv_std) { return (x - mean) * inv_std; }

/* y = x_hat * w + b */
GT_HD static inline float norm_affine(float xhat, float w, float b) { return xhat * w + b; }

/* The batch-statistics (or per-sample) backward of x_hat = (x - mean) / sqrt(var + eps) over n
 * values: with g = dL/dx_hat, sg = sum g and sgx = sum g x_hat over the n values,
 *   dx = inv_std * (g - sg / n - x_hat * sgx / n). */
GT_HD static inline float norm_dx(float g, float xhat, float inv_std, double sg_n, double sgx_n) {
    return (float)(inv_std * ((double)g - sg_n - (double)xhat * sgx_n));
}

/* Dropout: the uniform draw for element `index` is kept when >= p (inverted dropout). */
GT_HD static inline int dropout_keep_bits(uint32_t bits, float p) { return philox_uniform_bits(bits) >= p; }

/* 1 / (1 - p), the scale of kept elements, rounded once to float as PyTorch's float mask is */
GT_HD static inline float dropout_scale(float p) { return (float)(1.0 / (1.0 - (double)p)); }

#endif
