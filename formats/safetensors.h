/* safetensors.h: safetensors files (spec: formats/safetensors.md).
 *
 * Layout: 8 bytes little-endian N, N bytes of UTF-8 JSON (an object; may end in spaces),
 * then the data. Each JSON key other than "__metadata__" names a tensor:
 *   {"dtype": "F32"|"F64"|"U8"|"I64", "shape": [d0, ...], "data_offsets": [begin, end]}
 * with offsets relative to the start of the data; "__metadata__" maps strings to strings.
 *
 * Reading validates everything: the header lies within the file and is valid UTF-8 JSON,
 * names are unique, dtypes and shapes are supported, each tensor's byte range is numel *
 * dtype size, and the ranges, sorted, cover the data exactly (no overlap, no gap, no
 * trailing bytes). Other dtypes (F16, BF16, I32, ...) are refused with a message.
 *
 * Writing keeps the tensors in the order they were added in the JSON and lays their bytes
 * out largest element size first (stable), so that every tensor is aligned; the header is
 * padded with spaces to a multiple of 8 bytes, as the reference implementation does. */
#ifndef GT_SAFETENSORS_H
#define GT_SAFETENSORS_H

#include <stdio.h>
#include "lib/base/tensor.h"

typedef struct {
    char *name;
    tensor_t t;      /* data lies in the file's buffer, or in a private aligned copy when
                        the stored bytes were misaligned; st_free releases it (never call
                        tensor_free on it) */
    uint64_t begin;  /* byte range in the data section, as the file says */
    uint64_t end;
} st_entry_t;

typedef struct {
    char *key, *value;
} st_meta_t;

typedef struct {
    int n;               /* tensors, in the order of the JSON header */
    st_entry_t *entries;
    int n_meta;          /* __metadata__ pairs, in the order of the JSON header */
    st_meta_t *meta;
    /* private: the whole file, mapped or on the heap */
    void *buf;
    size_t len;
    int mapped;
} st_file_t;

/* Load PATH (NULL or "-": stdin). Regular files are memory-mapped (copy-on-write: writing
 * to a tensor changes nothing on disk), pipes read into memory. Messages name the file.
 * Returns 0 or -1 (then *f is zeroed). Free with st_free. */
int st_load(const char *path, st_file_t *f);

/* Parse a safetensors file held in memory; the bytes are copied, buf may go away.
 * Returns 0 or -1 with a message. Free with st_free. */
int st_parse(const void *buf, size_t len, st_file_t *f);

/* Release everything (entries' tensors become invalid). Safe on a zeroed struct. */
void st_free(st_file_t *f);

/* The entry named NAME, or NULL. */
const st_entry_t *st_find(const st_file_t *f, const char *name);
/* The metadata value for KEY, or NULL. */
const char *st_meta_get(const st_file_t *f, const char *key);

/* Size of the data section and of the header (N) of a loaded file. */
uint64_t st_data_len(const st_file_t *f);
uint64_t st_header_len(const st_file_t *f);

/* "F32", "F64", "U8", "I64". */
const char *st_dtype_str(dtype_t dt);

/* ---- writer ---- */
typedef struct st_writer st_writer_t;

/* A new, empty writer (never NULL: dies on out of memory). */
st_writer_t *st_writer_new(void);
/* Add a tensor. Nothing is copied but the name and shape: DATA must stay valid and
 * unchanged until st_writer_write returns. Refuses duplicate names, "__metadata__",
 * names that are not valid UTF-8, and bad shapes. Returns 0 or -1. */
int st_writer_add_raw(st_writer_t *w, const char *name, dtype_t dt, int ndim, const int64_t *shape,
                      const void *data);
/* The same for a tensor_t (its data pointer is kept, not copied). */
int st_writer_add(st_writer_t *w, const char *name, const tensor_t *t);
/* Set a __metadata__ pair (both copied; setting a key again replaces its value).
 * Key and value must be valid UTF-8. Returns 0 or -1. */
int st_writer_meta(st_writer_t *w, const char *key, const char *value);
/* Write header and data to F, checking every write. Returns 0 or -1 (a write error sets
 * a message from errno). The writer may be written again or freed. */
int st_writer_write(st_writer_t *w, FILE *f);
void st_writer_free(st_writer_t *w);

#endif
