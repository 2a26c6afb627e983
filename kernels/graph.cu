/* graph.cu: CUDA graphs for the CUDA backend (backend.h graph_begin, graph_end; kernels/README.md,
 * "CUDA graphs"). graph_begin opens a stream capture on the backend's one stream (global mode:
 * the runtime refuses a synchronous copy, a synchronisation or cudaMalloc until it ends, and the
 * backend refuses its own allocations and frees, backend_cuda.cu); every operation queued until
 * graph_end becomes a node of the graph, with the arguments it was queued with. graph_end
 * closes the capture and launches it: into an instantiated graph of the same node count (the
 * one used most recently), updated in place with the new graph's parameters
 * (cudaGraphExecUpdate: the same nodes in the same order, new arguments), or, when there is
 * none or the update is refused (another sequence of nodes), into a newly instantiated one,
 * which replaces the least recently used of EXECS. A step's host code therefore runs every
 * step and its arguments (step counters, learning rates, batch offsets) are never stale; what
 * the graph saves is the GPU's per-launch gaps: the nodes run back to back, and an update
 * affects only later launches, so the host records step t + 1 while the GPU runs step t. */
#include "cuda_check.h"
#include "cuda_ops.h"

int gt_cuda_capturing;

enum { EXECS = 4 }; /* instantiated graphs kept: sequences a run alternates between (lazy R1 steps) */

static struct {
    cudaGraphExec_t exec; /* NULL: free */
    size_t nodes;
    uint64_t used;        /* when last launched (uses) */
} execs[EXECS];
static uint64_t uses, launches_at_begin;

int cuda_graph_begin(backend_t *be) {
    if (!be->graphs || gt_cuda_sync_each || gt_cuda_capturing) return -1;
    CUDA_CHECK(cudaStreamBeginCapture(gt_cuda_stream(), cudaStreamCaptureModeGlobal));
    gt_cuda_capturing = 1;
    launches_at_begin = be->counters.launches;
    return 0;
}

/* The slot holding an instantiated graph that now runs `g` (n nodes): updated or new. */
static int exec_for(backend_t *be, cudaGraph_t g, size_t n) {
    int slot = -1;
    for (int i = 0; i < EXECS; i++)
        if (execs[i].exec && execs[i].nodes == n && (slot < 0 || execs[i].used > execs[slot].used)) slot = i;
    if (slot >= 0) {
        cudaGraphExecUpdateResultInfo info;
        if (cudaGraphExecUpdate(execs[slot].exec, g, &info) == cudaSuccess) return slot;
        (void)cudaGetLastError(); /* another sequence of nodes: instantiate it below, in this slot */
    } else {
        slot = 0;
        for (int i = 0; i < EXECS; i++) {
            if (!execs[i].exec) {
                slot = i;
                break;
            }
            if (execs[i].used < execs[slot].used) slot = i;
        }
    }
    if (execs[slot].exec) CUDA_CHECK(cudaGraphExecDestroy(execs[slot].exec));
    CUDA_CHECK(cudaGraphInstantiate(&execs[slot].exec, g, 0));
    execs[slot].nodes = n;
    be->counters.graph_builds++;
    return slot;
}

void cuda_graph_end(backend_t *be) {
    cudaGraph_t g;
    gt_cuda_capturing = 0;
    CUDA_CHECK(cudaStreamEndCapture(gt_cuda_stream(), &g));
    size_t n = 0;
    CUDA_CHECK(cudaGraphGetNodes(g, NULL, &n));
    int slot = exec_for(be, g, n);
    CUDA_CHECK(cudaGraphDestroy(g));
    execs[slot].used = ++uses;
    CUDA_CHECK(cudaGraphLaunch(execs[slot].exec, gt_cuda_stream()));
    be->counters.graph_nodes += be->counters.launches - launches_at_begin;
    be->counters.launches = launches_at_begin + 1;
    be->counters.graph_launches++;
}
