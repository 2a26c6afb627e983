/* tensor.c: shapes, allocation and element access (see tensor.h). */
#define _DEFAULT_SOURCE
#include "tensor.h"
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

size_t dtype_size(dtype_t t) {
    switch (t) {
    case DT_F32: return 4;
    case DT_F64: return 8;
    case DT_U8: return 1;
    case DT_I64: return 8;
    default: return 0;
    }
}

const char *dtype_name(dtype_t t) {
    switch (t) {
    case DT_F32: return "float32";
    case DT_F64: return "float64";
    case DT_U8: return "uint8";
    case DT_I64: return "int64";
    default: return "?";
    }
}

int64_t tensor_numel(const tensor_t *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

size_t tensor_nbytes(const tensor_t *t) { return (size_t)tensor_numel(t) * dtype_size(t->dtype); }

int tensor_check_shape(dtype_t dt, int ndim, const int64_t *shape) {
    if ((unsigned)dt >= DT_COUNT) return gt_err("unsupported dtype");
    if (ndim < 0 || ndim > TENSOR_MAX_DIMS)
        return gt_err("%d dimensions; at most %d are supported", ndim, TENSOR_MAX_DIMS);
    uint64_t n = dtype_size(dt);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return gt_err("dimension %d is negative (%lld)", i, (long long)shape[i]);
        if (gt_mul_overflow(n, (uint64_t)shape[i], &n) || n > (uint64_t)INT64_MAX)
            return gt_err("dimensions are too large: their product overflows");
    }
    return 0;
}

int tensor_alloc(tensor_t *t, dtype_t dt, int ndim, const int64_t *shape) {
    memset(t, 0, sizeof *t);
    if (tensor_check_shape(dt, ndim, shape)) return -1;
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    size_t n = tensor_nbytes(t);
    t->data = calloc(n ? n : 1, 1);
    if (!t->data) return gt_err("out of memory allocating %zu bytes", n);
    t->owned = 1;
    return 0;
}

void tensor_free(tensor_t *t) {
    if (t->map_base) munmap(t->map_base, t->map_len);
    else if (t->owned) free(t->data);
    memset(t, 0, sizeof *t);
}

void tensor_shape_str(const tensor_t *t, char *buf, size_t n) {
    size_t used = 0;
    if (n == 0) return;
    buf[0] = 0;
    if (t->ndim == 0) {
        snprintf(buf, n, "scalar");
        return;
    }
    for (int i = 0; i < t->ndim && used < n; i++)
        used += snprintf(buf + used, n - used, i ? "x%lld" : "%lld", (long long)t->shape[i]);
}

double tensor_get(const tensor_t *t, int64_t i) {
    switch (t->dtype) {
    case DT_F32: return ((const float *)t->data)[i];
    case DT_F64: return ((const double *)t->data)[i];
    case DT_U8: return ((const uint8_t *)t->data)[i];
    case DT_I64: return (double)((const int64_t *)t->data)[i];
    default: return 0;
    }
}

int tensor_labels(const tensor_t *t, int64_t classes, int64_t n_images, const char *why, int64_t **out) {
    if (t->dtype != DT_I64 && t->dtype != DT_U8)
        return gt_err("labels must be int64 or uint8 (as idx2tensor and gan-sample --labels-out write them), not %s",
                      dtype_name(t->dtype));
    int64_t n = t->ndim >= 1 ? t->shape[0] : 1;
    if (t->ndim < 1 || t->ndim > 2 || (t->ndim == 2 && t->shape[1] != 1) || (n_images >= 0 && n != n_images)) {
        char sh[64];
        tensor_shape_str(t, sh, sizeof sh);
        if (n_images < 0) return gt_err("labels are %s: want one label per image (N or N x 1)", sh);
        return gt_err("labels are %s but the data has %lld images: want one label per image", sh,
                      (long long)n_images);
    }
    int64_t *v = gt_xmalloc(sizeof *v * (size_t)n);
    if (t->dtype == DT_U8)
        for (int64_t i = 0; i < n; i++) v[i] = ((const uint8_t *)t->data)[i];
    else if (n) /* int64, copied whole: mmap'ed data may be unaligned (and no labels may have no data) */
        memcpy(v, t->data, sizeof *v * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        if (v[i] >= 0 && v[i] < classes) continue;
        if (v[i] < 0) gt_err("label %lld of image %lld is negative", (long long)v[i], (long long)i);
        else
            gt_err("label %lld of image %lld is outside 0..%lld%s%s%s", (long long)v[i], (long long)i,
                   (long long)classes - 1, why ? " (" : "", why ? why : "", why ? ")" : "");
        free(v);
        return -1;
    }
    *out = v;
    return 0;
}
