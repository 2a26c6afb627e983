/* cuda_ops.h: the CUDA backend's operations (backend.h), defined in kernels/layers.cu,
 * norm.cu, conv.cu, inception.cu, train.cu and optim.cu and gathered into the backend struct by
 * kernels/backend_cuda.cu. Private to kernels/: everyone else calls them through backend_t.
 * Each entry point counts the bytes it must move (bench/) and queues its kernels on the
 * backend's stream; like the CPU's, it trusts the caller for backend.h's contracts. */
#ifndef GT_CUDA_OPS_H
#define GT_CUDA_OPS_H

#include "lib/backend/backend.h"

/* layers.cu, norm.cu */
void cuda_fill(backend_t *be, float *dst, float value, size_t n);
void cuda_philox_fill(backend_t *be, float *dst, size_t n, fill_kind_t kind, uint64_t seed, uint32_t stream,
                     uint32_t step, uint64_t index0, float scale, float shift);
void cuda_bias_add(backend_t *be, float *y, const float *b, long outer, long C, long inner);
void cuda_bias_grad(backend_t *be, float *db, const float *dy, long outer, long C, long inner);
void cuda_act_forward(backend_t *be, act_kind_t k, float slope, float *y, const float *x, size_t n);
void cuda_act_backward(backend_t *be, act_kind_t k, float slope, float *dx, const float *dy, const float *x,
                      const float *y, size_t n);
void cuda_act_jvp_forward(backend_t *be, act_kind_t k, float slope, float *y, float *ty, const float *x,
                         const float *tx, size_t n);
void cuda_act_jvp_backward(backend_t *be, act_kind_t k, float slope, float *dx, float *dtx, const float *dy,
                          const float *dty, const float *x, const float *tx, const float *y, size_t n);
/* dist_nccl.cu: data-parallel runs (backend.h join, sum_procs) */
int cuda_join(backend_t *be, struct dist *d);
void cuda_sum_procs(backend_t *be, void *v, size_t n, int f64);

void cuda_bn_forward(backend_t *be, const bn_args_t *a);
void cuda_bn_backward(backend_t *be, const bn_args_t *a);
void cuda_ln_forward(backend_t *be, const ln_args_t *a);
void cuda_ln_backward(backend_t *be, const ln_args_t *a);
void cuda_ln_jvp_forward(backend_t *be, const ln_args_t *a);
void cuda_ln_jvp_backward(backend_t *be, const ln_args_t *a);
void cuda_dropout(backend_t *be, float *o1, const float *i1, float *o2, const float *i2, unsigned char *mask, int draw,
                  size_t n, uint64_t seed, uint32_t step, uint64_t base, float p);

/* conv.cu */
void cuda_im2col(backend_t *be, const conv_geom_t *g, float *col, const float *img, int nb);
void cuda_col2im(backend_t *be, const conv_geom_t *g, float *img, const float *col, const float *bias, int nb);
void cuda_shiftsum(backend_t *be, const conv_geom_t *g, int o_ch, float *y, const float *z, const float *bias,
                   int nb);
void cuda_shiftscatter(backend_t *be, const conv_geom_t *g, int o_ch, float *dz, const float *dy, int nb);
void cuda_to_cmajor(backend_t *be, float *dst, const float *src, int C, long S, int nb);
void cuda_from_cmajor(backend_t *be, float *dst, const float *src, const float *bias, int C, long S, int nb,
                      int accumulate);
void cuda_maxpool_forward(backend_t *be, const pool_args_t *a);
void cuda_maxpool_backward(backend_t *be, const pool_args_t *a);
void cuda_avgpool_forward(backend_t *be, const pool_args_t *a);
void cuda_avgpool_backward(backend_t *be, const pool_args_t *a);
void cuda_upsample_forward(backend_t *be, const pool_args_t *a);
void cuda_upsample_backward(backend_t *be, const pool_args_t *a);

/* inception.cu */
void cuda_resize_bilinear(backend_t *be, float *y, const float *x, int B, int C, int H, int W, int S);
void cuda_relu_keep_nan(backend_t *be, float *x, size_t n);
void cuda_copy_rows(backend_t *be, float *dst, long dst_ld, const float *src, long src_ld, long rows, long cols);
void cuda_plane_means(backend_t *be, float *out, const float *x, long planes, long hw);

/* train.cu, optim.cu */
void cuda_loss(backend_t *be, int loss, double smooth, int which, float *dl, double *out, const float *logit, int B,
               int B_mean);
void cuda_gather(backend_t *be, float *dst, const void *data, int data_u8, const int64_t *perm, int64_t pos, int B,
                size_t sz);
void cuda_gp_mix(backend_t *be, float *xhat, const float *real, const float *fake, int B, size_t sz, uint64_t seed,
                uint32_t step, uint64_t index0);
void cuda_gp_scale(backend_t *be, float *g, double *out, int B, int B_mean, size_t sz, double lambda);
void cuda_sumsq(backend_t *be, double *out, const float *x, size_t n);
void cuda_nonfinite(backend_t *be, double *out, const float *x, size_t n);
void cuda_train_stats(backend_t *be, double *st, int what, int64_t stepno);
void cuda_optim(backend_t *be, const opt_step_t *c, float *p, const float *g, float *s1, float *s2, float *s3,
               size_t n);
void cuda_ema(backend_t *be, float *avg, const float *p, float decay, size_t n);
void cuda_clip(backend_t *be, float *p, float c, size_t n);
void cuda_latents(backend_t *be, float *z, int rows, int zd, const float *zin, uint64_t seed, double trunc,
                 const int64_t *ia, const int64_t *ib, const double *t);

/* class.cu */
void cuda_gather_labels(backend_t *be, int64_t *dst, const int64_t *labels, const int64_t *perm, int64_t pos, int B);
void cuda_class_concat(backend_t *be, int kind, float *y, const float *x, const float *table, const int64_t *labels,
                       int B, int C, int E, long S);
void cuda_class_concat_backward(backend_t *be, float *dx, float *dtable, const float *dy, const int64_t *labels, int B,
                                int C, int E, long S, int K);
void cuda_class_affine(backend_t *be, float *y, const float *xhat, const float *w, const float *b,
                       const int64_t *labels, int B, int C, long S);
void cuda_class_affine_backward(backend_t *be, float *dxhat, float *dw, float *db, const float *dy, const float *xhat,
                                const float *w, const int64_t *labels, int B, int C, long S, int K);
void cuda_class_proj(backend_t *be, float *y, const float *h, const float *table, const int64_t *labels, int B, int F);
void cuda_class_proj_backward(backend_t *be, float *dh, float *dtable, const float *dy, const float *h,
                              const float *table, const int64_t *labels, int B, int F, int K);

#endif
