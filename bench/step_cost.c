/* step_cost.c: what one training step costs on a backend: kernel launches, GEMM FLOPs, the
 * bytes the operations must at least move (backend_t.counters, counted by the CUDA backend
 * and its host emulation), and, when timed, milliseconds per step and images per second.
 * Used by bench/bench_cuda.sh; built by `make` into $(OBJ)/bench/step_cost.
 *
 *   step_cost --preset NAME --shape CxHxW --batch B [--classes K] [--device cpu|cuda] [--warmup W]
 *             [--steps N] [--tf32] [--cuda-graph on|off]
 * prints one tab-separated line:
 *   preset batch n_critic launches_per_step gflop_per_step mbyte_per_step ms_per_step images_per_s
 *   proc_sums_per_step proc_sum_mbyte_per_step serial_depth_per_step serial_depth_max
 *   launches_per_step_without_graphs
 * (the counters are per step after the warm-up; cpu counts only proc_sums and prints 0 for
 * the others; serial depth: backend_counters_t). A step recorded as a CUDA graph (trainer.c,
 * on unless --cuda-graph off) counts as one launch plus what ran outside the graph; the last
 * column counts its recorded operations instead, as a step launched one by one makes them (the
 * same operations: the first column's figure without graphs). With 1 warm-up step the
 * timed steps are recorded (the first step of a run is not). A class-conditional preset (cmlp, cdcgan, csngan)
 * takes --classes K (default 10): random labels in [0, K). Started by mpirun as P processes, the step is data-parallel as in gan-step
 * (batch B is the global batch, B / P per process) and rank 0 prints: the last two columns count
 * what a step sums across processes (gradients, loss figures, BatchNorm statistics: the calls of
 * the backend's sum_procs, and their bytes), ms_per_step is rank 0's.
 *
 *   step_cost --fid WEIGHTS.safetensors --batch B [--device ...] [--warmup W] [--steps N] [--tf32]
 * costs gan-fid's feature extraction instead: one "step" is the Inception features of B random
 * 3x32x32 images in [-1, 1] (resized to 299 as gan-fid does), printed in the same columns with
 * preset "fid" and n_critic 1. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/common.h"
#include "lib/base/dist.h"
#include "lib/fid/inception_net.h"
#include "lib/gan/device.h"
#include "lib/gan/model.h"
#include "lib/base/philox.h"
#include "lib/gan/presets.h"
#include "lib/gan/trainer.h"

static void usage(void) {
    fprintf(stderr, "usage: step_cost --preset NAME --shape CxHxW --batch B [--classes K] [--device cpu|cuda] [--warmup W] "
                    "[--steps N] [--tf32] [--cuda-graph on|off]\n"
                    "       step_cost --fid WEIGHTS --batch B [--device cpu|cuda] [--warmup W] [--steps N] [--tf32]\n");
    exit(2);
}

/* print the per-step line from the counters before and after `steps` steps of dt seconds */
static void report(const char *what, int batch, int n_critic, int steps, double dt, backend_counters_t c0,
                   backend_counters_t c1) {
    printf("%s\t%d\t%d\t%.1f\t%.4f\t%.3f\t%.3f\t%.1f\t%.1f\t%.3f\t%.0f\t%llu\t%.1f\n", what, batch, n_critic,
           (double)(c1.launches - c0.launches) / steps, (c1.flops - c0.flops) / steps / 1e9,
           (c1.bytes - c0.bytes) / steps / 1e6, dt / steps * 1e3, (double)batch * n_critic * steps / dt,
           (double)(c1.proc_sums - c0.proc_sums) / steps, (c1.proc_sum_bytes - c0.proc_sum_bytes) / steps / 1e6,
           (double)(c1.serial_depth - c0.serial_depth) / steps, (unsigned long long)c1.serial_depth_max,
           (double)(c1.launches - c0.launches - (c1.graph_launches - c0.graph_launches) +
                    (c1.graph_nodes - c0.graph_nodes)) / steps);
}

/* --fid: the Inception features of `batch` random 3x32x32 images per step */
static int fid_cost(backend_t *be, const char *weights, int batch, int warmup, int steps) {
    inception_t *inc;
    if (inception_load(&inc, weights, be, batch)) {
        fprintf(stderr, "step_cost: %s\n", gt_errmsg());
        return 1;
    }
    size_t n = (size_t)batch * 3 * 32 * 32;
    float *host = gt_xmalloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) host[i] = 2.0f * philox_uniform(1, PHILOX_STREAM_USER, 0, i) - 1.0f;
    float *x = be->alloc(be, sizeof(float) * n), *feats = be->alloc(be, sizeof(float) * (size_t)batch * 2048);
    be->upload(be, x, host, sizeof(float) * n);
    int bad = 0;
    for (int i = 0; i < warmup; i++) bad |= inception_forward(inc, feats, x, batch, 3, 32, 32);
    be_sync(be);
    be->counters.serial_depth_max = 0;
    backend_counters_t c0 = be->counters;
    double t0 = gt_seconds();
    for (int i = 0; i < steps; i++) bad |= inception_forward(inc, feats, x, batch, 3, 32, 32);
    be_sync(be);
    double dt = gt_seconds() - t0;
    if (bad) {
        fprintf(stderr, "step_cost: %s\n", gt_errmsg());
        return 1;
    }
    report("fid", batch, 1, steps, dt, c0, be->counters);
    be->free(be, x);
    be->free(be, feats);
    free(host);
    inception_free(inc);
    return 0;
}

int main(int argc, char **argv) {
    gt_progname = "step_cost";
    dist_t dist;
    if (dist_init(&dist, &argc, &argv)) {
        fprintf(stderr, "step_cost: %s\n", gt_errmsg());
        return 1;
    }
    const char *preset = NULL, *shape_s = NULL, *device = "cuda", *fid_weights = NULL;
    int batch = 0, warmup = 2, steps = 1, tf32 = 0, classes = 10, graphs = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--preset") && i + 1 < argc) preset = argv[++i];
        else if (!strcmp(argv[i], "--shape") && i + 1 < argc) shape_s = argv[++i];
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--device") && i + 1 < argc) device = argv[++i];
        else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) warmup = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--fid") && i + 1 < argc) fid_weights = argv[++i];
        else if (!strcmp(argv[i], "--tf32")) tf32 = 1;
        else if (!strcmp(argv[i], "--cuda-graph") && i + 1 < argc && (!strcmp(argv[i + 1], "on") || !strcmp(argv[i + 1], "off")))
            graphs = !strcmp(argv[++i], "on");
        else if (!strcmp(argv[i], "--classes") && i + 1 < argc) classes = atoi(argv[++i]);
        else usage();
    }
    shape3_t shape;
    if (batch <= 0 || steps <= 0 || warmup < 0 || classes <= 0) usage();
    if (!fid_weights && (!preset || !shape_s || shape3_parse(shape_s, &shape))) usage();
    backend_t *be = gan_backend(device, 0);
    if (!be) {
        fprintf(stderr, "step_cost: %s\n", gt_errmsg());
        return 1;
    }
    be->tf32 = tf32;
    if (!graphs) be->graphs = 0;
    if (fid_weights) return fid_cost(be, fid_weights, batch, warmup, steps);
    preset_t p;
    int conditional = !strcmp(preset, "cmlp") || !strcmp(preset, "cdcgan") || !strcmp(preset, "csngan");
    if (preset_get_classes(preset, shape, 100, conditional ? classes : 0, &p)) {
        fprintf(stderr, "step_cost: %s\n", gt_errmsg());
        return 1;
    }
    gan_settings_t s;
    gan_settings_default(&s, p.loss); /* the preset's settings, as gan-init --arch gives them */
    if (p.opt) opt_conf_parse(p.opt, &s.opt_g), s.opt_d = s.opt_g;
    if (p.n_critic) s.n_critic = p.n_critic;
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
    if (conditional) {
        int64_t ldims[1] = {n};
        tensor_t labels;
        if (tensor_alloc(&labels, DT_I64, 1, ldims)) {
            fprintf(stderr, "step_cost: %s\n", gt_errmsg());
            return 1;
        }
        for (int64_t i = 0; i < n; i++)
            ((int64_t *)labels.data)[i] = philox_u32(2, PHILOX_STREAM_USER, 0, (uint64_t)i) % (uint32_t)classes;
        int bad = trainer_set_labels(&t, &labels);
        tensor_free(&labels);
        if (bad) {
            fprintf(stderr, "step_cost: %s\n", gt_errmsg());
            return 1;
        }
    }
    if (trainer_distribute(&t, &dist)) {
        fprintf(stderr, "step_cost: %s\n", gt_errmsg());
        return 1;
    }
    for (int i = 0; i < warmup; i++) train_step(&t);
    be_sync(be);
    be->counters.serial_depth_max = 0;
    backend_counters_t c0 = be->counters;
    double t0 = gt_seconds();
    for (int i = 0; i < steps; i++) train_step(&t);
    be_sync(be);
    double dt = gt_seconds() - t0;
    if (trainer_check(&t)) fprintf(stderr, "step_cost: note: %s\n", gt_errmsg());
    if (dist.rank == 0) report(preset, batch, s.n_critic, steps, dt, c0, be->counters);
    trainer_free(&t);
    tensor_free(&data);
    model_free(&m);
    preset_free(&p);
    dist_finalize(&dist);
    return 0;
}
