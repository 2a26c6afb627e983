/* aug-probe: applies DiffAugment's three maps (lib/gan/diffaug.h) to given tensors on the CPU
 * backend, for the PyTorch parity script tests/ref/test_augment_torch.py.
 *
 *   aug-probe --policy P --x x.npy --v v.npy --seed S --step N --index0 I --out DIR [--threads T]
 *
 * x.npy and v.npy are float32 images B x C x H x W (the same shape). Draws the parameters of
 * samples I .. I + B - 1 for Philox step N, and writes into DIR (float32, B x C x H x W):
 * y.npy = T(x), ty.npy = the linear part of T applied to v, dx.npy = its adjoint applied to v. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/npy.h"
#include "lib/base/common.h"
#include "lib/gan/diffaug.h"
#include "lib/gan/settings.h"

static void fail(const char *what) {
    fprintf(stderr, "aug-probe: %s\n", what);
    exit(1);
}

static void save(const char *dir, const char *name, const tensor_t *like, const float *data) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) fail("cannot write the output");
    tensor_t t = *like;
    t.data = (void *)data;
    if (npy_write(f, &t) || fclose(f)) fail("cannot write the output");
}

int main(int argc, char **argv) {
    const char *policy = NULL, *xp = NULL, *vp = NULL, *out = NULL;
    unsigned long long seed = 0, step = 0, index0 = 0;
    int threads = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--policy")) policy = v;
        else if (!strcmp(k, "--x")) xp = v;
        else if (!strcmp(k, "--v")) vp = v;
        else if (!strcmp(k, "--out")) out = v;
        else if (!strcmp(k, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(k, "--step")) step = strtoull(v, NULL, 10);
        else if (!strcmp(k, "--index0")) index0 = strtoull(v, NULL, 10);
        else if (!strcmp(k, "--threads")) threads = atoi(v);
        else fail("unknown option");
    }
    if (!policy || !xp || !vp || !out) fail("give --policy, --x, --v and --out");
    int pol;
    if (gan_augment_parse(policy, &pol) || !pol) fail("bad --policy");
    tensor_t x, v;
    if (npy_load(xp, &x, 1) || npy_load(vp, &v, 1)) fail(gt_errmsg());
    if (x.ndim != 4 || v.ndim != 4 || tensor_numel(&x) != tensor_numel(&v)) fail("x and v must be B x C x H x W alike");
    int B = (int)x.shape[0];
    shape3_t s = {(int)x.shape[1], (int)x.shape[2], (int)x.shape[3]};
    size_t n = (size_t)tensor_numel(&x), bytes = sizeof(float) * (n ? n : 1);
    backend_t *be = backend_cpu(threads);
    if (!be) fail(gt_errmsg());
    float *dx = be->alloc(be, bytes), *dv = be->alloc(be, bytes), *dy = be->alloc(be, bytes);
    float *host = gt_xmalloc(bytes);
    be->upload(be, dx, x.data, sizeof(float) * n);
    be->upload(be, dv, v.data, sizeof(float) * n);
    diffaug_t a;
    diffaug_init(&a, be, pol, B, s);
    diffaug_draw(&a, be, seed, (uint32_t)step, index0, B);
    const char *names[3] = {"y.npy", "ty.npy", "dx.npy"};
    const diffaug_map_t maps[3] = {DIFFAUG_APPLY, DIFFAUG_TANGENT, DIFFAUG_ADJOINT};
    for (int k = 0; k < 3; k++) {
        diffaug_map(&a, be, maps[k], dy, k ? dv : dx, B);
        be->download(be, host, dy, sizeof(float) * n);
        save(out, names[k], &x, host);
    }
    diffaug_free(&a, be);
    free(host);
    return 0;
}
