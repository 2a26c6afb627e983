/* tensor2png: images in a .npy tensor to PNG: one grid, or one file per image (manual:
 * cmd/tensor2png.md).
 *
 * Floats are mapped from the range (default [-1, 1]) to bytes by lib/base/pixels.h (rounded,
 * clamped); uint8 is taken as is. The grid is laid out like torchvision's make_grid: images
 * row by row, `pad` pixels around and between them, then enlarged by nearest neighbour. */
#define _DEFAULT_SOURCE
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/npy.h"
#include "formats/png.h"
#include "lib/base/cli.h"
#include "lib/base/common.h"
#include "lib/base/pixels.h"

static void usage(void) {
    printf("usage: tensor2png [options] [IN.npy | < IN.npy] [-o OUT.png | > OUT.png]\n"
           "       tensor2png --each 'dir/img-%%05d.png' [options] [IN.npy | < IN.npy]\n"
           "Draw the images of an N x C x H x W tensor (C = 1 gray, C = 3 RGB) as one PNG grid, or\n"
           "one PNG per image with --each. An H x W or C x H x W tensor is one image.\n"
           "float32/float64 values are taken in [-1, 1] (see --range); uint8 as they are.\n"
           "Values outside the range are clamped to its ends (NaN draws as the low end).\n\n"
           "  --range LO,HI    the float values drawn black and white (default -1,1)\n"
           "  --cols K         images per grid row (default: ceil(sqrt(N)))\n"
           "  --pad P          pixels of padding around and between grid images (default 2)\n"
           "  --pad-value V    grey level 0..255 of the padding (default 0, black)\n"
           "  --scale K        enlarge K times, nearest neighbour (default 1)\n"
           "  --each PATTERN   write image i (from 0) to PATTERN with its one %%d (printf flags and\n"
           "                   width allowed, e.g. %%05d) replaced by i; no grid\n"
           "  --level L        zlib compression level 0..9 (default 6)\n"
           "  -o FILE          write the grid to FILE (atomically) instead of stdout\n"
           "  -q               no progress on stderr (shown when --each takes seconds)\n"
           "  -h, --help       this help;  --version  print the version\n\n"
           "Exit status: 0 done, 1 bad input or a failed write, 2 bad usage.\n\n"
           "examples:\n"
           "  gan-sample -n 64 --seed 7 < m5.st | tensor2png --cols 8 --scale 2 > grid.png\n"
           "  tensor2png --each 'frames/img-%%05d.png' train.npy\n");
    exit(0);
}

enum { O_RANGE = 256, O_COLS, O_PAD, O_PADV, O_SCALE, O_EACH, O_LEVEL, O_VERSION };

static const struct option longopts[] = {
    {"range", required_argument, 0, O_RANGE}, {"cols", required_argument, 0, O_COLS},
    {"pad", required_argument, 0, O_PAD},     {"pad-value", required_argument, 0, O_PADV},
    {"scale", required_argument, 0, O_SCALE}, {"each", required_argument, 0, O_EACH},
    {"level", required_argument, 0, O_LEVEL}, {"help", no_argument, 0, 'h'},
    {"version", no_argument, 0, O_VERSION},   {0, 0, 0, 0}};

typedef struct {
    pixel_range_t range;
    long long cols, pad, pad_value, scale, level;
    int quiet;
} opts_t;

/* The images of the tensor: n of c x h x w. */
typedef struct {
    const tensor_t *t;
    int64_t n, c, h, w;
    int grid; /* a 4-d tensor: drawn as a grid */
} images_t;

/* ---- the --each pattern ------------------------------------------------------------------ */

/* A pattern split around its one integer conversion: prefix and suffix with %% already
 * unescaped, and the conversion's flags and width ("05", "-3", ""). */
typedef struct {
    char *prefix, *suffix;
    char spec[16];
} pattern_t;

static char *unescape(const char *s, size_t n) {
    char *r = gt_xmalloc(n + 1), *q = r;
    for (size_t i = 0; i < n; i++) {
        *q++ = s[i];
        if (s[i] == '%') i++; /* "%%" */
    }
    *q = 0;
    return r;
}

static void pattern_parse(const char *s, pattern_t *p) {
    const char *conv = NULL;
    size_t spec_len = 0;
    for (const char *q = s; *q; q++) {
        if (*q != '%') continue;
        if (q[1] == '%') {
            q++;
            continue;
        }
        const char *r = q + 1;
        while (*r && strchr("0-+ ", *r)) r++;
        while (*r >= '0' && *r <= '9') r++;
        if ((*r != 'd' && *r != 'i' && *r != 'u') || r - q - 1 >= (long)sizeof p->spec)
            die_usage("--each: '%s': the only conversion allowed is one %%d (with flags and width, e.g. %%05d)", s);
        if (conv) die_usage("--each: '%s' has more than one %%d", s);
        conv = q;
        spec_len = (size_t)(r - q - 1);
        q = r;
    }
    if (!conv) die_usage("--each: '%s' needs a %%d for the image number (e.g. 'dir/img-%%05d.png')", s);
    memcpy(p->spec, conv + 1, spec_len);
    p->spec[spec_len] = 0;
    p->prefix = unescape(s, (size_t)(conv - s));
    const char *after = conv + 1 + spec_len + 1;
    p->suffix = unescape(after, strlen(after));
}

static char *pattern_name(const pattern_t *p, int64_t i) {
    char fmt[32], num[64];
    snprintf(fmt, sizeof fmt, "%%%slld", p->spec); /* spec holds only flags and digits */
    snprintf(num, sizeof num, fmt, (long long)i);
    size_t n = strlen(p->prefix) + strlen(num) + strlen(p->suffix) + 1;
    char *r = gt_xmalloc(n);
    snprintf(r, n, "%s%s%s", p->prefix, num, p->suffix);
    return r;
}

/* ---- drawing ----------------------------------------------------------------------------- */

/* Image i as bytes into dst at (x0, y0) of a canvas `cw` pixels wide with c channels
 * interleaved (PNG order). */
static void draw(uint8_t *dst, size_t cw, int64_t x0, int64_t y0, const images_t *im, int64_t i, pixel_range_t r) {
    size_t hw = (size_t)im->h * (size_t)im->w, c = (size_t)im->c;
    size_t base = (size_t)i * c * hw;
    double scale = pixel_scale(r);
    for (int64_t y = 0; y < im->h; y++) {
        uint8_t *row = dst + ((size_t)(y0 + y) * cw + (size_t)x0) * c;
        for (size_t k = 0; k < c; k++) {
            size_t src = base + k * hw + (size_t)y * (size_t)im->w;
            if (im->t->dtype == DT_U8) {
                const uint8_t *s = (const uint8_t *)im->t->data + src;
                for (int64_t x = 0; x < im->w; x++) row[(size_t)x * c + k] = s[x];
            } else {
                const float *s = (const float *)im->t->data + src;
                for (int64_t x = 0; x < im->w; x++) row[(size_t)x * c + k] = pixel_to_u8(s[x], r.lo, scale);
            }
        }
    }
}

/* Enlarge a w x h canvas with c channels k times (nearest neighbour) into a new buffer. */
static uint8_t *enlarge(const uint8_t *src, size_t w, size_t h, size_t c, size_t k) {
    uint8_t *dst = gt_xmalloc(w * k * h * k * c);
    size_t drow = w * k * c;
    for (size_t y = 0; y < h; y++) {
        uint8_t *d = dst + y * k * drow;
        const uint8_t *s = src + y * w * c;
        for (size_t x = 0; x < w; x++)
            for (size_t j = 0; j < k; j++) memcpy(d + (x * k + j) * c, s + x * c, c);
        for (size_t j = 1; j < k; j++) memcpy(d + j * drow, d, drow);
    }
    return dst;
}

/* Check that a canvas of w x h pixels (before scaling) is drawable; dies otherwise. */
static void check_size(uint64_t w, uint64_t h, uint64_t c, uint64_t scale) {
    uint64_t sw, sh, bytes;
    if (gt_mul_overflow(w, scale, &sw) || gt_mul_overflow(h, scale, &sh) || sw > PNG8_MAX_SIDE || sh > PNG8_MAX_SIDE)
        die(EXIT_DATA, "the picture would be %llux%llu pixels; PNG images here are at most %d on a side "
                       "(use --cols, --scale or --each)",
            (unsigned long long)(w * scale), (unsigned long long)(h * scale), PNG8_MAX_SIDE);
    if (gt_mul_overflow(sw * sh, c, &bytes) || bytes > SIZE_MAX / 2)
        die(EXIT_DATA, "the picture of %llux%llu pixels is too large to hold in memory", (unsigned long long)sw,
            (unsigned long long)sh);
}

/* Scale (if asked) and write one canvas to out, committing it. */
static void emit(out_t *out, uint8_t *canvas, size_t w, size_t h, int c, const opts_t *o) {
    uint8_t *pic = canvas;
    if (o->scale > 1) pic = enlarge(canvas, w, h, (size_t)c, (size_t)o->scale);
    if (png8_write(out->f, pic, (uint32_t)(w * (size_t)o->scale), (uint32_t)(h * (size_t)o->scale), c, (int)o->level))
        out_fail(out);
    out_commit(out);
    if (pic != canvas) free(pic);
}

static void write_each(const images_t *im, const opts_t *o, const pattern_t *p) {
    check_size((uint64_t)im->w, (uint64_t)im->h, (uint64_t)im->c, (uint64_t)o->scale);
    uint8_t *canvas = gt_xmalloc((size_t)(im->w * im->h * im->c));
    progress_t pr;
    progress_init(&pr, o->quiet);
    for (int64_t i = 0; i < im->n; i++) {
        char *name = pattern_name(p, i);
        out_t out;
        out_open(&out, name, 1);
        draw(canvas, (size_t)im->w, 0, 0, im, i, o->range);
        emit(&out, canvas, (size_t)im->w, (size_t)im->h, (int)im->c, o);
        progress_update(&pr, 0, "wrote %lld of %lld images (%s)", (long long)i + 1, (long long)im->n, name);
        free(name);
    }
    if (pr.t_last > pr.t_start) progress_done(&pr); /* a line was shown */
    free(canvas);
}

static void write_grid(const images_t *im, const opts_t *o, out_t *out) {
    if (!im->grid) {
        check_size((uint64_t)im->w, (uint64_t)im->h, (uint64_t)im->c, (uint64_t)o->scale);
        uint8_t *canvas = gt_xmalloc((size_t)(im->w * im->h * im->c));
        draw(canvas, (size_t)im->w, 0, 0, im, 0, o->range);
        emit(out, canvas, (size_t)im->w, (size_t)im->h, (int)im->c, o);
        free(canvas);
        return;
    }
    int64_t cols = o->cols > 0 ? o->cols : (int64_t)ceil(sqrt((double)im->n));
    while (cols > 1 && (cols - 1) * (cols - 1) >= im->n && o->cols == 0) cols--; /* sqrt rounding */
    if (cols > im->n) cols = im->n;
    int64_t rows = (im->n + cols - 1) / cols;
    uint64_t pad = (uint64_t)o->pad, w, h;
    /* sizes: each factor is bounded (N and the dims by the tensor's byte count), but check */
    if (gt_mul_overflow((uint64_t)cols, (uint64_t)im->w + pad, &w) || gt_add_overflow(w, pad, &w) ||
        gt_mul_overflow((uint64_t)rows, (uint64_t)im->h + pad, &h) || gt_add_overflow(h, pad, &h))
        die(EXIT_DATA, "the grid is too large to draw");
    check_size(w, h, (uint64_t)im->c, (uint64_t)o->scale);
    size_t bytes = (size_t)(w * h * (uint64_t)im->c);
    uint8_t *canvas = gt_xmalloc(bytes);
    memset(canvas, (int)o->pad_value, bytes);
    for (int64_t i = 0; i < im->n; i++) {
        int64_t gx = i % cols, gy = i / cols;
        draw(canvas, (size_t)w, (int64_t)pad + gx * (im->w + (int64_t)pad), (int64_t)pad + gy * (im->h + (int64_t)pad),
             im, i, o->range);
    }
    emit(out, canvas, (size_t)w, (size_t)h, (int)im->c, o);
    free(canvas);
}

/* Interpret the tensor's shape; dies with a message naming the input when it is not images. */
static void images_of(const tensor_t *t, const char *name, images_t *im) {
    char s[128];
    tensor_shape_str(t, s, sizeof s);
    memset(im, 0, sizeof *im);
    im->t = t;
    if (t->dtype != DT_F32 && t->dtype != DT_U8)
        die(EXIT_DATA, "%s: %s data; tensor2png draws float32, float64 or uint8 images", name, dtype_name(t->dtype));
    if (t->ndim == 2) {
        im->n = 1, im->c = 1, im->h = t->shape[0], im->w = t->shape[1];
    } else if (t->ndim == 3 || t->ndim == 4) {
        int d = t->ndim - 3;
        im->n = d ? t->shape[0] : 1;
        im->c = t->shape[d], im->h = t->shape[d + 1], im->w = t->shape[d + 2];
        im->grid = t->ndim == 4;
        if (im->c != 1 && im->c != 3)
            die(EXIT_DATA, "%s: shape %s has %lld channels; tensor2png draws 1 (gray) or 3 (RGB)", name, s,
                (long long)im->c);
    } else {
        die(EXIT_DATA, "%s: shape %s is not images: expected N x C x H x W, C x H x W or H x W", name, s);
    }
    if (im->n == 0 || im->h == 0 || im->w == 0) die(EXIT_DATA, "%s: shape %s holds no pixels to draw", name, s);
}

int main(int argc, char **argv) {
    cli_init("tensor2png");
    opts_t o = {PIXEL_RANGE_DEFAULT, 0, 2, 0, 1, 6, 0};
    const char *out_path = NULL, *each = NULL;
    int c, grid_opts = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hqo:", longopts, NULL)) != -1) {
        switch (c) {
        case O_RANGE:
            if (pixel_range_parse(optarg, &o.range)) die_usage("--range: %s", gt_errmsg());
            break;
        case O_COLS: o.cols = cli_long("--cols", optarg, 1, PNG8_MAX_SIDE), grid_opts = 1; break;
        case O_PAD: o.pad = cli_long("--pad", optarg, 0, 1000), grid_opts = 1; break;
        case O_PADV: o.pad_value = cli_long("--pad-value", optarg, 0, 255), grid_opts = 1; break;
        case O_SCALE: o.scale = cli_long("--scale", optarg, 1, 64); break;
        case O_EACH: each = optarg; break;
        case O_LEVEL: o.level = cli_long("--level", optarg, 0, 9); break;
        case 'o': out_path = optarg; break;
        case 'q': o.quiet = 1; break;
        case 'h': usage(); break;
        case O_VERSION: cli_version(); break;
        case ':': die_usage("%s needs a value", argv[optind - 1]);
        default: die_usage("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind + 1 < argc) die_usage("one input tensor at a time (got %d)", argc - optind);
    const char *in = optind < argc ? argv[optind] : NULL;
    if (!in && isatty(STDIN_FILENO)) die_usage("no input: name a .npy FILE or pipe one in");
    pattern_t pat;
    if (each) {
        if (out_path) die_usage("--each and -o exclude each other");
        if (grid_opts) die_usage("--cols, --pad and --pad-value draw a grid; --each writes single images");
        pattern_parse(each, &pat);
    }

    out_t out;
    if (!each) out_open(&out, out_path, 1);
    tensor_t t;
    if (npy_load(in, &t, 1)) die_lib(EXIT_DATA);
    images_t im;
    images_of(&t, in_name(in), &im);
    if (each) {
        write_each(&im, &o, &pat);
        free(pat.prefix);
        free(pat.suffix);
    } else {
        write_grid(&im, &o, &out);
    }
    tensor_free(&t);
    return 0;
}
