/* cli.c: program conventions shared by every cmd/ main (see cli.h). */
/* _GNU_SOURCE: O_TMPFILE (Linux); without it outputs fall back to a named temporary */
#define _GNU_SOURCE
#include "cli.h"
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* "PATH.tmp.XXXXXX" for mkstemp (free it). */
static char *tmp_template(const char *path) {
    size_t n = strlen(path) + 16;
    char *t = gt_xmalloc(n);
    snprintf(t, n, "%s.tmp.XXXXXX", path);
    return t;
}

/* An unnamed file for writing PATH's contents, in PATH's directory (so that it can be linked
 * or renamed into place there): O_TMPFILE where the kernel and file system have it
 * (*linkable = 1), else a named temporary removed at once. Both vanish with the process, so
 * an output that is never committed leaves nothing behind, however the program ends.
 * Returns the descriptor (read-write), or -1 with errno. */
static int unnamed_open(const char *path, int *linkable) {
    *linkable = 0;
#ifdef O_TMPFILE
    const char *slash = strrchr(path, '/');
    char *dir = gt_xstrdup(slash ? path : ".");
    if (slash) dir[slash == path ? 1 : slash - path] = 0;
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0666); /* the mode fopen gives, less umask */
    free(dir);
    if (fd >= 0) {
        *linkable = 1;
        return fd;
    }
#endif
    char *t = tmp_template(path);
    int fd2 = mkstemp(t);
    if (fd2 >= 0) unlink(t);
    free(t);
    return fd2;
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
         * it would replace the device node. path is kept for messages, atomic stays 0. */
        o->path = gt_xstrdup(path);
        o->f = fopen(path, "wb");
        if (!o->f) die(EXIT_DATA, "%s: %s", path, strerror(errno));
        if (binary && isatty(fileno(o->f)))
            die_usage("%s: refusing to write binary data to a terminal", path);
    } else {
        /* the unnamed file is made now, so that a directory that is missing or not writable is
         * an error before the work; it gets its name only in out_commit */
        int fd = unnamed_open(path, &o->linkable);
        if (fd < 0) die(EXIT_DATA, "%s: cannot create: %s", path, strerror(errno));
        o->path = gt_xstrdup(path);
        o->atomic = 1;
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

void out_fail(out_t *o) {
    die(EXIT_DATA, "%s: %s", out_name(o), gt_errmsg());
}

/* Link the unnamed file fd into o's directory under a fresh temporary name (o->tmp): 0, or -1
 * when it cannot be linked (no /proc, a file system that refuses). */
static int link_unnamed(out_t *o, int fd) {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    for (int tries = 0; tries < 100; tries++) {
        /* mkstemp picks a name no one has; it is freed again for linkat, which will not
         * replace a file (EEXIST when someone took the name meanwhile: try another) */
        o->tmp = tmp_template(o->path);
        int t = mkstemp(o->tmp);
        if (t < 0) break;
        close(t);
        unlink(o->tmp);
        if (linkat(AT_FDCWD, proc, AT_FDCWD, o->tmp, AT_SYMLINK_FOLLOW) == 0) return 0;
        free(o->tmp);
        o->tmp = NULL;
        if (errno != EEXIST) break;
    }
    free(o->tmp);
    o->tmp = NULL;
    return -1;
}

/* Copy the unnamed file fd into a new named temporary beside the target (o->tmp), checked and
 * flushed to disk; dies (exit 1) on a failure, which removes the temporary. */
static void copy_unnamed(out_t *o, int fd) {
    o->tmp = tmp_template(o->path);
    int t = mkstemp(o->tmp);
    if (t < 0) {
        free(o->tmp);
        o->tmp = NULL;
        die(EXIT_DATA, "%s: cannot create: %s", o->path, strerror(errno));
    }
    /* mkstemp makes the file private (0600); give it the mode a plain fopen would */
    mode_t mask = umask(0);
    umask(mask);
    fchmod(t, 0666 & ~mask);
    unsigned char buf[1 << 16];
    off_t at = 0;
    for (;;) {
        ssize_t n = pread(fd, buf, sizeof buf, at);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) die(EXIT_DATA, "%s: cannot read back the output: %s", o->path, strerror(errno));
        if (n == 0) break;
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write(t, buf + done, (size_t)(n - done));
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) {
                int err = errno;
                close(t);
                write_failed(o, err);
            }
            done += w;
        }
        at += n;
    }
    if (fsync(t) != 0 && errno != EINVAL && errno != EROFS) {
        int err = errno;
        close(t);
        write_failed(o, err);
    }
    if (close(t) != 0) write_failed(o, errno);
}

void out_commit(out_t *o) {
    errno = 0;
    if (fflush(o->f) != 0 || ferror(o->f)) write_failed(o, errno ? errno : EIO);
    if (o->path) {
        if (fsync(fileno(o->f)) != 0 && errno != EINVAL && errno != EROFS) write_failed(o, errno);
        /* the finished file gets a temporary name beside the target, then the target's name */
        if (o->atomic && !(o->linkable && link_unnamed(o, fileno(o->f)) == 0)) copy_unnamed(o, fileno(o->f));
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
    if (o->atomic) {
        if (o->f) fclose(o->f);
        o->f = NULL;
        if (o->tmp) unlink(o->tmp);
        free(o->tmp);
        o->tmp = NULL;
        o->atomic = 0;
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

void progress_init(progress_t *p, int quiet) {
    p->quiet = quiet;
    p->tty = isatty(STDERR_FILENO);
    p->t_start = p->t_last = gt_seconds();
}

static double progress_interval(const progress_t *p) { return p->tty ? 0.2 : 5.0; }

int progress_due(const progress_t *p) { return !p->quiet && gt_seconds() - p->t_last >= progress_interval(p); }

void progress_update(progress_t *p, int force, const char *fmt, ...) {
    if (p->quiet) return;
    double t = gt_seconds();
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
