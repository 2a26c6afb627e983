/* test_png.c: the PNG reader and writer (formats/png.h): every byte value written and read
 * back exactly, gray and RGB, from memory, files and stdin; channel conversions (repeat, BT.601
 * luma); refusals: empty, not a PNG, truncated anywhere, a bad CRC, sides and sizes over the
 * limits (refused before memory is reserved); write errors (a full disk) reported. Fixtures of
 * every colour type and bit depth made by an independent encoder are checked in
 * tests/png2tensor.bats and tests/ref/test_data_numpy.py. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>

#include "formats/png.h"
#include "lib/base/common.h"
#include "harness.h"
#include "scratch.h"


/* The PNG bytes png8_write produces, via a memory stream. */
static unsigned char *write_mem(const uint8_t *px, uint32_t w, uint32_t h, int c, int level, size_t *len) {
    char *p = NULL;
    FILE *f = open_memstream(&p, len);
    int rc = png8_write(f, px, w, h, c, level);
    fclose(f);
    if (rc) {
        free(p);
        return NULL;
    }
    return (unsigned char *)p;
}

/* A pattern image that holds every byte value in every channel. */
static uint8_t *pattern(uint32_t w, uint32_t h, int c) {
    uint8_t *p = malloc((size_t)w * h * (size_t)c);
    for (size_t i = 0; i < (size_t)w * h * (size_t)c; i++) p[i] = (uint8_t)(i * 37 + i / 256);
    return p;
}

static void expect_parse_fail(const char *what, const void *b, size_t len, const char *want) {
    png8_image_t img;
    int rc = png8_parse(b, len, &img, 0);
    CHECK(rc == -1, "%s: accepted", what);
    if (rc == 0) png8_free(&img);
    else CHECK(strstr(gt_errmsg(), want) != NULL, "%s: message '%s' lacks '%s'", what, gt_errmsg(), want);
    CHECK(img.pixels == NULL, "%s: a failed read left pixels", what);
}

static void put32(unsigned char *p, uint32_t v) {
    for (int k = 0; k < 4; k++) p[k] = (unsigned char)(v >> (24 - 8 * k));
}

/* A PNG of signature + IHDR (w x h, 8-bit, colour type ct) + one IDAT of `raw` + IEND. */
static unsigned char *tiny_png(uint32_t w, uint32_t h, int ct, const unsigned char *idat, size_t idat_len, size_t *len) {
    unsigned char *b = malloc(8 + 25 + 12 + idat_len + 12);
    memcpy(b, "\x89PNG\r\n\x1a\n", 8);
    unsigned char *c = b + 8;
    put32(c, 13);
    memcpy(c + 4, "IHDR", 4);
    put32(c + 8, w);
    put32(c + 12, h);
    c[16] = 8, c[17] = (unsigned char)ct, c[18] = c[19] = c[20] = 0;
    put32(c + 21, (uint32_t)crc32(0, c + 4, 17));
    c += 25;
    put32(c, (uint32_t)idat_len);
    memcpy(c + 4, "IDAT", 4);
    memcpy(c + 8, idat, idat_len);
    put32(c + 8 + idat_len, (uint32_t)crc32(0, c + 4, (uInt)(4 + idat_len)));
    c += 12 + idat_len;
    put32(c, 0);
    memcpy(c + 4, "IEND", 4);
    put32(c + 8, (uint32_t)crc32(0, c + 4, 4));
    *len = (size_t)(c + 12 - b);
    return b;
}

static void test_roundtrip(void) {
    const uint32_t sizes[4][2] = {{1, 1}, {16, 16}, {37, 5}, {300, 200}};
    for (int c = 1; c <= 3; c += 2)
        for (int s = 0; s < 4; s++)
            for (int level = -1; level <= 9; level += 5) {
                uint32_t w = sizes[s][0], h = sizes[s][1];
                uint8_t *px = pattern(w, h, c);
                size_t len;
                unsigned char *b = write_mem(px, w, h, c, level, &len);
                CHECK(b != NULL, "write %ux%u c%d: %s", w, h, c, gt_errmsg());
                if (!b) continue;
                png8_image_t img;
                int rc = png8_parse(b, len, &img, 0);
                CHECK(rc == 0, "read %ux%u c%d: %s", w, h, c, gt_errmsg());
                if (rc == 0) {
                    CHECK(img.width == w && img.height == h && img.channels == c, "shape %ux%u c%d", img.width,
                          img.height, img.channels);
                    CHECK(img.src_color == (c == 1 ? 0 : 2) && img.src_depth == 8, "stored as %d/%d", img.src_color,
                          img.src_depth);
                    CHECK(memcmp(img.pixels, px, (size_t)w * h * (size_t)c) == 0, "pixels %ux%u c%d level %d", w, h, c,
                          level);
                    png8_free(&img);
                }
                free(b);
                free(px);
            }
}

static void test_conversions(void) {
    uint8_t rgb[4 * 3] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 200, 77};
    size_t len;
    unsigned char *b = write_mem(rgb, 4, 1, 3, -1, &len);
    png8_image_t img;
    CHECK(png8_parse(b, len, &img, 1) == 0 && img.channels == 1, "to gray: %s", gt_errmsg());
    int want[4] = {(299 * 255 + 500) / 1000, (587 * 255 + 500) / 1000, (114 * 255 + 500) / 1000,
                   (299 * 10 + 587 * 200 + 114 * 77 + 500) / 1000};
    for (int i = 0; i < 4; i++) CHECK(img.pixels[i] == want[i], "luma %d: %d, want %d", i, img.pixels[i], want[i]);
    png8_free(&img);
    free(b);
    uint8_t gray[3] = {0, 128, 255};
    b = write_mem(gray, 3, 1, 1, -1, &len);
    CHECK(png8_parse(b, len, &img, 3) == 0 && img.channels == 3, "to RGB: %s", gt_errmsg());
    for (int i = 0; i < 9; i++) CHECK(img.pixels[i] == gray[i / 3], "repeat %d", i);
    png8_free(&img);
    CHECK(png8_parse(b, len, &img, 2) == -1, "want_channels 2 refused");
    free(b);
    CHECK(strcmp(png8_color_name(6), "RGBA") == 0 && strcmp(png8_color_name(3), "palette") == 0, "names");
}

static void test_files_and_stdin(void) {
    uint8_t *px = pattern(20, 10, 3);
    FILE *f = fopen(tmp_path("a.png"), "wb");
    CHECK(png8_write(f, px, 20, 10, 3, 6) == 0, "%s", gt_errmsg());
    fclose(f);
    png8_image_t img;
    CHECK(png8_load(tmp_path("a.png"), &img, 0) == 0 && memcmp(img.pixels, px, 600) == 0, "file: %s", gt_errmsg());
    png8_free(&img);
    int saved = dup(0);
    FILE *in = freopen(tmp_path("a.png"), "rb", stdin);
    CHECK(in && png8_load("-", &img, 0) == 0 && img.width == 20, "stdin: %s", gt_errmsg());
    png8_free(&img);
    dup2(saved, 0);
    close(saved);
    clearerr(stdin);
    CHECK(png8_load(tmp_path("missing.png"), &img, 0) == -1 && strstr(gt_errmsg(), "No such file"), "'%s'", gt_errmsg());
    free(px);
}

static void test_malformed(void) {
    uint8_t *px = pattern(40, 30, 3);
    size_t len;
    unsigned char *b = write_mem(px, 40, 30, 3, 6, &len);
    expect_parse_fail("empty", b, 0, "empty file");
    expect_parse_fail("gif", "GIF89a\0\0\0\0", 10, "not a PNG file (bad signature)");
    expect_parse_fail("half a signature", b, 5, "not a PNG file (bad signature)");
    /* cut everywhere: in IHDR, in IDAT, before IEND */
    for (size_t cut = 8; cut < len; cut += (cut < 60 ? 1 : 17)) {
        png8_image_t img;
        int rc = png8_parse(b, cut, &img, 0);
        CHECK(rc == -1 && (strstr(gt_errmsg(), "truncated PNG") || strstr(gt_errmsg(), "bad PNG")),
              "cut at %zu of %zu: rc %d '%s'", cut, len, rc, gt_errmsg());
        if (rc == 0) png8_free(&img);
    }
    expect_parse_fail("cut before IEND", b, len - 12, "truncated PNG");
    /* a flipped byte in IHDR's width: the CRC no longer holds */
    unsigned char *bad = malloc(len);
    memcpy(bad, b, len);
    bad[18] ^= 1;
    expect_parse_fail("IHDR CRC", bad, len, "bad PNG: IHDR: CRC error");
    free(bad);
    free(b);
    free(px);
    /* limits: a side over 1000000, and a decoded size over 2^30 bytes, refused from IHDR */
    unsigned char z[16];
    uLongf zl = sizeof z;
    compress(z, &zl, (const Bytef *)"\0\0", 2);
    b = tiny_png(1000001, 1, 0, z, zl, &len);
    expect_parse_fail("wide", b, len, "exceeds user limit");
    free(b);
    b = tiny_png(1000000, 1000000, 6, z, zl, &len);
    expect_parse_fail("huge", b, len, "image of 1000000x1000000 pixels is too large");
    free(b);
    /* an ancillary chunk claiming 1.6 GB, with nothing after it: refused as truncated without
     * reserving (or clearing) that much memory (found by fuzz_png) */
    unsigned char claim[33 + 8];
    b = tiny_png(6, 4, 0, z, zl, &len);
    memcpy(claim, b, 33);
    memcpy(claim + 33, "\x61\x00\x00\x03tEXt", 8);
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    expect_parse_fail("huge tEXt", claim, sizeof claim, "truncated PNG");
    getrusage(RUSAGE_SELF, &after);
    CHECK(after.ru_maxrss - before.ru_maxrss < 64 * 1024, "peak memory grew by %ld KB", after.ru_maxrss - before.ru_maxrss);
    free(b);
    /* a 2x2 gray image whose rows are missing from IDAT */
    b = tiny_png(2, 2, 0, z, zl, &len);
    expect_parse_fail("short IDAT", b, len, "bad PNG");
    free(b);
}

static void test_write_errors(void) {
    uint8_t px[12] = {0};
    FILE *f = fopen("/dev/full", "wb");
    if (!f) {
        printf("# /dev/full missing; skipped\n");
        return;
    }
    /* a big image, so that the stdio buffer spills inside png8_write */
    uint8_t *big = pattern(1000, 1000, 3);
    int rc = png8_write(f, big, 1000, 1000, 3, 0);
    CHECK(rc == -1 && strstr(gt_errmsg(), "write failed: No space left on device"), "rc %d '%s'", rc, gt_errmsg());
    fclose(f);
    free(big);
    CHECK(png8_write(stdout, px, 2, 2, 2, -1) == -1 && strstr(gt_errmsg(), "2 channels"), "'%s'", gt_errmsg());
    CHECK(png8_write(stdout, px, 0, 2, 1, -1) == -1 && strstr(gt_errmsg(), "0x2"), "'%s'", gt_errmsg());
}

int main(void) {
    if (scratch_open("test_png")) return 1;
    RUN(test_roundtrip);
    RUN(test_conversions);
    RUN(test_files_and_stdin);
    RUN(test_malformed);
    RUN(test_write_errors);
    scratch_close();
    return harness_done();
}
