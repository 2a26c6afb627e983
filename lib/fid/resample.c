/* resample.c: PIL's anti-aliased bicubic resize of one float plane (resample.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/common.h"
#include "resample.h"

/* Keys' cubic with a = -0.5, as Pillow's bicubic_filter */
static double cubic(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/* For `out` samples from `in`: bounds[2o] = first tap, bounds[2o + 1] = tap count, and the
 * normalised weights kk[o * ksize + t]; returns ksize (taps per output at most). */
static int coeffs(int in, int out, int **bounds, double **kk) {
    double scale = (double)in / out, fs = scale < 1.0 ? 1.0 : scale, support = 2.0 * fs;
    int ksize = (int)ceil(support) * 2 + 1;
    *bounds = gt_xmalloc(sizeof(int) * 2 * (size_t)out);
    *kk = gt_xcalloc((size_t)out * (size_t)ksize, sizeof(double));
    for (int o = 0; o < out; o++) {
        double c = (o + 0.5) * scale, ss = 1.0 / fs, ww = 0;
        int lo = (int)(c - support + 0.5), hi = (int)(c + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in) hi = in;
        hi -= lo;
        double *k = *kk + (size_t)o * (size_t)ksize;
        for (int t = 0; t < hi; t++) ww += k[t] = cubic((t + lo - c + 0.5) * ss);
        for (int t = 0; t < hi; t++)
            if (ww != 0.0) k[t] /= ww;
        (*bounds)[2 * o] = lo;
        (*bounds)[2 * o + 1] = hi;
    }
    return ksize;
}

void resample_bicubic_aa(float *dst, int oh, int ow, const float *src, int h, int w, float *tmp) {
    const float *rows = src; /* after the horizontal pass: (h, ow) */
    if (ow != w) {
        int *b;
        double *kk;
        int ks = coeffs(w, ow, &b, &kk);
        float *out = oh != h ? tmp : dst;
        for (int y = 0; y < h; y++)
            for (int o = 0; o < ow; o++) {
                const double *k = kk + (size_t)o * (size_t)ks;
                const float *p = src + (size_t)y * (size_t)w + b[2 * o];
                double s = 0;
                for (int t = 0; t < b[2 * o + 1]; t++) s += p[t] * k[t];
                out[(size_t)y * (size_t)ow + (size_t)o] = (float)s;
            }
        free(b);
        free(kk);
        rows = out;
    }
    if (oh != h) {
        int *b;
        double *kk;
        int ks = coeffs(h, oh, &b, &kk);
        for (int o = 0; o < oh; o++) {
            const double *k = kk + (size_t)o * (size_t)ks;
            for (int x = 0; x < ow; x++) {
                double s = 0;
                for (int t = 0; t < b[2 * o + 1]; t++) s += rows[(size_t)(b[2 * o] + t) * (size_t)ow + (size_t)x] * k[t];
                dst[(size_t)o * (size_t)ow + (size_t)x] = (float)s;
            }
        }
        free(b);
        free(kk);
    } else if (ow == w) {
        memcpy(dst, src, sizeof(float) * (size_t)h * (size_t)w);
    }
}
