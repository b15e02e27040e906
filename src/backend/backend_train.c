/* The training operation tables of each backend, compiled for float32 and float64
 * (nn/real.h). The CPU table points at src/nn's kernels unchanged. */
#include "backend/backend_train.h"

static const PT_RN(pt_train_ops) cpu_ops = {
    .rmsnorm_forward = PT_RN(pt_rmsnorm_forward),
    .rmsnorm_backward = PT_RN(pt_rmsnorm_backward),
    .rope_tables = PT_RN(pt_rope_tables),
    .rope_forward = PT_RN(pt_rope_forward),
    .rope_backward = PT_RN(pt_rope_backward),
    .swiglu_forward = PT_RN(pt_swiglu_forward),
    .swiglu_backward = PT_RN(pt_swiglu_backward),
    .linear_forward = PT_RN(pt_linear_forward),
    .linear_backward = PT_RN(pt_linear_backward),
    .attention_forward = PT_RN(pt_attention_train_forward),
    .attention_backward = PT_RN(pt_attention_backward),
    .logsoftmax_forward = PT_RN(pt_logsoftmax_forward),
    .logsoftmax_backward = PT_RN(pt_logsoftmax_backward),
};

const PT_RN(pt_train_ops) *PT_RN(pt_backend_train_ops)(const pt_backend *be) {
    if (be && be->device == PT_DEVICE_CPU) return &cpu_ops;
#if defined(PT_HAVE_CUDA) && !defined(PT_F64)
    /* float32 only: what the CUDA table covers is in src/backend/cuda/cuda_backend.h */
    if (be && be->device == PT_DEVICE_CUDA) return pt_cuda_train_ops();
#endif
    return NULL;
}
