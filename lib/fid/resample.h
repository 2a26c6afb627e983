/* resample.h: clean-fid's resize: PIL's Image.resize(size, BICUBIC) of a float32 image in mode
 * 'F', one channel (plane) at a time, on the host.
 *
 * As Pillow's Resample.c computes it (versions 7 to 10): a separable convolution with Keys'
 * cubic (a = -0.5, support 2) stretched by the scale when shrinking, so it is anti-aliased. Per
 * axis, with scale = in / out and fs = max(scale, 1), output sample o is centred at
 * c = (o + 0.5) scale in input coordinates; its taps are the inputs i in [imin, imax) with
 * imin = max((int)(c - 2 fs + 0.5), 0) and imax = min((int)(c + 2 fs + 0.5), in), weighted by
 * cubic((i - c + 0.5) / fs) normalised to sum 1 (float64). The horizontal pass runs first (when
 * the width changes) into a float32 image, then the vertical pass (when the height changes);
 * each output value is a float64 sum of float32 inputs times float64 weights, rounded once to
 * float32. An axis whose size does not change is copied. */
#ifndef GT_RESAMPLE_H
#define GT_RESAMPLE_H

/* dst (oh, ow) = the resize of src (h, w), all sizes >= 1. tmp: ow * h floats of scratch. */
void resample_bicubic_aa(float *dst, int oh, int ow, const float *src, int h, int w, float *tmp);

#endif
