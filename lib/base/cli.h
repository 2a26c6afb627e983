/* cli.h: what every program in cmd/ shares: the program name in messages, exits with the
 * documented codes, strict number parsing, and outputs that are never half written.
 *
 * Exit codes (ARCHITECTURE.md, "Principles"): 0 ok, 1 bad data or a failed run, 2 bad usage.
 * Output files: out_open() writes to an unnamed file in the target's directory, and
 * out_commit() gives it a temporary name beside the target and renames it into place after
 * every write and the close have been checked; on any failure the program calls out_abort()
 * (die() does so for every open output), so a failed run never leaves a partial file, and a
 * killed one (SIGKILL) leaves neither a partial file nor a temporary. Standard output is
 * checked the same way. */
#ifndef GT_CLI_H
#define GT_CLI_H

#include <stdio.h>
#include <stdint.h>

#define EXIT_DATA 1
#define EXIT_USAGE 2

/* Set the program name, restore default SIGPIPE (so `| head` ends quietly) and
 * register cleanup of open outputs. Call first in main. */
void cli_init(const char *progname);

/* One process of a distributed run (lib/base/dist.h): from now on messages read
 * "PROG: rank R: message", and die() calls abort_run(code) (which ends every process of the
 * run, e.g. MPI_Abort) instead of exit after removing this process's unfinished outputs. */
void cli_set_rank(int rank, void (*abort_run)(int code));

/* Print "PROG: message" to stderr, remove unfinished outputs, exit with code. */
_Noreturn void die(int code, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* die(code, "%s", gt_errmsg()): report the library's last message. */
_Noreturn void die_lib(int code);
/* A usage error: "PROG: message (see PROG --help)", exit 2. */
_Noreturn void die_usage(const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* Print "PROG: message" to stderr without exiting (warnings). */
void warnx(const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* Strict parsers for option values: the whole string must be a number within
 * [lo, hi]; otherwise a usage error naming the option is raised (exit 2). */
long long cli_long(const char *opt, const char *s, long long lo, long long hi);
double cli_double(const char *opt, const char *s, double lo, double hi);

/* An option whose value must be a number in [lo, hi] (an integer when `integer`), for a
 * library to declare a table of the ranges its settings take (lib/gan/settings.h) that the
 * programs and the library's own checks share. */
typedef struct {
    const char *option; /* as the programs spell it: "--n-critic" */
    const char *name;   /* as the library calls it (its field, a file's key): "n_critic" */
    double lo, hi;
    int integer;
} cli_range_t;
/* cli_long or cli_double with r's option and range: the value of s, or a usage error. */
double cli_range(const cli_range_t *r, const char *s);

/* Print "PROG VERSION" to stdout and exit 0. */
_Noreturn void cli_version(void);
#define GT_VERSION "0.1.0"

/* An output: a named file (written through an unnamed file, then a temporary beside it), a
 * device or FIFO (written directly), or stdout. */
typedef struct {
    FILE *f;
    char *path;   /* target path, NULL for stdout */
    char *tmp;    /* the temporary name while out_commit places the file, else NULL */
    int atomic;   /* f is an unnamed file that out_commit puts in place of path */
    int linkable; /* it is an O_TMPFILE, which can be linked into the directory (else
                     out_commit copies it into a new temporary) */
} out_t;

/* Open PATH for writing (NULL or "-" means stdout). With binary != 0, refuse to write
 * to a terminal ("redirect it to a file or a pipe"). Dies on failure (exit 1 or 2), e.g. when
 * PATH's directory is missing or not writable, so that a long run finds out first. */
void out_open(out_t *o, const char *path, int binary);
/* Flush, check and close, then give the file a temporary name beside the target and rename
 * it into place. Dies (exit 1) on a write error such as a
 * full disk, after removing the temporary. A closed pipe ends the program quietly. */
void out_commit(out_t *o);
/* Drop an unfinished output: close its unnamed file and remove any temporary name (no-op for
 * stdout, a device or a FIFO). Safe to call twice. */
void out_abort(out_t *o);
/* Checked fwrite to an output: dies (exit 1) with the target's name on failure. */
void out_write(out_t *o, const void *p, size_t n);
/* A library's writer (model_save, npy_write_header, ...) failed on o: die (exit 1) with
 * "PROG: NAME: " and the library's message, which says why ("write failed: No space left on
 * device"), after removing the unfinished output. */
_Noreturn void out_fail(out_t *o);

/* Open an input: NULL or "-" is stdin. Dies with "PROG: PATH: reason" (exit 1). */
FILE *in_open(const char *path);
/* A printable name for an input path ("stdin" for NULL or "-"). */
const char *in_name(const char *path);

/* Progress on stderr: a live line when stderr is a terminal, a plain line at most
 * every few seconds otherwise; nothing when quiet. */
typedef struct {
    int quiet, tty;
    double t_start, t_last;
} progress_t;
void progress_init(progress_t *p, int quiet);
/* Report; `force` prints regardless of the interval (use at the end). */
void progress_update(progress_t *p, int force, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Whether progress_update without force would print now (so that a caller can skip
 * gathering figures that would not be shown). */
int progress_due(const progress_t *p);
void progress_done(progress_t *p);

#endif
