/* test_common.c: error messages, checked size arithmetic, exact number text, tensor shapes, label
 * tensors, Philox. */
#include "lib/base/common.h"
#include "lib/base/philox.h"
#include "lib/base/tensor.h"
#include "harness.h"

#include <stdlib.h>
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

/* The shortest text that reads back: as Python prints (min_prec 1), plain integers (15). */
static void test_format_exact(void) {
    static const struct {
        double v;
        int min_prec, as_float;
        const char *want;
    } c[] = {
        {0.1, 1, 0, "0.1"},       {2e-4, 1, 0, "0.0002"}, {1e-8, 1, 0, "1e-08"},
        {10, 1, 0, "1e+01"},      {10, 15, 0, "10"},      {0.1, 15, 0, "0.1"},
        {1.0 / 3, 1, 0, "0.3333333333333333"},            {(float)0.2, 1, 1, "0.2"},
        {(float)0.2, 1, 0, "0.20000000298023224"},        {0.999999, 15, 0, "0.999999"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char b[40];
        gt_format_exact(b, sizeof b, c[i].v, c[i].min_prec, c[i].as_float);
        CHECK(strcmp(b, c[i].want) == 0, "%.17g (min %d, float %d): '%s', expected '%s'", c[i].v, c[i].min_prec,
              c[i].as_float, b, c[i].want);
    }
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
/* A labels tensor of the given dtype and shape holding vals (numel of them). */
static void labels_tensor(tensor_t *t, dtype_t dt, int ndim, int64_t n, const int64_t *vals) {
    int64_t s[2] = {n, 1};
    CHECK(tensor_alloc(t, dt, ndim, s) == 0, "alloc: %s", gt_errmsg());
    for (int64_t i = 0; i < tensor_numel(t); i++) {
        if (dt == DT_I64) ((int64_t *)t->data)[i] = vals[i];
        else if (dt == DT_U8) ((uint8_t *)t->data)[i] = (uint8_t)vals[i];
        else ((float *)t->data)[i] = (float)vals[i];
    }
}

/* tensor_labels on a tensor of dt, ndim (1: N, 2: N x 1) and values: its status, *out, the message. */
static int labels_of(dtype_t dt, int ndim, int64_t n, const int64_t *vals, int64_t classes, int64_t n_images,
                     const char *why, int64_t **out) {
    tensor_t t;
    labels_tensor(&t, dt, ndim, n, vals);
    int rc = tensor_labels(&t, classes, n_images, why, out);
    tensor_free(&t);
    return rc;
}

/* out: where the call was to put its array (read after the call: the failure must leave it NULL) */
static void expect_labels_fail(const char *name, int rc, int64_t *const *out, const char *want) {
    CHECK(rc == -1, "%s: accepted", name);
    CHECK(*out == NULL, "%s: *out was set", name);
    CHECK(strcmp(gt_errmsg(), want) == 0, "%s: message '%s', want '%s'", name, gt_errmsg(), want);
}

static void test_tensor_labels(void) {
    int64_t v[5] = {2, 0, 1, 2, 1}, *out = NULL;
    /* N int64, N x 1 int64, N uint8: the same labels */
    int ndims[3] = {1, 2, 1};
    dtype_t dts[3] = {DT_I64, DT_I64, DT_U8};
    for (int c = 0; c < 3; c++) {
        out = NULL;
        CHECK(labels_of(dts[c], ndims[c], 5, v, 3, 5, NULL, &out) == 0, "case %d: %s", c, gt_errmsg());
        CHECK(out && memcmp(out, v, sizeof v) == 0, "case %d: labels differ", c);
        free(out);
    }
    /* any count when n_images < 0; uint8 labels up to 255 */
    int64_t big[2] = {255, 0};
    out = NULL;
    CHECK(labels_of(DT_U8, 1, 2, big, 256, -1, NULL, &out) == 0 && out && out[0] == 255, "uint8 255: %s",
          gt_errmsg());
    free(out);
    out = NULL;
    CHECK(labels_of(DT_I64, 1, 0, v, 3, -1, NULL, &out) == 0 && out, "no labels: %s", gt_errmsg());
    free(out);
    tensor_t none = {.dtype = DT_I64, .ndim = 1, .shape = {0}, .data = NULL}; /* as a reader may leave 0 labels */
    out = NULL;
    CHECK(tensor_labels(&none, 3, 0, NULL, &out) == 0 && out, "no labels, no data: %s", gt_errmsg());
    free(out);

    out = NULL;
    expect_labels_fail("float32", labels_of(DT_F32, 1, 5, v, 3, 5, NULL, &out), &out,
                       "labels must be int64 or uint8 (as idx2tensor and gan-sample --labels-out write them), "
                       "not float32");
    expect_labels_fail("float64", labels_of(DT_F64, 1, 5, v, 3, -1, NULL, &out), &out,
                       "labels must be int64 or uint8 (as idx2tensor and gan-sample --labels-out write them), "
                       "not float64");
    expect_labels_fail("count", labels_of(DT_I64, 1, 4, v, 3, 5, NULL, &out), &out,
                       "labels are 4 but the data has 5 images: want one label per image");
    int64_t s2[2] = {5, 2};
    tensor_t t;
    CHECK(tensor_alloc(&t, DT_I64, 2, s2) == 0, "alloc");
    expect_labels_fail("N x 2", tensor_labels(&t, 3, 5, NULL, &out), &out,
                       "labels are 5x2 but the data has 5 images: want one label per image");
    expect_labels_fail("N x 2, any count", tensor_labels(&t, 3, -1, NULL, &out), &out,
                       "labels are 5x2: want one label per image (N or N x 1)");
    tensor_free(&t);
    CHECK(tensor_alloc(&t, DT_I64, 0, s2) == 0, "alloc scalar");
    expect_labels_fail("scalar", tensor_labels(&t, 3, -1, NULL, &out), &out,
                       "labels are scalar: want one label per image (N or N x 1)");
    tensor_free(&t);
    int64_t neg[5] = {0, 1, 2, -1, -7};
    expect_labels_fail("negative", labels_of(DT_I64, 1, 5, neg, 3, 5, NULL, &out), &out,
                       "label -1 of image 3 is negative");
    int64_t high[5] = {0, 1, 2, 1, 3};
    expect_labels_fail("too large", labels_of(DT_I64, 2, 5, high, 3, 5, "the model has 3 classes", &out), &out,
                       "label 3 of image 4 is outside 0..2 (the model has 3 classes)");
    expect_labels_fail("too large uint8", labels_of(DT_U8, 1, 5, high, 3, -1, NULL, &out), &out,
                       "label 3 of image 4 is outside 0..2");
    CHECK(labels_of(DT_U8, 1, 5, high, 4, -1, NULL, &out) == 0, "the bound is classes - 1: %s", gt_errmsg());
    free(out);
}

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

/* philox_blocks (8 counters side by side; AVX2 where the CPU has it) and its portable loop give
 * philox_block's words, including across a carry into the counter's high word and the stream
 * and seed words' top bits. */
static void test_philox_lanes(void) {
    const uint64_t starts[] = {0, 5, 0xfffffffcull, 0x123456789abull};
    const uint64_t seeds[] = {0, 0xfedcba9876543210ull};
    for (size_t s = 0; s < sizeof starts / sizeof *starts; s++)
        for (size_t k = 0; k < 2; k++) {
            uint32_t w[4][PHILOX_LANES], v[4][PHILOX_LANES];
            philox_blocks(seeds[k], 0x80000004u, 0xdeadbeefu, starts[s], w);
            philox_blocks_lanes(seeds[k], 0x80000004u, 0xdeadbeefu, starts[s], v);
            for (int i = 0; i < PHILOX_LANES; i++) {
                philox_u4 r = philox_block(seeds[k], 0x80000004u, 0xdeadbeefu, starts[s] + (uint64_t)i);
                for (int j = 0; j < 4; j++)
                    CHECK(w[j][i] == r.v[j] && v[j][i] == r.v[j], "block %llu word %d: %08x %08x, want %08x",
                          (unsigned long long)(starts[s] + (uint64_t)i), j, w[j][i], v[j][i], r.v[j]);
            }
        }
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
    RUN(test_format_exact);
    RUN(test_tensor_shapes);
    RUN(test_tensor_labels);
    RUN(test_philox_kat);
    RUN(test_philox_lanes);
    RUN(test_philox_normal_moments);
    return harness_done();
}
