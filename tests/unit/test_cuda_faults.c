/* test_cuda_faults.c: what the CUDA backend says when the device goes wrong, on the host
 * emulation (make CUDA=emu), where a kernel can be made to fault: a kernel that runs off the
 * end of device memory is reported, as on a GPU, by the next synchronising call, which names
 * another operation; under GT_CUDA_SYNC=1 by the launch itself, naming the kernel and the
 * backend operation (kernels/cuda_check.h). Copies whose source and destination overlap are
 * refused (undefined on a GPU; kernels/cuda_emu.h), and so is a pointer that is not device memory
 * inside a kernel's functor. CUDA graphs (backend.h graph_begin, graph_end): the recorded
 * operations run at graph_end, with the arguments they were recorded with, an instantiated graph
 * updated when the next recording has the same nodes; and what a capture cannot hold (a download,
 * a sync, an allocation) ends the program naming it. Each case runs in a child process of its own, whose stderr is
 * read back. Other builds skip (a plan of 0): a real GPU does not fault on demand. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "lib/backend/backend.h"
#include "lib/base/common.h"

#ifdef GT_CUDA_EMU

/* Run fn on a fresh CUDA backend in a child with GT_CUDA_SYNC=sync; its exit status in *status
 * and its stderr in out (n bytes, NUL-terminated). */
static void in_child(void (*fn)(backend_t *), const char *sync, int *status, char *out, size_t n) {
    int fd[2];
    out[0] = 0;
    *status = -1;
    if (pipe(fd)) return;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], 2);
        setenv("GT_CUDA_SYNC", sync, 1);
        backend_t *be = backend_cuda();
        if (!be) _exit(3);
        fn(be);
        _exit(0);
    }
    close(fd[1]);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < n && (r = read(fd[0], out + got, n - 1 - got)) > 0) got += (size_t)r;
    out[got] = 0;
    close(fd[0]);
    waitpid(pid, status, 0);
}

/* A fill of far more elements than were allocated: the kernel writes past the open part of
 * the emulated device memory and faults. Then a copy and a download, as a step would go on. */
static void fill_past_the_end(backend_t *be) {
    float *p = be->alloc(be, 1024);
    be->fill(be, p, 1.0f, (size_t)1 << 28);
    float *q = be->alloc(be, 1024);
    be->copy(be, q, p, 1024);
    float h[4];
    be->download(be, h, q, sizeof h);
}

static void test_fault_is_reported_later_without_sync(void) {
    int st;
    char err[4096];
    in_child(fill_past_the_end, "0", &st, err, sizeof err);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %d, stderr: %s", st, err);
    CHECK(strstr(err, "cuda emulation: kernel k_fill touched") != NULL, "stderr: %s", err);
    /* as on a GPU: the error surfaces at a later call (the copy after it), which names itself */
    CHECK(strstr(err, "test_cuda_faults: cuda: kernels/backend_cuda.cu:") != NULL, "stderr: %s", err);
    CHECK(strstr(err, "cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream) failed: "
                      "cudaErrorIllegalAddress") != NULL,
          "stderr: %s", err);
    CHECK(strstr(err, "(in cuda_fill)") == NULL, "stderr: %s", err);
}

static void test_fault_names_kernel_and_operation_under_sync(void) {
    int st;
    char err[4096];
    in_child(fill_past_the_end, "1", &st, err, sizeof err);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %d, stderr: %s", st, err);
    CHECK(strstr(err, "kernel k_fill (in cuda_fill) failed: cudaErrorIllegalAddress (an illegal memory access was "
                      "encountered) [GT_CUDA_SYNC=1: checked after it ran]") != NULL,
          "stderr: %s", err);
    CHECK(strstr(err, "cudaMemcpyAsync(") == NULL, "a later operation was blamed: %s", err);
}

/* A reduction's kernels are named with the operation that asked for the sum (reduce.h). */
static void bias_grad_past_the_end(backend_t *be) {
    float *dy = be->alloc(be, 1024), *db = be->alloc(be, 1024);
    be->bias_grad(be, db, dy, (long)1 << 26, 4, 1);
}

static void test_reduction_names_its_operation(void) {
    int st;
    char err[4096];
    in_child(bias_grad_past_the_end, "1", &st, err, sizeof err);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %d, stderr: %s", st, err);
    CHECK(strstr(err, "kernel k_reduce_partial (in cuda_bias_grad) failed: cudaErrorIllegalAddress") != NULL,
          "stderr: %s", err);
}

/* be->copy within one allocation, the ranges overlapping by 64 bytes */
static void overlapping_copy(backend_t *be) {
    char *p = be->alloc(be, 1024);
    be->copy(be, p + 64, p, 256);
}

/* two allocations: no overlap, no complaint */
static void disjoint_copy(backend_t *be) {
    char *p = be->alloc(be, 1024), *q = be->alloc(be, 1024);
    be->copy(be, q, p, 1024);
    be->copy(be, p + 512, p, 512); /* adjacent halves of one allocation */
    be->sync(be);
}

static void test_overlapping_copy_is_refused(void) {
    int st;
    char err[4096];
    in_child(overlapping_copy, "0", &st, err, sizeof err);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %d, stderr: %s", st, err);
    CHECK(strstr(err, "cuda emulation: cudaMemcpy(kind 3) of 256 bytes: the source and destination overlap") != NULL,
          "stderr: %s", err);
    CHECK(strstr(err, "cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream) failed: "
                      "cudaErrorInvalidValue") != NULL,
          "stderr: %s", err);
    in_child(disjoint_copy, "1", &st, err, sizeof err);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d, stderr: %s", st, err);
}

/* bias_grad's reduction reads dy through a functor (reduce.h), not a direct argument: a host
 * pointer there, or one into device memory that is not allocated, is refused at the launch
 * (cuda_emu.h: the fields of class-type arguments are walked) instead of read silently */
static float host_dy[64];
static void bias_grad_host_dy(backend_t *be) {
    float *db = be->alloc(be, 64);
    be->bias_grad(be, db, host_dy, 4, 4, 4);
}
static void bias_grad_unallocated_dy(backend_t *be) {
    float *db = be->alloc(be, 64);
    be->bias_grad(be, db, db + ((size_t)1 << 24), 4, 4, 4); /* inside the arena, past every block */
}

static void test_pointer_in_functor_is_refused(void) {
    int st;
    char err[4096];
    in_child(bias_grad_host_dy, "0", &st, err, sizeof err);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "status %d, stderr: %s", st, err);
    CHECK(strstr(err, "cuda emulation: k_reduce_partial: argument 6, field 1 (") != NULL, "stderr: %s", err);
    CHECK(strstr(err, "), is not device memory") != NULL, "stderr: %s", err);
    in_child(bias_grad_unallocated_dy, "0", &st, err, sizeof err);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "status %d, stderr: %s", st, err);
    CHECK(strstr(err, "k_reduce_partial: argument 6, field 1 (") != NULL, "stderr: %s", err);
}

/* Record fills, a copy, a zero and a gemm; check that they ran at graph_end, in order, with the
 * recorded values, as one launch; the same sequence again updates the instantiated graph,
 * another instantiates a second. Exits non-zero, saying why, when something is wrong. */
static void graph_replays(backend_t *be) {
    float *p = be->alloc(be, 4 * 64), *q = be->alloc(be, 4 * 64), *c = be->alloc(be, 4 * 4), h[64];
    int bad = 0;
    for (int round = 0; round < 2; round++) {
        uint64_t l0 = be->counters.launches;
        if (be->graph_begin(be)) _exit(4);
        be->fill(be, p, 1.0f + (float)round, 64);
        be->copy(be, q, p, 4 * 64);
        be->fill(be, p, 5.0f, 32);
        be->gemm(be, 0, 0, 2, 2, 16, 1.0f, q, 16, q, 2, 0.0f, c, 2); /* each entry 16 (1 + round)^2 */
        be->zero(be, q, 4 * 8);
        be->graph_end(be);
        bad |= be->counters.launches != l0 + 1;
        be->download(be, h, p, sizeof h);
        bad |= h[0] != 5.0f || h[63] != 1.0f + (float)round;
        be->download(be, h, q, sizeof h);
        bad |= h[0] != 0.0f || h[8] != 1.0f + (float)round;
        be->download(be, h, c, 4 * 4);
        bad |= h[3] != 16.0f * (1.0f + (float)round) * (1.0f + (float)round);
    }
    bad |= be->counters.graph_builds != 1 || be->counters.graph_launches != 2 || be->counters.graph_nodes != 10;
    if (be->graph_begin(be)) _exit(4);
    be->fill(be, p, 7.0f, 64);
    be->graph_end(be);
    be->download(be, h, p, sizeof h);
    bad |= h[0] != 7.0f || be->counters.graph_builds != 2;
    if (bad) fprintf(stderr, "graph_replays: wrong values or counters\n");
    _exit(bad ? 2 : 0);
}

static void download_in_graph(backend_t *be) {
    float *p = be->alloc(be, 64), h[16];
    if (be->graph_begin(be)) _exit(4);
    be->fill(be, p, 1.0f, 16);
    be->download(be, h, p, sizeof h);
}

static void sync_in_graph(backend_t *be) {
    if (be->graph_begin(be)) _exit(4);
    be->sync(be);
}

static void alloc_in_graph(backend_t *be) {
    if (be->graph_begin(be)) _exit(4);
    be->alloc(be, 64);
}

/* under GT_CUDA_SYNC=1 the backend records nothing (each operation is checked as it runs) */
static void no_graph_under_sync(backend_t *be) { _exit(be->graph_begin(be) == -1 ? 0 : 2); }

static void test_graphs(void) {
    int st;
    char err[4096];
    in_child(graph_replays, "0", &st, err, sizeof err);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d, stderr: %s", st, err);
    in_child(no_graph_under_sync, "1", &st, err, sizeof err);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d, stderr: %s", st, err);
    in_child(download_in_graph, "0", &st, err, sizeof err);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %d, stderr: %s", st, err);
    CHECK(strstr(err, "cuda emulation: cudaMemcpyAsync between host and device memory during a stream capture") &&
              strstr(err, "failed: cudaErrorStreamCaptureUnsupported"),
          "stderr: %s", err);
    in_child(sync_in_graph, "0", &st, err, sizeof err);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %d, stderr: %s", st, err);
    CHECK(strstr(err, "cuda emulation: cudaStreamSynchronize during a stream capture"), "stderr: %s", err);
    in_child(alloc_in_graph, "0", &st, err, sizeof err);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %d, stderr: %s", st, err);
    CHECK(strstr(err, "cuda: a device allocation while a training step is recorded as a CUDA graph"), "stderr: %s", err);
}

#endif

int main(void) {
    gt_progname = "test_cuda_faults";
#ifdef GT_CUDA_EMU
    RUN(test_fault_is_reported_later_without_sync);
    RUN(test_fault_names_kernel_and_operation_under_sync);
    RUN(test_reduction_names_its_operation);
    RUN(test_overlapping_copy_is_refused);
    RUN(test_pointer_in_functor_is_refused);
    RUN(test_graphs);
    return harness_done();
#else
    (void)harness_case_failed; /* the harness is unused without the emulation */
    printf("1..0 # SKIP needs the CUDA emulation (make CUDA=emu), where a kernel can be made to fault\n");
    return 0;
#endif
}
