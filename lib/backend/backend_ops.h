/* backend_ops.h: the list of the backend's compute operations, each declared once, with its
 * contract (an X-macro list). Every operation here returns void and takes the backend first;
 * backend.h's conventions apply to all of them.
 *
 * An entry is BACKEND_OP(name, (parameters)). The file has no include guard: whoever includes
 * it defines BACKEND_OP first, and #undef's it after. It is expanded into
 *   - the slots of struct backend, void (*name) parameters          (backend.h)
 *   - the CPU backend's prototypes, void cpu_name parameters        (lib/cpu/cpu_ops.h)
 *   - the CUDA backend's prototypes, void cuda_name parameters      (kernels/cuda_ops.h)
 *   - both backend structs, .name = cpu_name / be->name = cuda_name (lib/cpu/backend_cpu.c,
 *                                                                     kernels/backend_cuda.cu)
 * so a new operation is one entry here plus its two implementations (cpu_name in lib/cpu/,
 * cuda_name in kernels/); a backend that lacks one does not link. Memory, the data-parallel
 * slots and the GEMM, whose signatures or optional semantics differ, are written out in
 * backend.h. Valid C11 and C++ (kernels/ includes it). */
#ifndef BACKEND_OP
#error "backend_ops.h: define BACKEND_OP(name, params) before including it"
#endif

/* ---- fills -------------------------------------------------------------------------------- */
BACKEND_OP(fill, (backend_t *be, float *dst, float value, size_t n))
/* dst (n): Philox values (fill_kind_t, backend.h) at indices index0 .. index0 + n - 1 */
BACKEND_OP(philox_fill, (backend_t *be, float *dst, size_t n, fill_kind_t kind, uint64_t seed, uint32_t stream,
                         uint32_t step, uint64_t index0, float scale, float shift))

/* y (n) = x + sigma * z, z the Philox normals of (seed, stream, step) at indices index0 ..
 * index0 + n - 1 (the value philox_fill's FILL_NORMAL with scale sigma writes, added to x in
 * float); y may be x; x NULL counts as zeros (y is then the noise alone). The noise layer
 * (PHILOX_STREAM_NOISE) and instance noise on D's inputs (PHILOX_STREAM_INSTANCE_NOISE) */
BACKEND_OP(add_noise, (backend_t *be, float *y, const float *x, size_t n, uint64_t seed, uint32_t stream,
                       uint32_t step, uint64_t index0, float sigma))

/* ---- layers ------------------------------------------------------------------------------- */
/* y (outer, C, inner) += b (C) */
BACKEND_OP(bias_add, (backend_t *be, float *y, const float *b, long outer, long C, long inner))
/* db (C) += sum over outer and inner of dy (outer, C, inner), accumulated in double */
BACKEND_OP(bias_grad, (backend_t *be, float *db, const float *dy, long outer, long C, long inner))

/* Activations over n elements (act_math.h). backward reads x (relu, lrelu) or y (tanh,
 * sigmoid). jvp_forward: y = f(x), ty = f'(x) tx. jvp_backward: dx = f' dy + f'' tx dty,
 * dtx = f' dty; dy or dty NULL mean zeros, dx or dtx NULL are not written. */
BACKEND_OP(act_forward, (backend_t *be, act_kind_t k, float slope, float *y, const float *x, size_t n))
BACKEND_OP(act_backward, (backend_t *be, act_kind_t k, float slope, float *dx, const float *dy, const float *x,
                          const float *y, size_t n))
BACKEND_OP(act_jvp_forward, (backend_t *be, act_kind_t k, float slope, float *y, float *ty, const float *x,
                             const float *tx, size_t n))
BACKEND_OP(act_jvp_backward, (backend_t *be, act_kind_t k, float slope, float *dx, float *dtx, const float *dy,
                              const float *dty, const float *x, const float *tx, const float *y, size_t n))
/* bias_add then act_forward in one pass (net.c fuses a linear layer and the activation after it),
 * with their bits: y (outer, C, inner) += b (C), then z = f(y) over the same elements. */
BACKEND_OP(bias_act, (backend_t *be, act_kind_t k, float slope, float *y, float *z, const float *b, long outer, long C,
                      long inner))

/* BatchNorm (bn_args_t, backend.h): forward writes y, mean, inv_std and (training) updates
 * running; backward accumulates dw, db (when w) and writes dx (when not NULL). */
BACKEND_OP(bn_forward, (backend_t *be, const bn_args_t *a))
BACKEND_OP(bn_backward, (backend_t *be, const bn_args_t *a))

/* LayerNorm, or with ln_args_t.C > 0 instance normalization (ln_args_t, backend.h): forward
 * (y, saved); backward (dx, dw, db); jvp_forward (y, ty, saved); jvp_backward (dx, dtx, dw, db;
 * uses ws). Parameter gradients accumulate. */
BACKEND_OP(ln_forward, (backend_t *be, const ln_args_t *a))
BACKEND_OP(ln_backward, (backend_t *be, const ln_args_t *a))
BACKEND_OP(ln_jvp_forward, (backend_t *be, const ln_args_t *a))
BACKEND_OP(ln_jvp_backward, (backend_t *be, const ln_args_t *a))

/* Inverted dropout over n elements whose global flat indices start at base, with a keep mask
 * of one byte per element. draw != 0 (forward): mask[k] = 1 iff philox_uniform(seed,
 * PHILOX_STREAM_DROPOUT, step, base + k) >= p, else 0. draw == 0 (backward): the mask bytes a
 * forward wrote are read (seed, step, base unused). Both: o1 = mask * i1 / (1 - p),
 * o2 = mask * i2 / (1 - p) (norm_math.h). o1 or o2 may be NULL; an input i1 or i2 that is
 * NULL counts as zeros. */
BACKEND_OP(dropout, (backend_t *be, float *o1, const float *i1, float *o2, const float *i2, unsigned char *mask,
                     int draw, size_t n, uint64_t seed, uint32_t step, uint64_t base, float p))
/* An activation whose derivative reads x (k ACT_RELU or ACT_LRELU) and inverted dropout in one
 * pass, the same bits as act_forward then dropout (act_backward after dropout's backward):
 * lib/nn/net.c fuses the two layers. backward == 0: mask drawn as dropout's (draw != 0) and
 * out = dropout(f(x)); in unused. backward != 0: the forward's mask read and out = f'(x) (mask
 * in / (1 - p)): in is the gradient w.r.t. the dropout's output, out the one w.r.t. x, and out
 * may be in (each element reads its own). */
BACKEND_OP(act_dropout, (backend_t *be, act_kind_t k, float slope, int backward, float *out, const float *in,
                         const float *x, unsigned char *mask, size_t n, uint64_t seed, uint32_t step, uint64_t base,
                         float p))


/* ---- convolutions (lib/nn/layer_conv.c, layer_convT.c; conv_math.h has the geometry) ------- *
 * Matrices are row-major with one column per (sample, position) of a chunk of nb samples:
 * column b*S + s, so that a whole chunk is one GEMM operand. Tensors are batch-major
 * (nb, C, S) as everywhere else. */
/* col (c*kh*kw, nb*gh*gw) = im2col of img (nb, c, h, w): col[(ch, ty, tx), b*G + oy*gw + ox]
 * = img[b, ch, oy*sh - ph + ty, ox*sw - pw + tx], zero outside the image. */
BACKEND_OP(im2col, (backend_t *be, const conv_geom_t *g, float *col, const float *img, int nb))
/* img (nb, c, h, w) = bias[ch] (0 when bias is NULL) + the adjoint of im2col applied to
 * col (c*kh*kw, nb*gh*gw): every column entry added to the image position it was read from.
 * Overwrites img. */
BACKEND_OP(col2im, (backend_t *be, const conv_geom_t *g, float *img, const float *col, const float *bias, int nb))
/* C (m x n) = alpha op(A) B + beta C (backend.h's gemm: blocks of C that depend only on the
 * shape) with B the column matrix of img (nb, c, h, w), im2col above, read from the image
 * without necessarily being made: trans_b = 0: B = col, k = c*kh*kw, n = nb*gh*gw; trans_b = 1:
 * B = col^T, k = nb*gh*gw, n = c*kh*kw. ws: room for col (c*kh*kw x nb*gh*gw floats), where a
 * backend may make it and multiply it. ws_col (may be NULL): *ws_col != 0 on entry says ws
 * already holds this col (an earlier call on the same image left it); on return *ws_col says
 * whether ws holds it. The CPU backend packs our sgemm's panels straight from the image (the
 * same bits as im2col then gemm); with OpenBLAS, and on CUDA, it is im2col into ws then gemm. */
BACKEND_OP(gemm_im2col, (backend_t *be, const conv_geom_t *g, const float *img, int nb, float *ws, int *ws_col,
                         int trans_a, int trans_b, int m, float alpha, const float *a, int lda, float beta, float *c,
                         int ldc))
/* Its scatter side: img (nb, c, h, w) = col2im of op(A) B, plus bias[ch] (none when NULL),
 * with op(A) (c*kh*kw x k) and B (k x nb*gh*gw, row stride ldb): a transposed convolution's
 * forward, a convolution's input gradient. ws: room for col (c*kh*kw x nb*gh*gw floats), wa:
 * room for c*kh*kw*k floats (op(A) regrouped), where a backend may make them; wa_ready (may be
 * NULL), as ws_col for ws: *wa_ready != 0 on entry says wa already holds this op(A) regrouped
 * (an earlier call of the same pass, on another chunk of the batch, left it), and on return
 * says whether wa holds it. On CUDA, and on the CPU with OpenBLAS, it is the GEMM into ws then
 * col2im (those bits); the CPU with our sgemm computes each output phase (y and x modulo the
 * stride) as one GEMM whose B is packed from b (lib/cpu/README.md, "The scatter side"): each
 * pixel one dot product over (channel, tap), not col2im's tap by tap sums, so other bits (the
 * same on any thread count). */
BACKEND_OP(gemm_col2im, (backend_t *be, const conv_geom_t *g, float *img, const float *bias, int nb, float *ws,
                         float *wa, int *wa_ready, int trans_a, int k, const float *a, int lda, const float *b,
                         int ldb))
/* The few-output-channel convolution (lib/nn/layer_conv.c, "kn2row"), with z one row per
 * (output channel, tap) and one column per image position (nb*h*w columns):
 *   shiftsum:     y[b, o, oy, ox] = bias[o] + sum over taps (ty, tx) of
 *                 z[(o, ty, tx), b*h*w + (oy*sh - ph + ty)*w + ox*sw - pw + tx]
 *                 (taps that fall outside the image add nothing); y is (nb, o_ch, gh, gw).
 *   shiftscatter: its adjoint without the bias: dz[(o, ty, tx), b*h*w + pos] = dy[b, o, oy, ox]
 *                 where pos is the image position grid position (oy, ox) reads at that
 *                 tap, zero where no grid position reads it (needs stride 1: one at most). */
BACKEND_OP(shiftsum, (backend_t *be, const conv_geom_t *g, int o_ch, float *y, const float *z, const float *bias,
                      int nb))
BACKEND_OP(shiftscatter, (backend_t *be, const conv_geom_t *g, int o_ch, float *dz, const float *dy, int nb))
/* dst (C, nb*S) from src (nb, C, S): channel-major for a batch-wide GEMM. */
BACKEND_OP(to_cmajor, (backend_t *be, float *dst, const float *src, int C, long S, int nb))
/* dst (nb, C, S) = src (C, nb*S) + bias[c] (no bias when NULL); dst += src when accumulate. */
BACKEND_OP(from_cmajor, (backend_t *be, float *dst, const float *src, const float *bias, int C, long S, int nb,
                         int accumulate))

/* ---- pooling (pool_args_t, backend.h) --------------------------------------------------------- */
BACKEND_OP(maxpool_forward, (backend_t *be, const pool_args_t *a))
BACKEND_OP(maxpool_backward, (backend_t *be, const pool_args_t *a))
BACKEND_OP(avgpool_forward, (backend_t *be, const pool_args_t *a))
BACKEND_OP(avgpool_backward, (backend_t *be, const pool_args_t *a))
BACKEND_OP(upsample_forward, (backend_t *be, const pool_args_t *a))
BACKEND_OP(upsample_backward, (backend_t *be, const pool_args_t *a))

/* ---- the Inception feature network (lib/fid/inception_net.c; inception_math.h) ------------- */
/* y (B, 3, S, S) = x (B, C, H, W) resized bilinearly (align_corners=False); C == 1 repeats
 * the channel */
BACKEND_OP(resize_bilinear, (backend_t *be, float *y, const float *x, int B, int C, int H, int W, int S))
/* x = max(x, 0) in place over n, NaN kept (inception_relu) */
BACKEND_OP(relu_keep_nan, (backend_t *be, float *x, size_t n))
/* rows of cols floats: dst[r dst_ld + k] = src[r src_ld + k] (a channel concatenation) */
BACKEND_OP(copy_rows, (backend_t *be, float *dst, long dst_ld, const float *src, long src_ld, long rows, long cols))
/* out[p] = the mean of plane p of x (planes, hw), summed in double */
BACKEND_OP(plane_means, (backend_t *be, float *out, const float *x, long planes, long hw))

/* ---- training step (lib/gan/trainer.c; the math is in loss_math.h and train_math.h) -------- */
/* Loss of B logits (loss_math.h: loss kind, label smoothing, which = LOSS_ON_*) as part of
 * a mean over B_mean >= B samples (B_mean = B in one process; the global batch when the
 * B are one process's slice of it, lib/base/dist.h): writes dl (B) = dloss/dlogit of that mean
 * (d / B_mean), out[0] = the sum of the B losses / B_mean and out[1] = the sum of D's output
 * as logged (sigmoid of the logits for bce/ns, else the logits) / B_mean. */
BACKEND_OP(loss, (backend_t *be, int loss, double smooth, int which, float *dl, double *out, const float *logit,
                  int B, int B_mean))
/* dst (B, sz) = images perm[pos], ..., perm[pos + B - 1] of data (N, sz): float32, or
 * uint8 mapped by train_u8_to_unit. perm is a device array of N int64. */
/* D's bce/ns loss of B logits against per-sample targets (loss_math.h loss_bce_target): the
 * target of logit i is loss_flip_target(target, other, flip, seed, step, index0 + i); dl and out
 * as loss's (out[1]: the mean sigmoid) */
BACKEND_OP(loss_targets, (backend_t *be, double target, double other, double flip, uint64_t seed, uint32_t step,
                          uint64_t index0, float *dl, double *out, const float *logit, int B, int B_mean))
BACKEND_OP(gather, (backend_t *be, float *dst, const void *data, int data_u8, const int64_t *perm, int64_t pos,
                    int B, size_t sz))
/* Gradient penalty: xhat (B, sz) = e_i real + (1 - e_i) fake with e_i = philox_uniform(
 * seed, PHILOX_STREAM_GP, step, index0 + i); */
BACKEND_OP(gp_mix, (backend_t *be, float *xhat, const float *real, const float *fake, int B, size_t sz,
                    uint64_t seed, uint32_t step, uint64_t index0))
/* given g (B, sz) = grad_x D(xhat): out[0] = lambda sum_i (|g_i| - 1)^2 / B_mean, and g_i is
 * replaced by its cotangent v_i = 2 lambda / B_mean (|g_i| - 1) / |g_i| g_i (0 when g_i = 0);
 * B_mean as for loss: B in one process */
BACKEND_OP(gp_scale, (backend_t *be, float *g, double *out, int B, int B_mean, size_t sz, double lambda))
/* R1/R2 penalty: given g (B, sz) = grad_x D(x): out[0] = w/2 sum_i |g_i|^2 / B_mean, and g_i is
 * replaced by its cotangent w / B_mean g_i (train_math.h r1_cotangent); B_mean as for loss */
BACKEND_OP(r1_scale, (backend_t *be, float *g, double *out, int B, int B_mean, size_t sz, double w))
/* out[0] = sum of x_i^2 over n, in double */
BACKEND_OP(sumsq, (backend_t *be, double *out, const float *x, size_t n))
/* out[0] = 1 when any of x (n) is NaN or infinite (left as it is otherwise) */
BACKEND_OP(nonfinite, (backend_t *be, double *out, const float *x, size_t n))
/* The figures of a vector from its parts' (opt_step_t.fig.parts, k parts): sumsq[0] = 0 +
 * parts[0] + parts[2] + ... + parts[2k - 2], added in part order (the CPU's sumsq bits when the
 * parts are its parts), and bad[0] = 1 when some parts[2i + 1] != 0 (left as it is otherwise);
 * either may be NULL */
BACKEND_OP(sum_parts, (backend_t *be, double *sumsq, double *bad, const double *parts, long k))
/* The step's bookkeeping on the statistics slots st (train_math.h: train_stats_apply). */
BACKEND_OP(train_stats, (backend_t *be, double *st, int what, int64_t stepno))

/* DiffAugment (augment_math.h; lib/gan/diffaug.c chains these). prm is (b, AUG_DRAWS).
 * augment_draw: prm[i] = augment_param(seed, step, index0 + i, k, H, W) for k < AUG_DRAWS.
 * augment_color: y (b, C, HW) = the color transform of x (b, C, HW) with parameters prm and
 * per-sample means mean (b) of x (plane_means); shift == 0: its linear part (which is also its
 * adjoint). y may be x.
 * augment_spatial: y (b, C, H, W) = translation and/or cutout (policy, AUG_* bits) of x, or with
 * adjoint != 0 the adjoint of that map; y must not overlap x. */
BACKEND_OP(augment_draw, (backend_t *be, float *prm, int b, int H, int W, uint64_t seed, uint32_t step,
                          uint64_t index0))
BACKEND_OP(augment_color, (backend_t *be, float *y, const float *x, const float *prm, const float *mean, int b, int C,
                           long HW, int shift))
BACKEND_OP(augment_spatial, (backend_t *be, float *y, const float *x, const float *prm, int policy, int adjoint, int b,
                             int C, int H, int W))

/* ---- optimizers and friends (opt_math.h) -------------------------------------------------- */
/* One step of the optimizer over n parameters p with gradients g and state s1, s2, s3
 * (those the kind uses; others NULL); g is set to 0 as it is read when c->zero_g, else left alone. */
BACKEND_OP(optim, (backend_t *be, const opt_step_t *c, float *p, float *g, float *s1, float *s2, float *s3,
                   size_t n))
/* avg = decay avg + (1 - decay) p over n */
BACKEND_OP(ema, (backend_t *be, float *avg, const float *p, float decay, size_t n))
/* p = clamp(p, -c, c) over n */
BACKEND_OP(clip, (backend_t *be, float *p, float c, size_t n))

/* ---- spectral normalization (lib/nn/layer_sn.c; sn_math.h has W_mat's indexing) ------------ *
 * w is a weight of s's shape seen as the matrix W_mat (rows x cols, sn_math.h). Every sum is in
 * double, each output's terms added in an order fixed by the sizes. */
/* y = W_mat x: y (rows), x (cols); transpose: y = W_mat^T x, y (cols), x (rows) */
BACKEND_OP(sn_matvec, (backend_t *be, const sn_shape_t *s, float *y, const float *w, const float *x, int transpose))
/* y (n) = x / max(||x||, eps) (torch's F.normalize); y may be x */
BACKEND_OP(sn_normalize, (backend_t *be, float *y, const float *x, size_t n, double eps))
/* sigma[0] = u . t (rows terms: u (rows), t (rows) = W_mat v), then w = w_orig / sigma over
 * the weight's elements (sn_weight_value) */
BACKEND_OP(sn_weight, (backend_t *be, const sn_shape_t *s, float *w, double *sigma, const float *w_orig,
                       const float *u, const float *t))
/* dot[0] = <dw, w> over the weight's elements, then dw_orig += (dw - dot[0] u v^T) / sigma[0]
 * (sn_grad_value; u (rows), v (cols)): the gradient through W = W_orig / sigma with u, v fixed */
BACKEND_OP(sn_grad, (backend_t *be, const sn_shape_t *s, float *dw_orig, double *dot, const float *dw,
                     const float *w, const float *u, const float *v, const double *sigma))

/* ---- weight normalization (lib/nn/layer_wn.c; sn_math.h wn_*) ----------------------------- *
 * v and w are (rows, cols) row-major, a row per slice of the weight's dimension 0; norm, g and
 * dg have rows entries. Each row's sum is in double in index order (CPU) or a reduce.h order. */
/* norm[r] = ||v_r|| (the square root of the double sum of squares, rounded to float) */
BACKEND_OP(wn_norms, (backend_t *be, float *norm, const float *v, long rows, long cols))
/* w[r, c] = v[r, c] * (g[r] / norm[r]) (wn_weight_value) */
BACKEND_OP(wn_weight, (backend_t *be, float *w, const float *g, const float *v, const float *norm, long rows,
                       long cols))
/* with s_r = <dw_r, v_r> in double: dg[r] += s_r / norm[r], dv[r, c] += wn_grad_v (the gradient
 * through W = v g / ||v|| of dL/dW = dw) */
BACKEND_OP(wn_grad, (backend_t *be, float *dg, float *dv, const float *dw, const float *g, const float *v,
                     const float *norm, long rows, long cols))

/* ---- sampling (lib/gan/sampler.c; train_math.h: sample_latent) ------------------------------ */
/* z (rows, zd): row i mixes base latents ia[i] and ib[i] (ib[i] < 0: ia[i] alone) with
 * weight t[i]; a base latent j is row j of zin (zin != NULL) or Philox draw number j
 * (seed, with components beyond trunc > 0 redrawn). ia, ib, t are device arrays. */
BACKEND_OP(latents, (backend_t *be, float *z, int rows, int zd, const float *zin, uint64_t seed, double trunc,
                     const int64_t *ia, const int64_t *ib, const double *t))

/* ---- class-conditional layers (lib/nn/layer_class.c; the math is lib/backend/class_math.h) --- *
 * labels is a device array of B int64 class indices in [0, K), checked by the caller
 * (gan-step, gan-sample) before upload. Parameter gradients accumulate (+=); the sum for
 * class k runs over the samples of class k in batch order, then positions, in double. */
/* dst (B) = labels[perm[pos + i]] of labels (N): the batch's classes, gathered like images */
BACKEND_OP(gather_labels, (backend_t *be, int64_t *dst, const int64_t *labels, const int64_t *perm, int64_t pos,
                           int B))
/* y (B, C + E, S): channels 0..C-1 are x (B, C, S); channel C + e, at every position, is
 * (kind, class_math.h CLASS_CAT_*) table[label_b * E + e] (a learned class embedding),
 * 1 or 0 for e == label_b or not (one-hot), or 0 (the tangent of either). */
BACKEND_OP(class_concat, (backend_t *be, int kind, float *y, const float *x, const float *table,
                          const int64_t *labels, int B, int C, int E, long S))
/* dx (B, C, S) = the first C channels of dy (B, C + E, S) (dx may be NULL); dtable (K, E)
 * += the sum over the samples of class k and the positions of dy's channel C + e
 * (dtable may be NULL). */
BACKEND_OP(class_concat_backward, (backend_t *be, float *dx, float *dtable, const float *dy, const int64_t *labels,
                                   int B, int C, int E, long S, int K))
/* Conditional BatchNorm's per-class affine: y (B, C, S) = xhat w[label_b, c] + b[label_b, c]
 * with w, b (K, C). */
BACKEND_OP(class_affine, (backend_t *be, float *y, const float *xhat, const float *w, const float *b,
                          const int64_t *labels, int B, int C, long S))
/* dxhat (B, C, S) = dy w[label_b, c] (dxhat may be NULL); dw[k, c] += sum of dy xhat and
 * db[k, c] += sum of dy over the samples of class k and the positions. */
BACKEND_OP(class_affine_backward, (backend_t *be, float *dxhat, float *dw, float *db, const float *dy,
                                   const float *xhat, const float *w, const int64_t *labels, int B, int C, long S,
                                   int K))
/* The projection discriminator's term: y (B) += sum_f table[label_b, f] h[b, f], table (K, F),
 * h (B, F), the sum in double. */
BACKEND_OP(class_proj, (backend_t *be, float *y, const float *h, const float *table, const int64_t *labels, int B,
                        int F))
/* dh (B, F) += dy_b table[label_b, f] (dh may be NULL); dtable (K, F) += the sum over the
 * samples b of class k of dy_b h[b, f] (dtable may be NULL). */
BACKEND_OP(class_proj_backward, (backend_t *be, float *dh, float *dtable, const float *dy, const float *h,
                                 const float *table, const int64_t *labels, int B, int F, int K))
