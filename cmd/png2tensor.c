/* png2tensor: PNG images to one N x C x H x W .npy tensor (manual: cmd/png2tensor.md).
 *
 * Inputs are files, or directories whose PNGs are taken sorted by name. Every image is read
 * and checked (same size, same channel count) before anything is written; the pixels are
 * held as bytes and converted to float32 in chunks while writing. */
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/npy.h"
#include "formats/png.h"
#include "lib/base/cli.h"
#include "lib/base/common.h"
#include "lib/base/pixels.h"

static void usage(void) {
    printf("usage: png2tensor [options] [FILE.png... | DIR...] [-o OUT.npy | > OUT.npy]\n"
           "Read PNG images (8 or 16 bits; gray, gray+alpha, RGB, RGBA or palette) into one\n"
           "N x C x H x W tensor: float32 in [-1, 1], (v - 127.5) / 127.5, by default. A DIR\n"
           "stands for its *.png files sorted by name; '-' or no FILE reads one PNG from stdin.\n"
           "Every image must have the size and the channel count of the first.\n\n"
           "  --gray           convert every image to gray (C = 1): (299 R + 587 G + 114 B) / 1000\n"
           "  --rgb            convert every image to RGB (C = 3)\n"
           "  --range LO,HI    map pixel bytes 0..255 linearly onto [LO, HI] (default -1,1)\n"
           "  --u8             keep the raw bytes (uint8)\n"
           "  -o FILE          write to FILE (atomically) instead of stdout\n"
           "  -q               no progress on stderr (shown when reading takes seconds)\n"
           "  -h, --help       this help;  --version  print the version\n\n"
           "Without --gray or --rgb, C is 1 for gray images and 3 for colour ones; alpha is\n"
           "dropped (not composited); 16-bit samples become round(v / 257).\n"
           "Exit status: 0 done, 1 bad or unreadable input, 2 bad usage.\n\n"
           "examples:\n"
           "  png2tensor frames/ > frames.npy\n"
           "  png2tensor --rgb --u8 a.png b.png c.png -o abc.npy\n");
    exit(0);
}

enum { O_GRAY = 256, O_RGB, O_RANGE, O_U8, O_VERSION };

static const struct option longopts[] = {
    {"gray", no_argument, 0, O_GRAY},  {"rgb", no_argument, 0, O_RGB},         {"range", required_argument, 0, O_RANGE},
    {"u8", no_argument, 0, O_U8},      {"help", no_argument, 0, 'h'},          {"version", no_argument, 0, O_VERSION},
    {0, 0, 0, 0}};

/* ---- the list of inputs ------------------------------------------------------------------ */

typedef struct {
    char **v;
    size_t n, cap;
} names_t;

static void names_add(names_t *l, char *s) {
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = gt_xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = s;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int is_png_name(const char *s) {
    size_t n = strlen(s);
    return s[0] != '.' && n > 4 && strcasecmp(s + n - 4, ".png") == 0;
}

/* A directory's PNG files (regular files named *.png, not hidden), sorted by name. */
static void add_dir(names_t *l, const char *dir) {
    DIR *d = opendir(dir);
    if (!d) die(EXIT_DATA, "%s: %s", dir, strerror(errno));
    names_t here = {0};
    struct dirent *e;
    size_t dl = strlen(dir);
    int slash = dl > 0 && dir[dl - 1] == '/';
    while ((e = readdir(d)) != NULL) {
        if (!is_png_name(e->d_name)) continue;
        size_t n = dl + strlen(e->d_name) + 2;
        char *p = gt_xmalloc(n);
        snprintf(p, n, "%s%s%s", dir, slash ? "" : "/", e->d_name);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) names_add(&here, p);
        else free(p);
    }
    closedir(d);
    if (here.n == 0) die(EXIT_DATA, "%s: no .png files in this directory", dir);
    qsort(here.v, here.n, sizeof *here.v, by_name);
    for (size_t i = 0; i < here.n; i++) names_add(l, here.v[i]);
    free(here.v);
}

/* ---- reading ----------------------------------------------------------------------------- */

typedef struct {
    int want;           /* 0, 1 or 3: png8_load's want_channels */
    int c;              /* channels of the output */
    uint32_t h, w;
    const char *first;  /* the image that fixed the shape */
    int first_color;    /* its PNG colour type */
    uint8_t *pixels;    /* (n, c, h, w) */
    size_t image_bytes; /* c * h * w */
} set_t;

/* Read image i of n into its slot, checking its shape against the first (whose shape sizes
 * the whole set's memory). */
static void read_one(set_t *s, size_t i, size_t n, const char *path) {
    png8_image_t img;
    const char *name = in_name(path);
    if (png8_load(path, &img, s->want)) die(EXIT_DATA, "%s: %s", name, gt_errmsg());
    if (i == 0) {
        s->c = img.channels;
        s->h = img.height;
        s->w = img.width;
        s->first = name;
        s->first_color = img.src_color;
    } else if (img.width != s->w || img.height != s->h) {
        die(EXIT_DATA, "%s: %lux%lu pixels, but %s is %lux%lu: every image must have the same size", name,
            (unsigned long)img.width, (unsigned long)img.height, s->first, (unsigned long)s->w, (unsigned long)s->h);
    } else if (img.channels != s->c) {
        die(EXIT_DATA, "%s: %s (%d channel%s), but %s is %s (%d channel%s); use --gray or --rgb to convert",
            name, png8_color_name(img.src_color), img.channels, img.channels > 1 ? "s" : "", s->first,
            png8_color_name(s->first_color), s->c, s->c > 1 ? "s" : "");
    }
    if (i == 0) {
        uint64_t total;
        s->image_bytes = (size_t)s->c * s->h * s->w; /* png8_load bounds it */
        if (gt_mul_overflow(s->image_bytes, n, &total) || total > SIZE_MAX || !(s->pixels = malloc(total ? total : 1)))
            die(EXIT_DATA, "out of memory for %zu images of %lux%lu pixels", n, (unsigned long)s->w, (unsigned long)s->h);
    }
    /* (h, w, c) to (c, h, w) */
    uint8_t *dst = s->pixels + i * s->image_bytes;
    size_t hw = (size_t)s->h * s->w;
    for (int k = 0; k < s->c; k++)
        for (size_t p = 0; p < hw; p++) dst[(size_t)k * hw + p] = img.pixels[p * (size_t)s->c + (size_t)k];
    png8_free(&img);
}

int main(int argc, char **argv) {
    cli_init("png2tensor");
    const char *out_path = NULL;
    pixel_range_t range = PIXEL_RANGE_DEFAULT;
    int c, u8 = 0, have_range = 0, gray = 0, rgb = 0, quiet = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hqo:", longopts, NULL)) != -1) {
        switch (c) {
        case O_GRAY: gray = 1; break;
        case O_RGB: rgb = 1; break;
        case O_RANGE:
            if (pixel_range_parse(optarg, &range)) die_usage("--range: %s", gt_errmsg());
            have_range = 1;
            break;
        case O_U8: u8 = 1; break;
        case 'o': out_path = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': usage(); break;
        case O_VERSION: cli_version(); break;
        case ':': die_usage("%s needs a value", argv[optind - 1]);
        default: die_usage("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (gray && rgb) die_usage("--gray and --rgb exclude each other");
    if (have_range && u8) die_usage("--range and --u8 exclude each other");

    names_t files = {0};
    int dashes = 0;
    for (int i = optind; i < argc; i++) {
        struct stat st;
        if (strcmp(argv[i], "-") != 0 && stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) add_dir(&files, argv[i]);
        else {
            if (strcmp(argv[i], "-") == 0 && ++dashes > 1) die_usage("'-' (stdin) may be given only once");
            names_add(&files, gt_xstrdup(argv[i]));
        }
    }
    if (files.n == 0) {
        if (isatty(STDIN_FILENO)) die_usage("no input: name PNG files or a directory, or pipe a PNG in");
        names_add(&files, gt_xstrdup("-"));
    }

    out_t out;
    out_open(&out, out_path, 1);

    set_t s;
    memset(&s, 0, sizeof s);
    s.want = gray ? 1 : rgb ? 3 : 0;
    progress_t pr;
    progress_init(&pr, quiet);
    for (size_t i = 0; i < files.n; i++) {
        read_one(&s, i, files.n, files.v[i]);
        progress_update(&pr, 0, "read %zu of %zu images", i + 1, files.n);
    }
    if (pr.t_last > pr.t_start) progress_done(&pr); /* a line was shown */

    int64_t shape[4] = {(int64_t)files.n, s.c, s.h, s.w};
    size_t n = files.n * s.image_bytes;
    dtype_t dt = u8 ? DT_U8 : DT_F32;
    if (npy_write_header(out.f, dt, 4, shape)) out_fail(&out);
    if (u8) out_write(&out, s.pixels, n);
    else {
        float lut[256], buf[16384];
        pixel_lut(lut, range);
        for (size_t i = 0; i < n; i += 16384) {
            size_t m = n - i < 16384 ? n - i : 16384;
            for (size_t j = 0; j < m; j++) buf[j] = lut[s.pixels[i + j]];
            out_write(&out, buf, m * sizeof *buf);
        }
    }
    out_commit(&out);
    for (size_t i = 0; i < files.n; i++) free(files.v[i]);
    free(files.v);
    free(s.pixels);
    return 0;
}
