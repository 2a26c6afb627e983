/* presets.c: the named architectures of presets.h as spec texts. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/common.h"
#include "presets.h"

const char *const preset_names[] = {"mlp", "dcgan", "dcgan32", "wgan-gp", "sngan", "cmlp", "cdcgan", "csngan", NULL};

static char *fmt(const char *f, ...) GT_PRINTF(1, 2);
static char *fmt(const char *f, ...) {
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(NULL, 0, f, ap);
    va_end(ap);
    char *s = gt_xmalloc((size_t)n + 1);
    va_start(ap, f);
    vsnprintf(s, (size_t)n + 1, f, ap);
    va_end(ap);
    return s;
}

static int need_div(const char *name, shape3_t d, int k) {
    if (d.h % k || d.w % k || d.h < k || d.w < k)
        return gt_err("preset %s needs height and width divisible by %d (data is %dx%dx%d)", name, k, d.c, d.h,
                      d.w);
    return 0;
}

int preset_get(const char *name, shape3_t d, int zdim, preset_t *p) { return preset_get_classes(name, d, zdim, 0, p); }

static int is_conditional(const char *name) {
    return strcmp(name, "cmlp") == 0 || strcmp(name, "cdcgan") == 0 || strcmp(name, "csngan") == 0;
}

/* sngan and csngan (presets.h): the ResNet of SNGAN's 32x32 configuration with two up blocks
 * from H/4 x W/4 instead of three from 4x4, and a critic downsampling twice then two plain
 * blocks. `bn` is "bn" (sngan) or "cbn K" (csngan), `head` D's last layer: "linear 1 sn" or "proj K". */
static void sngan_specs(shape3_t d, int classes, preset_t *p) {
    const int g = PRESET_SNGAN_G, c = PRESET_SNGAN_D;
    char bn[32];
    if (classes) snprintf(bn, sizeof bn, "cbn %d", classes);
    else snprintf(bn, sizeof bn, "bn");
    int h = d.h / 4, w = d.w / 4;
    char up[256]; /* an up block: G's blocks are alike */
    snprintf(up, sizeof up, "block { %s; relu; upsample 2; conv %d k3 p1; %s; relu; conv %d k3 p1 } "
                            "skip { upsample 2; conv %d k1 }",
             bn, g, bn, g, g);
    p->g = fmt("linear %d; reshape %dx%dx%d; %s; %s; bn; relu; conv %d k3 p1; tanh", g * h * w, g, h, w, up, up, d.c);
    char head[32];
    if (classes) snprintf(head, sizeof head, "proj %d", classes);
    else snprintf(head, sizeof head, "linear 1 sn");
    p->d = fmt("block { conv %d k3 p1 sn; relu; conv %d k3 p1 sn; avgpool k2 } skip { avgpool k2; conv %d k1 sn }; "
               "block { relu; conv %d k3 p1 sn; relu; conv %d k3 p1 sn; avgpool k2 } "
               "skip { conv %d k1 sn; avgpool k2 }; "
               "block { relu; conv %d k3 p1 sn; relu; conv %d k3 p1 sn }; "
               "block { relu; conv %d k3 p1 sn; relu; conv %d k3 p1 sn }; "
               "relu; sumpool; %s",
               c, c, c, c, c, c, c, c, c, c, head);
    p->init = INIT_TORCH;
    p->loss = LOSS_HINGE;
    p->opt = "adam:lr=2e-4,b1=0,b2=0.9";
    p->n_critic = 5;
}

int preset_get_classes(const char *name, shape3_t d, int zdim, int classes, preset_t *p) {
    memset(p, 0, sizeof *p);
    if (zdim <= 0) return gt_err("latent size must be positive");
    if (d.c <= 0 || d.h <= 0 || d.w <= 0) return gt_err("data shape %dx%dx%d is not positive", d.c, d.h, d.w);
    if (is_conditional(name) && classes <= 0)
        return gt_err("preset %s is class-conditional: give the number of classes (--classes K or --labels)", name);
    if (!is_conditional(name) && classes > 0 &&
        (!strcmp(name, "mlp") || !strcmp(name, "dcgan") || !strcmp(name, "dcgan32") || !strcmp(name, "wgan-gp") ||
         !strcmp(name, "sngan")))
        return gt_err("preset %s is not class-conditional: use cdcgan, cmlp or csngan with classes", name);
    p->loss = strcmp(name, "wgan-gp") == 0 ? LOSS_WGAN_GP : LOSS_NS;
    if (strcmp(name, "sngan") == 0 || strcmp(name, "csngan") == 0) {
        if (need_div(name, d, 4)) return -1;
        sngan_specs(d, name[0] == 'c' ? classes : 0, p);
        return 0;
    }
    if (strcmp(name, "cmlp") == 0 || strcmp(name, "cdcgan") == 0) {
        preset_t u;
        if (name[1] == 'd' && need_div(name, d, 4)) return -1;
        if (preset_get_classes(name + 1, d, zdim + PRESET_EMBED, 0, &u)) return -1;
        /* G: the class embedding joined with z; D: its last linear 1 becomes the projection */
        p->g = fmt("embed %d %d; %s", classes, PRESET_EMBED, u.g);
        size_t n = strlen(u.d);
        const char *tail = "linear 1";
        if (n < strlen(tail) || strcmp(u.d + n - strlen(tail), tail) != 0) {
            preset_free(&u);
            return gt_err("preset %s: internal error: D does not end with linear 1", name);
        }
        p->d = fmt("%.*sproj %d", (int)(n - strlen(tail)), u.d, classes);
        p->init = u.init;
        p->loss = u.loss;
        preset_free(&u);
        return 0;
    }
    if (strcmp(name, "mlp") == 0) {
        long n = shape3_size(d);
        p->g = fmt("linear 256; lrelu 0.2; linear 512; bn; lrelu 0.2; linear 1024; bn; lrelu 0.2; linear %ld; tanh; "
                   "reshape %dx%dx%d",
                   n, d.c, d.h, d.w);
        p->d = fmt("flatten; linear 1024; lrelu 0.2; linear 512; lrelu 0.2; linear 256; lrelu 0.2; linear 1");
        p->init = INIT_TORCH;
        return 0;
    }
    if (strcmp(name, "dcgan") == 0 || strcmp(name, "wgan-gp") == 0) {
        if (need_div(name, d, 4)) return -1;
        int h = d.h / 4, w = d.w / 4;
        p->g = fmt("linear %d nobias; bn; lrelu 0.2; reshape 256x%dx%d; convT 128 k4 s2 p1 nobias; bn; lrelu 0.2; "
                   "convT 64 k4 s2 p1 nobias; bn; lrelu 0.2; conv %d k7 p3; tanh",
                   256 * h * w, h, w, d.c);
        if (name[0] == 'd')
            p->d = fmt("conv 64 k4 s2 p1; lrelu 0.2; dropout 0.3; conv 128 k4 s2 p1; lrelu 0.2; dropout 0.3; "
                       "flatten; linear 1");
        else
            p->d = fmt("conv 64 k4 s2 p1; lrelu 0.2; conv 128 k4 s2 p1; lrelu 0.2; flatten; linear 1");
        p->init = INIT_DCGAN;
        return 0;
    }
    if (strcmp(name, "dcgan32") == 0) {
        if (need_div(name, d, 8)) return -1;
        int h = d.h / 8, w = d.w / 8;
        p->g = fmt("linear %d nobias; bn; relu; reshape 512x%dx%d; convT 256 k4 s2 p1 nobias; bn; relu; "
                   "convT 128 k4 s2 p1 nobias; bn; relu; convT 64 k4 s2 p1 nobias; bn; relu; conv %d k3 p1; tanh",
                   512 * h * w, h, w, d.c);
        p->d = fmt("conv 64 k4 s2 p1; lrelu 0.2; conv 128 k4 s2 p1; lrelu 0.2; conv 256 k4 s2 p1; lrelu 0.2; "
                   "flatten; linear 1");
        p->init = INIT_DCGAN;
        return 0;
    }
    return gt_err("unknown preset '%s' (known: mlp, dcgan, dcgan32, wgan-gp, sngan, cmlp, cdcgan, csngan)", name);
}

void preset_free(preset_t *p) {
    free(p->g);
    free(p->d);
    p->g = p->d = NULL;
}
