/* common.h: error reporting, checked allocation and small helpers shared by lib/, formats/ and cmd/.
 *
 * Convention: library functions return 0 on success or -1 on failure after
 * recording a one-line message with gt_err(); only a program's main prints and exits.
 * The message is per thread and says what is wrong (and, where it helps, what to do);
 * it does not start with the program name: cli.c adds that. */
#ifndef GT_COMMON_H
#define GT_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __GNUC__
#define GT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define GT_PRINTF(a, b)
#endif

/* Record a message (printf-style) for the caller; always returns -1 so that
 * `return gt_err("...")` reports and fails in one statement. */
int gt_err(const char *fmt, ...) GT_PRINTF(1, 2);
/* Prefix the current message with "PREFIX: " (e.g. a file name); returns -1. */
int gt_err_prefix(const char *prefix);
/* The last recorded message ("" if none). Valid until the next gt_err on this thread. */
const char *gt_errmsg(void);

/* Allocation that cannot fail silently: on exhaustion they print "out of memory" with the
 * program name and exit 1. Use for bounded, internal buffers; sizes that come from a file
 * must first be checked with gt_mul_overflow and friends. */
void *gt_xmalloc(size_t n);
void *gt_xcalloc(size_t n, size_t size);
void *gt_xrealloc(void *p, size_t n);
char *gt_xstrdup(const char *s);

/* Aligned (64-byte) allocation for float buffers; free with gt_aligned_free. Dies on OOM. */
void *gt_aligned_alloc(size_t n);
void gt_aligned_free(void *p);

/* Seconds since an arbitrary origin (the monotonic clock): for timing, never for results. */
double gt_seconds(void);

/* Overflow-checked size arithmetic: return 1 when the result does not fit. */
static inline int gt_mul_overflow(uint64_t a, uint64_t b, uint64_t *out) {
    if (a != 0 && b > UINT64_MAX / a) return 1;
    *out = a * b;
    return 0;
}
static inline int gt_add_overflow(uint64_t a, uint64_t b, uint64_t *out) {
    if (b > UINT64_MAX - a) return 1;
    *out = a + b;
    return 0;
}

/* v as the shortest "%.Pg" text, P from min_prec (1..17) up to 17, that strtod reads back as v
 * exactly, or with as_float as the same float ((float)v). Write into buf (cap >= 32 holds
 * any double). min_prec 1 gives the digits Python prints (in C's exponent form: 1e+01 for 10);
 * a larger min_prec keeps %g's plain notation for integers of up to min_prec digits (the
 * checkpoint's metadata uses 15, lib/gan/checkpoint.c). */
void gt_format_exact(char *buf, size_t cap, double v, int min_prec, int as_float);

/* Name used in messages: set once by cli_init (defaults to "gan-tools"). */
extern const char *gt_progname;

/* End the program on a failure found below the programs, where no error can be returned (out
 * of memory, a CUDA, cuBLAS or NCCL error): "PROG: message" on stderr and exit(code); once
 * cli_init has run, through the programs' die() instead (which removes unfinished outputs and,
 * in a distributed run, names the rank and ends every process: cli_set_rank). */
#ifdef __cplusplus
[[noreturn]]
#else
_Noreturn
#endif
void gt_fatal(int code, const char *fmt, ...) GT_PRINTF(2, 3);

/* Set by cli_init: how gt_fatal ends a program (must not return). */
extern void (*gt_fatal_hook)(int code, const char *message);

#ifdef __cplusplus
}
#endif

#endif
