/* settings.c: the training settings and their text forms (settings.h). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/common.h"
#include "settings.h"

static const char *const loss_names[LOSS_COUNT] = {"bce", "ns", "wgan", "wgan-gp", "hinge", "lsgan"};

int gan_loss_parse(const char *s, gan_loss_t *out) {
    for (int i = 0; i < LOSS_COUNT; i++)
        if (strcmp(s, loss_names[i]) == 0) {
            *out = (gan_loss_t)i;
            return 0;
        }
    return gt_err("unknown loss '%s' (bce, ns, wgan, wgan-gp, hinge, lsgan)", s);
}

const char *gan_loss_name(gan_loss_t l) { return l < LOSS_COUNT ? loss_names[l] : "?"; }

void gan_settings_default(gan_settings_t *s, gan_loss_t loss) {
    memset(s, 0, sizeof *s);
    s->loss = loss;
    const char *opt = "adam:lr=2e-4,b1=0.5,b2=0.999";
    s->n_critic = 1;
    s->gp = 10;
    s->batch = 64;
    s->reg_every = 1;
    s->lr_sched_g.gamma = s->lr_sched_d.gamma = 1;
    if (loss == LOSS_WGAN) {
        opt = "rmsprop:lr=5e-5";
        s->n_critic = 5;
        s->clip = 0.01;
    } else if (loss == LOSS_WGAN_GP) {
        opt = "adam:lr=1e-4,b1=0,b2=0.9";
        s->n_critic = 5;
    }
    opt_conf_parse(opt, &s->opt_g);
    s->opt_d = s->opt_g;
}

static const char *const augment_names[] = {"color", "translation", "cutout"};

int gan_augment_parse(const char *s, int *out) {
    *out = 0;
    if (strcmp(s, "none") == 0) return 0;
    const char *p = s;
    int next = 0; /* the first policy that may still come */
    for (;;) {
        size_t len = strcspn(p, ",");
        int k = 0;
        while (k < 3 && !(strlen(augment_names[k]) == len && strncmp(p, augment_names[k], len) == 0)) k++;
        if (k == 3)
            return gt_err("unknown augmentation '%.*s' (color, translation, cutout, or none)", (int)len, p);
        if (k < next)
            return gt_err("augmentation '%s': give each policy once, in the order color,translation,cutout", s);
        *out |= 1 << k;
        next = k + 1;
        if (!p[len]) return 0;
        p += len + 1;
    }
}

void gan_augment_text(int policy, char *buf, size_t n) {
    size_t used = 0;
    if (n) buf[0] = 0;
    for (int k = 0; k < 3; k++)
        if (policy & (1 << k)) {
            int w = snprintf(buf + used, n > used ? n - used : 0, "%s%s", used ? "," : "", augment_names[k]);
            if (w > 0) used += (size_t)w;
        }
    if (!used) snprintf(buf, n, "none");
}

int gan_parse_number(const char *s, double *v) {
    if (!*s) return -1;
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    if (*end || errno == ERANGE || !isfinite(*v)) return -1;
    return 0;
}

int opt_conf_parse(const char *text, opt_conf_t *c) {
    memset(c, 0, sizeof *c);
    char buf[256];
    if (strlen(text) >= sizeof buf) return gt_err("optimizer '%.40s...' is too long", text);
    strcpy(buf, text);
    char *colon = strchr(buf, ':');
    if (colon) *colon = 0;
    if (strcmp(buf, "adam") == 0) {
        c->kind = OPT_ADAM;
        c->lr = 1e-3, c->b1 = 0.9, c->b2 = 0.999, c->eps = 1e-8;
    } else if (strcmp(buf, "sgd") == 0) {
        c->kind = OPT_SGD;
        c->lr = 1e-3;
    } else if (strcmp(buf, "rmsprop") == 0) {
        c->kind = OPT_RMSPROP;
        c->lr = 1e-2, c->b1 = 0.99, c->eps = 1e-8;
    } else {
        return gt_err("unknown optimizer '%s' (adam, sgd, rmsprop)", buf);
    }
    const char *kind = buf;
    char *p = colon ? colon + 1 : NULL;
    while (p && *p) {
        char *comma = strchr(p, ',');
        if (comma) *comma = 0;
        char *eq = strchr(p, '=');
        double v = 0;
        if (eq) {
            *eq = 0;
            if (gan_parse_number(eq + 1, &v)) return gt_err("%s: '%s' is not a number for '%s'", kind, eq + 1, p);
        }
        int flag = !eq;
        int ok = 1;
        if (strcmp(p, "lr") == 0 && !flag) c->lr = v;
        else if (strcmp(p, "wd") == 0 && !flag) c->wd = v;
        else if (strcmp(p, "weight_decay") == 0 && !flag) c->wd = v;
        else if (strcmp(p, "eps") == 0 && !flag && c->kind != OPT_SGD) c->eps = v;
        else if (strcmp(p, "b1") == 0 && !flag && c->kind == OPT_ADAM) c->b1 = v;
        else if (strcmp(p, "b2") == 0 && !flag && c->kind == OPT_ADAM) c->b2 = v;
        else if (strcmp(p, "alpha") == 0 && !flag && c->kind == OPT_RMSPROP) c->b1 = v;
        else if (strcmp(p, "momentum") == 0 && !flag && c->kind == OPT_SGD) c->b1 = v;
        else if (strcmp(p, "momentum") == 0 && !flag && c->kind == OPT_RMSPROP) c->momentum = v;
        else if (strcmp(p, "nesterov") == 0 && c->kind == OPT_SGD) c->nesterov = flag ? 1 : v != 0;
        else if (strcmp(p, "centered") == 0 && c->kind == OPT_RMSPROP) c->centered = flag ? 1 : v != 0;
        else ok = 0;
        if (!ok) return gt_err("%s: unknown setting '%s'", kind, p);
        p = comma ? comma + 1 : NULL;
    }
    if (!(c->lr > 0)) return gt_err("%s: lr must be positive", kind);
    if (c->wd < 0) return gt_err("%s: weight decay must not be negative", kind);
    if (c->kind == OPT_ADAM && (c->b1 < 0 || c->b1 >= 1 || c->b2 < 0 || c->b2 >= 1))
        return gt_err("adam: b1 and b2 must lie in [0, 1)");
    if (c->kind != OPT_SGD && !(c->eps > 0)) return gt_err("%s: eps must be positive", kind);
    if (c->kind == OPT_SGD && (c->b1 < 0 || c->b1 >= 1)) return gt_err("sgd: momentum must lie in [0, 1)");
    if (c->kind == OPT_SGD && c->nesterov && c->b1 == 0) return gt_err("sgd: nesterov needs a momentum");
    if (c->kind == OPT_RMSPROP && (c->b1 < 0 || c->b1 >= 1)) return gt_err("rmsprop: alpha must lie in [0, 1)");
    if (c->kind == OPT_RMSPROP && (c->momentum < 0 || c->momentum >= 1))
        return gt_err("rmsprop: momentum must lie in [0, 1)");
    return 0;
}

/* The text of c, its numbers exact (opt_conf_text) or to 9 digits (opt_conf_format). */
static void conf_print(const opt_conf_t *c, char *buf, size_t n, int exact) {
    const double v[6] = {c->lr, c->b1, c->b2, c->eps, c->wd, c->momentum};
    char t[6][40];
    for (int i = 0; i < 6; i++) {
        if (exact) gt_format_exact(t[i], sizeof t[i], v[i], 15, 0);
        else snprintf(t[i], sizeof t[i], "%.9g", v[i]);
    }
    switch (c->kind) {
    case OPT_ADAM: snprintf(buf, n, "adam:lr=%s,b1=%s,b2=%s,eps=%s,wd=%s", t[0], t[1], t[2], t[3], t[4]); break;
    case OPT_SGD:
        snprintf(buf, n, "sgd:lr=%s,momentum=%s,wd=%s%s", t[0], t[1], t[4], c->nesterov ? ",nesterov" : "");
        break;
    case OPT_RMSPROP:
        snprintf(buf, n, "rmsprop:lr=%s,alpha=%s,eps=%s,momentum=%s,wd=%s%s", t[0], t[1], t[3], t[5], t[4],
                 c->centered ? ",centered" : "");
        break;
    }
}

void opt_conf_format(const opt_conf_t *c, char *buf, size_t n) { conf_print(c, buf, n, 0); }

void opt_conf_text(const opt_conf_t *c, char *buf, size_t n) { conf_print(c, buf, n, 1); }

const cli_range_t gan_setting_ranges[GAN_SET_COUNT] = {
    [GAN_SET_N_CRITIC] = {"--n-critic", "n_critic", 1, GAN_MAX_CRITIC, 1},
    [GAN_SET_GP] = {"--gp", "gp", 0, 1e6, 0},
    [GAN_SET_CLIP] = {"--clip", "clip", 0, 1e6, 0},
    [GAN_SET_LABEL_SMOOTH] = {"--label-smooth", "label_smooth", 0, 0.999, 0},
    [GAN_SET_EMA] = {"--ema", "ema", 0, 0.999999, 0},
    [GAN_SET_BATCH] = {"--batch", "batch", 1, 65536, 1},
    [GAN_SET_R1] = {"--r1", "r1", 0, 1e6, 0},
    [GAN_SET_R2] = {"--r2", "r2", 0, 1e6, 0},
    [GAN_SET_REG_EVERY] = {"--reg-every", "reg_every", 1, 1000000, 1},
    [GAN_SET_INSTANCE_NOISE] = {"--instance-noise", "instance_noise", 0, 1000, 0},
    [GAN_SET_INSTANCE_NOISE_STEPS] = {"--instance-noise-steps", "instance_noise_steps", 0, 100000000, 1},
    [GAN_SET_LABEL_FLIP] = {"--label-flip", "label_flip", 0, 1, 0},
    [GAN_SET_LABEL_SMOOTH_FAKE] = {"--label-smooth-fake", "label_smooth_fake", 0, 0.999, 0},
    [GAN_SET_BN_LOCAL] = {"--bn-sync", "bn_local", 0, 1, 1}, /* the option's text: synced, local */
};

double gan_setting_get(const gan_settings_t *s, gan_setting_k k) {
    switch (k) {
    case GAN_SET_N_CRITIC: return s->n_critic;
    case GAN_SET_GP: return s->gp;
    case GAN_SET_CLIP: return s->clip;
    case GAN_SET_LABEL_SMOOTH: return s->label_smooth;
    case GAN_SET_EMA: return s->ema;
    case GAN_SET_BATCH: return s->batch;
    case GAN_SET_R1: return s->r1;
    case GAN_SET_R2: return s->r2;
    case GAN_SET_REG_EVERY: return s->reg_every;
    case GAN_SET_INSTANCE_NOISE: return s->instance_noise;
    case GAN_SET_INSTANCE_NOISE_STEPS: return s->instance_noise_steps;
    case GAN_SET_LABEL_FLIP: return s->label_flip;
    case GAN_SET_LABEL_SMOOTH_FAKE: return s->label_smooth_fake;
    case GAN_SET_BN_LOCAL: return s->bn_local;
    default: return NAN;
    }
}

void gan_setting_set(gan_settings_t *s, gan_setting_k k, double v) {
    switch (k) {
    case GAN_SET_N_CRITIC: s->n_critic = (int)v; break;
    case GAN_SET_GP: s->gp = v; break;
    case GAN_SET_CLIP: s->clip = v; break;
    case GAN_SET_LABEL_SMOOTH: s->label_smooth = v; break;
    case GAN_SET_EMA: s->ema = v; break;
    case GAN_SET_BATCH: s->batch = (int)v; break;
    case GAN_SET_R1: s->r1 = v; break;
    case GAN_SET_R2: s->r2 = v; break;
    case GAN_SET_REG_EVERY: s->reg_every = (int)v; break;
    case GAN_SET_INSTANCE_NOISE: s->instance_noise = v; break;
    case GAN_SET_INSTANCE_NOISE_STEPS: s->instance_noise_steps = (int)v; break;
    case GAN_SET_LABEL_FLIP: s->label_flip = v; break;
    case GAN_SET_LABEL_SMOOTH_FAKE: s->label_smooth_fake = v; break;
    case GAN_SET_BN_LOCAL: s->bn_local = (int)v; break;
    default: break;
    }
}

int gan_settings_check(const gan_settings_t *s) {
    if (s->loss >= LOSS_COUNT) return gt_err("unknown loss");
    if (s->augment & ~AUG_ALL) return gt_err("unknown augmentation bits %#x", (unsigned)s->augment);
    for (int k = 0; k < GAN_SET_COUNT; k++) {
        const cli_range_t *r = &gan_setting_ranges[k];
        double v = gan_setting_get(s, (gan_setting_k)k);
        if (!(v >= r->lo && v <= r->hi)) return gt_err("%s %g is out of range [%g, %g]", r->name, v, r->lo, r->hi);
    }
    const lr_sched_t *ls[2] = {&s->lr_sched_g, &s->lr_sched_d};
    for (int i = 0; i < 2; i++)
        if (ls[i]->kind > LR_STEP || (ls[i]->kind != LR_CONSTANT && (ls[i]->n < 1 || ls[i]->n > 100000000)) ||
            !(ls[i]->gamma > 0 && ls[i]->gamma <= 1))
            return gt_err("invalid learning-rate schedule of %s", i ? "D" : "G");
    if ((s->label_flip > 0 || s->label_smooth_fake > 0) && s->loss != LOSS_BCE && s->loss != LOSS_NS)
        return gt_err("--label-flip and --label-smooth-fake need the bce or ns loss, not %s", gan_loss_name(s->loss));
    return 0;
}

/* ---- the settings' options ---------------------------------------------------------------- */

int gan_overrides_option(gan_overrides_t *o, int code, const char *arg) {
    int k = code - GAN_OPT_CODE(0);
    if (k < 0 || k >= GAN_OV_COUNT) return 0;
    o->given |= 1u << k;
    if (k == GAN_SET_BN_LOCAL) {
        if (strcmp(arg, "synced") && strcmp(arg, "local"))
            die_usage("--bn-sync: '%s': give synced (the global batch's statistics) or local (each process's own)", arg);
        o->v.bn_local = !strcmp(arg, "local");
    } else if (k < GAN_SET_COUNT) {
        gan_setting_set(&o->v, (gan_setting_k)k, cli_range(&gan_setting_ranges[k], arg));
    } else if (k == GAN_OV_OPT_G) {
        o->opt_g = arg;
    } else if (k == GAN_OV_OPT_D) {
        o->opt_d = arg;
    } else if (k == GAN_OV_AUGMENT) {
        if (gan_augment_parse(arg, &o->v.augment)) die_usage("--augment: %s", gt_errmsg());
    } else { /* GAN_OV_LR_G, GAN_OV_LR_D, GAN_OV_LR */
        lr_sched_t l;
        const char *opt = k == GAN_OV_LR ? "--lr-schedule" : k == GAN_OV_LR_G ? "--lr-schedule-g" : "--lr-schedule-d";
        if (lr_sched_parse(arg, &l)) die_usage("%s: %s", opt, gt_errmsg());
        o->given &= ~(1u << GAN_OV_LR);
        if (k != GAN_OV_LR_D) o->v.lr_sched_g = l, o->given |= 1u << GAN_OV_LR_G;
        if (k != GAN_OV_LR_G) o->v.lr_sched_d = l, o->given |= 1u << GAN_OV_LR_D;
    }
    return 1;
}

/* What the messages of gan_overrides_apply call each numeric setting. */
static const char *const said_names[GAN_SET_COUNT] = {
    [GAN_SET_N_CRITIC] = "n_critic", [GAN_SET_GP] = "gp", [GAN_SET_CLIP] = "clip",
    [GAN_SET_LABEL_SMOOTH] = "label smoothing", [GAN_SET_EMA] = "EMA decay", [GAN_SET_BATCH] = "batch",
    [GAN_SET_R1] = "r1", [GAN_SET_R2] = "r2", [GAN_SET_REG_EVERY] = "reg_every",
    [GAN_SET_INSTANCE_NOISE] = "instance noise", [GAN_SET_INSTANCE_NOISE_STEPS] = "instance noise steps",
    [GAN_SET_LABEL_FLIP] = "label flipping", [GAN_SET_LABEL_SMOOTH_FAKE] = "fake label smoothing",
    [GAN_SET_BN_LOCAL] = "local BatchNorm statistics",
};

static int apply_opt(opt_conf_t *c, const char *text, const char *option, const char *who,
                     void (*say)(const char *fmt, ...)) {
    opt_conf_t n;
    if (opt_conf_parse(text, &n)) {
        char why[512];
        snprintf(why, sizeof why, "%s", gt_errmsg());
        return gt_err("%s: %s", option, why);
    }
    char b1[256], b2[256];
    opt_conf_format(c, b1, sizeof b1);
    opt_conf_format(&n, b2, sizeof b2);
    if (say && strcmp(b1, b2)) say("%s optimizer %s -> %s", who, b1, b2);
    *c = n;
    return 0;
}

/* gan_overrides_apply without the final check */
static int overrides_apply(gan_settings_t *s, const gan_overrides_t *o, void (*say)(const char *fmt, ...)) {
    /* the order in which changes are said */
    static const int order[] = {GAN_SET_BATCH, GAN_OV_OPT_G, GAN_OV_OPT_D, GAN_SET_N_CRITIC, GAN_SET_GP,
                                GAN_SET_CLIP, GAN_SET_LABEL_SMOOTH, GAN_SET_R1, GAN_SET_R2, GAN_SET_REG_EVERY,
                                GAN_SET_EMA, GAN_OV_AUGMENT, GAN_SET_INSTANCE_NOISE, GAN_SET_INSTANCE_NOISE_STEPS,
                                GAN_SET_LABEL_FLIP, GAN_SET_LABEL_SMOOTH_FAKE, GAN_SET_BN_LOCAL, GAN_OV_LR_G, GAN_OV_LR_D};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        int k = order[i];
        if (!gan_overrides_given(o, k)) continue;
        if (k == GAN_OV_OPT_G) {
            if (apply_opt(&s->opt_g, o->opt_g, "--opt-g", "G", say)) return -1;
        } else if (k == GAN_OV_OPT_D) {
            if (apply_opt(&s->opt_d, o->opt_d, "--opt-d", "D", say)) return -1;
        } else if (k == GAN_OV_LR_G || k == GAN_OV_LR_D) {
            lr_sched_t *l = k == GAN_OV_LR_G ? &s->lr_sched_g : &s->lr_sched_d;
            const lr_sched_t *v = k == GAN_OV_LR_G ? &o->v.lr_sched_g : &o->v.lr_sched_d;
            char b1[64], b2[64];
            lr_sched_text(l, b1, sizeof b1);
            lr_sched_text(v, b2, sizeof b2);
            if (say && strcmp(b1, b2)) say("%s lr schedule %s -> %s", k == GAN_OV_LR_G ? "G" : "D", b1, b2);
            *l = *v;
        } else if (k == GAN_OV_AUGMENT) {
            if (say && o->v.augment != s->augment) {
                char b1[64], b2[64];
                gan_augment_text(s->augment, b1, sizeof b1);
                gan_augment_text(o->v.augment, b2, sizeof b2);
                say("augmentation %s -> %s", b1, b2);
            }
            s->augment = o->v.augment;
        } else {
            double was = gan_setting_get(s, (gan_setting_k)k), v = gan_setting_get(&o->v, (gan_setting_k)k);
            if (say && v != was) {
                if (gan_setting_ranges[k].integer) say("%s %lld -> %lld", said_names[k], (long long)was, (long long)v);
                else say("%s %g -> %g", said_names[k], was, v);
            }
            gan_setting_set(s, (gan_setting_k)k, v);
        }
    }
    return 0;
}

int gan_overrides_apply(gan_settings_t *s, const gan_overrides_t *o, void (*say)(const char *fmt, ...)) {
    gan_settings_t n = *s; /* first silently: nothing is said of settings that are refused */
    if (overrides_apply(&n, o, NULL) || gan_settings_check(&n)) return -1;
    return overrides_apply(s, o, say);
}

int lr_sched_parse(const char *s, lr_sched_t *out) {
    memset(out, 0, sizeof *out);
    out->gamma = 1;
    if (strcmp(s, "constant") == 0) return 0;
    const char *colon = strchr(s, ':');
    size_t len = colon ? (size_t)(colon - s) : strlen(s);
    if (len == 6 && strncmp(s, "linear", 6) == 0) out->kind = LR_LINEAR;
    else if (len == 6 && strncmp(s, "cosine", 6) == 0) out->kind = LR_COSINE;
    else if (len == 4 && strncmp(s, "step", 4) == 0) out->kind = LR_STEP;
    else return gt_err("unknown schedule '%s' (constant, linear:N, cosine:N, step:EVERY:GAMMA)", s);
    char buf[96];
    if (!colon || strlen(colon + 1) >= sizeof buf)
        return gt_err("schedule '%s': give %s", s, out->kind == LR_STEP ? "step:EVERY:GAMMA" : "its length, e.g. linear:1000");
    strcpy(buf, colon + 1);
    char *second = strchr(buf, ':');
    if ((out->kind == LR_STEP) != (second != NULL))
        return gt_err("schedule '%s': %s", s, out->kind == LR_STEP ? "give step:EVERY:GAMMA" : "give one number, its length N");
    if (second) *second++ = 0;
    double n;
    if (gan_parse_number(buf, &n) || n != floor(n) || n < 1 || n > 100000000)
        return gt_err("schedule '%s': '%s' is not a whole number of steps in [1, 100000000]", s, buf);
    out->n = (int)n;
    if (second && (gan_parse_number(second, &out->gamma) || !(out->gamma > 0 && out->gamma <= 1)))
        return gt_err("schedule '%s': GAMMA '%s' must be a number in (0, 1]", s, second);
    return 0;
}

void lr_sched_text(const lr_sched_t *l, char *buf, size_t n) {
    static const char *const names[] = {"constant", "linear", "cosine", "step"};
    if (l->kind == LR_CONSTANT) {
        snprintf(buf, n, "constant");
    } else if (l->kind == LR_STEP) {
        char g[40];
        gt_format_exact(g, sizeof g, l->gamma, 15, 0);
        snprintf(buf, n, "step:%d:%s", l->n, g);
    } else {
        snprintf(buf, n, "%s:%d", names[l->kind], l->n);
    }
}

int shape3_parse(const char *s, shape3_t *out) {
    int v[3], k = 0;
    const char *p = s;
    while (k < 3) {
        if (*p < '0' || *p > '9') break;
        long x = 0;
        while (*p >= '0' && *p <= '9') {
            x = x * 10 + (*p++ - '0');
            if (x > 1 << 20) return gt_err("shape '%s': a dimension is too large", s);
        }
        if (x <= 0) return gt_err("shape '%s': dimensions must be positive", s);
        v[k++] = (int)x;
        if (k < 3) {
            if (*p != 'x') break;
            p++;
        }
    }
    if (k != 3 || *p) return gt_err("shape '%s' is not CxHxW (e.g. 1x28x28)", s);
    out->c = v[0], out->h = v[1], out->w = v[2];
    return 0;
}
