/* The CUDA backend's training table (float32): the CPU's table with the linear layers'
 * frozen products, y = x W^T and dx = dy W, moved to the GPU (cuda_backend.cu), which is
 * where a training step spends nearly all of its arithmetic. The LoRA path around them
 * (dropout mask, u = drop(x) A^T, y += s u B^T and their gradients) is the same arithmetic as
 * src/nn/linear.c's, on the CPU, until the LoRA products move to the GPU too. Compiled only
 * in CUDA builds (PT_HAVE_CUDA). */
#ifdef PT_HAVE_CUDA
#include <string.h>

#include "backend/backend_train.h"
#include "backend/cuda/cuda_backend.h"
#include "nn/gemm.h"

/* xd = drop(x) for the call's mask */
static void dropout(float *xd, const float *x, const pt_lora_call *l, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) xd[i] = x[i] * pt_lora_dropout_scale(l->seed, i, l->dropout);
}

static void linear_forward(float *y, float *u, float *xd, float *wtile, const float *x, const pt_weight *W, const float *bias,
                           const pt_lora_call *lora, int n, int accumulate) {
    (void)wtile;
    pt_cuda_backend()->matmul(y, x, W, bias, n, accumulate);
    if (!lora || !lora->A) return;
    const int in = W->cols, out = W->rows, r = lora->r;
    const float *xin = x;
    if (lora->dropout > 0) {
        dropout(xd, x, lora, (int64_t)n * in);
        xin = xd;
    }
    pt_nn_gemm(false, true, n, r, in, 1, xin, in, lora->A, in, 0, u, r);           /* u (n, r) = drop(x) A^T */
    pt_nn_gemm(false, true, n, out, r, lora->scale, u, r, lora->B, r, 1, y, out); /* y += s u B^T */
}

static void linear_backward(float *dx, float *du, float *xd, float *wtile, const float *dy, const float *x, const float *u,
                            const pt_weight *W, const pt_lora_call *lora, int n, int accumulate) {
    (void)wtile;
    if (dx) pt_cuda_matmul_dx(dx, dy, W, n, accumulate);
    if (!lora || !lora->A) return;
    const int in = W->cols, out = W->rows, r = lora->r;
    const float s = lora->scale;
    pt_nn_gemm(false, false, n, r, out, s, dy, out, lora->B, r, 0, du, r);           /* du (n, r) = s dy B */
    if (lora->dB) pt_nn_gemm(true, false, out, r, n, s, dy, out, u, r, 1, lora->dB, r); /* dB += s dy^T u */
    const float *xin = x;
    if (lora->dropout > 0) {
        dropout(xd, x, lora, (int64_t)n * in);
        xin = xd;
    }
    if (lora->dA) pt_nn_gemm(true, false, r, in, n, 1, du, r, xin, in, 1, lora->dA, in); /* dA += du^T drop(x) */
    if (!dx) return;
    if (lora->dropout <= 0) { /* dx += du A */
        pt_nn_gemm(false, false, n, in, r, 1, du, r, lora->A, in, 1, dx, in);
        return;
    }
    pt_nn_gemm(false, false, n, in, r, 1, du, r, lora->A, in, 0, xd, in);
    const int64_t total = (int64_t)n * in;
#pragma omp parallel for schedule(static) if (total > 65536)
    for (int64_t i = 0; i < total; i++) dx[i] += xd[i] * pt_lora_dropout_scale(lora->seed, i, lora->dropout);
}

const pt_train_ops *pt_cuda_train_ops(void) {
    static pt_train_ops ops;
    static int ready;
    if (!ready) {
        ops = *pt_backend_train_ops(pt_backend_cpu());
        ops.linear_forward = linear_forward;
        ops.linear_backward = linear_backward;
        ready = 1;
    }
    return &ops;
}
#endif
