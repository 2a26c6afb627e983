/* inspect.h: a network's intermediate tensors on request, through the nets' observers
 * (lib/nn/net.h net_observe): gan-sample's --activations, gan-step's --dump-step and
 * --log-layers. Watching changes no computed bit; it only downloads.
 *
 * A dump directory holds .npy files (float32, C order; a layer's tensor is (B, C, H, W), a
 * feature vector n being n x 1 x 1 as lib/nn stores it) and manifest.tsv, one line per file
 * after a header line:
 *     file  phase  net  what  name  kind  shape
 * what: input (the net's input), output (a layer's output), grad_input, grad_output (the
 * gradient of the pass's loss w.r.t. the net's input or the layer's output), batch (real, fake,
 * z), param (a parameter before the step), grad_param (its gradient in the step); name: the
 * layer's torch name ("3", "3.main.2") or the checkpoint tensor's ("3.weight"); kind: the
 * layer's spec keyword ("-" for parameters and batches); shape: e.g. 8x64x4x4. The directory must be new or empty; each file is
 * written atomically, and the manifest last, so a complete manifest means a complete dump.
 *
 * gan-step's phases (trainer.h's step; "dstepK_" with K = 1.. the critic update when
 * n_critic > 1):
 *     dstep_real   D forward and backward on the real batch (D's loss)
 *     dstep_G      G forward making the fake batch (outputs only)
 *     dstep_fake   D forward and backward on the fake batch
 *     dstep_gp, dstep_r1, dstep_r2   the penalties' plain passes (gradient w.r.t. D's input)
 *     gstep_D      D forward and backward in G's update (no D parameter gradients)
 *     gstep_G      G backward in G's update (gradients only)
 * Parameter gradients: grad.D.NAME.npy from the last D update of the step, grad.G.NAME.npy from
 * G's update; param.{G,D}.NAME.npy the parameters before the step. */
#ifndef GT_INSPECT_H
#define GT_INSPECT_H

#include <stdio.h>

#include "trainer.h"

typedef struct inspect_file inspect_file_t;

/* A dump directory being written. */
typedef struct {
    char *dir;
    inspect_file_t **files;
    int n, cap;
    float *buf;     /* host copy of an observed tensor */
    size_t buf_n;
} inspect_dir_t;

/* Create DIR if missing. Returns 0; 1 (a usage error) when DIR holds anything; -1 when it
 * cannot be made or read; the message in gt_errmsg(). */
int inspect_dir_open(inspect_dir_t *d, const char *dir);
/* Append count floats to DIR/STEM.npy, whose full shape (ndim <= 5) is given with the first
 * call; the file is complete when the shape's elements have all come. */
void inspect_dir_add(inspect_dir_t *d, const char *stem, const char *phase, const char *net, const char *what,
                     const char *name, const char *kind, int ndim, const int64_t *shape, const float *data,
                     size_t count);
/* Commit every file (each must be complete) and write manifest.tsv; frees d. */
void inspect_dir_close(inspect_dir_t *d);

/* gan-sample --activations: every output of G's layers (and G's input, the latents) in the
 * passes of a run of `total` images, into d as G.NAME.npy (G.input.npy). Call before sampling;
 * inspect_sample_stop after. */
typedef struct {
    inspect_dir_t *d;
    int64_t total;
    nn_observer_t obs;
} inspect_sample_t;
void inspect_sample_start(inspect_sample_t *s, inspect_dir_t *d, net_t *G, int64_t total);
void inspect_sample_stop(inspect_sample_t *s, net_t *G);

/* gan-step: watch one step of a trainer. With d, dump it (above); with stats, keep each layer's
 * activation mean and standard deviation (G's outputs in the last fake batch, D's on the last
 * real and fake batches) and, after the step, each layer's parameter gradient norm, for the
 * log's columns (inspect_log_header). One process only. */
typedef struct inspect_layer_stat inspect_layer_stat_t;
typedef struct {
    trainer_t *t;
    inspect_dir_t *d;
    int stats;
    int64_t step;                 /* the model's step counter before the watched step */
    int occ[16];                  /* D forward passes seen per dropout pass key */
    nn_observer_t og, od;
    inspect_layer_stat_t *cols;   /* the log's per-layer columns, in inspect_log_header's order */
    int n_cols;
} inspect_step_t;
void inspect_step_init(inspect_step_t *w, trainer_t *t);
/* Watch the next train_step: dump into d (NULL: no dump) and/or keep statistics. */
void inspect_step_begin(inspect_step_t *w, inspect_dir_t *d, int stats);
/* After that train_step: stop watching; a dump gets its batches, parameters and gradients (d
 * stays open: the caller closes it); statistics get the gradient norms. */
void inspect_step_end(inspect_step_t *w);
/* --log-layers: the per-layer column names, tab-first ("\tG.0.act_mean..."), and a row's values
 * from the last watched step (nan where a layer was not seen). */
void inspect_log_header(const inspect_step_t *w, FILE *f);
void inspect_log_row(const inspect_step_t *w, FILE *f);
void inspect_step_free(inspect_step_t *w);

#endif
