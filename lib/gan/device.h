/* device.h: the backend for a program's --device option: the CPU, a CUDA GPU, or the first of
 * them that is there. Above both backends (lib/cpu, kernels/), which it chooses between. */
#ifndef GT_DEVICE_H
#define GT_DEVICE_H

#include "lib/backend/backend.h"

/* The backend for `--device NAME` with `threads` CPU threads (0: all cores):
 *   cpu   the CPU backend
 *   cuda  the CUDA backend; NULL with a message (naming CUDA) when the build has none or no
 *         usable GPU is found
 *   auto  cuda when the build has CUDA and a GPU is found, else cpu
 * Returns NULL with a message when the device is unknown or not available. */
backend_t *gan_backend(const char *device, int threads);
/* After gan_backend("auto"): a line saying which device it chose and why, for the program
 * to print on stderr ("device cuda: NVIDIA H100 ...", "device cpu: no CUDA GPU (...)");
 * NULL when there was nothing to choose (the build has no CUDA, or the device was named). */
const char *gan_backend_note(void);

#endif
