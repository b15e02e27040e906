/* GPU memory planning for the CUDA backend, in plain C so that it builds and is tested on
 * every machine: how many bytes a model needs on the GPU for inference (weights, key/value
 * cache, workspace, logits) or for LoRA training (weights, LoRA parameters with their fp32
 * master copy, gradient and AdamW moments, activations kept for the backward pass, the
 * logits chunk), and the one-line message when the GPU has less free.
 *
 * The figures describe the device-resident layout the backend is built toward: matrices at
 * the precision's element size (2 bytes bf16, 4 bytes f32; quantised files are dequantised
 * on the GPU, so a Q4_0 file needs as much as a bf16 one), norm weights and statistics in
 * f32, activations at the element size. They are upper bounds for what is there today. */
#ifndef PT_BACKEND_CUDA_PLAN_H
#define PT_BACKEND_CUDA_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include "model/model.h"
#include "util/status.h"

typedef enum { PT_CUDA_BF16 = 0, PT_CUDA_F32 } pt_cuda_precision;

/* "bf16" or "f32" */
pt_status pt_cuda_precision_parse(const char *name, pt_cuda_precision *out);
size_t pt_cuda_elem_bytes(pt_cuda_precision p);

typedef struct {
    size_t weights;     /* every matrix (token embedding and output counted once when tied) + norms */
    size_t kv_cache;    /* keys and values of every layer for n_slots x n_ctx tokens */
    size_t workspace;   /* activations of one forward pass (inference) or of the training pass */
    size_t logits;      /* vocabulary logits rows (f32) */
    size_t lora;        /* LoRA parameters (bf16 copy + fp32 master, gradient and two moments) */
    size_t total;
} pt_cuda_plan;

/* Inference: n_slots sequences of n_ctx tokens, forward passes of up to `rows` token rows,
 * an adapter of rank lora_r on `targets` (0: none). */
void pt_cuda_plan_engine(pt_cuda_plan *p, const pt_config *c, pt_cuda_precision prec, int n_slots, int n_ctx, int rows,
                         int lora_r, unsigned targets);

/* LoRA training on micro-batches of max_tok tokens: every layer's activations, or with
 * `recompute` only each layer's input plus one layer's set; logits in chunks of at most
 * logits_bytes (0: 1 GiB), like the CPU training model. */
void pt_cuda_plan_train(pt_cuda_plan *p, const pt_config *c, pt_cuda_precision prec, int lora_r, unsigned targets, int max_tok,
                        bool recompute, size_t logits_bytes);

/* Trainable LoRA parameters of rank r on `targets` (bit mask of pt_lora_target). */
size_t pt_cuda_lora_params(const pt_config *c, int r, unsigned targets);

/* The GPU-resident engine's step workspace: one device allocation carved into buffers at
 * 256-byte aligned byte offsets, for steps of up to `rows` token rows. Activations are f32
 * whatever the precision (the products' inputs are converted to bf16 into gemm_in on the way
 * in); logits are computed `logit_rows` rows at a time (PT_CUDA_LOGIT_ROWS at most). */
#define PT_CUDA_LOGIT_ROWS 256
typedef struct {
    size_t x;        /* f32 (rows, D) residual stream */
    size_t xb;       /* f32 (rows, max(D, Q)) normalised input / attention output */
    size_t q, k, v;  /* f32 (rows, Q) (rows, KV) (rows, KV) */
    size_t hb, hb2;  /* f32 (rows, F) */
    size_t lora;     /* f32 (rows, max(r, 1)) LoRA's x A^T */
    size_t gemm_in;  /* bf16 (rows, max(D, Q, F)); absent (0 bytes) in f32 */
    size_t cos, sin; /* f32 (rows, hd / 2) */
    size_t ids, pos, slot, out_rows; /* int32 (rows) */
    size_t head_x, head_xb; /* f32 (logit_rows, D) gathered and normalised rows for the head */
    size_t logits;   /* f32 (logit_rows, V) */
    int rows, logit_rows, lora_r;
    size_t total;    /* bytes */
} pt_cuda_step_layout;
void pt_cuda_step_layout_make(pt_cuda_step_layout *l, const pt_config *c, pt_cuda_precision prec, int rows, int lora_r);

/* Element offset of (layer, slot, position) in a key or value cache laid out
 * (n_layers, n_slots, n_ctx, kv_dim), the engine's host layout too. */
size_t pt_cuda_kv_offset(const pt_config *c, int n_slots, int n_ctx, int layer, int slot, int pos);

/* PT_OK when the plan fits in free_bytes; else PT_ERR_OOM with one line: what (e.g. the
 * model's path) needs N GiB of GPU memory, the parts, the GPU's free memory, and a hint. */
pt_status pt_cuda_plan_check(const pt_cuda_plan *p, size_t free_bytes, const char *what);

#endif
