/* tensor.h: the in-memory n-dimensional array every format reads into and writes from.
 *
 * A tensor is C-ordered (row-major), little endian, of one of four dtypes. Its data is
 * either heap memory (owned, freed by tensor_free) or a read-only mmap of a file
 * (tensor_free unmaps). Image tensors are N x C x H x W. */
#ifndef GT_TENSOR_H
#define GT_TENSOR_H

#include <stddef.h>
#include <stdint.h>

typedef enum { DT_F32 = 0, DT_F64, DT_U8, DT_I64, DT_COUNT } dtype_t;

#define TENSOR_MAX_DIMS 8

typedef struct {
    dtype_t dtype;
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS]; /* shape[0..ndim-1], each >= 0 */
    void *data;
    /* ownership (private to tensor.c and the format readers) */
    void *map_base;  /* non-NULL when data lies in an mmap of map_len bytes */
    size_t map_len;
    int owned;       /* data is heap memory to free */
} tensor_t;

size_t dtype_size(dtype_t t);
/* Short name for messages: "float32", "float64", "uint8", "int64". */
const char *dtype_name(dtype_t t);

/* Product of the dims (1 for ndim 0). The constructors guarantee it does not overflow. */
int64_t tensor_numel(const tensor_t *t);
size_t tensor_nbytes(const tensor_t *t);

/* Check a shape: 0 <= ndim <= TENSOR_MAX_DIMS, dims >= 0, and numel * dtype size fits in
 * 63 bits. Returns 0, or -1 with a message. Every reader calls it on untrusted dims. */
int tensor_check_shape(dtype_t dt, int ndim, const int64_t *shape);

/* Allocate zeroed heap data for the shape (checked). Returns 0 or -1 with a message. */
int tensor_alloc(tensor_t *t, dtype_t dt, int ndim, const int64_t *shape);
/* Release data (heap or mmap) and zero the struct. Safe on a zeroed struct. */
void tensor_free(tensor_t *t);

/* "60000x1x28x28" into buf (always terminated). */
void tensor_shape_str(const tensor_t *t, char *buf, size_t n);

/* Convert element i of any dtype to double. */
double tensor_get(const tensor_t *t, int64_t i);

/* Per-image class labels: t is int64 or uint8 (as idx2tensor writes them), of shape N or N x 1,
 * each label in 0 .. classes-1. n_images >= 0 demands N == n_images; n_images < 0 takes any N.
 * why (or NULL) says where the bound comes from and is put in parentheses after an out-of-range
 * label's message, e.g. "the model has 3 classes".
 * Returns 0 with *out a malloc'ed array of the N labels (the caller frees it; N is
 * tensor_numel(t)), or -1 with a one-line message (wrong dtype, shape or count, a negative or
 * too large label, naming its image) and *out untouched. */
int tensor_labels(const tensor_t *t, int64_t classes, int64_t n_images, const char *why, int64_t **out);

#endif
