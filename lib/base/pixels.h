/* pixels.h: the one mapping between 8-bit pixel values and floats, shared by idx2tensor,
 * png2tensor (bytes to floats) and tensor2png (floats to bytes).
 *
 * A range [lo, hi] (default [-1, 1]) maps byte v to lo + (hi - lo) * v / 255, computed in
 * double and rounded once to float: for [-1, 1] that is bit for bit (v - 127.5f) / 127.5f,
 * the table lib/gan/trainer.c uses for uint8 data, and for [0, 1] it is v / 255.0f.
 * The way back rounds to the nearest byte (halves up) and clamps to 0..255; NaN gives 0. */
#ifndef GT_PIXELS_H
#define GT_PIXELS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    double lo, hi;
} pixel_range_t;

#define PIXEL_RANGE_DEFAULT ((pixel_range_t){-1.0, 1.0})

/* Parse "LO,HI" (two finite numbers, LO < HI) into *r. Returns 0, or -1 with a message. */
int pixel_range_parse(const char *s, pixel_range_t *r);

/* lut[v] = the float for byte v, v = 0..255. */
void pixel_lut(float lut[256], pixel_range_t r);

/* The byte for x: round((x - lo) * 255 / (hi - lo)), halves up, clamped to 0..255, NaN -> 0.
 * scale is 255 / (hi - lo) (pixel_scale). */
static inline uint8_t pixel_to_u8(double x, double lo, double scale) {
    double t = (x - lo) * scale + 0.5;
    if (!(t >= 1.0)) return 0; /* also NaN */
    if (t >= 255.0) return 255;
    return (uint8_t)t; /* truncation of t + 0.5: rounding, halves up */
}
static inline double pixel_scale(pixel_range_t r) { return 255.0 / (r.hi - r.lo); }

/* Convert n floats to bytes under range r. */
void pixel_floats_to_u8(uint8_t *dst, const float *src, size_t n, pixel_range_t r);

#endif
