/* npz.c: NumPy .npz reader and writer (see npz.h; the byte layout is in npz.md).
 *
 * Sections: little-endian helpers, finding the end of central directory (plain and ZIP64),
 * the central directory and each member (local header, stored or inflated data, CRC), loading
 * a file, the writer. Nothing read is trusted: every offset and length is checked against the
 * buffer (with overflow checks) before it is used. */
#define _DEFAULT_SOURCE
#include "npz.h"
#include "bytesrc.h"
#include "npy.h"
#include "lib/base/common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOC64 0x07064b50u
#define EOCD_LEN 22
#define LOC64_LEN 20
#define EOCD64_LEN 56
#define CENTRAL_LEN 46
#define LOCAL_LEN 30
#define EXTRA_ZIP64 0x0001
#define MAX_DEFLATE_RATIO 1032 /* deflate cannot expand more than this */
#define MAX_MEMBERS 65536
#define U32_MAX 0xFFFFFFFFu

/* ---- little endian ---------------------------------------------------------------------- */

static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const unsigned char *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr16(unsigned char *p, unsigned v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}
static void wr32(unsigned char *p, uint32_t v) {
    wr16(p, v & 0xffff);
    wr16(p + 2, v >> 16);
}

/* [off, off + n) lies within len */
static int in_bounds(uint64_t off, uint64_t n, uint64_t len) { return off <= len && n <= len - off; }

/* ---- end of central directory -------------------------------------------------------------- */

typedef struct {
    uint64_t entries, cd_size, cd_off;
    uint64_t cd_end_limit; /* where the central directory must end: the ZIP64 record or the EOCD */
} eocd_t;

/* The EOCD record is the last thing in the file, followed only by its comment: search back from
 * the end for a signature whose comment length reaches exactly the end of the file. */
static int find_eocd(const unsigned char *b, size_t len, eocd_t *e) {
    if (len < EOCD_LEN) return gt_err("not a .npz file (too short for a ZIP archive)");
    size_t lowest = len - EOCD_LEN > 65535 ? len - EOCD_LEN - 65535 : 0;
    size_t pos = len - EOCD_LEN + 1;
    int found = 0;
    while (pos-- > lowest) {
        if (rd32(b + pos) == SIG_EOCD && pos + EOCD_LEN + rd16(b + pos + 20) == len) {
            found = 1;
            break;
        }
    }
    if (!found) {
        if (len >= 6 && memcmp(b, "\x93NUMPY", 6) == 0) return gt_err("a .npy file, not a .npz archive");
        return gt_err("not a .npz file (no ZIP end-of-central-directory record)");
    }
    const unsigned char *p = b + pos;
    uint16_t disk = rd16(p + 4), cd_disk = rd16(p + 6), here = rd16(p + 8), total = rd16(p + 10);
    uint32_t size = rd32(p + 12), off = rd32(p + 16);
    e->entries = total;
    e->cd_size = size;
    e->cd_off = off;
    e->cd_end_limit = pos;
    int zip64 = total == 0xFFFF || here == 0xFFFF || size == U32_MAX || off == U32_MAX;
    if (pos >= LOC64_LEN && rd32(b + pos - LOC64_LEN) == SIG_LOC64) {
        const unsigned char *l = b + pos - LOC64_LEN;
        uint64_t rec = rd64(l + 8);
        if (rd32(l + 4) != 0 || rd32(l + 16) > 1) return gt_err("multi-disk ZIP archives are not supported");
        if (!in_bounds(rec, EOCD64_LEN, pos - LOC64_LEN) || rd32(b + rec) != SIG_EOCD64)
            return gt_err("bad ZIP64 end-of-central-directory locator (offset %llu)", (unsigned long long)rec);
        const unsigned char *r = b + rec;
        if (rd32(r + 16) != 0 || rd32(r + 20) != 0) return gt_err("multi-disk ZIP archives are not supported");
        if (rd64(r + 24) != rd64(r + 32)) return gt_err("multi-disk ZIP archives are not supported");
        e->entries = rd64(r + 32);
        e->cd_size = rd64(r + 40);
        e->cd_off = rd64(r + 48);
        e->cd_end_limit = rec;
    } else if (zip64) {
        return gt_err("the ZIP end record calls for a ZIP64 record, and there is none");
    } else if (disk != 0 || cd_disk != 0 || here != total) {
        return gt_err("multi-disk ZIP archives are not supported");
    }
    if (!in_bounds(e->cd_off, e->cd_size, e->cd_end_limit))
        return gt_err("the central directory (offset %llu, %llu bytes) lies outside the archive",
                      (unsigned long long)e->cd_off, (unsigned long long)e->cd_size);
    if (e->entries > MAX_MEMBERS) return gt_err("%llu members: more than %d", (unsigned long long)e->entries, MAX_MEMBERS);
    return 0;
}

/* ---- members -------------------------------------------------------------------------------- */

typedef struct {
    uint16_t flags, method;
    uint32_t crc;
    uint64_t csize, usize, local_off;
    const unsigned char *name;
    uint16_t name_len;
} member_t;

/* Apply a ZIP64 extra field (id 1) to the sizes and offset that are 0xFFFFFFFF, in the order
 * the format fixes: uncompressed size, compressed size, local header offset. */
static int apply_zip64(member_t *m, const unsigned char *x, size_t xlen, int want_u, int want_c, int want_o) {
    size_t at = 0;
    while (at + 4 <= xlen) {
        uint16_t id = rd16(x + at), sz = rd16(x + at + 2);
        if (sz > xlen - at - 4) return gt_err("an extra field runs past its record");
        if (id == EXTRA_ZIP64) {
            const unsigned char *p = x + at + 4;
            size_t need = 8u * (size_t)(want_u + want_c + want_o);
            if (sz < need) return gt_err("the ZIP64 extra field is too short (%u bytes, need %zu)", sz, need);
            if (want_u) m->usize = rd64(p), p += 8;
            if (want_c) m->csize = rd64(p), p += 8;
            if (want_o) m->local_off = rd64(p);
            return 0;
        }
        at += 4u + sz;
    }
    if (want_u || want_c || want_o) return gt_err("a size or offset is 0xFFFFFFFF but there is no ZIP64 extra field");
    return 0;
}

/* Inflate raw deflate data src (n bytes) into exactly usize bytes at dst; the stream must end
 * exactly at the end of src and produce exactly usize bytes. */
static int inflate_exact(unsigned char *dst, uint64_t usize, const unsigned char *src, uint64_t n) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, -15) != Z_OK) return gt_err("zlib: cannot initialise inflate");
    uint64_t in_left = n, out_left = usize;
    unsigned char spare; /* one byte past the declared size: inflate writing there means too long */
    int rc, past = 0;
    zs.next_in = (Bytef *)src;
    zs.next_out = dst;
    for (;;) {
        if (zs.avail_in == 0 && in_left) {
            uInt c = (uInt)(in_left > (1u << 30) ? (1u << 30) : in_left);
            zs.avail_in = c;
            in_left -= c;
        }
        if (zs.avail_out == 0) {
            if (past) break;
            if (out_left) {
                uInt c = (uInt)(out_left > (1u << 30) ? (1u << 30) : out_left);
                zs.avail_out = c;
                out_left -= c;
            } else {
                zs.next_out = &spare;
                zs.avail_out = 1;
                past = 1;
            }
        }
        rc = inflate(&zs, Z_NO_FLUSH);
        if (rc != Z_OK) break;
    }
    uint64_t total_in = zs.total_in, total_out = zs.total_out;
    inflateEnd(&zs);
    if (total_out > usize) return gt_err("deflated data is longer than the %llu bytes declared", (unsigned long long)usize);
    if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT) return gt_err("corrupt deflate data");
    if (rc == Z_MEM_ERROR) return gt_err("out of memory inflating");
    if (rc != Z_STREAM_END) return gt_err("deflate data is truncated");
    if (total_out != usize)
        return gt_err("deflated data gives %llu bytes, %llu declared", (unsigned long long)total_out,
                      (unsigned long long)usize);
    if (total_in != n) return gt_err("%llu bytes after the end of the deflate data", (unsigned long long)(n - total_in));
    return 0;
}

/* Parse central record at *at (advanced past it). */
static int read_central(const unsigned char *b, size_t len, uint64_t *at, uint64_t cd_end, member_t *m) {
    (void)len;
    if (!in_bounds(*at, CENTRAL_LEN, cd_end) || rd32(b + *at) != SIG_CENTRAL)
        return gt_err("bad central directory record at offset %llu", (unsigned long long)*at);
    const unsigned char *p = b + *at;
    memset(m, 0, sizeof *m);
    m->flags = rd16(p + 8);
    m->method = rd16(p + 10);
    m->crc = rd32(p + 16);
    m->csize = rd32(p + 20);
    m->usize = rd32(p + 24);
    m->name_len = rd16(p + 28);
    uint16_t xlen = rd16(p + 30), clen = rd16(p + 32), disk = rd16(p + 34);
    m->local_off = rd32(p + 42);
    uint64_t rec = (uint64_t)CENTRAL_LEN + m->name_len + xlen + clen;
    if (!in_bounds(*at, rec, cd_end)) return gt_err("a central directory record runs past the directory");
    m->name = p + CENTRAL_LEN;
    if (apply_zip64(m, p + CENTRAL_LEN + m->name_len, xlen, m->usize == U32_MAX, m->csize == U32_MAX,
                    m->local_off == U32_MAX))
        return -1;
    if (disk != 0 && disk != 0xFFFF) return gt_err("multi-disk ZIP archives are not supported");
    *at += rec;
    return 0;
}

/* The name without ".npy" (malloc'd) or NULL with a message. */
static char *member_name(const member_t *m) {
    size_t n = m->name_len;
    if (n < 5 || memcmp(m->name + n - 4, ".npy", 4) != 0 || memchr(m->name, 0, n)) {
        char shown[64];
        size_t k = n < sizeof shown - 1 ? n : sizeof shown - 1;
        for (size_t i = 0; i < k; i++) shown[i] = (m->name[i] >= 32 && m->name[i] < 127) ? (char)m->name[i] : '?';
        shown[k] = 0;
        gt_err("member '%s%s' is not a NAME.npy array", shown, n > k ? "..." : "");
        return NULL;
    }
    char *s = gt_xmalloc(n - 3);
    memcpy(s, m->name, n - 4);
    s[n - 4] = 0;
    return s;
}

/* Read member m's data and parse it as .npy into e. */
static int read_member(const unsigned char *b, size_t len, uint64_t data_limit, const member_t *m, npz_entry_t *e) {
    if (m->flags & 0x0001) return gt_err("encrypted members are not supported");
    if (m->method != 0 && m->method != 8)
        return gt_err("compression method %u is not supported (stored and deflate are)", m->method);
    if (!in_bounds(m->local_off, LOCAL_LEN, data_limit) || rd32(b + m->local_off) != SIG_LOCAL)
        return gt_err("bad local header at offset %llu", (unsigned long long)m->local_off);
    const unsigned char *l = b + m->local_off;
    uint16_t lname = rd16(l + 26), lx = rd16(l + 28);
    if (lname != m->name_len || memcmp(l + LOCAL_LEN, m->name, lname) != 0)
        return gt_err("the local header's name differs from the central directory's");
    if (rd16(l + 8) != m->method) return gt_err("the local header's compression method differs from the central directory's");
    uint64_t data_off = m->local_off + LOCAL_LEN + lname + lx;
    if (!in_bounds(data_off, m->csize, data_limit))
        return gt_err("data of %llu bytes at offset %llu runs past the archive", (unsigned long long)m->csize,
                      (unsigned long long)data_off);
    if (m->method == 0 && m->csize != m->usize)
        return gt_err("a stored member's sizes differ (%llu and %llu)", (unsigned long long)m->csize,
                      (unsigned long long)m->usize);
    if (m->method == 8 && m->usize / MAX_DEFLATE_RATIO > m->csize + 1)
        return gt_err("declared size %llu is impossible for %llu deflated bytes", (unsigned long long)m->usize,
                      (unsigned long long)m->csize);
    if (m->usize > (uint64_t)SIZE_MAX / 2) return gt_err("member of %llu bytes is too large", (unsigned long long)m->usize);
    const unsigned char *data = b + data_off;
    unsigned char *owned = NULL;
    if (m->method == 8) {
        owned = malloc(m->usize ? (size_t)m->usize : 1);
        if (!owned) return gt_err("out of memory for a member of %llu bytes", (unsigned long long)m->usize);
        if (inflate_exact(owned, m->usize, data, m->csize)) {
            free(owned);
            return -1;
        }
        data = owned;
    }
    uLong crc = crc32(0L, Z_NULL, 0);
    for (uint64_t done = 0; done < m->usize;) {
        uInt chunk = (uInt)(m->usize - done > (1u << 30) ? (1u << 30) : m->usize - done);
        crc = crc32(crc, data + done, chunk);
        done += chunk;
    }
    int rc = 0;
    if ((uint32_t)crc != m->crc) rc = gt_err("CRC-32 mismatch (stored %08x, computed %08x): the data is corrupt", m->crc, (unsigned)crc);
    else if (npy_parse(data, (size_t)m->usize, &e->t)) rc = -1;
    free(owned);
    (void)len;
    return rc;
}

int npz_parse(const void *buf, size_t len, npz_file_t *z) {
    const unsigned char *b = buf;
    memset(z, 0, sizeof *z);
    eocd_t e = {0}; /* set by find_eocd; zeroed so the compiler sees it */
    if (find_eocd(b, len, &e)) return -1;
    z->entries = gt_xcalloc((size_t)(e.entries ? e.entries : 1), sizeof *z->entries);
    uint64_t at = e.cd_off, cd_end = e.cd_off + e.cd_size;
    for (uint64_t i = 0; i < e.entries; i++) {
        member_t m;
        if (read_central(b, len, &at, cd_end, &m)) goto fail;
        npz_entry_t *en = &z->entries[z->n];
        en->name = member_name(&m);
        if (!en->name) goto fail;
        for (int j = 0; j < z->n; j++)
            if (strcmp(z->entries[j].name, en->name) == 0) {
                gt_err("member '%s.npy' appears twice", en->name);
                free(en->name);
                en->name = NULL;
                goto fail;
            }
        if (read_member(b, len, e.cd_off, &m, en)) {
            char prefix[300];
            snprintf(prefix, sizeof prefix, "member '%s.npy'", en->name);
            gt_err_prefix(prefix);
            free(en->name);
            en->name = NULL;
            goto fail;
        }
        z->n++;
    }
    if (at != cd_end) {
        gt_err("the central directory holds %llu bytes more than its %llu records", (unsigned long long)(cd_end - at),
               (unsigned long long)e.entries);
        goto fail;
    }
    return 0;
fail:
    npz_free(z);
    return -1;
}

void npz_free(npz_file_t *z) {
    for (int i = 0; i < z->n; i++) {
        free(z->entries[i].name);
        tensor_free(&z->entries[i].t);
    }
    free(z->entries);
    memset(z, 0, sizeof *z);
}

const tensor_t *npz_find(const npz_file_t *z, const char *name) {
    for (int i = 0; i < z->n; i++)
        if (strcmp(z->entries[i].name, name) == 0) return &z->entries[i].t;
    return NULL;
}

/* ---- loading -------------------------------------------------------------------------------- */

int npz_load(const char *path, npz_file_t *z) {
    memset(z, 0, sizeof *z);
    wholefile_t w;
    int rc = wholefile_load(path, &w);
    if (rc == 0) rc = w.len == 0 ? gt_err("empty file") : npz_parse(w.p, w.len, z);
    wholefile_free(&w);
    return rc ? gt_err_prefix(!path || strcmp(path, "-") == 0 ? "stdin" : path) : 0;
}

/* ---- writer ----------------------------------------------------------------------------------- */

typedef struct {
    FILE *f;
    uint64_t pos;
} wstream_t;

static int put(wstream_t *w, const void *p, size_t n) {
    errno = 0;
    if (n && fwrite(p, 1, n, w->f) != n) return gt_err("write failed: %s", errno ? strerror(errno) : "short write");
    w->pos += n;
    return 0;
}

typedef struct {
    char *name; /* with ".npy" */
    uint16_t method;
    uint32_t crc;
    uint64_t csize, usize, off;
} wmember_t;

/* 1980-01-01 00:00, the earliest DOS time: numpy.savez writes the same */
#define DOS_TIME 0
#define DOS_DATE 0x21

static void header_common(unsigned char *p, const wmember_t *m) {
    wr16(p + 0, 20); /* version needed: 2.0 */
    wr16(p + 2, 0);  /* flags */
    wr16(p + 4, m->method);
    wr16(p + 6, DOS_TIME);
    wr16(p + 8, DOS_DATE);
    wr32(p + 10, m->crc);
    wr32(p + 14, (uint32_t)m->csize);
    wr32(p + 18, (uint32_t)m->usize);
    wr16(p + 22, (unsigned)strlen(m->name));
}

/* Member bytes: the .npy header then the data, CRC'd and (with compress) deflated into *out. */
static int encode_member(const tensor_t *t, int compress, wmember_t *m, unsigned char **out, const void **plain_data,
                         unsigned char *hdr, long *hdr_len) {
    *hdr_len = npy_format_header((char *)hdr, 1024, t->dtype, t->ndim, t->shape);
    if (*hdr_len < 0) return -1;
    uint64_t nbytes = tensor_nbytes(t);
    m->usize = (uint64_t)*hdr_len + nbytes;
    if (m->usize >= U32_MAX) return gt_err("array of %llu bytes is too large for a .npz without ZIP64", (unsigned long long)m->usize);
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, hdr, (uInt)*hdr_len);
    for (uint64_t done = 0; done < nbytes;) {
        uInt chunk = (uInt)(nbytes - done > (1u << 30) ? (1u << 30) : nbytes - done);
        crc = crc32(crc, (const unsigned char *)t->data + done, chunk);
        done += chunk;
    }
    m->crc = (uint32_t)crc;
    *plain_data = t->data;
    *out = NULL;
    if (!compress) {
        m->method = 0;
        m->csize = m->usize;
        return 0;
    }
    m->method = 8;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return gt_err("zlib: cannot initialise deflate");
    uLong bound = deflateBound(&zs, (uLong)m->usize);
    unsigned char *buf = malloc(bound ? bound : 1);
    if (!buf) {
        deflateEnd(&zs);
        return gt_err("out of memory compressing %llu bytes", (unsigned long long)m->usize);
    }
    zs.next_out = buf;
    zs.avail_out = (uInt)bound;
    zs.next_in = hdr;
    zs.avail_in = (uInt)*hdr_len;
    int rc = deflate(&zs, nbytes ? Z_NO_FLUSH : Z_FINISH);
    for (uint64_t done = 0; rc != Z_STREAM_END && rc >= 0 && done < nbytes;) {
        uInt chunk = (uInt)(nbytes - done > (1u << 30) ? (1u << 30) : nbytes - done);
        zs.next_in = (Bytef *)((const unsigned char *)t->data + done);
        zs.avail_in = chunk;
        done += chunk;
        rc = deflate(&zs, done == nbytes ? Z_FINISH : Z_NO_FLUSH);
    }
    m->csize = bound - zs.avail_out;
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        free(buf);
        return gt_err("zlib: deflate failed");
    }
    *out = buf;
    return 0;
}

int npz_write(FILE *f, int n, const char *const *names, const tensor_t *const *arrays, int compress) {
    if (n < 0 || n > 0xFFFF) return gt_err("%d arrays: a .npz without ZIP64 holds at most 65535", n);
    wmember_t *ms = gt_xcalloc((size_t)(n ? n : 1), sizeof *ms);
    wstream_t w = {f, 0};
    int rc = 0, i;
    for (i = 0; i < n && rc == 0; i++) {
        size_t nl = strlen(names[i]);
        if (nl == 0 || strchr(names[i], '/') || nl > 1000) {
            rc = gt_err("bad array name '%s'", names[i]);
            break;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(names[j], names[i]) == 0) rc = gt_err("array name '%s' given twice", names[i]);
        if (rc) break;
        ms[i].name = gt_xmalloc(nl + 5);
        memcpy(ms[i].name, names[i], nl);
        memcpy(ms[i].name + nl, ".npy", 5);
        unsigned char hdr[1024], *packed = NULL;
        const void *data = NULL;
        long hl;
        if (encode_member(arrays[i], compress, &ms[i], &packed, &data, hdr, &hl)) {
            rc = -1;
            break;
        }
        ms[i].off = w.pos;
        if (ms[i].off + LOCAL_LEN + nl + 4 + ms[i].csize >= U32_MAX) {
            free(packed);
            rc = gt_err("the archive would reach 4 GiB: too large for a .npz without ZIP64");
            break;
        }
        unsigned char lh[LOCAL_LEN];
        wr32(lh, SIG_LOCAL);
        header_common(lh + 4, &ms[i]);
        wr16(lh + 28, 0); /* no extra field */
        rc = put(&w, lh, LOCAL_LEN) || put(&w, ms[i].name, nl + 4);
        if (rc == 0) {
            if (packed) rc = put(&w, packed, (size_t)ms[i].csize);
            else rc = put(&w, hdr, (size_t)hl) || put(&w, data, tensor_nbytes(arrays[i]));
        }
        rc = rc ? -1 : 0;
        free(packed);
    }
    uint64_t cd_off = w.pos;
    for (int k = 0; k < n && rc == 0; k++) {
        unsigned char ch[CENTRAL_LEN];
        wr32(ch, SIG_CENTRAL);
        wr16(ch + 4, 0x0314); /* made by: Unix, 2.0 */
        header_common(ch + 6, &ms[k]);
        wr16(ch + 30, 0);                  /* extra */
        wr16(ch + 32, 0);                  /* comment */
        wr16(ch + 34, 0);                  /* disk */
        wr16(ch + 36, 0);                  /* internal attributes */
        wr32(ch + 38, 0600u << 16);        /* external: -rw------- */
        wr32(ch + 42, (uint32_t)ms[k].off);
        rc = put(&w, ch, CENTRAL_LEN) || put(&w, ms[k].name, strlen(ms[k].name)) ? -1 : 0;
    }
    if (rc == 0) {
        uint64_t cd_size = w.pos - cd_off;
        if (w.pos >= U32_MAX) {
            rc = gt_err("the archive would reach 4 GiB: too large for a .npz without ZIP64");
        } else {
            unsigned char e[EOCD_LEN];
            wr32(e, SIG_EOCD);
            wr16(e + 4, 0);
            wr16(e + 6, 0);
            wr16(e + 8, (unsigned)n);
            wr16(e + 10, (unsigned)n);
            wr32(e + 12, (uint32_t)cd_size);
            wr32(e + 16, (uint32_t)cd_off);
            wr16(e + 20, 0);
            rc = put(&w, e, EOCD_LEN);
        }
    }
    for (int k = 0; k < n; k++) free(ms[k].name);
    free(ms);
    return rc;
}
