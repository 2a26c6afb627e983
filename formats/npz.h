/* npz.h: NumPy .npz archives (spec: formats/npz.md): a ZIP file whose members are .npy arrays,
 * as numpy.savez (stored) and numpy.savez_compressed (deflate) write them.
 *
 * Read: stored and deflated members (zlib), ZIP64 extra fields and end records (NumPy writes a
 * ZIP64 extra field in every local header), data descriptors. The central directory decides
 * what the archive holds; every offset, length and count in it is checked against the bytes
 * really there, each member's CRC-32 and size are verified, and each member is parsed by
 * npy_parse. Refused: encryption, other compression methods, multi-disk archives, duplicate
 * names, members that are not NAME.npy.
 * Regular files are memory-mapped while they are parsed, pipes read whole.
 * Write: members stored (numpy.savez) or deflated (numpy.savez_compressed), without ZIP64 (a
 * member or the archive reaching 4 GiB is an error), fixed time stamps, so the bytes depend only
 * on the arrays. np.load reads what we write. */
#ifndef GT_NPZ_H
#define GT_NPZ_H

#include <stdio.h>
#include "lib/base/tensor.h"

typedef struct {
    char *name;   /* the member's name without ".npy", as np.load's keys */
    tensor_t t;   /* heap data owned by the archive (npz_free releases it) */
} npz_entry_t;

typedef struct {
    int n;
    npz_entry_t *entries; /* in central-directory order */
} npz_file_t;

/* Load PATH (NULL or "-": stdin) whole and parse it. Messages name the file. Returns 0 or -1
 * (then *z is zeroed). Free with npz_free. */
int npz_load(const char *path, npz_file_t *z);
/* Parse an archive held in memory (nothing of buf is kept). Returns 0 or -1 with a message. */
int npz_parse(const void *buf, size_t len, npz_file_t *z);
void npz_free(npz_file_t *z);
/* The array called NAME (without ".npy"), or NULL. */
const tensor_t *npz_find(const npz_file_t *z, const char *name);

/* Write an archive of n arrays, member i called names[i] + ".npy", stored (compress 0) or
 * deflated (compress 1). Names must be non-empty, unique, without '/' or NUL. Every write is
 * checked. Returns 0 or -1 with a message. */
int npz_write(FILE *f, int n, const char *const *names, const tensor_t *const *arrays, int compress);

#endif
