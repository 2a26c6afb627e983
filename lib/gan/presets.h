/* presets.h: named architectures (G and D spec texts) for a data shape and a latent size.
 *
 *   mlp      fully connected G (BatchNorm) and D, any data shape
 *   dcgan    G: linear to 256 x H/4 x W/4, two transposed convolutions (BatchNorm, lrelu 0.2),
 *            a 7x7 conv to C channels and tanh; D: two strided convs with lrelu 0.2 and
 *            dropout 0.3, then linear 1. H and W divisible by 4.
 *   dcgan32  deeper DCGAN for 32x32 colour images: G from 512 x H/8 x W/8 through three
 *            transposed convs (256, 128, 64; BatchNorm, relu) and a 3x3 conv with tanh;
 *            D: convs 64/128/256 with lrelu 0.2, then linear 1. H and W divisible by 8.
 *   wgan-gp  dcgan's G and a critic without BatchNorm or dropout (gradient-penalty ready).
 *   cmlp, cdcgan  class-conditional mlp and dcgan for K classes: G starts with `embed K 50`
 *            (z joined with a learned 50-value class embedding) and D's final `linear 1` is
 *            `proj K` (the projection discriminator: linear 1 plus <embed(class), features>).
 *   sngan    SNGAN (Miyato et al. 2018) as the PyTorch reimplementation Mimicry configures it
 *            for 32x32 (its SNGANGenerator32, SNGANDiscriminator32), for H/4 x W/4 bottoms: G is linear to
 *            PRESET_SNGAN_G x H/4 x W/4, two up residual blocks (bn relu upsample conv3 bn relu
 *            conv3; shortcut upsample conv1), bn relu conv3 tanh; D is SN everywhere: the
 *            optimized block (conv3 relu conv3 avgpool; shortcut avgpool conv1), a down block
 *            (relu conv3 relu conv3 avgpool; shortcut conv1 avgpool), two plain blocks with
 *            identity shortcuts, relu, sumpool, linear 1. Hinge loss, Adam lr 2e-4 betas (0, 0.9),
 *            5 critic steps. H and W divisible by 4.
 *   csngan   the conditional sngan (SNGAN with a projection discriminator): cbn K in G's blocks
 *            in place of bn, D ending in proj K in place of linear 1 (proj has no sn).
 * G's input is zdim x 1 x 1; its output is C x H x W, D's input. */
#ifndef GT_PRESETS_H
#define GT_PRESETS_H

#include "lib/gan/settings.h"
#include "lib/nn/layer.h"

typedef struct {
    char *g, *d;        /* spec texts (malloc'd) */
    init_mode_t init;   /* the initialisation the preset is meant for */
    gan_loss_t loss;    /* the loss it is meant for (gan-init's default with --arch) */
    const char *opt;    /* the optimizer of G and D it is meant for (NULL: the loss's default) */
    int n_critic;       /* its critic steps (0: the loss's default) */
} preset_t;

/* NULL-terminated list of preset names, for --help and messages. */
extern const char *const preset_names[];

/* Fill *p for preset NAME, data shape DATA and latent size ZDIM. Returns 0, or -1 with a
 * message (unknown name, data shape the preset cannot take). Free with preset_free. */
int preset_get(const char *name, shape3_t data, int zdim, preset_t *p);
/* The same for a class-conditional preset (cmlp, cdcgan, csngan) with `classes` = K > 0 classes; the
 * unconditional presets want classes = 0. */
int preset_get_classes(const char *name, shape3_t data, int zdim, int classes, preset_t *p);

/* the size of the class embedding the conditional presets join with z */
#define PRESET_EMBED 50
/* sngan's widths: a quarter of the 32x32 reference's (G 256, D 128), keeping its ratio, for a
 * 2-core CPU (a training step, 5 critic updates, is about 4.4 dcgan steps of arithmetic) */
#define PRESET_SNGAN_G 64
#define PRESET_SNGAN_D 32
void preset_free(preset_t *p);

#endif
