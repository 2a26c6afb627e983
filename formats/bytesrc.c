/* bytesrc.c: plain or gzip input, told apart by the first two bytes (see bytesrc.h).
 *
 * Raw bytes go through inbuf: at open it holds the first chunk (the peek at the magic); in
 * plain mode it is handed out first and later reads go straight from the stream into the
 * caller's buffer; in gzip mode it is zlib's input. */
#define _POSIX_C_SOURCE 200809L
#include "bytesrc.h"
#include "lib/base/common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Raw bytes from the stream or memory into dst; sets raw_eof at the end. */
static int raw_read(bytesrc_t *s, unsigned char *dst, size_t n, size_t *got) {
    *got = 0;
    if (s->raw_eof || n == 0) return 0;
    if (s->mem) {
        size_t k = s->mem_len - s->mem_pos < n ? s->mem_len - s->mem_pos : n;
        memcpy(dst, s->mem + s->mem_pos, k);
        s->mem_pos += k;
        *got = k;
        if (s->mem_pos == s->mem_len) s->raw_eof = 1;
        return 0;
    }
    errno = 0;
    *got = fread(dst, 1, n, s->f);
    if (*got < n) {
        if (ferror(s->f)) return gt_err("read error: %s", errno ? strerror(errno) : "I/O error");
        s->raw_eof = 1;
    }
    return 0;
}

/* Refill inbuf when it is empty. */
static int refill(bytesrc_t *s) {
    if (s->in_pos < s->in_len) return 0;
    s->in_pos = s->in_len = 0;
    return raw_read(s, s->inbuf, BYTESRC_CHUNK, &s->in_len);
}

static int start(bytesrc_t *s) {
    s->inbuf = malloc(BYTESRC_CHUNK);
    if (!s->inbuf) return gt_err("out of memory");
    if (refill(s)) return -1;
    s->gz = s->in_len >= 2 && s->inbuf[0] == 0x1f && s->inbuf[1] == 0x8b;
    if (s->gz) {
        s->raw_size = -1;
        memset(&s->z, 0, sizeof s->z);
        /* 16 + MAX_WBITS: a gzip wrapper, whose CRC-32 and length zlib checks */
        if (inflateInit2(&s->z, 16 + MAX_WBITS) != Z_OK) return gt_err("cannot start zlib: out of memory");
        s->gz_live = 1;
    }
    return 0;
}

int bytesrc_open(bytesrc_t *s, const char *path) {
    int is_stdin = !path || strcmp(path, "-") == 0;
    memset(s, 0, sizeof *s);
    s->raw_size = -1;
    s->f = is_stdin ? stdin : fopen(path, "rb");
    if (!s->f) return gt_err("%s", strerror(errno));
    s->close_f = !is_stdin;
    struct stat st;
    if (fstat(fileno(s->f), &st) == 0) {
        if (S_ISDIR(st.st_mode)) return gt_err("is a directory");
        if (S_ISREG(st.st_mode) && ftello(s->f) == 0) s->raw_size = (int64_t)st.st_size;
    }
    int64_t size = s->raw_size;
    if (start(s)) return -1;
    if (!s->gz) s->raw_size = size;
    return 0;
}

int bytesrc_open_mem(bytesrc_t *s, const void *buf, size_t len) {
    memset(s, 0, sizeof *s);
    s->mem = buf;
    s->mem_len = len;
    s->raw_size = (int64_t)len;
    if (len == 0) s->raw_eof = 1;
    return start(s);
}

/* Plain data: what is left of inbuf, then straight from the input. */
static int read_plain(bytesrc_t *s, unsigned char *dst, size_t n, size_t *got) {
    size_t k = s->in_len - s->in_pos < n ? s->in_len - s->in_pos : n, more = 0;
    memcpy(dst, s->inbuf + s->in_pos, k);
    s->in_pos += k;
    if (k < n && raw_read(s, dst + k, n - k, &more)) return -1;
    *got = k + more;
    return 0;
}

/* gzip data: inflate into dst until it is full or the last member has ended. */
static int read_gz(bytesrc_t *s, unsigned char *dst, size_t n, size_t *got) {
    *got = 0;
    while (*got < n && !s->gz_done) {
        if (refill(s)) return -1;
        if (s->in_pos == s->in_len) return gt_err("truncated gzip data (the compressed stream ends early)");
        s->z.next_in = s->inbuf + s->in_pos;
        s->z.avail_in = (uInt)(s->in_len - s->in_pos);
        size_t want = n - *got;
        s->z.next_out = dst + *got;
        s->z.avail_out = want > (1u << 30) ? (1u << 30) : (uInt)want;
        uInt out_before = s->z.avail_out;
        int rc = inflate(&s->z, Z_NO_FLUSH);
        *got += out_before - s->z.avail_out;
        s->in_pos = s->in_len - s->z.avail_in;
        switch (rc) {
        case Z_OK:
        case Z_BUF_ERROR: /* no progress: needs more input, which the next refill brings */
            break;
        case Z_STREAM_END:
            /* a member ended: another may follow (concatenated gzip files) */
            if (refill(s)) return -1;
            if (s->in_pos == s->in_len) s->gz_done = 1;
            else if (s->inbuf[s->in_pos] != 0x1f) return gt_err("trailing garbage after the gzip data");
            else if (inflateReset(&s->z) != Z_OK) return gt_err("cannot restart zlib");
            break;
        case Z_MEM_ERROR: return gt_err("out of memory decompressing gzip data");
        default: return gt_err("corrupt gzip data: %s", s->z.msg ? s->z.msg : "unknown error");
        }
    }
    return 0;
}

int bytesrc_read(bytesrc_t *s, void *buf, size_t n, size_t *got) {
    *got = 0;
    if (n == 0) return 0;
    return s->gz ? read_gz(s, buf, n, got) : read_plain(s, buf, n, got);
}

int bytesrc_skip(bytesrc_t *s, uint64_t n, uint64_t *got) {
    unsigned char tmp[16384];
    *got = 0;
    while (*got < n) {
        size_t want = n - *got < sizeof tmp ? (size_t)(n - *got) : sizeof tmp, k;
        if (bytesrc_read(s, tmp, want, &k)) return -1;
        *got += k;
        if (k < want) break;
    }
    return 0;
}

int bytesrc_drain(bytesrc_t *s, uint64_t *left) { return bytesrc_skip(s, UINT64_MAX, left); }

int bytesrc_append(bytesrc_t *s, bytebuf_t *b, uint64_t n, uint64_t *got) {
    *got = 0;
    while (*got < n) {
        if (b->len == b->cap) {
            uint64_t need = (uint64_t)b->len + (n - *got);
            uint64_t ncap = b->cap ? (uint64_t)b->cap * 2 : (1u << 16);
            if (ncap > need) ncap = need;
            if (ncap > SIZE_MAX) return gt_err("out of memory");
            unsigned char *p = realloc(b->p, (size_t)ncap);
            if (!p) return gt_err("out of memory reading %llu bytes", (unsigned long long)ncap);
            b->p = p;
            b->cap = (size_t)ncap;
        }
        size_t want = b->cap - b->len, k;
        if (want > n - *got) want = (size_t)(n - *got);
        if (bytesrc_read(s, b->p + b->len, want, &k)) return -1;
        b->len += k;
        *got += k;
        if (k < want) break;
    }
    return 0;
}

int bytebuf_put(bytebuf_t *b, const void *p, size_t n) {
    if (b->cap - b->len < n) {
        size_t ncap = b->cap ? b->cap : (1u << 16);
        while (ncap - b->len < n) {
            if (ncap > SIZE_MAX / 2) return gt_err("out of memory");
            ncap *= 2;
        }
        unsigned char *q = realloc(b->p, ncap);
        if (!q) return gt_err("out of memory (%zu bytes)", ncap);
        b->p = q;
        b->cap = ncap;
    }
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

void bytesrc_close(bytesrc_t *s) {
    if (s->gz_live) inflateEnd(&s->z);
    if (s->f && s->close_f) fclose(s->f);
    free(s->inbuf);
    memset(s, 0, sizeof *s);
}

/* ---- whole files ----------------------------------------------------------------------- */

int file_read_growing(FILE *in, size_t first, size_t limit, unsigned char **out, size_t *got_out) {
    size_t cap = first < limit ? first : limit, got = 0;
    unsigned char *b = gt_xmalloc(cap ? cap : 1);
    while (got < limit) {
        if (got == cap) {
            size_t ncap = cap > limit / 2 ? limit : cap * 2;
            unsigned char *nb = realloc(b, ncap);
            if (!nb) {
                free(b);
                return gt_err("out of memory reading the input (%zu bytes so far)", got);
            }
            b = nb;
            cap = ncap;
        }
        size_t n = fread(b + got, 1, cap - got, in);
        got += n;
        if (n == 0) break;
    }
    if (ferror(in)) {
        free(b);
        return gt_err("read error: %s", strerror(errno));
    }
    *out = b;
    *got_out = got;
    return 0;
}

/* Read a whole stream into a growing heap buffer. */
static int read_whole(FILE *in, wholefile_t *w) {
    size_t got;
    if (file_read_growing(in, 1 << 16, SIZE_MAX, &w->p, &got)) return -1;
    w->len = got;
    return 0;
}

int wholefile_load(const char *path, wholefile_t *w) {
    int is_stdin = !path || strcmp(path, "-") == 0;
    memset(w, 0, sizeof *w);
    FILE *in = is_stdin ? stdin : fopen(path, "rb");
    if (!in) return gt_err("%s", strerror(errno));
    struct stat st;
    int fd = fileno(in), rc = 0;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        rc = gt_err("is a directory");
    } else if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 && lseek(fd, 0, SEEK_CUR) == 0 &&
               ftell(in) == 0) {
        void *base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
        if (base == MAP_FAILED) {
            rc = gt_err("cannot map: %s", strerror(errno));
        } else {
            w->p = base;
            w->len = (size_t)st.st_size;
            w->mapped = 1;
        }
    } else {
        rc = read_whole(in, w);
    }
    if (!is_stdin) fclose(in);
    return rc;
}

void wholefile_free(wholefile_t *w) {
    if (w->mapped) munmap(w->p, w->len);
    else free(w->p);
    memset(w, 0, sizeof *w);
}
