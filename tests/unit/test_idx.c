/* test_idx.c: the plain-or-gzip byte source (formats/bytesrc.h), the IDX reader
 * (formats/idx.h) and the CIFAR-10 reader (formats/cifar.h): data read back exactly from
 * memory, files and pipes, plain and gzip (one member or several); and every malformed input
 * we know of refused with its message: empty, truncated, wrong magic, unsupported types, lying
 * or overflowing sizes, corrupt, truncated and trailing gzip. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "formats/cifar.h"
#include "formats/idx.h"
#include "lib/base/common.h"
#include "harness.h"
#include "scratch.h"

/* ---- helpers ---------------------------------------------------------------------------- */



/* gzip (one member) of n bytes; *len set. */
static unsigned char *gzip_of(const void *p, size_t n, size_t *len) {
    z_stream z;
    memset(&z, 0, sizeof z);
    deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    size_t cap = deflateBound(&z, (uLong)n) + 64;
    unsigned char *out = malloc(cap);
    z.next_in = (unsigned char *)p;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    deflate(&z, Z_FINISH);
    *len = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

/* An IDX file: type, dims, then data bytes 0, 1, 2, ... (mod 251) for the product. */
static unsigned char *make_idx(int type, int ndim, const uint32_t *dims, size_t *len) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= dims[i];
    unsigned char *b = malloc(4 + 4 * (size_t)ndim + n + 1);
    b[0] = b[1] = 0;
    b[2] = (unsigned char)type;
    b[3] = (unsigned char)ndim;
    for (int i = 0; i < ndim; i++)
        for (int k = 0; k < 4; k++) b[4 + 4 * i + k] = (unsigned char)(dims[i] >> (24 - 8 * k));
    for (size_t i = 0; i < n; i++) b[4 + 4 * (size_t)ndim + i] = (unsigned char)(i % 251);
    *len = 4 + 4 * (size_t)ndim + n;
    return b;
}

static void expect_idx_fail(const char *what, const void *b, size_t len, const char *want) {
    tensor_t t;
    int rc = idx_parse(b, len, &t);
    CHECK(rc == -1, "%s: accepted", what);
    if (rc == 0) tensor_free(&t);
    else CHECK(strstr(gt_errmsg(), want) != NULL, "%s: message '%s' lacks '%s'", what, gt_errmsg(), want);
    CHECK(t.data == NULL, "%s: a failed parse left data", what);
}

/* Run fn(path-or-NULL) with stdin a pipe fed by a child process, in small writes. */
static int with_pipe(const void *buf, size_t len, int (*fn)(void *), void *arg) {
    int fd[2];
    if (pipe(fd)) return -2;
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        const char *p = buf;
        while (len) {
            ssize_t n = write(fd[1], p, len > 777 ? 777 : len);
            if (n <= 0) _exit(1);
            p += n;
            len -= (size_t)n;
        }
        _exit(0);
    }
    close(fd[1]);
    int saved = dup(0);
    dup2(fd[0], 0);
    close(fd[0]);
    clearerr(stdin);
    int rc = fn(arg);
    dup2(saved, 0);
    close(saved);
    clearerr(stdin);
    waitpid(pid, NULL, 0);
    return rc;
}

/* Read a whole IDX file through idx_open(path) into b; 0 or -1. */
static int read_idx_path(const char *path, bytebuf_t *b, idx_header_t *h) {
    idx_reader_t r;
    int rc = idx_open(&r, path);
    if (rc == 0) {
        *h = r.h;
        rc = idx_read(&r, b, r.h.nbytes);
    }
    if (rc == 0) rc = idx_finish(&r);
    idx_close(&r);
    return rc;
}

typedef struct {
    bytebuf_t b;
    idx_header_t h;
} pipe_read_t;

static int read_idx_stdin(void *arg) {
    pipe_read_t *p = arg;
    return read_idx_path(NULL, &p->b, &p->h);
}

/* ---- the byte source -------------------------------------------------------------------- */

static void test_bytesrc_plain_and_gzip(void) {
    size_t n = 300000, glen;
    unsigned char *data = malloc(n);
    for (size_t i = 0; i < n; i++) data[i] = (unsigned char)(i * 7 + i / 1000);
    unsigned char *gz = gzip_of(data, n, &glen);
    for (int mode = 0; mode < 2; mode++) {
        bytesrc_t s;
        CHECK(bytesrc_open_mem(&s, mode ? gz : data, mode ? glen : n) == 0, "open: %s", gt_errmsg());
        CHECK(s.gz == mode, "mode %d: gz %d", mode, s.gz);
        CHECK(s.raw_size == (mode ? -1 : (int64_t)n), "raw_size %lld", (long long)s.raw_size);
        /* odd-sized reads across chunk boundaries */
        unsigned char *back = malloc(n + 10);
        size_t at = 0, got;
        int rc = 0;
        for (size_t step = 1; at < n && rc == 0; step = step * 3 % 70001 + 1) {
            rc = bytesrc_read(&s, back + at, step, &got);
            at += got;
            if (got < step) break;
        }
        CHECK(rc == 0 && at == n && memcmp(back, data, n) == 0, "mode %d: read back %zu of %zu: %s", mode, at, n,
              gt_errmsg());
        CHECK(bytesrc_read(&s, back, 10, &got) == 0 && got == 0, "mode %d: data after the end", mode);
        bytesrc_close(&s);
        bytesrc_close(&s); /* twice is safe */
        free(back);
    }
    /* two gzip members read as one stream; a plain file that happens to be named .gz */
    unsigned char *two = malloc(2 * glen);
    memcpy(two, gz, glen);
    memcpy(two + glen, gz, glen);
    bytesrc_t s;
    uint64_t left;
    CHECK(bytesrc_open_mem(&s, two, 2 * glen) == 0 && bytesrc_drain(&s, &left) == 0 && left == 2 * n,
          "two members: %llu bytes, %s", (unsigned long long)left, gt_errmsg());
    bytesrc_close(&s);
    write_file(tmp_path("plain.gz"), data, n);
    CHECK(bytesrc_open(&s, tmp_path("plain.gz")) == 0 && !s.gz && s.raw_size == (int64_t)n, "plain .gz");
    bytesrc_close(&s);
    free(two);
    free(gz);
    free(data);
}

static void test_bytesrc_bad_gzip(void) {
    size_t n = 50000, glen;
    unsigned char *data = malloc(n);
    for (size_t i = 0; i < n; i++) data[i] = (unsigned char)(i % 13 * 19);
    unsigned char *gz = gzip_of(data, n, &glen);
    unsigned char *bad = malloc(glen + 8);
    bytesrc_t s;
    uint64_t left;
    /* truncated: at several points in the stream */
    size_t cuts[] = {2, 10, glen / 2, glen - 4, glen - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        CHECK(bytesrc_open_mem(&s, gz, cuts[i]) == 0, "open cut %zu", cuts[i]);
        int rc = bytesrc_drain(&s, &left);
        CHECK(rc == -1 && strstr(gt_errmsg(), "truncated gzip data"), "cut at %zu of %zu: rc %d '%s'", cuts[i], glen,
              rc, gt_errmsg());
        bytesrc_close(&s);
    }
    /* a flipped byte in the compressed blocks, and one in the CRC trailer */
    size_t spots[] = {glen / 3, glen - 6};
    for (size_t i = 0; i < 2; i++) {
        memcpy(bad, gz, glen);
        bad[spots[i]] ^= 0x55;
        bytesrc_open_mem(&s, bad, glen);
        int rc = bytesrc_drain(&s, &left);
        CHECK(rc == -1 && strstr(gt_errmsg(), "corrupt gzip data"), "flip at %zu: rc %d '%s'", spots[i], rc, gt_errmsg());
        bytesrc_close(&s);
    }
    /* trailing garbage after the member */
    memcpy(bad, gz, glen);
    memcpy(bad + glen, "junk", 4);
    bytesrc_open_mem(&s, bad, glen + 4);
    CHECK(bytesrc_drain(&s, &left) == -1 && strstr(gt_errmsg(), "trailing garbage"), "'%s'", gt_errmsg());
    bytesrc_close(&s);
    /* the magic alone */
    bytesrc_open_mem(&s, "\x1f\x8b", 2);
    CHECK(s.gz && bytesrc_drain(&s, &left) == -1 && strstr(gt_errmsg(), "truncated gzip"), "'%s'", gt_errmsg());
    bytesrc_close(&s);
    /* a directory and a missing file */
    CHECK(bytesrc_open(&s, tmpdir) == -1 && strstr(gt_errmsg(), "is a directory"), "'%s'", gt_errmsg());
    bytesrc_close(&s);
    CHECK(bytesrc_open(&s, tmp_path("missing")) == -1 && strstr(gt_errmsg(), "No such file"), "'%s'", gt_errmsg());
    bytesrc_close(&s);
    free(bad);
    free(gz);
    free(data);
}

/* ---- IDX -------------------------------------------------------------------------------- */

static void test_idx_roundtrip(void) {
    uint32_t img[3] = {5, 28, 28}, lab[1] = {1000}, zero[3] = {0, 28, 28}, many[8] = {2, 1, 3, 1, 2, 1, 1, 2};
    const uint32_t *dims[4] = {img, lab, zero, many};
    int nd[4] = {3, 1, 3, 8};
    for (int k = 0; k < 4; k++) {
        size_t len, glen;
        unsigned char *b = make_idx(0x08, nd[k], dims[k], &len);
        unsigned char *g = gzip_of(b, len, &glen);
        size_t hdr = 4 + 4 * (size_t)nd[k];
        for (int gz = 0; gz < 2; gz++) {
            tensor_t t;
            int rc = idx_parse(gz ? g : b, gz ? glen : len, &t);
            CHECK(rc == 0, "case %d gz %d: %s", k, gz, gt_errmsg());
            if (rc) continue;
            CHECK(t.dtype == DT_U8 && t.ndim == nd[k], "case %d: dtype %d ndim %d", k, t.dtype, t.ndim);
            for (int i = 0; i < t.ndim; i++) CHECK(t.shape[i] == dims[k][i], "case %d dim %d", k, i);
            CHECK(tensor_nbytes(&t) == len - hdr && memcmp(t.data, b + hdr, len - hdr) == 0, "case %d: data", k);
            tensor_free(&t);
        }
        /* from a file, plain and gzip, and through a pipe */
        for (int gz = 0; gz < 2; gz++) {
            write_file(tmp_path("x.idx"), gz ? g : b, gz ? glen : len);
            bytebuf_t bb = {0};
            idx_header_t h;
            int rc = read_idx_path(tmp_path("x.idx"), &bb, &h);
            CHECK(rc == 0 && h.gzip == gz && bb.len == len - hdr && (bb.len == 0 || memcmp(bb.p, b + hdr, bb.len) == 0),
                  "file case %d gz %d: %s", k, gz, gt_errmsg());
            free(bb.p);
            pipe_read_t pr;
            memset(&pr, 0, sizeof pr);
            rc = with_pipe(gz ? g : b, gz ? glen : len, read_idx_stdin, &pr);
            CHECK(rc == 0 && pr.b.len == len - hdr && (pr.b.len == 0 || memcmp(pr.b.p, b + hdr, pr.b.len) == 0),
                  "pipe case %d gz %d: %s", k, gz, gt_errmsg());
            free(pr.b.p);
        }
        free(b);
        free(g);
    }
}

static void test_idx_partial_reads(void) {
    uint32_t dims[3] = {10, 4, 3};
    size_t len;
    unsigned char *b = make_idx(0x08, 3, dims, &len);
    idx_reader_t r;
    bytebuf_t bb = {0};
    CHECK(idx_open_mem(&r, b, len, "m") == 0, "%s", gt_errmsg());
    CHECK(idx_skip(&r, 24) == 0 && idx_read(&r, &bb, 36) == 0 && r.left == 60, "skip and read");
    CHECK(bb.len == 36 && memcmp(bb.p, b + 16 + 24, 36) == 0, "the right bytes");
    CHECK(idx_read(&r, &bb, 61) == -1 && strstr(gt_errmsg(), "m: asked for 61"), "'%s'", gt_errmsg());
    CHECK(idx_finish(&r) == 0 && r.left == 0, "finish: %s", gt_errmsg());
    idx_close(&r);
    free(bb.p);
    free(b);
}

static void test_idx_malformed(void) {
    uint32_t dims[3] = {3, 4, 5};
    size_t len, glen;
    unsigned char *b = make_idx(0x08, 3, dims, &len);
    expect_idx_fail("empty", b, 0, "empty file");
    expect_idx_fail("3 bytes", b, 3, "truncated IDX header");
    expect_idx_fail("cut in the dims", b, 10, "truncated IDX header: 3 dimensions announced, the file ends after 1");
    expect_idx_fail("data short", b, len - 1, "data is truncated: the header announces 60 bytes (3x4x5), the file has 59");
    unsigned char *more = malloc(len + 7);
    memcpy(more, b, len);
    memset(more + len, 1, 7);
    expect_idx_fail("data long", more, len + 7, "7 bytes of trailing data");
    /* gzip of a short and a long file: the same messages, found at the end of the data */
    unsigned char *g = gzip_of(b, len - 1, &glen);
    expect_idx_fail("gz data short", g, glen, "data is truncated: the header announces 60 bytes (3x4x5), the file has 59");
    free(g);
    g = gzip_of(more, len + 7, &glen);
    expect_idx_fail("gz data long", g, glen, "7 bytes of trailing data");
    free(g);
    expect_idx_fail("gif", "GIF89a..........", 16, "not an IDX file: it starts with bytes 47 49 46 38");
    g = gzip_of("GIF89a....", 10, &glen);
    expect_idx_fail("gzipped gif", g, glen, "(after gunzip)");
    free(g);
    g = gzip_of("", 0, &glen);
    expect_idx_fail("gzipped nothing", g, glen, "empty file (inside the gzip data)");
    free(g);
    /* types */
    const int types[5] = {0x09, 0x0B, 0x0C, 0x0D, 0x0E};
    const char *names[5] = {"int8", "int16", "int32", "float32", "float64"};
    for (int i = 0; i < 5; i++) {
        char want[96];
        snprintf(want, sizeof want, "IDX type 0x%02X (%s) is not supported", types[i], names[i]);
        more[2] = (unsigned char)types[i];
        expect_idx_fail(names[i], more, len, want);
    }
    more[2] = 0x42;
    expect_idx_fail("type 0x42", more, len, "unknown type byte 0x42");
    free(more);
    /* dimension counts */
    expect_idx_fail("0 dims", "\0\0\x08\0", 4, "0 dimensions");
    expect_idx_fail("9 dims", "\0\0\x08\x09", 4, "9 dimensions; at most 8");
    expect_idx_fail("255 dims", "\0\0\x08\xff", 4, "255 dimensions");
    /* sizes: negative as int32, overflowing products, absurd but representable */
    expect_idx_fail("negative", "\0\0\x08\x01\xff\xff\xff\xff", 8, "dimension 0 is 4294967295, beyond 2^31-1");
    expect_idx_fail("2^31", "\0\0\x08\x02\0\0\0\x01\x80\0\0\0", 12, "dimension 1 is 2147483648");
    expect_idx_fail("overflow", "\0\0\x08\x03\x7f\xff\xff\xff\x7f\xff\xff\xff\x7f\xff\xff\xff", 16,
                    "dimensions are too large: their product overflows");
    expect_idx_fail("absurd", "\0\0\x08\x03\x7f\xff\xff\xff\x7f\xff\xff\xff\0\0\0\x01", 16,
                    "the header announces 4611686014132420609 bytes");
    free(b);
}

static void test_idx_names_in_messages(void) {
    write_file(tmp_path("empty.idx"), "", 0);
    idx_reader_t r;
    CHECK(idx_open(&r, tmp_path("empty.idx")) == -1 && strstr(gt_errmsg(), "empty.idx: empty file"), "'%s'",
          gt_errmsg());
    idx_close(&r);
    CHECK(idx_open(&r, tmp_path("none.idx")) == -1 && strstr(gt_errmsg(), "none.idx: No such file"), "'%s'",
          gt_errmsg());
    idx_close(&r);
    /* a plain file whose header lies: refused at open, before any data is read */
    write_file(tmp_path("lie.idx"), "\0\0\x08\x01\0\0\x27\x10" "abc", 11);
    CHECK(idx_open(&r, tmp_path("lie.idx")) == -1 &&
              strstr(gt_errmsg(), "lie.idx: data is truncated: the header announces 10000 bytes (10000), the file has 3"),
          "'%s'", gt_errmsg());
    idx_close(&r);
    CHECK(strcmp(idx_type_name(0x08), "uint8") == 0 && idx_type_name(0x0A) == NULL, "type names");
}

/* ---- CIFAR-10 ----------------------------------------------------------------------------- */

static unsigned char *make_cifar(int n, size_t *len) {
    unsigned char *b = malloc((size_t)n * CIFAR_RECORD + 1);
    for (int i = 0; i < n; i++) {
        unsigned char *r = b + (size_t)i * CIFAR_RECORD;
        r[0] = (unsigned char)(i * 7 % 10);
        for (int k = 0; k < CIFAR_PIXELS; k++) r[1 + k] = (unsigned char)(i * 31 + k * 3);
    }
    *len = (size_t)n * CIFAR_RECORD;
    return b;
}

static void test_cifar(void) {
    size_t len, glen;
    unsigned char *b = make_cifar(7, &len);
    unsigned char *g = gzip_of(b, len, &glen);
    for (int gz = 0; gz < 2; gz++) {
        tensor_t im, lab;
        int rc = cifar_parse(gz ? g : b, gz ? glen : len, &im, &lab);
        CHECK(rc == 0, "gz %d: %s", gz, gt_errmsg());
        if (rc) continue;
        CHECK(im.ndim == 4 && im.shape[0] == 7 && im.shape[1] == 3 && im.shape[2] == 32 && im.shape[3] == 32, "shape");
        CHECK(lab.ndim == 1 && lab.shape[0] == 7 && lab.dtype == DT_U8, "labels shape");
        for (int i = 0; i < 7; i++) {
            CHECK(((uint8_t *)lab.data)[i] == b[(size_t)i * CIFAR_RECORD], "label %d", i);
            CHECK(memcmp((uint8_t *)im.data + (size_t)i * CIFAR_PIXELS, b + (size_t)i * CIFAR_RECORD + 1, CIFAR_PIXELS) == 0,
                  "pixels %d", i);
        }
        tensor_free(&im);
        tensor_free(&lab);
    }
    /* a file: the record count is known at open */
    write_file(tmp_path("c.bin"), b, len);
    cifar_reader_t r;
    uint8_t label, px[CIFAR_PIXELS];
    CHECK(cifar_open(&r, tmp_path("c.bin")) == 0 && r.records == 7, "records %lld", (long long)r.records);
    int k, n = 0;
    while ((k = cifar_read(&r, &label, n % 2 ? px : NULL)) == 1) n++;
    CHECK(k == 0 && n == 7, "read %d records, last %d", n, k);
    cifar_close(&r);
    /* refusals */
    tensor_t im, lab;
    CHECK(cifar_parse(b, 0, &im, &lab) == -1 && strstr(gt_errmsg(), "empty file"), "'%s'", gt_errmsg());
    CHECK(cifar_parse(b, len - 1, &im, &lab) == -1 && strstr(gt_errmsg(), "not a whole number of 3073-byte records"),
          "'%s'", gt_errmsg());
    CHECK(im.data == NULL && lab.data == NULL, "failed parse left data");
    free(g);
    g = gzip_of(b, len - 5, &glen);
    CHECK(cifar_parse(g, glen, &im, &lab) == -1 && strstr(gt_errmsg(), "truncated: 3068 bytes after record 6"), "'%s'",
          gt_errmsg());
    b[3 * CIFAR_RECORD] = 10;
    CHECK(cifar_parse(b, len, &im, &lab) == -1 && strstr(gt_errmsg(), "record 3: label 10 is not in 0..9"), "'%s'",
          gt_errmsg());
    write_file(tmp_path("c.bin"), b, len - 100);
    CHECK(cifar_open(&r, tmp_path("c.bin")) == -1 && strstr(gt_errmsg(), "c.bin: 21411 bytes is not a whole number"),
          "'%s'", gt_errmsg());
    cifar_close(&r);
    free(g);
    free(b);
}

int main(void) {
    if (scratch_open("test_idx")) return 1;
    RUN(test_bytesrc_plain_and_gzip);
    RUN(test_bytesrc_bad_gzip);
    RUN(test_idx_roundtrip);
    RUN(test_idx_partial_reads);
    RUN(test_idx_malformed);
    RUN(test_idx_names_in_messages);
    RUN(test_cifar);
    scratch_close();
    return harness_done();
}
