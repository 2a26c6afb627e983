/* idx.c: IDX reader (see idx.h; the byte layout is in idx.md).
 *
 * Sections: the header, the data stream, whole files from memory. Nothing read is trusted:
 * sizes are bounded and overflow-checked before use, a plain file's length is compared with
 * the header before any data is read, and compressed data is held only as it arrives. */
#define _POSIX_C_SOURCE 200809L
#include "idx.h"
#include "lib/base/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *idx_type_name(int type) {
    switch (type) {
    case 0x08: return "uint8";
    case 0x09: return "int8";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    default: return NULL;
    }
}

/* "60000x28x28" */
static void dims_str(const idx_header_t *h, char *buf, size_t n) {
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < h->ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? "x%lld" : "%lld", (long long)h->dims[i]);
}

/* ---- the header ------------------------------------------------------------------------- */

static int parse_header(idx_reader_t *r) {
    idx_header_t *h = &r->h;
    unsigned char m[4];
    size_t got;
    memset(h, 0, sizeof *h);
    h->gzip = r->src.gz;
    if (bytesrc_read(&r->src, m, 4, &got)) return -1;
    if (got == 0) return gt_err(h->gzip ? "empty file (inside the gzip data)" : "empty file");
    if (got >= 2 && (m[0] != 0 || m[1] != 0)) {
        char seen[16];
        if (got >= 4) snprintf(seen, sizeof seen, "%02x %02x %02x %02x", m[0], m[1], m[2], m[3]);
        else snprintf(seen, sizeof seen, "%02x %02x", m[0], m[1]);
        return gt_err("not an IDX file: it starts with bytes %s%s, an IDX file with 00 00", seen,
                      h->gzip ? " (after gunzip)" : "");
    }
    if (got < 4) return gt_err("truncated IDX header (%zu bytes)", got);
    h->type = m[2];
    h->ndim = m[3];
    if (!idx_type_name(h->type)) return gt_err("not an IDX file: unknown type byte 0x%02X", (unsigned)h->type);
    if (h->type != IDX_TYPE_U8)
        return gt_err("IDX type 0x%02X (%s) is not supported: only unsigned bytes (type 0x08) are read",
                      (unsigned)h->type, idx_type_name(h->type));
    if (h->ndim == 0) return gt_err("IDX header with 0 dimensions");
    if (h->ndim > IDX_MAX_DIMS)
        return gt_err("IDX header with %d dimensions; at most %d are supported", h->ndim, IDX_MAX_DIMS);
    unsigned char d[4 * IDX_MAX_DIMS];
    if (bytesrc_read(&r->src, d, 4 * (size_t)h->ndim, &got)) return -1;
    if (got < 4 * (size_t)h->ndim)
        return gt_err("truncated IDX header: %d dimensions announced, the file ends after %zu", h->ndim, got / 4);
    for (int i = 0; i < h->ndim; i++) {
        uint32_t v = (uint32_t)d[4 * i] << 24 | (uint32_t)d[4 * i + 1] << 16 | (uint32_t)d[4 * i + 2] << 8 | d[4 * i + 3];
        if (v > INT32_MAX)
            return gt_err("dimension %d is %lu, beyond 2^31-1 (negative as a signed 32-bit size)", i, (unsigned long)v);
        h->dims[i] = v;
    }
    if (tensor_check_shape(DT_U8, h->ndim, h->dims)) return -1;
    h->nbytes = 1;
    for (int i = 0; i < h->ndim; i++) h->nbytes *= (uint64_t)h->dims[i]; /* checked above */
    r->left = h->nbytes;
    /* a plain file's length is known: a header that lies about it fails now, before any data
     * is read or memory is reserved for it */
    if (r->src.raw_size >= 0) {
        uint64_t have = (uint64_t)r->src.raw_size - 4 - 4 * (uint64_t)h->ndim;
        char ds[128];
        dims_str(h, ds, sizeof ds);
        if (have < h->nbytes)
            return gt_err("data is truncated: the header announces %llu bytes (%s), the file has %llu",
                          (unsigned long long)h->nbytes, ds, (unsigned long long)have);
        if (have > h->nbytes)
            return gt_err("%llu bytes of trailing data after the IDX data (%s)", (unsigned long long)(have - h->nbytes), ds);
    }
    return 0;
}

/* Prefix the current message with the reader's name (none for idx_parse). Returns -1. */
static int named(const idx_reader_t *r) { return r->name[0] ? gt_err_prefix(r->name) : -1; }

static int opened(idx_reader_t *r, int rc) {
    if (rc == 0) rc = parse_header(r);
    return rc ? named(r) : 0;
}

int idx_open(idx_reader_t *r, const char *path) {
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", (!path || strcmp(path, "-") == 0) ? "stdin" : path);
    return opened(r, bytesrc_open(&r->src, path));
}

int idx_open_mem(idx_reader_t *r, const void *buf, size_t len, const char *name) {
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    return opened(r, bytesrc_open_mem(&r->src, buf, len));
}

/* ---- the data --------------------------------------------------------------------------- */

static int short_data(idx_reader_t *r, uint64_t got_now) {
    char ds[128];
    dims_str(&r->h, ds, sizeof ds);
    gt_err("data is truncated: the header announces %llu bytes (%s), the file has %llu",
           (unsigned long long)r->h.nbytes, ds, (unsigned long long)(r->h.nbytes - r->left + got_now));
    return named(r);
}

int idx_read(idx_reader_t *r, bytebuf_t *b, uint64_t n) {
    if (n > r->left) {
        gt_err("asked for %llu data bytes, %llu are left", (unsigned long long)n, (unsigned long long)r->left);
        return named(r);
    }
    uint64_t got;
    if (bytesrc_append(&r->src, b, n, &got)) return named(r);
    if (got < n) return short_data(r, got);
    r->left -= n;
    return 0;
}

int idx_skip(idx_reader_t *r, uint64_t n) {
    if (n > r->left) {
        gt_err("asked to skip %llu data bytes, %llu are left", (unsigned long long)n, (unsigned long long)r->left);
        return named(r);
    }
    uint64_t got;
    if (bytesrc_skip(&r->src, n, &got)) return named(r);
    if (got < n) return short_data(r, got);
    r->left -= n;
    return 0;
}

int idx_finish(idx_reader_t *r) {
    if (idx_skip(r, r->left)) return -1;
    uint64_t extra;
    if (bytesrc_drain(&r->src, &extra)) return named(r);
    if (extra) {
        gt_err("%llu bytes of trailing data after the IDX data", (unsigned long long)extra);
        return named(r);
    }
    return 0;
}

void idx_close(idx_reader_t *r) { bytesrc_close(&r->src); }

/* ---- whole files ------------------------------------------------------------------------ */

int idx_parse(const void *buf, size_t len, tensor_t *t) {
    idx_reader_t r;
    bytebuf_t b = {0};
    memset(t, 0, sizeof *t);
    int rc = idx_open_mem(&r, buf, len, "");
    if (rc == 0) rc = idx_read(&r, &b, r.h.nbytes);
    if (rc == 0) rc = idx_finish(&r);
    if (rc == 0) {
        t->dtype = DT_U8;
        t->ndim = r.h.ndim;
        for (int i = 0; i < r.h.ndim; i++) t->shape[i] = r.h.dims[i];
        t->data = b.p ? b.p : malloc(1);
        t->owned = 1;
        b.p = NULL;
        if (!t->data) rc = gt_err("out of memory");
    }
    free(b.p);
    idx_close(&r);
    return rc;
}
