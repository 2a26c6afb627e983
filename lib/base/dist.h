/* dist.h: the processes of a data-parallel run (gan-step under mpirun or srun) and the
 * collective operations the trainer needs from them: sums across processes, a shared
 * "stop" decision, and stopping every process when one fails.
 *
 * Built on MPI when the build has it (`make MPI=1`, or detected: lib/base/dist.c is compiled with
 * mpicc's flags and GT_HAVE_MPI). A process started without a launcher is a world of one and
 * never calls MPI_Init (so gan-step on its own neither needs nor starts any MPI machinery).
 * Without MPI in the build, a process that finds itself started by a launcher with more than
 * one rank refuses (dist_init's message says how to build with MPI), rather than having P
 * processes each train the whole model alone and overwrite one another's output.
 *
 * Buffers are host memory. The trainer does not call these sums itself: it asks its backend
 * (backend.h join, sum_procs), and the CPU backend sums with dist_sum_*, while the CUDA backend
 * sums device memory with NCCL on its stream, its communicator bootstrapped by broadcasting an
 * ncclUniqueId with dist_bcast (kernels/dist_nccl.cu). */
#ifndef GT_DIST_H
#define GT_DIST_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dist {
    int rank, size;   /* this process's rank, and the number of processes (1: not distributed) */
    int mpi;          /* MPI_Init was called (MPI_Finalize is due) */
} dist_t;

/* Find out whether this process is one of several started by an MPI launcher (Open MPI's
 * mpirun, MPICH's mpiexec, Slurm's srun with PMI/PMIx) and join them. Returns 0 with
 * d->size == 1 when it is alone; 0 with rank and size set after MPI_Init when it is one of
 * several; -1 with a message when it is one of several and the build has no MPI. */
int dist_init(dist_t *d, int *argc, char ***argv);

/* 1 when the build has MPI. */
int dist_built_with_mpi(void);

/* In place, on every process: v (n) = the sum of every process's v, element by element.
 * The result is the same bits on every process (MPI reduces each element once, in an order
 * that depends on the process count only, and broadcasts it). No-op when size == 1. */
void dist_sum_f32(dist_t *d, float *v, size_t n);
void dist_sum_f64(dist_t *d, double *v, size_t n);

/* The same sum started without waiting (MPI_Iallreduce): v must stay untouched until
 * dist_wait_sums returns. MPI progresses it inside MPI calls, dist_poll_sums among them.
 * Each element is reduced by MPI's sum like dist_sum_*'s (at P = 2 the same bits whatever the
 * pieces; above, in the library's order for the piece's size). At most DIST_PENDING pending:
 * more waits for the oldest first. */
enum { DIST_PENDING = 64 };
void dist_isum(dist_t *d, void *v, size_t n, int f64);
void dist_poll_sums(dist_t *d);
void dist_wait_sums(dist_t *d);

/* Started like dist_isum (waited for by dist_wait_sums): of v[off, off + n) (floats, n below
 * 2^31), process r's part of [cut[r], cut[r+1]) (cut: size + 1 offsets, cut[0] = 0,
 * non-decreasing) = the sum of every process's (MPI_Ireduce_scatter in place, the result moved
 * to its place when waited for); the rest of the range is left unspecified. At P = 2 each
 * element is the one addition dist_sum_f32 makes (the same bits); above, MPI's order for a
 * reduce-scatter of those counts (the same every run).
 * When v lies in memory from dist_alloc_shared, nothing is sent: dist_wait_sums waits for every
 * process to reach it, adds each element of this process's part from every process's v in
 * rank order (at P = 2 the same one addition), waits for every process again, and this
 * process's v outside its part is left as it was. */
void dist_ireduce_slices(dist_t *d, float *v, size_t off, size_t n, const size_t *cut);

/* v (n floats) on process root = the sum of every process's v (MPI_Reduce, in place on root);
 * the others' v is left alone (the host emulation's ncclReduce, kernels/cuda_emu.cu). */
void dist_reduce_to(dist_t *d, float *v, size_t n, int root);

/* In place, on every process: v[cut[r] .. cut[r+1]) = process r's (MPI_Allgatherv), for the
 * size + 1 offsets cut (cut[0] = 0, non-decreasing, cut[size] below 2^31); floats, or doubles
 * when f64. No-op when size == 1. When v lies in memory from dist_alloc_shared: every process
 * waits for the others, copies their slices from their v, and waits for the others again. */
void dist_gather_slices(dist_t *d, void *v, const size_t *cut, int f64);

/* Memory the processes of one machine read in place. When every process of the run is on
 * this machine (MPI-3 shared memory: MPI_Comm_split_type, MPI_Win_allocate_shared), a collective:
 * every process calls it with the same n, and gets n bytes (64-byte aligned) that the others
 * can read too; NULL when the processes are on several machines, when the run is a world of
 * one or the build has no MPI, or when any process has GT_DIST_SHARED=0 in its environment.
 * dist_ireduce_slices and dist_gather_slices on a vector that lies in it read the others'
 * copies directly instead of passing messages. Released by dist_finalize, never freed. */
void *dist_alloc_shared(dist_t *d, size_t n);

/* From rank 0 to every process: the n bytes at p (no-op when size == 1). */
void dist_bcast(dist_t *d, void *p, size_t n);
/* The same from process root. */
void dist_bcast_from(dist_t *d, void *p, size_t n, int root);

/* On every process: all (size * n bytes) = every process's n bytes at mine, in rank order
 * (rank r's at all + r n). n must be below 2^31. With size == 1, all = mine. */
void dist_allgather(dist_t *d, const void *mine, size_t n, void *all);

/* This process's index among the processes of the run on its node, from the launcher's
 * environment (Open MPI's OMPI_COMM_WORLD_LOCAL_RANK, MPICH's MPI_LOCALRANKID, Slurm's
 * SLURM_LOCALID), 0 when none says: the CUDA backend takes GPU (local rank mod GPUs). */
int dist_local_rank(void);

/* In place, on every process: v (n) = the largest of every process's v, element by element
 * (e.g. the number of a signal that reached some of them, 0 when none did). */
void dist_max(dist_t *d, int *v, int n);

/* End every process of the run with exit code `code` (MPI_Abort), after the caller has said
 * why; returns only when not distributed (size == 1), so the caller then exits itself. */
void dist_abort(dist_t *d, int code);

/* Leave the run (MPI_Finalize when MPI_Init was called). */
void dist_finalize(dist_t *d);

#ifdef __cplusplus
}
#endif

#endif
