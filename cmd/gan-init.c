/* gan-init: write a new GAN model checkpoint (manual: cmd/gan-init.md). */
#define _DEFAULT_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/npy.h"
#include "lib/base/cli.h"
#include "lib/base/common.h"
#include "lib/gan/device.h"
#include "lib/gan/model.h"
#include "lib/gan/presets.h"

static void usage(void) {
    printf("usage: gan-init (--arch PRESET | --G SPEC --D SPEC) (--like DATA.npy | --shape CxHxW)\n"
           "                [options] [-o FILE]\n"
           "Write a new GAN model checkpoint (safetensors) to stdout or FILE.\n\n"
           "  --arch PRESET      mlp, dcgan, dcgan32, wgan-gp, sngan, or the class-conditional cmlp,\n"
           "                     cdcgan, csngan. sngan: SNGAN's ResNets (Miyato et al. 2018) as the PyTorch\n"
           "                     Mimicry library's 32x32 SNGAN builds them, for H/4 x W/4 bottoms\n"
           "                     (28x28: G 7->14->28 with two up blocks instead of three from 4x4; D down\n"
           "                     28->14->7, then two plain blocks), widths a quarter of the reference's\n"
           "                     (G 64, D 32: a 2-core CPU), torch's default init; hinge loss, adam\n"
           "                     lr=2e-4,b1=0,b2=0.9, 5 critic steps. csngan: cbn in G's blocks, proj in D\n"
           "  --classes K        a class-conditional model of K classes (the presets cmlp, cdcgan, csngan; with\n"
           "                     --G/--D, the K of their embed, onehot, cbn and proj layers)\n"
           "  --labels FILE.npy  take K from these labels (int64 or uint8): the largest label + 1\n"
           "  --G SPEC, --D SPEC generator and discriminator in the spec language (lib/nn/spec.md)\n"
           "  --like DATA.npy    fit the networks to this data (reads only its header: N x C x H x W)\n"
           "  --shape CxHxW      fit the networks to images of this shape\n"
           "  --z DIM            latent size (default 100)\n"
           "  --loss KIND        bce, ns, wgan, wgan-gp, hinge, lsgan (default ns; wgan-gp for --arch wgan-gp;\n"
           "                     hinge for --arch sngan, csngan)\n"
           "  --opt-g OPT        G's optimizer (default adam:lr=2e-4,b1=0.5,b2=0.999;\n"
           "                     wgan: rmsprop:lr=5e-5; wgan-gp: adam:lr=1e-4,b1=0,b2=0.9;\n"
           "                     --arch sngan, csngan: adam:lr=2e-4,b1=0,b2=0.9)\n"
           "  --opt-d OPT        D's optimizer (same defaults)\n"
           "  --lr-schedule SPEC learning-rate schedule of both optimizers: constant (default), linear:N,\n"
           "                     cosine:N, step:EVERY:GAMMA (torch's LinearLR to 0, CosineAnnealingLR, StepLR)\n"
           "  --lr-schedule-g SPEC, --lr-schedule-d SPEC  the same for G's or D's alone\n"
                      "  --n-critic K       D steps per G step, 1..5 (default 1; 5 for wgan, wgan-gp, sngan, csngan)\n"
           "  --gp LAMBDA        gradient-penalty weight for wgan-gp (default 10)\n"
           "  --clip C           clip D's weights to [-C, C] after each D step (default 0.01 for wgan, else 0)\n"
           "  --label-smooth A   one-sided label smoothing: D's real target is 1-A (bce, ns; default 0)\n"
           "  --label-smooth-fake E  two-sided smoothing: D's fake target is E (bce, ns; default 0)\n"
           "  --label-flip P     flip each of D's targets (real <-> fake) with chance P (bce, ns; default 0)\n");
    printf("  --bn-sync MODE     data-parallel BatchNorm statistics: synced (the global batch's, default)\n"
           "                     or local (each process's own slice, as torch DDP without SyncBatchNorm)\n"
           "  --r1 GAMMA         R1 penalty: add GAMMA/2 * mean |grad_x D(x)|^2 on real images to D's loss\n"
           "                     (any loss; 0 = off, default)\n"
           "  --r2 GAMMA         R2 penalty: the same on the fake images (0 = off, default)\n"
           "  --reg-every K      lazy regularization: R1/R2 only every K-th D update, weighted by K\n"
           "                     (default 1)\n"
           "  --ema DECAY        keep an EMA of G's weights for sampling (0 = off, default)\n"
           "  --augment POLICY   DiffAugment before D, on reals and fakes: color,translation,cutout or\n"
           "                     any of them in that order, or none (default)\n"
           "  --instance-noise SIGMA  Gaussian noise of std SIGMA on every image D sees, before --augment\n"
           "                     (0 = off, default)\n"
           "  --instance-noise-steps N  anneal it linearly to 0 at step N (0 = not annealed, default)\n"
           "  --init MODE        dcgan or torch (default: the preset's; torch for --G/--D)\n"
           "  --seed S           random seed (default 0)\n"
           "  --batch B          batch size stored for gan-step (default 64)\n"
           "  --threads N        CPU threads (0 = all cores, default)\n"
           "  --device DEV       cpu, cuda or auto (default auto)\n"
           "  -o FILE            write to FILE (atomically) instead of stdout\n"
           "  -h, --help         this help;  --version  print the version\n\n"
           "example:\n"
           "  gan-init --arch dcgan --like train.npy --seed 1 -o m0.st\n"
           "  gan-init --arch cdcgan --like train.npy --labels labels.npy --seed 1 -o c0.st\n");
    exit(0);
}

enum { O_ARCH = 256, O_G, O_D, O_LIKE, O_SHAPE, O_Z, O_LOSS, O_INIT, O_SEED, O_THREADS, O_DEVICE, O_VERSION,
       O_CLASSES, O_LABELS };

static const struct option longopts[] = {
    {"arch", required_argument, 0, O_ARCH},       {"G", required_argument, 0, O_G},
    {"D", required_argument, 0, O_D},             {"like", required_argument, 0, O_LIKE},
    {"shape", required_argument, 0, O_SHAPE},     {"z", required_argument, 0, O_Z},
    {"loss", required_argument, 0, O_LOSS},       {"init", required_argument, 0, O_INIT},
    {"seed", required_argument, 0, O_SEED},       {"threads", required_argument, 0, O_THREADS},
    {"device", required_argument, 0, O_DEVICE},   {"help", no_argument, 0, 'h'},
    {"version", no_argument, 0, O_VERSION},       {"classes", required_argument, 0, O_CLASSES},
    {"labels", required_argument, 0, O_LABELS},   GAN_SETTINGS_LONGOPTS,
    {0, 0, 0, 0}};

int main(int argc, char **argv) {
    cli_init("gan-init");
    const char *arch = NULL, *gs = NULL, *ds = NULL, *like = NULL, *shape_s = NULL, *loss_s = NULL;
    const char *init_s = NULL, *device = "auto", *out = NULL, *labels_path = NULL;
    long long classes = 0, z = 100, threads = 0;
    unsigned long long seed = 0;
    gan_overrides_t ov = {0};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":ho:", longopts, NULL)) != -1) {
        if (gan_overrides_option(&ov, c, optarg)) continue;
        switch (c) {
        case O_ARCH: arch = optarg; break;
        case O_CLASSES: classes = cli_long("--classes", optarg, 1, 1000000); break;
        case O_LABELS: labels_path = optarg; break;
        case O_G: gs = optarg; break;
        case O_D: ds = optarg; break;
        case O_LIKE: like = optarg; break;
        case O_SHAPE: shape_s = optarg; break;
        case O_Z: z = cli_long("--z", optarg, 1, 1 << 16); break;
        case O_LOSS: loss_s = optarg; break;
        case O_INIT: init_s = optarg; break;
        case O_SEED: seed = (unsigned long long)cli_long("--seed", optarg, 0, INT64_MAX); break;
        case O_THREADS: threads = cli_long("--threads", optarg, 0, 1024); break;
        case O_DEVICE: device = optarg; break;
        case 'o': out = optarg; break;
        case 'h': usage(); break;
        case O_VERSION: cli_version(); break;
        case ':': die_usage("%s needs a value", argv[optind - 1]);
        default: die_usage("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) die_usage("unexpected argument '%s'", argv[optind]);
    if (arch && (gs || ds)) die_usage("give --arch or --G/--D, not both");
    if (!arch && (!gs || !ds)) die_usage("give --arch PRESET, or both --G SPEC and --D SPEC");
    if (like && shape_s) die_usage("give --like or --shape, not both");
    if (!like && !shape_s) die_usage("give --like DATA.npy or --shape CxHxW");

    shape3_t shape;
    int64_t like_n = -1; /* the --like data's image count: --labels must give one label each */
    if (shape_s) {
        if (shape3_parse(shape_s, &shape)) die_usage("--shape: %s", gt_errmsg());
    } else {
        npy_reader_t r;
        if (npy_reader_open(&r, like)) die_lib(EXIT_DATA);
        if (r.ndim != 4 || r.shape[1] < 1 || r.shape[2] < 1 || r.shape[3] < 1 || r.shape[1] > 1 << 20 ||
            r.shape[2] > 1 << 20 || r.shape[3] > 1 << 20)
            die(EXIT_DATA, "%s: expected images N x C x H x W, got %d dimensions", in_name(like), r.ndim);
        shape.c = (int)r.shape[1], shape.h = (int)r.shape[2], shape.w = (int)r.shape[3];
        like_n = r.shape[0];
        npy_reader_close(&r);
    }

    if (labels_path) {
        tensor_t lab;
        int64_t *v, top = -1;
        if (npy_load(labels_path, &lab, 0)) die_lib(EXIT_DATA);
        if (tensor_labels(&lab, 1000000, like_n, "a model has at most 1000000 classes", &v))
            die(EXIT_DATA, "%s: %s", in_name(labels_path), gt_errmsg());
        for (int64_t i = 0; i < tensor_numel(&lab); i++)
            if (v[i] > top) top = v[i];
        free(v);
        tensor_free(&lab);
        if (top < 0) die(EXIT_DATA, "%s: no labels", in_name(labels_path));
        if (classes && classes != top + 1)
            die_usage("--classes %lld but the labels in %s give %lld classes", classes, labels_path,
                      (long long)top + 1);
        classes = top + 1;
    }

    preset_t p = {0};
    if (arch && preset_get_classes(arch, shape, (int)z, (int)classes, &p)) die_usage("--arch: %s", gt_errmsg());
    gan_loss_t loss = arch ? p.loss : LOSS_NS;
    if (loss_s && gan_loss_parse(loss_s, &loss)) die_usage("--loss: %s", gt_errmsg());
    gan_settings_t s;
    gan_settings_default(&s, loss);
    if (arch && p.opt) { /* the preset's optimizer and critic steps, unless given as options */
        if (opt_conf_parse(p.opt, &s.opt_g)) die_usage("--arch: %s", gt_errmsg());
        s.opt_d = s.opt_g;
    }
    if (arch && p.n_critic) s.n_critic = p.n_critic;
    if (gan_overrides_apply(&s, &ov, NULL)) die_usage("%s", gt_errmsg());
    int init = arch ? (int)p.init : INIT_TORCH;
    if (init_s) {
        if (strcmp(init_s, "dcgan") == 0) init = INIT_DCGAN;
        else if (strcmp(init_s, "torch") == 0) init = INIT_TORCH;
        else die_usage("--init: unknown mode '%s' (dcgan, torch)", init_s);
    }
    backend_t *be = gan_backend(device, (int)threads);
    if (!be) die_usage("%s", gt_errmsg());
    if (gan_backend_note()) warnx("%s", gan_backend_note());

    out_t o;
    out_open(&o, out, 1);
    gan_model_t m;
    if (model_new(&m, arch ? p.g : gs, arch ? p.d : ds, shape, (int)z, &s, init, seed, be, 1))
        die(EXIT_USAGE, "%s", gt_errmsg());
    if (!arch && classes && m.classes != classes)
        die_usage("--classes %lld but %s", classes,
                  m.classes ? "the specs' class-conditional layers have a different K" :
                              "the specs have no class-conditional layer (embed, onehot, cbn, proj)");
    if (model_save(&m, o.f)) out_fail(&o);
    out_commit(&o);
    model_free(&m);
    preset_free(&p);
    return 0;
}
