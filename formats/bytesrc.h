/* bytesrc.h: an input byte stream (a file, stdin or a memory buffer) that is gunzipped on the
 * fly when it starts with gzip's magic bytes (1f 8b), told apart by content, never by name.
 * The IDX and CIFAR-10 readers read through it; the gzip rules are in formats/idx.md.
 *
 * gzip: one or more members (concatenated files, as gzip(1) reads them); each member's CRC-32
 * and length are checked by zlib when its end is read, so a reader that wants the data
 * verified reads to the end (bytesrc_read returning fewer bytes than asked). Corrupt or
 * truncated compressed data and bytes after the last member that are not another member are
 * errors. A source is used in place: never copy a bytesrc_t (zlib keeps a pointer to it). */
#ifndef GT_BYTESRC_H
#define GT_BYTESRC_H

#include <stdint.h>
#include <stdio.h>
#include <zlib.h>

#define BYTESRC_CHUNK 65536

typedef struct {
    /* where raw bytes come from: a stream, or memory */
    FILE *f;
    int close_f;
    const unsigned char *mem;
    size_t mem_len, mem_pos;
    /* bytes taken from the raw input but not yet handed on (the magic peek, then compressed
     * input for zlib) */
    unsigned char *inbuf; /* BYTESRC_CHUNK bytes */
    size_t in_pos, in_len;
    int raw_eof;
    /* gzip state */
    int gz;          /* 1 when the input is gzip */
    int gz_live;     /* z is initialised */
    int gz_done;     /* the last member ended and nothing follows */
    z_stream z;
    /* facts for the readers */
    int64_t raw_size; /* size of a plain regular file (or memory buffer), -1 when unknown */
} bytesrc_t;

/* Open PATH (NULL or "-": stdin) and look at its first bytes. A directory is an error
 * ("is a directory"). Returns 0 or -1 with a message (not prefixed with the name). Close with
 * bytesrc_close, also after a failed open. */
int bytesrc_open(bytesrc_t *s, const char *path);
/* The same over len bytes at buf (not copied: buf must outlive the source). */
int bytesrc_open_mem(bytesrc_t *s, const void *buf, size_t len);

/* Read up to n bytes of (decompressed) data into buf; *got < n only at the end of the data.
 * Returns 0, or -1 with a message on a read error or bad gzip data ("corrupt gzip data: ...",
 * "truncated gzip data", "trailing garbage after the gzip data"). */
int bytesrc_read(bytesrc_t *s, void *buf, size_t n, size_t *got);
/* Read and discard n bytes; *got < n only at the end of the data. Returns 0 or -1. */
int bytesrc_skip(bytesrc_t *s, uint64_t n, uint64_t *got);
/* Count the bytes left until the end (reading them all, so gzip checks run). Returns 0 or -1. */
int bytesrc_drain(bytesrc_t *s, uint64_t *left);
/* Release everything; safe on a zeroed or failed source, and twice. */
void bytesrc_close(bytesrc_t *s);

/* A growable byte buffer for data whose announced size is not trusted: it grows only as
 * bytes really arrive. Free p with free(). */
typedef struct {
    unsigned char *p;
    size_t len, cap;
} bytebuf_t;
/* Append up to n bytes from s to b; *got < n only at the end of the data. Returns 0, or -1
 * with a message (read error, bad gzip, out of memory). */
int bytesrc_append(bytesrc_t *s, bytebuf_t *b, uint64_t n, uint64_t *got);
/* Append n bytes from memory to b. Returns 0, or -1 with a message (out of memory). */
int bytebuf_put(bytebuf_t *b, const void *p, size_t n);

/* Read in from where it stands to EOF, or to `limit` bytes, into a heap buffer that grows as
 * bytes arrive (from `first` bytes, doubling), so that a size announced but never sent costs
 * nothing. Returns 0 with *out (free it) and *got, or -1 with a message (out of memory, read
 * error). */
int file_read_growing(FILE *in, size_t first, size_t limit, unsigned char **out, size_t *got);

/* The whole of PATH (NULL or "-": stdin) in memory, for formats parsed in place (safetensors,
 * npz): a non-empty regular file read from its start is mapped (private, copy-on-write, so the
 * parser may write to it), anything else (a pipe, stdin, an empty file) is read into a heap
 * buffer that grows as bytes arrive. Not gunzipped. A directory is an error. Returns 0 or -1
 * with a message (not prefixed with the name); free with wholefile_free, safe on a zeroed one. */
typedef struct {
    unsigned char *p;
    size_t len;
    int mapped;
} wholefile_t;
int wholefile_load(const char *path, wholefile_t *w);
void wholefile_free(wholefile_t *w);

#endif
