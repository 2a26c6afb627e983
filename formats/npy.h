/* npy.h: NumPy .npy files (spec: formats/npy.md).
 *
 * Read: versions 1.0, 2.0 and 3.0; dtypes <f4, <f8, |u1, <i8 (also '<u1', '|i8'-style
 * spellings NumPy accepts for those); C order only (fortran_order True is an error).
 * Regular files are memory-mapped (privately, copy-on-write: writing to a loaded tensor never
 * changes the file); pipes are read into memory.
 * Write: version 1.0 (2.0 only when the header would not fit 65535 bytes).
 * Every length and dimension read is distrusted: short files, lying headers and
 * overflowing shapes are errors with a message, never a crash. */
#ifndef GT_NPY_H
#define GT_NPY_H

#include <stdio.h>
#include "lib/base/tensor.h"

/* Load a whole .npy from PATH (NULL or "-": stdin). With to_f32 != 0, float64 data is
 * converted to float32 (other dtypes are left as they are). Messages name the file.
 * Returns 0 or -1. The caller frees with tensor_free. */
int npy_load(const char *path, tensor_t *t, int to_f32);

/* Parse a .npy from memory (used by tensor-info for pipes and by the fuzzer); the data is
 * copied into heap memory the tensor owns, so buf may go away. */
int npy_parse(const void *buf, size_t len, tensor_t *t);

/* Streaming reader: header first, then items in chunks, for inputs too large to hold. */
typedef struct npy_reader {
    FILE *f;
    int close_f;
    dtype_t dtype;
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];
    int64_t items_left; /* elements not yet read */
    char name[256];     /* for messages */
} npy_reader_t;
/* Open PATH (NULL or "-": stdin) and parse the header. Returns 0 or -1. */
int npy_reader_open(npy_reader_t *r, const char *path);
/* Read exactly n elements (of r->dtype) into buf; a short file is an error. */
int npy_reader_read(npy_reader_t *r, void *buf, int64_t n);
void npy_reader_close(npy_reader_t *r);

/* Write the header of a version-1.0 file for the dtype and shape. Returns 0 or -1
 * (a write error sets a message from errno). Data follows, raw, little endian. */
int npy_write_header(FILE *f, dtype_t dt, int ndim, const int64_t *shape);
/* Header plus data of a tensor. */
int npy_write(FILE *f, const tensor_t *t);
/* The header bytes into buf (at most cap); returns its length or -1. */
long npy_format_header(char *buf, size_t cap, dtype_t dt, int ndim, const int64_t *shape);

#endif
