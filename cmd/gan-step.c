/* gan-step: train a GAN checkpoint on image data for a number of steps or epochs
 * (manual: cmd/gan-step.md). */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "formats/npy.h"
#include "lib/base/cli.h"
#include "lib/base/common.h"
#include "lib/base/dist.h"
#include "formats/safetensors.h"
#include "lib/gan/device.h"
#include "lib/gan/evaluate.h"
#include "lib/gan/inspect.h"
#include "lib/gan/model.h"
#include "lib/gan/trainer.h"

static void usage(void) {
    printf("usage: gan-step --data DATA.npy (--steps N | --epochs E) [options]\n"
           "                [-i IN.st | < IN.st] [-o OUT.st | > OUT.st | --in-place FILE.st]\n"
           "Train a GAN model checkpoint on images and write the trained checkpoint.\n\n"
           "  --data DATA.npy      images N x C x H x W: float32 in [-1, 1] or uint8 (mapped (x-127.5)/127.5)\n"
           "  --labels LABELS.npy  the images' classes, N int64 or uint8 in [0, K) (idx2tensor's labels):\n"
           "                       required by a class-conditional model (gan-init --classes K)\n"
           "  --steps N            train N more steps (one step: n_critic D updates and one G update)\n"
           "  --epochs E           train E more passes over the data: E * floor(N / batch) / n_critic steps\n"
           "  -i FILE              read the checkpoint from FILE (default stdin)\n"
           "  -o FILE              write the checkpoint to FILE, atomically (default stdout)\n"
           "  --in-place FILE      read FILE and replace it atomically when done\n"
           "  --batch B            batch size (overrides the checkpoint's, and is stored)\n"
           "  --opt-g OPT, --opt-d OPT   optimizer settings, e.g. adam:lr=2e-4,b1=0.5,b2=0.999\n"
           "  --n-critic K, --gp LAMBDA, --clip C, --label-smooth A, --ema DECAY,\n"
           "  --r1 GAMMA, --r2 GAMMA, --reg-every K\n"
           "                       override the checkpoint's settings (said on stderr, stored;\n"
           "                       gan-init --help says what each does)\n"
           "  --augment POLICY     DiffAugment before D: color,translation,cutout, any of them in that\n"
           "                       order, or none (overrides the checkpoint's; said, stored)\n"
           "  --lr-schedule SPEC, --lr-schedule-g SPEC, --lr-schedule-d SPEC\n"
           "                       learning-rate schedules (overrides; gan-init --help)\n"
           "  --label-flip P, --label-smooth-fake E\n"
           "                       flip D's targets with chance P; fake target E (bce, ns; overrides)\n"
           "  --bn-sync MODE       under mpirun, BatchNorm's batch statistics: synced (the global\n"
           "                       batch's; default) or local (each process's slice; overrides, stored)\n"
           "  --instance-noise SIGMA, --instance-noise-steps N\n"
           "                       instance noise on D's inputs, annealed to 0 at step N (overrides,\n"
           "                       said, stored; gan-init --help)\n"
           "  --log FILE.tsv       append a row of losses every --log-every steps (header when new)\n"
           "  --log-every N        default 50\n"
           "  --log-layers         add per-layer columns to the log: each layer's activation mean and\n"
           "                       std (G on its fake batch, D on the real and the fake batch) and\n"
           "                       parameter gradient norm, of the step logged\n"
           "  --dump-step N --dump-dir DIR   write every tensor of step N into DIR (new or empty):\n"
           "                       real and fake batches, every layer's output of G and D and the\n"
           "                       gradients w.r.t. them and the parameters, with DIR/manifest.tsv\n"
           "  --snapshot-every N   write DIR/step-NNNNNN.st every N steps (with --snapshot-dir)\n"
           "  --snapshot-dir DIR   where snapshots go (created if missing)\n");
    printf("  --eval-every N       score the EMA generator every N steps (steps N, 2N, ... of the\n"
           "                       checkpoint's count): a column of the log, shown in the progress line\n"
           "  --eval-ref REF       the reference: gan-fid --save-stats statistics (.npz), or images or\n"
           "                       features (.npy)\n"
           "  --eval-n K           images sampled per evaluation (default 1000), as gan-sample -n K\n"
           "  --eval-features F    inception (default), pixels or CKPT.st[:LAYER], as gan-fid --features\n"
           "  --eval-weights FILE  Inception weights (default: $GAN_FID_WEIGHTS), as gan-fid --weights\n"
           "  --eval-resize R      bilinear (default) or clean: how Inception resizes, as gan-fid --resize\n"
           "  --eval-metric M      fd (the Frechet distance, FID in Inception features; default) or kid\n"
           "  --keep-best FILE     write the checkpoint of the best (lowest) score so far to FILE,\n"
           "                       atomically, its step and score in its metadata; an existing FILE's\n"
           "                       score is the one to beat (a resumed run keeps what one run keeps)\n"
           "  --threads N          CPU threads (0 = all cores, default)\n"
           "  --bucket-mb X        under mpirun: sum the gradients across processes in buckets of at\n"
           "                       least X MB, each started as the backward pass completes it\n"
           "                       (default 25; 0: all after the backward pass)\n"
           "  --shard-optimizer on|off  under mpirun: each process steps the optimizer over its 1/P\n"
           "                       of the parameters, the gradients reduced to it and the updated\n"
           "                       weights gathered (default on; off: every process steps all)\n"
           "  --device DEV         cpu, cuda or auto (default auto: cuda when built with CUDA and a GPU\n"
           "                       is found, said on stderr)\n"
           "  --tf32               let cuda's matrix products use TF32 tensor cores (faster, 10-bit\n"
           "                       mantissa inputs); off by default, no effect on the CPU\n"
           "  --cuda-graph on|off  run each cuda training step as one CUDA graph (default on, unless\n"
           "                       GT_CUDA_GRAPH=0); the same bits either way, no effect on the CPU\n"
           "  -q                   no progress on stderr\n"
           "  -h, --help           this help;  --version  print the version\n\n"
           "SIGINT or SIGTERM finish the current step, write the checkpoint and exit 130 or 143\n"
           "(a second one ends the program at once, writing nothing).\n\n"
           "Data-parallel training: started by mpirun (or srun) as P processes, each takes 1/P of\n"
           "every batch and all compute the one-process step; rank 0 writes the checkpoint, log and\n"
           "snapshots. Needs a build with MPI (make MPI=1) and -i/-o files or --in-place; on GPUs\n"
           "(--device cuda) each rank takes its local rank's GPU and sums with NCCL.\n\n"
           "example:\n"
           "  gan-step --data train.npy --epochs 5 --log loss.tsv < m0.st > m5.st\n"
           "  gan-step --data train.npy --labels labels.npy --steps 1000 < c0.st > c1.st\n"
           "  gan-fid --features pixels --save-stats ref.npz train.npy\n"
           "  gan-step --data train.npy --steps 1000 --eval-every 200 --eval-ref ref.npz --eval-features pixels \\\n"
           "           --eval-n 500 --log loss.tsv --keep-best best.st -i m0.st -o m1.st\n"
           "  mpirun -np 4 gan-step --data train.npy --steps 1000 -i m0.st -o m1000.st\n");
    exit(0);
}

enum { O_DATA = 256, O_LABELS, O_STEPS, O_EPOCHS, O_INPLACE, O_LOG, O_LOGEVERY, O_SNAPEVERY, O_SNAPDIR, O_THREADS,
       O_DEVICE, O_TF32, O_VERSION, O_DUMPSTEP, O_DUMPDIR, O_LOGLAYERS, O_EVALEVERY, O_EVALREF, O_EVALN, O_EVALFEAT,
       O_EVALWEIGHTS, O_EVALMETRIC, O_KEEPBEST, O_EVALRESIZE, O_CUDAGRAPH, O_BUCKETMB, O_SHARDOPT };

static const struct option longopts[] = {
    {"data", required_argument, 0, O_DATA},
    {"labels", required_argument, 0, O_LABELS},
    {"steps", required_argument, 0, O_STEPS},
    {"epochs", required_argument, 0, O_EPOCHS},
    {"in-place", required_argument, 0, O_INPLACE},
    GAN_SETTINGS_LONGOPTS,
    {"log", required_argument, 0, O_LOG},
    {"log-every", required_argument, 0, O_LOGEVERY},
    {"log-layers", no_argument, 0, O_LOGLAYERS},
    {"dump-step", required_argument, 0, O_DUMPSTEP},
    {"dump-dir", required_argument, 0, O_DUMPDIR},
    {"eval-every", required_argument, 0, O_EVALEVERY},
    {"eval-ref", required_argument, 0, O_EVALREF},
    {"eval-n", required_argument, 0, O_EVALN},
    {"eval-features", required_argument, 0, O_EVALFEAT},
    {"eval-weights", required_argument, 0, O_EVALWEIGHTS},
    {"eval-resize", required_argument, 0, O_EVALRESIZE},
    {"eval-metric", required_argument, 0, O_EVALMETRIC},
    {"keep-best", required_argument, 0, O_KEEPBEST},
    {"snapshot-every", required_argument, 0, O_SNAPEVERY},
    {"snapshot-dir", required_argument, 0, O_SNAPDIR},
    {"threads", required_argument, 0, O_THREADS},
    {"bucket-mb", required_argument, 0, O_BUCKETMB},
    {"shard-optimizer", required_argument, 0, O_SHARDOPT},
    {"device", required_argument, 0, O_DEVICE},
    {"tf32", no_argument, 0, O_TF32},
    {"cuda-graph", required_argument, 0, O_CUDAGRAPH},
    {"help", no_argument, 0, 'h'},
    {"version", no_argument, 0, O_VERSION},
    {0, 0, 0, 0}};

static volatile sig_atomic_t got_signal;

/* A data-parallel run: die() on any rank ends every rank (cli_set_rank). */
static dist_t dist;
static void abort_run(int code) {
    dist_abort(&dist, code);
    exit(code);
}

/* CPU threads per process when --threads is not given: the cores shared among the ranks on
 * this node (Open MPI says how many there are). */
static int default_threads(void) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    const char *v = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    long local = v ? strtol(v, NULL, 10) : dist.size;
    if (local < 1) local = 1;
    long t = cores / local;
    return t < 1 ? 1 : (int)t;
}
static void on_signal(int sig) { got_signal = sig; }

/* What the per-step hook needs. */
typedef struct {
    gan_model_t *m;
    trainer_t *tr;
    int64_t start_step, until;
    FILE *log;
    const char *log_path;
    int log_every, snap_every;
    const char *snap_dir;
    double t0, t_last_log;
    int64_t last_log_step;
    progress_t prog;
    /* --dump-step, --log-layers (lib/gan/inspect.h) */
    inspect_step_t watch;
    inspect_dir_t dump;
    int64_t dump_step;
    int log_layers, watching;
    /* --eval-every, --keep-best (lib/gan/evaluate.h) */
    gan_eval_t *eval;
    int64_t eval_every;
    double score;         /* of this step when scored_step == m->step */
    int64_t scored_step;
    const char *best_path;
    double best;          /* the best score so far (best_step >= 0) */
    int64_t best_step;
} run_t;

/* Before step m->step + 1: watch it when it is the dumped step or, with --log-layers, a logged one. */
static void watch_next(run_t *r) {
    int64_t next = r->m->step + 1;
    int dump = next == r->dump_step, stats = r->log_layers && (next % r->log_every == 0 || next == r->until);
    if (!dump && !stats) return;
    inspect_step_begin(&r->watch, dump ? &r->dump : NULL, stats);
    r->watching = 1;
}

/* After a step: stop watching it; a dumped step's directory is complete. */
static void watch_done(run_t *r) {
    if (!r->watching) return;
    int dumped = r->watch.d != NULL;
    inspect_step_end(&r->watch);
    if (dumped) inspect_dir_close(&r->dump);
    r->watching = 0;
}

/* A checkpoint is written only when no step went bad (trainer.h). */
static void write_snapshot(run_t *r) {
    if (trainer_check(r->tr)) die(EXIT_DATA, "%s", gt_errmsg());
    char path[4096];
    snprintf(path, sizeof path, "%s/step-%06lld.st", r->snap_dir, (long long)r->m->step);
    out_t o;
    out_open(&o, path, 1);
    if (model_save(r->m, o.f)) out_fail(&o);
    out_commit(&o);
}

/* The metadata that makes a checkpoint the --keep-best file: the score, its step, and what it
 * measures (a resumed run checks these before it trusts the score). */
#define BEST_KEYS 5
static void best_meta(const run_t *r, char vals[BEST_KEYS][NAME_LEN + 8]) {
    const gan_eval_t *e = r->eval;
    gt_format_exact(vals[0], sizeof vals[0], r->best, 1, 0);
    snprintf(vals[1], sizeof vals[1], "%lld", (long long)r->best_step);
    snprintf(vals[2], sizeof vals[2], "%s", gan_eval_metric_name(e->metric));
    snprintf(vals[3], sizeof vals[3], "%s", e->ex.name);
    snprintf(vals[4], sizeof vals[4], "%lld", (long long)e->n);
}
static const char *const best_keys[BEST_KEYS] = {"eval_score", "eval_step", "eval_metric", "eval_features", "eval_n"};

/* --keep-best FILE that exists: the score to beat, when it measured what this run measures. */
static void best_resume(run_t *r) {
    st_file_t f;
    struct stat sb;
    if (stat(r->best_path, &sb) != 0) return;
    if (st_load(r->best_path, &f)) die(EXIT_DATA, "--keep-best %s: %s", r->best_path, gt_errmsg());
    char want[BEST_KEYS][NAME_LEN + 8];
    r->best = 0;
    best_meta(r, want);
    const char *v[BEST_KEYS];
    for (int k = 0; k < BEST_KEYS; k++) v[k] = st_meta_get(&f, best_keys[k]);
    if (!v[0] || !v[1])
        die(EXIT_DATA, "--keep-best %s exists but is not a kept best checkpoint (no eval_score): move it away or "
                       "name another file",
            r->best_path);
    for (int k = 2; k < BEST_KEYS; k++)
        if (!v[k] || strcmp(v[k], want[k]) != 0)
            die(EXIT_DATA, "--keep-best %s was kept for %s %s, this run scores %s %s: move it away or name another "
                           "file",
                r->best_path, best_keys[k], v[k] ? v[k] : "(none)", best_keys[k], want[k]);
    char *end;
    errno = 0;
    r->best = strtod(v[0], &end);
    long long step = strtoll(v[1], NULL, 10);
    if (*end || errno || r->best != r->best)
        die(EXIT_DATA, "--keep-best %s: eval_score '%s' is not a number", r->best_path, v[0]);
    r->best_step = step;
    st_free(&f);
}

/* At steps N, 2N, ...: the score; with --keep-best, the checkpoint when the score is the best yet
 * (strictly lower: ties keep the earlier step). */
static void evaluate(run_t *r) {
    gan_model_t *m = r->m;
    if (!r->eval || m->step % r->eval_every != 0) return;
    if (trainer_check(r->tr)) die(EXIT_DATA, "%s", gt_errmsg()); /* no score of a poisoned generator */
    if (gan_eval_score(r->eval, &r->score)) die(EXIT_DATA, "evaluation at step %lld: %s", (long long)m->step, gt_errmsg());
    r->scored_step = m->step;
    if (!r->best_path || (r->best_step >= 0 && !(r->score < r->best))) return;
    r->best = r->score;
    r->best_step = m->step;
    char vals[BEST_KEYS][NAME_LEN + 8];
    const char *pv[BEST_KEYS];
    best_meta(r, vals);
    for (int k = 0; k < BEST_KEYS; k++) pv[k] = vals[k];
    out_t o;
    out_open(&o, r->best_path, 1);
    if (model_save_extra(m, o.f, BEST_KEYS, best_keys, pv)) out_fail(&o);
    out_commit(&o);
}

/* The progress line's score: "  FD(pixels) 12.3 @400 (best 11.9 @200)", or "" before the first. */
static void eval_text(const run_t *r, char *ev, size_t cap) {
    ev[0] = 0;
    if (r->eval && r->scored_step > 0)
        snprintf(ev, cap, "  %s %.4g @%lld", r->eval->label, r->score, (long long)r->scored_step);
    if (r->best_path && r->best_step >= 0)
        snprintf(ev + strlen(ev), cap - strlen(ev), " (best %.4g @%lld)", r->best, (long long)r->best_step);
}

/* After each step: the log row, a snapshot, the progress line. The step's figures live on
 * the device (trainer.h); they are read only when a row or a progress line is due. */
static int after_step(void *arg) {
    run_t *r = arg;
    gan_model_t *m = r->m;
    double t = gt_seconds();
    watch_done(r);
    evaluate(r);
    int scored = r->eval && r->scored_step == m->step;
    if (r->log && (m->step % r->log_every == 0 || m->step == r->until || scored)) {
        if (trainer_check(r->tr)) return 1; /* no row of NaNs: train_loop reports the bad step */
        train_stats_t a;
        int64_t n;
        trainer_stats(r->tr, NULL, &a, &n);
        double v[7] = {a.loss_d, a.loss_g, a.d_real, a.d_fake, a.gp, a.gnorm_g, a.gnorm_d};
        double dt = t - r->t_last_log;
        double ips = dt > 0 ? (double)(m->step - r->last_log_step) * m->set.batch * m->set.n_critic / dt : 0;
        fprintf(r->log, "%lld\t%lld", (long long)m->step, (long long)m->epoch);
        for (int k = 0; k < 7; k++) fprintf(r->log, "\t%.6g", v[k]);
        fprintf(r->log, "\t%.1f\t%.3f", ips, t - r->t0);
        if (r->log_layers) inspect_log_row(&r->watch, r->log);
        if (r->eval) {
            char num[40] = "nan"; /* a row between evaluations */
            if (scored) gt_format_exact(num, sizeof num, r->score, 1, 0);
            fprintf(r->log, "\t%s", num);
        }
        fprintf(r->log, "\n");
        if (fflush(r->log) != 0 || ferror(r->log)) die(EXIT_DATA, "%s: write failed: %s", r->log_path, strerror(errno));
        r->t_last_log = t;
        r->last_log_step = m->step;
    }
    if (r->snap_every && m->step % r->snap_every == 0) write_snapshot(r);
    if (progress_due(&r->prog) || scored) {
        train_stats_t st;
        trainer_stats(r->tr, &st, NULL, NULL);
        double el = t - r->t0;
        double done = (double)(m->step - r->start_step), total = (double)(r->until - r->start_step);
        char ev[256];
        eval_text(r, ev, sizeof ev);
        progress_update(&r->prog, 0, "step %lld/%lld  epoch %lld  loss D %.4f G %.4f  %.0f img/s  %.0f s left%s",
                        (long long)m->step, (long long)r->until, (long long)m->epoch, st.loss_d, st.loss_g,
                        el > 0 ? done * m->set.batch * m->set.n_critic / el : 0.0,
                        done > 0 ? el / done * (total - done) : 0.0, ev);
    }
    if (m->step < r->until) watch_next(r);
    return 0;
}

/* whether the first line of the log at `path` is `header` (which ends in a newline) */
static int log_header_matches(const char *path, const char *header) {
    FILE *f = fopen(path, "r");
    if (!f) die(EXIT_DATA, "%s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    int same = n >= 0 && strcmp(line, header) == 0;
    free(line);
    fclose(f);
    return same;
}

int main(int argc, char **argv) {
    cli_init("gan-step");
    if (dist_init(&dist, &argc, &argv)) die_usage("%s", gt_errmsg());
    if (dist.size > 1) cli_set_rank(dist.rank, abort_run);
    int rank0 = dist.rank == 0;
    const char *data_path = NULL, *labels_path = NULL, *in = NULL, *out = NULL, *inplace = NULL;
    const char *log_path = NULL, *snap_dir = NULL, *device = "auto", *dump_dir = NULL;
    long long dump_step = -1, eval_every = 0, eval_n = 1000;
    const char *eval_ref = NULL, *eval_feat = "inception", *eval_weights = getenv("GAN_FID_WEIGHTS"), *keep_best = NULL;
    eval_metric_t eval_metric = EVAL_FD;
    int eval_clean = 0;
    if (eval_weights && !*eval_weights) eval_weights = NULL;
    int log_layers = 0;
    long long steps = -1, epochs = -1, threads = 0, log_every = 50, snap_every = 0;
    double bucket_mb = TRAINER_BUCKET_MB;
    int shard_opt = 1;
    int64_t state_every[2] = {0, 0};
    gan_overrides_t ov = {0};
    int quiet = 0, tf32 = 0, cuda_graph = -1, c; /* -1: the backend's default */
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hqi:o:", longopts, NULL)) != -1) {
        if (gan_overrides_option(&ov, c, optarg)) continue;
        switch (c) {
        case O_DATA: data_path = optarg; break;
        case O_LABELS: labels_path = optarg; break;
        case O_STEPS: steps = cli_long("--steps", optarg, 0, 100000000); break;
        case O_EPOCHS: epochs = cli_long("--epochs", optarg, 0, 1000000); break;
        case O_INPLACE: inplace = optarg; break;
        case O_LOG: log_path = optarg; break;
        case O_LOGEVERY: log_every = cli_long("--log-every", optarg, 1, INT32_MAX); break;
        case O_SNAPEVERY: snap_every = cli_long("--snapshot-every", optarg, 1, INT32_MAX); break;
        case O_SNAPDIR: snap_dir = optarg; break;
        case O_DUMPSTEP: dump_step = cli_long("--dump-step", optarg, 1, UINT32_MAX / 16); break;
        case O_DUMPDIR: dump_dir = optarg; break;
        case O_LOGLAYERS: log_layers = 1; break;
        case O_EVALEVERY: eval_every = cli_long("--eval-every", optarg, 1, INT32_MAX); break;
        case O_EVALREF: eval_ref = optarg; break;
        case O_EVALN: eval_n = cli_long("--eval-n", optarg, 2, 1 << 24); break;
        case O_EVALFEAT: eval_feat = optarg; break;
        case O_EVALWEIGHTS: eval_weights = optarg; break;
        case O_EVALMETRIC:
            if (gan_eval_metric_parse(optarg, &eval_metric)) die_usage("--eval-metric %s", gt_errmsg());
            break;
        case O_KEEPBEST: keep_best = optarg; break;
        case O_EVALRESIZE:
            if (strcmp(optarg, "bilinear") != 0 && strcmp(optarg, "clean") != 0)
                die_usage("--eval-resize '%s': bilinear (pytorch-fid's, the default) or clean (clean-fid's)", optarg);
            eval_clean = strcmp(optarg, "clean") == 0;
            break;
        case O_THREADS: threads = cli_long("--threads", optarg, 0, 1024); break;
        case O_BUCKETMB: bucket_mb = cli_double("--bucket-mb", optarg, 0, 1e6); break;
        case O_SHARDOPT:
            if (strcmp(optarg, "on") != 0 && strcmp(optarg, "off") != 0)
                die_usage("--shard-optimizer '%s': on or off", optarg);
            shard_opt = strcmp(optarg, "on") == 0;
            break;
        case O_DEVICE: device = optarg; break;
        case O_TF32: tf32 = 1; break;
        case O_CUDAGRAPH:
            if (strcmp(optarg, "on") != 0 && strcmp(optarg, "off") != 0) die_usage("--cuda-graph '%s': on or off", optarg);
            cuda_graph = strcmp(optarg, "on") == 0;
            break;
        case 'i': in = optarg; break;
        case 'o': out = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': usage(); break;
        case O_VERSION: cli_version(); break;
        case ':': die_usage("%s needs a value", argv[optind - 1]);
        default: die_usage("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) die_usage("unexpected argument '%s'", argv[optind]);
    if (!data_path) die_usage("--data DATA.npy is required");
    if ((steps < 0) == (epochs < 0)) die_usage("give one of --steps N or --epochs E");
    if (inplace && (in || out)) die_usage("--in-place replaces -i and -o");
    if (inplace) in = out = inplace;
    if (!!snap_every != !!snap_dir) die_usage("--snapshot-every and --snapshot-dir go together");
    if ((dump_step > 0) != !!dump_dir) die_usage("--dump-step and --dump-dir go together");
    if (log_layers && !log_path) die_usage("--log-layers adds columns to the log: give --log FILE.tsv");
    if (!eval_every && (eval_ref || keep_best))
        die_usage("%s scores the run: give --eval-every N (and --eval-ref REF)", keep_best ? "--keep-best" : "--eval-ref");
    if (eval_every && !eval_ref) die_usage("--eval-every needs the reference to score against: --eval-ref REF");
    if (dist.size > 1 && (dump_dir || log_layers))
        die_usage("--dump-step and --log-layers work in one process; run the step without mpirun");
    if (dist.size > 1) {
        if (!in || strcmp(in, "-") == 0)
            die_usage("%d processes: give the checkpoint as -i FILE or --in-place FILE (only rank 0 has stdin)",
                      dist.size);
        if (!out || strcmp(out, "-") == 0)
            die_usage("%d processes: give the output as -o FILE or --in-place FILE (every rank's stdout goes "
                      "to mpirun's)",
                      dist.size);
        if (threads == 0) threads = default_threads();
        /* the steps whose checkpoints (rank 0's snapshots, best) need the sharded optimizer's
         * whole state, known on every rank */
        state_every[0] = snap_every;
        state_every[1] = keep_best ? eval_every : 0;
        if (!rank0) { /* rank 0 alone writes, logs, evaluates and shows progress */
            quiet = 1;
            eval_every = 0;
            keep_best = NULL;
            log_path = NULL;
            snap_every = 0;
            snap_dir = NULL;
        }
    }

    backend_t *be = gan_backend(device, (int)threads);
    if (!be) die_usage("%s", gt_errmsg());
    if (gan_backend_note() && !quiet) warnx("%s", gan_backend_note());
    be->tf32 = tf32;
    if (cuda_graph >= 0) be->graphs = cuda_graph;

    /* Check the output before the work: refuse a terminal now, not after an hour. */
    out_t o;
    if (rank0) out_open(&o, out, 1);

    if ((!in || strcmp(in, "-") == 0) && isatty(STDIN_FILENO))
        die_usage("the checkpoint would come from the terminal; give -i FILE or redirect stdin");
    gan_model_t m;
    if (model_load(&m, in, be, gan_overrides_given(&ov, GAN_SET_BATCH) ? ov.v.batch : 0)) die_lib(EXIT_DATA);

    /* overrides: apply, say, store */
    gan_settings_t s = m.set;
    double r1 = gan_overrides_given(&ov, GAN_SET_R1) ? ov.v.r1 : s.r1;
    double r2 = gan_overrides_given(&ov, GAN_SET_R2) ? ov.v.r2 : s.r2;
    if ((r1 > 0 || r2 > 0) && net_jvp_ok(&m.D)) die_usage("--r1/--r2: D %s; give --r1 0 --r2 0", gt_errmsg());
    if (gan_overrides_apply(&s, &ov, warnx)) die_usage("%s", gt_errmsg());
    if (gan_overrides_given(&ov, GAN_OV_OPT_G)) model_set_opt(&m, 0, &s.opt_g);
    if (gan_overrides_given(&ov, GAN_OV_OPT_D)) model_set_opt(&m, 1, &s.opt_d);
    double ema = s.ema;
    s.ema = m.set.ema;
    m.set = s;
    model_set_ema(&m, ema);

    if (m.classes && !labels_path)
        die_usage("the model is class-conditional (%d classes): give --labels LABELS.npy", m.classes);
    tensor_t data, labels;
    memset(&labels, 0, sizeof labels);
    if (npy_load(data_path, &data, 1)) die_lib(EXIT_DATA);
    trainer_t tr;
    if (trainer_init(&tr, &m, &data)) die(EXIT_DATA, "%s: %s", in_name(data_path), gt_errmsg());
    if (labels_path) {
        if (npy_load(labels_path, &labels, 0)) die_lib(EXIT_DATA);
        if (trainer_set_labels(&tr, &labels)) die(EXIT_DATA, "%s: %s", in_name(labels_path), gt_errmsg());
        tensor_free(&labels);
    }
    tr.bucket_mb = bucket_mb;
    tr.shard_optimizer = shard_opt;
    tr.state_every[0] = state_every[0];
    tr.state_every[1] = state_every[1];
    if (trainer_distribute(&tr, &dist)) die_usage("%s", gt_errmsg());
    if (dist.size > 1 && rank0 && !quiet)
        warnx("%d processes, %d samples each of every batch of %d, %d threads each%s", dist.size, tr.b, tr.B,
              be->threads,
              tr.params_shared ? "; the optimizer sharded, the weights and gradients in shared memory"
              : tr.sharded     ? "; the optimizer sharded"
                               : "");

    int64_t per_epoch = tr.n / tr.B;
    /* an epoch is floor(N / B) real batches; a step draws n_critic of them */
    int64_t until = m.step + (steps >= 0 ? steps : epochs * per_epoch / m.set.n_critic);
    if (until > (int64_t)(UINT32_MAX / 16)) die_usage("too many steps");
    if (dump_dir && (dump_step <= m.step || dump_step > until))
        die_usage("--dump-step %lld: this run makes steps %lld..%lld", dump_step, (long long)m.step + 1,
                  (long long)until);

    run_t r;
    memset(&r, 0, sizeof r);
    r.m = &m;
    r.tr = &tr;
    r.start_step = m.step;
    r.until = until;
    r.log_every = (int)log_every;
    r.snap_every = (int)snap_every;
    r.snap_dir = snap_dir;
    r.log_path = log_path;
    r.dump_step = dump_dir ? dump_step : -1;
    r.log_layers = log_layers;
    r.eval_every = eval_every;
    r.best_path = keep_best;
    r.best_step = -1;
    r.scored_step = -1;
    gan_eval_t ev;
    if (eval_every) {
        int cpu_threads = be->device == DEV_CPU ? be->threads : backend_cpu((int)threads)->threads;
        int rc = gan_eval_init(&ev, &m, eval_feat, eval_weights, eval_clean, eval_metric, eval_n, eval_ref, cpu_threads);
        if (rc == -2) die_usage("%s", gt_errmsg());
        if (rc) die_lib(EXIT_DATA);
        r.eval = &ev;
        if (keep_best) best_resume(&r);
        if (!quiet && ev.metric == EVAL_FD && ev.n < ev.ex.d)
            warnx("warning: --eval-n %lld images for %d features: the covariance is singular and the distance is "
                  "biased upward",
                  (long long)ev.n, ev.ex.d);
    }
    inspect_step_init(&r.watch, &tr);
    if (dump_dir) {
        int bad = inspect_dir_open(&r.dump, dump_dir);
        if (bad > 0) die_usage("%s", gt_errmsg());
        if (bad) die_lib(EXIT_DATA);
    }
    if (snap_dir && mkdir(snap_dir, 0777) != 0 && errno != EEXIST)
        die(EXIT_DATA, "%s: cannot create: %s", snap_dir, strerror(errno));
    if (log_path) {
        char *header = NULL;
        size_t header_len = 0;
        FILE *hf = open_memstream(&header, &header_len);
        if (!hf) die(EXIT_DATA, "cannot make the log's header: %s", strerror(errno));
        fprintf(hf, "step\tepoch\tloss_d\tloss_g\td_real\td_fake\tgp\tgnorm_g\tgnorm_d\timg_per_s\twall_s");
        if (log_layers) inspect_log_header(&r.watch, hf);
        if (r.eval) fprintf(hf, "\teval_%s", gan_eval_metric_name(eval_metric));
        fprintf(hf, "\n");
        fclose(hf);
        r.log = fopen(log_path, "a");
        if (!r.log) die(EXIT_DATA, "%s: %s", log_path, strerror(errno));
        if (ftell(r.log) == 0) fputs(header, r.log);
        else if (!log_header_matches(log_path, header))
            die_usage("%s: its header names other columns than this run writes (--log-layers or --eval turned on "
                      "or off, or other networks): give a new --log file",
                      log_path);
        free(header);
    }
    progress_init(&r.prog, quiet);
    r.t0 = r.t_last_log = gt_seconds();
    r.last_log_step = m.step;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C ends the program at once, without a checkpoint */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (rank0 && m.step < until) watch_next(&r);
    if (train_loop(&tr, until, &got_signal, rank0 ? after_step : NULL, &r)) {
        progress_done(&r.prog);
        die(EXIT_DATA, "%s", gt_errmsg());
    }
    char evt[256];
    eval_text(&r, evt, sizeof evt);
    progress_update(&r.prog, 1, "step %lld  epoch %lld  %.1f s%s%s", (long long)m.step, (long long)m.epoch,
                    gt_seconds() - r.t0, evt, got_signal ? "  (interrupted)" : "");
    progress_done(&r.prog);
    if (r.log && fclose(r.log) != 0) die(EXIT_DATA, "%s: write failed: %s", log_path, strerror(errno));

    if (trainer_check(&tr)) die(EXIT_DATA, "%s", gt_errmsg()); /* train_loop checked; a snapshot may not have */
    trainer_sync_state(&tr); /* every rank: the sharded optimizer's state, whole for the checkpoint */
    if (rank0) {
        if (model_save(&m, o.f)) out_fail(&o);
        out_commit(&o);
    }
    /* the other ranks wait for the checkpoint: mpirun ends a job whose process exits non-zero
     * (130/143 after a signal) at once, rank 0 with it */
    int written = 0;
    dist_max(&dist, &written, 1);
    long long done_step = (long long)m.step;
    if (r.dump.dir) warnx("step %lld was not reached: nothing dumped into %s", dump_step, dump_dir);
    inspect_step_free(&r.watch);
    if (r.eval) gan_eval_free(r.eval);
    trainer_free(&tr);
    tensor_free(&data);
    model_free(&m);
    dist_finalize(&dist);
    if (got_signal) {
        if (rank0) warnx("interrupted by %s at step %lld; checkpoint written", got_signal == SIGINT ? "SIGINT" : "SIGTERM",
              done_step);
        return 128 + got_signal;
    }
    return 0;
}
