/* Held-out preference evaluation for DPO training (what TRL's DPOTrainer does with an
 * eval_dataset): the DPO metrics of pairs the run does not train on, with the adapter as it
 * is at that moment. Per pair, the summed response log-probabilities of the policy (adapter
 * on) and the reference (adapter off) give the implicit rewards beta * (policy - reference)
 * of the chosen and the rejected response; the metrics are their means over the pairs, the
 * fraction of pairs whose chosen reward is the higher (accuracy), the mean margin, the mean
 * loss and the mean log-probabilities (length-averaged for IPO, as the loss uses them).
 *
 * The passes run on the training model without `train`: no dropout, no random numbers, no
 * gradients, so an evaluation between two optimiser steps leaves the run's result exactly as
 * it would be without it. The reference log-probabilities depend only on the frozen weights;
 * they are computed at the first evaluation and kept. */
#ifndef PT_TRAIN_HELDOUT_H
#define PT_TRAIN_HELDOUT_H

#include <stdbool.h>

#include "train/batch.h"
#include "train/data.h"
#include "train/loss.h"
#include "train/metrics.h"
#include "train/tmodel.h"

typedef struct {
    pt_dataset data;
    int batch;           /* pairs per forward pass */
    int max_tok, max_len; /* of the largest pass */
    double *ref;         /* (n, 2) reference log-probs of chosen and rejected, once have_ref */
    bool have_ref;
    double *logp;        /* (max_tok) per loss row */
    double *seq;         /* (2 * batch) per sequence */
} pt_heldout;

/* Reads the pairs (the same reading, templating and truncation as the training data: `o`
 * with o->pairs set) and sizes the passes for `batch` pairs each. */
pt_status pt_heldout_load(pt_heldout *h, const char *path, const pt_data_opts *o, int batch);
void pt_heldout_free(pt_heldout *h);

/* Sequences, tokens and longest sequence of its largest pass: the training model and batch
 * must hold them. */
void pt_heldout_shape(const pt_heldout *h, int *max_seq, int *max_tok, int *max_len);

/* Evaluates every pair with the adapter `tm` was made with, packing passes into `b`. Returns
 * the metrics with step left 0. */
pt_status pt_heldout_evaluate(pt_heldout *h, pt_tmodel *tm, pt_tbatch *b, pt_dpo_loss_type type, double beta, double label_smoothing,
                              pt_eval_metrics *out);

#endif
