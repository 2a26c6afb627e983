/* test_common.c: error messages, checked size arithmetic, tensor shapes, Philox. */
#include "../../lib/common.h"
#include "../../lib/philox.h"
#include "../../lib/tensor.h"
#include "harness.h"

#include <string.h>

static void test_err_message(void) {
    CHECK(gt_err("bad %d", 3) == -1, "gt_err returns -1");
    CHECK(strcmp(gt_errmsg(), "bad 3") == 0, "message is '%s'", gt_errmsg());
    gt_err_prefix("file.npy");
    CHECK(strcmp(gt_errmsg(), "file.npy: bad 3") == 0, "prefixed message is '%s'", gt_errmsg());
}

static void test_overflow(void) {
    uint64_t r;
    CHECK(gt_mul_overflow(UINT64_MAX / 2, 3, &r) == 1, "detects overflow");
    CHECK(gt_mul_overflow(1ull << 31, 1ull << 31, &r) == 0 && r == 1ull << 62, "no false overflow");
    CHECK(gt_add_overflow(UINT64_MAX, 1, &r) == 1, "add overflow");
}

static void test_tensor_shapes(void) {
    int64_t huge[3] = {1ll << 40, 1ll << 40, 4};
    CHECK(tensor_check_shape(DT_F32, 3, huge) == -1, "overflowing shape rejected");
    int64_t neg[2] = {3, -1};
    CHECK(tensor_check_shape(DT_U8, 2, neg) == -1, "negative dim rejected");
    tensor_t t;
    int64_t s[2] = {2, 3};
    CHECK(tensor_alloc(&t, DT_F64, 2, s) == 0, "alloc");
    CHECK(tensor_numel(&t) == 6 && tensor_nbytes(&t) == 48, "numel/nbytes");
    char buf[64];
    tensor_shape_str(&t, buf, sizeof buf);
    CHECK(strcmp(buf, "2x3") == 0, "shape string '%s'", buf);
    tensor_free(&t);
}

/* Known-answer vectors from the Random123 distribution (kat_vectors, philox4x32_10). */
static void test_philox_kat(void) {
    philox_u4 c = {{0, 0, 0, 0}};
    philox_u4 r = philox4x32_10(c, 0, 0);
    CHECK(r.v[0] == 0x6627e8d5u && r.v[1] == 0xe169c58du && r.v[2] == 0xbc57ac4cu && r.v[3] == 0x9b00dbd8u,
          "zero vector: %08x %08x %08x %08x", r.v[0], r.v[1], r.v[2], r.v[3]);
    philox_u4 c2 = {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}};
    r = philox4x32_10(c2, 0xffffffffu, 0xffffffffu);
    CHECK(r.v[0] == 0x408f276du && r.v[1] == 0x41c83b0eu && r.v[2] == 0xa20bc7c6u && r.v[3] == 0x6d5451fdu,
          "ones vector: %08x %08x %08x %08x", r.v[0], r.v[1], r.v[2], r.v[3]);
    philox_u4 c3 = {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}};
    r = philox4x32_10(c3, 0xa4093822u, 0x299f31d0u);
    CHECK(r.v[0] == 0xd16cfe09u && r.v[1] == 0x94fdccebu && r.v[2] == 0x5001e420u && r.v[3] == 0x24126ea1u,
          "pi vector: %08x %08x %08x %08x", r.v[0], r.v[1], r.v[2], r.v[3]);
}

static void test_philox_normal_moments(void) {
    double s = 0, s2 = 0;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        double z = philox_normal(42, PHILOX_STREAM_USER, 7, (uint64_t)i);
        s += z;
        s2 += z * z;
    }
    double mean = s / n, var = s2 / n - mean * mean;
    CHECK(fabs(mean) < 0.01, "mean %g", mean);
    CHECK(fabs(var - 1) < 0.01, "variance %g", var);
    float u = philox_uniform(1, 2, 3, 4);
    CHECK(u >= 0 && u < 1, "uniform in [0,1): %g", u);
}

int main(void) {
    RUN(test_err_message);
    RUN(test_overflow);
    RUN(test_tensor_shapes);
    RUN(test_philox_kat);
    RUN(test_philox_normal_moments);
    return harness_done();
}
