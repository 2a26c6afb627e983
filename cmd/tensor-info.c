/* tensor-info: describe .npy and safetensors files: dtype, shape, size and statistics of
 * every tensor, and a safetensors file's metadata (manual: cmd/tensor-info.md).
 *
 * The format is detected from the first bytes. Statistics are computed in double over the
 * finite elements (NaN and Inf are counted apart): min, max, mean with a compensated sum,
 * population std by the corrected two-pass formula; uint8 data through a histogram. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "formats/bytesrc.h"
#include "formats/npy.h"
#include "formats/safetensors.h"
#include "lib/base/cli.h"
#include "lib/base/common.h"

static const char usage[] =
    "usage: tensor-info [--json] [--full] [FILE...]\n"
    "Describe .npy and safetensors files: format, dtype, shape, bytes, and the min, max,\n"
    "mean, population std and NaN/Inf counts of each tensor; a safetensors file's metadata.\n"
    "FILE '-' or no FILE reads standard input. The format is detected from the content.\n"
    "\n"
    "  --json      one JSON object per file, one per line (JSON Lines)\n"
    "  --full      do not shorten long metadata values in the text output\n"
    "  -h, --help  show this help and exit\n"
    "  --version   show the version and exit\n"
    "\n"
    "Statistics are over the finite elements; NaN and Inf are counted separately.\n"
    "Exit status: 0 if every file was read, 1 if any was not, 2 for bad usage.\n"
    "\n"
    "example: tensor-info train.npy model.st\n"
    "         gan-sample -n 16 < model.st | tensor-info --json\n";

typedef struct {
    int json, full;
} opts_t;

/* ---- statistics ------------------------------------------------------------------------- */

typedef struct {
    int64_t finite, nan, inf;
    double min, max, mean, std;
} stats_t;

/* Neumaier's compensated sum. */
typedef struct {
    double s, c;
} ksum_t;
static inline void ks_add(ksum_t *k, double x) {
    double t = k->s + x;
    if (fabs(k->s) >= fabs(x)) k->c += (k->s - t) + x;
    else k->c += (x - t) + k->s;
    k->s = t;
}
static inline double ks_get(const ksum_t *k) { return k->s + k->c; }

static void stats_u8(const uint8_t *d, int64_t n, stats_t *st) {
    uint64_t h[256] = {0};
    for (int64_t i = 0; i < n; i++) h[d[i]]++;
    uint64_t sum = 0;
    int lo = 256, hi = -1;
    for (int v = 0; v < 256; v++)
        if (h[v]) {
            sum += h[v] * (uint64_t)v;
            if (lo == 256) lo = v;
            hi = v;
        }
    st->finite = n;
    if (!n) return;
    st->min = lo;
    st->max = hi;
    st->mean = (double)sum / (double)n;
    ksum_t q = {0, 0};
    for (int v = 0; v < 256; v++)
        if (h[v]) ks_add(&q, (double)h[v] * (v - st->mean) * (v - st->mean));
    st->std = sqrt(ks_get(&q) / (double)n);
}

static void stats_of(const tensor_t *t, stats_t *st) {
    int64_t n = tensor_numel(t);
    memset(st, 0, sizeof *st);
    st->min = st->max = st->mean = st->std = NAN;
    if (t->dtype == DT_U8) {
        stats_u8(t->data, n, st);
        return;
    }
    ksum_t s = {0, 0};
    double lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        double x = tensor_get(t, i);
        if (isnan(x)) st->nan++;
        else if (isinf(x)) st->inf++;
        else {
            st->finite++;
            if (x < lo) lo = x;
            if (x > hi) hi = x;
            ks_add(&s, x);
        }
    }
    if (!st->finite) return;
    double mean = ks_get(&s) / (double)st->finite;
    ksum_t q = {0, 0}, r = {0, 0};
    for (int64_t i = 0; i < n; i++) {
        double x = tensor_get(t, i);
        if (isfinite(x)) {
            ks_add(&q, (x - mean) * (x - mean));
            ks_add(&r, x - mean);
        }
    }
    double dev = ks_get(&r), var = (ks_get(&q) - dev * dev / (double)st->finite) / (double)st->finite;
    st->min = lo;
    st->max = hi;
    st->mean = mean + dev / (double)st->finite;
    st->std = sqrt(var > 0 ? var : 0);
}

/* ---- output helpers --------------------------------------------------------------------- */

static void fmt_num(char *b, size_t n, double v, int prec) {
    if (isnan(v)) snprintf(b, n, "-");
    else snprintf(b, n, "%.*g", prec, v);
}

static void json_stats(cJSON *o, const stats_t *st) {
    const char *k[4] = {"min", "max", "mean", "std"};
    double v[4] = {st->min, st->max, st->mean, st->std};
    for (int i = 0; i < 4; i++) {
        if (st->finite) cJSON_AddNumberToObject(o, k[i], v[i]);
        else cJSON_AddNullToObject(o, k[i]);
    }
    cJSON_AddNumberToObject(o, "nan", (double)st->nan);
    cJSON_AddNumberToObject(o, "inf", (double)st->inf);
}

static cJSON *json_shape(const tensor_t *t) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < t->ndim; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber((double)t->shape[i]));
    return a;
}

static void json_print(cJSON *o) {
    char *s = cJSON_PrintUnformatted(o);
    if (!s) die(EXIT_DATA, "out of memory");
    puts(s);
    free(s);
    cJSON_Delete(o);
}

static const char *npy_descr(dtype_t dt) {
    return dt == DT_F32 ? "<f4" : dt == DT_F64 ? "<f8" : dt == DT_U8 ? "|u1" : "<i8";
}

/* ---- npy -------------------------------------------------------------------------------- */

static void show_npy(const char *name, int version, const tensor_t *t, const opts_t *o) {
    stats_t st;
    char shape[160];
    stats_of(t, &st);
    tensor_shape_str(t, shape, sizeof shape);
    if (o->json) {
        cJSON *j = cJSON_CreateObject();
        char ver[8];
        snprintf(ver, sizeof ver, "%d.0", version);
        cJSON_AddStringToObject(j, "file", name);
        cJSON_AddStringToObject(j, "format", "npy");
        cJSON_AddStringToObject(j, "version", ver);
        cJSON_AddStringToObject(j, "dtype", dtype_name(t->dtype));
        cJSON_AddStringToObject(j, "descr", npy_descr(t->dtype));
        cJSON_AddItemToObject(j, "shape", json_shape(t));
        cJSON_AddNumberToObject(j, "numel", (double)tensor_numel(t));
        cJSON_AddNumberToObject(j, "bytes", (double)tensor_nbytes(t));
        json_stats(j, &st);
        json_print(j);
        return;
    }
    char mn[32], mx[32], me[32], sd[32];
    fmt_num(mn, sizeof mn, st.min, 9);
    fmt_num(mx, sizeof mx, st.max, 9);
    fmt_num(me, sizeof me, st.mean, 9);
    fmt_num(sd, sizeof sd, st.std, 9);
    printf("file    %s\n", name);
    printf("format  npy %d.0\n", version);
    printf("dtype   %s (%s)\n", dtype_name(t->dtype), npy_descr(t->dtype));
    printf("shape   %s (%lld elements)\n", shape, (long long)tensor_numel(t));
    printf("bytes   %zu\n", tensor_nbytes(t));
    printf("min     %s\nmax     %s\nmean    %s\nstd     %s\n", mn, mx, me, sd);
    printf("nan     %lld\ninf     %lld\n", (long long)st.nan, (long long)st.inf);
}

/* ---- safetensors ------------------------------------------------------------------------ */

/* A metadata key or value for the text output: control characters escaped, at most ~60
 * columns (cut at a character boundary) unless full. Prints to OUT (nothing when OUT is
 * NULL) and returns the columns it takes. */
static size_t meta_text(const char *v, int full, FILE *out) {
    size_t len = strlen(v), shown = 0, limit = 60, chars = 0;
    for (const char *p = v; *p; p++) chars += ((unsigned char)*p & 0xc0) != 0x80;
    if (full) {
        for (const char *p = v; out && *p; p++) {
            fputc(*p, out);
            if (*p == '\n' && p[1]) fputs("      ", out);
        }
        return chars;
    }
    char esc[8];
    size_t i = 0;
    for (; i < len && shown < limit; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == '\n') snprintf(esc, sizeof esc, "\\n");
        else if (c == '\t') snprintf(esc, sizeof esc, "\\t");
        else if (c < 0x20) snprintf(esc, sizeof esc, "\\x%02x", c);
        else esc[0] = (char)c, esc[1] = 0;
        if (out) fputs(esc, out);
        shown += c < 0x20 ? strlen(esc) : (c & 0xc0) != 0x80;
    }
    while (i < len && ((unsigned char)v[i] & 0xc0) == 0x80) {
        if (out) fputc(v[i], out);
        i++;
    }
    if (i < len && out) fprintf(out, "... (%zu characters; --full shows all)", chars);
    return shown;
}

typedef struct {
    char *cell[9];
} row_t;

static void show_st(const char *name, const st_file_t *f, const opts_t *o) {
    stats_t *st = gt_xcalloc((size_t)f->n + 1, sizeof *st);
    for (int i = 0; i < f->n; i++) stats_of(&f->entries[i].t, &st[i]);
    if (o->json) {
        cJSON *j = cJSON_CreateObject(), *meta = cJSON_CreateObject(), *ts = cJSON_CreateArray();
        cJSON_AddStringToObject(j, "file", name);
        cJSON_AddStringToObject(j, "format", "safetensors");
        cJSON_AddNumberToObject(j, "header_bytes", (double)st_header_len(f));
        cJSON_AddNumberToObject(j, "data_bytes", (double)st_data_len(f));
        for (int i = 0; i < f->n_meta; i++) cJSON_AddStringToObject(meta, f->meta[i].key, f->meta[i].value);
        cJSON_AddItemToObject(j, "metadata", meta);
        for (int i = 0; i < f->n; i++) {
            const st_entry_t *e = &f->entries[i];
            cJSON *t = cJSON_CreateObject(), *off = cJSON_CreateArray();
            cJSON_AddStringToObject(t, "name", e->name);
            cJSON_AddStringToObject(t, "dtype", dtype_name(e->t.dtype));
            cJSON_AddStringToObject(t, "st_dtype", st_dtype_str(e->t.dtype));
            cJSON_AddItemToObject(t, "shape", json_shape(&e->t));
            cJSON_AddNumberToObject(t, "numel", (double)tensor_numel(&e->t));
            cJSON_AddNumberToObject(t, "bytes", (double)tensor_nbytes(&e->t));
            cJSON_AddItemToArray(off, cJSON_CreateNumber((double)e->begin));
            cJSON_AddItemToArray(off, cJSON_CreateNumber((double)e->end));
            cJSON_AddItemToObject(t, "data_offsets", off);
            json_stats(t, &st[i]);
            cJSON_AddItemToArray(ts, t);
        }
        cJSON_AddItemToObject(j, "tensors", ts);
        json_print(j);
        free(st);
        return;
    }
    printf("file      %s\n", name);
    printf("format    safetensors\n");
    printf("tensors   %d (%llu bytes of data, %llu of header)\n", f->n, (unsigned long long)st_data_len(f),
           (unsigned long long)st_header_len(f));
    printf("metadata  %d key%s\n", f->n_meta, f->n_meta == 1 ? "" : "s");
    size_t kw = 0;
    for (int i = 0; i < f->n_meta; i++) {
        size_t k = meta_text(f->meta[i].key, 0, NULL);
        if (k > kw) kw = k;
    }
    if (kw > 24) kw = 24;
    for (int i = 0; i < f->n_meta; i++) {
        fputs("  ", stdout);
        for (size_t k = meta_text(f->meta[i].key, 0, stdout); k < kw; k++) putchar(' ');
        fputs(" = ", stdout);
        meta_text(f->meta[i].value, o->full, stdout);
        putchar('\n');
    }
    if (!f->n) {
        free(st);
        return;
    }
    /* The table: cells as strings, then columns padded to their widest cell. */
    enum { NC = 9 };
    static const char *head[NC] = {"name", "dtype", "shape", "min", "max", "mean", "std", "nan", "inf"};
    row_t *rows = gt_xcalloc((size_t)f->n, sizeof *rows);
    size_t w[NC];
    for (int c = 0; c < NC; c++) w[c] = strlen(head[c]);
    for (int i = 0; i < f->n; i++) {
        const st_entry_t *e = &f->entries[i];
        char b[NC][160];
        snprintf(b[0], sizeof b[0], "%s", e->name);
        snprintf(b[1], sizeof b[1], "%s", dtype_name(e->t.dtype));
        tensor_shape_str(&e->t, b[2], sizeof b[2]);
        fmt_num(b[3], sizeof b[3], st[i].min, 6);
        fmt_num(b[4], sizeof b[4], st[i].max, 6);
        fmt_num(b[5], sizeof b[5], st[i].mean, 6);
        fmt_num(b[6], sizeof b[6], st[i].std, 6);
        snprintf(b[7], sizeof b[7], "%lld", (long long)st[i].nan);
        snprintf(b[8], sizeof b[8], "%lld", (long long)st[i].inf);
        for (int c = 0; c < NC; c++) {
            rows[i].cell[c] = gt_xstrdup(c == 0 ? e->name : b[c]);
            if (strlen(rows[i].cell[c]) > w[c]) w[c] = strlen(rows[i].cell[c]);
        }
    }
    putchar('\n');
    for (int r = -1; r < f->n; r++) {
        for (int c = 0; c < NC; c++) {
            const char *s = r < 0 ? head[c] : rows[r].cell[c];
            int left = c < 3;
            if (c) fputs("  ", stdout);
            printf(left ? "%-*s" : "%*s", (int)w[c], s);
        }
        putchar('\n');
    }
    for (int i = 0; i < f->n; i++)
        for (int c = 0; c < NC; c++) free(rows[i].cell[c]);
    free(rows);
    free(st);
}

/* ---- one input ------------------------------------------------------------------------- */

enum { FMT_NPY, FMT_ST, FMT_NONE };

static int detect(const unsigned char *b, size_t n) {
    if (n >= 6 ? memcmp(b, "\x93NUMPY", 6) == 0 : (n > 0 && memcmp(b, "\x93NUMPY", n) == 0)) return FMT_NPY;
    if (n >= 9 && b[8] == '{') return FMT_ST;
    if (n > 0 && n < 9) return FMT_ST; /* too short for either: let the reader say so */
    return FMT_NONE;
}

/* A reader's message: npy_load and st_load name the file themselves, the parsers do not. */
static void report(int named, const char *name) {
    if (named) warnx("%s", gt_errmsg());
    else warnx("%s: %s", name, gt_errmsg());
}

/* Describe one input; 0 or -1 (message already printed). */
static int describe(const char *path, const opts_t *o) {
    int is_stdin = !path || strcmp(path, "-") == 0;
    const char *name = in_name(path);
    struct stat sb;
    int regular = !is_stdin && stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
    unsigned char *buf = NULL, head[9];
    size_t len = 0;
    wholefile_t whole = {0};
    int fmt, rc;
    if (regular) {
        FILE *f = fopen(path, "rb");
        if (!f) {
            warnx("%s: cannot open: %s", name, strerror(errno));
            return -1;
        }
        len = fread(head, 1, sizeof head, f);
        fclose(f);
        buf = head;
    } else if (!is_stdin && stat(path, &sb) != 0) {
        warnx("%s: %s", name, strerror(errno));
        return -1;
    } else if (!is_stdin && S_ISDIR(sb.st_mode)) {
        warnx("%s: is a directory", name);
        return -1;
    } else { /* a pipe or stdin: read it whole, as the formats' readers do */
        if (wholefile_load(path, &whole)) {
            warnx("%s: cannot read: %s", name, gt_errmsg());
            return -1;
        }
        buf = whole.p;
        len = whole.len;
    }
    if (len == 0) {
        warnx("%s: empty file", name);
        wholefile_free(&whole);
        return -1;
    }
    fmt = detect(buf, len);
    int version = len > 6 ? buf[6] : 1;
    if (fmt == FMT_NONE) {
        warnx("%s: not a .npy or safetensors file", name);
        rc = -1;
    } else if (fmt == FMT_NPY) {
        tensor_t t;
        rc = regular ? npy_load(path, &t, 0) : npy_parse(buf, len, &t);
        if (rc) report(regular, name);
        else show_npy(name, version, &t, o);
        if (!rc) tensor_free(&t);
    } else {
        st_file_t sf;
        rc = regular ? st_load(path, &sf) : st_parse(buf, len, &sf);
        if (rc) report(regular, name);
        else show_st(name, &sf, o);
        if (!rc) st_free(&sf);
    }
    wholefile_free(&whole);
    return rc;
}

int main(int argc, char **argv) {
    cli_init("tensor-info");
    opts_t o = {0, 0};
    const char **files = gt_xcalloc((size_t)argc + 1, sizeof *files);
    int nf = 0, opts_done = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (opts_done || a[0] != '-' || strcmp(a, "-") == 0) files[nf++] = a;
        else if (strcmp(a, "--") == 0) opts_done = 1;
        else if (strcmp(a, "--json") == 0) o.json = 1;
        else if (strcmp(a, "--full") == 0) o.full = 1;
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0) cli_version();
        else die_usage("unknown option '%s'", a);
    }
    if (nf == 0) {
        if (isatty(STDIN_FILENO)) die_usage("no input: name a FILE or pipe a tensor in");
        files[nf++] = "-";
    }
    int bad = 0, shown = 0;
    for (int i = 0; i < nf; i++) {
        if (shown && !o.json) {
            putchar('\n');
            shown = 0;
        }
        if (describe(files[i], &o)) bad = 1;
        else shown = 1;
        fflush(stdout);
    }
    free(files);
    if (fflush(stdout) || ferror(stdout)) die(EXIT_DATA, "stdout: write failed");
    return bad ? EXIT_DATA : 0;
}
