/* Training configuration: one table of named keys shared by the CLI flags (--key value,
 * with dashes), `key=value` arguments and YAML recipes, so every hyper-parameter has one
 * name, one parser, one range check and one help line. */
#ifndef PT_TRAIN_CONFIG_H
#define PT_TRAIN_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "train/loss.h"
#include "train/optim.h"
#include "util/status.h"

typedef enum { PT_TRAIN_DPO = 0, PT_TRAIN_SFT } pt_train_method;
/* auto: float64 for models under PT_PRECISION_AUTO_F64_PARAMS parameters (test and demo
 * scale, where it costs little and matches float64 reference implementations exactly),
 * float32 above. */
typedef enum { PT_PRECISION_AUTO = 0, PT_PRECISION_F32, PT_PRECISION_F64 } pt_train_precision;
#define PT_PRECISION_AUTO_F64_PARAMS 10000000

typedef struct {
    pt_train_method method;
    char *model, *data, *out;   /* paths */
    char *eval_data;            /* held-out DPO pairs evaluated during training (NULL: none) */
    char *init_adapter;         /* start from this PEFT adapter (NULL: a fresh one) */
    char *resume;               /* an output directory or one of its checkpoints */
    /* data */
    char *template_name;        /* "alpaca" (default), "chat" (the model's own), "none", or a template name */
    int max_seq_len;
    bool skip_bad, shuffle;
    uint64_t seed;
    /* LoRA */
    int rank;
    double alpha;
    double dropout;             /* < 0: the initial adapter's own (0.05 for a fresh one) */
    unsigned targets;
    bool rslora;
    /* loss */
    pt_dpo_loss_type loss_type;
    double beta, label_smoothing;
    /* optimisation */
    double lr;
    pt_adamw adam;
    pt_schedule schedule;
    long warmup_steps;
    int batch_size, grad_accum, epochs;
    double max_grad_norm;       /* 0: no clipping */
    long max_steps;             /* 0: run `epochs` epochs */
    /* run */
    long save_every;            /* optimiser steps between checkpoints (0: only at the end) */
    int keep_checkpoints;
    bool precompute_ref, recompute;
    pt_train_precision precision;
    char *ref_cache;            /* directory of the reference log-prob cache (NULL: out) */
    int threads;                /* 0: all cores */
    /* compass evaluation during training (eval/compass.h, pt_compass_track) */
    long eval_every;            /* optimiser steps between evaluations (0: none; never at step 0) */
    char *eval_templates;       /* template selection (NULL: all), see pt_templates_select */
    char *eval_option_scoring;  /* option scoring by name (NULL: number), see pt_option_scoring */
    char *eval_dir;             /* result directory (NULL: OUT/compass) */
    char *grad_dump;            /* debug, for oracle tests: the first step's LoRA gradients
                                   (before clipping) written here as safetensors, PEFT keys */
    int eval_max_new_tokens;    /* open prompts' reply length (0: no open prompts) */
} pt_train_config;

/* The paper's hyper-parameters (rank 16, alpha 32, q/v/MLP/head, lr 5e-4, cosine, warm-up 100,
 * batch 4 x accumulation 16, 4 epochs, beta 0.1, max length 1024). */
void pt_train_config_defaults(pt_train_config *c);
void pt_train_config_free(pt_train_config *c);

/* Sets a key from its text form. Dashes in the key count as underscores; booleans take
 * true/false/1/0/yes/no; lists (adam_betas, lora_targets) are comma-separated. An unknown
 * key or a bad value is PT_ERR_ARG naming the key. */
pt_status pt_train_config_set(pt_train_config *c, const char *key, const char *value);
/* Whether a key names a boolean (a bare --key sets it, --no-key clears it). -1: unknown key. */
int pt_train_config_is_bool(const char *key);
/* The value of a key in the text form pt_train_config_set reads ("" for unset strings). */
void pt_train_config_get(const pt_train_config *c, const char *key, char *buf, size_t size);

/* Calls fn for every key that shapes the result of a run (not paths, threads, or where and how
 * often checkpoints go), in a fixed order: what a resumed run must share with the original.
 * The run's length (epochs, max_steps) is left out so that a resumed run may extend it. */
void pt_train_config_each_trajectory_key(void (*fn)(void *user, const char *key), void *user);

/* Prints every key with its default and help line. */
void pt_train_config_help(FILE *f);

/* Reads a YAML recipe: a flat mapping of keys to scalars or lists of scalars. Keys are
 * applied in file order; an unknown key or bad value is PT_ERR_ARG naming the file, line and
 * key. */
pt_status pt_train_recipe_load(pt_train_config *c, const char *path);

#endif
