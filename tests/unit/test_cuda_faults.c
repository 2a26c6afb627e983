/* test_cuda_faults.c: what the CUDA backend says when the device goes wrong, on the host
 * emulation (make CUDA=emu), where a kernel can be made to fault: a kernel that runs off the
 * end of device memory is reported, as on a GPU, by the next synchronising call, which names
 * another operation; under GT_CUDA_SYNC=1 by the launch itself, naming the kernel and the
 * backend operation (kernels/cuda_check.h). Copies whose source and destination overlap are
 * refused (undefined on a GPU; kernels/cuda_emu.h), and so is a pointer that is not device memory
 * inside a kernel's functor. Each case runs in a child process of its own, whose stderr is
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

#endif

int main(void) {
    gt_progname = "test_cuda_faults";
#ifdef GT_CUDA_EMU
    RUN(test_fault_is_reported_later_without_sync);
    RUN(test_fault_names_kernel_and_operation_under_sync);
    RUN(test_reduction_names_its_operation);
    RUN(test_overlapping_copy_is_refused);
    RUN(test_pointer_in_functor_is_refused);
    return harness_done();
#else
    (void)harness_case_failed; /* the harness is unused without the emulation */
    printf("1..0 # SKIP needs the CUDA emulation (make CUDA=emu), where a kernel can be made to fault\n");
    return 0;
#endif
}
