/* test_train_alloc.c: a training step allocates nothing after the first (lib/gan/trainer.h, net.h:
 * every buffer is made by net_alloc, net_alloc_jvp and trainer_init). malloc, calloc, realloc,
 * aligned_alloc and posix_memalign are wrapped around glibc's and counted while steps 2..5
 * run, for the mlp, dcgan and wgan-gp presets (on 1x12x12 data), with 1 and 2 threads; the
 * count must be zero, and the wrapper itself must see the allocations of a control call.
 * Under AddressSanitizer (which owns malloc) the test only says it was skipped. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "lib/base/common.h"
#include "lib/gan/model.h"
#include "lib/base/philox.h"
#include "lib/gan/presets.h"
#include "lib/gan/trainer.h"
#include "harness.h"

#if defined(__SANITIZE_ADDRESS__)
#define COUNTING 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define COUNTING 0
#endif
#endif
#ifndef COUNTING
#define COUNTING 1
#endif

static volatile int counting;
static long n_allocs;

#if COUNTING
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static void count(void) {
    if (counting) __atomic_add_fetch(&n_allocs, 1, __ATOMIC_RELAXED);
}
void *malloc(size_t n) {
    count();
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b) {
    count();
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n) {
    count();
    return __libc_realloc(p, n);
}
void *aligned_alloc(size_t a, size_t n) {
    count();
    return __libc_memalign(a, n);
}
int posix_memalign(void **p, size_t a, size_t n) {
    count();
    *p = __libc_memalign(a, n);
    return *p ? 0 : 12;
}
#endif

/* allocations made by steps 2..5 of a preset */
static long steps_allocs(const char *arch, gan_loss_t loss, int augment, int threads) {
    shape3_t shape = {1, 12, 12};
    preset_t p;
    if (preset_get(arch, shape, 8, &p)) {
        printf("# %s: %s\n", arch, gt_errmsg());
        return -1;
    }
    backend_t *be = backend_cpu(threads);
    gan_settings_t s;
    gan_settings_default(&s, loss);
    s.batch = 8;
    s.n_critic = 2;
    s.ema = 0.9;
    s.augment = augment;
    gan_model_t m;
    if (model_new(&m, p.g, p.d, shape, 8, &s, (int)p.init, 1, be, 8)) {
        printf("# %s: %s\n", arch, gt_errmsg());
        preset_free(&p);
        return -1;
    }
    tensor_t data;
    int64_t dshape[4] = {40, 1, 12, 12};
    tensor_alloc(&data, DT_U8, 4, dshape);
    for (int64_t i = 0; i < 40 * 144; i++)
        ((uint8_t *)data.data)[i] = (uint8_t)(philox_u32(3, PHILOX_STREAM_USER, 0, (uint64_t)i) >> 24);
    trainer_t t;
    long got = -1;
    if (trainer_init(&t, &m, &data) == 0) {
        int ok = train_step(&t) == 0 && trainer_check(&t) == 0;
        n_allocs = 0;
        counting = 1;
        for (int k = 0; k < 4 && ok; k++) ok = train_step(&t) == 0 && trainer_check(&t) == 0; /* an epoch ends among them */
        counting = 0;
        got = ok ? n_allocs : -1;
        trainer_free(&t);
    }
    tensor_free(&data);
    model_free(&m);
    preset_free(&p);
    backend_cpu(1);
    return got;
}

static void test_steps_allocate_nothing(void) {
    if (!COUNTING) {
        printf("# skipped under AddressSanitizer (it owns malloc)\n");
        return;
    }
    counting = 1; /* the wrapper sees allocations */
    n_allocs = 0;
    void *q = gt_aligned_alloc(100);
    free(gt_xmalloc(10));
    counting = 0;
    gt_aligned_free(q);
    CHECK(n_allocs == 2, "the wrapper counted %ld allocations of 2", n_allocs);
    static const struct {
        const char *arch;
        gan_loss_t loss;
        int augment;
    } cases[] = {{"mlp", LOSS_NS, 0}, {"dcgan", LOSS_NS, 0}, {"wgan-gp", LOSS_WGAN_GP, 0},
                 {"mlp", LOSS_NS, AUG_ALL}, {"wgan-gp", LOSS_WGAN_GP, AUG_ALL}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int threads = 1; threads <= 2; threads++) {
            long n = steps_allocs(cases[c].arch, cases[c].loss, cases[c].augment, threads);
            CHECK(n == 0, "%s%s, %d threads: %ld allocations in steps 2..5", cases[c].arch,
                  cases[c].augment ? " with DiffAugment" : "", threads, n);
        }
}

int main(void) {
    RUN(test_steps_allocate_nothing);
    return harness_done();
}
