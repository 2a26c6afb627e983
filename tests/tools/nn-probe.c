/* nn-probe: runs one forward and backward pass of a network built from a spec and writes
 * every tensor, for the PyTorch parity scripts (tests/ref/nnref.py).
 *
 *   nn-probe --spec TEXT --in CxHxW --batch B --x x.npy --out DIR
 *            [--params p.npy | --init torch|dcgan] [--state s.npy] [--dy dy.npy]
 *            [--tx tx.npy --dty dty.npy] [--labels l.npy] [--train|--eval] [--seed N] [--step N]
 *            [--threads N]
 *
 * Inputs are float32 (or float64) .npy files, C order, of the right number of elements.
 * params.npy is the flat parameter vector in layer order, each tensor in PyTorch layout,
 * weight then bias; state.npy the flat state per layer: BatchNorm's running mean then var,
 * spectral normalization's u then v. Writes into DIR (float32): params.npy (the parameters
 * used), state0.npy (the state before the pass), y.npy, act_I.npy (output of layer I, from 0),
 * state.npy (after the pass), and with --dy: dx.npy and dparams.npy; in plain mode the outputs
 * and, with --dy, the gradients w.r.t. them come from the net's observer (net.h net_observe), so
 * layers inside residual blocks have theirs too: act_NAME.npy and dact_NAME.npy with NAME the
 * layer's torch name ("3", "3.main.2"; layers before the first with parameters get no dact when
 * backward does not reach them);
 * with --tx (jvp mode: y = f(x), ty = J tx, after a plain forward when the net has
 * spectral-normalized layers, the forward that iterates their u, v as in the trainer's
 * penalty; then the reverse pass of the pair with cotangents
 * dy (zeros when not given) and dty): ty.npy, dx.npy, dtx.npy, dparams.npy.
 * Also DIR/spec.txt (normalised spec) and DIR/tensors.txt ("name count d0 d1 ..." per line).
 * --seed and --step key dropout masks (PHILOX_STREAM_DROPOUT) and --init. --labels gives the
 * batch's classes (B whole numbers, stored as floats) to the class-conditional layers.
 *
 *   nn-probe --preset NAME --data CxHxW --zdim N [--classes K]
 * prints the preset's G spec, a newline and its D spec (lib/gan/presets.h), and exits. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/common.h"
#include "lib/nn/net.h"
#include "lib/gan/presets.h"

static void fail(const char *fmt, const char *a) {
    fprintf(stderr, "nn-probe: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, "\n");
    exit(1);
}

/* A minimal .npy reader (float32/float64, C order, version 1-3): returns n floats. */
static float *npy_read_f32(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) fail("cannot open %s", path);
    unsigned char magic[8];
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, "\x93NUMPY", 6)) fail("%s: not a .npy file", path);
    size_t hl;
    if (magic[6] == 1) {
        unsigned char b[2];
        if (fread(b, 1, 2, f) != 2) fail("%s: short header", path);
        hl = b[0] | (size_t)b[1] << 8;
    } else {
        unsigned char b[4];
        if (fread(b, 1, 4, f) != 4) fail("%s: short header", path);
        hl = b[0] | (size_t)b[1] << 8 | (size_t)b[2] << 16 | (size_t)b[3] << 24;
    }
    char *h = gt_xmalloc(hl + 1);
    if (fread(h, 1, hl, f) != hl) fail("%s: short header", path);
    h[hl] = 0;
    int f8 = strstr(h, "<f8") != NULL;
    if (!f8 && !strstr(h, "<f4")) fail("%s: want float32 or float64", path);
    if (strstr(h, "'fortran_order': True")) fail("%s: Fortran order", path);
    char *sh = strstr(h, "'shape':");
    if (!sh) fail("%s: no shape", path);
    sh = strchr(sh, '(');
    size_t cnt = 1;
    for (char *p = sh + 1; *p && *p != ')';) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p) {
            p++;
            continue;
        }
        cnt *= (size_t)v;
        p = end;
    }
    free(h);
    float *out = gt_xmalloc(sizeof(float) * (cnt ? cnt : 1));
    for (size_t i = 0; i < cnt; i++) {
        if (f8) {
            double d;
            if (fread(&d, 8, 1, f) != 1) fail("%s: short data", path);
            out[i] = (float)d;
        } else if (fread(&out[i], 4, 1, f) != 1) {
            fail("%s: short data", path);
        }
    }
    fclose(f);
    *n = cnt;
    return out;
}

static void npy_write_f32(const char *dir, const char *name, const float *d, int ndim, const long *shape) {
    char path[4096], hdr[256], sh[128] = "";
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t cnt = 1;
    for (int i = 0; i < ndim; i++) {
        char t[32];
        snprintf(t, sizeof t, "%ld%s", shape[i], ndim == 1 ? "," : i + 1 < ndim ? ", " : "");
        strcat(sh, t);
        cnt *= (size_t)shape[i];
    }
    int n = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", sh);
    int total = 10 + n + 1;
    int pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f) fail("cannot write %s", path);
    unsigned short hl = (unsigned short)(n + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    unsigned char b[2] = {(unsigned char)(hl & 255), (unsigned char)(hl >> 8)};
    fwrite(b, 1, 2, f);
    fwrite(hdr, 1, (size_t)n, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    if (cnt && fwrite(d, sizeof(float), cnt, f) != cnt) fail("write error on %s", path);
    if (fclose(f)) fail("write error on %s", path);
}

static void write_batch(const char *dir, const char *name, const float *d, int B, shape3_t s) {
    long shape[4] = {B, s.c, s.h, s.w};
    npy_write_f32(dir, name, d, 4, shape);
}

/* The observer of plain mode: every layer's output as act_NAME.npy, every gradient w.r.t. one as
 * dact_NAME.npy (the net's input and input gradient are x and dx.npy already). */
static void probe_observe(void *arg, const nn_ctx_t *ctx, const nn_event_t *e) {
    if (strcmp(e->name, "input") == 0) return;
    size_t cnt = (size_t)e->B * (size_t)shape3_size(e->shape);
    float *h = gt_xmalloc(sizeof(float) * (cnt ? cnt : 1));
    nn_event_download(ctx, e, h);
    char nm[64];
    snprintf(nm, sizeof nm, "%s_%s.npy", e->grad ? "dact" : "act", e->name);
    write_batch((const char *)arg, nm, h, e->B, e->shape);
    free(h);
}

static float *load_n(const char *path, size_t want, const char *what) {
    size_t n;
    float *d = npy_read_f32(path, &n);
    if (n != want) {
        fprintf(stderr, "nn-probe: %s: %zu values, expected %zu for %s\n", path, n, want, what);
        exit(1);
    }
    return d;
}

int main(int argc, char **argv) {
    const char *spec = NULL, *in_s = NULL, *params_p = NULL, *state_p = NULL, *x_p = NULL, *dy_p = NULL,
               *tx_p = NULL, *dty_p = NULL, *out = NULL, *init_s = "torch", *preset = NULL, *data_s = NULL,
               *zdim_s = NULL, *labels_p = NULL, *classes_s = "0";
    int B = 0, training = 1, threads = 1;
    unsigned long long seed = 1, step = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
#define ARG(name, var)                                     \
    if (strcmp(a, name) == 0) {                            \
        if (++i >= argc) fail("%s needs a value", name);   \
        var = argv[i];                                     \
        continue;                                          \
    }
        ARG("--spec", spec) ARG("--in", in_s) ARG("--params", params_p) ARG("--state", state_p) ARG("--x", x_p)
        ARG("--preset", preset) ARG("--data", data_s) ARG("--zdim", zdim_s) ARG("--dy", dy_p) ARG("--tx", tx_p) ARG("--dty", dty_p) ARG("--out", out) ARG("--init", init_s) ARG("--labels", labels_p) ARG("--classes", classes_s)
        if (strcmp(a, "--batch") == 0 || strcmp(a, "--seed") == 0 || strcmp(a, "--step") == 0 ||
            strcmp(a, "--threads") == 0) {
            if (++i >= argc) fail("%s needs a value", a);
            char *end;
            unsigned long long v = strtoull(argv[i], &end, 10);
            if (*end || end == argv[i]) fail("bad number '%s'", argv[i]);
            if (a[2] == 'b') B = (int)v;
            else if (a[3] == 'e') seed = v;
            else if (a[3] == 't') step = v;
            else threads = (int)v;
            continue;
        }
        if (strcmp(a, "--train") == 0) training = 1;
        else if (strcmp(a, "--eval") == 0) training = 0;
        else fail("unknown option '%s'", a);
    }
    if (preset) {
        shape3_t d;
        preset_t p;
        if (!data_s || !zdim_s || sscanf(data_s, "%dx%dx%d", &d.c, &d.h, &d.w) != 3)
            fail("%s", "--preset needs --data CxHxW and --zdim N");
        if (preset_get_classes(preset, d, atoi(zdim_s), atoi(classes_s), &p)) fail("%s", gt_errmsg());
        printf("%s\n%s\n", p.g, p.d);
        preset_free(&p);
        return 0;
    }
    if (!spec || !in_s || !x_p || !out || B <= 0) fail("%s", "need --spec, --in, --batch, --x and --out");
    shape3_t in;
    if (sscanf(in_s, "%dx%dx%d", &in.c, &in.h, &in.w) != 3) fail("bad --in '%s'", in_s);

    backend_t *be = backend_cpu(threads);
    net_t n;
    if (net_build(&n, spec, in, be) || net_alloc(&n, B)) fail("%s", gt_errmsg());
    if (params_p) {
        float *p = load_n(params_p, n.n_params, "the parameters");
        memcpy(n.params, p, sizeof(float) * n.n_params);
        free(p);
    } else {
        net_init(&n, strcmp(init_s, "dcgan") == 0 ? INIT_DCGAN : INIT_TORCH, seed);
    }
    if (state_p) {
        float *s = load_n(state_p, n.n_state, "the state");
        memcpy(n.state, s, sizeof(float) * n.n_state);
        free(s);
    } else if (params_p) {
        /* state not given: the init's (BatchNorm: mean 0, var 1) without touching params */
        float *keep = gt_xmalloc(sizeof(float) * (n.n_params ? n.n_params : 1));
        memcpy(keep, n.params, sizeof(float) * n.n_params);
        net_init(&n, INIT_TORCH, seed);
        memcpy(n.params, keep, sizeof(float) * n.n_params);
        free(keep);
    }
    long pshape[1] = {(long)n.n_params}, s0shape[1] = {(long)n.n_state};
    npy_write_f32(out, "params.npy", n.params, 1, pshape);
    npy_write_f32(out, "state0.npy", n.state, 1, s0shape);

    size_t nin = (size_t)B * (size_t)shape3_size(in), nout = (size_t)B * (size_t)shape3_size(n.out);
    float *x = load_n(x_p, nin, "the input");
    nn_ctx_t ctx = net_ctx(&n, training, seed, (uint32_t)step, 0);
    int64_t *labels = NULL;
    if (labels_p) {
        float *lf = load_n(labels_p, (size_t)B, "the labels");
        labels = gt_xmalloc(sizeof *labels * (size_t)B);
        for (int i = 0; i < B; i++) labels[i] = (int64_t)lf[i];
        free(lf);
        ctx.labels = labels;
    }
    float *dx = gt_xcalloc(nin, sizeof(float)), *dtx = gt_xcalloc(nin, sizeof(float));
    float *dy = dy_p ? load_n(dy_p, nout, "the output gradient") : NULL;
    net_zero_grad(&n);
    const float *y;
    if (tx_p) {
        if (net_jvp_ok(&n)) fail("%s", gt_errmsg());
        float *tx = load_n(tx_p, nin, "the input tangent");
        float *dty = dty_p ? load_n(dty_p, nout, "the tangent's gradient") : gt_xcalloc(nout, sizeof(float));
        const float *ty;
        /* a spectral-normalized net's tangent pass follows a plain forward, as in the trainer's
           penalty: that forward is the one use of the net that iterates u, v (layer_sn.c) */
        if (n.sn_layers) net_forward(&n, &ctx, x, B);
        y = net_jvp_forward(&n, &ctx, x, tx, B, &ty);
        write_batch(out, "ty.npy", ty, B, n.out);
        write_batch(out, "y.npy", y, B, n.out);
        for (int i = 0; i < n.n_layers; i++) {
            char nm[64];
            snprintf(nm, sizeof nm, "act_%d.npy", i);
            write_batch(out, nm, n.acts[i + 1], B, n.layers[i].out);
        }
        net_jvp_backward(&n, &ctx, dy, dty, dx, dtx, B);
        write_batch(out, "dx.npy", dx, B, in);
        write_batch(out, "dtx.npy", dtx, B, in);
        npy_write_f32(out, "dparams.npy", n.grads, 1, pshape);
        free(tx);
        free(dty);
    } else {
        nn_observer_t obs = {probe_observe, (void *)out};
        net_observe(&n, &obs);
        ctx = net_ctx(&n, training, seed, (uint32_t)step, 0);
        ctx.labels = labels;
        y = net_forward(&n, &ctx, x, B);
        write_batch(out, "y.npy", y, B, n.out);
        if (dy) {
            net_backward(&n, &ctx, dy, dx, B);
            write_batch(out, "dx.npy", dx, B, in);
            npy_write_f32(out, "dparams.npy", n.grads, 1, pshape);
        }
    }
    long sshape[1] = {(long)n.n_state};
    npy_write_f32(out, "state.npy", n.state, 1, sshape);

    char path[4096];
    snprintf(path, sizeof path, "%s/spec.txt", out);
    FILE *f = fopen(path, "w");
    if (!f) fail("cannot write %s", path);
    fprintf(f, "%s\n", n.spec);
    fclose(f);
    snprintf(path, sizeof path, "%s/tensors.txt", out);
    f = fopen(path, "w");
    if (!f) fail("cannot write %s", path);
    for (int j = 0; j < net_n_tensors(&n); j++) {
        net_tensor_t t;
        net_tensor(&n, j, &t);
        fprintf(f, "%s %zu", t.name, t.count);
        for (int d = 0; d < t.ndim; d++) fprintf(f, " %lld", (long long)t.shape[d]);
        if (t.i64) fprintf(f, " = %lld", *t.i64);
        fprintf(f, "\n");
    }
    fclose(f);
    free(x);
    free(dx);
    free(dtx);
    free(dy);
    free(labels);
    net_free(&n);
    return 0;
}
