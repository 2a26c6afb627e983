/* common.c: the per-thread error message, checked allocation and exact number text (see
 * common.h). */
/* clock_gettime under -std=c11 */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *gt_progname = "gan-tools";

static _Thread_local char err_buf[1024];

int gt_err(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    return -1;
}

int gt_err_prefix(const char *prefix) {
    char tmp[sizeof err_buf];
    /* a message that no longer fits is cut short: using snprintf's count says that is meant */
    if (snprintf(tmp, sizeof tmp, "%s: %s", prefix, err_buf) < 0) return -1;
    memcpy(err_buf, tmp, sizeof err_buf);
    return -1;
}

const char *gt_errmsg(void) { return err_buf; }

void (*gt_fatal_hook)(int code, const char *message);

void gt_fatal(int code, const char *fmt, ...) {
    char msg[512]; /* no allocation: this may be reporting that there is no memory left */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (gt_fatal_hook) gt_fatal_hook(code, msg);
    fprintf(stderr, "%s: %s\n", gt_progname, msg);
    exit(code);
}

static void oom(void) { gt_fatal(1, "out of memory"); }

void *gt_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) oom();
    return p;
}

void *gt_xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) oom();
    return p;
}

void *gt_xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) oom();
    return q;
}

char *gt_xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = gt_xmalloc(n);
    memcpy(p, s, n);
    return p;
}

void *gt_aligned_alloc(size_t n) {
    size_t rounded = (n + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p) oom();
    return p;
}

void gt_aligned_free(void *p) { free(p); }

void gt_format_exact(char *buf, size_t cap, double v, int min_prec, int as_float) {
    for (int prec = min_prec; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        double r = strtod(buf, NULL);
        if (as_float ? (float)r == (float)v : r == v) return;
    }
}

double gt_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
