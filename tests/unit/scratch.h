/* scratch.h: a scratch directory for unit tests that need files: created by scratch_open in
 * main before the tests run, removed with everything in it by scratch_close.
 *
 *   int main(void) { if (scratch_open("test_x")) return 1; RUN(...); scratch_close(); ... }
 *   write_file(tmp_path("a.bin"), bytes, n);   (tmp_path's buffer is reused by the next call) */
#ifndef GT_SCRATCH_H
#define GT_SCRATCH_H

#include <stdio.h>
#include <stdlib.h>

static char tmpdir[64];

/* mkdtemp /tmp/NAME.XXXXXX into tmpdir; 0 or -1 (with a TAP comment). */
static inline int scratch_open(const char *name) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/%s.XXXXXX", name);
    if (mkdtemp(tmpdir)) return 0;
    printf("# cannot make a scratch directory %s\n", tmpdir);
    return -1;
}

static inline void scratch_close(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) printf("# could not remove %s\n", tmpdir);
}

static inline char *tmp_path(const char *name) {
    static char buf[160];
    snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
    return buf;
}

static inline void write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (n) fwrite(p, 1, n, f);
    fclose(f);
}

#endif
