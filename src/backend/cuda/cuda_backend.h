/* The CUDA backend (built with `make CUDA=1`, which defines PT_HAVE_CUDA): the operations of
 * backend.h on an NVIDIA GPU, products on cuBLAS/cuBLASLt with fp32 accumulation.
 *
 * Inference (cuda_engine.cu): the engine's whole forward step runs on the GPU through the
 * backend's engine_open / forward_step hooks. Every weight is uploaded once when the engine
 * is made (F32 as it is; Q8_0/Q4_0 as raw blocks dequantised by a kernel; F16/BF16 widened at
 * load and Q4_1 and the K-quants dequantised on the host, then converted) and stored in bf16,
 * or f32 with precision f32: so a quantised file takes as much GPU memory as a bf16 one. The
 * key/value cache (bf16 or f32, per slot) and the activations (f32) stay on the GPU; token
 * ids go in, the logits rows asked for come out. Attention is one block per (row, head) over
 * the cached prefix with the scores in shared memory, not a flash kernel.
 *
 * The per-operation table (cuda_backend.cu): operations take host pointers, as the seam
 * defines them, and each copies its inputs to the GPU and its result back; only weights stay
 * there, uploaded at first use. It computes what the CPU computes and is the reference the
 * resident path is tested against; training uses it.
 *
 * Training (float32 only; cuda_train.c): the frozen products of the linear layers, forward
 * and input gradient, run on the GPU; the LoRA products, norms, RoPE, attention and the
 * log-softmax stay on the CPU. Float64 training has no CUDA table (--device auto runs it on
 * the CPU, --device cuda refuses).
 *
 * Not implemented yet: quantised weights kept quantised on the GPU (a dequantising GEMM),
 * flash attention forward/backward, device-resident training (activations, LoRA products,
 * the chunked cross-entropy, DPO/SFT losses, AdamW), CUDA graphs for decode.
 *
 * Errors: a resident engine call returns PT_ERR_IO naming the step's operation and CUDA's or
 * cuBLAS's message (PT_ERR_OOM with the bytes when an allocation fails). A CUDA call that
 * fails inside a per-operation call (which returns nothing) is recorded; the next
 * pt_cuda_take_error returns it, and the engine and training model check it after every pass. */
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
/* Weight storage and GEMM inputs: bf16 (default) or f32 (reproduces the CPU's numbers to
 * float32 rounding); pt_backend_configure sets it from --precision. Drops weights already
 * uploaded when it changes; an engine made earlier keeps the precision it was made with. */
void pt_cuda_set_precision(pt_cuda_precision p);
pt_cuda_precision pt_cuda_get_precision(void);
/* Frees every uploaded weight (their host copies may go away after this). */
void pt_cuda_release_weights(void);
/* Bytes of weights held on the GPU. */
size_t pt_cuda_weight_bytes(void);
/* dx (n, W.cols) (+)= dy (n, W.rows) W on the GPU: the input gradient of a frozen product. */
void pt_cuda_matmul_dx(float *dx, const float *dy, const pt_weight *W, int n, int accumulate);

/* Test hook (never set by the CLI): after n_ops more operations (per-operation calls and
 * resident engine steps each count one), the next one fails as a CUDA error mid-run would,
 * with a message naming it; -1 turns it off. */
void pt_cuda_test_fault_after(long n_ops);
/* Counts one operation against the test hook; 1 when its fault is due now. */
int pt_cuda_fault_due(void);

/* The GPU-resident engine (cuda_engine.cu), the backend's whole-step hooks (backend.h). */
pt_status pt_cuda_engine_open(void **dev, const pt_model *m, int n_slots, int n_ctx, int max_rows);
void pt_cuda_engine_close(void *dev);
pt_status pt_cuda_engine_set_adapters(void *dev, const struct pt_adapter *const *adapters, const float *weights, int n);
pt_status pt_cuda_forward_step(void *dev, const pt_step *s, float *logits);
/* Bytes of GPU memory an open engine holds (weights, cache, workspace, adapters). */
size_t pt_cuda_engine_device_bytes(const void *dev);

#ifdef __cplusplus
}
#endif

#endif
