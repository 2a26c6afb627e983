/* gan-sample: generate images from a GAN checkpoint (manual: cmd/gan-sample.md).
 *
 * The options become the settings of a sampler (lib/gan/sampler.h), which computes the images:
 * latents are a pure function of (seed, sample index) (Philox stream PHILOX_STREAM_SAMPLE),
 * or read with --z-in. This program checks the options, then writes the images (and latents,
 * classes) batch by batch as the sampler makes them, so any N runs in bounded memory. */
#define _DEFAULT_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/npy.h"
#include "lib/base/cli.h"
#include "lib/base/common.h"
#include "lib/gan/device.h"
#include "lib/gan/inspect.h"
#include "lib/gan/model.h"
#include "lib/gan/sampler.h"

static void usage(void) {
    printf("usage: gan-sample [-n N] [--seed S] [options] [CHECKPOINT | -i CHECKPOINT | < CHECKPOINT]\n"
           "                  [-o OUT.npy | > OUT.npy]\n"
           "Generate N images (N x C x H x W float32 in [-1, 1], .npy) from a checkpoint's generator.\n\n"
           "  -n N             number of images (default 64; with --z-in: the latents' count)\n"
           "  --seed S         seed of the latents (default 0): latent i is N(0,1) from Philox\n"
           "                   (S, PHILOX_STREAM_SAMPLE, 0, i*z_dim+k)\n"
           "  --z-in Z.npy     use these latents (N x z_dim float32) instead of drawing them\n"
           "  --z-out Z.npy    also write the latents used (N x z_dim float32)\n"
           "  --labels-out L.npy  class-conditional models: also write the class of every image\n"
           "                   written (N int64, in order; gan-fid --labels reads it)\n"
           "  --interp K       K evenly spaced points from each latent towards the next (linear),\n"
           "                   then the last latent: (M-1)*K+1 images from M latents\n"
           "  --truncate T     redraw latent components with |z| > T (deterministic)\n"
           "  --best-of K      draw K*N latents and keep the N that D scores highest, in draw order\n"
           "  --no-ema         use G's trained weights even when the checkpoint has an EMA copy\n"
           "  --class K        class-conditional models: every image of class K (default: image i is\n"
           "                   of class i mod the number of classes)\n"
           "  --classes LIST   image i is of the i-th class of LIST, e.g. 3,3,7 (N = its length)\n"
           "  --per-class N    N images of every class, in class order; image k*N + j uses latent j,\n"
           "                   so each column shares its latent (tensor2png --cols N: a row per class)\n"
           "  --batch B        images per batch (default 256)\n"
           "  --activations DIR  also write the output of every layer of G (inside residual blocks\n"
           "                   too) for the images written: DIR/G.NAME.npy by the checkpoint's layer\n"
           "                   names (G.input.npy the latents), and DIR/manifest.tsv; DIR is created\n"
           "                   and must be new or empty\n"
           "  --shard I/N      write only slice I (0..N-1) of N: the images a run without --shard\n"
           "                   writes, cut at batch boundaries (same --batch); the N slices\n"
           "                   concatenated are that run's images, byte for byte\n"
           "  --threads N      CPU threads (0 = all cores, default)\n"
           "  --device DEV     cpu, cuda or auto (default auto)\n"
           "  -o FILE          write to FILE (atomically) instead of stdout\n"
           "  -h, --help       this help;  --version  print the version\n\n"
           "G runs in eval mode (BatchNorm uses its running statistics).\n\n"
           "example:\n"
           "  gan-sample -n 64 --seed 7 < m5.st | tensor2png --cols 8 > grid.png\n"
           "  gan-sample --per-class 10 --seed 7 < c5.st | tensor2png --cols 10 > classes.png\n"
           "  gan-sample -n 100000 --shard 3/8 < m5.st > fake-3.npy\n"
           "  gan-sample -n 1000 --labels-out fake-labels.npy < c5.st > fake.npy\n");
    exit(0);
}

enum { O_SEED = 256, O_ZIN, O_ZOUT, O_INTERP, O_TRUNC, O_BEST, O_NOEMA, O_BATCH, O_SHARD, O_THREADS, O_DEVICE,
       O_VERSION, O_CLASS, O_CLASSES, O_PERCLASS, O_LABELS_OUT, O_ACTS };

static const struct option longopts[] = {
    {"seed", required_argument, 0, O_SEED},     {"z-in", required_argument, 0, O_ZIN},
    {"z-out", required_argument, 0, O_ZOUT},    {"interp", required_argument, 0, O_INTERP},
    {"truncate", required_argument, 0, O_TRUNC}, {"best-of", required_argument, 0, O_BEST},
    {"no-ema", no_argument, 0, O_NOEMA},        {"batch", required_argument, 0, O_BATCH},
    {"shard", required_argument, 0, O_SHARD},
    {"threads", required_argument, 0, O_THREADS}, {"device", required_argument, 0, O_DEVICE},
    {"help", no_argument, 0, 'h'},              {"version", no_argument, 0, O_VERSION},
    {"class", required_argument, 0, O_CLASS},   {"classes", required_argument, 0, O_CLASSES},
    {"per-class", required_argument, 0, O_PERCLASS}, {"labels-out", required_argument, 0, O_LABELS_OUT},
    {"activations", required_argument, 0, O_ACTS}, {0, 0, 0, 0}};

/* "3,3,7" -> a new array of *n class numbers (each 0..1000000), or NULL with a message. */
static int64_t *parse_class_list(const char *s, int64_t *n) {
    int64_t cap = 16, k = 0;
    int64_t *v = gt_xmalloc(sizeof *v * (size_t)cap);
    const char *p = s;
    for (;;) {
        long long x = 0;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            x = x * 10 + (*p++ - '0');
            if (++digits > 7) break;
        }
        if (!digits || digits > 7 || (*p && *p != ',')) {
            free(v);
            gt_err("--classes '%s': want class numbers separated by commas, e.g. 3,3,7", s);
            return NULL;
        }
        if (k == cap) v = gt_xrealloc(v, sizeof *v * (size_t)(cap *= 2));
        v[k++] = x;
        if (!*p) break;
        p++;
    }
    *n = k;
    return v;
}

/* --shard I/N: I in [0, N), N >= 1; exits 2 with a message otherwise. */
static void parse_shard(const char *arg, long long *index, long long *count) {
    const char *slash = strchr(arg, '/');
    char head[32];
    if (!slash || (size_t)(slash - arg) >= sizeof head)
        die_usage("--shard: '%s' is not I/N (slice I of N, counted from 0, e.g. 0/4)", arg);
    memcpy(head, arg, (size_t)(slash - arg));
    head[slash - arg] = 0;
    *count = cli_long("--shard's N", slash + 1, 1, 1LL << 20);
    *index = cli_long("--shard's I", head, 0, 1LL << 20);
    if (*index >= *count) die_usage("--shard %s: I must be in 0..%lld (counted from 0)", arg, *count - 1);
}

/* Images [*lo, *hi) of total are shard `index` of `count`: the batches of the unsharded run
 * (batch B) dealt out as contiguous runs, floor(nb i / N) .. floor(nb (i+1) / N) of the nb
 * batches. Cutting at batch boundaries keeps every batch the same as in the unsharded run, so
 * the images are the same bits (a GEMM's rounding may depend on its row count). */
static int64_t floor_frac(int64_t nb, int64_t i, int64_t count) { /* floor(nb i / count), count <= 2^20 */
    return nb / count * i + nb % count * i / count;
}
static void shard_range(int64_t total, int B, long long index, long long count, int64_t *lo, int64_t *hi) {
    int64_t nb = (total + B - 1) / B;
    int64_t b0 = floor_frac(nb, index, count), b1 = floor_frac(nb, index + 1, count);
    *lo = b0 * B < total ? b0 * B : total;
    *hi = b1 * B < total ? b1 * B : total;
}

int main(int argc, char **argv) {
    cli_init("gan-sample");
    const char *in = NULL, *out = NULL, *zin_path = NULL, *zout_path = NULL, *labels_path = NULL, *device = "auto",
               *acts_dir = NULL;
    long long n = -1, interp = 0, best = 1, batch = 256, threads = 0, shard_i = 0, shard_n = 1;
    unsigned long long seed = 0;
    double trunc = 0;
    long long cls = -1, per_class = 0;
    const char *classes_s = NULL;
    int no_ema = 0, c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hn:i:o:", longopts, NULL)) != -1) {
        switch (c) {
        case 'n': n = cli_long("-n", optarg, 1, 1LL << 40); break;
        case O_SEED: seed = (unsigned long long)cli_long("--seed", optarg, 0, INT64_MAX); break;
        case O_ZIN: zin_path = optarg; break;
        case O_ZOUT: zout_path = optarg; break;
        case O_LABELS_OUT: labels_path = optarg; break;
        case O_ACTS: acts_dir = optarg; break;
        case O_INTERP: interp = cli_long("--interp", optarg, 1, 1 << 20); break;
        case O_TRUNC: trunc = cli_double("--truncate", optarg, 0.05, 1e6); break;
        case O_BEST: best = cli_long("--best-of", optarg, 1, 1 << 16); break;
        case O_NOEMA: no_ema = 1; break;
        case O_CLASS: cls = cli_long("--class", optarg, 0, 1000000); break;
        case O_CLASSES: classes_s = optarg; break;
        case O_PERCLASS: per_class = cli_long("--per-class", optarg, 1, 1 << 24); break;
        case O_BATCH: batch = cli_long("--batch", optarg, 1, 65536); break;
        case O_SHARD: parse_shard(optarg, &shard_i, &shard_n); break;
        case O_THREADS: threads = cli_long("--threads", optarg, 0, 1024); break;
        case O_DEVICE: device = optarg; break;
        case 'i': in = optarg; break;
        case 'o': out = optarg; break;
        case 'h': usage(); break;
        case O_VERSION: cli_version(); break;
        case ':': die_usage("%s needs a value", argv[optind - 1]);
        default: die_usage("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) {
        if (in || optind + 1 < argc) die_usage("unexpected argument '%s'", argv[optind + (in ? 0 : 1)]);
        in = argv[optind];
    }
    /* one stream cannot carry two .npy files */
    int to_stdout = (!out || strcmp(out, "-") == 0) + (zout_path && strcmp(zout_path, "-") == 0) +
                    (labels_path && strcmp(labels_path, "-") == 0);
    if (to_stdout > 1)
        die_usage("the images, --z-out and --labels-out would share stdout; give all but one of them a file");
    if (zin_path && (trunc > 0 || best > 1)) die_usage("--truncate and --best-of draw latents; not with --z-in");
    if ((cls >= 0) + !!classes_s + !!per_class > 1) die_usage("give one of --class, --classes, --per-class");
    int64_t n_list = 0, *list = NULL;
    if (classes_s && !(list = parse_class_list(classes_s, &n_list))) die_usage("%s", gt_errmsg());
    if (list && n > 0 && n != n_list) die_usage("-n %lld but --classes lists %lld classes", n, (long long)n_list);
    if (per_class && n > 0) die_usage("give -n or --per-class, not both");
    if ((list || per_class) && interp) die_usage("--interp works with one class (--class K)");
    if ((list || per_class) && best > 1) die_usage("--best-of works with one class (--class K)");
    if (shard_n > 1 && best > 1)
        die_usage("--best-of ranks all K*N draws together, so a shard cannot pick its own; not with --shard");
    backend_t *be = gan_backend(device, (int)threads);
    if (!be) die_usage("%s", gt_errmsg());
    if (gan_backend_note()) warnx("%s", gan_backend_note());

    out_t o, oz, ol;
    out_open(&o, out, 1);
    inspect_dir_t acts;
    if (acts_dir) {
        int bad = inspect_dir_open(&acts, acts_dir);
        if (bad > 0) die_usage("%s", gt_errmsg());
        if (bad) die_lib(EXIT_DATA);
    }

    if ((!in || strcmp(in, "-") == 0) && isatty(STDIN_FILENO))
        die_usage("the checkpoint would come from the terminal; give -i FILE or redirect stdin");
    gan_model_t m;
    if (model_load(&m, in, be, (int)batch)) die_lib(EXIT_DATA);
    int zd = m.z_dim, K = m.classes;
    if (!K && labels_path)
        die_usage("the model is not class-conditional: its images have no classes for --labels-out");
    if (!K && (cls >= 0 || list || per_class))
        die_usage("the model is not class-conditional: --class, --classes and --per-class need one made with "
                  "gan-init --classes K");
    if (K && cls >= K) die_usage("--class %lld is outside 0..%d (the model has %d classes)", cls, K - 1, K);
    for (int64_t i = 0; i < n_list; i++)
        if (list[i] >= K)
            die_usage("--classes: class %lld is outside 0..%d (the model has %d classes)", (long long)list[i], K - 1,
                      K);
    if (K && interp && cls < 0) die_usage("--interp on a class-conditional model needs --class K");
    if (list) n = n_list;
    if (per_class) n = per_class;

    sampler_conf_t sc;
    sampler_conf_default(&sc);
    tensor_t zt = {0};
    if (zin_path) {
        if (npy_load(zin_path, &zt, 1)) die_lib(EXIT_DATA);
        if (zt.dtype != DT_F32 || zt.ndim != 2 || zt.shape[1] != zd) {
            char sh[64];
            tensor_shape_str(&zt, sh, sizeof sh);
            die(EXIT_DATA, "%s: latents are %s %s, expected float32 N x %d", zin_path, dtype_name(zt.dtype), sh, zd);
        }
        if (zt.shape[0] < 1) die(EXIT_DATA, "%s: no latents", zin_path);
        if (n > 0 && n != zt.shape[0])
            die_usage("-n %lld but %s holds %lld latents", n, zin_path, (long long)zt.shape[0]);
        sc.n = zt.shape[0];
        sc.zin = zt.data;
    } else if (n > 0) {
        sc.n = n;
    }
    if (interp && sc.n < 2) die_usage("--interp needs at least 2 latents");
    sc.seed = seed;
    sc.trunc = trunc;
    sc.interp = (int)interp;
    sc.best_of = (int)best;
    sc.no_ema = no_ema;
    sc.cls = cls;
    sc.classes = list;
    sc.per_class = per_class > 0;
    sc.batch = (int)batch;
    /* G in eval mode, with the EMA weights unless --no-ema; --best-of scores its draws now */
    sampler_t smp;
    if (sampler_init(&smp, &m, &sc)) die_lib(EXIT_DATA);
    tensor_free(&zt);

    int B = (int)batch;
    int64_t lo, hi;
    shard_range(smp.total, B, shard_i, shard_n, &lo, &hi);
    int64_t shape[4] = {hi - lo, m.shape.c, m.shape.h, m.shape.w};
    if (npy_write_header(o.f, DT_F32, 4, shape)) die(EXIT_DATA, "%s: %s", out ? out : "stdout", gt_errmsg());
    if (zout_path) {
        out_open(&oz, zout_path, 1);
        int64_t zs[2] = {hi - lo, zd};
        if (npy_write_header(oz.f, DT_F32, 2, zs)) die(EXIT_DATA, "%s: %s", zout_path, gt_errmsg());
    }
    if (labels_path) {
        out_open(&ol, labels_path, 1);
        int64_t ls[1] = {hi - lo};
        if (npy_write_header(ol.f, DT_I64, 1, ls)) die(EXIT_DATA, "%s: %s", labels_path, gt_errmsg());
    }
    size_t img = (size_t)shape3_size(m.shape);
    float *xh = gt_xmalloc(sizeof(float) * img * (size_t)B), *zh = gt_xmalloc(sizeof(float) * (size_t)zd * (size_t)B);
    int64_t *lab = gt_xmalloc(sizeof(int64_t) * (size_t)B);
    if (sampler_seek(&smp, lo)) die_lib(EXIT_DATA);
    inspect_sample_t watch;
    if (acts_dir) inspect_sample_start(&watch, &acts, &m.G, hi - lo);
    for (int64_t s0 = lo; s0 < hi; s0 += B) {
        int b = (int)(hi - s0 < B ? hi - s0 : B);
        if (sampler_next(&smp, b, xh, zout_path ? zh : NULL, labels_path ? lab : NULL)) die_lib(EXIT_DATA);
        if (labels_path) out_write(&ol, lab, sizeof(int64_t) * (size_t)b);
        out_write(&o, xh, sizeof(float) * img * (size_t)b);
        if (zout_path) out_write(&oz, zh, sizeof(float) * (size_t)zd * (size_t)b);
    }
    if (acts_dir) {
        inspect_sample_stop(&watch, &m.G);
        inspect_dir_close(&acts);
    }
    if (zout_path) out_commit(&oz);
    if (labels_path) out_commit(&ol);
    out_commit(&o);
    sampler_free(&smp);
    free(list);
    free(lab);
    free(xh);
    free(zh);
    model_free(&m);
    return 0;
}
