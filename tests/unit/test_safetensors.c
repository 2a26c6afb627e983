/* test_safetensors.c: the safetensors reader and writer (formats/safetensors.h): writer to
 * reader round trips with metadata, the byte layout (8-byte padding, aligned data, insertion
 * order), loading from files and pipes, and every malformed header we know of. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "formats/safetensors.h"
#include "lib/base/common.h"
#include "harness.h"
#include "scratch.h"



static char *write_mem(st_writer_t *w, size_t *len) {
    char *p = NULL;
    FILE *f = open_memstream(&p, len);
    int rc = st_writer_write(w, f);
    fclose(f);
    if (rc) {
        free(p);
        return NULL;
    }
    return p;
}

/* A file from a header text and dlen bytes of data (0, 1, 2, ...). */
static char *make_st(const char *json, size_t dlen, size_t *len) {
    size_t n = strlen(json);
    char *b = malloc(8 + n + dlen + 1);
    for (int i = 0; i < 8; i++) b[i] = (char)((uint64_t)n >> (8 * i));
    memcpy(b + 8, json, n);
    for (size_t i = 0; i < dlen; i++) b[8 + n + i] = (char)i;
    *len = 8 + n + dlen;
    return b;
}

static void expect_fail_buf(const char *what, const void *b, size_t len, const char *want) {
    st_file_t f;
    int rc = st_parse(b, len, &f);
    CHECK(rc == -1, "%s: accepted", what);
    if (rc == 0) st_free(&f);
    else CHECK(strstr(gt_errmsg(), want) != NULL, "%s: message '%s' lacks '%s'", what, gt_errmsg(), want);
    CHECK(f.n == 0 && f.entries == NULL && f.buf == NULL, "%s: failed parse left state behind", what);
}

static void expect_fail(const char *json, size_t dlen, const char *want) {
    size_t len;
    char *b = make_st(json, dlen, &len);
    expect_fail_buf(json, b, len, want);
    free(b);
}

/* ---- round trips ------------------------------------------------------------------------ */

static float w1[2][3] = {{1, 2, 3}, {4, 5, 6}};
static uint8_t u1[5] = {0, 1, 254, 255, 7};
static double d1[3] = {1e-300, -2.5, 3.0};
static int64_t i1 = -1234567890123LL;

static st_writer_t *sample_writer(void) {
    st_writer_t *w = st_writer_new();
    int64_t sw[2] = {2, 3}, su[1] = {5}, sd[1] = {3}, se[3] = {4, 0, 2};
    CHECK(st_writer_add_raw(w, "u", DT_U8, 1, su, u1) == 0, "%s", gt_errmsg());
    CHECK(st_writer_add_raw(w, "G.0.weight", DT_F32, 2, sw, w1) == 0, "%s", gt_errmsg());
    CHECK(st_writer_add_raw(w, "empty", DT_F32, 3, se, NULL) == 0, "%s", gt_errmsg());
    CHECK(st_writer_add_raw(w, "step", DT_I64, 0, NULL, &i1) == 0, "%s", gt_errmsg());
    CHECK(st_writer_add_raw(w, "d\"\\\n\xc3\xa9", DT_F64, 1, sd, d1) == 0, "%s", gt_errmsg());
    CHECK(st_writer_meta(w, "format", "first") == 0, "%s", gt_errmsg());
    CHECK(st_writer_meta(w, "spec", "line 1\nline \"2\"\t\\ \xe2\x82\xac") == 0, "%s", gt_errmsg());
    CHECK(st_writer_meta(w, "format", "gan-tools") == 0, "replace: %s", gt_errmsg());
    return w;
}

static void check_sample(const st_file_t *f) {
    CHECK(f->n == 5, "%d tensors", f->n);
    if (f->n != 5) return;
    static const char *order[5] = {"u", "G.0.weight", "empty", "step", "d\"\\\n\xc3\xa9"};
    for (int i = 0; i < 5; i++) CHECK(strcmp(f->entries[i].name, order[i]) == 0, "entry %d is '%s'", i, f->entries[i].name);
    const st_entry_t *e = st_find(f, "G.0.weight");
    CHECK(e && e->t.dtype == DT_F32 && e->t.ndim == 2 && e->t.shape[0] == 2 && e->t.shape[1] == 3 &&
              memcmp(e->t.data, w1, sizeof w1) == 0,
          "G.0.weight");
    e = st_find(f, "u");
    CHECK(e && e->t.dtype == DT_U8 && e->t.ndim == 1 && memcmp(e->t.data, u1, 5) == 0, "u");
    e = st_find(f, "step");
    CHECK(e && e->t.dtype == DT_I64 && e->t.ndim == 0 && *(int64_t *)e->t.data == i1, "step");
    e = st_find(f, "d\"\\\n\xc3\xa9");
    CHECK(e && e->t.dtype == DT_F64 && memcmp(e->t.data, d1, sizeof d1) == 0, "escaped name");
    e = st_find(f, "empty");
    CHECK(e && e->t.ndim == 3 && e->t.shape[1] == 0 && e->begin == e->end, "empty");
    CHECK(st_find(f, "nope") == NULL, "found a missing tensor");
    CHECK(f->n_meta == 2, "%d metadata pairs", f->n_meta);
    const char *v = st_meta_get(f, "format");
    CHECK(v && strcmp(v, "gan-tools") == 0, "format = %s", v ? v : "(null)");
    v = st_meta_get(f, "spec");
    CHECK(v && strcmp(v, "line 1\nline \"2\"\t\\ \xe2\x82\xac") == 0, "spec = %s", v ? v : "(null)");
    CHECK(st_meta_get(f, "nope") == NULL, "found a missing key");
    for (int i = 0; i < f->n; i++)
        CHECK((uintptr_t)f->entries[i].t.data % dtype_size(f->entries[i].t.dtype) == 0 || f->entries[i].begin == f->entries[i].end,
              "'%s' misaligned", f->entries[i].name);
}

static void test_roundtrip_memory(void) {
    st_writer_t *w = sample_writer();
    size_t len;
    char *b = write_mem(w, &len);
    CHECK(b != NULL, "%s", gt_errmsg());
    if (!b) return;
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= (uint64_t)(unsigned char)b[i] << (8 * i);
    CHECK(n % 8 == 0, "header length %llu is not a multiple of 8", (unsigned long long)n);
    CHECK(b[8] == '{' && (b[8 + n - 1] == ' ' || b[8 + n - 1] == '}'), "header ends with '%c'", b[8 + n - 1]);
    CHECK(len == 8 + n + 5 + 24 + 24 + 8, "file length %zu", len);
    /* largest elements first in the data, ties in insertion order: i64, f64, f32, (empty f32), u8 */
    CHECK(strstr(b + 8, "\"I64\",\"shape\":[],\"data_offsets\":[0,8]") != NULL, "i64 not first: %.*s", (int)n, b + 8);
    CHECK(strstr(b + 8, "\"F64\",\"shape\":[3],\"data_offsets\":[8,32]") != NULL, "f64 not second: %.*s", (int)n, b + 8);
    CHECK(strstr(b + 8, "\"U8\",\"shape\":[5],\"data_offsets\":[56,61]") != NULL, "u8 not last: %.*s", (int)n, b + 8);
    st_file_t f;
    int rc = st_parse(b, len, &f);
    CHECK(rc == 0, "%s", gt_errmsg());
    if (rc == 0) {
        check_sample(&f);
        CHECK(st_header_len(&f) == n && st_data_len(&f) == 61, "lengths %llu %llu",
              (unsigned long long)st_header_len(&f), (unsigned long long)st_data_len(&f));
        st_free(&f);
    }
    /* writing twice gives the same bytes */
    size_t len2;
    char *b2 = write_mem(w, &len2);
    CHECK(b2 && len2 == len && memcmp(b, b2, len) == 0, "second write differs");
    free(b2);
    free(b);
    st_writer_free(w);
}

static void test_roundtrip_file(void) {
    st_writer_t *w = sample_writer();
    FILE *fp = fopen(tmp_path("a.st"), "wb");
    CHECK(st_writer_write(w, fp) == 0, "%s", gt_errmsg());
    fclose(fp);
    st_file_t f;
    int rc = st_load(tmp_path("a.st"), &f);
    CHECK(rc == 0, "%s", gt_errmsg());
    if (rc == 0) {
        CHECK(f.mapped, "a regular file was not mapped");
        check_sample(&f);
        st_free(&f);
    }
    st_writer_free(w);
}

/* st_load(NULL) with stdin a pipe fed by a child. */
static int load_from_pipe(const void *buf, size_t len, st_file_t *f) {
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
    int rc = st_load(NULL, f);
    dup2(saved, 0);
    close(saved);
    clearerr(stdin);
    waitpid(pid, NULL, 0);
    return rc;
}

static void test_roundtrip_pipe(void) {
    st_writer_t *w = sample_writer();
    /* plus a tensor big enough for several buffer growths */
    int64_t sh[1] = {100000};
    float *big = malloc(sizeof(float) * 100000);
    for (int i = 0; i < 100000; i++) big[i] = (float)i;
    st_writer_add_raw(w, "big", DT_F32, 1, sh, big);
    size_t len;
    char *b = write_mem(w, &len);
    st_file_t f;
    int rc = load_from_pipe(b, len, &f);
    CHECK(rc == 0, "%s", gt_errmsg());
    if (rc == 0) {
        CHECK(!f.mapped, "pipe mapped");
        const st_entry_t *e = st_find(&f, "big");
        CHECK(e && memcmp(e->t.data, big, sizeof(float) * 100000) == 0, "big differs");
        f.n = 5; /* the sample's checks see the first five */
        check_sample(&f);
        f.n = 6;
        st_free(&f);
    }
    rc = load_from_pipe(b, len - 1, &f);
    CHECK(rc == -1 && strstr(gt_errmsg(), "stdin: "), "truncated pipe: '%s'", gt_errmsg());
    free(b);
    free(big);
    st_writer_free(w);
}

/* A file whose tensors start at odd offsets: the reader hands out aligned copies. */
static void test_misaligned(void) {
    const char *json = "{\"a\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]},"
                       "\"b\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[3,19]}}";
    size_t len;
    char *buf = make_st(json, 19, &len);
    double d[2] = {3.25, -1e10};
    memcpy(buf + len - 16, d, 16);
    write_file(tmp_path("m.st"), buf, len);
    st_file_t f;
    int rc = st_load(tmp_path("m.st"), &f);
    CHECK(rc == 0, "%s", gt_errmsg());
    if (rc == 0) {
        const st_entry_t *e = st_find(&f, "b");
        CHECK(e && (uintptr_t)e->t.data % 8 == 0 && memcmp(e->t.data, d, 16) == 0, "b");
        st_free(&f);
    }
    free(buf);
}

static void test_writer_refuses(void) {
    st_writer_t *w = st_writer_new();
    int64_t s[1] = {1}, neg[1] = {-1};
    float x = 1;
    CHECK(st_writer_add_raw(w, "x", DT_F32, 1, s, &x) == 0, "%s", gt_errmsg());
    CHECK(st_writer_add_raw(w, "x", DT_F32, 1, s, &x) == -1 && strstr(gt_errmsg(), "twice"), "duplicate name");
    CHECK(st_writer_add_raw(w, "__metadata__", DT_F32, 1, s, &x) == -1, "__metadata__ as a name");
    CHECK(st_writer_add_raw(w, "bad\xff", DT_F32, 1, s, &x) == -1 && strstr(gt_errmsg(), "UTF-8"), "invalid UTF-8 name");
    CHECK(st_writer_add_raw(w, "y", DT_F32, 1, neg, &x) == -1 && strstr(gt_errmsg(), "negative"), "negative dim");
    CHECK(st_writer_meta(w, "k", "\xc0\x80") == -1, "overlong UTF-8 value");
    CHECK(st_writer_meta(w, "\xed\xa0\x80", "v") == -1, "surrogate in a key");
    /* a full disk: writing to /dev/full fails with a message */
    FILE *full = fopen("/dev/full", "wb");
    if (full) {
        int64_t big[1] = {1 << 16};
        float *z = calloc(1 << 16, sizeof *z);
        st_writer_add_raw(w, "z", DT_F32, 1, big, z);
        int rc = st_writer_write(w, full);
        if (rc == 0) rc = fflush(full) ? -1 : 0;
        CHECK(rc == -1, "writing to /dev/full succeeded");
        fclose(full);
        free(z);
    }
    st_writer_free(w);
}

/* ---- what the reader refuses ------------------------------------------------------------ */

#define T1(dt, shape, off) "{\"t\":{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":" off "}}"

static void test_malformed(void) {
    size_t len;
    char *b;
    expect_fail_buf("empty", "", 0, "empty");
    expect_fail_buf("7 bytes", "\x02\0\0\0\0\0\0", 7, "truncated");
    b = make_st("{}", 0, &len);
    b[7] = 0x10; /* header length 2^60: past the end */
    expect_fail_buf("header length beyond the file", b, len, "runs past the end");
    b[7] = 0;
    b[0] = 3;
    expect_fail_buf("header length one beyond", b, len, "runs past the end");
    free(b);
    expect_fail("", 0, "not a safetensors");
    expect_fail("[1, 2]", 0, "not a safetensors");
    expect_fail("{\"t\": ", 0, "not a valid JSON");
    expect_fail("{} {}", 0, "text after");
    expect_fail("{\"a\xff\": 1}", 0, "UTF-8");
    expect_fail("{\"t\": 5}", 0, "not a JSON object");
    expect_fail(T1("F16", "[2]", "[0,4]"), 4, "F16 is not supported");
    expect_fail(T1("BF16", "[2]", "[0,4]"), 4, "not supported");
    expect_fail("{\"t\":{\"dtype\":3,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "not a string");
    expect_fail(T1("F32", "[-1]", "[0,4]"), 4, "non-negative integer");
    expect_fail(T1("F32", "[1.5]", "[0,4]"), 4, "non-negative integer");
    expect_fail(T1("F32", "[\"1\"]", "[0,4]"), 4, "non-negative integer");
    expect_fail(T1("F32", "3", "[0,12]"), 12, "not an array");
    expect_fail(T1("F32", "[1,1,1,1,1,1,1,1,1]", "[0,4]"), 4, "dimensions");
    expect_fail(T1("U8", "[4294967296,4294967296,4294967296]", "[0,0]"), 0, "overflow");
    expect_fail(T1("F32", "[2]", "[0,4]"), 4, "span 4 bytes but the shape needs 8");
    expect_fail(T1("F32", "[1]", "[4,0]"), 4, "end before");
    expect_fail(T1("F32", "[1]", "[0]"), 4, "pair");
    expect_fail(T1("F32", "[1]", "[0,4,8]"), 4, "pair");
    expect_fail(T1("F32", "[1]", "[0,-4]"), 4, "pair");
    expect_fail(T1("F32", "[1]", "[0,4]"), 3, "beyond the end");
    expect_fail(T1("F32", "[1]", "[4,8]"), 4, "beyond the end");
    expect_fail(T1("F32", "[1]", "[0,4]"), 5, "after the last tensor");
    expect_fail(T1("F32", "[1]", "[4,8]"), 8, "gap of 4 bytes");
    expect_fail(T1("F32", "[1]", "[1e300,1e300]"), 4, "pair");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                8, "overlaps");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                8, "appears twice");
    expect_fail("{\"t\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "missing \"data_offsets\"");
    expect_fail("{\"t\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "missing \"dtype\"");
    expect_fail("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4, "unexpected key 'x'");
    expect_fail("{\"t\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "twice");
    expect_fail("{\"__metadata__\":{\"a\":1}}", 0, "not a string");
    expect_fail("{\"__metadata__\":[\"a\"]}", 0, "not a JSON object");
    expect_fail("{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}}", 0, "given twice");
    expect_fail("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "given twice");
    expect_fail("{}", 4, "no tensors");
    /* accepted edge cases: only metadata; trailing spaces; scalars; zero-size tensors */
    static const char *ok[] = {
        "{\"__metadata__\":{\"k\":\"v\"}}      ",
        "{}",
        "{\"s\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]}}",
        "{\"z\":{\"dtype\":\"F64\",\"shape\":[0,3],\"data_offsets\":[0,0]},"
        "\"s\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]}}",
    };
    static const size_t ok_len[] = {0, 0, 8, 8};
    for (int i = 0; i < 4; i++) {
        b = make_st(ok[i], ok_len[i], &len);
        st_file_t f;
        int rc = st_parse(b, len, &f);
        CHECK(rc == 0, "%s: %s", ok[i], gt_errmsg());
        if (rc == 0) st_free(&f);
        free(b);
    }
    st_file_t f;
    write_file(tmp_path("e.st"), "", 0);
    CHECK(st_load(tmp_path("e.st"), &f) == -1 && strstr(gt_errmsg(), "e.st: empty file"), "'%s'", gt_errmsg());
    CHECK(st_load(tmp_path("none.st"), &f) == -1 && strstr(gt_errmsg(), "none.st: "), "'%s'", gt_errmsg());
}

int main(void) {
    if (scratch_open("test_st")) return 1;
    RUN(test_roundtrip_memory);
    RUN(test_roundtrip_file);
    RUN(test_roundtrip_pipe);
    RUN(test_misaligned);
    RUN(test_writer_refuses);
    RUN(test_malformed);
    scratch_close();
    return harness_done();
}
