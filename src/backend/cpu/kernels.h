/* Inner loops of the CPU backend, private to src/backend/cpu and src/nn: weight-row dot
 * products for every storage type, row dequantisation, and the exponential of softmax.
 *
 * Each has a portable C version and an AVX-512 one (the dot products an AVX2 one too),
 * compiled with target attributes so the build needs no -march flag, and picked once at run
 * time from what the CPU reports (POLITUNE_KERNELS=generic or avx2 caps the choice, for
 * tests). Results are the naive dot product up to float32 rounding (the SIMD versions only
 * reorder the sums), except for the block types past Q8_0 / Q4_0 (Q4_1 ... Q6_K, IQ4_NL),
 * whose SIMD dot kernels multiply by an int8 copy of x rounded per 32 elements, as llama.cpp
 * does: each element of x moves by at most max|x| / 254 over its 32. */
#ifndef PT_BACKEND_CPU_KERNELS_H
#define PT_BACKEND_CPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "format/tensor.h"

/* out[r] = dot(row r of w, x) for r in [0, nr): w holds nr rows of `cols` elements of
 * `dtype` (F32 or any GGML block type), row_bytes apart. */
void pt_kern_dot_rows(float *out, const uint8_t *w, size_t row_bytes, pt_dtype dtype, const float *x, int nr, int cols);

/* dst (nr, cols) float32 from nr rows of quantised `dtype`, row_bytes apart; equal to
 * pt_dtype_to_f32 bit for bit. */
void pt_kern_dequant_rows(float *dst, const uint8_t *src, size_t row_bytes, pt_dtype dtype, int nr, int cols);

/* x[i] = exp(x[i] - shift) for i < n; returns the sum of the new values. */
float pt_kern_exp_sum(float *x, int n, float shift);

/* Largest element of x (n >= 1). */
float pt_kern_max(const float *x, int n);

/* Name of the kernel set in use ("avx512", "avx2" or "generic"), for benchmark reports. */
const char *pt_kern_name(void);
/* Caps the kernels' instruction set below what the CPU offers: "generic", "avx2" or "avx512"
 * (the CLI passes $POLITUNE_KERNELS; the library reads no environment). Call before the
 * first computation. PT_ERR_ARG for another name. */
pt_status pt_kern_limit(const char *name);

/* BLAS is run single-threaded and called from OpenMP threads on disjoint blocks, so only
 * one thread pool ever competes for the cores; this sets that up once (idempotent). */
void pt_kern_blas_init(void);

#endif
