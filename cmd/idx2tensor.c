/* idx2tensor: IDX files (MNIST and kin, gzip or plain) or CIFAR-10 binary batches to .npy
 * tensors (manual: cmd/idx2tensor.md).
 *
 * Every input is read whole and checked (lengths, gzip checksums, labels) before anything is
 * written; only the images chosen by --offset and --limit are kept, as bytes, and converted
 * to the output dtype in chunks while writing. */
#define _DEFAULT_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/cifar.h"
#include "formats/idx.h"
#include "formats/npy.h"
#include "lib/base/cli.h"
#include "lib/base/common.h"
#include "lib/base/pixels.h"

static void usage(void) {
    printf("usage: idx2tensor [options] [FILE...] [-o OUT.npy | > OUT.npy]\n"
           "Convert IDX files (MNIST, Fashion-MNIST, EMNIST, KMNIST; gzip or plain) or CIFAR-10\n"
           "binary batches to a .npy tensor. Several FILEs are concatenated in order; '-' or no\n"
           "FILE reads standard input.\n\n"
           "  IDX images (N x H x W)   -> N x 1 x H x W float32 in [-1, 1]: (v - 127.5) / 127.5\n"
           "  IDX labels (N)           -> N int64\n"
           "  --cifar batches          -> N x 3 x 32 x 32 float32 in [-1, 1] (labels with --labels)\n\n"
           "  --range LO,HI    map pixel bytes 0..255 linearly onto [LO, HI] (default -1,1)\n"
           "  --u8             keep the raw bytes: uint8 images, uint8 labels\n"
           "  --offset K       skip the first K images (or labels) of the concatenated inputs\n"
           "  --limit N        keep at most N images (or labels) after the offset\n"
           "  --cifar          the inputs are CIFAR-10 binary batches (1 label byte + 3072 pixels\n"
           "                   per image)\n"
           "  --labels FILE    with --cifar: also write the labels (N int64; uint8 with --u8)\n"
           "  -o FILE          write to FILE (atomically) instead of stdout\n"
           "  -h, --help       this help;  --version  print the version\n\n"
           "Every input is read to its end and checked, also with --limit.\n"
           "Exit status: 0 done, 1 bad or unreadable input, 2 bad usage.\n\n"
           "examples:\n"
           "  idx2tensor train-images-idx3-ubyte.gz > train.npy\n"
           "  idx2tensor --limit 10000 train-labels-idx1-ubyte.gz -o labels.npy\n"
           "  idx2tensor --cifar data_batch_*.bin --labels labels.npy -o cifar.npy\n");
    exit(0);
}

enum { O_RANGE = 256, O_U8, O_OFFSET, O_LIMIT, O_CIFAR, O_LABELS, O_VERSION };

static const struct option longopts[] = {
    {"range", required_argument, 0, O_RANGE},   {"u8", no_argument, 0, O_U8},
    {"offset", required_argument, 0, O_OFFSET}, {"limit", required_argument, 0, O_LIMIT},
    {"cifar", no_argument, 0, O_CIFAR},         {"labels", required_argument, 0, O_LABELS},
    {"help", no_argument, 0, 'h'},              {"version", no_argument, 0, O_VERSION},
    {0, 0, 0, 0}};

typedef struct {
    pixel_range_t range;
    int u8, cifar;
    int64_t offset, limit; /* limit < 0: no limit */
} opts_t;

/* What the inputs hold, gathered in order. */
typedef struct {
    int labels_only;     /* IDX label files (1-d) rather than images */
    int64_t h, w, c;     /* image shape (c = 1 for IDX, 3 for CIFAR) */
    const char *first;   /* the file that fixed the shape, for messages */
    int64_t seen;        /* items in all inputs so far */
    int64_t kept;        /* items kept */
    bytebuf_t pixels;    /* kept images, (kept, c, h, w) bytes; or kept labels of IDX label files */
    bytebuf_t labels;    /* CIFAR labels of the kept images */
} gather_t;

/* How many of an input's n items to skip and then keep, given what came before. */
static void window(const opts_t *o, const gather_t *g, int64_t n, int64_t *skip, int64_t *keep) {
    int64_t s = o->offset - g->seen;
    if (s < 0) s = 0;
    if (s > n) s = n;
    int64_t k = n - s;
    if (o->limit >= 0 && k > o->limit - g->kept) k = o->limit - g->kept;
    *skip = s;
    *keep = k;
}

static void read_idx(const char *path, const opts_t *o, gather_t *g) {
    idx_reader_t r;
    if (idx_open(&r, path)) die_lib(EXIT_DATA);
    const idx_header_t *h = &r.h;
    const char *name = in_name(path);
    if (h->ndim != 1 && h->ndim != 3)
        die(EXIT_DATA, "%s: IDX data with %d dimensions: idx2tensor converts images (N x H x W) and labels (N)",
            name, h->ndim);
    int labels = h->ndim == 1;
    if (!g->first) {
        g->first = name;
        g->labels_only = labels;
        g->c = 1;
        g->h = labels ? 0 : h->dims[1];
        g->w = labels ? 0 : h->dims[2];
    } else if (labels != g->labels_only) {
        die(EXIT_DATA, "%s: IDX %s, but %s holds %s: convert them separately", name, labels ? "labels" : "images",
            g->first, g->labels_only ? "labels" : "images");
    } else if (!labels && (h->dims[1] != g->h || h->dims[2] != g->w)) {
        die(EXIT_DATA, "%s: images of %lldx%lld pixels, but those of %s are %lldx%lld", name, (long long)h->dims[1],
            (long long)h->dims[2], g->first, (long long)g->h, (long long)g->w);
    }
    uint64_t item = labels ? 1 : (uint64_t)h->dims[1] * (uint64_t)h->dims[2];
    int64_t skip, keep;
    window(o, g, h->dims[0], &skip, &keep);
    if (idx_skip(&r, (uint64_t)skip * item) || idx_read(&r, &g->pixels, (uint64_t)keep * item) || idx_finish(&r))
        die_lib(EXIT_DATA);
    idx_close(&r);
    g->seen += h->dims[0];
    g->kept += keep;
}

static void read_cifar(const char *path, const opts_t *o, gather_t *g) {
    cifar_reader_t r;
    if (cifar_open(&r, path)) die_lib(EXIT_DATA);
    if (!g->first) {
        g->first = in_name(path);
        g->c = CIFAR_CHANNELS;
        g->h = g->w = CIFAR_SIDE;
    }
    uint8_t label, pixels[CIFAR_PIXELS];
    int k;
    while ((k = cifar_read(&r, &label, pixels)) == 1) {
        int64_t skip, keep;
        window(o, g, 1, &skip, &keep);
        if (keep && (bytebuf_put(&g->labels, &label, 1) || bytebuf_put(&g->pixels, pixels, CIFAR_PIXELS)))
            die(EXIT_DATA, "%s: %s", in_name(path), gt_errmsg());
        g->seen++;
        g->kept += keep;
    }
    if (k < 0) die_lib(EXIT_DATA);
    cifar_close(&r);
}

/* Write n bytes as uint8, as floats through the range's table, or as int64. */
static void write_values(out_t *out, const uint8_t *v, size_t n, dtype_t dt, const float *lut) {
    enum { CHUNK = 16384 };
    if (dt == DT_U8) {
        out_write(out, v, n);
        return;
    }
    static float f[CHUNK];
    static int64_t l[CHUNK];
    for (size_t i = 0; i < n; i += CHUNK) {
        size_t m = n - i < CHUNK ? n - i : CHUNK;
        if (dt == DT_F32) {
            for (size_t j = 0; j < m; j++) f[j] = lut[v[i + j]];
            out_write(out, f, m * sizeof *f);
        } else {
            for (size_t j = 0; j < m; j++) l[j] = v[i + j];
            out_write(out, l, m * sizeof *l);
        }
    }
}

static void write_npy(out_t *out, dtype_t dt, int ndim, const int64_t *shape, const uint8_t *v, size_t n,
                      const float *lut) {
    if (npy_write_header(out->f, dt, ndim, shape)) die(EXIT_DATA, "%s: %s", out->path ? out->path : "stdout", gt_errmsg());
    write_values(out, v, n, dt, lut);
}

int main(int argc, char **argv) {
    cli_init("idx2tensor");
    opts_t o = {PIXEL_RANGE_DEFAULT, 0, 0, 0, -1};
    const char *out_path = NULL, *labels_path = NULL;
    int c, have_range = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":ho:", longopts, NULL)) != -1) {
        switch (c) {
        case O_RANGE:
            if (pixel_range_parse(optarg, &o.range)) die_usage("--range: %s", gt_errmsg());
            have_range = 1;
            break;
        case O_U8: o.u8 = 1; break;
        case O_OFFSET: o.offset = cli_long("--offset", optarg, 0, INT64_MAX); break;
        case O_LIMIT: o.limit = cli_long("--limit", optarg, 1, INT64_MAX); break;
        case O_CIFAR: o.cifar = 1; break;
        case O_LABELS: labels_path = optarg; break;
        case 'o': out_path = optarg; break;
        case 'h': usage(); break;
        case O_VERSION: cli_version(); break;
        case ':': die_usage("%s needs a value", argv[optind - 1]);
        default: die_usage("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (have_range && o.u8) die_usage("--range and --u8 exclude each other");
    if (labels_path && !o.cifar) die_usage("--labels goes with --cifar (IDX labels are files of their own)");
    int is_stdout = !out_path || strcmp(out_path, "-") == 0;
    if (labels_path && strcmp(labels_path, "-") == 0 && is_stdout)
        die_usage("--labels - and the images cannot both go to stdout; use -o FILE for one of them");
    const char **files = (const char **)argv + optind;
    int nf = argc - optind;
    static const char *stdin_only[] = {"-"};
    if (nf == 0) {
        if (isatty(STDIN_FILENO)) die_usage("no input: name a FILE or pipe one in");
        files = stdin_only;
        nf = 1;
    }
    for (int i = 0, dashes = 0; i < nf; i++)
        if (strcmp(files[i], "-") == 0 && ++dashes > 1) die_usage("'-' (stdin) may be given only once");

    out_t out, lab_out;
    out_open(&out, out_path, 1);
    if (labels_path) out_open(&lab_out, labels_path, 1);

    gather_t g;
    memset(&g, 0, sizeof g);
    for (int i = 0; i < nf; i++) {
        if (o.cifar) read_cifar(files[i], &o, &g);
        else read_idx(files[i], &o, &g);
    }
    if (o.offset > 0 && o.offset >= g.seen)
        die(EXIT_DATA, "--offset %lld: the input%s hold%s only %lld %s", (long long)o.offset, nf > 1 ? "s" : "",
            nf > 1 ? "" : "s", (long long)g.seen, g.labels_only ? "labels" : "images");

    float lut[256];
    pixel_lut(lut, o.range);
    if (g.labels_only) {
        int64_t shape[1] = {g.kept};
        write_npy(&out, o.u8 ? DT_U8 : DT_I64, 1, shape, g.pixels.p, g.pixels.len, lut);
    } else {
        int64_t shape[4] = {g.kept, g.c, g.h, g.w};
        write_npy(&out, o.u8 ? DT_U8 : DT_F32, 4, shape, g.pixels.p, g.pixels.len, lut);
    }
    if (labels_path) {
        int64_t shape[1] = {g.kept};
        write_npy(&lab_out, o.u8 ? DT_U8 : DT_I64, 1, shape, g.labels.p, g.labels.len, lut);
    }
    /* both outputs are complete before either is renamed into place */
    out_commit(&out);
    if (labels_path) out_commit(&lab_out);
    free(g.pixels.p);
    free(g.labels.p);
    return 0;
}
