/* cpu_ops.h: the CPU backend's operations (backend.h), defined in lib/cpu/layers.c,
 * lib/cpu/conv.c, lib/cpu/pool.c,
 * lib/cpu/inception.c and lib/cpu/train.c and gathered into the backend struct by lib/backend_cpu.c. Private to
 * those files: everyone else calls them through backend_t. */
#ifndef GT_CPU_OPS_H
#define GT_CPU_OPS_H

#include "lib/backend/backend.h"

/* cpu_layers.c */
void cpu_fill(backend_t *be, float *dst, float value, size_t n);
void cpu_philox_fill(backend_t *be, float *dst, size_t n, fill_kind_t kind, uint64_t seed, uint32_t stream,
                     uint32_t step, uint64_t index0, float scale, float shift);
void cpu_bias_add(backend_t *be, float *y, const float *b, long outer, long C, long inner);
void cpu_bias_grad(backend_t *be, float *db, const float *dy, long outer, long C, long inner);
void cpu_act_forward(backend_t *be, act_kind_t k, float slope, float *y, const float *x, size_t n);
void cpu_act_backward(backend_t *be, act_kind_t k, float slope, float *dx, const float *dy, const float *x,
                      const float *y, size_t n);
void cpu_act_jvp_forward(backend_t *be, act_kind_t k, float slope, float *y, float *ty, const float *x,
                         const float *tx, size_t n);
void cpu_act_jvp_backward(backend_t *be, act_kind_t k, float slope, float *dx, float *dtx, const float *dy,
                          const float *dty, const float *x, const float *tx, const float *y, size_t n);
void cpu_bn_forward(backend_t *be, const bn_args_t *a);
void cpu_bn_backward(backend_t *be, const bn_args_t *a);
void cpu_ln_forward(backend_t *be, const ln_args_t *a);
void cpu_ln_backward(backend_t *be, const ln_args_t *a);
void cpu_ln_jvp_forward(backend_t *be, const ln_args_t *a);
void cpu_ln_jvp_backward(backend_t *be, const ln_args_t *a);
void cpu_dropout(backend_t *be, float *o1, const float *i1, float *o2, const float *i2, unsigned char *mask, int draw,
                 size_t n, uint64_t seed, uint32_t step, uint64_t base, float p);

/* conv_loops.c (its own header documents them) */
#include "conv_loops.h"

/* cpu_pool.c */
void cpu_maxpool_forward(backend_t *be, const pool_args_t *a);
void cpu_maxpool_backward(backend_t *be, const pool_args_t *a);
void cpu_avgpool_forward(backend_t *be, const pool_args_t *a);
void cpu_avgpool_backward(backend_t *be, const pool_args_t *a);
void cpu_upsample_forward(backend_t *be, const pool_args_t *a);
void cpu_upsample_backward(backend_t *be, const pool_args_t *a);

/* cpu_inception.c */
void cpu_resize_bilinear(backend_t *be, float *y, const float *x, int B, int C, int H, int W, int S);
void cpu_relu_keep_nan(backend_t *be, float *x, size_t n);
void cpu_copy_rows(backend_t *be, float *dst, long dst_ld, const float *src, long src_ld, long rows, long cols);
void cpu_plane_means(backend_t *be, float *out, const float *x, long planes, long hw);

/* cpu_train.c */
void cpu_loss(backend_t *be, int loss, double smooth, int which, float *dl, double *out, const float *logit, int B,
              int B_mean);
void cpu_gather(backend_t *be, float *dst, const void *data, int data_u8, const int64_t *perm, int64_t pos, int B,
                size_t sz);
void cpu_gp_mix(backend_t *be, float *xhat, const float *real, const float *fake, int B, size_t sz, uint64_t seed,
                uint32_t step, uint64_t index0);
void cpu_gp_scale(backend_t *be, float *g, double *out, int B, int B_mean, size_t sz, double lambda);
void cpu_sumsq(backend_t *be, double *out, const float *x, size_t n);
void cpu_nonfinite(backend_t *be, double *out, const float *x, size_t n);
void cpu_train_stats(backend_t *be, double *st, int what, int64_t stepno);
void cpu_optim(backend_t *be, const opt_step_t *c, float *p, const float *g, float *s1, float *s2, float *s3,
               size_t n);
void cpu_ema(backend_t *be, float *avg, const float *p, float decay, size_t n);
void cpu_clip(backend_t *be, float *p, float c, size_t n);
void cpu_latents(backend_t *be, float *z, int rows, int zd, const float *zin, uint64_t seed, double trunc,
                 const int64_t *ia, const int64_t *ib, const double *t);

/* cpu_class.c */
void cpu_gather_labels(backend_t *be, int64_t *dst, const int64_t *labels, const int64_t *perm, int64_t pos, int B);
void cpu_class_concat(backend_t *be, int kind, float *y, const float *x, const float *table, const int64_t *labels,
                      int B, int C, int E, long S);
void cpu_class_concat_backward(backend_t *be, float *dx, float *dtable, const float *dy, const int64_t *labels, int B,
                               int C, int E, long S, int K);
void cpu_class_affine(backend_t *be, float *y, const float *xhat, const float *w, const float *b, const int64_t *labels,
                      int B, int C, long S);
void cpu_class_affine_backward(backend_t *be, float *dxhat, float *dw, float *db, const float *dy, const float *xhat,
                               const float *w, const int64_t *labels, int B, int C, long S, int K);
void cpu_class_proj(backend_t *be, float *y, const float *h, const float *table, const int64_t *labels, int B, int F);
void cpu_class_proj_backward(backend_t *be, float *dh, float *dtable, const float *dy, const float *h,
                             const float *table, const int64_t *labels, int B, int F, int K);

#endif
