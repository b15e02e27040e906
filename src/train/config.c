/* The training keys: defaults, parsing with range checks, printing, help. */
#include "train/config.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "model/adapter.h"

typedef enum { K_STR, K_INT, K_LONG, K_DOUBLE, K_BOOL, K_U64, K_METHOD, K_TARGETS, K_LOSS, K_SCHED, K_BETAS, K_PRECISION } kind;

typedef struct {
    const char *name;
    kind k;
    size_t off;
    double lo, hi;   /* numeric range, inclusive */
    bool trajectory; /* shapes the result of a run (epochs and max_steps do too, but a resumed run
                      * may extend them; with a cosine or linear schedule that changes the rates) */
    const char *help;
} key_def;

#define OFF(f) offsetof(pt_train_config, f)
#define BIG 1e300
static const key_def keys[] = {
    {"method", K_METHOD, OFF(method), 0, 0, true, "dpo or sft"},
    {"model", K_STR, OFF(model), 0, 0, false, "base model: GGUF file or Hugging Face directory"},
    {"data", K_STR, OFF(data), 0, 0, false, "dataset: PoliTune chat JSON, JSONL (prompt/chosen/rejected, prompt/response, messages, *_ids)"},
    {"eval_data", K_STR, OFF(eval_data), 0, 0, false, "held-out DPO pairs (the formats of data), evaluated at step 0, every eval_every steps and at the end into OUT/eval_metrics.jsonl"},
    {"out", K_STR, OFF(out), 0, 0, false, "output directory: adapter, checkpoints, metrics"},
    {"init_adapter", K_STR, OFF(init_adapter), 0, 0, false, "start from this PEFT adapter instead of a fresh one"},
    {"resume", K_STR, OFF(resume), 0, 0, false, "continue from an output directory's newest checkpoint (or a checkpoint directory)"},
    {"template", K_STR, OFF(template_name), 0, 0, true, "prompt template for text data: alpaca, chat (the model's), none, or a name"},
    {"max_seq_len", K_INT, OFF(max_seq_len), 2, 1 << 20, true, "longest prompt + response; prompts are cut from the left first"},
    {"skip_bad", K_BOOL, OFF(skip_bad), 0, 0, true, "skip (and count) malformed records instead of failing"},
    {"shuffle", K_BOOL, OFF(shuffle), 0, 0, true, "shuffle the examples every epoch (seeded)"},
    {"seed", K_U64, OFF(seed), 0, 0, true, "seed of the adapter initialisation, shuffling and dropout"},
    {"lora_rank", K_INT, OFF(rank), 1, 65536, true, "LoRA rank r"},
    {"lora_alpha", K_DOUBLE, OFF(alpha), 1e-9, BIG, true, "LoRA alpha (scale = alpha / r)"},
    {"lora_dropout", K_DOUBLE, OFF(dropout), -1, 0.999, true, "dropout on the LoRA input (-1: the initial adapter's own, 0.05 for a fresh one)"},
    {"lora_targets", K_TARGETS, OFF(targets), 0, 0, true, "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj,lm_head (or q,v,gate,...; all)"},
    {"rslora", K_BOOL, OFF(rslora), 0, 0, true, "rank-stabilised scale alpha / sqrt(r)"},
    {"loss_type", K_LOSS, OFF(loss_type), 0, 0, true, "DPO loss: sigmoid, ipo or hinge"},
    {"beta", K_DOUBLE, OFF(beta), 1e-12, BIG, true, "DPO beta"},
    {"label_smoothing", K_DOUBLE, OFF(label_smoothing), 0, 0.5, true, "DPO sigmoid label smoothing"},
    {"lr", K_DOUBLE, OFF(lr), 0, BIG, true, "peak learning rate"},
    {"adam_betas", K_BETAS, OFF(adam), 0, 0, true, "AdamW beta1,beta2"},
    {"adam_eps", K_DOUBLE, OFF(adam.eps), 0, BIG, true, "AdamW epsilon"},
    {"weight_decay", K_DOUBLE, OFF(adam.weight_decay), 0, BIG, true, "AdamW decoupled weight decay"},
    {"schedule", K_SCHED, OFF(schedule), 0, 0, true, "constant, cosine or linear (after the warm-up)"},
    {"warmup_steps", K_LONG, OFF(warmup_steps), 0, BIG, true, "linear warm-up steps"},
    {"batch_size", K_INT, OFF(batch_size), 1, 1 << 20, true, "examples (pairs for DPO) per micro-batch"},
    {"grad_accum", K_INT, OFF(grad_accum), 1, 1 << 20, true, "micro-batches per optimiser step"},
    {"epochs", K_INT, OFF(epochs), 1, 1 << 20, false, "passes over the data (unless max_steps)"},
    {"max_steps", K_LONG, OFF(max_steps), 0, BIG, false, "optimiser steps to run (0: epochs decide)"},
    {"max_grad_norm", K_DOUBLE, OFF(max_grad_norm), 0, BIG, true, "clip the gradient norm to this (0: no clipping)"},
    {"save_every", K_LONG, OFF(save_every), 0, BIG, false, "optimiser steps between checkpoints (0: only at the end)"},
    {"keep_checkpoints", K_INT, OFF(keep_checkpoints), 1, 1 << 20, false, "checkpoints kept (older ones are removed)"},
    {"precompute_ref", K_BOOL, OFF(precompute_ref), 0, 0, false, "compute reference log-probs once, cached on disk by data and model"},
    {"ref_cache", K_STR, OFF(ref_cache), 0, 0, false, "directory of the reference log-prob cache (default: out)"},
    {"precision", K_PRECISION, OFF(precision), 0, 0, true, "arithmetic: f32, f64 (the float64 of reference implementations: their gradients and steps digit for digit, a few times slower), or auto (f64 for models under 10M parameters)"},
    {"recompute", K_BOOL, OFF(recompute), 0, 0, false, "recompute activations per layer in the backward pass (less memory)"},
    {"eval_every", K_LONG, OFF(eval_every), 0, BIG, false, "run the Political Compass (logprob mode) on the adapter every N optimiser steps, not at step 0 (0: never)"},
    {"eval_templates", K_STR, OFF(eval_templates), 0, 0, false, "compass templates for eval_every: all (default), or a list of tN, tN-fwd, tN-rev, fwd, rev"},
    {"eval_option_scoring", K_STR, OFF(eval_option_scoring), 0, 0, false, "how eval_every scores an answer: number (default), mean, first, full or reply (politune compass --option-scoring)"},
    {"eval_dir", K_STR, OFF(eval_dir), 0, 0, false, "result directory of the eval_every evaluations (default OUT/compass)"},
    {"eval_max_new_tokens", K_INT, OFF(eval_max_new_tokens), 0, 1 << 20, false, "reply length of the open prompts generated with each evaluation (0: no open prompts)"},
    {"grad_dump", K_STR, OFF(grad_dump), 0, 0, false, "debug: write the first optimiser step's LoRA gradients (before clipping) to this safetensors file, PEFT keys (for oracle comparisons)"},
    {"threads", K_INT, OFF(threads), 0, 1024, false, "worker threads (0: $OMP_NUM_THREADS if set, else all cores)"},
};
#define N_KEYS (int)(sizeof keys / sizeof keys[0])

void pt_train_config_defaults(pt_train_config *c) {
    memset(c, 0, sizeof *c);
    c->method = PT_TRAIN_DPO;
    c->max_seq_len = 1024;
    c->shuffle = true;
    c->rank = 16;
    c->alpha = 32;
    c->dropout = -1;
    c->targets = (1u << PT_LT_Q) | (1u << PT_LT_V) | (1u << PT_LT_GATE) | (1u << PT_LT_UP) | (1u << PT_LT_DOWN) | (1u << PT_LT_HEAD);
    c->loss_type = PT_DPO_SIGMOID;
    c->beta = 0.1;
    c->lr = 5e-4;
    c->adam = (pt_adamw){0.9, 0.999, 1e-8, 0.05};
    c->schedule = PT_SCHED_COSINE;
    c->warmup_steps = 100;
    c->batch_size = 4;
    c->grad_accum = 16;
    c->epochs = 4;
    c->max_grad_norm = 1.0;
    c->save_every = 64;
    c->keep_checkpoints = 2;
    c->eval_max_new_tokens = 32;
}

void pt_train_config_free(pt_train_config *c) {
    for (int i = 0; i < N_KEYS; i++)
        if (keys[i].k == K_STR) free(*(char **)((char *)c + keys[i].off));
    memset(c, 0, sizeof *c);
}

static const key_def *find(const char *key) {
    char norm[64];
    size_t n = strlen(key);
    if (n >= sizeof norm) return NULL;
    for (size_t i = 0; i <= n; i++) norm[i] = key[i] == '-' ? '_' : key[i];
    for (int i = 0; i < N_KEYS; i++)
        if (!strcmp(keys[i].name, norm)) return &keys[i];
    return NULL;
}

int pt_train_config_is_bool(const char *key) {
    const key_def *d = find(key);
    return d ? d->k == K_BOOL : -1;
}

static bool parse_double(const char *s, double *v) {
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return !errno && end != s && !*end && isfinite(*v);
}

static pt_status range_error(const key_def *d, const char *value) {
    if (d->hi >= BIG) return pt_error(PT_ERR_ARG, "%s: '%s' is not a number >= %g", d->name, value, d->lo);
    return pt_error(PT_ERR_ARG, "%s: '%s' is not a number in [%g, %g]", d->name, value, d->lo, d->hi);
}

pt_status pt_train_config_set(pt_train_config *c, const char *key, const char *value) {
    const key_def *d = find(key);
    if (!d) return pt_error(PT_ERR_ARG, "unknown training key '%s' (see politune train --help)", key);
    void *f = (char *)c + d->off;
    double v;
    switch (d->k) {
    case K_STR: {
        char *s = strdup(value);
        if (!s) return pt_error(PT_ERR_OOM, "out of memory");
        free(*(char **)f);
        *(char **)f = s;
        return PT_OK;
    }
    case K_INT:
    case K_LONG:
    case K_DOUBLE:
        if (!parse_double(value, &v) || v < d->lo || v > d->hi) return range_error(d, value);
        if (d->k != K_DOUBLE && v != floor(v)) return pt_error(PT_ERR_ARG, "%s: '%s' is not an integer", d->name, value);
        if (d->k == K_INT) *(int *)f = (int)v;
        else if (d->k == K_LONG) *(long *)f = (long)v;
        else *(double *)f = v;
        return PT_OK;
    case K_BOOL:
        if (!strcmp(value, "true") || !strcmp(value, "1") || !strcmp(value, "yes") || !strcmp(value, "on")) *(bool *)f = true;
        else if (!strcmp(value, "false") || !strcmp(value, "0") || !strcmp(value, "no") || !strcmp(value, "off")) *(bool *)f = false;
        else return pt_error(PT_ERR_ARG, "%s: '%s' is not a boolean (true or false)", d->name, value);
        return PT_OK;
    case K_U64: {
        char *end;
        errno = 0;
        unsigned long long u = strtoull(value, &end, 10);
        if (errno || end == value || *end || *value == '-') return pt_error(PT_ERR_ARG, "%s: '%s' is not a non-negative integer", d->name, value);
        *(uint64_t *)f = u;
        return PT_OK;
    }
    case K_METHOD:
        if (!strcmp(value, "dpo")) *(pt_train_method *)f = PT_TRAIN_DPO;
        else if (!strcmp(value, "sft")) *(pt_train_method *)f = PT_TRAIN_SFT;
        else return pt_error(PT_ERR_ARG, "method: '%s' is not dpo or sft", value);
        return PT_OK;
    case K_TARGETS: {
        unsigned mask;
        pt_status st = pt_lora_parse_targets(value, &mask);
        if (st) return pt_error_wrap(st, "lora_targets: ");
        if (!mask) return pt_error(PT_ERR_ARG, "lora_targets: empty list");
        *(unsigned *)f = mask;
        return PT_OK;
    }
    case K_LOSS: return pt_dpo_loss_from_name(value, (pt_dpo_loss_type *)f) ? pt_error_wrap(PT_ERR_ARG, "loss_type: ") : PT_OK;
    case K_SCHED: return pt_schedule_from_name(value, (pt_schedule *)f) ? pt_error_wrap(PT_ERR_ARG, "schedule: ") : PT_OK;
    case K_PRECISION:
        if (!strcmp(value, "auto")) *(pt_train_precision *)f = PT_PRECISION_AUTO;
        else if (!strcmp(value, "f32")) *(pt_train_precision *)f = PT_PRECISION_F32;
        else if (!strcmp(value, "f64")) *(pt_train_precision *)f = PT_PRECISION_F64;
        else return pt_error(PT_ERR_ARG, "precision: '%s' is not auto, f32 or f64", value);
        return PT_OK;
    case K_BETAS: {
        double b1, b2;
        char buf[128];
        snprintf(buf, sizeof buf, "%s", value);
        char *comma = strchr(buf, ',');
        if (comma) *comma = 0;
        if (!comma || !parse_double(buf, &b1) || !parse_double(comma + 1, &b2) || b1 < 0 || b1 >= 1 || b2 < 0 || b2 >= 1)
            return pt_error(PT_ERR_ARG, "adam_betas: '%s' is not two numbers in [0, 1) as beta1,beta2", value);
        c->adam.beta1 = b1;
        c->adam.beta2 = b2;
        return PT_OK;
    }
    }
    return pt_error(PT_ERR_INTERNAL, "key kind");
}

/* The shortest text that reads back as exactly v. */
static void fmt_double(char *buf, size_t size, double v) {
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

void pt_train_config_get(const pt_train_config *c, const char *key, char *buf, size_t size) {
    const key_def *d = find(key);
    buf[0] = 0;
    if (!d) return;
    const void *f = (const char *)c + d->off;
    switch (d->k) {
    case K_STR: snprintf(buf, size, "%s", *(char *const *)f ? *(char *const *)f : ""); break;
    case K_INT: snprintf(buf, size, "%d", *(const int *)f); break;
    case K_LONG: snprintf(buf, size, "%ld", *(const long *)f); break;
    case K_DOUBLE: fmt_double(buf, size, *(const double *)f); break;
    case K_BOOL: snprintf(buf, size, "%s", *(const bool *)f ? "true" : "false"); break;
    case K_U64: snprintf(buf, size, "%llu", (unsigned long long)*(const uint64_t *)f); break;
    case K_METHOD: snprintf(buf, size, "%s", *(const pt_train_method *)f == PT_TRAIN_SFT ? "sft" : "dpo"); break;
    case K_LOSS: snprintf(buf, size, "%s", pt_dpo_loss_name(*(const pt_dpo_loss_type *)f)); break;
    case K_SCHED: snprintf(buf, size, "%s", pt_schedule_name(*(const pt_schedule *)f)); break;
    case K_PRECISION: snprintf(buf, size, "%s", (const char *[]){"auto", "f32", "f64"}[*(const pt_train_precision *)f]); break;
    case K_BETAS: {
        char b1[32], b2[32];
        fmt_double(b1, sizeof b1, c->adam.beta1);
        fmt_double(b2, sizeof b2, c->adam.beta2);
        snprintf(buf, size, "%s,%s", b1, b2);
        break;
    }
    case K_TARGETS: {
        size_t n = 0;
        for (int t = 0; t < PT_LT_COUNT && n < size; t++)
            if (c->targets & (1u << t)) n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? "," : "", pt_lora_target_name(t));
        break;
    }
    }
}

void pt_train_config_each_trajectory_key(void (*fn)(void *user, const char *key), void *user) {
    for (int i = 0; i < N_KEYS; i++)
        if (keys[i].trajectory) fn(user, keys[i].name);
}

void pt_train_config_help(FILE *f) {
    pt_train_config c;
    pt_train_config_defaults(&c);
    char v[256], flag[64];
    for (int i = 0; i < N_KEYS; i++) {
        snprintf(flag, sizeof flag, "%s", keys[i].name);
        for (char *p = flag; *p; p++)
            if (*p == '_') *p = '-';
        pt_train_config_get(&c, keys[i].name, v, sizeof v);
        if (keys[i].k == K_BOOL) fprintf(f, "  --[no-]%-17s %s (default %s)\n", flag, keys[i].help, v);
        else if (*v) fprintf(f, "  --%-22s %s (default %s)\n", flag, keys[i].help, v);
        else fprintf(f, "  --%-22s %s\n", flag, keys[i].help);
    }
    pt_train_config_free(&c);
}
