/* test_npy.c: the .npy reader and writer (formats/npy.h): round trips of every dtype and
 * shape kind through memory, a mapped file, a pipe and the streaming reader; the header
 * layout NumPy uses; every malformed input we know of is refused with a message. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "formats/npy.h"
#include "lib/base/common.h"
#include "harness.h"
#include "scratch.h"

/* ---- helpers ---------------------------------------------------------------------------- */

/* The bytes npy_write produces, via a memory stream. */
static char *write_mem(const tensor_t *t, size_t *len) {
    char *p = NULL;
    FILE *f = open_memstream(&p, len);
    int rc = npy_write(f, t);
    fclose(f);
    if (rc) {
        free(p);
        return NULL;
    }
    return p;
}



/* A hand-made .npy: version, header text (padded to `pad_to` total bytes unless 0), data. */
static char *make_npy(int major, const char *dict, size_t pad_to, const void *data, size_t dlen, size_t *len) {
    size_t pre = major == 1 ? 10 : 12, hl = strlen(dict);
    size_t total_h = pad_to ? pad_to - pre : hl;
    char *b = calloc(1, pre + total_h + dlen + 1);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (char)major;
    b[7] = 0;
    for (size_t i = 0; i < pre - 8; i++) b[8 + i] = (char)(total_h >> (8 * i) & 0xff);
    memcpy(b + pre, dict, hl);
    for (size_t i = hl; i < total_h; i++) b[pre + i] = i + 1 == total_h ? '\n' : ' ';
    if (dlen) memcpy(b + pre + total_h, data, dlen);
    *len = pre + total_h + dlen;
    return b;
}

/* Parse, expecting failure with a message containing `want`. */
static void expect_fail(const char *what, const void *buf, size_t len, const char *want) {
    tensor_t t;
    int rc = npy_parse(buf, len, &t);
    CHECK(rc == -1, "%s: accepted", what);
    if (rc == 0) tensor_free(&t);
    else CHECK(strstr(gt_errmsg(), want) != NULL, "%s: message '%s' lacks '%s'", what, gt_errmsg(), want);
}

static void expect_dict_fail(const char *dict, const void *data, size_t dlen, const char *want) {
    size_t len;
    char *b = make_npy(1, dict, 0, data, dlen, &len);
    expect_fail(dict, b, len, want);
    free(b);
}

static tensor_t sample(dtype_t dt, int ndim, const int64_t *shape) {
    tensor_t t;
    tensor_alloc(&t, dt, ndim, shape);
    int64_t n = tensor_numel(&t);
    for (int64_t i = 0; i < n; i++) {
        switch (dt) {
        case DT_F32: ((float *)t.data)[i] = (float)(i * 0.37 - 3.25); break;
        case DT_F64: ((double *)t.data)[i] = i * 1e-3 - 0.125 + 1e-17 * i; break;
        case DT_U8: ((uint8_t *)t.data)[i] = (uint8_t)(i * 7 + 3); break;
        case DT_I64: ((int64_t *)t.data)[i] = (int64_t)i * 1000000007LL - (1LL << 40); break;
        default: break;
        }
    }
    return t;
}

static int same(const tensor_t *a, const tensor_t *b) {
    if (a->dtype != b->dtype || a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return memcmp(a->data, b->data, tensor_nbytes(a)) == 0;
}

static const int64_t shapes[][4] = {{0}, {5}, {2, 3}, {0, 3}, {3, 1, 4, 5}};
static const int ndims[] = {0, 1, 2, 2, 4};

/* ---- round trips ------------------------------------------------------------------------ */

static void test_roundtrip_memory(void) {
    for (int dt = 0; dt < DT_COUNT; dt++)
        for (int s = 0; s < 5; s++) {
            tensor_t a = sample((dtype_t)dt, ndims[s], shapes[s]), b;
            size_t len;
            char *buf = write_mem(&a, &len);
            CHECK(buf != NULL, "write failed: %s", gt_errmsg());
            if (!buf) continue;
            CHECK(len > tensor_nbytes(&a) && (len - tensor_nbytes(&a)) % 64 == 0,
                  "header of %zu bytes is not a multiple of 64", len - tensor_nbytes(&a));
            int rc = npy_parse(buf, len, &b);
            CHECK(rc == 0, "dtype %d shape %d: %s", dt, s, gt_errmsg());
            if (rc == 0) {
                CHECK(same(&a, &b), "dtype %d shape %d differs", dt, s);
                tensor_free(&b);
            }
            free(buf);
            tensor_free(&a);
        }
}

static void test_roundtrip_file_mmap(void) {
    for (int dt = 0; dt < DT_COUNT; dt++)
        for (int s = 0; s < 5; s++) {
            tensor_t a = sample((dtype_t)dt, ndims[s], shapes[s]), b;
            FILE *f = fopen(tmp_path("r.npy"), "wb");
            CHECK(npy_write(f, &a) == 0, "%s", gt_errmsg());
            fclose(f);
            int rc = npy_load(tmp_path("r.npy"), &b, 0);
            CHECK(rc == 0, "%s", gt_errmsg());
            if (rc == 0) {
                CHECK(same(&a, &b), "dtype %d shape %d differs", dt, s);
                CHECK(b.map_base != NULL, "a regular file was not mapped");
                CHECK((uintptr_t)b.data % 64 == 0, "mapped data not 64-aligned");
                /* copy-on-write: the tensor is writable, the file unchanged */
                if (tensor_nbytes(&b)) ((unsigned char *)b.data)[0] ^= 0xff;
                tensor_free(&b);
                CHECK(npy_load(tmp_path("r.npy"), &b, 0) == 0 && same(&a, &b), "file changed by a write to the map");
                tensor_free(&b);
            }
            tensor_free(&a);
        }
}

/* npy_load(NULL) with stdin a pipe fed by a child process. */
static int load_from_pipe(const void *buf, size_t len, tensor_t *t, int to_f32) {
    int fd[2];
    if (pipe(fd)) return -2;
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        const char *p = buf;
        while (len) {
            ssize_t n = write(fd[1], p, len > 1000 ? 1000 : len); /* small writes: many reads */
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
    int rc = npy_load(NULL, t, to_f32);
    dup2(saved, 0);
    close(saved);
    clearerr(stdin);
    waitpid(pid, NULL, 0);
    return rc;
}

static void test_roundtrip_pipe(void) {
    int64_t big[2] = {300, 1000}; /* 1.2 MB of float32: more than one buffer growth */
    for (int dt = 0; dt < DT_COUNT; dt++)
        for (int s = 0; s < 6; s++) {
            tensor_t a = s < 5 ? sample((dtype_t)dt, ndims[s], shapes[s]) : sample((dtype_t)dt, 2, big), b;
            size_t len;
            char *buf = write_mem(&a, &len);
            int rc = load_from_pipe(buf, len, &b, 0);
            CHECK(rc == 0, "dtype %d shape %d: %s", dt, s, gt_errmsg());
            if (rc == 0) {
                CHECK(same(&a, &b), "dtype %d shape %d differs", dt, s);
                CHECK(b.map_base == NULL && b.owned, "pipe data not owned");
                tensor_free(&b);
            }
            /* a truncated pipe and one with extra bytes */
            rc = load_from_pipe(buf, len - 1, &b, 0);
            CHECK(tensor_nbytes(&a) == 0 || (rc == -1 && strstr(gt_errmsg(), "stdin: ") == gt_errmsg()),
                  "truncated pipe: rc %d '%s'", rc, gt_errmsg());
            char *more = malloc(len + 3);
            memcpy(more, buf, len);
            memcpy(more + len, "xyz", 3);
            rc = load_from_pipe(more, len + 3, &b, 0);
            CHECK(rc == -1 && strstr(gt_errmsg(), "trailing"), "trailing bytes on a pipe: rc %d '%s'", rc, gt_errmsg());
            free(more);
            free(buf);
            tensor_free(&a);
        }
}

static void test_to_f32(void) {
    int64_t sh[2] = {3, 7};
    tensor_t a = sample(DT_F64, 2, sh), b, c;
    FILE *f = fopen(tmp_path("d.npy"), "wb");
    npy_write(f, &a);
    fclose(f);
    CHECK(npy_load(tmp_path("d.npy"), &b, 1) == 0, "%s", gt_errmsg());
    CHECK(b.dtype == DT_F32 && b.ndim == 2 && b.shape[1] == 7, "not converted");
    for (int i = 0; i < 21; i++) CHECK(((float *)b.data)[i] == (float)((double *)a.data)[i], "element %d", i);
    tensor_free(&b);
    size_t len;
    char *buf = write_mem(&a, &len);
    CHECK(load_from_pipe(buf, len, &c, 1) == 0 && c.dtype == DT_F32, "pipe conversion");
    if (c.data) CHECK(((float *)c.data)[20] == (float)((double *)a.data)[20], "pipe element");
    tensor_free(&c);
    int64_t us[1] = {4};
    tensor_t u = sample(DT_U8, 1, us);
    f = fopen(tmp_path("u.npy"), "wb");
    npy_write(f, &u);
    fclose(f);
    CHECK(npy_load(tmp_path("u.npy"), &b, 1) == 0 && b.dtype == DT_U8, "to_f32 changed uint8");
    tensor_free(&b);
    tensor_free(&u);
    free(buf);
    tensor_free(&a);
}

static void test_streaming_reader(void) {
    int64_t sh[2] = {10, 13};
    tensor_t a = sample(DT_F32, 2, sh);
    FILE *f = fopen(tmp_path("s.npy"), "wb");
    npy_write(f, &a);
    fclose(f);
    npy_reader_t r;
    CHECK(npy_reader_open(&r, tmp_path("s.npy")) == 0, "%s", gt_errmsg());
    CHECK(r.dtype == DT_F32 && r.ndim == 2 && r.shape[0] == 10 && r.items_left == 130, "header");
    float buf[130];
    int at = 0, ok = 1;
    while (r.items_left > 0) {
        int64_t n = r.items_left < 17 ? r.items_left : 17;
        ok &= npy_reader_read(&r, buf + at, n) == 0;
        at += (int)n;
    }
    CHECK(ok && memcmp(buf, a.data, sizeof buf) == 0, "chunked read differs");
    CHECK(npy_reader_read(&r, buf, 1) == -1, "read past the end accepted");
    npy_reader_close(&r);
    /* truncated file: the last chunk fails */
    size_t len;
    char *b = write_mem(&a, &len);
    write_file(tmp_path("t.npy"), b, len - 5);
    CHECK(npy_reader_open(&r, tmp_path("t.npy")) == 0, "%s", gt_errmsg());
    CHECK(npy_reader_read(&r, buf, 120) == 0, "first chunk");
    CHECK(npy_reader_read(&r, buf, 10) == -1 && strstr(gt_errmsg(), "truncated"), "truncated: '%s'", gt_errmsg());
    npy_reader_close(&r);
    /* trailing garbage is noticed at the last element */
    char *more = malloc(len + 1);
    memcpy(more, b, len);
    more[len] = 'x';
    write_file(tmp_path("g.npy"), more, len + 1);
    CHECK(npy_reader_open(&r, tmp_path("g.npy")) == 0, "%s", gt_errmsg());
    CHECK(npy_reader_read(&r, buf, 130) == -1 && strstr(gt_errmsg(), "trailing"), "trailing: '%s'", gt_errmsg());
    npy_reader_close(&r);
    write_file(tmp_path("bad.npy"), "\x93NUMPY\x01\x00\x05\x00{'a'}", 16);
    CHECK(npy_reader_open(&r, tmp_path("bad.npy")) == -1 && strstr(gt_errmsg(), "bad.npy: "), "'%s'", gt_errmsg());
    free(more);
    free(b);
    tensor_free(&a);
}

/* ---- the header as NumPy writes it ------------------------------------------------------ */

static void test_header_layout(void) {
    char buf[256];
    int64_t sh[2] = {2, 3};
    long n = npy_format_header(buf, sizeof buf, DT_F32, 2, sh);
    CHECK(n == 128, "header length %ld, NumPy writes 128 for this dict plus growth space", n);
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    CHECK(memcmp(buf, "\x93NUMPY\x01\x00", 8) == 0, "magic/version");
    CHECK((unsigned char)buf[8] + 256 * (unsigned char)buf[9] == n - 10, "length field");
    CHECK(memcmp(buf + 10, dict, strlen(dict)) == 0, "dict text: %.60s", buf + 10);
    int spaces = 1;
    for (long i = 10 + (long)strlen(dict); i < n - 1; i++) spaces &= buf[i] == ' ';
    CHECK(spaces && buf[n - 1] == '\n', "padding");
    int64_t one = 7;
    n = npy_format_header(buf, sizeof buf, DT_U8, 1, &one);
    CHECK(n > 0 && strstr(buf + 10, "'shape': (7,), }") != NULL && strstr(buf + 10, "'|u1'"), "1-d: %.70s", buf + 10);
    n = npy_format_header(buf, sizeof buf, DT_I64, 0, NULL);
    CHECK(n == 128 && strstr(buf + 10, "'shape': (), }") != NULL && strstr(buf + 10, "'<i8'"), "scalar: %.70s", buf + 10);
    CHECK(npy_format_header(buf, 10, DT_F32, 2, sh) == -1, "small buffer accepted");
    int64_t neg[1] = {-1};
    CHECK(npy_format_header(buf, sizeof buf, DT_F32, 1, neg) == -1, "negative dim written");
}

/* ---- what the reader accepts ------------------------------------------------------------ */

static void test_header_variants(void) {
    float d[6] = {1, 2, 3, 4, 5, 6};
    static const char *ok[] = {
        "{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}",     /* any order, no comma */
        "{\"descr\":\"<f4\",\"fortran_order\":False,\"shape\":(2,3,),}", /* double quotes, commas */
        "{ 'descr' : '<f4' , 'fortran_order' : False , 'shape' : ( 2 , 3 ) , }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }", /* Python 2 */
        "{'descr': '=f4', 'fortran_order': False, 'shape': (2, 3), }\t\r\n",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t len;
        char *b = make_npy(1, ok[i], 0, d, sizeof d, &len);
        tensor_t t;
        int rc = npy_parse(b, len, &t);
        CHECK(rc == 0, "%s: %s", ok[i], gt_errmsg());
        if (rc == 0) {
            CHECK(t.dtype == DT_F32 && t.ndim == 2 && t.shape[0] == 2 && t.shape[1] == 3 &&
                      memcmp(t.data, d, sizeof d) == 0,
                  "%s: wrong tensor", ok[i]);
            tensor_free(&t);
        }
        free(b);
    }
    static const struct {
        const char *descr;
        dtype_t dt;
    } dts[] = {{"|u1", DT_U8}, {"<u1", DT_U8}, {"u1", DT_U8}, {">u1", DT_U8}, {"<i8", DT_I64}, {"|i8", DT_I64}, {"<f8", DT_F64}};
    for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++) {
        char dict[128];
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (), }", dts[i].descr);
        size_t len;
        char *b = make_npy(1, dict, 0, d, dtype_size(dts[i].dt), &len);
        tensor_t t;
        int rc = npy_parse(b, len, &t);
        CHECK(rc == 0 && t.dtype == dts[i].dt && t.ndim == 0, "%s: %s", dts[i].descr, gt_errmsg());
        if (rc == 0) tensor_free(&t);
        free(b);
    }
    /* versions 2.0 and 3.0 */
    for (int v = 2; v <= 3; v++) {
        size_t len;
        char *b = make_npy(v, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", 128, d, sizeof d, &len);
        tensor_t t;
        int rc = npy_parse(b, len, &t);
        CHECK(rc == 0 && t.ndim == 1 && t.shape[0] == 6 && memcmp(t.data, d, sizeof d) == 0, "v%d: %s", v, gt_errmsg());
        if (rc == 0) tensor_free(&t);
        free(b);
    }
}

/* Data that starts at an odd offset in a mapped file is copied to aligned memory. */
static void test_misaligned_file(void) {
    double d[3] = {1.5, -2.25, 1e300};
    size_t len;
    char *b = make_npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,)}", 0, d, sizeof d, &len);
    CHECK((len - sizeof d) % 8 != 0, "test header is aligned after all");
    write_file(tmp_path("m.npy"), b, len);
    tensor_t t;
    int rc = npy_load(tmp_path("m.npy"), &t, 0);
    CHECK(rc == 0, "%s", gt_errmsg());
    if (rc == 0) {
        CHECK((uintptr_t)t.data % 8 == 0, "data misaligned");
        CHECK(memcmp(t.data, d, sizeof d) == 0, "values");
        tensor_free(&t);
    }
    free(b);
}

/* ---- what the reader refuses ------------------------------------------------------------ */

static void test_malformed(void) {
    float d[6] = {0};
    size_t len;
    expect_fail("empty", "", 0, "empty");
    expect_fail("magic only", "\x93NUM", 4, "truncated");
    expect_fail("wrong magic", "PK\x03\x04 this is a zip", 20, "not a .npy");
    expect_fail("no header length", "\x93NUMPY\x01\x00\x10", 9, "truncated");
    expect_fail("version 4", "\x93NUMPY\x04\x00\x02\x00{}", 12, "version");
    expect_fail("version 1.1", "\x93NUMPY\x01\x01\x02\x00{}", 12, "version");
    char *b = make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", 0, d, sizeof d, &len);
    b[8] = (char)0xff; /* header length 0x..ff: past the end */
    b[9] = 0x7f;
    expect_fail("header length beyond the file", b, len, "runs past the end");
    free(b);
    b = make_npy(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", 0, d, sizeof d, &len);
    b[11] = 0x40; /* v2 length over 1 GB */
    expect_fail("v2 huge header", b, len, "implausibly large");
    free(b);
    b = make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", 0, d, sizeof d, &len);
    expect_fail("data short by one byte", b, len - 1, "truncated");
    expect_fail("header only", b, len - sizeof d, "truncated");
    free(b);
    b = make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", 0, d, sizeof d, &len);
    expect_fail("trailing garbage", b, len, "trailing");
    free(b);
    expect_dict_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", NULL, 0, "overflow");
    expect_dict_fail("{'descr': '|u1', 'fortran_order': False, 'shape': (99999999999999999999,), }", NULL, 0, "overflow");
    expect_dict_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", NULL, 0, "negative");
    expect_dict_fail("{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }", d, 6, "unsupported dtype '<f2'");
    expect_dict_fail("{'descr': '|i1', 'fortran_order': False, 'shape': (3,), }", d, 3, "unsupported dtype");
    expect_dict_fail("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", d, 24, "Fortran order");
    expect_dict_fail("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", d, 24, "big-endian");
    expect_dict_fail("{'descr': '>i8', 'fortran_order': False, 'shape': (), }", d, 8, "big-endian");
    expect_dict_fail("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", d, 4, "structured");
    expect_dict_fail("{'descr': '<f4', 'shape': (6,), }", d, 24, "missing key 'fortran_order'");
    expect_dict_fail("{'fortran_order': False, 'shape': (6,), }", d, 24, "missing key 'descr'");
    expect_dict_fail("{'descr': '<f4', 'fortran_order': False, }", d, 24, "missing key 'shape'");
    expect_dict_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'x': 1}", d, 24, "unexpected key");
    expect_dict_fail("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", d, 24, "twice");
    expect_dict_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (6)}", d, 24, "not a tuple");
    expect_dict_fail("{'descr': '<f4', 'fortran_order': False, 'shape': [6]}", d, 24, "not a tuple");
    expect_dict_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1)}", d, 4, "dimensions");
    expect_dict_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (6 7)}", d, 24, "expected ','");
    expect_dict_fail("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (6,)}", d, 24, "True or False");
    expect_dict_fail("{'descr': '<f4, 'fortran_order': False, 'shape': (6,)}", d, 24, "unsupported dtype");
    expect_dict_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (6,)} x", d, 24, "after the dictionary");
    expect_dict_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (6,)", d, 24, "bad header");
    expect_dict_fail("['descr', '<f4']", d, 24, "not a dictionary");
    expect_dict_fail("", d, 24, "not a dictionary");
    /* npy_load names the file and says what is wrong */
    write_file(tmp_path("empty.npy"), "", 0);
    tensor_t t;
    CHECK(npy_load(tmp_path("empty.npy"), &t, 0) == -1 && strstr(gt_errmsg(), "empty.npy: empty file"), "'%s'",
          gt_errmsg());
    CHECK(npy_load(tmp_path("missing.npy"), &t, 0) == -1 && strstr(gt_errmsg(), "missing.npy: "), "'%s'", gt_errmsg());
    CHECK(npy_load(tmpdir, &t, 0) == -1 && strstr(gt_errmsg(), "directory"), "'%s'", gt_errmsg());
    CHECK(t.data == NULL && t.ndim == 0, "failed load left a tensor behind");
}

int main(void) {
    if (scratch_open("test_npy")) return 1;
    RUN(test_roundtrip_memory);
    RUN(test_roundtrip_file_mmap);
    RUN(test_roundtrip_pipe);
    RUN(test_to_f32);
    RUN(test_streaming_reader);
    RUN(test_header_layout);
    RUN(test_header_variants);
    RUN(test_misaligned_file);
    RUN(test_malformed);
    scratch_close();
    return harness_done();
}
