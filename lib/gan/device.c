/* device.c: the backend a program's --device option names (device.h). */
#include <stdio.h>
#include <string.h>

#include "lib/base/common.h"
#include "device.h"

static char backend_note[320];
static int backend_noted;

backend_t *gan_backend(const char *device, int threads) {
    backend_noted = 0;
    if (strcmp(device, "cpu") == 0) return backend_cpu(threads);
    if (strcmp(device, "cuda") == 0) {
        backend_t *be = backend_cuda();
        if (!be) {
            char why[256];
            snprintf(why, sizeof why, "%s", gt_errmsg());
            gt_err("--device cuda: %s", why);
        }
        return be;
    }
    if (strcmp(device, "auto") == 0) {
#ifdef GT_HAVE_CUDA
        backend_t *be = backend_cuda();
        backend_noted = 1;
        if (be) {
            snprintf(backend_note, sizeof backend_note, "device cuda: %s", be->description);
            return be;
        }
        char why[256];
        snprintf(why, sizeof why, "%s", gt_errmsg());
        snprintf(backend_note, sizeof backend_note, "device cpu: %s", why);
#endif
        return backend_cpu(threads);
    }
    gt_err("--device: unknown device '%s' (cpu, cuda, auto)", device);
    return NULL;
}

const char *gan_backend_note(void) { return backend_noted ? backend_note : NULL; }
