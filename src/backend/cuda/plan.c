/* GPU memory plans (plan.h): sums over the model's shapes, no CUDA needed. */
#include "backend/cuda/plan.h"

#include <string.h>

#include "model/adapter.h"

pt_status pt_cuda_precision_parse(const char *name, pt_cuda_precision *out) {
    if (!strcmp(name, "bf16")) *out = PT_CUDA_BF16;
    else if (!strcmp(name, "f32")) *out = PT_CUDA_F32;
    else return pt_error(PT_ERR_ARG, "precision '%s': the GPU computes in bf16 or f32", name);
    return PT_OK;
}

size_t pt_cuda_elem_bytes(pt_cuda_precision p) { return p == PT_CUDA_F32 ? 4 : 2; }

/* (in, out) of a target's matrix */
static void target_shape(const pt_config *c, int t, size_t *in, size_t *out) {
    const size_t D = c->dim, Q = (size_t)c->n_heads * c->head_dim, KV = (size_t)c->n_kv_heads * c->head_dim, F = c->ffn_dim;
    switch (t) {
    case PT_LT_Q: *in = D, *out = Q; break;
    case PT_LT_K: case PT_LT_V: *in = D, *out = KV; break;
    case PT_LT_O: *in = Q, *out = D; break;
    case PT_LT_GATE: case PT_LT_UP: *in = D, *out = F; break;
    case PT_LT_DOWN: *in = F, *out = D; break;
    default: *in = D, *out = (size_t)c->vocab_size; break;
    }
}

size_t pt_cuda_lora_params(const pt_config *c, int r, unsigned targets) {
    size_t n = 0;
    for (int t = 0; t < PT_LT_COUNT; t++) {
        if (!(targets & (1u << t))) continue;
        size_t in, out;
        target_shape(c, t, &in, &out);
        n += (size_t)r * (in + out) * (t == PT_LT_HEAD ? 1 : (size_t)c->n_layers);
    }
    return n;
}

static size_t weight_bytes(const pt_config *c, pt_cuda_precision prec) {
    size_t per_layer = 0;
    for (int t = 0; t < PT_LT_HEAD; t++) {
        size_t in, out;
        target_shape(c, t, &in, &out);
        per_layer += in * out;
    }
    size_t elems = per_layer * c->n_layers + (size_t)c->vocab_size * c->dim * (c->tied_embeddings ? 1 : 2);
    size_t norms = (2 * (size_t)c->n_layers + 1) * c->dim * sizeof(float);
    size_t bias = c->qkv_bias ? (size_t)c->n_layers * ((size_t)c->n_heads + 2 * c->n_kv_heads) * c->head_dim * sizeof(float) : 0;
    return elems * pt_cuda_elem_bytes(prec) + norms + bias;
}

static void total(pt_cuda_plan *p) { p->total = p->weights + p->kv_cache + p->workspace + p->logits + p->lora; }

void pt_cuda_plan_engine(pt_cuda_plan *p, const pt_config *c, pt_cuda_precision prec, int n_slots, int n_ctx, int rows,
                         int lora_r, unsigned targets) {
    memset(p, 0, sizeof *p);
    const size_t e = pt_cuda_elem_bytes(prec), D = c->dim, Q = (size_t)c->n_heads * c->head_dim,
                 KV = (size_t)c->n_kv_heads * c->head_dim, F = c->ffn_dim, wide = Q > D ? Q : D;
    p->weights = weight_bytes(c, prec);
    p->kv_cache = 2 * (size_t)c->n_layers * n_slots * n_ctx * KV * e;
    /* the engine's buffers: x, xb, q, k, v, two of F, the LoRA scratch, rope tables */
    size_t r = lora_r > 64 ? (size_t)lora_r : 64;
    p->workspace = (size_t)rows * (D + wide + Q + 2 * KV + 2 * F + r + c->head_dim) * e;
    p->logits = (size_t)rows * c->vocab_size * sizeof(float);
    p->lora = lora_r ? pt_cuda_lora_params(c, lora_r, targets) * e : 0;
    total(p);
}

void pt_cuda_plan_train(pt_cuda_plan *p, const pt_config *c, pt_cuda_precision prec, int lora_r, unsigned targets, int max_tok,
                        bool recompute, size_t logits_bytes) {
    memset(p, 0, sizeof *p);
    const size_t e = pt_cuda_elem_bytes(prec), N = max_tok, D = c->dim, H = c->n_heads, Q = H * c->head_dim,
                 KV = (size_t)c->n_kv_heads * c->head_dim, F = c->ffn_dim, L = c->n_layers, r = lora_r;
    size_t n_targets = 0;
    for (int t = 0; t < PT_LT_HEAD; t++) n_targets += (targets >> t) & 1;
    p->weights = weight_bytes(c, prec);
    /* per token of one layer, as the CPU training model keeps them (tmodel_impl.h): the two
     * norm outputs, q k v, attention output, x_mid, gate up h, LoRA u of each target; and
     * rstd (2) and the log-sum-exp (H) in f32 */
    size_t layer_tok = (2 * D + Q + 2 * KV + Q + D + 3 * F + r * n_targets) * e + (2 + H) * sizeof(float);
    size_t kept = recompute ? 1 : L;
    size_t residual = (L + 1) * N * D * e;
    size_t backward = N * (2 * D + 2 * Q + 2 * KV + 2 * F + r) * e;
    size_t head = N * (2 * D + r) * e + N * (D + 1) * e; /* final norm, gathered rows, head u, dx of the chunk */
    p->workspace = residual + kept * N * layer_tok + backward + head;
    size_t budget = logits_bytes ? logits_bytes : (size_t)1 << 30;
    size_t rows = budget / (sizeof(float) * (size_t)c->vocab_size);
    if (rows < 1) rows = 1;
    if (rows > N) rows = N;
    p->logits = rows * c->vocab_size * sizeof(float);
    /* bf16 (or f32) working copy + fp32 master, gradient, first and second moment */
    p->lora = pt_cuda_lora_params(c, lora_r, targets) * (e + 4 * sizeof(float));
    total(p);
}

static double gib(size_t b) { return b / 1073741824.0; }

pt_status pt_cuda_plan_check(const pt_cuda_plan *p, size_t free_bytes, const char *what) {
    if (p->total <= free_bytes) return PT_OK;
    return pt_error(PT_ERR_OOM,
                    "%s needs %.2f GiB of GPU memory (weights %.2f, key/value cache %.2f, activations %.2f, logits %.2f, LoRA %.2f) "
                    "but the GPU has %.2f GiB free; use a smaller --ctx or batch, --recompute, or --device cpu",
                    what, gib(p->total), gib(p->weights), gib(p->kv_cache), gib(p->workspace), gib(p->logits), gib(p->lora),
                    gib(free_bytes));
}

static size_t align256(size_t b) { return (b + 255) & ~(size_t)255; }

void pt_cuda_step_layout_make(pt_cuda_step_layout *l, const pt_config *c, pt_cuda_precision prec, int rows, int lora_r) {
    memset(l, 0, sizeof *l);
    const size_t N = rows > 0 ? (size_t)rows : 1, D = c->dim, Q = (size_t)c->n_heads * c->head_dim,
                 KV = (size_t)c->n_kv_heads * c->head_dim, F = c->ffn_dim, half = c->head_dim / 2, f = sizeof(float);
    size_t widest = D > Q ? D : Q;
    const size_t gemm_wide = widest > F ? widest : F;
    l->rows = (int)N;
    l->logit_rows = N < PT_CUDA_LOGIT_ROWS ? (int)N : PT_CUDA_LOGIT_ROWS;
    l->lora_r = lora_r > 1 ? lora_r : 1;
    size_t at = 0;
#define PUT(field, bytes) (l->field = at, at += align256(bytes))
    PUT(x, N * D * f);
    PUT(xb, N * widest * f);
    PUT(q, N * Q * f);
    PUT(k, N * KV * f);
    PUT(v, N * KV * f);
    PUT(hb, N * F * f);
    PUT(hb2, N * F * f);
    PUT(lora, N * (size_t)l->lora_r * f);
    PUT(gemm_in, prec == PT_CUDA_BF16 ? N * gemm_wide * 2 : 0);
    PUT(cos, N * half * f);
    PUT(sin, N * half * f);
    PUT(ids, N * 4);
    PUT(pos, N * 4);
    PUT(slot, N * 4);
    PUT(out_rows, N * 4);
    PUT(head_x, (size_t)l->logit_rows * D * f);
    PUT(head_xb, (size_t)l->logit_rows * D * f);
    PUT(logits, (size_t)l->logit_rows * c->vocab_size * f);
#undef PUT
    l->total = at;
}

size_t pt_cuda_kv_offset(const pt_config *c, int n_slots, int n_ctx, int layer, int slot, int pos) {
    const size_t kv_dim = (size_t)c->n_kv_heads * c->head_dim;
    return (((size_t)layer * n_slots + slot) * n_ctx + pos) * kv_dim;
}
