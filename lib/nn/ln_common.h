/* ln_common.h: the passes layer normalization (layer_ln.c) and instance normalization
 * (layer_in.c) share: both run the backend's ln_* operations, LayerNorm over each sample's
 * values, InstanceNorm over each (sample, channel) row with one scale per channel (ln_args_t.C);
 * the rows are chosen by the layer's kind. */
#ifndef GT_LN_COMMON_H
#define GT_LN_COMMON_H
#include "layer.h"

void ln_common_init(backend_t *be, layer_t *l, init_mode_t mode, uint64_t seed);
void ln_common_forward(const nn_ctx_t *ctx, layer_t *l, float *y, const float *x, int B);
void ln_common_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, const float *dy, const float *x, const float *y,
                        int B);
void ln_common_jvp_forward(const nn_ctx_t *ctx, layer_t *l, float *y, float *ty, const float *x, const float *tx,
                           int B);
void ln_common_jvp_backward(const nn_ctx_t *ctx, layer_t *l, float *dx, float *dtx, const float *dy, const float *dty,
                            const float *x, const float *tx, const float *y, const float *ty, int B);
#endif
