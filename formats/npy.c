/* npy.c: NumPy .npy reader and writer (see npy.h; the byte layout is in npy.md).
 *
 * Sections: the header dictionary parser, the in-memory parser, loading (mmap for regular
 * files, a growing buffer for pipes), the streaming reader, the writer.
 * Nothing read from a file is trusted: every length is checked against what is really
 * there before it is used, and shapes go through tensor_check_shape. */
#define _DEFAULT_SOURCE
#include "npy.h"
#include "bytesrc.h"
#include "lib/base/common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
/* Headers longer than this are refused (NumPy itself refuses more than 10000 bytes). */
#define NPY_MAX_HEADER (1u << 20)
#define NPY_ALIGN 64

/* What a header says. */
typedef struct {
    int major, minor;
    dtype_t dtype;
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];
    size_t data_off; /* bytes before the data: magic, version, length and header */
    uint64_t nbytes; /* data bytes the shape calls for */
} npy_hdr_t;

/* ---- the header dictionary ------------------------------------------------------------ */

typedef struct {
    const char *p, *end;
} scan_t;

static void skip_ws(scan_t *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

static int eat(scan_t *s, char c) {
    skip_ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return 1;
    }
    return 0;
}

/* A Python string literal in single or double quotes, without escapes, into buf. */
static int scan_string(scan_t *s, char *buf, size_t cap) {
    skip_ws(s);
    if (s->p >= s->end || (*s->p != '\'' && *s->p != '"')) return gt_err("bad header: expected a quoted string");
    char q = *s->p++;
    size_t n = 0;
    while (s->p < s->end && *s->p != q) {
        if (*s->p == '\\' || *s->p == '\n') return gt_err("bad header: unsupported character in a string");
        if (n + 1 < cap) buf[n] = *s->p;
        n++;
        s->p++;
    }
    if (s->p >= s->end) return gt_err("bad header: unterminated string");
    s->p++;
    if (n + 1 > cap) return gt_err("bad header: string too long");
    buf[n] = 0;
    return 0;
}

/* A Python identifier (True, False). */
static int scan_word(scan_t *s, char *buf, size_t cap) {
    skip_ws(s);
    size_t n = 0;
    while (s->p < s->end && ((*s->p >= 'A' && *s->p <= 'Z') || (*s->p >= 'a' && *s->p <= 'z'))) {
        if (n + 1 >= cap) return gt_err("bad header: unexpected word");
        buf[n++] = *s->p++;
    }
    buf[n] = 0;
    return n ? 0 : gt_err("bad header: expected True or False");
}

/* A decimal integer, optionally negative, optionally with Python 2's 'L' suffix. */
static int scan_int(scan_t *s, int64_t *v) {
    skip_ws(s);
    int neg = 0;
    if (s->p < s->end && *s->p == '-') {
        neg = 1;
        s->p++;
    }
    if (s->p >= s->end || *s->p < '0' || *s->p > '9') return gt_err("bad header: expected an integer in the shape");
    uint64_t x = 0;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
        uint64_t d = (uint64_t)(*s->p++ - '0');
        if (x > ((uint64_t)INT64_MAX - d) / 10) return gt_err("dimensions are too large: their product overflows");
        x = x * 10 + d;
    }
    if (s->p < s->end && (*s->p == 'L' || *s->p == 'l')) s->p++;
    *v = neg ? -(int64_t)x : (int64_t)x;
    return 0;
}

static int parse_descr(const char *d, dtype_t *dt) {
    static const struct {
        const char *code;
        dtype_t dt;
    } codes[] = {{"f4", DT_F32}, {"f8", DT_F64}, {"u1", DT_U8}, {"i8", DT_I64}};
    char order = d[0];
    const char *code = d;
    if (order == '<' || order == '>' || order == '|' || order == '=') code = d + 1;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        if (strcmp(code, codes[i].code) != 0) continue;
        if (order == '>' && codes[i].dt != DT_U8)
            return gt_err("big-endian dtype '%s' is not supported; save with arr.astype('<%s')", d, code);
        *dt = codes[i].dt;
        return 0;
    }
    return gt_err("unsupported dtype '%s' (supported: <f4, <f8, |u1, <i8)", d);
}

/* Parse the header text (the Python dict literal) into h->dtype, ndim, shape. */
static int parse_dict(const char *text, size_t len, npy_hdr_t *h) {
    scan_t s = {text, text + len};
    int have_descr = 0, have_fortran = 0, have_shape = 0, fortran = 0;
    if (!eat(&s, '{')) return gt_err("bad header: not a dictionary");
    for (;;) {
        if (eat(&s, '}')) break;
        char key[32];
        if (scan_string(&s, key, sizeof key)) return -1;
        if (!eat(&s, ':')) return gt_err("bad header: expected ':' after '%s'", key);
        if (strcmp(key, "descr") == 0) {
            char d[32];
            if (have_descr++) return gt_err("bad header: 'descr' given twice");
            skip_ws(&s);
            if (s.p < s.end && (*s.p == '[' || *s.p == '('))
                return gt_err("structured dtypes are not supported (supported: <f4, <f8, |u1, <i8)");
            if (scan_string(&s, d, sizeof d)) return -1;
            if (parse_descr(d, &h->dtype)) return -1;
        } else if (strcmp(key, "fortran_order") == 0) {
            char w[8];
            if (have_fortran++) return gt_err("bad header: 'fortran_order' given twice");
            if (scan_word(&s, w, sizeof w)) return -1;
            if (strcmp(w, "True") == 0) fortran = 1;
            else if (strcmp(w, "False") != 0) return gt_err("bad header: fortran_order must be True or False");
        } else if (strcmp(key, "shape") == 0) {
            if (have_shape++) return gt_err("bad header: 'shape' given twice");
            if (!eat(&s, '(')) return gt_err("bad header: shape is not a tuple");
            int n = 0, comma = 1;
            for (;;) {
                if (eat(&s, ')')) break;
                if (!comma) return gt_err("bad header: expected ',' or ')' in the shape");
                int64_t v = 0;
                if (scan_int(&s, &v)) return -1;
                if (n >= TENSOR_MAX_DIMS) return gt_err("more than %d dimensions are not supported", TENSOR_MAX_DIMS);
                h->shape[n++] = v;
                comma = eat(&s, ',');
            }
            /* "(5)" is the integer 5 in Python, not a tuple. */
            if (n == 1 && !comma) return gt_err("bad header: shape is not a tuple");
            h->ndim = n;
        } else {
            return gt_err("bad header: unexpected key '%s'", key);
        }
        if (eat(&s, ',')) continue;
        if (eat(&s, '}')) break;
        return gt_err("bad header: expected ',' or '}'");
    }
    skip_ws(&s);
    if (s.p != s.end) return gt_err("bad header: unexpected text after the dictionary");
    if (!have_descr || !have_fortran || !have_shape)
        return gt_err("bad header: missing key '%s'", !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");
    if (fortran) return gt_err("Fortran order is not supported; save with np.ascontiguousarray");
    if (tensor_check_shape(h->dtype, h->ndim, h->shape)) return -1;
    uint64_t nb = dtype_size(h->dtype);
    for (int i = 0; i < h->ndim; i++) nb *= (uint64_t)h->shape[i]; /* checked above */
    h->nbytes = nb;
    return 0;
}

/* Magic and version from the first bytes; *prefix is set to the size of magic, version
 * and header length (10 for version 1.0, 12 after). Returns 0 or -1. */
static int parse_prefix(const unsigned char *b, size_t len, npy_hdr_t *h, size_t *prefix) {
    if (len == 0) return gt_err("empty file");
    if (len < NPY_MAGIC_LEN && memcmp(b, NPY_MAGIC, len) == 0) return gt_err("truncated .npy header");
    if (len < NPY_MAGIC_LEN || memcmp(b, NPY_MAGIC, NPY_MAGIC_LEN) != 0) return gt_err("not a .npy file (bad magic)");
    if (len < 8) return gt_err("truncated .npy header");
    h->major = b[6];
    h->minor = b[7];
    if ((h->major != 1 && h->major != 2 && h->major != 3) || h->minor != 0)
        return gt_err("unsupported .npy version %d.%d (1.0, 2.0 and 3.0 are)", h->major, h->minor);
    *prefix = h->major == 1 ? 10 : 12;
    return 0;
}

static uint32_t header_len(const unsigned char *b, int major) {
    if (major == 1) return (uint32_t)b[8] | (uint32_t)b[9] << 8;
    return (uint32_t)b[8] | (uint32_t)b[9] << 8 | (uint32_t)b[10] << 16 | (uint32_t)b[11] << 24;
}

/* Parse magic, version and header from memory; checks the header fits in len. */
static int parse_header_mem(const unsigned char *b, size_t len, npy_hdr_t *h) {
    size_t pre;
    memset(h, 0, sizeof *h);
    if (parse_prefix(b, len, h, &pre)) return -1;
    if (len < pre) return gt_err("truncated .npy header");
    uint32_t hl = header_len(b, h->major);
    if (hl > NPY_MAX_HEADER) return gt_err("header length %u is implausibly large", (unsigned)hl);
    if (hl > len - pre) return gt_err("header length %u runs past the end of the file (%zu bytes)", (unsigned)hl, len);
    if (parse_dict((const char *)b + pre, hl, h)) return -1;
    h->data_off = pre + hl;
    return 0;
}

/* Data present vs what the shape says. */
static int check_data_len(const npy_hdr_t *h, size_t avail) {
    if (avail < h->nbytes)
        return gt_err("data is truncated: the shape needs %llu bytes, the file has %zu", (unsigned long long)h->nbytes,
                      avail);
    if (avail > h->nbytes)
        return gt_err("%llu bytes of trailing data after the array", (unsigned long long)(avail - h->nbytes));
    return 0;
}

static void set_shape(tensor_t *t, const npy_hdr_t *h) {
    t->dtype = h->dtype;
    t->ndim = h->ndim;
    for (int i = 0; i < h->ndim; i++) t->shape[i] = h->shape[i];
}

/* ---- in memory ------------------------------------------------------------------------- */

static void *alloc_data(uint64_t n) {
    void *p = malloc(n ? (size_t)n : 1);
    if (!p) gt_err("out of memory allocating %llu bytes", (unsigned long long)n);
    return p;
}

int npy_parse(const void *buf, size_t len, tensor_t *t) {
    npy_hdr_t h;
    memset(t, 0, sizeof *t);
    if (parse_header_mem(buf, len, &h) || check_data_len(&h, len - h.data_off)) return -1;
    void *d = alloc_data(h.nbytes);
    if (!d) return -1;
    if (h.nbytes) memcpy(d, (const unsigned char *)buf + h.data_off, (size_t)h.nbytes);
    set_shape(t, &h);
    t->data = d;
    t->owned = 1;
    return 0;
}

/* ---- loading ---------------------------------------------------------------------------- */

/* float64 -> float32 in a new heap buffer, replacing t's data. */
static int to_float32(tensor_t *t) {
    int64_t n = tensor_numel(t);
    float *d = alloc_data((uint64_t)n * sizeof(float));
    if (!d) return -1;
    const double *s = t->data;
    for (int64_t i = 0; i < n; i++) d[i] = (float)s[i];
    tensor_t nt = *t;
    nt.dtype = DT_F32;
    nt.data = d;
    nt.owned = 1;
    nt.map_base = NULL;
    nt.map_len = 0;
    tensor_free(t);
    *t = nt;
    return 0;
}

/* Regular file (or stdin redirected from one) at offset 0: map it. */
static int load_mapped(int fd, size_t size, tensor_t *t) {
    if (size == 0) return gt_err("empty file");
    /* Copy-on-write: callers may scale a loaded tensor in place without touching the file. */
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (base == MAP_FAILED) return gt_err("cannot map: %s", strerror(errno));
    npy_hdr_t h;
    if (parse_header_mem(base, size, &h) || check_data_len(&h, size - h.data_off)) {
        munmap(base, size);
        return -1;
    }
    madvise(base, size, MADV_WILLNEED);
    unsigned char *data = (unsigned char *)base + h.data_off;
    set_shape(t, &h);
    if ((uintptr_t)data % dtype_size(h.dtype) == 0) {
        t->data = data;
        t->map_base = base;
        t->map_len = size;
        return 0;
    }
    /* A header whose length leaves the data misaligned: copy it out. */
    void *d = alloc_data(h.nbytes);
    if (d && h.nbytes) memcpy(d, data, (size_t)h.nbytes);
    munmap(base, size);
    if (!d) return -1;
    t->data = d;
    t->owned = 1;
    return 0;
}

static int read_full(FILE *f, void *buf, size_t n, size_t *got) {
    *got = fread(buf, 1, n, f);
    if (*got < n && ferror(f)) return gt_err("read error: %s", strerror(errno));
    return 0;
}

/* Magic, version, length and header from a stream. */
static int read_header_stream(FILE *f, npy_hdr_t *h) {
    unsigned char pre[12];
    size_t got, need;
    memset(h, 0, sizeof *h);
    if (read_full(f, pre, 10, &got)) return -1;
    if (parse_prefix(pre, got, h, &need)) return -1;
    if (got < 10) return gt_err("truncated .npy header");
    if (need == 12) {
        size_t g2;
        if (read_full(f, pre + 10, 2, &g2)) return -1;
        if (g2 < 2) return gt_err("truncated .npy header");
    }
    uint32_t hl = header_len(pre, h->major);
    if (hl > NPY_MAX_HEADER) return gt_err("header length %u is implausibly large", (unsigned)hl);
    char *text = gt_xmalloc(hl ? hl : 1);
    if (read_full(f, text, hl, &got)) {
        free(text);
        return -1;
    }
    if (got < hl) {
        free(text);
        return gt_err("header length %u runs past the end of the file", (unsigned)hl);
    }
    int rc = parse_dict(text, hl, h);
    free(text);
    h->data_off = need + hl;
    return rc;
}

/* Is there anything left in the stream? */
static int check_eof(FILE *f) {
    unsigned char extra[4096];
    size_t n, total = 0;
    while ((n = fread(extra, 1, sizeof extra, f)) > 0) total += n;
    if (ferror(f)) return gt_err("read error: %s", strerror(errno));
    if (total) return gt_err("%zu bytes of trailing data after the array", total);
    return 0;
}

/* A pipe: header from the stream, then the data into a buffer that grows as bytes really
 * arrive (a header promising terabytes costs nothing until they come). */
static int load_stream(FILE *f, tensor_t *t) {
    npy_hdr_t h;
    if (read_header_stream(f, &h)) return -1;
    unsigned char *d;
    size_t got;
    if (file_read_growing(f, 1u << 20, (size_t)h.nbytes, &d, &got)) return -1;
    if (got < h.nbytes || check_eof(f)) {
        if (got < h.nbytes) check_data_len(&h, got);
        free(d);
        return -1;
    }
    set_shape(t, &h);
    t->data = d;
    t->owned = 1;
    return 0;
}

int npy_load(const char *path, tensor_t *t, int to_f32) {
    int is_stdin = !path || strcmp(path, "-") == 0;
    const char *name = is_stdin ? "stdin" : path;
    memset(t, 0, sizeof *t);
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        gt_err("%s", strerror(errno));
        return gt_err_prefix(name);
    }
    struct stat st;
    int fd = fileno(f), rc;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && lseek(fd, 0, SEEK_CUR) == 0 && ftell(f) == 0)
        rc = load_mapped(fd, (size_t)st.st_size, t);
    else if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
        rc = gt_err("is a directory");
    else
        rc = load_stream(f, t);
    if (!is_stdin) fclose(f);
    if (rc == 0 && to_f32 && t->dtype == DT_F64) rc = to_float32(t);
    if (rc) {
        tensor_free(t);
        return gt_err_prefix(name);
    }
    return 0;
}

/* ---- streaming reader ------------------------------------------------------------------- */

int npy_reader_open(npy_reader_t *r, const char *path) {
    int is_stdin = !path || strcmp(path, "-") == 0;
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", is_stdin ? "stdin" : path);
    r->f = is_stdin ? stdin : fopen(path, "rb");
    if (!r->f) {
        gt_err("%s", strerror(errno));
        return gt_err_prefix(r->name);
    }
    r->close_f = !is_stdin;
    npy_hdr_t h;
    if (read_header_stream(r->f, &h)) {
        gt_err_prefix(r->name);
        npy_reader_close(r);
        return -1;
    }
    r->dtype = h.dtype;
    r->ndim = h.ndim;
    for (int i = 0; i < h.ndim; i++) r->shape[i] = h.shape[i];
    r->items_left = (int64_t)(h.nbytes / dtype_size(h.dtype));
    return 0;
}

int npy_reader_read(npy_reader_t *r, void *buf, int64_t n) {
    if (n < 0 || n > r->items_left)
        return gt_err("%s: asked for %lld elements, %lld are left", r->name, (long long)n, (long long)r->items_left);
    size_t want = (size_t)n * dtype_size(r->dtype), got;
    if (read_full(r->f, buf, want, &got)) return gt_err_prefix(r->name);
    if (got < want) {
        gt_err("data is truncated: %lld elements short", (long long)(r->items_left - (int64_t)(got / dtype_size(r->dtype))));
        return gt_err_prefix(r->name);
    }
    r->items_left -= n;
    if (r->items_left == 0 && n > 0 && check_eof(r->f)) return gt_err_prefix(r->name);
    return 0;
}

void npy_reader_close(npy_reader_t *r) {
    if (r->f && r->close_f) fclose(r->f);
    r->f = NULL;
    r->close_f = 0;
}

/* ---- writer ----------------------------------------------------------------------------- */

static const char *descr_of(dtype_t dt) {
    switch (dt) {
    case DT_F32: return "<f4";
    case DT_F64: return "<f8";
    case DT_U8: return "|u1";
    case DT_I64: return "<i8";
    default: return NULL;
    }
}

/* The header exactly as NumPy 1.24 writes it: the dict with sorted keys, spare spaces so
 * that the first dimension can grow to 21 digits in place, then spaces and '\n' up to a
 * multiple of 64 bytes (always at least one space). */
long npy_format_header(char *buf, size_t cap, dtype_t dt, int ndim, const int64_t *shape) {
    if (tensor_check_shape(dt, ndim, shape)) return -1;
    char dict[512];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr_of(dt));
    for (int i = 0; i < ndim; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, i ? ", %lld" : "%lld", (long long)shape[i]);
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%s), }", ndim == 1 ? "," : "");
    if (ndim > 0) {
        int digits = snprintf(NULL, 0, "%lld", (long long)shape[0]);
        for (int i = digits; i < 21; i++) dict[n++] = ' ';
    }
    size_t hlen = (size_t)n + 1; /* with the final '\n' */
    size_t pre = 10;
    size_t pad = NPY_ALIGN - (pre + hlen) % NPY_ALIGN;
    if (hlen + pad > 65535) {
        pre = 12;
        pad = NPY_ALIGN - (pre + hlen) % NPY_ALIGN;
    }
    size_t total = pre + hlen + pad;
    if (total > cap) return gt_err("header buffer too small (%zu bytes, need %zu)", cap, total);
    uint32_t hl = (uint32_t)(hlen + pad);
    memcpy(buf, NPY_MAGIC, NPY_MAGIC_LEN);
    buf[6] = pre == 10 ? 1 : 2;
    buf[7] = 0;
    buf[8] = (char)(hl & 0xff);
    buf[9] = (char)(hl >> 8 & 0xff);
    if (pre == 12) {
        buf[10] = (char)(hl >> 16 & 0xff);
        buf[11] = (char)(hl >> 24 & 0xff);
    }
    memcpy(buf + pre, dict, (size_t)n);
    memset(buf + pre + n, ' ', pad);
    buf[total - 1] = '\n';
    return (long)total;
}

static int write_all(FILE *f, const void *p, size_t n) {
    if (n && fwrite(p, 1, n, f) != n) return gt_err("write failed: %s", errno ? strerror(errno) : "short write");
    return 0;
}

int npy_write_header(FILE *f, dtype_t dt, int ndim, const int64_t *shape) {
    char buf[1024];
    long n = npy_format_header(buf, sizeof buf, dt, ndim, shape);
    if (n < 0) return -1;
    errno = 0;
    return write_all(f, buf, (size_t)n);
}

int npy_write(FILE *f, const tensor_t *t) {
    if (npy_write_header(f, t->dtype, t->ndim, t->shape)) return -1;
    errno = 0;
    return write_all(f, t->data, tensor_nbytes(t));
}
