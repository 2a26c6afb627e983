/* diffaug.c: DiffAugment's policies chained from the backend's operations (diffaug.h). */
#include <string.h>

#include "lib/backend/augment_math.h"
#include "diffaug.h"

void diffaug_init(diffaug_t *a, backend_t *be, int policy, int B, shape3_t shape) {
    memset(a, 0, sizeof *a);
    a->policy = policy;
    a->shape = shape;
    a->prm = be->alloc(be, sizeof(float) * AUG_DRAWS * (size_t)B);
    a->mean = be->alloc(be, sizeof(float) * (size_t)B);
    if ((policy & AUG_COLOR) && (policy & (AUG_TRANSLATION | AUG_CUTOUT)))
        a->tmp = be->alloc(be, sizeof(float) * (size_t)B * (size_t)shape3_size(shape));
}

void diffaug_free(diffaug_t *a, backend_t *be) {
    float *bufs[] = {a->prm, a->mean, a->tmp};
    for (int i = 0; i < 3; i++)
        if (bufs[i]) be->free(be, bufs[i]);
    memset(a, 0, sizeof *a);
}

void diffaug_draw(diffaug_t *a, backend_t *be, uint64_t seed, uint32_t step, uint64_t index0, int b) {
    be->augment_draw(be, a->prm, b, a->shape.h, a->shape.w, seed, step, index0);
}

/* color: per-sample means of its input, then the pixel transform (shift: the affine map) */
static void color(diffaug_t *a, backend_t *be, float *y, const float *x, int b, int shift) {
    long hw = (long)a->shape.h * a->shape.w;
    be->plane_means(be, a->mean, x, b, a->shape.c * hw);
    be->augment_color(be, y, x, a->prm, a->mean, b, a->shape.c, hw, shift);
}

void diffaug_map(diffaug_t *a, backend_t *be, diffaug_map_t map, float *y, const float *x, int b) {
    int spatial = a->policy & (AUG_TRANSLATION | AUG_CUTOUT), col = a->policy & AUG_COLOR;
    const shape3_t s = a->shape;
    float *mid = col && spatial ? a->tmp : y; /* between the two stages */
    if (map == DIFFAUG_ADJOINT) { /* the spatial maps' adjoint first, then color's (its own) */
        if (spatial) {
            be->augment_spatial(be, mid, x, a->prm, spatial, 1, b, s.c, s.h, s.w);
            x = mid;
        }
        if (col) color(a, be, y, x, b, 0);
        return;
    }
    if (col) {
        color(a, be, mid, x, b, map == DIFFAUG_APPLY);
        x = mid;
    }
    if (spatial) be->augment_spatial(be, y, x, a->prm, spatial, 0, b, s.c, s.h, s.w);
}
