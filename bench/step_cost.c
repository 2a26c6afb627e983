/* step_cost.c: what one training step costs on a backend: kernel launches, GEMM FLOPs, the
 * bytes the operations must at least move (backend_t.counters, counted by the CUDA backend
 * and its host emulation), and, when timed, milliseconds per step and images per second.
 * Used by bench/bench_cuda.sh; built by `make` into $(OBJ)/bench/step_cost.
 *
 *   step_cost --preset NAME --shape CxHxW --batch B [--device cpu|cuda] [--warmup W]
 *             [--steps N] [--tf32]
 * prints one tab-separated line:
 *   preset batch n_critic launches_per_step gflop_per_step mbyte_per_step ms_per_step images_per_s
 * (the counters are per step after the warm-up; cpu has no counters and prints 0 for them). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/common.h"
#include "../lib/model.h"
#include "../lib/philox.h"
#include "../lib/presets.h"
#include "../lib/train.h"

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void usage(void) {
    fprintf(stderr, "usage: step_cost --preset NAME --shape CxHxW --batch B [--device cpu|cuda] [--warmup W] "
                    "[--steps N] [--tf32]\n");
    exit(2);
}

int main(int argc, char **argv) {
    gt_progname = "step_cost";
    const char *preset = NULL, *shape_s = NULL, *device = "cuda";
    int batch = 0, warmup = 2, steps = 1, tf32 = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--preset") && i + 1 < argc) preset = argv[++i];
        else if (!strcmp(argv[i], "--shape") && i + 1 < argc) shape_s = argv[++i];
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--device") && i + 1 < argc) device = argv[++i];
        else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) warmup = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tf32")) tf32 = 1;
        else usage();
    }
    shape3_t shape;
    if (!preset || !shape_s || batch <= 0 || steps <= 0 || warmup < 0 || shape3_parse(shape_s, &shape)) usage();
    backend_t *be = gan_backend(device, 0);
    if (!be) {
        fprintf(stderr, "step_cost: %s\n", gt_errmsg());
        return 1;
    }
    be->tf32 = tf32;
    preset_t p;
    if (preset_get(preset, shape, 100, &p)) {
        fprintf(stderr, "step_cost: %s\n", gt_errmsg());
        return 1;
    }
    gan_settings_t s;
    gan_settings_default(&s, strcmp(preset, "wgan-gp") == 0 ? LOSS_WGAN_GP : LOSS_NS);
    s.batch = batch;
    gan_model_t m;
    if (model_new(&m, p.g, p.d, shape, 100, &s, p.init, 1, be, batch)) {
        fprintf(stderr, "step_cost: %s: %s\n", preset, gt_errmsg());
        return 1;
    }
    /* enough random uint8 images for the steps without wrapping an epoch mid-run */
    int64_t n = (int64_t)batch * s.n_critic * (warmup + steps + 1);
    int64_t dims[4] = {n, shape.c, shape.h, shape.w};
    tensor_t data;
    if (tensor_alloc(&data, DT_U8, 4, dims)) {
        fprintf(stderr, "step_cost: %s\n", gt_errmsg());
        return 1;
    }
    for (size_t i = 0; i < tensor_nbytes(&data); i++) ((uint8_t *)data.data)[i] = (uint8_t)philox_u32(1, PHILOX_STREAM_USER, 0, i);
    trainer_t t;
    if (trainer_init(&t, &m, &data)) {
        fprintf(stderr, "step_cost: %s\n", gt_errmsg());
        return 1;
    }
    for (int i = 0; i < warmup; i++) train_step(&t);
    be_sync(be);
    backend_counters_t c0 = be->counters;
    double t0 = seconds();
    for (int i = 0; i < steps; i++) train_step(&t);
    be_sync(be);
    double dt = seconds() - t0;
    if (trainer_check(&t)) fprintf(stderr, "step_cost: note: %s\n", gt_errmsg());
    backend_counters_t c1 = be->counters;
    printf("%s\t%d\t%d\t%.1f\t%.4f\t%.3f\t%.3f\t%.1f\n", preset, batch, s.n_critic,
           (double)(c1.launches - c0.launches) / steps, (c1.flops - c0.flops) / steps / 1e9,
           (c1.bytes - c0.bytes) / steps / 1e6, dt / steps * 1e3, (double)batch * s.n_critic * steps / dt);
    trainer_free(&t);
    tensor_free(&data);
    model_free(&m);
    preset_free(&p);
    return 0;
}
