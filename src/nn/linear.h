/* The linear layer of a LoRA-adapted model, y = x W^T + b + scale * B (A drop(x)), as a
 * forward / backward pair for training. W is frozen (any storage type the engine reads);
 * only A and B receive gradients. Dropout acts on the LoRA input only, as in PEFT, with a
 * counter-based mask: element i of a call is dropped when hash(seed, i) < p, so the
 * backward pass regenerates the forward's mask from the seed instead of storing it.
 * Compiled for float32 and float64 (real.h); in float64 the frozen products go through
 * dequantised tiles of W in both directions. */
#ifndef PT_NN_LINEAR_H
#define PT_NN_LINEAR_H

#include <stdint.h>

#include "format/tensor.h"
#include "nn/real.h"

/* Rows of a quantised W dequantised at a time by the backward pass. */
#define PT_LINEAR_TILE 64

typedef struct {
    const pt_real *A, *B; /* (r, in), (out, r); the call has no LoRA path when A is NULL */
    pt_real *dA, *dB;     /* (r, in), (out, r) gradients (+=); NULL in passes without backward */
    int r;
    pt_real scale;        /* alpha / r */
    float dropout;        /* probability of zeroing an element of the LoRA input */
    uint64_t seed;        /* the dropout stream of this call: the same in forward and backward */
} PT_RN(pt_lora_call);

/* y (n, out) = x (n, in) W^T + bias (+= with accumulate) plus the LoRA path; u (n, r) receives
 * A drop(x) (kept for backward; required when lora has A). xd (n, in) is scratch, used only
 * with dropout > 0; wtile (PT_LINEAR_TILE, in) is scratch for float64. lora may be NULL. */
void PT_RN(pt_linear_forward)(pt_real *y, pt_real *u, pt_real *xd, pt_real *wtile, const pt_real *x, const pt_weight *W,
                              const float *bias, const PT_RN(pt_lora_call) *lora, int n, int accumulate);

/* dx (n, in) = dy (n, out) W (+= with accumulate) plus the LoRA path's input gradient (dx
 * NULL: only the LoRA gradients, for a layer whose input needs none);
 * lora->dA, lora->dB += their gradients. x and u are the forward's input and saved u.
 * Scratch: du (n, r), xd (n, in) (with dropout), wtile (PT_LINEAR_TILE, in) (quantised W). */
void PT_RN(pt_linear_backward)(pt_real *dx, pt_real *du, pt_real *xd, pt_real *wtile, const pt_real *dy, const pt_real *x,
                               const pt_real *u, const pt_weight *W, const PT_RN(pt_lora_call) *lora, int n, int accumulate);

/* The dropout keep-scale of element i of a call: 0 (dropped) or 1 / (1 - p). */
float pt_lora_dropout_scale(uint64_t seed, int64_t i, float p);
/* The stream whose element i is element i + k of `seed`'s: a call over rows that continue
 * another's (a piece of a micro-batch) keeps the whole's mask. */
uint64_t pt_lora_dropout_seek(uint64_t seed, int64_t k);

#endif
