/* backend_nocuda.c: backend_cuda() in a build without CUDA (make without CUDA=1 or
 * CUDA=emu): there is no GPU backend to offer, and the message says how to get one. In a
 * CUDA build kernels/backend_cuda.cu defines backend_cuda() instead. */
#include "backend.h"
#include "lib/base/common.h"

#ifndef GT_HAVE_CUDA
backend_t *backend_cuda(void) {
    gt_err("built without CUDA; rebuild with make CUDA=1");
    return NULL;
}
#else
typedef int backend_nocuda_unused; /* ISO C wants a translation unit to declare something */
#endif
