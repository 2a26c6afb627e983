/* cpu_ops.h: the CPU backend's operations: cpu_NAME for every entry NAME of
 * lib/backend/backend_ops.h (which documents them), defined in lib/cpu/layers.c, conv.c,
 * pool.c, inception.c, train.c and class.c and gathered into the backend struct by
 * lib/cpu/backend_cpu.c. Private to lib/cpu/: everyone else calls them through backend_t. */
#ifndef GT_CPU_OPS_H
#define GT_CPU_OPS_H

#include "lib/backend/backend.h"

#define BACKEND_OP(name, params) void cpu_##name params;
#include "lib/backend/backend_ops.h"
#undef BACKEND_OP

#endif
