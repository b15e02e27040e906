/* Layer kernels of the Llama-family decoder, one place for the math. Each layer is a
 * *_forward function (and, for training, a *_backward partner) taking outputs first, then
 * saved activations, then inputs, then sizes. Shapes: N = tokens in the batch, D = hidden
 * size, hd = head dim. Parameter gradients accumulate (+=); activation gradients are written.
 * Kernels over pt_real exist in float32 (these names) and float64 (suffix _f64): see real.h.
 * Model weights (norm weights, rotary frequencies) stay as stored. */
#ifndef PT_NN_NN_H
#define PT_NN_NN_H

#include <stddef.h>
#include <stdint.h>

#include "nn/real.h"

/* out (N, D) = in * rsqrt(mean(in^2) + eps) * weight; rstd (N) saved for backward (may be NULL). */
void PT_RN(pt_rmsnorm_forward)(pt_real *out, pt_real *rstd, const pt_real *in, const float *weight, int n, int dim, float eps);

/* Per-position rotation tables: cos/sin (N, hd/2) of pos[t] * inv_freq[i], in double
 * precision before rounding so long contexts stay exact. */
void PT_RN(pt_rope_tables)(pt_real *cos_t, pt_real *sin_t, const int *pos, int n, const double *inv_freq, int half);
/* In place, Hugging Face half-rotation layout: x' = x*cos + rotate_half(x)*sin for each of
 * n_heads heads of x (N, n_heads, hd). */
void PT_RN(pt_rope_forward)(pt_real *x, const pt_real *cos_t, const pt_real *sin_t, int n, int n_heads, int hd);

/* h (N, F) = silu(gate) * up. */
void PT_RN(pt_swiglu_forward)(pt_real *h, const pt_real *gate, const pt_real *up, int64_t n);

/* Causal attention of `n_q` query rows against keys/values k_cache, v_cache (n_ctx, KV*hd),
 * query row t attending to cache positions 0 .. pos[t] inclusive. q (n_q, H*hd), out
 * (n_q, H*hd). GQA: head h reads kv head h / (H / KV). The scores' scratch is allocated per
 * thread; PT_ERR_OOM (with the size) when it cannot be. */
pt_status pt_attention_forward(float *out, const float *q, const float *k_cache, const float *v_cache, const int *pos,
                          int n_q, int n_heads, int n_kv_heads, int hd);

/* logp of `target` under softmax(logits (V)), in double. */
double pt_log_softmax_at(const float *logits, int vocab, int target);


/* ---- training: backward partners and the training-only kernels ----------------------------
 * Sequences of a training batch are packed end to end: sequence s occupies rows
 * seq_start[s] .. seq_start[s] + seq_len[s] - 1 of every (N, ...) buffer. */

/* din (N, D) += gradient of rmsnorm w.r.t. its input (the input is always the residual
 * stream, hence +=); dweight (D) += its weight gradient, skipped when NULL. */
void PT_RN(pt_rmsnorm_backward)(pt_real *din, pt_real *dweight, const pt_real *dout, const pt_real *in, const float *weight,
                         const pt_real *rstd, int n, int dim);

/* In place: x (N, n_heads, hd) holds the gradient w.r.t. the rotated vectors on entry and the
 * gradient w.r.t. the unrotated ones on return (the transpose of the rotation). */
void PT_RN(pt_rope_backward)(pt_real *dx, const pt_real *cos_t, const pt_real *sin_t, int n, int n_heads, int hd);

/* dgate, dup (n) = gradient of h = silu(gate) * up; dgate may alias dh. */
void PT_RN(pt_swiglu_backward)(pt_real *dgate, pt_real *dup, const pt_real *dh, const pt_real *gate, const pt_real *up, int64_t n);

/* Rows of logits (m, V): logp[i] = log softmax(row i)[target[i]] (in double); each row is
 * replaced in place by its softmax probabilities, which the backward pass needs. */
void PT_RN(pt_logsoftmax_forward)(double *logp, pt_real *rows, const int32_t *target, int m, int vocab);
/* In place: rows (m, V) of probabilities become the gradient of sum_i coef[i] * logp[i]
 * w.r.t. the logits, coef[i] * (onehot(target[i]) - p_i). */
void PT_RN(pt_logsoftmax_backward)(pt_real *rows, const int32_t *target, const double *coef, int m, int vocab);

/* Causal GQA self-attention over packed sequences. q (N, H*hd) and k, v (N, KV*hd) are already
 * rotated; out (N, H*hd); lse (N, H) saves each query row's log-sum-exp of the scaled scores so
 * that the backward pass recomputes the probabilities instead of storing (T, T) per head.
 * scratch: pt_attention_scratch_elems(max_seq_len, H) elements (a (T, T) slot per thread). */
size_t pt_attention_scratch_elems(int max_seq_len, int n_heads);
void PT_RN(pt_attention_train_forward)(pt_real *out, pt_real *lse, const pt_real *q, const pt_real *k, const pt_real *v,
                                const int *seq_start, const int *seq_len, int n_seq, int n_heads, int n_kv_heads, int hd,
                                pt_real *scratch);
/* dq (N, H*hd), dk, dv (N, KV*hd) are written. */
void PT_RN(pt_attention_backward)(pt_real *dq, pt_real *dk, pt_real *dv, const pt_real *dout, const pt_real *out, const pt_real *lse,
                           const pt_real *q, const pt_real *k, const pt_real *v, const int *seq_start, const int *seq_len,
                           int n_seq, int n_heads, int n_kv_heads, int hd, pt_real *scratch);

#endif
