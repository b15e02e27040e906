/* Batched forward pass of the Llama-family decoder with a per-slot key/value cache. On a
 * backend with whole-step hooks (backend.h: forward_step; the CUDA backend) the engine keeps
 * only the slots' lengths and hands each step to the backend, which holds the weights, cache
 * and activations itself; on the CPU the passes below run operation by operation. */
#include "engine/engine.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backend/backend.h"
#include "model/adapter.h"

struct pt_engine {
    const pt_model *m;
    const pt_backend *be;     /* the backend current when the engine was made */
    int attached;             /* be->attach succeeded: be->detach is owed */
    void *dev;                /* be->engine_open's state when the backend runs whole steps, else NULL */
    pt_status dev_adapter_status; /* the last engine_set_adapters' failure, PT_OK if none */
    char dev_adapter_err[256];    /* and its message, for the next forward pass to report */
    int step_cap;             /* rows of the step arrays below */
    int32_t *step_ids;        /* (step_cap) */
    int *step_pos, *step_slot, *step_out; /* (step_cap) */
    const pt_adapter *adapter;
    int n_slots, n_ctx, kv_dim;
    float *k_cache, *v_cache; /* (n_layers, n_slots, n_ctx, kv_dim); NULL with dev */
    int *len;                 /* (n_slots) tokens held per slot */
    /* workspace for `cap` token rows, grown on demand */
    int cap;
    float *x;        /* (N, D) residual stream */
    float *xb;       /* (N, max(D, Q)) normalised input / attention output */
    float *q, *k, *v; /* (N, Q) (N, KV) (N, KV) */
    float *hb, *hb2; /* (N, F) */
    float *lora_tmp; /* (N, r) */
    float *cos_t, *sin_t; /* (N, hd/2) */
    int *pos;        /* (N) */
    int cap_logits;
    float *logits;   /* (rows, V) */
    size_t ws_bytes;
};

static size_t cache_index(const pt_engine *e, int layer, int slot) {
    return ((size_t)layer * e->n_slots + slot) * e->n_ctx * e->kv_dim;
}

/* A long prompt runs in chunks: the workspace then holds PREFILL_CHUNK rows instead of the
 * whole prompt, and GEMMs of this height are already at full speed. */
#define PREFILL_CHUNK 256

/* pt_engine_new's end on a backend that runs whole steps: its state instead of a host cache. */
static pt_status open_on_device(pt_engine **out, pt_engine *e) {
    e->len = calloc((size_t)e->n_slots, sizeof(int));
    pt_status st = e->len ? e->be->engine_open(&e->dev, e->m, e->n_slots, e->n_ctx, PREFILL_CHUNK) : pt_error(PT_ERR_OOM, "out of memory");
    if (st) {
        e->dev = NULL;
        pt_engine_free(e);
        return st;
    }
    *out = e;
    return PT_OK;
}

pt_status pt_engine_new(pt_engine **out, const pt_model *m, int n_slots, int n_ctx) {
    *out = NULL;
    const pt_config *c = &m->cfg;
    if (n_slots <= 0) return pt_error(PT_ERR_ARG, "engine needs at least one sequence slot");
    if (n_ctx <= 0) n_ctx = c->max_ctx < 4096 ? c->max_ctx : 4096;
    if (n_ctx <= 0) n_ctx = 2048;
    pt_engine *e = calloc(1, sizeof *e);
    if (!e) return pt_error(PT_ERR_OOM, "out of memory");
    e->m = m;
    e->be = pt_backend_current();
    e->n_slots = n_slots;
    e->n_ctx = n_ctx;
    e->kv_dim = c->n_kv_heads * c->head_dim;
    if (e->be->engine_open) return open_on_device(out, e);
    size_t n = (size_t)c->n_layers * n_slots * n_ctx * e->kv_dim;
    e->k_cache = malloc(sizeof(float) * n);
    e->v_cache = malloc(sizeof(float) * n);
    e->len = calloc((size_t)n_slots, sizeof(int));
    if (!e->k_cache || !e->v_cache || !e->len) {
        pt_engine_free(e);
        return pt_error(PT_ERR_OOM, "out of memory for a %d x %d token key/value cache (%.1f MiB)", n_slots, n_ctx,
                        2.0 * sizeof(float) * n / (1 << 20));
    }
    if (e->be->attach) {
        pt_status st = e->be->attach(m, n_slots, n_ctx);
        if (st) { pt_engine_free(e); return st; }
        e->attached = 1;
    }
    *out = e;
    return PT_OK;
}

static void free_workspace(pt_engine *e) {
    float **bufs[] = {&e->x, &e->xb, &e->q, &e->k, &e->v, &e->hb, &e->hb2, &e->lora_tmp, &e->cos_t, &e->sin_t};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) { free(*bufs[i]); *bufs[i] = NULL; }
    free(e->pos);
    e->pos = NULL;
    e->cap = 0;
    e->ws_bytes = 0;
}

void pt_engine_free(pt_engine *e) {
    if (!e) return;
    if (e->attached) e->be->detach(e->m);
    if (e->dev) e->be->engine_close(e->dev);
    free(e->step_ids), free(e->step_pos), free(e->step_slot), free(e->step_out);
    free_workspace(e);
    free(e->logits);
    free(e->k_cache);
    free(e->v_cache);
    free(e->len);
    free(e);
}

/* The adapter(s) in use, copied to a backend that runs whole steps: kept apart from the
 * host's LoRA arithmetic in linear() below. A failure leaves the device without adapters and
 * is reported by the next forward pass. */
static void device_adapters(pt_engine *e) {
    if (!e->dev) return;
    const pt_adapter *list[1] = {e->adapter};
    const float weight[1] = {1.0f};
    e->dev_adapter_status = e->be->engine_set_adapters(e->dev, list, weight, e->adapter ? 1 : 0);
    if (e->dev_adapter_status) snprintf(e->dev_adapter_err, sizeof e->dev_adapter_err, "%s", pt_errmsg());
}

void pt_engine_set_adapter(pt_engine *e, const pt_adapter *a) {
    e->adapter = a;
    free_workspace(e); /* the LoRA scratch is sized by the adapter's rank */
    device_adapters(e);
}
const pt_model *pt_engine_model(const pt_engine *e) { return e->m; }
int pt_engine_n_slots(const pt_engine *e) { return e->n_slots; }
int pt_engine_n_ctx(const pt_engine *e) { return e->n_ctx; }
int pt_engine_slot_len(const pt_engine *e, int slot) { return slot >= 0 && slot < e->n_slots ? e->len[slot] : 0; }

size_t pt_engine_bytes(const pt_engine *e) {
    if (e->dev) return e->ws_bytes + sizeof(float) * (size_t)e->cap_logits * e->m->cfg.vocab_size; /* host memory only */
    return 2 * sizeof(float) * (size_t)e->m->cfg.n_layers * e->n_slots * e->n_ctx * e->kv_dim + e->ws_bytes +
           sizeof(float) * (size_t)e->cap_logits * e->m->cfg.vocab_size;
}

pt_status pt_engine_truncate(pt_engine *e, int slot, int len) {
    if (slot < 0 || slot >= e->n_slots) return pt_error(PT_ERR_ARG, "slot %d out of range (0..%d)", slot, e->n_slots - 1);
    if (len < 0 || len > e->len[slot]) return pt_error(PT_ERR_ARG, "cannot truncate slot %d holding %d tokens to %d", slot, e->len[slot], len);
    e->len[slot] = len;
    return PT_OK;
}

static pt_status ensure_workspace(pt_engine *e, int n) {
    if (n <= e->cap) return PT_OK;
    free_workspace(e);
    const pt_config *c = &e->m->cfg;
    int Q = c->n_heads * c->head_dim, D = c->dim, wide = Q > D ? Q : D;
    int r = e->adapter ? e->adapter->r : 0;
    size_t sizes[] = {(size_t)n * D, (size_t)n * wide, (size_t)n * Q, (size_t)n * e->kv_dim, (size_t)n * e->kv_dim,
                      (size_t)n * c->ffn_dim, (size_t)n * c->ffn_dim, (size_t)n * (r > 64 ? r : 64),
                      (size_t)n * c->head_dim / 2, (size_t)n * c->head_dim / 2};
    float **bufs[] = {&e->x, &e->xb, &e->q, &e->k, &e->v, &e->hb, &e->hb2, &e->lora_tmp, &e->cos_t, &e->sin_t};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        *bufs[i] = malloc(sizeof(float) * sizes[i]);
        e->ws_bytes += sizeof(float) * sizes[i];
        if (!*bufs[i]) { free_workspace(e); return pt_error(PT_ERR_OOM, "out of memory for a %d-token workspace", n); }
    }
    e->pos = malloc(sizeof(int) * n);
    if (!e->pos) { free_workspace(e); return pt_error(PT_ERR_OOM, "out of memory"); }
    e->cap = n;
    return PT_OK;
}

/* y (N, out) = x W^T (+ bias) [+ scale * (x A^T) B^T when the adapter targets it] */
static void linear(pt_engine *e, float *y, const float *x, const pt_weight *W, const float *bias, int n, int accumulate,
                   int layer, pt_lora_target target) {
    e->be->matmul(y, x, W, bias, n, accumulate);
    const pt_lora_pair *p = e->adapter ? pt_adapter_pair(e->adapter, layer, target) : NULL;
    if (!p) return;
    int r = e->adapter->r;
    float *t = e->lora_tmp; /* (N, r) */
    e->be->sgemm_nt(t, x, p->A, n, r, p->in, 0);
    float s = e->adapter->scale;
    for (int64_t i = 0; i < (int64_t)n * r; i++) t[i] *= s;
    e->be->sgemm_nt(y, t, p->B, n, p->out, r, 1);
}

static void embed_row(float *dst, const pt_weight *emb, int32_t id) {
    size_t rb = pt_dtype_nbytes(emb->dtype, emb->cols);
    pt_dtype_to_f32(dst, (const uint8_t *)emb->data + rb * id, emb->dtype, emb->cols);
}

static pt_status check_batch(const pt_engine *e, const pt_batch *b) {
    const int V = e->m->cfg.vocab_size;
    if (b->n_seq <= 0) return pt_error(PT_ERR_ARG, "empty batch");
    for (int s = 0; s < b->n_seq; s++) {
        int slot = b->slot[s];
        if (slot < 0 || slot >= e->n_slots) return pt_error(PT_ERR_ARG, "sequence %d: slot %d out of range (0..%d)", s, slot, e->n_slots - 1);
        for (int u = 0; u < s; u++)
            if (b->slot[u] == slot) return pt_error(PT_ERR_ARG, "sequences %d and %d both use slot %d", u, s, slot);
        if (b->n_tokens[s] <= 0) return pt_error(PT_ERR_ARG, "sequence %d has no tokens", s);
        if (e->len[slot] + b->n_tokens[s] > e->n_ctx)
            return pt_error(PT_ERR_ARG, "sequence %d: %d cached + %d new tokens exceed the context of %d", s, e->len[slot], b->n_tokens[s], e->n_ctx);
        for (int j = 0; j < b->n_tokens[s]; j++)
            if (b->ids[s][j] < 0 || b->ids[s][j] >= V)
                return pt_error(PT_ERR_ARG, "token id %d at position %d of sequence %d is out of range (vocabulary of %d)", b->ids[s][j], j, s, V);
    }
    return PT_OK;
}

static pt_status ensure_logits(pt_engine *e, int rows) {
    if (rows <= e->cap_logits) return PT_OK;
    const int V = e->m->cfg.vocab_size;
    free(e->logits);
    e->logits = malloc(sizeof(float) * (size_t)rows * V);
    e->cap_logits = e->logits ? rows : 0;
    if (!e->logits) return pt_error(PT_ERR_OOM, "out of memory for %d x %d logits", rows, V);
    return PT_OK;
}

/* NaN weights or hyper-parameters would otherwise reach the sampler, which prints nothing
 * and exits 0: every command that shows model output stops here with a message instead */
static pt_status check_finite(const pt_engine *e, int rows) {
    const size_t V = e->m->cfg.vocab_size;
    for (size_t i = 0; i < (size_t)rows * V; i++)
        if (!isfinite(e->logits[i]))
            return pt_error(PT_ERR_NUMERIC, "%s: the model produced a non-finite logit (%g for token %zu): its weights or configuration hold NaN or Inf",
                            e->m->path ? e->m->path : "model", e->logits[i], i % V);
    return PT_OK;
}

/* The whole step on the backend: each row's id, position and slot in, the rows asked for
 * (the last of each sequence, or all) out as logits. */
static pt_status forward_on_device(pt_engine *e, const pt_batch *b, pt_logits_mode mode, const float **logits) {
    if (e->dev_adapter_status) return pt_error(e->dev_adapter_status, "%s", e->dev_adapter_err);
    int N = 0;
    for (int s = 0; s < b->n_seq; s++) N += b->n_tokens[s];
    if (N > e->step_cap) {
        free(e->step_ids), free(e->step_pos), free(e->step_slot), free(e->step_out);
        e->step_ids = malloc(sizeof(int32_t) * N), e->step_pos = malloc(sizeof(int) * N);
        e->step_slot = malloc(sizeof(int) * N), e->step_out = malloc(sizeof(int) * N);
        e->step_cap = e->step_ids && e->step_pos && e->step_slot && e->step_out ? N : 0;
        if (!e->step_cap) return pt_error(PT_ERR_OOM, "out of memory for a %d-row step", N);
    }
    int n_out = 0;
    for (int s = 0, row = 0; s < b->n_seq; s++)
        for (int j = 0; j < b->n_tokens[s]; j++, row++) {
            e->step_ids[row] = b->ids[s][j];
            e->step_pos[row] = e->len[b->slot[s]] + j;
            e->step_slot[row] = b->slot[s];
            if (mode == PT_LOGITS_ALL || (mode == PT_LOGITS_LAST && j == b->n_tokens[s] - 1)) e->step_out[n_out++] = row;
        }
    PT_TRY(ensure_logits(e, n_out));
    pt_step step = {N, e->step_ids, e->step_pos, e->step_slot, n_out, e->step_out};
    PT_TRY(e->be->forward_step(e->dev, &step, e->logits));
    for (int s = 0; s < b->n_seq; s++) e->len[b->slot[s]] += b->n_tokens[s];
    if (logits) *logits = NULL;
    if (mode == PT_LOGITS_NONE) return PT_OK;
    PT_TRY(check_finite(e, n_out));
    if (logits) *logits = e->logits;
    return PT_OK;
}

pt_status pt_engine_forward(pt_engine *e, const pt_batch *b, pt_logits_mode mode, const float **logits) {
    PT_TRY(check_batch(e, b));
    if (b->n_seq == 1 && mode != PT_LOGITS_ALL && b->n_tokens[0] > PREFILL_CHUNK) {
        int done = 0, n = b->n_tokens[0];
        for (; n - done > PREFILL_CHUNK; done += PREFILL_CHUNK)
            PT_TRY(pt_engine_forward_one(e, b->slot[0], b->ids[0] + done, PREFILL_CHUNK, PT_LOGITS_NONE, NULL));
        return pt_engine_forward_one(e, b->slot[0], b->ids[0] + done, n - done, mode, logits);
    }
    if (e->dev) return forward_on_device(e, b, mode, logits);
    const pt_model *m = e->m;
    const pt_config *c = &m->cfg;
    const int D = c->dim, H = c->n_heads, KVH = c->n_kv_heads, hd = c->head_dim, Q = H * hd, KV = e->kv_dim;
    int N = 0;
    for (int s = 0; s < b->n_seq; s++) N += b->n_tokens[s];
    PT_TRY(ensure_workspace(e, N));

    for (int s = 0, row = 0; s < b->n_seq; s++)
        for (int j = 0; j < b->n_tokens[s]; j++, row++) {
            e->pos[row] = e->len[b->slot[s]] + j;
            embed_row(e->x + (size_t)row * D, &m->tok_emb, b->ids[s][j]);
        }
    e->be->rope_tables(e->cos_t, e->sin_t, e->pos, N, m->inv_freq, hd / 2);

    for (int l = 0; l < c->n_layers; l++) {
        const pt_layer *L = &m->layers[l];
        e->be->rmsnorm_forward(e->xb, NULL, e->x, L->attn_norm, N, D, c->norm_eps);
        linear(e, e->q, e->xb, &L->wq, L->bq, N, 0, l, PT_LT_Q);
        linear(e, e->k, e->xb, &L->wk, L->bk, N, 0, l, PT_LT_K);
        linear(e, e->v, e->xb, &L->wv, L->bv, N, 0, l, PT_LT_V);
        if (L->q_norm) { /* qwen3: every head of Q and K normalised on its own, before RoPE */
            e->be->rmsnorm_forward(e->q, NULL, e->q, L->q_norm, N * H, hd, c->norm_eps);
            e->be->rmsnorm_forward(e->k, NULL, e->k, L->k_norm, N * KVH, hd, c->norm_eps);
        }
        e->be->rope_forward(e->q, e->cos_t, e->sin_t, N, H, hd);
        e->be->rope_forward(e->k, e->cos_t, e->sin_t, N, KVH, hd);
        for (int s = 0, row = 0; s < b->n_seq; row += b->n_tokens[s], s++) {
            size_t ci = cache_index(e, l, b->slot[s]);
            float *kc = e->k_cache + ci, *vc = e->v_cache + ci;
            int start = e->len[b->slot[s]], n = b->n_tokens[s];
            memcpy(kc + (size_t)start * KV, e->k + (size_t)row * KV, sizeof(float) * n * KV);
            memcpy(vc + (size_t)start * KV, e->v + (size_t)row * KV, sizeof(float) * n * KV);
            e->be->attention_forward(e->xb + (size_t)row * Q, e->q + (size_t)row * Q, kc, vc, e->pos + row, n, H, KVH, hd);
        }
        linear(e, e->x, e->xb, &L->wo, NULL, N, 1, l, PT_LT_O); /* residual add */
        e->be->rmsnorm_forward(e->xb, NULL, e->x, L->ffn_norm, N, D, c->norm_eps);
        linear(e, e->hb, e->xb, &L->w_gate, NULL, N, 0, l, PT_LT_GATE);
        linear(e, e->hb2, e->xb, &L->w_up, NULL, N, 0, l, PT_LT_UP);
        e->be->swiglu_forward(e->hb, e->hb, e->hb2, (int64_t)N * c->ffn_dim);
        linear(e, e->x, e->hb, &L->w_down, NULL, N, 1, l, PT_LT_DOWN); /* residual add */
    }
    if (e->be->take_error) PT_TRY(e->be->take_error()); /* the cache is left as it was */
    for (int s = 0; s < b->n_seq; s++) e->len[b->slot[s]] += b->n_tokens[s];
    if (logits) *logits = NULL;
    if (mode == PT_LOGITS_NONE) return PT_OK;

    /* gather the rows that need logits, normalise them, project to the vocabulary */
    int rows = mode == PT_LOGITS_ALL ? N : b->n_seq;
    if (mode == PT_LOGITS_LAST)
        for (int s = 0, row = 0; s < b->n_seq; s++) {
            row += b->n_tokens[s];
            memmove(e->x + (size_t)s * D, e->x + (size_t)(row - 1) * D, sizeof(float) * D);
        }
    PT_TRY(ensure_logits(e, rows));
    e->be->rmsnorm_forward(e->xb, NULL, e->x, m->out_norm, rows, D, c->norm_eps);
    linear(e, e->logits, e->xb, &m->output, NULL, rows, 0, 0, PT_LT_HEAD);
    if (e->be->take_error) PT_TRY(e->be->take_error());
    PT_TRY(check_finite(e, rows));
    if (logits) *logits = e->logits;
    return PT_OK;
}

pt_status pt_engine_forward_one(pt_engine *e, int slot, const int32_t *ids, int n, pt_logits_mode mode, const float **logits) {
    pt_batch b = {1, &slot, &ids, &n};
    return pt_engine_forward(e, &b, mode, logits);
}
