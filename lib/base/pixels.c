/* pixels.c: byte <-> float pixel mapping (see pixels.h). */
#include "pixels.h"
#include "common.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>

int pixel_range_parse(const char *s, pixel_range_t *r) {
    char *end;
    errno = 0;
    double lo = strtod(s, &end);
    if (end == s || *end != ',' || errno) return gt_err("'%s' is not LO,HI (e.g. 0,1)", s);
    const char *p = end + 1;
    double hi = strtod(p, &end);
    if (end == p || *end || errno) return gt_err("'%s' is not LO,HI (e.g. 0,1)", s);
    if (!isfinite(lo) || !isfinite(hi) || !(lo < hi)) return gt_err("'%s': LO must be below HI, both finite", s);
    if (!isfinite(255.0 / (hi - lo))) return gt_err("'%s': the range is too narrow", s);
    r->lo = lo;
    r->hi = hi;
    return 0;
}

void pixel_lut(float lut[256], pixel_range_t r) {
    for (int v = 0; v < 256; v++) lut[v] = (float)(r.lo + (r.hi - r.lo) * ((double)v / 255.0));
}

void pixel_floats_to_u8(uint8_t *dst, const float *src, size_t n, pixel_range_t r) {
    double scale = pixel_scale(r);
    for (size_t i = 0; i < n; i++) dst[i] = pixel_to_u8(src[i], r.lo, scale);
}
