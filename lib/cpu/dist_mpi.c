/* dist_mpi.c: the CPU backend in a data-parallel run (backend.h join, sum_procs;
 * lib/base/dist.h): host buffers summed across the processes with MPI (dist_sum_*), which
 * reduces each element once in an order fixed by the process count, so every process gets
 * the same bits. kernels/dist_nccl.cu does the same on GPUs with NCCL. Named apart from
 * lib/base/dist.c: the library archive keys its members by file name. */
#include <stddef.h>

#include "cpu_ops.h"
#include "lib/base/dist.h"

static dist_t *cpu_dist; /* the run this backend sums across (join) */

int cpu_join(backend_t *be, dist_t *d) {
    (void)be;
    cpu_dist = d;
    return 0;
}

void cpu_sum_procs(backend_t *be, void *v, size_t n, int f64) {
    be->counters.proc_sums++;
    be->counters.proc_sum_bytes += (double)n * (f64 ? 8 : 4);
    if (f64) dist_sum_f64(cpu_dist, v, n);
    else dist_sum_f32(cpu_dist, v, n);
}

/* started sums (backend.h sum_procs_start): MPI_Iallreduce, progressed by poll, waited for by
 * wait; a start joined to the previous one (more) is counted with it */
static int joined;

void cpu_sum_procs_start(backend_t *be, void *v, size_t n, int f64, int more) {
    if (!joined) be->counters.proc_sums++;
    joined = more;
    be->counters.proc_sum_bytes += (double)n * (f64 ? 8 : 4);
    dist_isum(cpu_dist, v, n, f64);
}

void cpu_sum_procs_poll(backend_t *be) {
    (void)be;
    dist_poll_sums(cpu_dist);
}

void cpu_sum_procs_wait(backend_t *be) {
    (void)be;
    dist_wait_sums(cpu_dist);
}

/* the sharded optimizer's collectives (backend.h reduce_procs_start, gather_procs):
 * MPI_Ireduce_scatter of the range over the slices it meets, started with the sums;
 * MPI_Allgatherv */
void cpu_reduce_procs_start(backend_t *be, float *v, size_t off, size_t n, const size_t *cut, int more) {
    if (!joined) be->counters.proc_sums++;
    joined = more;
    be->counters.proc_sum_bytes += (double)n * 4;
    dist_ireduce_slices(cpu_dist, v, off, n, cut);
}

void cpu_gather_procs(backend_t *be, void *v, const size_t *cut, int f64) {
    be->counters.proc_sums++; /* a collective, but no bytes summed (backend.h counters) */
    dist_gather_slices(cpu_dist, v, cut, f64);
}

void *cpu_alloc_shared(backend_t *be, size_t n) {
    (void)be;
    return dist_alloc_shared(cpu_dist, n);
}
