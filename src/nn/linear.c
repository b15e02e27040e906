/* LoRA-adapted linear layer, forward and backward (see linear.h). In float32 the frozen
 * product goes through the backend's pt_matmul in the forward pass; the backward pass needs
 * dy W (no transpose), computed as for float32 weights over W dequantised whole where it is
 * small enough (pt_matmul_weight_f32: the same sums as on the float32 copy), and by the
 * backend's pt_matmul_input_grad (slabs of dequantised columns) otherwise. In float64 both directions
 * use dequantised tiles of rows. The LoRA
 * products are small GEMMs. All through pt_nn_gemm. */
#include "nn/linear.h"

#include <string.h>

#include "backend/cpu/matmul.h"
#include "nn/gemm.h"

#ifndef PT_F64 /* one mask for both precisions */
float pt_lora_dropout_scale(uint64_t seed, int64_t i, float p) {
    uint64_t z = seed + (uint64_t)i * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    float u = (float)(z >> 40) * (1.0f / 16777216.0f);
    return u < p ? 0.0f : 1.0f / (1.0f - p);
}

/* the counter above is seed + i * phi, so moving the start moves the seed */
uint64_t pt_lora_dropout_seek(uint64_t seed, int64_t k) { return seed + (uint64_t)k * 0x9e3779b97f4a7c15ull; }
#endif

/* xd = drop(x) for the call's mask. */
static void apply_dropout(pt_real *xd, const pt_real *x, const PT_RN(pt_lora_call) *l, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) xd[i] = x[i] * pt_lora_dropout_scale(l->seed, i, l->dropout);
}

/* Rows r0 .. r0 + nr - 1 of W into wtile (nr, in), in pt_real. */
static int load_tile(pt_real *wtile, const pt_weight *W, int r0) {
    const int in = W->cols, nr = W->rows - r0 < PT_LINEAR_TILE ? W->rows - r0 : PT_LINEAR_TILE;
    const size_t row_bytes = pt_dtype_nbytes(W->dtype, in);
#pragma omp parallel for schedule(static)
    for (int r = 0; r < nr; r++)
        pt_dtype_to_real(wtile + (size_t)r * in, (const uint8_t *)W->data + (size_t)(r0 + r) * row_bytes, W->dtype, in);
    return nr;
}

/* y (n, out) (+)= x (n, in) W^T + bias */
static void frozen_forward(pt_real *y, pt_real *wtile, const pt_real *x, const pt_weight *W, const float *bias, int n,
                           int accumulate) {
#ifdef PT_F64
    const int in = W->cols, out = W->rows;
    for (int r0 = 0; r0 < out; r0 += PT_LINEAR_TILE) {
        const int nr = load_tile(wtile, W, r0);
        PT_RN(pt_nn_gemm)(false, true, n, nr, in, 1, x, in, wtile, in, accumulate ? 1 : 0, y + r0, out);
    }
    if (bias)
        for (int i = 0; i < n; i++)
            for (int j = 0; j < out; j++) y[(size_t)i * out + j] += bias[j];
#else
    (void)wtile;
    pt_matmul_float(y, x, W, bias, n, accumulate);
#endif
}

void PT_RN(pt_linear_forward)(pt_real *y, pt_real *u, pt_real *xd, pt_real *wtile, const pt_real *x, const pt_weight *W,
                              const float *bias, const PT_RN(pt_lora_call) *lora, int n, int accumulate) {
    frozen_forward(y, wtile, x, W, bias, n, accumulate);
    if (!lora || !lora->A) return;
    const int in = W->cols, out = W->rows, r = lora->r;
    const pt_real *xin = x;
    if (lora->dropout > 0) {
        apply_dropout(xd, x, lora, (int64_t)n * in);
        xin = xd;
    }
    PT_RN(pt_nn_gemm)(false, true, n, r, in, 1, xin, in, lora->A, in, 0, u, r);             /* u (n, r) = drop(x) A^T */
    PT_RN(pt_nn_gemm)(false, true, n, out, r, lora->scale, u, r, lora->B, r, 1, y, out);   /* y += s u B^T */
}

/* dx (n, in) (+)= dy (n, out) W (out, in) */
static void input_grad(pt_real *dx, pt_real *wtile, const pt_real *dy, const pt_weight *W, int n, int accumulate) {
    const int in = W->cols, out = W->rows;
#ifndef PT_F64
    const float *wf = pt_matmul_weight_f32(W); /* (out, in) */
    if (wf) {
        PT_RN(pt_nn_gemm)(false, false, n, in, out, 1, dy, out, wf, in, accumulate ? 1 : 0, dx, in);
        return;
    }
    (void)wtile;
    pt_matmul_input_grad(dx, dy, W, n, accumulate);
    return;
#endif
    for (int r0 = 0; r0 < out; r0 += PT_LINEAR_TILE) {
        const int nr = load_tile(wtile, W, r0);
        PT_RN(pt_nn_gemm)(false, false, n, in, nr, 1, dy + r0, out, wtile, in, accumulate || r0 > 0 ? 1 : 0, dx, in);
    }
}

void PT_RN(pt_linear_backward)(pt_real *dx, pt_real *du, pt_real *xd, pt_real *wtile, const pt_real *dy, const pt_real *x,
                               const pt_real *u, const pt_weight *W, const PT_RN(pt_lora_call) *lora, int n, int accumulate) {
    if (dx) input_grad(dx, wtile, dy, W, n, accumulate);
    if (!lora || !lora->A) return;
    const int in = W->cols, out = W->rows, r = lora->r;
    const pt_real s = lora->scale;
    /* du (n, r) = s dy B; dB (out, r) += s dy^T u */
    PT_RN(pt_nn_gemm)(false, false, n, r, out, s, dy, out, lora->B, r, 0, du, r);
    if (lora->dB) PT_RN(pt_nn_gemm)(true, false, out, r, n, s, dy, out, u, r, 1, lora->dB, r);
    const pt_real *xin = x;
    if (lora->dropout > 0) {
        apply_dropout(xd, x, lora, (int64_t)n * in);
        xin = xd;
    }
    /* dA (r, in) += du^T drop(x) */
    if (lora->dA) PT_RN(pt_nn_gemm)(true, false, r, in, n, 1, du, r, xin, in, 1, lora->dA, in);
    if (!dx) return;
    if (lora->dropout <= 0) { /* dx += du A */
        PT_RN(pt_nn_gemm)(false, false, n, in, r, 1, du, r, lora->A, in, 1, dx, in);
        return;
    }
    PT_RN(pt_nn_gemm)(false, false, n, in, r, 1, du, r, lora->A, in, 0, xd, in);
    const int64_t total = (int64_t)n * in;
#pragma omp parallel for schedule(static) if (total > 65536)
    for (int64_t i = 0; i < total; i++) dx[i] += xd[i] * pt_lora_dropout_scale(lora->seed, i, lora->dropout);
}
