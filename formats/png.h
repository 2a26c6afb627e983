/* png.h: 8-bit PNG images through libpng (spec: formats/png.md). Functions are prefixed
 * png8_ because libpng owns png_.
 *
 * Read: every PNG colour type. Palette images are expanded to RGB, gray images of 1, 2 or 4
 * bits are scaled to 8 bits, 16-bit samples are scaled to 8 bits (v8 = round(v16 / 257)),
 * alpha channels (and tRNS transparency) are dropped: the colour values are taken as
 * stored, not composited. Gamma, colour profiles and other ancillary chunks are ignored.
 * The result has 1 channel (gray, gray+alpha) or 3 (RGB, RGBA, palette), or the count asked
 * for: gray becomes RGB by repeating it; RGB becomes gray by ITU-R BT.601 luma in integers,
 * (299 R + 587 G + 114 B + 500) / 1000.
 * Write: 8-bit gray or RGB, not interlaced.
 *
 * Images larger than PNG8_MAX_SIDE pixels on a side or PNG8_MAX_BYTES bytes decoded are
 * refused before their memory is reserved. */
#ifndef GT_PNG8_H
#define GT_PNG8_H

#include <stdint.h>
#include <stdio.h>

#define PNG8_MAX_SIDE 1000000                  /* libpng's own default limit */
#define PNG8_MAX_BYTES ((uint64_t)1 << 28)     /* decoded size (256 MiB: 9000 x 9000 RGB) */

typedef struct {
    uint32_t width, height;
    int channels;     /* 1 (gray) or 3 (RGB) */
    uint8_t *pixels;  /* (height, width, channels), row by row; free() it */
    int src_color;    /* what the file held: 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA */
    int src_depth;    /* bits per sample in the file: 1, 2, 4, 8 or 16 */
} png8_image_t;

/* Read the PNG at PATH (NULL or "-": stdin). want_channels: 0 keeps the image's own count
 * (1 or 3), 1 or 3 converts. Returns 0 or -1 with a message (not prefixed with the name). */
int png8_load(const char *path, png8_image_t *img, int want_channels);
/* The same from len bytes of memory. */
int png8_parse(const void *buf, size_t len, png8_image_t *img, int want_channels);
void png8_free(png8_image_t *img);

/* Name of a PNG colour type as stored ("gray", "RGB", "palette", "gray+alpha", "RGBA"). */
const char *png8_color_name(int color_type);

/* Write pixels ((height, width, channels), channels 1 or 3) as an 8-bit PNG to f, with zlib
 * compression level `level` (0..9; -1 for zlib's default). Returns 0, or -1 with a message
 * ("write failed: No space left on device", ...). The caller flushes and closes f. */
int png8_write(FILE *f, const uint8_t *pixels, uint32_t width, uint32_t height, int channels, int level);

#endif
