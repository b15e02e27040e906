/* The CUDA backend (built with `make CUDA=1`, which defines PT_HAVE_CUDA): the operations of
 * backend.h on an NVIDIA GPU, products on cuBLASLt with fp32 accumulation.
 *
 * What it is today: a correctness-first version. Operations take host pointers, as the seam
 * defines them, and each one copies its inputs to the GPU, runs there and copies its result
 * back; only the weight matrices stay on the GPU, uploaded at their first use (F32 as they
 * are, Q8_0/Q4_0 as raw blocks dequantised by a kernel, any other type dequantised on the
 * host) and stored in bf16, or f32 with precision f32. Attention reads the whole cache
 * prefix from the host each call. So it computes what the CPU computes, on the GPU, at a
 * speed bounded by the copies: it is the reference the device-resident version (weights,
 * key/value cache and activations kept on the GPU, flash attention, training kernels)
 * will be tested against, not that version.
 *
 * Training (float32 only; cuda_train.c): the frozen products of the linear layers, forward
 * and input gradient, run on the GPU; the LoRA products, norms, RoPE, attention and the
 * log-softmax stay on the CPU. Float64 training has no CUDA table (--device auto runs it on
 * the CPU, --device cuda refuses).
 *
 * Not implemented yet: device-resident activations, KV cache and batched decode, flash
 * attention forward/backward, the chunked cross-entropy, LoRA and AdamW on the GPU.
 *
 * A CUDA call that fails inside an operation (which returns nothing) is recorded; the next
 * pt_cuda_take_error returns it as PT_ERR_IO with the operation and CUDA's message, and the
 * engine checks it after every forward pass. */
#ifndef PT_BACKEND_CUDA_CUDA_BACKEND_H
#define PT_BACKEND_CUDA_CUDA_BACKEND_H

#include <stddef.h>

#include "backend/backend.h"
#include "backend/cuda/plan.h"

#ifdef __cplusplus
extern "C" {
#endif

const pt_backend *pt_cuda_backend(void);
/* 1 when a CUDA GPU can be used; else 0 and the reason (driver's message) in why. */
int pt_cuda_usable(char *why, size_t why_size);
/* Device name, total and free memory of GPU 0 (for reports and the memory check). */
pt_status pt_cuda_device_info(char *name, size_t name_size, size_t *total_bytes, size_t *free_bytes);
/* Weight storage and GEMM inputs: bf16 (default; also POLITUNE_CUDA_PRECISION=bf16|f32) or
 * f32 (reproduces the CPU's numbers to float32 rounding). Drops weights already uploaded. */
void pt_cuda_set_precision(pt_cuda_precision p);
pt_cuda_precision pt_cuda_get_precision(void);
/* Frees every uploaded weight (their host copies may go away after this). */
void pt_cuda_release_weights(void);
/* Bytes of weights held on the GPU. */
size_t pt_cuda_weight_bytes(void);
/* dx (n, W.cols) (+)= dy (n, W.rows) W on the GPU: the input gradient of a frozen product. */
void pt_cuda_matmul_dx(float *dx, const float *dy, const pt_weight *W, int n, int accumulate);

#ifdef __cplusplus
}
#endif

#endif
