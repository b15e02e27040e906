/* LoRA adapters in the PEFT layout: per targeted linear layer a pair A (r, in), B (out, r),
 * applied as y = W x + scale * B (A x) with scale = alpha / r (alpha / sqrt(r) with rsLoRA).
 * Read from and written to adapter_config.json + adapter_model.safetensors with PEFT key
 * names, so adapters move between politune and the Python ecosystem; created fresh with
 * PEFT's initialisation for training. */
#ifndef PT_MODEL_ADAPTER_H
#define PT_MODEL_ADAPTER_H

#include <stdbool.h>

#include "model/model.h"

typedef enum {
    PT_LT_Q = 0, PT_LT_K, PT_LT_V, PT_LT_O, PT_LT_GATE, PT_LT_UP, PT_LT_DOWN, PT_LT_HEAD, PT_LT_COUNT
} pt_lora_target;

typedef struct {
    float *A;     /* (r, in); NULL when this layer is not targeted */
    float *B;     /* (out, r) */
    int in, out;
} pt_lora_pair;

typedef struct pt_adapter {
    int r;
    float alpha, scale, dropout;
    bool rslora;
    unsigned targets;      /* bit mask of pt_lora_target */
    int n_layers;
    pt_lora_pair *pairs;   /* (n_layers, PT_LT_COUNT - 1) */
    pt_lora_pair head;     /* lm_head */
    char *base_model;      /* base_model_name_or_path, may be NULL */
} pt_adapter;

/* "q_proj" ... "down_proj", "lm_head"; NULL for out of range. */
const char *pt_lora_target_name(pt_lora_target t);
/* Parses "q_proj,v_proj,..." or short forms "q,k,v,o,gate,up,down,head" or "all" into a mask. */
pt_status pt_lora_parse_targets(const char *list, unsigned *mask);

/* The pair for (layer, target); target PT_LT_HEAD ignores layer. NULL if not targeted. */
const pt_lora_pair *pt_adapter_pair(const pt_adapter *a, int layer, pt_lora_target t);

/* A fresh adapter for `m`: rank r, alpha, the targets mask, PEFT's initialisation (A
 * Kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(in), 1/sqrt(in)); B zeros), A drawn from a
 * generator seeded with `seed`, pair after pair in (layer, target) order. */
pt_status pt_adapter_new(pt_adapter **out, const pt_model *m, int r, float alpha, unsigned targets, bool rslora,
                         float dropout, uint64_t seed);

/* Writes dir/adapter_model.safetensors and dir/adapter_config.json (each atomically; the
 * directory is created if needed) with PEFT key names and float32 tensors. */
pt_status pt_adapter_save(const pt_adapter *a, const char *dir);

/* The PEFT key of a pair's A or B ("base_model.model.model.layers.3.mlp.up_proj.lora_B.weight",
 * "base_model.model.lm_head.lora_A.weight"). */
void pt_adapter_key(char *buf, size_t size, int layer, pt_lora_target t, bool B);

/* Loads a PEFT adapter directory and checks every target and shape against the model. */
pt_status pt_adapter_load(pt_adapter **out, const char *dir, const pt_model *m);
void pt_adapter_free(pt_adapter *a);

/* Splits a command line's "DIR[:SCALE]" into a malloc'd directory and the scale (1 when
 * absent). A path may contain ':', so the suffix after the last ':' is a scale only when it
 * reads as a number; a suffix that looks numeric but is not ("1e", "nan", "inf") is an
 * error naming the argument. */
pt_status pt_adapter_parse_spec(const char *arg, char **dir, float *scale);

/* One adapter equal to sum_i scales[i] * (alpha_i / r_i) * B_i A_i: rank sum r_i, A the
 * adapters' A stacked, B their scaled B side by side, alpha = r (scale 1). For merge and
 * export of a mix; inference applies the list unfused (pt_engine_set_adapters). */
pt_status pt_adapter_combine(pt_adapter **out, const pt_adapter *const *list, const float *scales, int n);

#endif
