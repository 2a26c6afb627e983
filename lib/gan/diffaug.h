/* diffaug.h: DiffAugment (Zhao et al. 2020) as the trainer applies it before D: the policies of
 * a model's settings (augment_math.h: color, then translation, then cutout) chained from the
 * backend's augment operations, with the three maps training needs for one set of draws:
 * the augmentation itself, its linear part (the tangent map of the gradient penalty's
 * forward-mode pass), and the adjoint of that (the backward pass into the images).
 *
 * Draws: diffaug_draw keys a pass's per-sample numbers by Philox (seed, PHILOX_STREAM_AUGMENT,
 * step, global sample index * AUG_DRAWS + draw), so a pass draws the same numbers in any
 * process of a data-parallel run and in a resumed run. */
#ifndef GT_DIFFAUG_H
#define GT_DIFFAUG_H

#include <stdint.h>

#include "lib/backend/backend.h"
#include "lib/nn/layer.h" /* shape3_t */

typedef enum { DIFFAUG_APPLY, DIFFAUG_TANGENT, DIFFAUG_ADJOINT } diffaug_map_t;

typedef struct {
    int policy;    /* AUG_* bits (not 0) */
    shape3_t shape;
    float *prm;    /* (B, AUG_DRAWS) the current draws */
    float *mean;   /* (B) per-sample means (color) */
    float *tmp;    /* (B, C*H*W) between color and the spatial policies (both on); else NULL */
} diffaug_t;

/* Allocate for batches of up to B images of shape on be (all a run needs: the maps allocate
 * nothing). policy must not be 0. */
void diffaug_init(diffaug_t *a, backend_t *be, int policy, int B, shape3_t shape);
void diffaug_free(diffaug_t *a, backend_t *be);

/* Draw the parameters of b samples, global indices index0 .. index0 + b - 1, for a pass keyed by
 * step (the trainer's step * 16 + pass). */
void diffaug_draw(diffaug_t *a, backend_t *be, uint64_t seed, uint32_t step, uint64_t index0, int b);

/* y (b, C, H, W) = the map of x (b, C, H, W) for the current draws: DIFFAUG_APPLY the
 * augmentation, DIFFAUG_TANGENT its linear part, DIFFAUG_ADJOINT that part's adjoint (the
 * gradient w.r.t. the input of <y, x'> for a cotangent x of the output). y must not be x. */
void diffaug_map(diffaug_t *a, backend_t *be, diffaug_map_t map, float *y, const float *x, int b);

#endif
