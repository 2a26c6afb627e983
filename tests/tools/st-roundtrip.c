/* st-roundtrip: loads a safetensors file with the library's reader and writes it back with
 * its writer (metadata, then the tensors in header order), for tests/ref/test_npy_numpy.py.
 *
 *   st-roundtrip IN OUT        IN and OUT may be '-' (stdin, stdout)
 *
 * Also prints, on stderr, one line per tensor "name dtype ndim d0 d1 ... begin end", so a
 * test can see what the reader understood. Errors: one line, exit 1. */
#include <stdio.h>
#include <string.h>

#include "formats/safetensors.h"
#include "lib/base/common.h"

static int fail(void) {
    fprintf(stderr, "st-roundtrip: %s\n", gt_errmsg());
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: st-roundtrip IN OUT\n");
        return 2;
    }
    st_file_t sf;
    if (st_load(argv[1], &sf)) return fail();
    st_writer_t *w = st_writer_new();
    for (int i = 0; i < sf.n_meta; i++)
        if (st_writer_meta(w, sf.meta[i].key, sf.meta[i].value)) return fail();
    for (int i = 0; i < sf.n; i++) {
        const st_entry_t *e = &sf.entries[i];
        if (st_find(&sf, e->name) != e) {
            fprintf(stderr, "st-roundtrip: st_find('%s') is wrong\n", e->name);
            return 1;
        }
        fprintf(stderr, "%s %s %d", e->name, st_dtype_str(e->t.dtype), e->t.ndim);
        for (int d = 0; d < e->t.ndim; d++) fprintf(stderr, " %lld", (long long)e->t.shape[d]);
        fprintf(stderr, " %llu %llu\n", (unsigned long long)e->begin, (unsigned long long)e->end);
        if (st_writer_add(w, e->name, &e->t)) return fail();
    }
    FILE *f = strcmp(argv[2], "-") == 0 ? stdout : fopen(argv[2], "wb");
    if (!f) {
        perror(argv[2]);
        return 1;
    }
    if (st_writer_write(w, f)) return fail();
    if (fflush(f) || ferror(f) || (f != stdout && fclose(f))) {
        perror(argv[2]);
        return 1;
    }
    st_writer_free(w);
    st_free(&sf);
    return 0;
}
