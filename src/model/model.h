/* A loaded checkpoint: its configuration, views of its weights, and its tokenizer.
 *
 * Weights that need no conversion (F32; Q8_0 / Q4_0 blocks used as they are) stay in the
 * memory-mapped file; F16 / BF16 matrices are widened to F32 once at load (the kernels
 * compute in float32), and GGUF `llama` Q/K rows are put back into the Hugging Face
 * half-rotation order so that one RoPE and one LoRA layout serve both formats. */
#ifndef PT_MODEL_MODEL_H
#define PT_MODEL_MODEL_H

#include <stdbool.h>
#include <stddef.h>

#include "format/gguf.h"
#include "format/tensor.h"
#include "tokenizer/chat.h"
#include "tokenizer/tokenizer.h"
#include "util/status.h"

typedef enum { PT_ARCH_LLAMA = 0, PT_ARCH_MISTRAL, PT_ARCH_QWEN2, PT_ARCH_QWEN3 } pt_arch;

typedef struct {
    pt_arch arch;
    int dim;           /* hidden size D */
    int n_layers;
    int n_heads;
    int n_kv_heads;
    int head_dim;
    int ffn_dim;
    int vocab_size;
    int max_ctx;       /* max_position_embeddings / context_length */
    float norm_eps;
    float rope_theta;
    /* Llama-3.1 frequency scaling (rope_type: llama3) */
    bool rope_llama3;
    float rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int rope_orig_ctx;
    int rope_dim;      /* rotary dimensions when the file states them (must equal head_dim); 0 = head_dim */
    bool tied_embeddings;
    bool qkv_bias;
    int bos_id, eos_id; /* -1 when unknown */
} pt_config;

typedef struct {
    const float *attn_norm, *ffn_norm; /* (D) */
    pt_weight wq, wk, wv, wo;          /* (H*hd, D) (KV*hd, D) (KV*hd, D) (D, H*hd) */
    const float *bq, *bk, *bv;         /* qwen2 biases or NULL */
    const float *q_norm, *k_norm;      /* (hd) qwen3: RMSNorm of each head of Q and K before RoPE, or NULL */
    pt_weight w_gate, w_up, w_down;    /* (F, D) (F, D) (D, F) */
} pt_layer;

typedef struct pt_model {
    pt_config cfg;
    char *path;
    bool from_gguf;
    pt_weight tok_emb;       /* (V, D) */
    pt_weight output;        /* (V, D); same data as tok_emb when tied */
    const float *out_norm;   /* (D) */
    pt_layer *layers;        /* n_layers */
    double *inv_freq;        /* (head_dim / 2) RoPE inverse frequencies, scaling applied */
    pt_tokenizer *tok;       /* NULL when the checkpoint ships none */
    pt_chat_template chat;   /* detected from the checkpoint, PT_CHAT_NONE if unknown */
    char *chat_source;       /* the checkpoint's own Jinja template, if any */
    size_t weight_bytes;     /* bytes of weight data as used by the kernels */
    size_t converted_bytes;  /* of which owned copies (converted / permuted) */
    struct pt_model_storage *storage; /* mapped files and owned buffers */
} pt_model;

/* Loads a GGUF file or a Hugging Face directory (config.json + model.safetensors or
 * sharded model-0000k-of-0000n.safetensors with model.safetensors.index.json). */
pt_status pt_model_load(pt_model **out, const char *path);
void pt_model_free(pt_model *m);

const char *pt_arch_name(pt_arch a);
/* Number of parameters (counting tied embeddings once). */
size_t pt_model_n_params(const pt_model *m);

/* ---- used by the loaders (model/loader_*.c) -------------------------------------------- */
pt_status pt_config_from_hf_json(pt_config *c, const char *config_path);
pt_status pt_config_from_gguf(pt_config *c, const pt_gguf *g);
/* Widest row or column a checkpoint may declare (vocab, hidden, ffn, heads x head_dim): far above
 * any released model, low enough that products of two widths fit int64 and one fits int. */
#define PT_CONFIG_MAX_WIDTH (1 << 22)
pt_status pt_config_validate(const pt_config *c, const char *label);
void pt_rope_inv_freq(double *inv_freq, const pt_config *c);

#endif

/* ---- export (model/export.c) -------------------------------------------------------------
 * Writes the loaded weights (with a LoRA adapter merged in when `adapter` is not NULL:
 * W' = W + scale * B A) as a GGUF file of the given type (F32, F16, BF16, Q8_0, Q4_0; norms
 * stay F32), or as a Hugging Face directory (config.json + safetensors of type F32, F16 or
 * BF16, split into shards of at most shard_bytes with an index when shard_bytes > 0). */
struct pt_adapter;
pt_status pt_model_save_gguf(const pt_model *m, const struct pt_adapter *adapter, const char *path, pt_dtype type);
pt_status pt_model_save_hf(const pt_model *m, const struct pt_adapter *adapter, const char *dir, pt_dtype type,
                           size_t shard_bytes);
/* Writes the adapter as llama.cpp's LoRA-adapter GGUF (what its convert_lora_to_gguf.py
 * writes): general.type "adapter", adapter.type "lora", adapter.lora.alpha (the effective
 * alpha, scale * r, so rsLoRA scales survive llama.cpp's alpha / r), and per targeted weight
 * "<gguf name>.lora_a" (r, in) and ".lora_b" (out, r) in float32, with the Q/K rows of B
 * interleaved like the base file's for the `llama` architecture. */
pt_status pt_adapter_save_gguf(const struct pt_adapter *adapter, const pt_model *m, const char *path);
