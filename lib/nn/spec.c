/* spec.c: the network spec language (manual: lib/nn/spec.md): text -> layers with their
 * hyper-parameters, and layers -> normalised text (what checkpoints store; parsing it again
 * gives the same layers).
 *
 * A spec is a list of layers separated by ';' or newlines; '#' starts a comment that runs
 * to the end of the line. A layer is a keyword and arguments separated by blanks:
 * positional numbers (or a CxHxW shape for reshape), kN / kHxW (kernel), sN (stride), pN
 * (padding), opN (output padding), key=value (eps, momentum, sn) and flags (nobias, noaffine, nopad,
 * sn).
 * Which of these forms a keyword takes is its kind's grammar, the args of its layer_ops_t
 * (layer.h, SPEC_*), found through the table of kinds (layer_kind_find): this file knows the
 * forms, not the kinds. Numbers are parsed strictly; errors name the layer and the token:
 *     layer 3 (conv): unknown argument 'q2'
 * A residual block, `block { LAYERS } [skip { LAYERS }]`, becomes one layer of kind block
 * (layer_block.c) holding its paths' layers as children; braces are items of their own, so they
 * need no separators; errors inside name the block and the path:
 *     block 2: skip layer 1 (conv): unknown argument 'q2' */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/common.h"
#include "net.h"

/* ---- strict number parsing ------------------------------------------------------------- */

/* A decimal integer in [lo, hi], digits only. */
static int parse_int(const char *s, int lo, int hi, int *out) {
    if (!*s) return -1;
    long long v = 0;
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char)*p)) return -1;
        v = v * 10 + (*p - '0');
        if (v > hi) return -1;
    }
    if (v < lo) return -1;
    *out = (int)v;
    return 0;
}

/* "N" or "AxB": one or two ints in [lo, hi]; a single N gives a = b = N. */
static int parse_pair(const char *s, int lo, int hi, int *a, int *b) {
    const char *x = strchr(s, 'x');
    if (!x) {
        if (parse_int(s, lo, hi, a)) return -1;
        *b = *a;
        return 0;
    }
    char buf[32];
    size_t n = (size_t)(x - s);
    if (n == 0 || n >= sizeof buf) return -1;
    memcpy(buf, s, n);
    buf[n] = 0;
    return parse_int(buf, lo, hi, a) || parse_int(x + 1, lo, hi, b) ? -1 : 0;
}

static int parse_double(const char *s, double *out) {
    if (!*s || isspace((unsigned char)*s)) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

/* ---- one layer ------------------------------------------------------------------------- */

#define MAX_TOKENS 32
#define DIM_MAX 1000000
#define SN_ITERS_MAX 1000

/* Parse tokens tok[0..nt-1] (tok[0] the keyword) into l. WHERE names the layer in messages
 * ("layer 3", "block 2, skip layer 1"); index is its Philox number (layer.h). */
static int parse_layer(layer_t *l, char **tok, int nt, const char *where, int index) {
    const layer_ops_t *ops = layer_kind_find(tok[0]);
    if (!ops) return gt_err("%s: unknown layer kind '%s'", where, tok[0]);
    const int args = ops->args;
    memset(l, 0, sizeof *l);
    l->ops = ops;
    l->index = index;
    l->has_bias = 1;
    l->slope = 0.01f;
    l->p = 0.5f;
    l->eps = 1e-5;
    l->momentum = 0.1;
    l->sh = l->sw = 1;
    l->scale = 0;
    int seen = 0, npos = 0;
#define FAIL(...) (gt_err(__VA_ARGS__), gt_err_prefix(prefix), -1)
    char prefix[96];
    snprintf(prefix, sizeof prefix, "%s (%s)", where, tok[0]);
    for (int i = 1; i < nt; i++) {
        const char *t = tok[i];
        int bit = 0, ok = 0;
        double d;
        if (strcmp(t, "nobias") == 0) {
            bit = SPEC_NOBIAS;
            l->has_bias = 0;
            ok = 1;
        } else if (strcmp(t, "nopad") == 0) {
            bit = SPEC_NOPAD;
            l->exclude_pad = 1;
            ok = 1;
        } else if (strcmp(t, "noaffine") == 0) {
            bit = SPEC_AFFINE;
            l->has_bias = 0;
            ok = 1;
        } else if (strcmp(t, "sn") == 0) {
            bit = SPEC_SN;
            l->sn = 1;
            ok = 1;
        } else if (strcmp(t, "wn") == 0) {
            bit = SPEC_WN;
            l->wn = 1;
            ok = 1;
        } else if (strncmp(t, "sn=", 3) == 0) {
            bit = SPEC_SN;
            ok = !parse_int(t + 3, 1, SN_ITERS_MAX, &l->sn);
            if (!ok && (args & bit))
                return FAIL("bad value in '%s' (want a whole number of power iterations from 1 to %d)", t,
                            SN_ITERS_MAX);
        } else if (strncmp(t, "eps=", 4) == 0) {
            bit = SPEC_EPS;
            ok = !parse_double(t + 4, &d) && d > 0;
            if (!ok && (args & bit)) return FAIL("bad value in '%s' (want a positive number)", t);
            l->eps = d;
        } else if (strncmp(t, "momentum=", 9) == 0) {
            bit = SPEC_MOM;
            ok = !parse_double(t + 9, &d) && d >= 0 && d <= 1;
            if (!ok && (args & bit)) return FAIL("bad value in '%s' (want a number in [0, 1])", t);
            l->momentum = d;
        } else if (t[0] == 'o' && t[1] == 'p' && isdigit((unsigned char)t[2])) {
            bit = SPEC_OP;
            ok = !parse_pair(t + 2, 0, DIM_MAX, &l->oph, &l->opw);
        } else if (t[0] == 'k' && isdigit((unsigned char)t[1])) {
            bit = SPEC_K;
            ok = !parse_pair(t + 1, 1, DIM_MAX, &l->kh, &l->kw);
        } else if (t[0] == 's' && isdigit((unsigned char)t[1])) {
            bit = SPEC_S;
            ok = !parse_pair(t + 1, 1, DIM_MAX, &l->sh, &l->sw);
        } else if (t[0] == 'p' && isdigit((unsigned char)t[1])) {
            bit = SPEC_P;
            ok = !parse_pair(t + 1, 0, DIM_MAX, &l->ph, &l->pw);
        } else if (isdigit((unsigned char)t[0]) || t[0] == '-' || t[0] == '+' || t[0] == '.') {
            /* a positional argument: at most one per kind, or K and then N (SPEC_CLASSES with SPEC_UNITS) */
            int want = (args & SPEC_CLASSES) ? 1 + !!(args & SPEC_UNITS) : 1;
            if (npos++ >= want ||
                !(args & (SPEC_UNITS | SPEC_SLOPE | SPEC_PROB | SPEC_SIGMA | SPEC_SHAPE | SPEC_SCALE | SPEC_CLASSES)))
                return FAIL("unexpected argument '%s'", t);
            if ((args & SPEC_CLASSES) && npos == 1) {
                if (parse_int(t, 1, 1000000, &l->classes))
                    return FAIL("bad number of classes '%s' (want a whole number >= 1)", t);
            } else if (args & SPEC_UNITS) {
                if (parse_int(t, 1, 100000000, &l->units))
                    return FAIL("bad size '%s' (want a whole number >= 1)", t);
                l->channels = l->units;
            } else if (args & SPEC_SCALE) {
                if (parse_int(t, 1, 1024, &l->scale)) return FAIL("bad factor '%s' (want a whole number >= 1)", t);
            } else if (args & SPEC_SLOPE) {
                if (parse_double(t, &d)) return FAIL("bad slope '%s' (want a number)", t);
                l->slope = (float)d;
            } else if (args & SPEC_PROB) {
                if (parse_double(t, &d) || !(d >= 0 && d < 1))
                    return FAIL("bad probability '%s' (want a number in [0, 1))", t);
                l->p = (float)d;
            } else if (args & SPEC_SIGMA) {
                if (parse_double(t, &d) || !(d >= 0) || (float)d > 1e30f)
                    return FAIL("bad standard deviation '%s' (want a number >= 0)", t);
                l->sigma = (float)d;
            } else { /* SPEC_SHAPE */
                int c, h, w;
                char extra;
                if (strspn(t, "0123456789x") != strlen(t) || sscanf(t, "%dx%dx%d%c", &c, &h, &w, &extra) != 3 ||
                    c <= 0 || h <= 0 || w <= 0 || c > 100000000 || h > DIM_MAX || w > DIM_MAX)
                    return FAIL("bad shape '%s' (want CxHxW, e.g. 256x7x7)", t);
                l->reshape = (shape3_t){c, h, w};
            }
            continue;
        } else {
            return FAIL("unknown argument '%s'", t);
        }
        if (!(args & bit)) return FAIL("unknown argument '%s'", t);
        if (!ok) return FAIL("bad value in '%s'", t);
        if (seen & bit) return FAIL("argument '%s' given twice", t);
        seen |= bit;
    }
    if ((args & SPEC_CLASSES) && !npos) return FAIL("missing the number of classes K");
    if ((args & SPEC_UNITS) && npos < 1 + !!(args & SPEC_CLASSES)) return FAIL("missing the %s", ops->size_name);
    if ((args & SPEC_SHAPE) && !npos) return FAIL("missing the target shape CxHxW");
    if ((args & SPEC_SCALE) && !npos) return FAIL("missing the scale factor");
    if ((args & SPEC_SIGMA) && !npos) return FAIL("missing the standard deviation SIGMA");
    if ((args & SPEC_K) && !(seen & SPEC_K)) return FAIL("missing the kernel size kN");
    if ((args & SPEC_POOL) && !(seen & SPEC_S)) {
        l->sh = l->kh;
        l->sw = l->kw;
    }
#undef FAIL
    return 0;
}

/* ---- items and blocks ------------------------------------------------------------------ *
 * The text, comments stripped, is cut into items at ';', newlines and braces; a brace is an
 * item of its own, so "block {" and "} skip {" need no separators. */

typedef struct {
    char *tok[MAX_TOKENS];
    int nt;
    int overflow; /* more than MAX_TOKENS tokens */
} item_t;

static int is_item(const item_t *it, const char *word) { return it->nt == 1 && strcmp(it->tok[0], word) == 0; }

/* The most layers of a spec: each has a Philox number below 2^16 (dropout keys it at 2^48 L) */
#define MAX_LAYERS 65535

typedef struct {
    item_t *items;
    int n, pos;      /* items and the next one */
    int numbered;    /* layers numbered so far (top level first, then inside blocks) */
    int n_top;       /* top-level layers */
} parser_t;

/* One layer's item */
static int parse_item(layer_t *l, const item_t *it, const char *where, int index) {
    if (it->overflow) return gt_err("%s (%s): too many arguments", where, it->tok[0]);
    return parse_layer(l, (char **)it->tok, it->nt, where, index);
}

void spec_free(layer_t *layers, int n_layers) {
    if (!layers) return;
    for (int i = 0; i < n_layers; i++) spec_free(layers[i].sub, layers[i].n_sub);
    free(layers);
}

/* Parse a brace-enclosed path of block BLK (1-based) from after its '{' through its '}' into
 * l->sub, appending; PATH is "main" or "skip". */
static int parse_path(parser_t *p, layer_t *l, int blk, const char *path, int *cap) {
    int start = l->n_sub;
    for (;;) {
        if (p->pos == p->n) return gt_err("block %d: missing '}' after its %s path", blk, path);
        item_t *it = &p->items[p->pos++];
        if (is_item(it, "}")) break;
        int k = l->n_sub - start + 1;
        if (strcmp(it->tok[0], "{") == 0 || strcmp(it->tok[0], "block") == 0 || strcmp(it->tok[0], "skip") == 0)
            return gt_err("block %d: %s layer %d: unexpected '%s' (blocks do not nest)", blk, path, k, it->tok[0]);
        if (p->numbered >= MAX_LAYERS) return gt_err("too many layers (at most %d)", MAX_LAYERS);
        if (l->n_sub == *cap) {
            *cap *= 2;
            l->sub = gt_xrealloc(l->sub, (size_t)*cap * sizeof *l->sub);
        }
        char where[64];
        snprintf(where, sizeof where, "block %d: %s layer %d", blk, path, k);
        if (parse_item(&l->sub[l->n_sub], it, where, p->numbered)) return -1;
        l->n_sub++;
        p->numbered++;
    }
    if (l->n_sub == start)
        return gt_err("block %d: empty %s path%s", blk, path,
                      strcmp(path, "skip") == 0 ? " (leave out 'skip { }' for an identity shortcut)" : "");
    return 0;
}

/* A block at top-level position blk (1-based), its "block" item consumed: "{ main } [skip { skip }]". */
static int parse_block(parser_t *p, layer_t *l, int blk) {
    memset(l, 0, sizeof *l);
    l->ops = &layer_block_ops;
    l->index = blk - 1;
    if (p->pos == p->n || !is_item(&p->items[p->pos], "{"))
        return gt_err("block %d: expected '{' after 'block' (block { main path } [skip { shortcut }])", blk);
    p->pos++;
    int cap = 4;
    l->sub = gt_xcalloc((size_t)cap, sizeof *l->sub);
    if (parse_path(p, l, blk, "main", &cap)) return -1;
    l->n_main = l->n_sub;
    if (p->pos < p->n && strcmp(p->items[p->pos].tok[0], "skip") == 0) {
        int bare = p->items[p->pos++].nt == 1;
        if (!bare || p->pos == p->n || !is_item(&p->items[p->pos], "{"))
            return gt_err("block %d: expected '{' after 'skip'", blk);
        p->pos++;
        if (parse_path(p, l, blk, "skip", &cap)) return -1;
    }
    return 0;
}

int spec_parse(const char *spec, layer_t **layers, int *n_layers) {
    *layers = NULL;
    *n_layers = 0;
    if (!spec) return gt_err("empty network spec");
    size_t len = strlen(spec);
    /* comments stripped, braces set apart by newlines */
    char *buf = gt_xmalloc(3 * len + 1);
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        if (spec[i] == '#') {
            while (spec[i + 1] && spec[i + 1] != '\n') i++;
            continue;
        }
        if (spec[i] == '{' || spec[i] == '}') {
            buf[j++] = '\n';
            buf[j++] = spec[i];
            buf[j++] = '\n';
        } else {
            buf[j++] = spec[i];
        }
    }
    buf[j] = 0;
    parser_t p = {NULL, 0, 0, 0, 0};
    int icap = 8, cap = 8, n = 0;
    p.items = gt_xcalloc((size_t)icap, sizeof *p.items);
    layer_t *ls = gt_xcalloc((size_t)cap, sizeof *ls);
    char *save = NULL;
    for (char *it = strtok_r(buf, ";\n", &save); it; it = strtok_r(NULL, ";\n", &save)) {
        item_t x = {{NULL}, 0, 0};
        char *s2 = NULL;
        for (char *t = strtok_r(it, " \t\r\f\v", &s2); t; t = strtok_r(NULL, " \t\r\f\v", &s2)) {
            if (x.nt == MAX_TOKENS) {
                x.overflow = 1;
                break;
            }
            x.tok[x.nt++] = t;
        }
        if (x.nt == 0) continue;
        if (p.n == icap) {
            icap *= 2;
            p.items = gt_xrealloc(p.items, (size_t)icap * sizeof *p.items);
        }
        p.items[p.n++] = x;
    }
    /* the top level first: its layers are numbered 0.. in order, those inside blocks after them */
    int depth = 0;
    for (int i = 0; i < p.n; i++) {
        if (is_item(&p.items[i], "{")) depth++;
        else if (is_item(&p.items[i], "}")) depth--;
        else if (depth == 0 && !is_item(&p.items[i], "skip")) p.n_top++;
    }
    p.numbered = p.n_top;
    while (p.pos < p.n) {
        item_t *it = &p.items[p.pos++];
        if (n == cap) {
            cap *= 2;
            ls = gt_xrealloc(ls, (size_t)cap * sizeof *ls);
        }
        if (n >= MAX_LAYERS) {
            gt_err("too many layers (at most %d)", MAX_LAYERS);
            goto fail;
        }
        if (strcmp(it->tok[0], "block") == 0) {
            if (it->nt > 1) {
                gt_err("block %d: unexpected argument '%s' (block { main path } [skip { shortcut }])", n + 1,
                       it->tok[1]);
                goto fail;
            }
            int rc = parse_block(&p, &ls[n], n + 1);
            n++;
            if (rc) goto fail;
            continue;
        }
        if (strcmp(it->tok[0], "skip") == 0 || strcmp(it->tok[0], "{") == 0 || strcmp(it->tok[0], "}") == 0) {
            gt_err("layer %d: unexpected '%s' (a shortcut is written block { main path } skip { shortcut })", n + 1,
                   it->tok[0]);
            goto fail;
        }
        char where[32];
        snprintf(where, sizeof where, "layer %d", n + 1);
        if (parse_item(&ls[n], it, where, n)) goto fail;
        n++;
    }
    free(buf);
    free(p.items);
    if (n == 0) {
        free(ls);
        return gt_err("empty network spec");
    }
    *layers = ls;
    *n_layers = n;
    return 0;
fail:
    free(buf);
    free(p.items);
    spec_free(ls, n);
    return -1;
}

/* ---- normalised text ------------------------------------------------------------------- *
 * Numbers in their shortest exact text (gt_format_exact): slope, p and sigma as the float a layer
 * keeps, eps and momentum as doubles. */

static void fmt_pair(char *buf, size_t cap, int a, int b) {
    if (a == b) snprintf(buf, cap, "%d", a);
    else snprintf(buf, cap, "%dx%d", a, b);
}

typedef struct {
    char *s;
    size_t len, cap;
} sbuf_t;

static void sb_add(sbuf_t *b, const char *t) {
    size_t n = strlen(t);
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = gt_xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->len, t, n + 1);
    b->len += n;
}

static void fmt_seq(sbuf_t *b, const layer_t *layers, int n_layers);

/* A block: "block { main } skip { shortcut }", the skip part only when it has layers */
static void fmt_block(sbuf_t *b, const layer_t *l) {
    sb_add(b, "block { ");
    fmt_seq(b, l->sub, l->n_main);
    sb_add(b, " }");
    if (l->n_sub > l->n_main) {
        sb_add(b, " skip { ");
        fmt_seq(b, l->sub + l->n_main, l->n_sub - l->n_main);
        sb_add(b, " }");
    }
}

static void fmt_seq(sbuf_t *bp, const layer_t *layers, int n_layers) {
    sbuf_t b = *bp;
    for (int i = 0; i < n_layers; i++) {
        const layer_t *l = &layers[i];
        const char *kw = l->ops->name;
        int a = l->ops->args;
        char t[64];
        if (i) sb_add(&b, "; ");
        if (l->n_sub) {
            fmt_block(&b, l);
            continue;
        }
        sb_add(&b, kw);
        if (a & SPEC_CLASSES) {
            snprintf(t, sizeof t, " %d", l->classes);
            sb_add(&b, t);
        }
        if (a & SPEC_UNITS) {
            snprintf(t, sizeof t, " %d", l->units);
            sb_add(&b, t);
        }
        if (a & SPEC_SCALE) {
            snprintf(t, sizeof t, " %d", l->scale);
            sb_add(&b, t);
        }
        if (a & SPEC_SHAPE) {
            snprintf(t, sizeof t, " %dx%dx%d", l->reshape.c, l->reshape.h, l->reshape.w);
            sb_add(&b, t);
        }
        if (a & SPEC_SLOPE) {
            sb_add(&b, " ");
            gt_format_exact(t, sizeof t, l->slope, 1, 1);
            sb_add(&b, t);
        }
        if (a & SPEC_PROB) {
            sb_add(&b, " ");
            gt_format_exact(t, sizeof t, l->p, 1, 1);
            sb_add(&b, t);
        }
        if (a & SPEC_SIGMA) {
            sb_add(&b, " ");
            gt_format_exact(t, sizeof t, l->sigma, 1, 1);
            sb_add(&b, t);
        }
        if (a & SPEC_K) {
            sb_add(&b, " k");
            fmt_pair(t, sizeof t, l->kh, l->kw);
            sb_add(&b, t);
        }
        if (a & SPEC_S) {
            sb_add(&b, " s");
            fmt_pair(t, sizeof t, l->sh, l->sw);
            sb_add(&b, t);
        }
        if (a & SPEC_P) {
            sb_add(&b, " p");
            fmt_pair(t, sizeof t, l->ph, l->pw);
            sb_add(&b, t);
        }
        if (a & SPEC_OP) {
            sb_add(&b, " op");
            fmt_pair(t, sizeof t, l->oph, l->opw);
            sb_add(&b, t);
        }
        if (a & SPEC_EPS) {
            sb_add(&b, " eps=");
            gt_format_exact(t, sizeof t, l->eps, 1, 0);
            sb_add(&b, t);
        }
        if (a & SPEC_MOM) {
            sb_add(&b, " momentum=");
            gt_format_exact(t, sizeof t, l->momentum, 1, 0);
            sb_add(&b, t);
        }
        if ((a & SPEC_NOBIAS) && !l->has_bias) sb_add(&b, " nobias");
        if ((a & SPEC_AFFINE) && !l->has_bias) sb_add(&b, " noaffine");
        if ((a & SPEC_NOPAD) && l->exclude_pad) sb_add(&b, " nopad");
        if ((a & SPEC_SN) && l->sn == 1) sb_add(&b, " sn");
        if ((a & SPEC_WN) && l->wn) sb_add(&b, " wn");
        if ((a & SPEC_SN) && l->sn > 1) {
            snprintf(t, sizeof t, " sn=%d", l->sn);
            sb_add(&b, t);
        }
    }
    *bp = b;
}

char *spec_format(const layer_t *layers, int n_layers) {
    sbuf_t b = {NULL, 0, 0};
    sb_add(&b, "");
    fmt_seq(&b, layers, n_layers);
    return b.s;
}
