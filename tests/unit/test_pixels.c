/* test_pixels.c: the byte <-> float pixel mapping (lib/base/pixels.h): the [-1, 1] table is bit for
 * bit lib/gan/trainer.c's (v - 127.5f) / 127.5f and [0, 1] is v / 255.0f; every byte survives
 * byte -> float -> byte in any range; rounding (halves up), clamping and NaN on the way back;
 * --range parsing. */
#include <math.h>
#include <string.h>

#include "lib/base/common.h"
#include "lib/base/pixels.h"
#include "harness.h"

static void test_tables(void) {
    float lut[256];
    pixel_lut(lut, PIXEL_RANGE_DEFAULT);
    for (int v = 0; v < 256; v++) {
        float want = ((float)v - 127.5f) / 127.5f; /* lib/gan/trainer.c's u8 table */
        CHECK(memcmp(&lut[v], &want, sizeof want) == 0, "[-1,1] v=%d: %.9g != %.9g", v, lut[v], want);
    }
    CHECK(lut[0] == -1.0f && lut[255] == 1.0f, "ends");
    pixel_lut(lut, (pixel_range_t){0, 1});
    for (int v = 0; v < 256; v++) {
        float want = (float)v / 255.0f;
        CHECK(memcmp(&lut[v], &want, sizeof want) == 0, "[0,1] v=%d", v);
    }
}

static void test_back_to_bytes(void) {
    const pixel_range_t ranges[4] = {{-1, 1}, {0, 1}, {0, 255}, {-3.5, 1e4}};
    for (int r = 0; r < 4; r++) {
        float lut[256];
        pixel_lut(lut, ranges[r]);
        uint8_t back[256];
        pixel_floats_to_u8(back, lut, 256, ranges[r]);
        for (int v = 0; v < 256; v++) CHECK(back[v] == v, "range %d: %d -> %.9g -> %d", r, v, lut[v], back[v]);
    }
    /* [0, 255]: the value is the byte, rounded half up, clamped */
    pixel_range_t id = {0, 255};
    double s = pixel_scale(id);
    const double x[] = {-1e30, -0.6, -0.5, 0.49, 0.5, 1.5, 2.5, 127.49999, 254.4, 254.5, 255, 300, INFINITY, -INFINITY, NAN};
    const int want[] = {0, 0, 0, 0, 1, 2, 3, 127, 254, 255, 255, 255, 255, 0, 0};
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
        CHECK(pixel_to_u8(x[i], id.lo, s) == want[i], "%g -> %d, want %d", x[i], pixel_to_u8(x[i], id.lo, s), want[i]);
    /* [-1, 1]: beyond the ends clamps */
    CHECK(pixel_to_u8(1.5, -1, pixel_scale(PIXEL_RANGE_DEFAULT)) == 255, "1.5");
    CHECK(pixel_to_u8(-7, -1, pixel_scale(PIXEL_RANGE_DEFAULT)) == 0, "-7");
    CHECK(pixel_to_u8(0, -1, pixel_scale(PIXEL_RANGE_DEFAULT)) == 128, "0 -> 127.5 -> 128 (half up)");
}

static void test_parse(void) {
    pixel_range_t r;
    CHECK(pixel_range_parse("0,1", &r) == 0 && r.lo == 0 && r.hi == 1, "0,1");
    CHECK(pixel_range_parse("-1.5,2e3", &r) == 0 && r.lo == -1.5 && r.hi == 2000, "-1.5,2e3");
    const char *bad[] = {"", "1", "1,", ",1", "1,1", "2,1", "0,1,2", "a,b", "0,inf", "nan,1", "0 1", "0,1x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(pixel_range_parse(bad[i], &r) == -1 && gt_errmsg()[0], "'%s' accepted", bad[i]);
}

int main(void) {
    RUN(test_tables);
    RUN(test_back_to_bytes);
    RUN(test_parse);
    return harness_done();
}
