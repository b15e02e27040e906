/* Training checkpoints: OUT/checkpoint-<step>/ holds the adapter (PEFT files), the AdamW
 * moments (optimizer.safetensors: exp_avg.<key>, exp_avg_sq.<key>) and trainer_state.json
 * (step, data position, the shuffle generator's state, the configuration it was made with).
 *
 * Written so that no failure damages an earlier checkpoint: everything goes into a
 * temporary directory first (each file written, fsynced and renamed), which is then renamed
 * into place; OUT/latest names the newest checkpoint and is itself replaced atomically.
 * Older checkpoints beyond `keep` are removed only after the new one is complete. */
#ifndef PT_TRAIN_CHECKPOINT_H
#define PT_TRAIN_CHECKPOINT_H

#include <stdint.h>

#include "model/adapter.h"
#include "train/config.h"
#include "train/params.h"
#include "util/rng.h"

typedef struct {
    long step;          /* optimiser steps completed */
    int epoch;          /* epoch in progress (0-based) */
    long cursor;        /* examples of that epoch already consumed */
    pt_rng rng_epoch;   /* the shuffle generator before this epoch's permutation was drawn */
    uint64_t data_hash; /* pt_dataset_hash of the training data */
    long tokens;        /* policy tokens processed so far */
    double elapsed_s;   /* training time so far */
} pt_train_state;

pt_status pt_checkpoint_save(const char *out_dir, const pt_adapter *a, const pt_lora_params *ps, const pt_train_state *s,
                             const pt_train_config *cfg, int keep, char *saved_dir, size_t saved_size);

/* Resolves `dir` (an output directory: its newest complete checkpoint; or a checkpoint
 * directory itself) to a malloc'd checkpoint path. */
pt_status pt_checkpoint_find(const char *dir, char **ckpt_dir);

/* Reads trainer_state.json, checking that every key shaping the run has the value it has in
 * `cfg` (else PT_ERR_ARG naming the key). */
pt_status pt_checkpoint_load_state(const char *ckpt_dir, const pt_train_config *cfg, pt_train_state *s);
/* Reads the AdamW moments into ps->m and ps->v. */
pt_status pt_checkpoint_load_moments(const char *ckpt_dir, pt_lora_params *ps);

#endif
