/* features.c: feature extractors (inception, pixels, a checkpoint's D), gan-fid's image
 * conversion and statistics files (features.h). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "formats/npz.h"
#include "lib/base/common.h"
#include "lib/fid/resample.h"
#include "features.h"

/* FNV-1a over bytes, continuing from h */
static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

/* The layer number after "PATH:" as the programs' integer options read it (cli.h cli_long's
 * messages), or -2 with the message. */
static int parse_layer(const char *opt, const char *s, int *out) {
    if (!*s) return gt_err("%s LAYER: missing value", opt), -2;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end || errno == ERANGE) return gt_err("%s LAYER: '%s' is not an integer", opt, s), -2;
    if (v < 0 || v > (1 << 20)) return gt_err("%s LAYER: %lld is out of range [0, %d]", opt, v, 1 << 20), -2;
    *out = (int)v;
    return 0;
}

int extractor_parse(extractor_t *ex, const char *f, const char *opt) {
    ex->layer = -1;
    ex->opt = opt;
    if (strcmp(f, "inception") == 0) {
        ex->kind = FEAT_INCEPTION;
        return 0;
    }
    if (strcmp(f, "pixels") == 0) {
        ex->kind = FEAT_PIXELS;
        return 0;
    }
    ex->kind = FEAT_NET;
    struct stat st;
    const char *colon = strrchr(f, ':');
    if (stat(f, &st) == 0 || !colon) {
        ex->net_path = f;
        return 0;
    }
    int rc = parse_layer(opt, colon + 1, &ex->layer);
    if (rc) return rc;
    size_t n = (size_t)(colon - f);
    char *path = gt_xmalloc(n + 1);
    memcpy(path, f, n);
    path[n] = 0;
    ex->net_path = ex->path_owned = path;
    return 0;
}


int extractor_setup(extractor_t *ex, shape3_t s, const char *set_name) {
    if (ex->ready) {
        if (ex->kind != FEAT_INCEPTION && (s.c != ex->shape.c || s.h != ex->shape.h || s.w != ex->shape.w))
            return gt_err("%s: images are %dx%dx%d, the other set's %dx%dx%d: %s features need the same shape",
                          set_name, s.c, s.h, s.w, ex->shape.c, ex->shape.h, ex->shape.w,
                          ex->kind == FEAT_PIXELS ? "pixel" : "network");
        return 0;
    }
    ex->shape = s;
    if (ex->kind == FEAT_PIXELS) {
        long d = shape3_size(s);
        if (d > 32768)
            return gt_err("%s: %dx%dx%d images give %ld pixel features, too many for a covariance matrix "
                          "(at most 32768): use %s inception or a network",
                          set_name, s.c, s.h, s.w, d, ex->opt);
        ex->d = (int)d;
        snprintf(ex->name, NAME_LEN, "pixels");
    } else if (ex->kind == FEAT_NET) {
        gan_model_t *m = &ex->model;
        if (model_load(m, ex->net_path, ex->be, ex->batch)) return -1;
        ex->ready = 1; /* the model is loaded: extractor_free frees it */
        net_t *D = &m->D;
        net_fuse(D, 0); /* every layer's output written: a fused pair leaves its first one's unwritten */
        if (ex->layer < 0) ex->layer = D->n_layers - 2;
        if (ex->layer < 0 || ex->layer >= D->n_layers)
            return gt_err("%s %s:%d: D has layers 0 to %d", ex->opt, ex->net_path, ex->layer, D->n_layers - 1), -2;
        if (s.c != m->shape.c || s.h != m->shape.h || s.w != m->shape.w)
            return gt_err("%s: images are %dx%dx%d, but %s's D takes %dx%dx%d", set_name, s.c, s.h, s.w,
                          ex->net_path, m->shape.c, m->shape.h, m->shape.w);
        long d = shape3_size(D->layers[ex->layer].out);
        if (d > 32768)
            return gt_err("%s: layer %d of D gives %ld features, too many for a covariance matrix (at most 32768)",
                          ex->opt, ex->layer, d),
                   -2;
        ex->d = (int)d;
        uint64_t h = fnv1a(0xcbf29ce484222325ULL, D->spec, strlen(D->spec));
        size_t nv = D->n_params > D->n_state ? D->n_params : D->n_state;
        float *v = gt_xmalloc(sizeof(float) * (nv ? nv : 1)); /* the weights live on the device */
        ex->be->download(ex->be, v, D->params, sizeof(float) * D->n_params);
        h = fnv1a(h, v, sizeof(float) * D->n_params);
        ex->be->download(ex->be, v, D->state, sizeof(float) * D->n_state);
        h = fnv1a(h, v, sizeof(float) * D->n_state);
        free(v);
        snprintf(ex->name, NAME_LEN, "net:%016llx:%d", (unsigned long long)h, ex->layer);
        const char *base = strrchr(ex->net_path, '/');
        snprintf(ex->label, NAME_LEN, "FD(%s:%d)", base ? base + 1 : ex->net_path, ex->layer);
        ex->out = gt_xmalloc(sizeof(float) * (size_t)ex->batch * (size_t)d);
    } else {
        if (!ex->weights)
            return gt_err("%s: images need a feature network and there are no Inception weights: give %s FILE or set "
                          "GAN_FID_WEIGHTS (make the file from pytorch-fid's pt_inception-2015-12-05-6726825d.pth with "
                          "/usr/bin/python3 tools/fid-weights.py IN.pth OUT.safetensors), or use %s pixels or "
                          "%s CHECKPOINT.st[:LAYER]",
                          set_name, ex->weights_opt ? ex->weights_opt : "--weights", ex->opt, ex->opt);
        if (s.c != 1 && s.c != 3)
            return gt_err("%s: images have %d channels; Inception takes gray (1) or RGB (3) images", set_name, s.c);
        if (inception_load(&ex->inc, ex->weights, ex->be, ex->batch)) return -1;
        ex->d = INCEPTION_DIM;
        snprintf(ex->name, NAME_LEN, ex->clean ? "inception-clean" : "inception");
        ex->out = gt_xmalloc(sizeof(float) * (size_t)ex->batch * INCEPTION_DIM);
        ex->out_dev = ex->be->alloc(ex->be, sizeof(float) * (size_t)ex->batch * INCEPTION_DIM);
    }
    ex->ready = 1;
    return 0;
}

/* clean: each channel of each image resized to 299 x 299 on the host as clean-fid does (PIL's
 * BICUBIC in mode 'F', lib/fid/resample.h), clipped to [-1, 1] (clean-fid clips to 0..255), then
 * the network (whose bilinear resize of 299 x 299 to 299 x 299 is the identity). */
static const float *extractor_run_clean(extractor_t *ex, const float *x, int B, shape3_t s) {
    const int S = INCEPTION_SIZE;
    size_t plane = (size_t)S * S, n = (size_t)B * (size_t)s.c * plane, tmp = (size_t)S * (size_t)s.h;
    if (n > ex->rs_floats) {
        free(ex->rs);
        ex->rs = gt_xmalloc(sizeof(float) * n);
        ex->rs_floats = n;
    }
    if (tmp > ex->rs_tmp_floats) {
        free(ex->rs_tmp);
        ex->rs_tmp = gt_xmalloc(sizeof(float) * tmp);
        ex->rs_tmp_floats = tmp;
    }
    for (int p = 0; p < B * s.c; p++) {
        float *dst = ex->rs + (size_t)p * plane;
        resample_bicubic_aa(dst, S, S, x + (size_t)p * (size_t)s.h * (size_t)s.w, s.h, s.w, ex->rs_tmp);
        for (size_t k = 0; k < plane; k++) dst[k] = dst[k] < -1.0f ? -1.0f : dst[k] > 1.0f ? 1.0f : dst[k];
    }
    backend_t *be = ex->be;
    if (n > ex->x_floats) {
        if (ex->x_dev) be->free(be, ex->x_dev);
        ex->x_dev = be->alloc(be, sizeof(float) * n);
        ex->x_floats = n;
    }
    be->upload(be, ex->x_dev, ex->rs, sizeof(float) * n);
    if (inception_forward(ex->inc, ex->out_dev, ex->x_dev, B, s.c, S, S)) return NULL;
    be->download(be, ex->out, ex->out_dev, sizeof(float) * (size_t)B * INCEPTION_DIM);
    return ex->out;
}

/* The networks run on the backend's device: the images go up, the features come back. */
const float *extractor_run(extractor_t *ex, const float *x, int B, shape3_t s) {
    if (ex->kind == FEAT_PIXELS) return x;
    if (ex->kind == FEAT_INCEPTION && ex->clean) return extractor_run_clean(ex, x, B, s);
    backend_t *be = ex->be;
    size_t n = (size_t)B * (size_t)shape3_size(s);
    if (n > ex->x_floats) { /* once per image shape (the first batch is the largest) */
        if (ex->x_dev) be->free(be, ex->x_dev);
        ex->x_dev = be->alloc(be, sizeof(float) * n);
        ex->x_floats = n;
    }
    be->upload(be, ex->x_dev, x, sizeof(float) * n);
    if (ex->kind == FEAT_NET) {
        net_t *D = &ex->model.D;
        nn_ctx_t ctx = net_ctx(D, 0, ex->model.seed, 0, 0);
        net_forward(D, &ctx, ex->x_dev, B);
        be->download(be, ex->out, D->acts[ex->layer + 1], sizeof(float) * (size_t)B * (size_t)ex->d);
        return ex->out;
    }
    if (inception_forward(ex->inc, ex->out_dev, ex->x_dev, B, s.c, s.h, s.w)) return NULL;
    be->download(be, ex->out, ex->out_dev, sizeof(float) * (size_t)B * INCEPTION_DIM);
    return ex->out;
}

void extractor_free(extractor_t *ex) {
    if (ex->x_dev) ex->be->free(ex->be, ex->x_dev);
    if (ex->out_dev) ex->be->free(ex->be, ex->out_dev);
    if (ex->kind == FEAT_NET && ex->ready) model_free(&ex->model);
    if (ex->inc) inception_free(ex->inc);
    free(ex->out);
    free(ex->rs);
    free(ex->rs_tmp);
    free(ex->path_owned);
    ex->x_dev = ex->out_dev = ex->out = ex->rs = ex->rs_tmp = NULL;
    ex->rs_floats = ex->rs_tmp_floats = 0;
    ex->inc = NULL;
    ex->path_owned = NULL;
    ex->ready = 0;
}

int features_unit_range(float *x, const void *raw, dtype_t dt, size_t n, int64_t first, size_t img,
                        const char *name, int64_t *outside) {
    int64_t out = 0;
    for (size_t k = 0; k < n; k++) {
        float v;
        if (dt == DT_U8) {
            /* as pytorch-fid: ToTensor's u / 255 in float32, then 2x - 1 */
            v = 2.0f * (((const uint8_t *)raw)[k] / 255.0f) - 1.0f;
        } else {
            double w = dt == DT_F32 ? ((const float *)raw)[k] : ((const double *)raw)[k];
            if (!isfinite(w))
                return gt_err("%s: image %lld holds %s values", name, (long long)(first + (int64_t)(k / img)),
                              isnan(w) ? "NaN" : "infinite");
            v = (float)w;
            out += v < -1.0f || v > 1.0f;
        }
        x[k] = v;
    }
    *outside = out;
    return 0;
}

static int stats_body(const npz_file_t *z, const char *name, fid_stats_t *st, char *featname) {
    const tensor_t *mu = npz_find(z, "mu"), *sigma = npz_find(z, "sigma"), *n = npz_find(z, "n"),
                   *feat = npz_find(z, "features");
    if (!mu || !sigma) {
        char keys[256] = "";
        for (int i = 0; i < z->n; i++)
            snprintf(keys + strlen(keys), sizeof keys - strlen(keys), "%s%s", i ? ", " : "", z->entries[i].name);
        return gt_err("%s: statistics without '%s' (the file holds: %s); gan-fid needs mu and sigma, as pytorch-fid "
                      "writes them",
                      name, mu ? "sigma" : "mu", z->n ? keys : "nothing");
    }
    if (mu->ndim != 1 || (mu->dtype != DT_F64 && mu->dtype != DT_F32))
        return gt_err("%s: mu must be a float vector", name);
    int64_t d = mu->shape[0];
    if (sigma->ndim != 2 || sigma->shape[0] != d || sigma->shape[1] != d ||
        (sigma->dtype != DT_F64 && sigma->dtype != DT_F32))
        return gt_err("%s: sigma must be a %lld x %lld float matrix, like mu's %lld features", name, (long long)d,
                      (long long)d, (long long)d);
    if (d < 1 || d > 32768) return gt_err("%s: %lld features: out of range [1, 32768]", name, (long long)d);
    int64_t count = 0;
    if (n) {
        if (n->dtype != DT_I64 || tensor_numel(n) != 1) return gt_err("%s: n must be one int64 (the sample count)", name);
        count = ((const int64_t *)n->data)[0];
        if (count < 2) return gt_err("%s: n = %lld: statistics need at least 2 samples", name, (long long)count);
    }
    featname[0] = 0;
    if (feat) {
        if (feat->dtype != DT_U8 || feat->ndim != 1 || feat->shape[0] >= NAME_LEN)
            return gt_err("%s: 'features' must be a short uint8 string", name);
        memcpy(featname, feat->data, (size_t)feat->shape[0]);
        featname[feat->shape[0]] = 0;
        for (int64_t i = 0; i < feat->shape[0]; i++)
            if (featname[i] < 32 || featname[i] > 126) return gt_err("%s: 'features' is not printable text", name);
    }
    size_t dd = (size_t)d * (size_t)d;
    double *m = NULL, *sg = NULL; /* float32 arrays converted (pytorch-fid's mu is float32) */
    if (mu->dtype != DT_F64) {
        m = gt_xmalloc(sizeof(double) * (size_t)d);
        for (int64_t i = 0; i < d; i++) m[i] = tensor_get(mu, i);
    }
    if (sigma->dtype != DT_F64) {
        sg = gt_xmalloc(sizeof(double) * dd);
        for (size_t i = 0; i < dd; i++) sg[i] = tensor_get(sigma, (int64_t)i);
    }
    int rc = fid_stats_from(st, (int)d, count, m ? m : mu->data, sg ? sg : sigma->data);
    free(m);
    free(sg);
    if (rc) return gt_err_prefix(name);
    return 0;
}

int features_load_stats(const char *path, const char *name, fid_stats_t *st, char *feat) {
    npz_file_t z;
    if (npz_load(path, &z)) return -1;
    int rc = stats_body(&z, name, st, feat);
    npz_free(&z);
    return rc;
}
