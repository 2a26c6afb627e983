/* gan-sample: generate images from a GAN checkpoint (manual: cmd/gan-sample.md).
 *
 * Latents are a pure function of (seed, sample index) (Philox stream PHILOX_STREAM_SAMPLE),
 * or read with --z-in; images are computed and written batch by batch, so any N runs in
 * bounded memory. */
#define _DEFAULT_SOURCE
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../formats/npy.h"
#include "../lib/cli.h"
#include "../lib/common.h"
#include "../lib/model.h"
#include "../lib/philox.h"

static void usage(void) {
    printf("usage: gan-sample [-n N] [--seed S] [options] [CHECKPOINT | -i CHECKPOINT | < CHECKPOINT]\n"
           "                  [-o OUT.npy | > OUT.npy]\n"
           "Generate N images (N x C x H x W float32 in [-1, 1], .npy) from a checkpoint's generator.\n\n"
           "  -n N             number of images (default 64; with --z-in: the latents' count)\n"
           "  --seed S         seed of the latents (default 0): latent i is N(0,1) from Philox\n"
           "                   (S, PHILOX_STREAM_SAMPLE, 0, i*z_dim+k)\n"
           "  --z-in Z.npy     use these latents (N x z_dim float32) instead of drawing them\n"
           "  --z-out Z.npy    also write the latents used (N x z_dim float32)\n"
           "  --interp K       K evenly spaced points from each latent towards the next (linear),\n"
           "                   then the last latent: (M-1)*K+1 images from M latents\n"
           "  --truncate T     redraw latent components with |z| > T (deterministic)\n"
           "  --best-of K      draw K*N latents and keep the N that D scores highest, in draw order\n"
           "  --no-ema         use G's trained weights even when the checkpoint has an EMA copy\n"
           "  --batch B        images per batch (default 256)\n"
           "  --threads N      CPU threads (0 = all cores, default)\n"
           "  --device DEV     cpu, cuda or auto (default auto)\n"
           "  -o FILE          write to FILE (atomically) instead of stdout\n"
           "  -h, --help       this help;  --version  print the version\n\n"
           "G runs in eval mode (BatchNorm uses its running statistics).\n\n"
           "example:\n"
           "  gan-sample -n 64 --seed 7 < m5.st | tensor2png --cols 8 > grid.png\n");
    exit(0);
}

enum { O_SEED = 256, O_ZIN, O_ZOUT, O_INTERP, O_TRUNC, O_BEST, O_NOEMA, O_BATCH, O_THREADS, O_DEVICE, O_VERSION };

static const struct option longopts[] = {
    {"seed", required_argument, 0, O_SEED},     {"z-in", required_argument, 0, O_ZIN},
    {"z-out", required_argument, 0, O_ZOUT},    {"interp", required_argument, 0, O_INTERP},
    {"truncate", required_argument, 0, O_TRUNC}, {"best-of", required_argument, 0, O_BEST},
    {"no-ema", no_argument, 0, O_NOEMA},        {"batch", required_argument, 0, O_BATCH},
    {"threads", required_argument, 0, O_THREADS}, {"device", required_argument, 0, O_DEVICE},
    {"help", no_argument, 0, 'h'},              {"version", no_argument, 0, O_VERSION},
    {0, 0, 0, 0}};

/* Where latents come from. */
typedef struct {
    int zd;
    uint64_t seed;
    double trunc;         /* 0: off */
    const float *zin;     /* (M, zd) or NULL: drawn */
    const int64_t *sel;   /* best-of selection: base latent j is draw sel[j]; NULL: j */
    int interp;           /* 0: off */
    int64_t m;            /* base latents */
} latents_t;

/* Draw number i (before any selection): Philox normals, components beyond the truncation
 * redrawn at Philox steps 1, 2, ... until they fall inside. */
static void draw(const latents_t *L, int64_t i, float *z) {
    for (int k = 0; k < L->zd; k++) {
        uint64_t idx = (uint64_t)i * (uint64_t)L->zd + (uint64_t)k;
        float v = philox_normal(L->seed, PHILOX_STREAM_SAMPLE, 0, idx);
        for (uint32_t r = 1; L->trunc > 0 && fabs(v) > L->trunc && r < (1u << 24); r++)
            v = philox_normal(L->seed, PHILOX_STREAM_SAMPLE, r, idx);
        if (L->trunc > 0 && fabs(v) > L->trunc) v = v > 0 ? (float)L->trunc : (float)-L->trunc;
        z[k] = v;
    }
}

static void base(const latents_t *L, int64_t j, float *z) {
    if (L->zin) memcpy(z, L->zin + (size_t)j * (size_t)L->zd, sizeof(float) * (size_t)L->zd);
    else draw(L, L->sel ? L->sel[j] : j, z);
}

/* Latent of output image i. */
static void latent(const latents_t *L, int64_t i, float *z, float *tmp) {
    if (!L->interp) {
        base(L, i, z);
        return;
    }
    int64_t seg = i / L->interp, j = i % L->interp;
    base(L, seg, z);
    if (seg == L->m - 1 || j == 0) return;
    base(L, seg + 1, tmp);
    double t = (double)j / L->interp;
    for (int k = 0; k < L->zd; k++) z[k] = (float)((1 - t) * z[k] + t * tmp[k]);
}

/* Scores for best-of: sort indices by score descending, ties by index. */
static const float *g_scores;
static int by_score(const void *pa, const void *pb) {
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    if (g_scores[a] != g_scores[b]) return g_scores[a] > g_scores[b] ? -1 : 1;
    return a < b ? -1 : a > b;
}
static int by_index(const void *pa, const void *pb) {
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    return a < b ? -1 : a > b;
}

int main(int argc, char **argv) {
    cli_init("gan-sample");
    const char *in = NULL, *out = NULL, *zin_path = NULL, *zout_path = NULL, *device = "auto";
    long long n = -1, interp = 0, best = 1, batch = 256, threads = 0;
    unsigned long long seed = 0;
    double trunc = 0;
    int no_ema = 0, c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hn:i:o:", longopts, NULL)) != -1) {
        switch (c) {
        case 'n': n = cli_long("-n", optarg, 1, 1LL << 40); break;
        case O_SEED: seed = (unsigned long long)cli_long("--seed", optarg, 0, INT64_MAX); break;
        case O_ZIN: zin_path = optarg; break;
        case O_ZOUT: zout_path = optarg; break;
        case O_INTERP: interp = cli_long("--interp", optarg, 1, 1 << 20); break;
        case O_TRUNC: trunc = cli_double("--truncate", optarg, 0.05, 1e6); break;
        case O_BEST: best = cli_long("--best-of", optarg, 1, 1 << 16); break;
        case O_NOEMA: no_ema = 1; break;
        case O_BATCH: batch = cli_long("--batch", optarg, 1, 65536); break;
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
    if (zin_path && (trunc > 0 || best > 1)) die_usage("--truncate and --best-of draw latents; not with --z-in");
    backend_t *be = gan_backend(device, (int)threads);
    if (!be) die_usage("%s", gt_errmsg());

    out_t o, oz;
    out_open(&o, out, 1);

    if ((!in || strcmp(in, "-") == 0) && isatty(STDIN_FILENO))
        die_usage("the checkpoint would come from the terminal; give -i FILE or redirect stdin");
    gan_model_t m;
    if (model_load(&m, in, be, (int)batch)) die_lib(EXIT_DATA);
    int zd = m.z_dim;

    latents_t L = {zd, seed, trunc, NULL, NULL, (int)interp, 0};
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
        L.zin = zt.data;
        L.m = zt.shape[0];
    } else {
        L.m = n > 0 ? n : 64;
    }
    int64_t total = L.m;
    if (interp) {
        if (L.m < 2) die_usage("--interp needs at least 2 latents");
        total = (L.m - 1) * interp + 1;
    }

    /* G in eval mode, with the EMA weights unless --no-ema */
    if (m.G_ema && !no_ema) memcpy(m.G.params, m.G_ema, sizeof(float) * m.G.n_params);
    int B = (int)batch;
    size_t img = (size_t)shape3_size(m.shape);
    float *z = gt_aligned_alloc(sizeof(float) * (size_t)B * (size_t)zd);
    float *tmp = gt_xmalloc(sizeof(float) * (size_t)zd);
    nn_ctx_t cg = net_ctx(&m.G, 0, m.seed, 0, 0);

    int64_t *sel = NULL;
    if (best > 1) {
        int64_t draws = L.m * best;
        float *scores = gt_xmalloc(sizeof(float) * (size_t)draws);
        nn_ctx_t cd = net_ctx(&m.D, 0, m.seed, 0, 0);
        for (int64_t s0 = 0; s0 < draws; s0 += B) {
            int b = (int)(draws - s0 < B ? draws - s0 : B);
            for (int i = 0; i < b; i++) draw(&L, s0 + i, z + (size_t)i * (size_t)zd);
            const float *x = net_forward(&m.G, &cg, z, b);
            const float *y = net_forward(&m.D, &cd, x, b);
            memcpy(scores + s0, y, sizeof(float) * (size_t)b);
        }
        int64_t *idx = gt_xmalloc(sizeof *idx * (size_t)draws);
        for (int64_t i = 0; i < draws; i++) idx[i] = i;
        g_scores = scores;
        qsort(idx, (size_t)draws, sizeof *idx, by_score);
        qsort(idx, (size_t)L.m, sizeof *idx, by_index);
        sel = idx;
        L.sel = sel;
        free(scores);
    }

    int64_t shape[4] = {total, m.shape.c, m.shape.h, m.shape.w};
    if (npy_write_header(o.f, DT_F32, 4, shape)) die(EXIT_DATA, "%s: %s", out ? out : "stdout", gt_errmsg());
    if (zout_path) {
        out_open(&oz, zout_path, 1);
        int64_t zs[2] = {total, zd};
        if (npy_write_header(oz.f, DT_F32, 2, zs)) die(EXIT_DATA, "%s: %s", zout_path, gt_errmsg());
    }
    for (int64_t s0 = 0; s0 < total; s0 += B) {
        int b = (int)(total - s0 < B ? total - s0 : B);
        for (int i = 0; i < b; i++) latent(&L, s0 + i, z + (size_t)i * (size_t)zd, tmp);
        const float *x = net_forward(&m.G, &cg, z, b);
        out_write(&o, x, sizeof(float) * img * (size_t)b);
        if (zout_path) out_write(&oz, z, sizeof(float) * (size_t)zd * (size_t)b);
    }
    if (zout_path) out_commit(&oz);
    out_commit(&o);
    free(sel);
    free(tmp);
    gt_aligned_free(z);
    tensor_free(&zt);
    model_free(&m);
    return 0;
}
