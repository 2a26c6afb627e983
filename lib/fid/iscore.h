/* iscore.h: the Inception Score (Salimans et al. 2016) from pool3 features.
 *
 * The 2015 Inception's 1008 class logits are the pool3 features times the final layer's weights,
 * without its bias (as the Improved-GAN code and torch-fidelity's logits_unbiased compute them):
 *     l = W f,   W = fc.weight (classes x 2048) of pytorch-fid's weights file.
 * With p(y|x) = softmax(l) and, over a split S of the samples, p_S(y) = mean_{x in S} p(y|x):
 *     IS_S = exp( mean_{x in S} sum_y p(y|x) (log p(y|x) - log p_S(y)) ).
 * The samples are cut into `splits` consecutive parts, part s holding samples
 * [s N / splits, (s + 1) N / splits) in the order of the set (torch-fidelity's cut; it first
 * shuffles the samples with NumPy's seed 2020, which moves its standard deviation and, slightly,
 * its mean); the score is the mean of the parts' IS_S and their standard deviation (ddof 0, as
 * torch-fidelity's np.std). Everything after the float32 features is float64; a term with
 * p(y|x) = 0 (underflow) contributes 0, its limit. */
#ifndef GT_ISCORE_H
#define GT_ISCORE_H

#include <stdint.h>

#define IS_SPLITS 10

/* The final layer's weights: *w (classes x dim, float32, host memory; free with free) and
 * *classes, from the tensor fc.weight of the safetensors file PATH (tools/fid-weights.py keeps
 * it). dim is the feature dimension (2048). Returns 0, or -1 with a message (no such tensor,
 * wrong shape or dtype, non-finite values). */
int is_load_fc(const char *path, int dim, float **w, int *classes);

/* The score of features f (n, dim) float32 with the weights w (classes, dim). Needs
 * 1 <= splits <= n. threads is ignored: the GEMMs run on one BLAS thread, so that the result does
 * not depend on the thread count (OpenBLAS's sums do: measured in the last digits of the std);
 * 2 N dim classes multiply-adds twice, about 30 s for 50000 Inception features. Returns 0 and
 * *mean, *std, or -1 with a message. */
int is_compute(const float *f, int64_t n, int dim, const float *w, int classes, int splits, int threads, double *mean,
               double *std);

#endif
