/* cifar.h: CIFAR-10 binary batches (spec: formats/cifar.md).
 *
 * A batch (data_batch_1.bin ... data_batch_5.bin, test_batch.bin) is a run of records of
 * 3073 bytes: one label byte (0..9), then 3072 pixel bytes, the 1024 red values of the
 * 32 x 32 image row by row, then the 1024 green, then the 1024 blue: exactly one
 * 3 x 32 x 32 (C x H x W) uint8 image. There is no header; the official batches hold
 * 10000 records, but any whole number of records is read. A gzip-compressed batch is read
 * too (told apart by its first bytes, see bytesrc.h).
 *
 * Distrusted: a plain file's size must be a positive multiple of 3073 (checked at open);
 * a compressed or piped batch must end on a record boundary; every label must be 0..9. */
#ifndef GT_CIFAR_H
#define GT_CIFAR_H

#include "lib/base/tensor.h"
#include "bytesrc.h"

#define CIFAR_SIDE 32
#define CIFAR_CHANNELS 3
#define CIFAR_PIXELS (CIFAR_CHANNELS * CIFAR_SIDE * CIFAR_SIDE) /* 3072 */
#define CIFAR_RECORD (1 + CIFAR_PIXELS)                         /* 3073 */
#define CIFAR_CLASSES 10

typedef struct {
    bytesrc_t src;
    int64_t records;      /* records in a plain file (known at open), -1 when unknown */
    int64_t read;         /* records read so far */
    char name[256];       /* for messages */
} cifar_reader_t;

/* Open PATH (NULL or "-": stdin). Messages are prefixed with the file's name. Returns 0 or
 * -1; call cifar_close in both cases. */
int cifar_open(cifar_reader_t *r, const char *path);
/* The same over len bytes of memory (not copied), named NAME in messages ("": no name). */
int cifar_open_mem(cifar_reader_t *r, const void *buf, size_t len, const char *name);

/* Read the next record: its label into *label and its 3072 pixels (3 x 32 x 32) into
 * pixels (which may be NULL to skip them). Returns 1 for a record, 0 at the end of the
 * batch (after at least one record), -1 with a message (an empty batch, a partial record,
 * a label outside 0..9, a read or gzip error). */
int cifar_read(cifar_reader_t *r, uint8_t *label, uint8_t *pixels);
void cifar_close(cifar_reader_t *r);

/* Parse a whole batch held in memory into images (N x 3 x 32 x 32 uint8) and labels
 * (N uint8). Returns 0 or -1 with a message (not prefixed). Free both with tensor_free. */
int cifar_parse(const void *buf, size_t len, tensor_t *images, tensor_t *labels);

#endif
