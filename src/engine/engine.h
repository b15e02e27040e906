/* The inference engine: a batched forward pass over sequences of different lengths, each
 * appending to its own slot of a key/value cache, producing vocabulary logits.
 *
 * A batch is a list of (slot, tokens) pairs. Tokens of all sequences are laid end to end as
 * the rows of one matrix, so every linear layer is a single GEMM over the whole batch with
 * no padding; only attention looks at sequence boundaries. */
#ifndef PT_ENGINE_ENGINE_H
#define PT_ENGINE_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "model/model.h"

struct pt_adapter;

typedef struct {
    int n_seq;
    const int *slot;              /* (n_seq) distinct cache slots */
    const int32_t *const *ids;    /* (n_seq) token arrays */
    const int *n_tokens;          /* (n_seq) lengths, each >= 1 */
} pt_batch;

/* pt_logits_mode, pt_engine and the engine functions an application uses: include/politune.h. */

typedef struct pt_engine pt_engine;

/* n_slots sequences of up to n_ctx tokens each (n_ctx <= 0: the model's context length,
 * capped at 4096). */
pt_status pt_engine_new(pt_engine **out, const pt_model *m, int n_slots, int n_ctx);
void pt_engine_free(pt_engine *e);

/* Applies a LoRA adapter (NULL: none) to every following forward pass: a list of one at scale 1. */
void pt_engine_set_adapter(pt_engine *e, const struct pt_adapter *a);

/* Applies n LoRA adapters (0..PT_ENGINE_MAX_ADAPTERS), each with its own scale, unfused:
 * y = W x + sum_i scales[i] * (alpha_i / r_i) * B_i (A_i x), added in list order. Scale 0 gives
 * the base model exactly; one adapter at scale 1 gives pt_engine_set_adapter's result bit for
 * bit. The list is copied, the adapters are not: they must outlive their use. Every slot's
 * scales go back to these defaults. */
#define PT_ENGINE_MAX_ADAPTERS 16
pt_status pt_engine_set_adapters(pt_engine *e, const struct pt_adapter *const *adapters, const float *scales, int n);
/* A slot's own scales over the engine's adapter list (pt_engine_n_adapters of them; NULL: the
 * defaults), for the batcher: sequences of one batch may each mix the adapters differently. */
pt_status pt_engine_set_slot_scales(pt_engine *e, int slot, const float *scales);
int pt_engine_n_adapters(const pt_engine *e);

/* Steering (docs/steering.md): adds scale * s->v[l] to the residual stream at the output of
 * every layer l that the vector has and `layers` (n_layers; NULL: all) selects, at every
 * position of every slot. NULL s: none. The vector must outlive its use. */
struct pt_steer;
pt_status pt_engine_set_steer(pt_engine *e, const struct pt_steer *s, float scale, const bool *layers);
/* For steer build: while `sums` (n_layers, dim) is set, each forward pass of one sequence adds
 * the residual stream at every layer's output, rows from_row on, into it. NULL: off. */
void pt_engine_set_capture(pt_engine *e, double *sums, int from_row);

/* The rounding of the CPU forward pass (docs/numerics.md). EXACT, the default: float32
 * activations against the dequantised weights, float32 keys and values. LLAMACPP: llama.cpp's
 * CPU rounding (8-bit activations per 32 against block weights, f16 keys, values, queries and
 * attention weights; nn/ggml_compat.h), to reproduce its greedy tokens on the same file: less
 * exact than EXACT, so opt-in. */
typedef enum { PT_NUMERICS_EXACT = 0, PT_NUMERICS_LLAMACPP } pt_numerics;
/* "exact" or "llamacpp"; PT_ERR_ARG for another name. */
pt_status pt_numerics_parse(const char *name, pt_numerics *out);
const char *pt_numerics_name(pt_numerics n);
/* The numerics of the engines made from now on (the CLI's --numerics); EXACT until set. */
void pt_numerics_set_default(pt_numerics n);
pt_numerics pt_numerics_default(void);
/* Switches e's numerics while every slot is empty. PT_ERR_ARG, naming the tensor, when the
 * model has a weight type LLAMACPP does not emulate, on a backend that runs whole steps (the
 * mode is CPU only), or with tokens cached. */
pt_status pt_engine_set_numerics(pt_engine *e, pt_numerics n);

const pt_model *pt_engine_model(const pt_engine *e);
int pt_engine_n_slots(const pt_engine *e);
int pt_engine_n_ctx(const pt_engine *e);
int pt_engine_slot_len(const pt_engine *e, int slot);
/* Forgets the tail of a slot's cache beyond `len` tokens (len 0 empties it). */
pt_status pt_engine_truncate(pt_engine *e, int slot, int len);

/* Runs the batch and returns logits in an engine-owned buffer valid until the next call:
 * (n_seq, V) for PT_LOGITS_LAST, (sum n_tokens, V) for PT_LOGITS_ALL. */
pt_status pt_engine_forward(pt_engine *e, const pt_batch *b, pt_logits_mode mode, const float **logits);

/* Convenience: one sequence appended to `slot`. */
pt_status pt_engine_forward_one(pt_engine *e, int slot, const int32_t *ids, int n, pt_logits_mode mode,
                                const float **logits);

/* Bytes held by the engine (cache + workspace). */
size_t pt_engine_bytes(const pt_engine *e);

#endif
