/* png.c: 8-bit PNG reader and writer over libpng (see png.h; the rules are in png.md).
 *
 * libpng reports errors by longjmp: each entry point sets a jump buffer, keeps everything it
 * allocates in a context struct reached through a pointer (so nothing depends on automatic
 * variables changed after setjmp), and turns libpng's message into gt_err. Input comes
 * through our own read callback (a FILE or memory), so a short file says "truncated". */
#define _POSIX_C_SOURCE 200809L
#include <png.h> /* libpng's */

#include "png.h" /* ours: formats/png.h */
#include "lib/base/common.h"

#include <errno.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    /* input: a stream or memory */
    FILE *f;
    const unsigned char *mem;
    size_t len, pos;
    /* output */
    FILE *out;
    int write_errno;
    /* allocations to release on any exit */
    uint8_t *raw;
    png_bytep *rows;
    char msg[512];
    char warning[256]; /* libpng's last warning: often the reason for the error that follows */
} png_ctx_t;

const char *png8_color_name(int color_type) {
    switch (color_type) {
    case PNG_COLOR_TYPE_GRAY: return "gray";
    case PNG_COLOR_TYPE_RGB: return "RGB";
    case PNG_COLOR_TYPE_PALETTE: return "palette";
    case PNG_COLOR_TYPE_GRAY_ALPHA: return "gray+alpha";
    case PNG_COLOR_TYPE_RGB_ALPHA: return "RGBA";
    default: return "unknown";
    }
}

static void on_error(png_structp png, png_const_charp msg) {
    png_ctx_t *c = png_get_error_ptr(png);
    if (c->msg[0]) png_longjmp(png, 1);
    if (c->warning[0]) snprintf(c->msg, sizeof c->msg, "bad PNG: %s (%s)", msg, c->warning);
    else snprintf(c->msg, sizeof c->msg, "bad PNG: %s", msg);
    png_longjmp(png, 1);
}

/* Warnings are about ancillary trouble (a bad profile, a bad tEXt) that leaves the pixels
 * right; the last one is kept to explain an error that may follow. */
static void on_warning(png_structp png, png_const_charp msg) {
    png_ctx_t *c = png_get_error_ptr(png);
    snprintf(c->warning, sizeof c->warning, "%s", msg);
}

/* Raw bytes from the stream or memory; fewer than n is an error for libpng's reads. */
static size_t take(png_ctx_t *c, unsigned char *dst, size_t n) {
    if (c->mem) {
        size_t k = c->len - c->pos < n ? c->len - c->pos : n;
        memcpy(dst, c->mem + c->pos, k);
        c->pos += k;
        return k;
    }
    return fread(dst, 1, n, c->f);
}

static void on_read(png_structp png, png_bytep dst, size_t n) {
    png_ctx_t *c = png_get_io_ptr(png);
    if (take(c, dst, n) < n) {
        if (c->f && ferror(c->f)) snprintf(c->msg, sizeof c->msg, "read error: %s", strerror(errno));
        else snprintf(c->msg, sizeof c->msg, "truncated PNG (the data ends early)");
        png_error(png, c->msg);
    }
}

/* ---- reading ---------------------------------------------------------------------------- */

/* Convert decoded rows (src_ch 1..4 channels, alpha last when 2 or 4) to want (1 or 3). */
static void convert(uint8_t *dst, int want, const uint8_t *src, int src_ch, size_t npix) {
    int src_color = src_ch >= 3 ? 3 : 1;
    for (size_t i = 0; i < npix; i++) {
        const uint8_t *s = src + i * (size_t)src_ch;
        if (want == src_color) {
            for (int k = 0; k < want; k++) dst[i * (size_t)want + (size_t)k] = s[k];
        } else if (want == 3) {
            dst[3 * i] = dst[3 * i + 1] = dst[3 * i + 2] = s[0];
        } else {
            dst[i] = (uint8_t)((299u * s[0] + 587u * s[1] + 114u * s[2] + 500u) / 1000u);
        }
    }
}

static int read_png(png_ctx_t *c, png8_image_t *img, int want) {
    unsigned char sig[8];
    size_t got = take(c, sig, 8);
    if (got == 0) {
        if (c->f && ferror(c->f)) return gt_err("read error: %s", strerror(errno));
        return gt_err("empty file");
    }
    if (got < 8 || png_sig_cmp(sig, 0, 8) != 0) return gt_err("not a PNG file (bad signature)");
    if (want != 0 && want != 1 && want != 3) return gt_err("png8: want_channels must be 0, 1 or 3");

    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, c, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return gt_err("out of memory starting libpng");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        return gt_err("%s", c->msg);
    }
    png_set_read_fn(png, c, on_read);
    png_set_sig_bytes(png, 8);
    png_set_user_limits(png, PNG8_MAX_SIDE, PNG8_MAX_SIDE);
    /* Skip every ancillary chunk but tRNS unread: we use none of them, and libpng would
     * otherwise allocate (and clear) whatever length a tEXt or iCCP header claims. */
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
    png_read_info(png, info);

    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16) png_set_scale_16(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int ch = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (png_get_bit_depth(png, info) != 8 || ch < 1 || ch > 4 || rowbytes != (size_t)w * (size_t)ch) {
        snprintf(c->msg, sizeof c->msg, "bad PNG: unexpected layout after conversion to 8 bits");
        png_error(png, c->msg);
    }
    uint64_t raw_bytes = (uint64_t)rowbytes * h;
    if (raw_bytes > PNG8_MAX_BYTES) {
        snprintf(c->msg, sizeof c->msg, "image of %lux%lu pixels is too large (over %llu bytes decoded)",
                 (unsigned long)w, (unsigned long)h, (unsigned long long)PNG8_MAX_BYTES);
        png_error(png, c->msg);
    }
    c->raw = malloc(raw_bytes ? (size_t)raw_bytes : 1);
    c->rows = malloc(h ? sizeof *c->rows * h : 1);
    if (!c->raw || !c->rows) {
        snprintf(c->msg, sizeof c->msg, "out of memory for an image of %lux%lu pixels", (unsigned long)w,
                 (unsigned long)h);
        png_error(png, c->msg);
    }
    for (png_uint_32 y = 0; y < h; y++) c->rows[y] = c->raw + (size_t)y * rowbytes;
    png_read_image(png, c->rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);

    int out_ch = want ? want : (ch >= 3 ? 3 : 1);
    size_t npix = (size_t)w * h;
    if (out_ch == ch) {
        img->pixels = c->raw;
        c->raw = NULL;
    } else {
        size_t nout = npix * (size_t)out_ch;
        img->pixels = malloc(nout ? nout : 1);
        if (!img->pixels) return gt_err("out of memory for an image of %lux%lu pixels", (unsigned long)w, (unsigned long)h);
        convert(img->pixels, out_ch, c->raw, ch, npix);
    }
    img->width = w;
    img->height = h;
    img->channels = out_ch;
    img->src_color = color;
    img->src_depth = depth;
    return 0;
}

static int read_with(png_ctx_t *c, png8_image_t *img, int want) {
    memset(img, 0, sizeof *img);
    int rc = read_png(c, img, want);
    free(c->raw);
    free(c->rows);
    return rc;
}

int png8_load(const char *path, png8_image_t *img, int want_channels) {
    png_ctx_t c;
    memset(&c, 0, sizeof c);
    int is_stdin = !path || strcmp(path, "-") == 0;
    c.f = is_stdin ? stdin : fopen(path, "rb");
    if (!c.f) {
        memset(img, 0, sizeof *img);
        return gt_err("%s", strerror(errno));
    }
    int rc = read_with(&c, img, want_channels);
    if (!is_stdin) fclose(c.f);
    return rc;
}

int png8_parse(const void *buf, size_t len, png8_image_t *img, int want_channels) {
    png_ctx_t c;
    memset(&c, 0, sizeof c);
    c.mem = buf;
    c.len = len;
    return read_with(&c, img, want_channels);
}

void png8_free(png8_image_t *img) {
    free(img->pixels);
    memset(img, 0, sizeof *img);
}

/* ---- writing ---------------------------------------------------------------------------- */

static void on_write(png_structp png, png_bytep data, size_t n) {
    png_ctx_t *c = png_get_io_ptr(png);
    errno = 0;
    if (fwrite(data, 1, n, c->out) != n) {
        c->write_errno = errno ? errno : EIO;
        snprintf(c->msg, sizeof c->msg, "write failed: %s", strerror(c->write_errno));
        png_error(png, c->msg);
    }
}

static void on_flush(png_structp png) { (void)png; /* the caller flushes */ }

int png8_write(FILE *f, const uint8_t *pixels, uint32_t width, uint32_t height, int channels, int level) {
    if (channels != 1 && channels != 3) return gt_err("cannot write a PNG with %d channels (1 or 3)", channels);
    if (width == 0 || height == 0 || width > PNG8_MAX_SIDE || height > PNG8_MAX_SIDE)
        return gt_err("cannot write a PNG of %lux%lu pixels (each side 1 .. %d)", (unsigned long)width,
                      (unsigned long)height, PNG8_MAX_SIDE);
    png_ctx_t c;
    memset(&c, 0, sizeof c);
    c.out = f;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &c, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return gt_err("out of memory starting libpng");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return gt_err("%s", c.msg);
    }
    png_set_write_fn(png, &c, on_write, on_flush);
    png_set_IHDR(png, info, width, height, 8, channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (level >= 0) png_set_compression_level(png, level > 9 ? 9 : level);
    png_write_info(png, info);
    size_t stride = (size_t)width * (size_t)channels;
    for (uint32_t y = 0; y < height; y++) png_write_row(png, (png_const_bytep)(pixels + (size_t)y * stride));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}
