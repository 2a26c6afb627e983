/* idx.h: IDX files, the format of MNIST, Fashion-MNIST, EMNIST and KMNIST (spec: formats/idx.md).
 *
 * Layout (all big endian): two zero bytes, a type byte, a dimension count D, then D 32-bit
 * sizes, then the data in C order. The file may be gzip-compressed (told apart by its first
 * bytes, see bytesrc.h). Only unsigned-byte data (type 0x08) is read: the other IDX types
 * (0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64) are refused with a message
 * naming the type; no dataset we know uses them.
 *
 * Every size read is distrusted: a size of 2^31 or more is refused (it would be negative to
 * the many readers that take sizes as signed), the product of the sizes is overflow-checked,
 * the data length is checked against a plain file's size before anything is read, and data
 * from a compressed or piped file is held only as it really arrives. */
#ifndef GT_IDX_H
#define GT_IDX_H

#include "lib/base/tensor.h"
#include "bytesrc.h"

#define IDX_TYPE_U8 0x08
#define IDX_MAX_DIMS TENSOR_MAX_DIMS

typedef struct {
    int type;                     /* IDX type byte; always IDX_TYPE_U8 after a successful open */
    int ndim;                     /* 1 .. IDX_MAX_DIMS */
    int64_t dims[IDX_MAX_DIMS];   /* each 0 .. 2^31-1 */
    uint64_t nbytes;              /* data bytes the dims call for (their product) */
    int gzip;                     /* the file was gzip-compressed */
} idx_header_t;

/* A reader streams the data of one file after its header. */
typedef struct {
    bytesrc_t src;
    idx_header_t h;
    uint64_t left;  /* data bytes not yet read */
    char name[256]; /* for messages */
} idx_reader_t;

/* Open PATH (NULL or "-": stdin) and read its header. Messages are prefixed with the file's
 * name ("stdin" for standard input). Returns 0 or -1; call idx_close in both cases. */
int idx_open(idx_reader_t *r, const char *path);
/* The same over len bytes of memory (not copied), named NAME in messages ("": no name). */
int idx_open_mem(idx_reader_t *r, const void *buf, size_t len, const char *name);

/* Append the next n data bytes to b (growing it only as bytes arrive). Fewer than n bytes
 * before the header's count is reached is an error ("data is truncated"). Returns 0 or -1. */
int idx_read(idx_reader_t *r, bytebuf_t *b, uint64_t n);
/* Read and discard the next n data bytes (checked like idx_read). Returns 0 or -1. */
int idx_skip(idx_reader_t *r, uint64_t n);
/* Read whatever data is left and check that the file ends exactly after it (and that gzip's
 * checksums hold). Returns 0 or -1. */
int idx_finish(idx_reader_t *r);
void idx_close(idx_reader_t *r);

/* Parse a whole IDX file (plain or gzip) held in memory into a uint8 tensor shaped like the
 * file's dims; the data is copied. Returns 0 or -1 with a message (not prefixed with a name).
 * Free with tensor_free. */
int idx_parse(const void *buf, size_t len, tensor_t *t);

/* Name of an IDX type byte ("uint8", "float32", ...; NULL for a byte that is no IDX type). */
const char *idx_type_name(int type);

#endif
