/* features.h: the feature spaces images are scored in, shared by gan-fid (--features) and
 * gan-step's evaluation during training (--eval-features):
 *   inception        pytorch-fid's Inception v3 pool3 features (lib/fid/inception_net.h),
 *                    2048 per image, from a weights file; images resized to 299 x 299 by the
 *                    network's bilinear resize, or with `clean` set by clean-fid's anti-aliased
 *                    bicubic on the host (lib/fid/resample.h; recorded as "inception-clean")
 *   pixels           the flattened pixels themselves (C*H*W per image, at most 32768)
 *   CKPT.st[:LAYER]  the output of layer LAYER (counted from 0, as in the checkpoint's names;
 *                    default: the input of D's last layer) of a gan-tools checkpoint's D, run in
 *                    evaluation mode
 * and the two things every scorer needs around them: images converted to [-1, 1] as gan-fid
 * reads them, and statistics files (.npz with mu, sigma and optionally n and features, as
 * `gan-fid --save-stats` and pytorch-fid write them).
 *
 * An extractor is parsed from the option's text, set up for the first image shape it sees (the
 * networks are loaded then, for batches up to `batch`), and run on host batches; the networks
 * run on the backend's device. Functions return 0, or -1 (bad data) or -2 (bad usage: the
 * program should say "see --help") with a one-line message (common.h gt_errmsg). */
#ifndef GT_FEATURES_H
#define GT_FEATURES_H

#include <stddef.h>
#include <stdint.h>

#include "lib/base/tensor.h"
#include "lib/fid/fid.h"
#include "lib/fid/inception_net.h"
#include "model.h"

typedef enum { FEAT_INCEPTION, FEAT_PIXELS, FEAT_NET } feat_kind_t;

#define NAME_LEN 160

typedef struct {
    feat_kind_t kind;
    const char *weights;  /* inception: the weights file (the caller's string) */
    const char *net_path; /* net: the checkpoint */
    int layer;            /* net: the layer whose output is taken (-1: the last layer's input) */
    backend_t *be;
    int batch;
    int quiet;
    int clean;            /* inception: resize as clean-fid does (gan-fid --resize clean), on the host */
    int ready;            /* set up for the first image set */
    int d;                /* features per image */
    shape3_t shape;       /* pixels, net: the image shape every set must have */
    char name[NAME_LEN];  /* recorded in statistics files ("inception", "pixels", "net:HASH:LAYER") */
    char label[NAME_LEN]; /* what the distance is called: "FID", "FD(pixels)", "FD(m.st:5)" */
    gan_model_t model;
    inception_t *inc;
    float *out;           /* (batch, d) features of a batch on the host (pixels: unused) */
    float *x_dev;         /* a batch of images on the backend's device (x_floats of room) */
    size_t x_floats;
    float *out_dev;       /* inception: (batch, 2048) features on the device */
    float *rs, *rs_tmp;   /* clean: (batch, C, 299, 299) images, and the resampler's scratch */
    size_t rs_floats, rs_tmp_floats;
    char *path_owned;     /* net: the checkpoint path cut from "PATH:LAYER" (freed by extractor_free) */
    const char *opt;      /* the program's feature option, for messages (set by extractor_parse) */
    const char *weights_opt; /* its weights option, for messages (NULL: "--weights") */
} extractor_t;

/* Parse a feature space's name f ("inception", "pixels" or "PATH[:LAYER]") into ex, which the
 * caller has zeroed and given be, batch, quiet and (for inception) weights. opt names the
 * option in messages ("--features"). Returns 0 or -2. */
int extractor_parse(extractor_t *ex, const char *f, const char *opt);

/* Set up the extractor for images of shape s (the first image set; later sets must have the
 * same shape unless the features are Inception's, which resizes). set_name prefixes the
 * messages. Returns 0, -1 or -2. */
int extractor_setup(extractor_t *ex, shape3_t s, const char *set_name);

/* Features (B, d) of images x (B, C, H, W) in [-1, 1] (host memory); the result is host
 * memory owned by ex (or is x). Returns NULL with a message on failure. */
const float *extractor_run(extractor_t *ex, const float *x, int B, shape3_t s);

void extractor_free(extractor_t *ex);

/* n values of images (dtype dt: uint8, float32 or float64; img values per image, the first
 * being image number `first`) to float in [-1, 1] into x: uint8 as pytorch-fid reads it
 * (u / 255 in float32, then 2x - 1), floats as they are. *outside counts float values outside
 * [-1, 1]. NaN or infinity is an error naming the image (name prefixes it). Returns 0 or -1. */
int features_unit_range(float *x, const void *raw, dtype_t dt, size_t n, int64_t first, size_t img,
                        const char *name, int64_t *outside);

/* Statistics from a .npz at path (ours or pytorch-fid's: mu, sigma, optional n and features)
 * into st (to free with fid_stats_free) and the features' name into feat (NAME_LEN bytes; ""
 * when the file does not say). name prefixes the messages. Returns 0 or -1. */
int features_load_stats(const char *path, const char *name, fid_stats_t *st, char *feat);

#endif
