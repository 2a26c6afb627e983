/* cli.c: program conventions shared by every cmd/ main (see cli.h). */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "common.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_OUTPUTS 16
static out_t *open_outputs[MAX_OUTPUTS];

static void forget_output(out_t *o) {
    for (int i = 0; i < MAX_OUTPUTS; i++)
        if (open_outputs[i] == o) open_outputs[i] = NULL;
}

static void abort_all_outputs(void) {
    for (int i = 0; i < MAX_OUTPUTS; i++)
        if (open_outputs[i]) out_abort(open_outputs[i]);
}

static int cli_rank = -1;
static void (*cli_abort_run)(int code);

void cli_set_rank(int rank, void (*abort_run)(int code)) {
    cli_rank = rank;
    cli_abort_run = abort_run;
}

static void prefix(void) {
    if (cli_rank >= 0) fprintf(stderr, "%s: rank %d: ", gt_progname, cli_rank);
    else fprintf(stderr, "%s: ", gt_progname);
}

static _Noreturn void finish(int code) {
    abort_all_outputs();
    if (cli_abort_run) {
        fflush(stderr);
        cli_abort_run(code);
    }
    exit(code);
}

static void fatal_via_die(int code, const char *message) { die(code, "%s", message); }

void cli_init(const char *progname) {
    gt_progname = progname;
    gt_fatal_hook = fatal_via_die;
    signal(SIGPIPE, SIG_DFL);
}

static void vmsg(const char *fmt, va_list ap) {
    prefix();
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void die(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
    finish(code);
}

void die_lib(int code) { die(code, "%s", gt_errmsg()); }

void die_usage(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    prefix();
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see %s --help)\n", gt_progname);
    va_end(ap);
    finish(EXIT_USAGE);
}

void warnx(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
}

long long cli_long(const char *opt, const char *s, long long lo, long long hi) {
    if (!s || !*s) die_usage("%s: missing value", opt);
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end || errno == ERANGE) die_usage("%s: '%s' is not an integer", opt, s);
    if (v < lo || v > hi) die_usage("%s: %lld is out of range [%lld, %lld]", opt, v, lo, hi);
    return v;
}

double cli_double(const char *opt, const char *s, double lo, double hi) {
    if (!s || !*s) die_usage("%s: missing value", opt);
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (*end || errno == ERANGE || !isfinite(v)) die_usage("%s: '%s' is not a number", opt, s);
    if (v < lo || v > hi) die_usage("%s: %g is out of range [%g, %g]", opt, v, lo, hi);
    return v;
}

double cli_range(const cli_range_t *r, const char *s) {
    if (r->integer) return (double)cli_long(r->option, s, (long long)r->lo, (long long)r->hi);
    return cli_double(r->option, s, r->lo, r->hi);
}

void cli_version(void) {
    printf("%s (gan-tools) %s\n", gt_progname, GT_VERSION);
    exit(0);
}

void out_open(out_t *o, const char *path, int binary) {
    struct stat st;
    memset(o, 0, sizeof *o);
    if (!path || strcmp(path, "-") == 0) {
        if (binary && isatty(STDOUT_FILENO))
            die_usage("refusing to write binary data to a terminal; redirect it to a file or a pipe, or use -o FILE");
        o->f = stdout;
    } else if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        /* a device or a FIFO (e.g. /dev/null): write to it directly; renaming a temporary over
         * it would replace the device node. path is kept for messages, tmp stays NULL. */
        o->path = gt_xstrdup(path);
        o->f = fopen(path, "wb");
        if (!o->f) die(EXIT_DATA, "%s: %s", path, strerror(errno));
        if (binary && isatty(fileno(o->f)))
            die_usage("%s: refusing to write binary data to a terminal", path);
    } else {
        size_t n = strlen(path) + 32;
        o->path = gt_xstrdup(path);
        o->tmp = gt_xmalloc(n);
        snprintf(o->tmp, n, "%s.tmp.XXXXXX", path);
        int fd = mkstemp(o->tmp);
        if (fd < 0) {
            free(o->tmp);
            o->tmp = NULL;
            die(EXIT_DATA, "%s: cannot create: %s", path, strerror(errno));
        }
        /* mkstemp makes the file private (0600); give it the mode a plain fopen would */
        mode_t mask = umask(0);
        umask(mask);
        fchmod(fd, 0666 & ~mask);
        o->f = fdopen(fd, "wb");
        if (!o->f) die(EXIT_DATA, "%s: %s", path, strerror(errno));
    }
    for (int i = 0; i < MAX_OUTPUTS; i++)
        if (!open_outputs[i]) {
            open_outputs[i] = o;
            break;
        }
}

static const char *out_name(const out_t *o) { return o->path ? o->path : "stdout"; }

static _Noreturn void write_failed(out_t *o, int err) {
    if (err == EPIPE) { /* reader went away: end quietly, as `| head` expects */
        abort_all_outputs();
        exit(141);
    }
    die(EXIT_DATA, "%s: write failed: %s", out_name(o), strerror(err));
}

void out_write(out_t *o, const void *p, size_t n) {
    if (n && fwrite(p, 1, n, o->f) != n) write_failed(o, errno ? errno : EIO);
}

void out_commit(out_t *o) {
    errno = 0;
    if (fflush(o->f) != 0 || ferror(o->f)) write_failed(o, errno ? errno : EIO);
    if (o->path) {
        if (fsync(fileno(o->f)) != 0 && errno != EINVAL && errno != EROFS) write_failed(o, errno);
        if (fclose(o->f) != 0) {
            o->f = NULL;
            write_failed(o, errno ? errno : EIO);
        }
        o->f = NULL;
        if (o->tmp && rename(o->tmp, o->path) != 0)
            die(EXIT_DATA, "%s: cannot rename into place: %s", o->path, strerror(errno));
        free(o->tmp);
        o->tmp = NULL;
        free(o->path);
        o->path = NULL;
    }
    forget_output(o);
}

void out_abort(out_t *o) {
    if (o->tmp) {
        if (o->f) fclose(o->f);
        o->f = NULL;
        unlink(o->tmp);
        free(o->tmp);
        o->tmp = NULL;
    }
    forget_output(o);
}

FILE *in_open(const char *path) {
    if (!path || strcmp(path, "-") == 0) return stdin;
    FILE *f = fopen(path, "rb");
    if (!f) die(EXIT_DATA, "%s: %s", path, strerror(errno));
    return f;
}

const char *in_name(const char *path) { return (!path || strcmp(path, "-") == 0) ? "stdin" : path; }

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void progress_init(progress_t *p, int quiet) {
    p->quiet = quiet;
    p->tty = isatty(STDERR_FILENO);
    p->t_start = p->t_last = now_seconds();
}

static double progress_interval(const progress_t *p) { return p->tty ? 0.2 : 5.0; }

int progress_due(const progress_t *p) { return !p->quiet && now_seconds() - p->t_last >= progress_interval(p); }

void progress_update(progress_t *p, int force, const char *fmt, ...) {
    if (p->quiet) return;
    double t = now_seconds();
    if (!force && t - p->t_last < progress_interval(p)) return;
    p->t_last = t;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, p->tty ? "\r%s: " : "%s: ", gt_progname);
    vfprintf(stderr, fmt, ap);
    fputs(p->tty ? "\033[K" : "\n", stderr);
    va_end(ap);
}

void progress_done(progress_t *p) {
    if (!p->quiet && p->tty) fputc('\n', stderr);
}
