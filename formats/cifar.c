/* cifar.c: CIFAR-10 binary batch reader (see cifar.h; the layout is in cifar.md). */
#define _POSIX_C_SOURCE 200809L
#include "cifar.h"
#include "lib/base/common.h"

#include <stdlib.h>
#include <string.h>

static int named(const cifar_reader_t *r) { return r->name[0] ? gt_err_prefix(r->name) : -1; }

static int opened(cifar_reader_t *r, int rc) {
    r->records = -1;
    if (rc == 0 && r->src.raw_size >= 0) {
        uint64_t size = (uint64_t)r->src.raw_size;
        if (size == 0) rc = gt_err("empty file");
        else if (size % CIFAR_RECORD)
            rc = gt_err("%llu bytes is not a whole number of %d-byte records (1 label byte + %d pixels): "
                        "not a CIFAR-10 binary batch",
                        (unsigned long long)size, CIFAR_RECORD, CIFAR_PIXELS);
        else r->records = (int64_t)(size / CIFAR_RECORD);
    }
    return rc ? named(r) : 0;
}

int cifar_open(cifar_reader_t *r, const char *path) {
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", (!path || strcmp(path, "-") == 0) ? "stdin" : path);
    return opened(r, bytesrc_open(&r->src, path));
}

int cifar_open_mem(cifar_reader_t *r, const void *buf, size_t len, const char *name) {
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    return opened(r, bytesrc_open_mem(&r->src, buf, len));
}

int cifar_read(cifar_reader_t *r, uint8_t *label, uint8_t *pixels) {
    uint8_t rec[CIFAR_RECORD];
    size_t got;
    if (bytesrc_read(&r->src, rec, CIFAR_RECORD, &got)) return named(r);
    if (got == 0) {
        if (r->read == 0) {
            gt_err(r->src.gz ? "empty file (inside the gzip data)" : "empty file");
            return named(r);
        }
        return 0;
    }
    if (got < CIFAR_RECORD) {
        gt_err("truncated: %zu bytes after record %lld, a record is %d bytes (1 label byte + %d pixels)", got,
               (long long)r->read, CIFAR_RECORD, CIFAR_PIXELS);
        return named(r);
    }
    if (rec[0] >= CIFAR_CLASSES) {
        gt_err("record %lld: label %d is not in 0..9: not a CIFAR-10 binary batch", (long long)r->read, rec[0]);
        return named(r);
    }
    *label = rec[0];
    if (pixels) memcpy(pixels, rec + 1, CIFAR_PIXELS);
    r->read++;
    return 1;
}

void cifar_close(cifar_reader_t *r) { bytesrc_close(&r->src); }

int cifar_parse(const void *buf, size_t len, tensor_t *images, tensor_t *labels) {
    cifar_reader_t r;
    bytebuf_t pix = {0}, lab = {0};
    uint8_t label, pixels[CIFAR_PIXELS];
    memset(images, 0, sizeof *images);
    memset(labels, 0, sizeof *labels);
    int rc = cifar_open_mem(&r, buf, len, ""), k = 0;
    while (rc == 0 && (k = cifar_read(&r, &label, pixels)) == 1)
        if (bytebuf_put(&lab, &label, 1) || bytebuf_put(&pix, pixels, CIFAR_PIXELS)) rc = -1;
    if (k < 0) rc = -1;
    if (rc == 0) {
        int64_t n = (int64_t)lab.len, ishape[4] = {n, CIFAR_CHANNELS, CIFAR_SIDE, CIFAR_SIDE}, lshape[1] = {n};
        rc = tensor_alloc(images, DT_U8, 4, ishape);
        if (rc == 0) rc = tensor_alloc(labels, DT_U8, 1, lshape);
        if (rc == 0) {
            memcpy(images->data, pix.p, pix.len);
            memcpy(labels->data, lab.p, lab.len);
        }
    }
    if (rc) {
        tensor_free(images);
        tensor_free(labels);
    }
    free(pix.p);
    free(lab.p);
    cifar_close(&r);
    return rc;
}
