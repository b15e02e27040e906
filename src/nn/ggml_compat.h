/* llama.cpp's CPU rounding, reproduced for the engine's opt-in `llamacpp` numerics mode
 * (docs/numerics.md). politune's own path multiplies float32 activations by the dequantised
 * weights and keeps keys and values in float32; llama.cpp (ggml's CPU backend) rounds in
 * four places, and these functions round the same way:
 *   - activations before each product with a weight, to the weight type's "vec_dot type":
 *     Q8_1 (int8 per 32 with an f16 scale d and an f16 s = d * sum of the int8s) against
 *     Q4_1 / Q5_1; Q8_0 (int8 per 32, f16 scale) against Q8_0, Q4_0, Q5_0, IQ4_NL; f16
 *     against F16; bf16 against BF16; F32 weights see float32;
 *   - keys and values as stored in its default F16 cache;
 *   - the query, converted to f16 for the K.Q product;
 *   - the softmax weights, converted to f16 for the V.weights product.
 * The integer block sums are exact, as in ggml; the float sums around them follow ggml's
 * formula (d_w * d_x * isum, plus m_w * s_x for the types with a minimum) but not its SIMD
 * lane order, so results agree with llama.cpp's to float32 rounding of those sums, not bit
 * for bit. The K-quants (Q8_K activations per 256) are not emulated: pt_ggml_supported says
 * which weight types are. */
#ifndef PT_NN_GGML_COMPAT_H
#define PT_NN_GGML_COMPAT_H

#include <stddef.h>

#include "format/tensor.h"
#include "util/status.h"

/* Whether products with weights of type t are emulated. */
int pt_ggml_supported(pt_dtype t);
/* Comma-separated names of those types, for messages. */
const char *pt_ggml_supported_names(void);

/* x[i] = the f16 value nearest x[i] (ties to even, as F16C's vcvtps2ph and ggml's scalar
 * conversion round), for i < n: what an F16 key/value cache holds. */
void pt_ggml_round_f16(float *x, size_t n);

/* y (n, W.rows) (+)= x (n, W.cols) W^T + bias, x rounded to the weight type's vec_dot type
 * first, as ggml_compute_forward_mul_mat does. W.dtype must be supported and W.cols a
 * multiple of 32 for the block types. PT_ERR_OOM when the rounded copy of x cannot be
 * allocated (y untouched). */
pt_status pt_ggml_matmul(float *y, const float *x, const pt_weight *W, const float *bias, int n, int accumulate);

/* Causal grouped-query attention as llama.cpp's decode step computes it without flash
 * attention: out (n_q, H*hd) from q (n_q, H*hd) against k_cache, v_cache (n_ctx, KVH*hd),
 * which hold f16-representable values (pt_ggml_round_f16); row t sees positions 0..pos[t].
 * Per head: s = f16(q) . k, p = softmax(s / sqrt(hd)) (ggml's vectorised exp, normalised in
 * float, the sum in double), out = sum f16(p) v, each sum in ggml_vec_dot_f16's order.
 * interleaved: Q and K came from a GGUF llama file in Meta's rotary order, so llama.cpp sums
 * their elements in that order. PT_ERR_OOM on a failed scratch allocation. */
pt_status pt_ggml_attention_forward(float *out, const float *q, const float *k_cache, const float *v_cache, const int *pos,
                                    int n_q, int n_heads, int n_kv_heads, int hd, int interleaved);

/* ggml's RMSNorm: out (n, dim) = (x * (1 / sqrtf(mean))) * w, mean = (float)(sum in double of
 * the float squares / dim) + eps. */
void pt_ggml_rmsnorm(float *out, const float *in, const float *w, int n, int dim, float eps);
/* ggml's RoPE without frequency scaling, in place on x (n, n_heads, hd), politune's
 * half-rotation layout: theta_i = pos * base^(-2/hd)^i multiplied up in float, cosf / sinf,
 * the rotation with ggml's build's fused first product. hd <= 512. */
void pt_ggml_rope(float *x, const int *pos, int n, int n_heads, int hd, float freq_base);
/* ggml's SwiGLU: h (n_rows, dim) = silu(gate) * up, silu from its vectorised exp in groups of
 * eight, expf for the rest of a row. h may be gate. */
void pt_ggml_swiglu(float *h, const float *gate, const float *up, int n_rows, int dim);

/* Test hook: one weight row (cols elements of type t) against x, rounded as pt_ggml_matmul
 * rounds it, by the portable code (simd 0) or the AVX2 kernel (simd 1; the portable code
 * where the build has no AVX2). The two must agree bit for bit. */
float pt_ggml_dot_for_test(const void *row, pt_dtype t, const float *x, int cols, int simd);

#endif
