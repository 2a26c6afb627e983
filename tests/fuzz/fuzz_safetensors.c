/* fuzz_safetensors.c: libFuzzer target for the safetensors parser (st_parse). Any input
 * must give a valid file description or -1 with a message; never a crash, a leak or
 * undefined behaviour. Valid inputs are written back with the writer and must parse to
 * the same tensors and metadata. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/safetensors.h"
#include "lib/base/common.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    st_file_t f;
    if (st_parse(data, size, &f) != 0) {
        if (gt_errmsg()[0] == 0) abort();
        return 0;
    }
    st_writer_t *w = st_writer_new();
    for (int i = 0; i < f.n_meta; i++)
        if (st_writer_meta(w, f.meta[i].key, f.meta[i].value)) abort();
    for (int i = 0; i < f.n; i++) {
        const st_entry_t *e = &f.entries[i];
        if (e->end - e->begin != tensor_nbytes(&e->t)) abort();
        if (st_writer_add(w, e->name, &e->t)) abort();
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (!out || st_writer_write(w, out)) abort();
    fclose(out);
    st_file_t g;
    if (st_parse(buf, len, &g) != 0 || g.n != f.n || g.n_meta != f.n_meta) abort();
    for (int i = 0; i < f.n; i++) {
        const st_entry_t *a = &f.entries[i], *b = &g.entries[i];
        if (strcmp(a->name, b->name) || a->t.dtype != b->t.dtype || a->t.ndim != b->t.ndim ||
            memcmp(a->t.data, b->t.data, tensor_nbytes(&a->t)))
            abort();
    }
    for (int i = 0; i < f.n_meta; i++)
        if (strcmp(st_meta_get(&g, f.meta[i].key), f.meta[i].value)) abort();
    st_free(&g);
    st_free(&f);
    st_writer_free(w);
    free(buf);
    return 0;
}
