/* fuzz_png.c: libFuzzer target for the PNG reader (png8_parse) and writer. Any input must give
 * either an image of 1 or 3 channels within the limits, or -1 with a message; never a crash, a
 * leak or undefined behaviour. A valid image is written back with png8_write and must read
 * back identical; the conversions to 1 and 3 channels must agree with it. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/png.h"
#include "lib/base/common.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    png8_image_t img;
    if (png8_parse(data, size, &img, 0) != 0) {
        if (gt_errmsg()[0] == 0 || img.pixels) abort();
        return 0;
    }
    if ((img.channels != 1 && img.channels != 3) || img.width > PNG8_MAX_SIDE || img.height > PNG8_MAX_SIDE) abort();
    size_t npix = (size_t)img.width * img.height;
    /* the other channel count: gray repeated, or RGB's luma */
    png8_image_t other;
    int oc = img.channels == 1 ? 3 : 1;
    if (png8_parse(data, size, &other, oc) != 0 || other.channels != oc) abort();
    for (size_t i = 0; i < npix; i++) {
        const uint8_t *p = img.pixels + i * (size_t)img.channels, *q = other.pixels + i * (size_t)oc;
        if (oc == 3 && (q[0] != p[0] || q[1] != p[0] || q[2] != p[0])) abort();
        if (oc == 1 && q[0] != (uint8_t)((299u * p[0] + 587u * p[1] + 114u * p[2] + 500u) / 1000u)) abort();
    }
    png8_free(&other);
    if (npix > 0 && npix <= 1u << 20) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f || png8_write(f, img.pixels, img.width, img.height, img.channels, 1) != 0) abort();
        fclose(f);
        png8_image_t back;
        if (png8_parse(buf, len, &back, 0) != 0 || back.width != img.width || back.height != img.height ||
            back.channels != img.channels || memcmp(back.pixels, img.pixels, npix * (size_t)img.channels))
            abort();
        png8_free(&back);
        free(buf);
    }
    png8_free(&img);
    return 0;
}
