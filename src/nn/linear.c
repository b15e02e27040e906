/* LoRA-adapted linear layer, forward and backward (see linear.h). The frozen product goes
 * through the backend's pt_matmul in the forward pass; the backward pass needs dy W (no
 * transpose), computed directly for float32 weights and tile by tile from dequantised rows
 * for Q8_0 / Q4_0 weights; the LoRA products are small GEMMs. All through pt_nn_sgemm. */
#include "nn/linear.h"

#include <string.h>

#include "backend/cpu/matmul.h"
#include "nn/gemm.h"

float pt_lora_dropout_scale(uint64_t seed, int64_t i, float p) {
    uint64_t z = seed + (uint64_t)i * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    float u = (float)(z >> 40) * (1.0f / 16777216.0f);
    return u < p ? 0.0f : 1.0f / (1.0f - p);
}

/* xd = drop(x) for the call's mask. */
static void apply_dropout(float *xd, const float *x, const pt_lora_call *l, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) xd[i] = x[i] * pt_lora_dropout_scale(l->seed, i, l->dropout);
}

void pt_linear_forward(float *y, float *u, float *xd, const float *x, const pt_weight *W, const float *bias,
                       const pt_lora_call *lora, int n, int accumulate) {
    pt_matmul(y, x, W, bias, n, accumulate);
    if (!lora || !lora->A) return;
    const int in = W->cols, out = W->rows, r = lora->r;
    const float *xin = x;
    if (lora->dropout > 0) {
        apply_dropout(xd, x, lora, (int64_t)n * in);
        xin = xd;
    }
    pt_sgemm_nt(u, xin, lora->A, n, r, in, 0);                              /* u (n, r) = drop(x) A^T */
    pt_nn_sgemm(false, true, n, out, r, lora->scale, u, r, lora->B, r, 1.0f, y, out); /* y += s u B^T */
}

/* dx (n, in) (+)= dy (n, out) W (out, in) */
static void input_grad(float *dx, float *wtile, const float *dy, const pt_weight *W, int n, int accumulate) {
    const int in = W->cols, out = W->rows;
    if (W->dtype == PT_F32) {
        pt_nn_sgemm(false, false, n, in, out, 1.0f, dy, out, W->data, in, accumulate ? 1.0f : 0.0f, dx, in);
        return;
    }
    const size_t row_bytes = pt_dtype_nbytes(W->dtype, in);
    for (int r0 = 0; r0 < out; r0 += PT_LINEAR_TILE) {
        const int nr = out - r0 < PT_LINEAR_TILE ? out - r0 : PT_LINEAR_TILE;
#pragma omp parallel for schedule(static)
        for (int r = 0; r < nr; r++)
            pt_dtype_to_f32(wtile + (size_t)r * in, (const uint8_t *)W->data + (size_t)(r0 + r) * row_bytes, W->dtype, in);
        pt_nn_sgemm(false, false, n, in, nr, 1.0f, dy + r0, out, wtile, in, accumulate || r0 > 0 ? 1.0f : 0.0f, dx, in);
    }
}

void pt_linear_backward(float *dx, float *du, float *xd, float *wtile, const float *dy, const float *x, const float *u,
                        const pt_weight *W, const pt_lora_call *lora, int n, int accumulate) {
    if (dx) input_grad(dx, wtile, dy, W, n, accumulate);
    if (!lora || !lora->A) return;
    const int in = W->cols, out = W->rows, r = lora->r;
    const float s = lora->scale;
    /* du (n, r) = s dy B; dB (out, r) += s dy^T u */
    pt_nn_sgemm(false, false, n, r, out, s, dy, out, lora->B, r, 0.0f, du, r);
    if (lora->dB) pt_nn_sgemm(true, false, out, r, n, s, dy, out, u, r, 1.0f, lora->dB, r);
    const float *xin = x;
    if (lora->dropout > 0) {
        apply_dropout(xd, x, lora, (int64_t)n * in);
        xin = xd;
    }
    /* dA (r, in) += du^T drop(x) */
    if (lora->dA) pt_nn_sgemm(true, false, r, in, n, 1.0f, du, r, xin, in, 1.0f, lora->dA, in);
    if (!dx) return;
    if (lora->dropout <= 0) { /* dx += du A */
        pt_nn_sgemm(false, false, n, in, r, 1.0f, du, r, lora->A, in, 1.0f, dx, in);
        return;
    }
    pt_nn_sgemm(false, false, n, in, r, 1.0f, du, r, lora->A, in, 0.0f, xd, in);
    const int64_t total = (int64_t)n * in;
#pragma omp parallel for schedule(static) if (total > 65536)
    for (int64_t i = 0; i < total; i++) dx[i] += xd[i] * pt_lora_dropout_scale(lora->seed, i, lora->dropout);
}
