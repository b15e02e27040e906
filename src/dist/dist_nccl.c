/* NCCL for GPU ranks (see dist.h): the all-reduce of a buffer in GPU memory over a
 * communicator of the job's ranks, bootstrapped through the job's own broadcast (rank 0 draws
 * NCCL's unique id and sends it to the others). Compiled with `make CUDA=1` (PT_HAVE_NCCL);
 * elsewhere the calls say that the build has no NCCL. Not yet used by training, whose LoRA
 * gradients live in host memory, and never run on a GPU: it compiles and links, nothing more
 * is known of it. */
#include "dist/dist.h"

#ifdef PT_HAVE_NCCL
#include <cuda_runtime.h>
#include <nccl.h>

static ncclComm_t comm;
static bool nccl_on;

pt_status pt_dist_nccl_init(int device) {
    if (nccl_on) return PT_OK;
    cudaError_t ce = cudaSetDevice(device);
    if (ce != cudaSuccess) return pt_error(PT_ERR_UNSUPPORTED, "NCCL: rank %d cannot use GPU %d: %s", pt_dist_rank(), device, cudaGetErrorString(ce));
    ncclUniqueId id;
    if (pt_dist_rank() == 0) {
        ncclResult_t r = ncclGetUniqueId(&id);
        if (r != ncclSuccess) return pt_error(PT_ERR_IO, "NCCL: ncclGetUniqueId failed: %s", ncclGetErrorString(r));
    }
    PT_TRY(pt_dist_bcast(&id, sizeof id, 0));
    ncclResult_t r = ncclCommInitRank(&comm, pt_dist_size(), id, pt_dist_rank());
    if (r != ncclSuccess) return pt_error(PT_ERR_IO, "NCCL: rank %d: ncclCommInitRank failed: %s", pt_dist_rank(), ncclGetErrorString(r));
    nccl_on = true;
    return PT_OK;
}

pt_status pt_dist_nccl_allreduce_sum_f32(float *device_buf, int64_t n, void *stream) {
    if (!nccl_on) return pt_error(PT_ERR_INTERNAL, "NCCL all-reduce before pt_dist_nccl_init");
    ncclResult_t r = ncclAllReduce(device_buf, device_buf, (size_t)n, ncclFloat, ncclSum, comm, (cudaStream_t)stream);
    if (r == ncclSuccess && cudaStreamSynchronize((cudaStream_t)stream) != cudaSuccess) r = ncclUnhandledCudaError;
    if (r != ncclSuccess) return pt_error(PT_ERR_IO, "NCCL: rank %d: the all-reduce of %lld floats failed: %s", pt_dist_rank(), (long long)n, ncclGetErrorString(r));
    return PT_OK;
}

void pt_dist_nccl_free(void) {
    if (nccl_on) ncclCommDestroy(comm);
    nccl_on = false;
}
#else
pt_status pt_dist_nccl_init(int device) {
    (void)device;
    return pt_error(PT_ERR_UNSUPPORTED, "this build has no NCCL (build with make CUDA=1)");
}

pt_status pt_dist_nccl_allreduce_sum_f32(float *device_buf, int64_t n, void *stream) {
    (void)device_buf, (void)n, (void)stream;
    return pt_error(PT_ERR_UNSUPPORTED, "this build has no NCCL (build with make CUDA=1)");
}

void pt_dist_nccl_free(void) {}
#endif
