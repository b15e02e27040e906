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
