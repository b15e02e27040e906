/* The model as training sees it: a forward pass over a packed micro-batch that keeps the
 * activations the backward pass needs, and the backward pass itself, which sends gradients
 * through the frozen weights and accumulates them only into the LoRA A and B matrices.
 *
 * Output of a forward pass: logp[i], the log-probability of each loss row's target token
 * (batch.h). The backward pass differentiates sum_i coef[i] * logp[i]; the losses turn
 * their own gradient into these per-row coefficients.
 *
 * Everything is allocated once by pt_tmodel_new for a shape (sequences, tokens, longest
 * sequence); forward and backward do not allocate. With `recompute`, only each layer's input
 * is kept and the rest of a layer's activations are recomputed during the backward pass
 * (about one more forward pass of work for a fraction of the memory). Vocabulary logits of
 * the loss rows are kept between the passes while they fit in `logits_bytes`; beyond that
 * they are processed in chunks and recomputed in the backward pass.
 *
 * The arithmetic is float32, or float64 with shape.f64 (the reference implementations'
 * precision: their gradients and optimiser steps digit for digit, at a few times the cost;
 * see nn/real.h). Weights and LoRA parameters are stored as they are either way. */
#ifndef PT_TRAIN_TMODEL_H
#define PT_TRAIN_TMODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "model/adapter.h"
#include "model/model.h"
#include "train/batch.h"
#include "train/params.h"

typedef struct {
    int max_seq;          /* sequences per micro-batch */
    int max_tok;          /* tokens per micro-batch */
    int max_len;          /* longest sequence */
    bool recompute;
    size_t logits_bytes;  /* 0: a default of 1 GiB */
    bool f64;             /* float64 arithmetic */
    /* float64 only, may be NULL: the backward pass adds its gradient here ((ps->total),
     * laid out like ps->grad) instead of into the float32 ps->grad, so that the caller rounds
     * a step's sum once (data parallelism sums it over ranks first) */
    double *grad64;
} pt_tmodel_shape;

typedef struct pt_tmodel pt_tmodel;

/* `a` and `ps` may be NULL (base model only); ps gives the gradient arrays. */
pt_status pt_tmodel_new(pt_tmodel **out, const pt_model *m, const pt_adapter *a, const pt_lora_params *ps,
                        const pt_tmodel_shape *shape);
void pt_tmodel_free(pt_tmodel *t);
/* Bytes of activations and scratch held. */
size_t pt_tmodel_bytes(const pt_tmodel *t);

/* Runs the batch with the adapter on (lora) or off. With `train`, keeps what backward needs
 * and applies LoRA dropout from the stream `drop_seed`. logp (b->n_loss) receives each loss
 * row's log-probability. A pass without `train` reuses the kept buffers, so it belongs before
 * the train pass it accompanies (the reference pass), not between it and its backward. */
pt_status pt_tmodel_forward(pt_tmodel *t, const pt_tbatch *b, bool lora, bool train, uint64_t drop_seed, double *logp);

/* Backward of sum_i coef[i] * logp[i] after a train forward of the same batch: adds the
 * gradient into the LoRA gradient arrays. Fails only when the backend does (a CUDA error). */
pt_status pt_tmodel_backward(pt_tmodel *t, const pt_tbatch *b, const double *coef);

#endif
