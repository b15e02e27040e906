/* LoRA fine-tuning of a frozen base model with DPO or SFT: the training loop.
 *
 * pt_train_run reads the data, creates (or loads, or resumes) the adapter, and runs
 * optimiser steps: each step takes up to grad_accum micro-batches of batch_size examples in
 * the (seeded, per-epoch) shuffled order — a step never crosses an epoch's end — runs the
 * reference (adapter off; or the --precompute-ref cache) and policy passes, differentiates
 * the loss averaged over the step's pairs (DPO) or response tokens (SFT), clips the
 * gradient norm, and applies AdamW at the scheduled learning rate. It writes metrics rows
 * per step, checkpoints every save_every steps and at the end, and the final adapter to
 * OUT/adapter_config.json + OUT/adapter_model.safetensors. With eval_data, held-out pairs
 * are evaluated (train/heldout.h) at step 0, every eval_every steps and at the end, into
 * OUT/eval_metrics.jsonl / .csv; the adapter comes out bit for bit as without them.
 *
 * Determinism: dropout masks are a function of (seed, step, micro-batch, layer, target) and
 * the shuffle order of (seed, epoch), so a resumed run repeats the uninterrupted one bit for
 * bit at the same thread count. A non-finite loss, gradient or parameter stops the run
 * before anything is written for that step (PT_ERR_NUMERIC); earlier checkpoints stay.
 *
 * Under an MPI launcher (dist/dist.h) every rank calls pt_train_run alike and takes a
 * contiguous share of each step's examples; gradients and per-example figures are summed
 * over the ranks, so a step is the single-process step (float64: bit for bit), and rank 0
 * alone writes files and calls the hooks' on_step / on_note (docs/distributed.md). */
#ifndef PT_TRAIN_TRAIN_H
#define PT_TRAIN_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "model/adapter.h"
#include "model/model.h"
#include "train/config.h"
#include "train/metrics.h"

typedef struct {
    void (*on_step)(void *user, const pt_train_metrics *m); /* after every optimiser step */
    void (*on_note)(void *user, const char *msg);           /* one line of information */
    void *user;
    /* Called after every optimiser step's checkpoint with the live adapter (read, never
     * modified), e.g. the compass evaluation of --eval-every (eval/train_eval.h); it decides
     * whether the step is due, and may leave a line for on_note in note. May be NULL. */
    pt_status (*evaluate)(void *eval_user, const pt_model *m, const pt_adapter *a, long step, char *note, size_t note_cap);
    void *eval_user;
} pt_train_hooks;

typedef struct {
    int n_examples, n_skipped, n_truncated;
    long n_cut_tokens;
    long start_step, end_step, total_steps;
    int64_t n_trainable;
    size_t activation_bytes;
    pt_train_metrics last;    /* of the last step run (zero if none) */
    int n_eval_pairs;         /* held-out pairs (eval_data), 0 without */
    int n_evals;              /* held-out evaluations made by this run (not those a resumed run found made) */
    pt_eval_metrics eval_first, eval_last; /* of the first and the last of them */
    char checkpoint[1024];    /* the last checkpoint written */
} pt_train_result;

pt_status pt_train_run(const pt_train_config *cfg, const pt_model *m, const pt_train_hooks *hooks, pt_train_result *res);

#endif
