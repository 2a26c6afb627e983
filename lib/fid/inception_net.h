/* inception_net.h: the Inception v3 feature network of pytorch-fid (the "FID Inception"), forward only,
 * batched: images -> the 2048 pool3 features FID is computed from.
 *
 * The network is pytorch-fid's InceptionV3 with output block 3: torchvision's Inception3 stem
 * and Mixed_6a / Mixed_7a, with pytorch-fid's FIDInceptionA (Mixed_5b-d), FIDInceptionC
 * (Mixed_6b-e), FIDInceptionE_1 (Mixed_7b) and FIDInceptionE_2 (Mixed_7c) blocks: their
 * average-pool branches use count_include_pad=False, and Mixed_7c's pool branch is a 3x3 max
 * pool. Every BasicConv2d is a convolution without bias, BatchNorm2d(eps=0.001) in eval mode and
 * a ReLU; the BatchNorm is folded into the convolution's weights and bias at load time (in
 * float64). Input: images resized to 299 x 299 bilinearly (align_corners=False) and in [-1, 1]
 * (pytorch-fid scales its [0, 1] input by 2x - 1 after resizing; resizing is linear, so the two
 * orders agree up to rounding); gray images repeat their channel three times. Output: the
 * global average of Mixed_7c's 2048 x 8 x 8 activations.
 *
 * Weights: a safetensors file with pytorch-fid's state_dict names (torchvision's), e.g.
 * Conv2d_1a_3x3.conv.weight (32, 3, 3, 3), Conv2d_1a_3x3.bn.{weight,bias,running_mean,running_var}
 * (32), ... as tools/fid-weights.py writes from pt_inception-2015-12-05-6726825d.pth; other
 * tensors (fc.*, num_batches_tracked) are ignored here (fc.weight gives the Inception Score its
 * logits: iscore.h). Every tensor the network needs must be there,
 * float32, of exactly its shape.
 *
 * Memory, allocated once by inception_load for batches up to max_batch (none per batch): two
 * trunk buffers of 64 x 147 x 147 floats per image, two branch buffers of 288 x 35 x 35, the
 * max-pool indices and the convolutions' workspace: about 14 MB per image of the batch. */
#ifndef GT_INCEPTION_H
#define GT_INCEPTION_H

#include "lib/backend/backend.h"

#define INCEPTION_DIM 2048 /* features per image (pool3) */
#define INCEPTION_SIZE 299 /* images are resized to this height and width */

typedef struct inception inception_t;

/* Load the weights from PATH (safetensors) and allocate for batches of up to max_batch images
 * on backend be. Returns 0 and *out (free with inception_free), or -1 with a message naming the
 * file and the tensor (missing, wrong dtype or shape, non-finite). */
int inception_load(inception_t **out, const char *path, backend_t *be, int max_batch);

/* feats (B, 2048) = the features of images x (B, C, H, W), C = 1 or 3, values in [-1, 1],
 * 1 <= B <= max_batch, H, W >= 1; x and feats are memory of the backend's device (the network
 * runs there: backend.h). Returns 0, or -1 with a message for bad arguments. */
int inception_forward(inception_t *inc, float *feats, const float *x, int B, int C, int H, int W);

void inception_free(inception_t *inc);

#endif
