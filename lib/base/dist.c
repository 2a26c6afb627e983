/* dist.c: the processes of a data-parallel run (dist.h), on MPI when the build has it
 * (GT_HAVE_MPI: `make MPI=1`, or mpicc found), and a world of one otherwise. */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "common.h"
#include "dist.h"

#ifdef GT_HAVE_MPI
#include <mpi.h>
#endif

/* The first of the environment variables vars (n of them, NULL-free) that holds a whole number
 * in [lo, hi], or dflt when none does: what a launcher says about this process. */
static long launcher_env(const char *const *vars, size_t n, long lo, long hi, long dflt) {
    for (size_t i = 0; i < n; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) {
            char *end;
            long x = strtol(v, &end, 10);
            if (*end == 0 && x >= lo && x <= hi) return x;
        }
    }
    return dflt;
}

/* The size of the run as the launcher announces it in the environment (Open MPI's mpirun;
 * PMI as MPICH's mpiexec and srun --mpi=pmi2 set it), 1 when there is none. (Not Slurm's own
 * SLURM_NTASKS: a batch script's plain commands see it too.) */
static long launcher_size(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    return launcher_env(vars, sizeof vars / sizeof vars[0], 1, LONG_MAX, 1);
}

int dist_built_with_mpi(void) {
#ifdef GT_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

int dist_init(dist_t *d, int *argc, char ***argv) {
    memset(d, 0, sizeof *d);
    d->size = 1;
    long n = launcher_size();
#ifdef GT_HAVE_MPI
    /* One process alone never starts MPI: a singleton MPI_Init would spawn Open MPI's daemon. */
    if (n <= 1 && !getenv("OMPI_COMM_WORLD_RANK") && !getenv("PMIX_RANK") && !getenv("PMI_RANK")) return 0;
    int provided;
    MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    d->mpi = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    return 0;
#else
    (void)argc;
    (void)argv;
    if (n > 1)
        return gt_err("started as one of %ld processes, but this build has no MPI, so each would train alone; "
                      "build with MPI (apt-get install libopenmpi-dev openmpi-bin; make MPI=1)",
                      n);
    return 0;
#endif
}

#ifdef GT_HAVE_MPI
/* MPI counts are int: the operations over n elements go in chunks of at most 2^30 */
static size_t mpi_chunk(size_t left) { return left < (size_t)1 << 30 ? left : (size_t)1 << 30; }
#endif

void dist_sum_f32(dist_t *d, float *v, size_t n) {
    if (d->size <= 1 || n == 0) return;
#ifdef GT_HAVE_MPI
    for (size_t off = 0; off < n;) {
        size_t k = mpi_chunk(n - off);
        MPI_Allreduce(MPI_IN_PLACE, v + off, (int)k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        off += k;
    }
#else
    (void)v;
#endif
}

void dist_sum_f64(dist_t *d, double *v, size_t n) {
    if (d->size <= 1 || n == 0) return;
#ifdef GT_HAVE_MPI
    for (size_t off = 0; off < n;) {
        size_t k = mpi_chunk(n - off);
        MPI_Allreduce(MPI_IN_PLACE, v + off, (int)k, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        off += k;
    }
#else
    (void)v;
#endif
}

#ifdef GT_HAVE_MPI
static MPI_Request pending[DIST_PENDING];
static int n_pending;

/* the slot of the next started operation; when all are taken, the oldest is finished first */
static MPI_Request *next_request(void) {
    if (n_pending == DIST_PENDING) {
        MPI_Wait(&pending[0], MPI_STATUS_IGNORE);
        memmove(pending, pending + 1, sizeof *pending * (DIST_PENDING - 1));
        n_pending--;
    }
    return &pending[n_pending++];
}
#endif

void dist_isum(dist_t *d, void *v, size_t n, int f64) {
    if (d->size <= 1 || n == 0) return;
#ifdef GT_HAVE_MPI
    size_t es = f64 ? 8 : 4;
    for (size_t off = 0; off < n;) {
        size_t k = mpi_chunk(n - off);
        MPI_Iallreduce(MPI_IN_PLACE, (char *)v + off * es, (int)k, f64 ? MPI_DOUBLE : MPI_FLOAT, MPI_SUM,
                       MPI_COMM_WORLD, next_request());
        off += k;
    }
#else
    (void)v;
    (void)f64;
#endif
}

#ifdef GT_HAVE_MPI
/* Node-shared memory (dist_alloc_shared): one MPI window per allocation, with every process's
 * segment mapped here (base[q]: process q's n bytes, aligned as this process's own). The
 * processes' ranks in node_comm are their ranks in the run (all are on this machine). */
enum { SHARED_WINDOWS = 16 };
static struct shared_window {
    MPI_Win win;
    char **base;
    size_t n;
} windows[SHARED_WINDOWS];
static int n_windows;
static MPI_Comm node_comm = MPI_COMM_NULL;
static int node_shared = -1; /* -1: not yet asked; 0: not all on this machine (or turned off); 1 */

void *dist_alloc_shared(dist_t *d, size_t n) {
    if (d->size <= 1) return NULL;
    if (node_shared < 0) {
        MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &node_comm);
        int here, ok;
        MPI_Comm_size(node_comm, &here);
        const char *off = getenv("GT_DIST_SHARED");
        ok = here == d->size && !(off && strcmp(off, "0") == 0);
        /* every process must take the same road: all share, or none */
        MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
        node_shared = ok;
    }
    if (!node_shared || n_windows == SHARED_WINDOWS) return NULL;
    /* Open MPI backs the window with a file in /dev/shm (a container's is often 64 MB), whose
     * pages are taken when first written: a full one would kill the run then, so the space is
     * looked at now, for this window and as much again (the caller's next one) */
    const char *dir = getenv("OMPI_MCA_osc_sm_backing_directory");
    struct statvfs fs;
    int room = 1;
    if (statvfs(dir && *dir ? dir : "/dev/shm", &fs) == 0)
        room = (double)fs.f_bavail * (double)fs.f_frsize >= 2.0 * d->size * (double)(n + 64) + 64e6;
    MPI_Allreduce(MPI_IN_PLACE, &room, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!room) return NULL;
    struct shared_window *w = &windows[n_windows++];
    MPI_Info info;
    MPI_Info_create(&info);
    MPI_Info_set(info, "alloc_shared_noncontig", "true"); /* each segment on its process's pages */
    char *mine;
    MPI_Comm_set_errhandler(node_comm, MPI_ERRORS_RETURN);
    if (MPI_Win_allocate_shared((MPI_Aint)(n + 64), 1, info, node_comm, &mine, &w->win) != MPI_SUCCESS)
        gt_fatal(1, "cannot allocate %zu bytes of memory shared by the processes (MPI_Win_allocate_shared); "
                    "GT_DIST_SHARED=0 passes messages instead", n);
    MPI_Info_free(&info);
    size_t align = (64 - (uintptr_t)mine % 64) % 64;
    w->base = gt_xmalloc(sizeof *w->base * (size_t)d->size);
    for (int q = 0; q < d->size; q++) {
        MPI_Aint bytes;
        int unit;
        char *b;
        MPI_Win_shared_query(w->win, q, &bytes, &unit, &b);
        w->base[q] = b + align;
    }
    w->n = n;
    MPI_Win_lock_all(MPI_MODE_NOCHECK, w->win); /* one passive epoch, for MPI_Win_sync */
    return w->base[d->rank];
}

/* the window that holds [v, v + bytes) of this process's memory, or NULL */
static struct shared_window *shared_of(const dist_t *d, const void *v, size_t bytes) {
    for (int i = 0; i < n_windows; i++) {
        const char *b = windows[i].base[d->rank];
        if ((const char *)v >= b && (const char *)v + bytes <= b + windows[i].n) return &windows[i];
    }
    return NULL;
}

/* every process here, with the memory of the windows up to date both ways */
static void shared_barrier(void) {
    for (int i = 0; i < n_windows; i++) MPI_Win_sync(windows[i].win);
    MPI_Barrier(node_comm);
    for (int i = 0; i < n_windows; i++) MPI_Win_sync(windows[i].win);
}

/* dist_ireduce_slices' parts of shared vectors, summed by dist_wait_sums (grown once) */
static struct shared_sum { struct shared_window *w; float *v; size_t lo, hi; } *shared_sums;
static int n_shared_sums, shared_sums_cap;

/* v[lo, hi) = the sum of every process's v[lo, hi) in rank order (v: this process's copy in w) */
static void shared_sum(const dist_t *d, const struct shared_sum *s) {
    size_t at = (size_t)((char *)s->v - s->w->base[d->rank]);
    const float *p0 = (const float *)(s->w->base[0] + at), *p1 = (const float *)(s->w->base[1] + at);
    float *v = s->v;
    if (d->size == 2) {
        for (size_t i = s->lo; i < s->hi; i++) v[i] = p0[i] + p1[i];
        return;
    }
    /* v is one of the addends: each block summed aside, then stored */
    enum { BLOCK = 1024 };
    float acc[BLOCK];
    for (size_t i0 = s->lo; i0 < s->hi; i0 += BLOCK) {
        size_t k = s->hi - i0 < BLOCK ? s->hi - i0 : BLOCK;
        for (size_t i = 0; i < k; i++) acc[i] = p0[i0 + i] + p1[i0 + i];
        for (int q = 2; q < d->size; q++) {
            const float *pq = (const float *)(s->w->base[q] + at) + i0;
            for (size_t i = 0; i < k; i++) acc[i] += pq[i];
        }
        memcpy(v + i0, acc, sizeof(float) * k);
    }
}
#else
void *dist_alloc_shared(dist_t *d, size_t n) {
    (void)d;
    (void)n;
    return NULL;
}
#endif

#ifdef GT_HAVE_MPI
/* dist_ireduce_slices' receive counts, one row of size ints per started operation (MPI reads
 * them until it completes), in a ring of DIST_PENDING rows: the oldest row is free again when a
 * new start must finish the oldest operation; and the moves of the results into place, done
 * by dist_wait_sums. Grown once (the first step), so that steps allocate nothing. */
static int *rs_counts, rs_rows_cap;
static unsigned rs_next;
static struct rs_move { float *dst; const float *src; size_t n; } *moves;
static int n_moves, moves_cap;

/* rank r's part [*lo, *hi) of [off, off + n): its slice [cut[r], cut[r + 1]) clipped, empty as lo == hi */
static void slice_part(const size_t *cut, int r, size_t off, size_t n, size_t *lo, size_t *hi) {
    *lo = cut[r] > off ? cut[r] : off;
    *hi = cut[r + 1] < off + n ? cut[r + 1] : off + n;
    if (*hi < *lo) *hi = *lo;
}
#endif

void dist_ireduce_slices(dist_t *d, float *v, size_t off, size_t n, const size_t *cut) {
    if (d->size <= 1 || n == 0) return;
#ifdef GT_HAVE_MPI
    struct shared_window *w = shared_of(d, v + off, sizeof(float) * n);
    if (w) {
        size_t lo, hi;
        slice_part(cut, d->rank, off, n, &lo, &hi);
        if (n_shared_sums == shared_sums_cap) {
            shared_sums_cap = shared_sums_cap ? 2 * shared_sums_cap : 16;
            shared_sums = gt_xrealloc(shared_sums, sizeof *shared_sums * (size_t)shared_sums_cap);
        }
        /* an empty part still waits with the others in dist_wait_sums */
        shared_sums[n_shared_sums++] = (struct shared_sum){w, v, lo, hi};
        return;
    }
    if (n > (size_t)INT_MAX) gt_fatal(1, "dist_ireduce_slices: %zu elements, more than MPI counts hold", n);
    if (rs_rows_cap < d->size) {
        rs_counts = gt_xrealloc(rs_counts, sizeof *rs_counts * (size_t)d->size * DIST_PENDING);
        rs_rows_cap = d->size;
    }
    MPI_Request *req = next_request(); /* first: the row below may be the oldest operation's */
    int *counts = rs_counts + (size_t)(rs_next++ % DIST_PENDING) * (size_t)d->size;
    size_t mine = off;
    for (int r = 0; r < d->size; r++) {
        size_t a, b;
        slice_part(cut, r, off, n, &a, &b);
        counts[r] = (int)(b - a);
        if (r == d->rank) mine = a;
    }
    MPI_Ireduce_scatter(MPI_IN_PLACE, v + off, counts, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, req);
    if (counts[d->rank] && mine != off) { /* in place, the result lands at v + off */
        if (n_moves == moves_cap) {
            moves_cap = moves_cap ? 2 * moves_cap : 16;
            moves = gt_xrealloc(moves, sizeof *moves * (size_t)moves_cap);
        }
        moves[n_moves++] = (struct rs_move){v + mine, v + off, (size_t)counts[d->rank]};
    }
#else
    (void)v;
    (void)off;
    (void)cut;
#endif
}

void dist_reduce_to(dist_t *d, float *v, size_t n, int root) {
    if (d->size <= 1 || n == 0) return;
#ifdef GT_HAVE_MPI
    for (size_t off = 0; off < n;) {
        size_t k = mpi_chunk(n - off);
        MPI_Reduce(d->rank == root ? MPI_IN_PLACE : v + off, v + off, (int)k, MPI_FLOAT, MPI_SUM, root, MPI_COMM_WORLD);
        off += k;
    }
#else
    (void)v;
    (void)root;
#endif
}

void dist_gather_slices(dist_t *d, void *v, const size_t *cut, int f64) {
    if (d->size <= 1) return;
#ifdef GT_HAVE_MPI
    static int *counts, *displs, cap; /* grown once, so that steps allocate nothing */
    if (cap < d->size) {
        counts = gt_xrealloc(counts, sizeof *counts * (size_t)d->size);
        displs = gt_xrealloc(displs, sizeof *displs * (size_t)d->size);
        cap = d->size;
    }
    if (cut[d->size] > (size_t)INT_MAX)
        gt_fatal(1, "dist_gather_slices: %zu elements, more than MPI counts hold", cut[d->size]);
    for (int r = 0; r < d->size; r++) {
        displs[r] = (int)cut[r];
        counts[r] = (int)(cut[r + 1] - cut[r]);
    }
    size_t es = f64 ? 8 : 4;
    struct shared_window *w = shared_of(d, v, es * cut[d->size]);
    if (w) {
        size_t at = (size_t)((char *)v - w->base[d->rank]);
        shared_barrier(); /* every process's slice final */
        for (int r = 0; r < d->size; r++)
            if (r != d->rank && cut[r + 1] > cut[r])
                memcpy((char *)v + es * cut[r], w->base[r] + at + es * cut[r], es * (cut[r + 1] - cut[r]));
        shared_barrier(); /* every process done reading this one's */
        return;
    }
    MPI_Datatype t = f64 ? MPI_DOUBLE : MPI_FLOAT;
    MPI_Allgatherv(MPI_IN_PLACE, 0, t, v, counts, displs, t, MPI_COMM_WORLD);
#else
    (void)v;
    (void)cut;
    (void)f64;
#endif
}

void dist_poll_sums(dist_t *d) {
    (void)d;
#ifdef GT_HAVE_MPI
    int done;
    if (n_pending) MPI_Testall(n_pending, pending, &done, MPI_STATUSES_IGNORE);
#endif
}

void dist_wait_sums(dist_t *d) {
#ifdef GT_HAVE_MPI
    if (n_pending) MPI_Waitall(n_pending, pending, MPI_STATUSES_IGNORE);
    n_pending = 0;
    for (int i = 0; i < n_moves; i++) memmove(moves[i].dst, moves[i].src, sizeof(float) * moves[i].n);
    n_moves = 0;
    if (n_shared_sums) {
        shared_barrier(); /* every process's gradients final */
        for (int i = 0; i < n_shared_sums; i++) shared_sum(d, &shared_sums[i]);
        shared_barrier(); /* every process done reading this one's */
        n_shared_sums = 0;
    }
#else
    (void)d;
#endif
}

void dist_bcast_from(dist_t *d, void *p, size_t n, int root) {
    if (d->size <= 1 || n == 0) return;
#ifdef GT_HAVE_MPI
    for (size_t off = 0; off < n;) {
        size_t k = mpi_chunk(n - off);
        MPI_Bcast((char *)p + off, (int)k, MPI_BYTE, root, MPI_COMM_WORLD);
        off += k;
    }
#else
    (void)p;
    (void)root;
#endif
}

void dist_bcast(dist_t *d, void *p, size_t n) { dist_bcast_from(d, p, n, 0); }

void dist_allgather(dist_t *d, const void *mine, size_t n, void *all) {
    if (n == 0) return;
    if (d->size <= 1) {
        memcpy(all, mine, n);
        return;
    }
#ifdef GT_HAVE_MPI
    MPI_Allgather(mine, (int)n, MPI_BYTE, all, (int)n, MPI_BYTE, MPI_COMM_WORLD);
#else
    memcpy(all, mine, n);
#endif
}

int dist_local_rank(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"};
    return (int)launcher_env(vars, sizeof vars / sizeof vars[0], 0, (1 << 20) - 1, 0);
}

void dist_max(dist_t *d, int *v, int n) {
    if (d->size <= 1 || n <= 0) return;
#ifdef GT_HAVE_MPI
    MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
#else
    (void)v;
#endif
}

void dist_abort(dist_t *d, int code) {
#ifdef GT_HAVE_MPI
    if (d->mpi && d->size > 1) MPI_Abort(MPI_COMM_WORLD, code);
#endif
    (void)d;
    (void)code;
}

void dist_finalize(dist_t *d) {
#ifdef GT_HAVE_MPI
    for (int i = 0; i < n_windows; i++) {
        MPI_Win_unlock_all(windows[i].win);
        MPI_Win_free(&windows[i].win);
        free(windows[i].base);
    }
    n_windows = 0;
    if (node_comm != MPI_COMM_NULL) MPI_Comm_free(&node_comm);
    if (d->mpi) MPI_Finalize();
#endif
    d->mpi = 0;
}
