/* harness.h: a few macros that make a C unit test print TAP, read by tests/run.sh.
 *
 *   static void test_something(void) { CHECK(x == 1, "x is %d", x); CHECK_CLOSE(a, b, 1e-6); }
 *   int main(void) { RUN(test_something); return harness_done(); }
 *
 * Each RUN prints one "ok N - name" or "not ok N - name" line; failed checks print their
 * file, line and message as TAP comments. harness_done prints the plan and returns the exit
 * status (1 if anything failed). */
#ifndef GT_HARNESS_H
#define GT_HARNESS_H

#include <math.h>
#include <stdio.h>

static int harness_n, harness_failed, harness_case_failed;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (!(cond)) {                                                     \
            harness_case_failed = 1;                                       \
            printf("# %s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            printf(__VA_ARGS__);                                           \
            printf("\n");                                                  \
        }                                                                  \
    } while (0)

/* |a - b| <= tol * max(1, |b|): relative for large values, absolute near zero. */
#define CHECK_CLOSE(a, b, tol)                                                     \
    do {                                                                           \
        double ha_ = (double)(a), hb_ = (double)(b);                               \
        double hs_ = fabs(hb_) > 1 ? fabs(hb_) : 1;                                \
        if (!(fabs(ha_ - hb_) <= (tol) * hs_)) {                                   \
            harness_case_failed = 1;                                               \
            printf("# %s:%d: %s = %.9g, expected %s = %.9g (tol %g)\n", __FILE__,  \
                   __LINE__, #a, ha_, #b, hb_, (double)(tol));                     \
        }                                                                          \
    } while (0)

#define RUN(fn)                                                                    \
    do {                                                                           \
        harness_case_failed = 0;                                                   \
        fn();                                                                      \
        harness_n++;                                                               \
        if (harness_case_failed) harness_failed++;                                 \
        printf("%s %d - %s\n", harness_case_failed ? "not ok" : "ok", harness_n, #fn); \
        fflush(stdout);                                                            \
    } while (0)

static inline int harness_done(void) {
    printf("1..%d\n", harness_n);
    return harness_failed ? 1 : 0;
}

#endif
