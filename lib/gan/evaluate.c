/* evaluate.c: a generator's score against a reference set during training (evaluate.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/npy.h"
#include "lib/base/common.h"
#include "evaluate.h"

int gan_eval_metric_parse(const char *s, eval_metric_t *metric) {
    if (strcmp(s, "fd") == 0) *metric = EVAL_FD;
    else if (strcmp(s, "kid") == 0) *metric = EVAL_KID;
    else return gt_err("'%s': choose fd (the Frechet distance) or kid", s);
    return 0;
}

const char *gan_eval_metric_name(eval_metric_t metric) { return metric == EVAL_KID ? "kid" : "fd"; }

/* The reference's features (images through the extractor, or feature rows) into its statistics
 * (fd) or kept (kid). */
static int ref_from_npy(gan_eval_t *e, const char *path) {
    extractor_t *ex = &e->ex;
    tensor_t t;
    if (npy_load(path, &t, 0)) return -1;
    int rc = -1, d = ex->d;
    int64_t N = t.ndim >= 1 ? t.shape[0] : 0;
    float *x = NULL;
    shape3_t s3 = ex->shape;
    if (t.ndim == 4) {
        shape3_t s = {(int)t.shape[1], (int)t.shape[2], (int)t.shape[3]};
        s3 = s;
        if (t.dtype != DT_U8 && t.dtype != DT_F32 && t.dtype != DT_F64) {
            gt_err("%s: %s images: expected uint8 or float", path, dtype_name(t.dtype));
            goto out;
        }
        if (t.shape[1] != e->ex.shape.c || t.shape[2] != e->ex.shape.h || t.shape[3] != e->ex.shape.w) {
            if ((rc = extractor_setup(ex, s, path))) goto out; /* says why the shapes must agree, or agrees */
            rc = -1;
        }
    } else if (t.ndim == 2) {
        if (t.dtype != DT_F32 && t.dtype != DT_F64) {
            gt_err("%s: %s features: expected float32 or float64", path, dtype_name(t.dtype));
            goto out;
        }
        if (t.shape[1] != d) {
            gt_err("%s has %lld features per row but --eval-features %s gives %d", path, (long long)t.shape[1],
                   ex->name, d);
            goto out;
        }
    } else {
        gt_err("%s: expected images (N x C x H x W), features (N x D) or a .npz of statistics", path);
        goto out;
    }
    if (N < 2) {
        gt_err("%s: %lld rows: a reference needs at least 2", path, (long long)N);
        goto out;
    }
    size_t img = t.ndim == 4 ? (size_t)(t.shape[1] * t.shape[2] * t.shape[3]) : (size_t)d;
    if (e->metric == EVAL_KID) {
        e->ref_feats = gt_xmalloc(sizeof(float) * (size_t)N * (size_t)d);
        e->ref_n = N;
    } else if (fid_stats_init(&e->ref, d, 0)) {
        goto out;
    }
    int B = ex->batch;
    x = gt_xmalloc(sizeof(float) * img * (size_t)B);
    for (int64_t i0 = 0; i0 < N; i0 += B) {
        int b = (int)(N - i0 < B ? N - i0 : B);
        const char *raw = (const char *)t.data + (size_t)i0 * img * dtype_size(t.dtype);
        const float *f;
        if (t.ndim == 4) {
            int64_t outside;
            if (features_unit_range(x, raw, t.dtype, img * (size_t)b, i0, img, path, &outside)) goto out;
            if (!(f = extractor_run(ex, x, b, s3))) goto out;
        } else {
            for (size_t k = 0; k < img * (size_t)b; k++)
                x[k] = t.dtype == DT_F32 ? ((const float *)raw)[k] : (float)((const double *)raw)[k];
            f = x;
        }
        if (e->metric == EVAL_KID)
            memcpy(e->ref_feats + (size_t)i0 * (size_t)d, f, sizeof(float) * (size_t)b * (size_t)d);
        else if (t.ndim == 2 && t.dtype == DT_F64 ? fid_stats_add_f64(&e->ref, (const double *)raw, b)
                                                  : fid_stats_add(&e->ref, f, b))
            goto out;
    }
    if (e->metric == EVAL_FD && fid_stats_finish(&e->ref)) goto out;
    rc = 0;
out:
    if (rc) gt_err_prefix("--eval-ref");
    free(x);
    tensor_free(&t);
    return rc;
}

int gan_eval_init(gan_eval_t *e, gan_model_t *m, const char *features, const char *weights, int clean,
                  eval_metric_t metric, int64_t n, const char *ref_path, int threads) {
    memset(e, 0, sizeof *e);
    e->metric = metric;
    e->n = n;
    e->threads = threads;
    int batch = n < m->G.max_batch ? (int)n : m->G.max_batch, rc;
    extractor_t *ex = &e->ex;
    ex->be = m->be;
    ex->batch = batch;
    ex->quiet = 1;
    ex->weights = weights;
    ex->weights_opt = "--eval-weights";
    if ((rc = extractor_parse(ex, features, "--eval-features"))) return rc; /* the message names the option */
    if (clean && ex->kind != FEAT_INCEPTION) {
        gan_eval_free(e);
        return gt_err("--eval-resize clean is how Inception resizes images; --eval-features %s takes the images as "
                      "they are",
                      features),
               -2;
    }
    ex->clean = clean;
    if ((rc = extractor_setup(ex, m->shape, "the generator's images"))) {
        if (strncmp(gt_errmsg(), "--eval-features", 15) != 0) gt_err_prefix("--eval-features");
        goto fail;
    }
    rc = -1;
    /* the reference: a statistics file (.npz, a ZIP) or a .npy, told by its first byte */
    FILE *f = fopen(ref_path, "rb");
    if (!f) {
        gt_err("--eval-ref %s: %s", ref_path, strerror(errno));
        goto fail;
    }
    int c = getc(f);
    fclose(f);
    if (c == 'P') {
        if (metric == EVAL_KID) {
            gt_err("--eval-ref %s holds statistics; KID needs the reference's images or features (or use "
                   "--eval-metric fd)",
                   ref_path);
            goto fail;
        }
        char feat[NAME_LEN];
        if (features_load_stats(ref_path, ref_path, &e->ref, feat)) {
            gt_err_prefix("--eval-ref");
            goto fail;
        }
        if (e->ref.d != ex->d) {
            gt_err("--eval-ref %s has %d features but --eval-features %s gives %d: make the statistics in the same "
                   "features (gan-fid --features %s --save-stats)",
                   ref_path, e->ref.d, features, ex->d, features);
            goto fail;
        }
        if (feat[0] && strcmp(feat, ex->name) != 0) {
            gt_err("--eval-ref %s holds %s features but --eval-features %s gives %s features", ref_path, feat,
                   features, ex->name);
            goto fail;
        }
    } else if (c == 0x93) {
        if (ref_from_npy(e, ref_path)) goto fail;
    } else {
        gt_err("--eval-ref %s: neither a .npz statistics file nor a .npy array", ref_path);
        goto fail;
    }
    sampler_conf_t sc;
    sampler_conf_default(&sc);
    sc.n = n;
    sc.batch = batch;
    if (sampler_init(&e->smp, m, &sc)) goto fail;
    e->x = gt_xmalloc(sizeof(float) * (size_t)shape3_size(m->shape) * (size_t)batch);
    if (metric == EVAL_KID) e->feats = gt_xmalloc(sizeof(float) * (size_t)n * (size_t)ex->d);
    const char *kind = metric == EVAL_KID ? "K" : "F";
    if (ex->label[0]) snprintf(e->label, sizeof e->label, "%sD%s", kind, ex->label + 2);
    else if (strcmp(ex->name, "inception") == 0) snprintf(e->label, sizeof e->label, "%sID", kind);
    else if (strcmp(ex->name, "inception-clean") == 0) snprintf(e->label, sizeof e->label, "%sID(clean)", kind);
    else snprintf(e->label, sizeof e->label, "%sD(%s)", kind, ex->name);
    return 0;
fail:
    gan_eval_free(e);
    return rc;
}

int gan_eval_score(gan_eval_t *e, double *score) {
    extractor_t *ex = &e->ex;
    sampler_t *s = &e->smp;
    fid_stats_t st;
    int d = ex->d, rc = -1;
    if (sampler_seek(s, 0)) return -1;
    if (e->metric == EVAL_FD && fid_stats_init(&st, d, 0)) return -1;
    for (int64_t i0 = 0; i0 < e->n; i0 += s->c.batch) {
        int b = (int)(e->n - i0 < s->c.batch ? e->n - i0 : s->c.batch);
        if (sampler_next(s, b, e->x, NULL, NULL)) goto out;
        const float *f = extractor_run(ex, e->x, b, ex->shape);
        if (!f) goto out;
        if (e->metric == EVAL_KID) memcpy(e->feats + (size_t)i0 * (size_t)d, f, sizeof(float) * (size_t)b * (size_t)d);
        else if (fid_stats_add(&st, f, b)) goto out;
    }
    if (e->metric == EVAL_KID) {
        double sd;
        int m = KID_SUBSET_SIZE;
        rc = fid_kid(e->ref_feats, e->ref_n, e->feats, e->n, d, KID_SUBSETS, m, 0, e->threads, score, &sd);
        return rc;
    }
    double offset;
    if (fid_stats_finish(&st)) goto out;
    rc = fid_frechet(d, e->ref.mu, e->ref.sigma, st.mu, st.sigma, score, &offset);
out:
    if (e->metric == EVAL_FD) fid_stats_free(&st);
    return rc;
}

void gan_eval_free(gan_eval_t *e) {
    sampler_free(&e->smp);
    extractor_free(&e->ex);
    fid_stats_free(&e->ref);
    free(e->ref_feats);
    free(e->feats);
    free(e->x);
    memset(e, 0, sizeof *e);
}
