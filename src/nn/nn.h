/* Layer kernels of the Llama-family decoder, one place for the math. Each layer is a
 * *_forward function (and, for training, a *_backward partner) taking outputs first, then
 * saved activations, then inputs, then sizes. Shapes: N = tokens in the batch, D = hidden
 * size, hd = head dim. Parameter gradients accumulate (+=); activation gradients are written. */
#ifndef PT_NN_NN_H
#define PT_NN_NN_H

#include <stdint.h>

/* out (N, D) = in * rsqrt(mean(in^2) + eps) * weight; rstd (N) saved for backward (may be NULL). */
void pt_rmsnorm_forward(float *out, float *rstd, const float *in, const float *weight, int n, int dim, float eps);

/* Per-position rotation tables: cos/sin (N, hd/2) of pos[t] * inv_freq[i], in double
 * precision before rounding so long contexts stay exact. */
void pt_rope_tables(float *cos_t, float *sin_t, const int *pos, int n, const double *inv_freq, int half);
/* In place, Hugging Face half-rotation layout: x' = x*cos + rotate_half(x)*sin for each of
 * n_heads heads of x (N, n_heads, hd). */
void pt_rope_forward(float *x, const float *cos_t, const float *sin_t, int n, int n_heads, int hd);

/* h (N, F) = silu(gate) * up. */
void pt_swiglu_forward(float *h, const float *gate, const float *up, int64_t n);

/* Causal attention of `n_q` query rows against keys/values k_cache, v_cache (n_ctx, KV*hd),
 * query row t attending to cache positions 0 .. pos[t] inclusive. q (n_q, H*hd), out
 * (n_q, H*hd). GQA: head h reads kv head h / (H / KV). Scratch is not needed. */
void pt_attention_forward(float *out, const float *q, const float *k_cache, const float *v_cache, const int *pos,
                          int n_q, int n_heads, int n_kv_heads, int hd);

/* logp of `target` under softmax(logits (V)), in double. */
double pt_log_softmax_at(const float *logits, int vocab, int target);

#endif
