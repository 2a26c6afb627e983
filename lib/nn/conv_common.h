/* conv_common.h: what the two convolution kinds, conv (layer_conv.c) and convT (layer_convT.c),
 * share besides their passes (which layer.c's layer_affine_* make from each kind's apply and
 * grad): the kernel's size check, the sizing of the workspace, and the chunks a batch is
 * processed in. Internal to lib/nn.
 *
 * Both process a batch in chunks of nb samples, nb a function of the shapes only (at most
 * CONV_CHUNK_FLOATS floats of buffers per chunk, at least one sample), and each chunk uses two
 * workspace buffers, each starting on a 64-byte boundary. */
#ifndef GT_CONV_COMMON_H
#define GT_CONV_COMMON_H

#include <limits.h>
#include <stddef.h>

#include "lib/base/common.h"
#include "lib/backend/conv_math.h"
#include "layer.h"

/* n floats rounded up to a multiple of 16 (64 bytes), so that the buffer after them is aligned */
static inline size_t conv_align16(size_t n) { return (n + 15) & ~(size_t)15; }

/* the kernel's taps, kh * kw */
static inline long conv_kk(const layer_t *l) { return (long)l->kh * l->kw; }

/* Samples per chunk of a batch of B, for a layer whose chunk buffers take per_sample floats a
 * sample: a function of the shapes (and B) only, from 1 to B. */
static inline int conv_chunk(size_t per_sample, int B) {
    long nb = CONV_CHUNK_FLOATS / (long)per_sample;
    if (nb < 1) nb = 1;
    return nb < B ? (int)nb : B;
}

/* 0, or -1 with a message when l's kernel with its input channels (l->in.c) and output channels
 * (l->channels) has too many taps or weights for the int sizes of the GEMMs. */
static inline int conv_check_kernel(const layer_t *l) {
    long kk = conv_kk(l), O = l->channels;
    if (kk > INT_MAX / 2 || (long)l->in.c * kk > INT_MAX / 2 || O * kk > INT_MAX / 2 ||
        (double)O * (double)l->in.c * (double)kk > 1e9)
        return gt_err("kernel %dx%d with %d input and %d output channels is too large", l->kh, l->kw, l->in.c,
                      l->channels);
    return 0;
}

/* Set l->workspace (per sample: the chunk's two buffers of per_sample floats in all, plus 16
 * floats of alignment slack each) and l->workspace_batch (the chunk size); l->workspace_fixed
 * is the caller's. 0, or -1 with a message when the input is too large for int sizes. */
static inline int conv_workspace(layer_t *l, size_t per_sample) {
    if ((double)per_sample * 2 > (double)INT_MAX)
        return gt_err("input %dx%dx%d is too large", l->in.c, l->in.h, l->in.w);
    l->workspace = per_sample + 32;
    l->workspace_batch = conv_chunk(per_sample, INT_MAX);
    return 0;
}

#endif
