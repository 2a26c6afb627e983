/* safetensors.c: safetensors reader and writer (see safetensors.h; layout in safetensors.md).
 *
 * Sections: helpers (UTF-8, JSON numbers), the parser, loading, lookup, the writer.
 * The reader trusts nothing: the header length is checked against the file before the JSON
 * is parsed, every number is checked to be a non-negative integer, and the tensors' byte
 * ranges must tile the data section exactly. */
#define _DEFAULT_SOURCE
#include "safetensors.h"
#include "bytesrc.h"
#include "lib/base/common.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The reference implementation refuses headers over 100 MB; so do we. */
#define ST_MAX_HEADER (100u * 1000 * 1000)
/* Integers in JSON are read as doubles by cJSON: exact up to 2^53. */
#define ST_MAX_INT 9007199254740992.0

/* ---- helpers ---------------------------------------------------------------------------- */

/* 1 if s[0..n) is valid UTF-8 without NUL bytes (no overlongs, surrogates or > U+10FFFF). */
static int utf8_valid(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c == 0) return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        unsigned min, cp;
        if ((c & 0xe0) == 0xc0) k = 1, min = 0x80, cp = c & 0x1f;
        else if ((c & 0xf0) == 0xe0) k = 2, min = 0x800, cp = c & 0x0f;
        else if ((c & 0xf8) == 0xf0) k = 3, min = 0x10000, cp = c & 0x07;
        else return 0;
        if (n - i <= k) return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
        i += k + 1;
    }
    return 1;
}

static int json_uint(const cJSON *j, uint64_t *v) {
    if (!cJSON_IsNumber(j)) return -1;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= ST_MAX_INT && d == floor(d))) return -1;
    *v = (uint64_t)d;
    return 0;
}

static int dtype_from_str(const char *s, dtype_t *dt) {
    static const struct {
        const char *s;
        dtype_t dt;
    } m[] = {{"F32", DT_F32}, {"F64", DT_F64}, {"U8", DT_U8}, {"I64", DT_I64}};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (strcmp(s, m[i].s) == 0) {
            *dt = m[i].dt;
            return 0;
        }
    return -1;
}

const char *st_dtype_str(dtype_t dt) {
    switch (dt) {
    case DT_F32: return "F32";
    case DT_F64: return "F64";
    case DT_U8: return "U8";
    case DT_I64: return "I64";
    default: return "?";
    }
}

/* ---- parser ----------------------------------------------------------------------------- */

static int parse_entry(const cJSON *j, st_entry_t *e) {
    const char *nm = e->name;
    if (!cJSON_IsObject(j)) return gt_err("tensor '%s': not a JSON object", nm);
    const cJSON *dt = NULL, *shape = NULL, *off = NULL, *c;
    cJSON_ArrayForEach(c, j) {
        const cJSON **slot = strcmp(c->string, "dtype") == 0         ? &dt
                             : strcmp(c->string, "shape") == 0        ? &shape
                             : strcmp(c->string, "data_offsets") == 0 ? &off
                                                                      : NULL;
        if (!slot) return gt_err("tensor '%s': unexpected key '%s'", nm, c->string);
        if (*slot) return gt_err("tensor '%s': key '%s' given twice", nm, c->string);
        *slot = c;
    }
    if (!dt || !shape || !off)
        return gt_err("tensor '%s': missing \"%s\"", nm, !dt ? "dtype" : !shape ? "shape" : "data_offsets");
    if (!cJSON_IsString(dt)) return gt_err("tensor '%s': dtype is not a string", nm);
    if (dtype_from_str(dt->valuestring, &e->t.dtype))
        return gt_err("tensor '%s': dtype %s is not supported (F32, F64, U8, I64 are)", nm, dt->valuestring);
    if (!cJSON_IsArray(shape)) return gt_err("tensor '%s': shape is not an array", nm);
    int nd = cJSON_GetArraySize(shape);
    if (nd > TENSOR_MAX_DIMS) return gt_err("tensor '%s': %d dimensions; at most %d are supported", nm, nd, TENSOR_MAX_DIMS);
    int k = 0;
    cJSON_ArrayForEach(c, shape) {
        uint64_t v;
        if (json_uint(c, &v)) return gt_err("tensor '%s': shape holds something other than a non-negative integer", nm);
        e->t.shape[k++] = (int64_t)v;
    }
    e->t.ndim = nd;
    if (tensor_check_shape(e->t.dtype, nd, e->t.shape)) {
        char tmp[64];
        snprintf(tmp, sizeof tmp, "tensor '%.40s'", nm);
        return gt_err_prefix(tmp);
    }
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || json_uint(cJSON_GetArrayItem(off, 0), &e->begin) ||
        json_uint(cJSON_GetArrayItem(off, 1), &e->end))
        return gt_err("tensor '%s': data_offsets is not a pair of non-negative integers", nm);
    if (e->end < e->begin) return gt_err("tensor '%s': data_offsets end before they begin", nm);
    if (e->end - e->begin != (uint64_t)tensor_nbytes(&e->t))
        return gt_err("tensor '%s': data_offsets span %llu bytes but the shape needs %llu", nm,
                      (unsigned long long)(e->end - e->begin), (unsigned long long)tensor_nbytes(&e->t));
    return 0;
}

static int parse_meta(const cJSON *j, st_file_t *f) {
    if (!cJSON_IsObject(j)) return gt_err("__metadata__ is not a JSON object");
    int n = cJSON_GetArraySize(j), k = 0;
    const cJSON *c;
    f->meta = gt_xcalloc((size_t)n, sizeof *f->meta);
    cJSON_ArrayForEach(c, j) {
        if (!cJSON_IsString(c)) return gt_err("__metadata__ value of '%s' is not a string", c->string);
        for (int i = 0; i < k; i++)
            if (strcmp(f->meta[i].key, c->string) == 0) return gt_err("__metadata__ key '%s' given twice", c->string);
        f->meta[k].key = gt_xstrdup(c->string);
        f->meta[k].value = gt_xstrdup(c->valuestring);
        f->n_meta = ++k;
    }
    return 0;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp((*(const st_entry_t *const *)a)->name, (*(const st_entry_t *const *)b)->name);
}

static int cmp_range(const void *a, const void *b) {
    const st_entry_t *x = *(const st_entry_t *const *)a, *y = *(const st_entry_t *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* Names unique; ranges sorted tile [0, data_len) exactly. */
static int check_layout(st_file_t *f, uint64_t data_len) {
    if (f->n == 0) {
        if (data_len) return gt_err("%llu bytes of data but no tensors", (unsigned long long)data_len);
        return 0;
    }
    st_entry_t **v = gt_xmalloc((size_t)f->n * sizeof *v);
    int rc = 0;
    for (int i = 0; i < f->n; i++) v[i] = &f->entries[i];
    qsort(v, (size_t)f->n, sizeof *v, cmp_name);
    for (int i = 1; i < f->n && !rc; i++)
        if (strcmp(v[i - 1]->name, v[i]->name) == 0) rc = gt_err("tensor name '%s' appears twice", v[i]->name);
    qsort(v, (size_t)f->n, sizeof *v, cmp_range);
    uint64_t at = 0;
    for (int i = 0; i < f->n && !rc; i++) {
        if (v[i]->begin > data_len || v[i]->end > data_len)
            rc = gt_err("tensor '%s' lies beyond the end of the data (truncated file?)", v[i]->name);
        else if (v[i]->begin < at)
            rc = gt_err("tensor '%s' overlaps another tensor", v[i]->name);
        else if (v[i]->begin > at)
            rc = gt_err("a gap of %llu bytes before tensor '%s': the data must be fully indexed",
                        (unsigned long long)(v[i]->begin - at), v[i]->name);
        at = v[i]->end;
    }
    if (!rc && at != data_len)
        rc = gt_err("%llu bytes of data after the last tensor", (unsigned long long)(data_len - at));
    free(v);
    return rc;
}

/* Parse f->buf[0..f->len) in place. On failure the caller calls st_free. */
static int parse_buf(st_file_t *f) {
    const unsigned char *b = f->buf;
    size_t len = f->len;
    if (len == 0) return gt_err("empty file");
    if (len < 8) return gt_err("truncated safetensors file (%zu bytes)", len);
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= (uint64_t)b[i] << (8 * i);
    if (n > len - 8) return gt_err("header length %llu runs past the end of the file (%zu bytes)", (unsigned long long)n, len);
    if (n > ST_MAX_HEADER) return gt_err("header length %llu is implausibly large", (unsigned long long)n);
    if (n < 2 || b[8] != '{') return gt_err("not a safetensors file (the header is not a JSON object)");
    if (!utf8_valid(b + 8, (size_t)n)) return gt_err("bad header: not valid UTF-8 text");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)b + 8, (size_t)n, &end, 0);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return gt_err("bad header: not a valid JSON object");
    }
    for (const char *p = end; p < (const char *)b + 8 + n; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(root);
            return gt_err("bad header: text after the JSON object");
        }
    int rc = 0, count = 0, have_meta = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, root) count++;
    f->entries = gt_xcalloc((size_t)count, sizeof *f->entries);
    cJSON_ArrayForEach(c, root) {
        if (strcmp(c->string, "__metadata__") == 0) {
            if (have_meta++) rc = gt_err("__metadata__ given twice");
            else rc = parse_meta(c, f);
        } else {
            st_entry_t *e = &f->entries[f->n++];
            e->name = gt_xstrdup(c->string);
            rc = parse_entry(c, e);
        }
        if (rc) break;
    }
    cJSON_Delete(root);
    uint64_t data_len = len - 8 - n;
    if (rc || check_layout(f, data_len)) return -1;
    unsigned char *data = (unsigned char *)f->buf + 8 + n;
    for (int i = 0; i < f->n; i++) {
        st_entry_t *e = &f->entries[i];
        unsigned char *p = data + e->begin;
        size_t nb = tensor_nbytes(&e->t);
        if ((uintptr_t)p % dtype_size(e->t.dtype) == 0) {
            e->t.data = p;
        } else { /* misaligned in the file: an aligned private copy */
            e->t.data = gt_xmalloc(nb);
            memcpy(e->t.data, p, nb);
            e->t.owned = 1;
        }
    }
    return 0;
}

int st_parse(const void *buf, size_t len, st_file_t *f) {
    memset(f, 0, sizeof *f);
    f->buf = gt_xmalloc(len);
    if (len) memcpy(f->buf, buf, len);
    f->len = len;
    if (parse_buf(f)) {
        st_free(f);
        return -1;
    }
    return 0;
}

/* ---- loading ---------------------------------------------------------------------------- */

int st_load(const char *path, st_file_t *f) {
    memset(f, 0, sizeof *f);
    wholefile_t w;
    int rc = wholefile_load(path, &w);
    f->buf = w.p;
    f->len = w.len;
    f->mapped = w.mapped;
    if (rc || parse_buf(f)) {
        st_free(f);
        return gt_err_prefix(!path || strcmp(path, "-") == 0 ? "stdin" : path);
    }
    return 0;
}

void st_free(st_file_t *f) {
    for (int i = 0; i < f->n; i++) {
        free(f->entries[i].name);
        if (f->entries[i].t.owned) free(f->entries[i].t.data);
    }
    /* entries are zeroed by calloc, so a half-filled array frees cleanly */
    free(f->entries);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta[i].key);
        free(f->meta[i].value);
    }
    free(f->meta);
    wholefile_free(&(wholefile_t){f->buf, f->len, f->mapped});
    memset(f, 0, sizeof *f);
}

/* ---- lookup ----------------------------------------------------------------------------- */

const st_entry_t *st_find(const st_file_t *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->entries[i].name, name) == 0) return &f->entries[i];
    return NULL;
}

const char *st_meta_get(const st_file_t *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[i].key, key) == 0) return f->meta[i].value;
    return NULL;
}

uint64_t st_header_len(const st_file_t *f) {
    const unsigned char *b = f->buf;
    uint64_t n = 0;
    if (f->len < 8) return 0;
    for (int i = 0; i < 8; i++) n |= (uint64_t)b[i] << (8 * i);
    return n;
}

uint64_t st_data_len(const st_file_t *f) { return f->len < 8 ? 0 : f->len - 8 - st_header_len(f); }

/* ---- writer ----------------------------------------------------------------------------- */

typedef struct {
    char *name;
    dtype_t dt;
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];
    const void *data;
    uint64_t begin, end;
} wt_t;

struct st_writer {
    wt_t *t;
    int n, cap;
    st_meta_t *meta;
    int n_meta, cap_meta;
};

st_writer_t *st_writer_new(void) { return gt_xcalloc(1, sizeof(st_writer_t)); }

void st_writer_free(st_writer_t *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) free(w->t[i].name);
    free(w->t);
    for (int i = 0; i < w->n_meta; i++) {
        free(w->meta[i].key);
        free(w->meta[i].value);
    }
    free(w->meta);
    free(w);
}

static int check_text(const char *what, const char *s) {
    if (!utf8_valid((const unsigned char *)s, strlen(s))) return gt_err("%s is not valid UTF-8", what);
    return 0;
}

int st_writer_add_raw(st_writer_t *w, const char *name, dtype_t dt, int ndim, const int64_t *shape,
                      const void *data) {
    if (check_text("tensor name", name)) return -1;
    if (strcmp(name, "__metadata__") == 0) return gt_err("'__metadata__' is not a valid tensor name");
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0) return gt_err("tensor name '%s' added twice", name);
    if (tensor_check_shape(dt, ndim, shape)) {
        char tmp[64];
        snprintf(tmp, sizeof tmp, "tensor '%.40s'", name);
        return gt_err_prefix(tmp);
    }
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 16;
        w->t = gt_xrealloc(w->t, (size_t)w->cap * sizeof *w->t);
    }
    wt_t *e = &w->t[w->n++];
    memset(e, 0, sizeof *e);
    e->name = gt_xstrdup(name);
    e->dt = dt;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
    e->data = data;
    return 0;
}

int st_writer_add(st_writer_t *w, const char *name, const tensor_t *t) {
    return st_writer_add_raw(w, name, t->dtype, t->ndim, t->shape, t->data);
}

int st_writer_meta(st_writer_t *w, const char *key, const char *value) {
    if (check_text("metadata key", key) || check_text("metadata value", value)) return -1;
    for (int i = 0; i < w->n_meta; i++)
        if (strcmp(w->meta[i].key, key) == 0) {
            free(w->meta[i].value);
            w->meta[i].value = gt_xstrdup(value);
            return 0;
        }
    if (w->n_meta == w->cap_meta) {
        w->cap_meta = w->cap_meta ? 2 * w->cap_meta : 16;
        w->meta = gt_xrealloc(w->meta, (size_t)w->cap_meta * sizeof *w->meta);
    }
    w->meta[w->n_meta].key = gt_xstrdup(key);
    w->meta[w->n_meta].value = gt_xstrdup(value);
    w->n_meta++;
    return 0;
}

/* A growing text buffer. */
typedef struct {
    char *p;
    size_t n, cap;
} sbuf_t;

static void sb_put(sbuf_t *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        while (b->n + n + 1 > b->cap) b->cap = b->cap ? 2 * b->cap : 1024;
        b->p = gt_xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_str(sbuf_t *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_fmt_u64(sbuf_t *b, uint64_t v) {
    char t[24];
    int n = snprintf(t, sizeof t, "%llu", (unsigned long long)v);
    sb_put(b, t, (size_t)n);
}

/* A JSON string literal: quotes, backslashes and control characters escaped; UTF-8 as is. */
static void sb_json_str(sbuf_t *b, const char *s) {
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char e[8];
        if (c == '"' || c == '\\') {
            e[0] = '\\';
            e[1] = (char)c;
            sb_put(b, e, 2);
        } else if (c < 0x20) {
            snprintf(e, sizeof e, "\\u%04x", c);
            sb_put(b, e, 6);
        } else {
            sb_put(b, (const char *)&c, 1);
        }
    }
    sb_put(b, "\"", 1);
}

static int write_all(FILE *f, const void *p, size_t n) {
    errno = 0;
    if (n && fwrite(p, 1, n, f) != n) return gt_err("write failed: %s", errno ? strerror(errno) : "short write");
    return 0;
}

int st_writer_write(st_writer_t *w, FILE *f) {
    /* Data layout: element size descending, then insertion order. */
    int *order = gt_xmalloc(((size_t)w->n + 1) * sizeof *order), k = 0;
    static const size_t sizes[] = {8, 4, 2, 1};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int i = 0; i < w->n; i++)
            if (dtype_size(w->t[i].dt) == sizes[s]) order[k++] = i;
    uint64_t at = 0;
    for (int j = 0; j < k; j++) {
        wt_t *e = &w->t[order[j]];
        uint64_t nb = dtype_size(e->dt);
        for (int d = 0; d < e->ndim; d++) nb *= (uint64_t)e->shape[d];
        e->begin = at;
        e->end = at = at + nb;
    }
    sbuf_t h = {0};
    sb_str(&h, "{");
    if (w->n_meta) {
        sb_str(&h, "\"__metadata__\":{");
        for (int i = 0; i < w->n_meta; i++) {
            if (i) sb_str(&h, ",");
            sb_json_str(&h, w->meta[i].key);
            sb_str(&h, ":");
            sb_json_str(&h, w->meta[i].value);
        }
        sb_str(&h, "}");
    }
    for (int i = 0; i < w->n; i++) {
        const wt_t *e = &w->t[i];
        if (i || w->n_meta) sb_str(&h, ",");
        sb_json_str(&h, e->name);
        sb_str(&h, ":{\"dtype\":\"");
        sb_str(&h, st_dtype_str(e->dt));
        sb_str(&h, "\",\"shape\":[");
        for (int d = 0; d < e->ndim; d++) {
            if (d) sb_str(&h, ",");
            sb_fmt_u64(&h, (uint64_t)e->shape[d]);
        }
        sb_str(&h, "],\"data_offsets\":[");
        sb_fmt_u64(&h, e->begin);
        sb_str(&h, ",");
        sb_fmt_u64(&h, e->end);
        sb_str(&h, "]}");
    }
    sb_str(&h, "}");
    while (h.n % 8) sb_str(&h, " ");
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)h.n >> (8 * i));
    int rc = write_all(f, len8, 8) || write_all(f, h.p, h.n) ? -1 : 0;
    for (int j = 0; j < k && !rc; j++) {
        const wt_t *e = &w->t[order[j]];
        rc = write_all(f, e->data, (size_t)(e->end - e->begin));
    }
    free(h.p);
    free(order);
    return rc;
}
