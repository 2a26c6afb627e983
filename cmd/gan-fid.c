/* gan-fid: the Frechet distance (FID with Inception features) and KID between two sets of
 * images, feature arrays or statistics files; statistics files to save and merge
 * (manual: cmd/gan-fid.md).
 *
 * Each input is read in batches (npy_reader): images -> features (lib/fid/inception_net.h, the pixels
 * themselves, or a checkpoint's D at a layer) -> one-pass float64 statistics (lib/fid/fid.h), so a
 * set of any size runs in bounded memory; only the metrics that compare features pairwise (KID,
 * precision/recall, density/coverage) keep them (N x d float32 per set).
 * The kind of an input is decided by its content: a .npy of 4 dims is images, of 2 dims
 * features, a .npz (ZIP) statistics. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/npy.h"
#include "formats/npz.h"
#include "lib/base/cli.h"
#include "lib/base/common.h"
#include "lib/fid/fid.h"
#include "lib/fid/inception_net.h"
#include "lib/fid/iscore.h"
#include "lib/fid/prdc.h"
#include "lib/gan/device.h"
#include "lib/gan/features.h"
#include "lib/gan/model.h"

static void usage(void) {
    printf("usage: gan-fid [options] A B                      the distance between two sets\n"
           "       gan-fid [options] --is B                     the Inception Score of one set\n"
           "       gan-fid [options] --save-stats OUT.npz A    the statistics of one set\n"
           "       gan-fid [options] --merge-stats OUT.npz A...  pooled statistics of several sets\n"
           "Each set is images (N x C x H x W .npy, uint8 or float in [-1, 1]), features (N x D .npy),\n"
           "or statistics (.npz with mu and sigma: ours, or pytorch-fid's). Prints e.g. 'FID 12.34'.\n\n"
           "  --features F        inception (default when weights are given), pixels (the flattened\n"
           "                      pixels: prints FD(pixels), not FID), or CKPT.st[:LAYER] (a gan-tools\n"
           "                      checkpoint's D, the output of its layer LAYER counted from 0 as in\n"
           "                      the checkpoint's names; default: the input of D's last layer)\n"
           "  --resize R          how Inception resizes images to 299 x 299: bilinear (pytorch-fid's,\n"
           "                      default) or clean (clean-fid's: PIL's anti-aliased bicubic, per\n"
           "                      channel in float32; printed as FID(clean), KID(clean), ...)\n"
           "  --weights FILE      Inception weights (safetensors; default: $GAN_FID_WEIGHTS); make them\n"
           "                      from pytorch-fid's pt_inception-2015-12-05-6726825d.pth with\n"
           "                      /usr/bin/python3 tools/fid-weights.py IN.pth OUT.safetensors\n"
           "  --save-stats FILE   write the statistics of the one set given (mu, sigma, n: .npz)\n"
           "  --merge-stats FILE  write the pooled statistics of every set given (shards)\n"
           "  --save-features F   write the features of the one set given (N x D float32 .npy)\n"
           "  --labels LA,LB      the classes of A's and of B's images (N int64 or uint8 .npy each,\n"
           "                      e.g. idx2tensor's labels, gan-sample --labels-out): after the\n"
           "                      overall lines, one line per class, e.g. 'FID[class=3] 15.2'\n"
           "                      ('nan' where a set has fewer than 2 images of the class), and\n"
           "                      with --kid then 'KID[class=3] MEAN std STD' per class\n"
           "  --metrics LIST      what to print, any of fid,kid,is,pr,dc (default fid): the Frechet\n"
           "                      distance, KID, the Inception Score of B, precision and recall,\n"
           "                      density and coverage; all but fid need images or features\n"
           "  --kid               also print KID (the same as adding kid to --metrics)\n"
           "  --is                also print the Inception Score of B (of the one set given alone)\n"
           "  --is-splits N       the score's splits (default %d)\n"
           "  --pr-k K            neighbours of precision and recall (default %d)\n"
           "  --dc-k K            neighbours of density and coverage (default %d)\n"
           "  --kid-subsets N     subsets (default %d)\n"
           "  --kid-subset-size M samples per subset (default %d, or the smaller set's size)\n"
           "  --seed S            seed of the KID subsets (default 0)\n"
           "  --batch B           images per batch (default 32)\n"
           "  --threads N         CPU threads (0 = all cores, default)\n"
           "  --device DEV        cpu, cuda or auto (default auto)\n"
           "  -q, --quiet         no progress on stderr\n"
           "  -h, --help          this help;  --version  print the version\n\n"
           "A statistics file from --save-stats scores like the images it came from; shards'\n"
           "statistics merged with --merge-stats equal the whole set's.\n\n"
           "examples:\n"
           "  gan-fid --weights inception.st real.npy fake.npy\n"
           "  gan-fid --features pixels real.npy fake.npy\n"
           "  gan-fid --save-stats real.npz real.npy && gan-fid real.npz fake.npy\n"
           "  gan-fid --features pixels --labels real-labels.npy,fake-labels.npy real.npy fake.npy\n"
           "  gan-fid --metrics fid,kid,pr,dc real.npy fake.npy\n",
           IS_SPLITS, PRDC_K_PR, PRDC_K_DC, KID_SUBSETS, KID_SUBSET_SIZE);
    exit(0);
}

enum {
    O_FEATURES = 256, O_WEIGHTS, O_SAVE_STATS, O_MERGE_STATS, O_SAVE_FEATURES, O_KID, O_KID_SUBSETS, O_KID_SIZE,
    O_SEED, O_BATCH, O_THREADS, O_DEVICE, O_VERSION, O_LABELS, O_METRICS, O_PR_K, O_DC_K, O_IS, O_IS_SPLITS, O_RESIZE
};

static const struct option longopts[] = {
    {"features", required_argument, 0, O_FEATURES},       {"weights", required_argument, 0, O_WEIGHTS},
    {"save-stats", required_argument, 0, O_SAVE_STATS},   {"merge-stats", required_argument, 0, O_MERGE_STATS},
    {"save-features", required_argument, 0, O_SAVE_FEATURES}, {"kid", no_argument, 0, O_KID},
    {"kid-subsets", required_argument, 0, O_KID_SUBSETS}, {"kid-subset-size", required_argument, 0, O_KID_SIZE},
    {"seed", required_argument, 0, O_SEED},               {"batch", required_argument, 0, O_BATCH},
    {"threads", required_argument, 0, O_THREADS},         {"device", required_argument, 0, O_DEVICE},
    {"quiet", no_argument, 0, 'q'},                       {"help", no_argument, 0, 'h'},
    {"version", no_argument, 0, O_VERSION},               {"labels", required_argument, 0, O_LABELS},
    {"metrics", required_argument, 0, O_METRICS},         {"pr-k", required_argument, 0, O_PR_K},
    {"dc-k", required_argument, 0, O_DC_K},               {"is", no_argument, 0, O_IS},
    {"is-splits", required_argument, 0, O_IS_SPLITS},     {"resize", required_argument, 0, O_RESIZE},
    {0, 0, 0, 0}};

/* ---- feature extractors -------------------------------------------------------------------- */

/* What a feature name is printed as: the Frechet distance and the kernel distance. */
static void labels_of(const char *feat, int d, char *fd, char *kd, size_t n) {
    if (strcmp(feat, "inception") == 0 || (feat[0] == 0 && d == INCEPTION_DIM)) {
        snprintf(fd, n, "FID");
        snprintf(kd, n, "KID");
    } else if (strcmp(feat, "inception-clean") == 0) {
        snprintf(fd, n, "FID(clean)");
        snprintf(kd, n, "KID(clean)");
    } else if (feat[0] == 0) {
        snprintf(fd, n, "FD");
        snprintf(kd, n, "KD");
    } else {
        snprintf(fd, n, "FD(%s)", feat);
        snprintf(kd, n, "KD(%s)", feat);
    }
}

/* A failed extractor call (features.h): its message, exit 2 for usage and 1 for data. */
static void features_die(int rc) {
    if (rc == -2) die_usage("%s", gt_errmsg());
    if (rc) die_lib(EXIT_DATA);
}

/* ---- sets ------------------------------------------------------------------------------------- */

typedef enum { IN_IMAGES, IN_FEATURES, IN_STATS } input_kind_t;

typedef struct {
    const char *path;
    const char *name;        /* for messages */
    input_kind_t kind;
    fid_stats_t st;
    char feat[NAME_LEN];     /* the features' name ("" when unknown: pytorch-fid's files) */
    float *feats;            /* (n, d) when kept for KID */
    int64_t n_feats;
    const char *labels_name; /* --labels: the file of this set's classes, or NULL */
    int64_t *labels;         /* (n_labels) the classes of the images, in order */
    int64_t n_labels;
    fid_class_stats_t cls;   /* per-class statistics (with labels) */
} set_t;

/* The kind of an input from its first byte: .npy starts with 0x93, a ZIP with 'P'. */
static input_kind_t sniff(const char *path, const char *name) {
    FILE *f = (!path || strcmp(path, "-") == 0) ? stdin : fopen(path, "rb");
    if (!f) {
        in_open(path); /* dies with the reason */
        exit(EXIT_DATA);
    }
    int c = getc(f), err = c == EOF && ferror(f) ? errno : 0;
    if (f == stdin) {
        if (c != EOF) ungetc(c, f);
    } else {
        fclose(f);
    }
    if (err) die(EXIT_DATA, "%s: %s", name, strerror(err));
    if (c == 0x93) return IN_IMAGES; /* images or features: the shape decides */
    if (c == 'P') return IN_STATS;
    if (c == EOF) die(EXIT_DATA, "%s: empty file", name);
    die(EXIT_DATA, "%s: neither a .npy array nor a .npz statistics file", name);
}

/* Statistics from an .npz (ours or pytorch-fid's). */
static void load_stats(set_t *s) {
    if (features_load_stats(s->path, s->name, &s->st, s->feat)) die_lib(EXIT_DATA);
}

static void save_stats(const char *path, fid_stats_t *st, const char *feat) {
    out_t o;
    out_open(&o, path, 1);
    int64_t d = st->d, dd[2] = {d, d}, nf = (int64_t)strlen(feat);
    tensor_t mu = {DT_F64, 1, {d}, st->mu, NULL, 0, 0};
    tensor_t sigma = {DT_F64, 2, {dd[0], dd[1]}, st->sigma, NULL, 0, 0};
    int64_t count = st->n;
    tensor_t n = {DT_I64, 0, {0}, &count, NULL, 0, 0};
    tensor_t f = {DT_U8, 1, {nf}, (void *)feat, NULL, 0, 0};
    const char *names[4] = {"mu", "sigma", "n", "features"};
    const tensor_t *arrays[4] = {&mu, &sigma, &n, &f};
    if (npz_write(o.f, nf ? 4 : 3, names, arrays, 0)) out_fail(&o);
    out_commit(&o);
}

typedef struct {
    int stats;              /* statistics are wanted (not with --save-features alone) */
    int keep;               /* keep the features (KID) */
    out_t *feat_out;        /* --save-features, or NULL */
    int quiet;
} run_opts_t;

/* Statistics (and features when asked) of an .npy input: images or features, in batches. */
static void process_npy(set_t *s, extractor_t *ex, const run_opts_t *ro) {
    npy_reader_t r;
    if (npy_reader_open(&r, s->path)) die_lib(EXIT_DATA);
    char sh[96];
    tensor_t shape_only = {r.dtype, r.ndim, {0}, NULL, NULL, 0, 0};
    memcpy(shape_only.shape, r.shape, sizeof r.shape);
    tensor_shape_str(&shape_only, sh, sizeof sh);
    int64_t N = r.ndim >= 1 ? r.shape[0] : 0;
    int d;
    size_t img; /* values per row read */
    shape3_t s3 = {0, 0, 0};
    if (r.ndim == 4) {
        s->kind = IN_IMAGES;
        if (r.dtype != DT_U8 && r.dtype != DT_F32 && r.dtype != DT_F64)
            die(EXIT_DATA, "%s: %s images: expected uint8 or float", s->name, dtype_name(r.dtype));
        if (r.shape[1] < 1 || r.shape[2] < 1 || r.shape[3] < 1 || r.shape[1] > 4096 || r.shape[2] > 65536 ||
            r.shape[3] > 65536)
            die(EXIT_DATA, "%s: images of shape %s are not plausible", s->name, sh);
        s3 = (shape3_t){(int)r.shape[1], (int)r.shape[2], (int)r.shape[3]};
        if (N < 1 + ro->stats)
            die(EXIT_DATA, "%s: %lld image%s: %s", s->name, (long long)N, N == 1 ? "" : "s",
                ro->stats ? "statistics need at least 2" : "nothing to do");
        features_die(extractor_setup(ex, s3, s->name));
        d = ex->d;
        img = (size_t)shape3_size(s3);
        snprintf(s->feat, NAME_LEN, "%s", ex->name);
    } else if (r.ndim == 2) {
        s->kind = IN_FEATURES;
        if (r.dtype != DT_F32 && r.dtype != DT_F64)
            die(EXIT_DATA, "%s: %s features: expected float32 or float64", s->name, dtype_name(r.dtype));
        if (r.shape[1] < 1 || r.shape[1] > 32768)
            die(EXIT_DATA, "%s: %lld features per row: out of range [1, 32768]", s->name, (long long)r.shape[1]);
        if (N < 1 + ro->stats)
            die(EXIT_DATA, "%s: %lld row%s: %s", s->name, (long long)N, N == 1 ? "" : "s",
                ro->stats ? "statistics need at least 2" : "nothing to do");
        d = (int)r.shape[1];
        img = (size_t)d;
        snprintf(s->feat, NAME_LEN, "features");
    } else {
        die(EXIT_DATA, "%s: a %s array: expected images (N x C x H x W), features (N x D) or a .npz of statistics",
            s->name, sh);
    }
    if (s->labels && s->n_labels != N)
        die(EXIT_DATA, "%s: %lld label%s for the %lld %s of %s: want one label per %s", s->labels_name,
            (long long)s->n_labels, s->n_labels == 1 ? "" : "s", (long long)N,
            s->kind == IN_IMAGES ? "images" : "feature rows", s->name, s->kind == IN_IMAGES ? "image" : "row");
    if (fid_stats_init(&s->st, d, 0)) die(EXIT_DATA, "%s: %s", s->name, gt_errmsg());
    if (s->labels) fid_class_stats_init(&s->cls, d);
    if (ro->keep) {
        uint64_t bytes;
        if (gt_mul_overflow((uint64_t)N, (uint64_t)d * sizeof(float), &bytes) || bytes > ((uint64_t)1 << 40))
            die(EXIT_DATA, "%s: %lld x %d features are too many to keep for KID, precision/recall or density/coverage",
                s->name, (long long)N, d);
        s->feats = gt_xmalloc((size_t)bytes);
    }
    if (ro->feat_out) {
        int64_t fs[2] = {N, d};
        if (npy_write_header(ro->feat_out->f, DT_F32, 2, fs)) out_fail(ro->feat_out);
    }
    int B = s->kind == IN_IMAGES ? ex->batch : 1024;
    size_t es = dtype_size(r.dtype);
    void *raw = gt_xmalloc(es * img * (size_t)B);
    float *x = gt_aligned_alloc(sizeof(float) * img * (size_t)B);
    /* float64 feature rows go to the statistics as they were read (raw), in float32 elsewhere */
    const double *xd = r.dtype == DT_F64 && s->kind == IN_FEATURES ? raw : NULL;
    progress_t pr;
    progress_init(&pr, ro->quiet);
    int64_t outside = 0;
    const char *unit = s->kind == IN_IMAGES ? "images" : "rows";
    for (int64_t i0 = 0; i0 < N; i0 += B) {
        int b = (int)(N - i0 < B ? N - i0 : B);
        if (npy_reader_read(&r, raw, (int64_t)img * b)) die_lib(EXIT_DATA);
        const float *f;
        if (s->kind == IN_IMAGES) {
            int64_t o;
            if (features_unit_range(x, raw, r.dtype, img * (size_t)b, i0, img, s->name, &o)) die_lib(EXIT_DATA);
            outside += o;
            if (!(f = extractor_run(ex, x, b, s3))) die_lib(EXIT_DATA);
        } else if (xd) {
            for (size_t k = 0; k < img * (size_t)b; k++) x[k] = (float)xd[k];
            f = x;
        } else {
            memcpy(x, raw, sizeof(float) * img * (size_t)b);
            f = x;
        }
        int rc = xd ? fid_stats_add_f64(&s->st, xd, b) : fid_stats_add(&s->st, f, b);
        if (rc) die(EXIT_DATA, "%s: rows %lld to %lld: %s", s->name, (long long)i0, (long long)(i0 + b - 1), gt_errmsg());
        if (s->labels) { /* the same rows, to their classes' statistics */
            rc = xd ? fid_class_stats_add_f64(&s->cls, xd, s->labels + i0, b)
                    : fid_class_stats_add(&s->cls, f, s->labels + i0, b);
            if (rc) die(EXIT_DATA, "%s: rows %lld to %lld: %s", s->name, (long long)i0, (long long)(i0 + b - 1),
                        gt_errmsg());
        }
        if (s->feats) memcpy(s->feats + (size_t)i0 * (size_t)d, f, sizeof(float) * (size_t)d * (size_t)b);
        if (ro->feat_out) out_write(ro->feat_out, f, sizeof(float) * (size_t)d * (size_t)b);
        double el = gt_seconds() - pr.t_start;
        progress_update(&pr, i0 + b == N, "%s: %lld/%lld %s (%.1f/s)", s->name, (long long)(i0 + b), (long long)N,
                        unit, el > 0 ? (i0 + b) / el : 0.0);
    }
    progress_done(&pr);
    npy_reader_close(&r);
    s->n_feats = N;
    if (outside && !ro->quiet)
        warnx("warning: %s: %lld values outside [-1, 1]: float images are expected in [-1, 1]", s->name,
              (long long)outside);
    free(raw);
    gt_aligned_free(x);
    if (ro->stats && fid_stats_finish(&s->st)) die(EXIT_DATA, "%s: %s", s->name, gt_errmsg());
    if (s->labels && fid_class_stats_finish(&s->cls)) die(EXIT_DATA, "%s: %s", s->name, gt_errmsg());
}

static void load_set(set_t *s, extractor_t *ex, const run_opts_t *ro) {
    if (sniff(s->path, s->name) == IN_STATS) {
        s->kind = IN_STATS;
        load_stats(s);
    } else {
        process_npy(s, ex, ro);
    }
}

static void warn_few(const set_t *s, int quiet) {
    if (quiet || s->st.n == 0 || s->st.n >= s->st.d) return;
    warnx("warning: %s: %lld samples for %d features: the covariance is singular and the distance is biased "
          "upward; use at least %d (10000 or more is customary)",
          s->name, (long long)s->st.n, s->st.d, s->st.d);
}

/* Both sets' features must be the same kind (when known). */
static void check_compatible(const set_t *a, const set_t *b) {
    if (a->st.d != b->st.d)
        die(EXIT_DATA, "%s has %d features but %s has %d: compare sets of the same features (%s: %s, %s: %s)", a->name,
            a->st.d, b->name, b->st.d, a->name, a->feat[0] ? a->feat : "unknown", b->name,
            b->feat[0] ? b->feat : "unknown");
    if (a->feat[0] && b->feat[0] && strcmp(a->feat, b->feat) != 0)
        die(EXIT_DATA, "%s holds %s features but %s holds %s: compare sets of the same features", a->name, a->feat,
            b->name, b->feat);
}

/* --labels LA,LB: the two file names, split at the one comma (exits 2 otherwise). */
static void parse_labels_opt(const char *arg, char **la, char **lb) {
    const char *comma = strchr(arg, ',');
    if (!comma || comma == arg || !comma[1] || strchr(comma + 1, ','))
        die_usage("--labels '%s': want the two sets' label files separated by one comma, e.g. "
                  "--labels real-labels.npy,fake-labels.npy",
                  arg);
    size_t n = (size_t)(comma - arg);
    *la = gt_xmalloc(n + 1);
    memcpy(*la, arg, n);
    (*la)[n] = 0;
    *lb = gt_xstrdup(comma + 1);
}

/* A set's classes from a labels file: N (or N x 1) int64 or uint8, each in 0..FID_MAX_CLASS. */
static void load_labels(set_t *s, const char *path) {
    tensor_t t;
    if (npy_load(path, &t, 0)) die_lib(EXIT_DATA);
    if (tensor_labels(&t, (int64_t)FID_MAX_CLASS + 1, -1, NULL, &s->labels)) die(EXIT_DATA, "%s: %s", path, gt_errmsg());
    s->n_labels = tensor_numel(&t);
    s->labels_name = path;
    tensor_free(&t);
}

/* Print "LABEL FD", the distance between statistics sa and sb; what ("" or "class K: ") prefixes
 * the messages. */
static void print_distance(const char *label, const char *what, const fid_stats_t *sa, const fid_stats_t *sb,
                           int quiet) {
    double fd, offset;
    if (fid_frechet(sa->d, sa->mu, sa->sigma, sb->mu, sb->sigma, &fd, &offset))
        die(EXIT_DATA, "%s%s", what, gt_errmsg());
    if (offset > 0 && !quiet)
        warnx("warning: %sthe eigendecomposition did not converge; added %g to the covariances' diagonals (as "
              "pytorch-fid does for a singular product)",
              what, offset);
    char num[40];
    gt_format_exact(num, sizeof num, fd, 1, 0);
    printf("%s %s\n", label, num);
}

/* Class k's statistics in sets a and b (NULL where a set has none) and their counts; returns 1
 * when both sets have at least 2 images of it. Otherwise prints "LABEL[class=K] NAN_TEXT" (when
 * either set has the class) and a note on stderr unless quiet, naming WHAT needs 2, and returns 0. */
static int class_pair(const set_t *a, const set_t *b, int64_t k, const fid_stats_t **sa, const fid_stats_t **sb,
                      int64_t *na, int64_t *nb, const char *label, const char *what, const char *nan_text, int quiet) {
    *sa = fid_class_stats_get(&a->cls, k), *sb = fid_class_stats_get(&b->cls, k);
    *na = *sa ? (*sa)->n : 0, *nb = *sb ? (*sb)->n : 0;
    if (*na >= 2 && *nb >= 2) return 1;
    if (!*sa && !*sb) return 0;
    if (!quiet)
        warnx("warning: class %lld: %lld image%s in %s, %lld in %s: %s needs at least 2 in each; printing nan",
              (long long)k, (long long)*na, *na == 1 ? "" : "s", a->name, (long long)*nb, b->name, what);
    printf("%s[class=%lld] %s\n", label, (long long)k, nan_text);
    return 0;
}

/* After the overall lines: one line per class present in either set, "LABEL[class=K] FD", the
 * distance between the two sets' images of class K in the same features; "nan" (and a note on
 * stderr unless quiet) where a set has fewer than 2 images of the class. */
static void print_per_class(const set_t *a, const set_t *b, const char *fd_label, int quiet) {
    int64_t top = a->cls.cap > b->cls.cap ? a->cls.cap : b->cls.cap, small_k = -1, small_n = 0;
    const char *small_set = NULL;
    for (int64_t k = 0; k < top; k++) {
        const fid_stats_t *sa, *sb;
        int64_t na, nb;
        if (!class_pair(a, b, k, &sa, &sb, &na, &nb, fd_label, "a distance", "nan", quiet)) continue;
        char label[NAME_LEN + 40], what[40];
        snprintf(label, sizeof label, "%s[class=%lld]", fd_label, (long long)k);
        snprintf(what, sizeof what, "class %lld: ", (long long)k);
        print_distance(label, what, sa, sb, quiet);
        int64_t n_min = na < nb ? na : nb;
        if (small_k < 0 || n_min < small_n) {
            small_k = k;
            small_n = n_min;
            small_set = na <= nb ? a->name : b->name;
        }
    }
    if (!quiet && small_k >= 0 && small_n < a->st.d)
        warnx("warning: per-class sets are smaller than the %d features (the smallest: %lld images of class %lld in "
              "%s): those covariances are singular and the distances biased upward",
              a->st.d, (long long)small_n, (long long)small_k, small_set);
}

/* After the per-class distances (with --kid): "KD_LABEL[class=K] MEAN std STD" for every class
 * present in either set, KID between the two sets' rows of that class, exactly as --kid computes
 * it for two sets holding only those rows (same subsets, seed and subset size, capped by the
 * class's counts); "nan std nan" where a set has fewer than 2 rows of the class. */
static void print_per_class_kid(const set_t *a, const set_t *b, const char *kd_label, int subsets, int subset_size,
                                uint64_t seed, int threads, int quiet) {
    int64_t top = a->cls.cap > b->cls.cap ? a->cls.cap : b->cls.cap;
    int d = a->st.d;
    float *xa = NULL, *xb = NULL;
    for (int64_t k = 0; k < top; k++) {
        const fid_stats_t *sa, *sb;
        int64_t na, nb;
        if (!class_pair(a, b, k, &sa, &sb, &na, &nb, kd_label, "KID", "nan std nan", quiet)) continue;
        const set_t *sets[2] = {a, b};
        float **dst[2] = {&xa, &xb};
        int64_t cnt[2] = {na, nb};
        for (int q = 0; q < 2; q++) { /* the class's rows, in order */
            *dst[q] = gt_xrealloc(*dst[q], sizeof(float) * (size_t)cnt[q] * (size_t)d);
            int64_t m = 0;
            for (int64_t i = 0; i < sets[q]->n_labels; i++)
                if (sets[q]->labels[i] == k)
                    memcpy(*dst[q] + (size_t)(m++) * (size_t)d, sets[q]->feats + (size_t)i * (size_t)d,
                           sizeof(float) * (size_t)d);
        }
        double km, ks;
        if (fid_kid(xa, na, xb, nb, d, subsets, subset_size, seed, threads, &km, &ks))
            die(EXIT_DATA, "class %lld: %s", (long long)k, gt_errmsg());
        char num[40], num2[40];
        gt_format_exact(num, sizeof num, km, 1, 0);
        gt_format_exact(num2, sizeof num2, ks, 1, 0);
        printf("%s[class=%lld] %s std %s\n", kd_label, (long long)k, num, num2);
    }
    free(xa);
    free(xb);
}

/* The metrics gan-fid prints, in this order (whatever the order of --metrics). */
enum { M_FID = 1, M_KID = 2, M_IS = 4, M_PR = 8, M_DC = 16 };
#define M_PAIRWISE (M_KID | M_PR | M_DC) /* need both sets' features */

static const struct {
    const char *name;
    int bit;
} metric_names[] = {{"fid", M_FID}, {"kid", M_KID}, {"is", M_IS}, {"pr", M_PR}, {"dc", M_DC}};

/* --metrics LIST: comma-separated names -> bits (exits 2 on an unknown or empty name). */
static int parse_metrics(const char *arg) {
    int bits = 0;
    const char *p = arg;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        int bit = 0;
        for (size_t i = 0; i < sizeof metric_names / sizeof metric_names[0]; i++)
            if (strlen(metric_names[i].name) == n && strncmp(p, metric_names[i].name, n) == 0) bit = metric_names[i].bit;
        if (!bit)
            die_usage("--metrics '%s': unknown metric '%.*s'; choose from fid, kid, is, pr, dc (e.g. --metrics fid,kid)",
                      arg, (int)n, p);
        bits |= bit;
        if (!end) break;
        p = end + 1;
    }
    return bits;
}

/* The metrics' names that --metrics lists in bits, for messages ("kid, pr") */
static void metrics_str(char *buf, size_t cap, int bits) {
    buf[0] = 0;
    for (size_t i = 0; i < sizeof metric_names / sizeof metric_names[0]; i++)
        if (bits & metric_names[i].bit)
            snprintf(buf + strlen(buf), cap - strlen(buf), "%s%s", buf[0] ? ", " : "", metric_names[i].name);
}

/* "NAME VALUE" with VALUE printed exactly (round-trips) */
static void print_value(const char *name, double v) {
    char num[40];
    gt_format_exact(num, sizeof num, v, 1, 0);
    printf("%s %s\n", name, num);
}

/* "IS MEAN std STD": the Inception Score of set s (Inception features, kept), labelled
 * "IS" + space ("", "(clean)") */
static void print_is(const set_t *s, const float *fc, int classes, int splits, int threads, const char *space) {
    if (s->st.d != INCEPTION_DIM || (strcmp(s->feat, "inception") != 0 && strcmp(s->feat, "inception-clean") != 0 &&
                                     strcmp(s->feat, "features") != 0))
        die(EXIT_DATA, "%s: the Inception Score needs Inception's %d pool3 features; %s holds %d %s features", s->name,
            INCEPTION_DIM, s->name, s->st.d, s->feat[0] ? s->feat : "unknown");
    double mean, std;
    if (is_compute(s->feats, s->n_feats, INCEPTION_DIM, fc, classes, splits, threads, &mean, &std))
        die(EXIT_DATA, "%s: %s", s->name, gt_errmsg());
    char num[40], num2[40];
    gt_format_exact(num, sizeof num, mean, 1, 0);
    gt_format_exact(num2, sizeof num2, std, 1, 0);
    printf("IS%s %s std %s\n", space, num, num2);
}

int main(int argc, char **argv) {
    cli_init("gan-fid");
    const char *features = NULL, *weights = getenv("GAN_FID_WEIGHTS"), *save_stats_path = NULL,
               *merge_path = NULL, *save_feat_path = NULL, *device = "auto", *labels_arg = NULL, *resize = NULL;
    long long batch = 32, threads = 0, kid_subsets = KID_SUBSETS, kid_size = KID_SUBSET_SIZE;
    long long pr_k = PRDC_K_PR, dc_k = PRDC_K_DC, is_splits = IS_SPLITS;
    unsigned long long seed = 0;
    int kid = 0, quiet = 0, c, metrics = 0, want_is = 0;
    if (weights && !*weights) weights = NULL;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hq", longopts, NULL)) != -1) {
        switch (c) {
        case O_FEATURES: features = optarg; break;
        case O_WEIGHTS: weights = optarg; break;
        case O_SAVE_STATS: save_stats_path = optarg; break;
        case O_MERGE_STATS: merge_path = optarg; break;
        case O_SAVE_FEATURES: save_feat_path = optarg; break;
        case O_KID: kid = 1; break;
        case O_METRICS: metrics |= parse_metrics(optarg); break;
        case O_IS: want_is = 1; break;
        case O_RESIZE: resize = optarg; break;
        case O_IS_SPLITS: is_splits = cli_long("--is-splits", optarg, 1, 100000); break;
        case O_PR_K: pr_k = cli_long("--pr-k", optarg, 1, 1000); break;
        case O_DC_K: dc_k = cli_long("--dc-k", optarg, 1, 1000); break;
        case O_LABELS: labels_arg = optarg; break;
        case O_KID_SUBSETS: kid_subsets = cli_long("--kid-subsets", optarg, 1, 100000); break;
        case O_KID_SIZE: kid_size = cli_long("--kid-subset-size", optarg, 2, 1 << 20); break;
        case O_SEED: seed = (unsigned long long)cli_long("--seed", optarg, 0, INT64_MAX); break;
        case O_BATCH: batch = cli_long("--batch", optarg, 1, 4096); break;
        case O_THREADS: threads = cli_long("--threads", optarg, 0, 1024); break;
        case O_DEVICE: device = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': usage(); break;
        case O_VERSION: cli_version(); break;
        case ':': die_usage("%s needs a value", argv[optind - 1]);
        default: die_usage("unknown option '%s'", argv[optind - 1]);
        }
    }
    int metrics_given = metrics != 0 || want_is;
    if (!metrics) metrics = (kid || !want_is) ? M_FID : 0; /* --is alone: the score alone */
    if (kid) metrics |= M_KID;
    if (want_is) metrics |= M_IS;
    kid = (metrics & M_KID) != 0;
    char mlist[64];
    metrics_str(mlist, sizeof mlist, metrics & M_PAIRWISE);
    int n_in = argc - optind;
    char **in = argv + optind;
    if (save_stats_path && merge_path) die_usage("--save-stats and --merge-stats do not combine");
    if (merge_path) {
        if (n_in < 1) die_usage("--merge-stats needs at least one set");
        if (kid || metrics_given || save_feat_path)
            die_usage("--merge-stats writes statistics only; not with --kid, --metrics or --save-features");
    } else if (save_stats_path || save_feat_path) {
        if (n_in != 1)
            die_usage("%s takes exactly one set (given %d); to pool several use --merge-stats",
                      save_stats_path ? "--save-stats" : "--save-features", n_in);
        if (kid) die_usage("--kid needs two sets");
        if (metrics_given) die_usage("--metrics and --is score sets; not with --save-stats or --save-features");
    } else if (n_in == 1 && metrics == M_IS) {
        /* the Inception Score of one set */
    } else if (n_in != 2) {
        die_usage(n_in < 2 ? "give two sets to compare (images, features or statistics)"
                           : "too many sets (%d): give two, or use --merge-stats", n_in);
    }
    if (labels_arg && (merge_path || save_stats_path || save_feat_path))
        die_usage("--labels scores two sets per class; not with --save-stats, --merge-stats or --save-features");
    int n_stdin = 0;
    for (int i = 0; i < n_in; i++) n_stdin += strcmp(in[i], "-") == 0;
    if (n_stdin > 1) die_usage("only one set can come from stdin");
    if (n_stdin && isatty(STDIN_FILENO)) die_usage("a set would come from the terminal; redirect stdin or name a file");

    backend_t *be = gan_backend(device, (int)threads);
    if (!be) die_usage("%s", gt_errmsg());
    if (gan_backend_note() && !quiet) warnx("%s", gan_backend_note());
    /* the statistics and the distance are computed on the CPU, with its threads */
    int cpu_threads = be->device == DEV_CPU ? be->threads : backend_cpu((int)threads)->threads;
    extractor_t ex;
    memset(&ex, 0, sizeof ex);
    ex.be = be;
    ex.batch = (int)batch;
    ex.quiet = quiet;
    ex.weights = weights;
    features_die(extractor_parse(&ex, features ? features : "inception", "--features"));
    if (resize && strcmp(resize, "bilinear") != 0 && strcmp(resize, "clean") != 0)
        die_usage("--resize '%s': bilinear (pytorch-fid's, the default) or clean (clean-fid's)", resize);
    ex.clean = resize && strcmp(resize, "clean") == 0;
    if (ex.clean && ex.kind != FEAT_INCEPTION)
        die_usage("--resize clean is how Inception resizes images; --features %s takes the images as they are",
                  features);
    float *fc = NULL; /* IS: the final layer, read before the (long) feature extraction */
    int fc_classes = 0;
    if (metrics & M_IS) {
        if (ex.kind != FEAT_INCEPTION)
            die_usage("the Inception Score needs Inception features, not --features %s", features);
        if (!ex.weights)
            die(EXIT_DATA, "the Inception Score needs the Inception weights (their final layer): give --weights FILE "
                           "or set GAN_FID_WEIGHTS");
        if (is_load_fc(ex.weights, INCEPTION_DIM, &fc, &fc_classes)) die_lib(EXIT_DATA);
    }

    out_t feat_out;
    run_opts_t ro = {!(save_feat_path && !save_stats_path), (metrics & M_PAIRWISE) != 0, NULL, quiet};
    if (save_feat_path) {
        out_open(&feat_out, save_feat_path, 1);
        ro.feat_out = &feat_out;
    }

    set_t *sets = gt_xcalloc((size_t)n_in, sizeof *sets);
    for (int i = 0; i < n_in; i++) {
        sets[i].path = strcmp(in[i], "-") == 0 ? NULL : in[i];
        sets[i].name = in_name(in[i]);
    }

    if (merge_path || save_stats_path || save_feat_path) {
        fid_stats_t pooled;
        char feat[NAME_LEN] = "";
        const char *first = NULL; /* the first set's name, features and dimension, for messages */
        char first_feat[NAME_LEN] = "";
        int first_d = 0, have = 0;
        for (int i = 0; i < n_in; i++) {
            set_t *s = &sets[i];
            load_set(s, &ex, &ro);
            if (s->kind == IN_STATS && ro.feat_out)
                die_usage("--save-features: %s holds statistics, not images or features", s->name);
            if (!merge_path) break;
            if (s->st.n == 0)
                die(EXIT_DATA, "%s: statistics without a sample count n (pytorch-fid's hold only mu and sigma) cannot "
                               "be merged",
                    s->name);
            if (!have) {
                if (fid_stats_init(&pooled, s->st.d, 16)) die_lib(EXIT_DATA);
                have = 1;
                first = s->name;
                first_d = s->st.d;
                snprintf(first_feat, NAME_LEN, "%s", s->feat);
            }
            if (s->st.d != first_d)
                die(EXIT_DATA, "%s has %d features but %s has %d: merge statistics of the same features", first,
                    first_d, s->name, s->st.d);
            if (first_feat[0] && s->feat[0] && strcmp(first_feat, s->feat) != 0)
                die(EXIT_DATA, "%s holds %s features but %s holds %s: merge statistics of the same features", first,
                    first_feat, s->name, s->feat);
            if (fid_stats_merge(&pooled, &s->st)) die(EXIT_DATA, "%s: %s", s->name, gt_errmsg());
            if (!feat[0]) snprintf(feat, NAME_LEN, "%s", s->feat);
            fid_stats_free(&s->st); /* one set's statistics at a time */
        }
        if (ro.feat_out) out_commit(ro.feat_out);
        if (merge_path) {
            save_stats(merge_path, &pooled, feat);
            fid_stats_free(&pooled);
        } else if (save_stats_path) {
            save_stats(save_stats_path, &sets[0].st, sets[0].feat);
        }
        for (int i = 0; i < n_in; i++) fid_stats_free(&sets[i].st);
        free(sets);
        extractor_free(&ex);
        return 0;
    }

    if (n_in == 1) { /* --is with one set */
        if (labels_arg) die_usage("--labels scores two sets per class; the Inception Score takes no labels");
        if (sniff(sets[0].path, sets[0].name) == IN_STATS)
            die_usage("the Inception Score needs the images (or Inception features) of %s, not statistics",
                      sets[0].name);
        ro.keep = 1;
        load_set(&sets[0], &ex, &ro);
        print_is(&sets[0], fc, fc_classes, (int)is_splits, cpu_threads, ex.clean ? "(clean)" : "");
        if (fflush(stdout) != 0 || ferror(stdout)) die(EXIT_DATA, "stdout: write failed");
        fid_stats_free(&sets[0].st);
        free(sets[0].feats);
        free(sets);
        free(fc);
        extractor_free(&ex);
        return 0;
    }

    /* the distance between two sets */
    set_t *a = &sets[0], *b = &sets[1];
    char *labels_path[2] = {NULL, NULL};
    if (labels_arg) {
        parse_labels_opt(labels_arg, &labels_path[0], &labels_path[1]);
        for (int i = 0; i < 2; i++)
            if (sniff(sets[i].path, sets[i].name) == IN_STATS)
                die_usage("--labels: %s holds statistics, which carry no labels; give its images or features",
                          sets[i].name);
        for (int i = 0; i < 2; i++) load_labels(&sets[i], labels_path[i]);
    }
    if ((metrics & M_IS) && sniff(b->path, b->name) == IN_STATS)
        die_usage("the Inception Score needs the images (or Inception features) of %s, not statistics", b->name);
    for (int i = 0; i < 2; i++) /* before the (long) feature extraction of the other set */
        if ((metrics & M_PAIRWISE) && sniff(sets[i].path, sets[i].name) == IN_STATS)
            die_usage("%s need%s the features of both sets: %s holds statistics; give images or features",
                      (metrics & M_PAIRWISE) == M_KID ? "--kid" : mlist, (metrics & M_PAIRWISE) == M_KID ? "s" : "",
                      sets[i].name);
    load_set(a, &ex, &ro);
    ro.keep |= (metrics & M_IS) != 0; /* B's features for the score */
    load_set(b, &ex, &ro);
    check_compatible(a, b);
    warn_few(a, quiet);
    warn_few(b, quiet);
    const char *feat = a->feat[0] ? a->feat : b->feat;
    char fd_label[NAME_LEN + 8], kd_label[NAME_LEN + 8];
    labels_of(feat, a->st.d, fd_label, kd_label, sizeof fd_label);
    if (ex.label[0] && strcmp(feat, ex.name) == 0) {
        snprintf(fd_label, sizeof fd_label, "%s", ex.label);
        snprintf(kd_label, sizeof kd_label, "KD%.*s", (int)sizeof kd_label - 3, ex.label + 2);
    }
    if (metrics & M_FID) print_distance(fd_label, "", &a->st, &b->st, quiet);
    if (kid) {
        char num[40], num2[40];
        double km, ks;
        if (fid_kid(a->feats, a->n_feats, b->feats, b->n_feats, a->st.d, (int)kid_subsets, (int)kid_size, seed,
                    cpu_threads, &km, &ks))
            die(EXIT_DATA, "%s", gt_errmsg());
        gt_format_exact(num, sizeof num, km, 1, 0);
        gt_format_exact(num2, sizeof num2, ks, 1, 0);
        printf("%s %s std %s\n", kd_label, num, num2);
    }
    if (metrics & M_IS) print_is(b, fc, fc_classes, (int)is_splits, cpu_threads, ex.clean ? "(clean)" : "");
    if (metrics & (M_PR | M_DC)) {
        /* the feature space as the distance's label says it: FID -> "", FD(pixels) -> "(pixels)" */
        const char *space = fd_label + (strncmp(fd_label, "FID", 3) == 0 ? 3 : 2);
        prdc_t q;
        if (prdc_compute(a->feats, a->n_feats, b->feats, b->n_feats, a->st.d, metrics & M_PR ? (int)pr_k : 0,
                         metrics & M_DC ? (int)dc_k : 0, 0, cpu_threads, &q))
            die(EXIT_DATA, "%s", gt_errmsg());
        char name[NAME_LEN + 24];
        if (metrics & M_PR) {
            snprintf(name, sizeof name, "precision%s", space);
            print_value(name, q.precision);
            snprintf(name, sizeof name, "recall%s", space);
            print_value(name, q.recall);
        }
        if (metrics & M_DC) {
            snprintf(name, sizeof name, "density%s", space);
            print_value(name, q.density);
            snprintf(name, sizeof name, "coverage%s", space);
            print_value(name, q.coverage);
        }
    }
    if (labels_arg && (metrics & M_FID)) print_per_class(a, b, fd_label, quiet);
    if (labels_arg && kid)
        print_per_class_kid(a, b, kd_label, (int)kid_subsets, (int)kid_size, seed, cpu_threads, quiet);
    if (fflush(stdout) != 0 || ferror(stdout)) die(EXIT_DATA, "stdout: write failed");
    for (int i = 0; i < n_in; i++) {
        fid_stats_free(&sets[i].st);
        fid_class_stats_free(&sets[i].cls);
        free(sets[i].feats);
        free(sets[i].labels);
    }
    free(fc);
    free(labels_path[0]);
    free(labels_path[1]);
    free(sets);
    extractor_free(&ex);
    return 0;
}
