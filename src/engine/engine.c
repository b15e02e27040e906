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
#include "model/steer.h"
#include "nn/ggml_compat.h"

struct pt_engine {
    const pt_model *m;
    const pt_backend *be;     /* the backend current when the engine was made */
    int attached;             /* be->attach succeeded: be->detach is owed */
    /* LoRA adapters applied unfused, each with a scale per slot (the engine-wide default
     * unless a slot has its own): the server batches requests with different choices */
    int n_adapters;
    const pt_adapter *adapters[PT_ENGINE_MAX_ADAPTERS];
    float default_scales[PT_ENGINE_MAX_ADAPTERS];
    float *slot_scales;       /* (n_slots, PT_ENGINE_MAX_ADAPTERS) */
    int lora_r;               /* largest rank in the list: the LoRA scratch's width */
    const pt_steer *steer;    /* activation addition at layer outputs, or NULL */
    float steer_scale;
    bool *steer_on;           /* (n_layers) */
    double *capture;          /* (n_layers, D) sums of the residual stream of captured rows, or NULL */
    int capture_from;         /* first captured row of a one-sequence pass */
    void *dev;                /* be->engine_open's state when the backend runs whole steps, else NULL */
    pt_status dev_adapter_status; /* the last engine_set_adapters' failure, PT_OK if none */
    char dev_adapter_err[256];    /* and its message, for the next forward pass to report */
    pt_numerics numerics;         /* PT_NUMERICS_LLAMACPP: the products, cache and attention below round as llama.cpp's */
    pt_status numerics_status;    /* the first failure of a llama.cpp-rounded product in this pass, PT_OK if none */
    int step_cap;             /* rows of the step arrays below */
    int32_t *step_ids;        /* (step_cap) */
    int *step_pos, *step_slot, *step_out; /* (step_cap) */
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
    int *row_slot;   /* (N) the cache slot of each row now in the workspace, for its LoRA scales */
    float *lora_gather; /* (rows, in) + (rows, out): the rows of a batch that use an adapter */
    size_t gather_cap;  /* floats */
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
    e->slot_scales = calloc((size_t)e->n_slots * PT_ENGINE_MAX_ADAPTERS, sizeof(float));
    pt_status st = e->len && e->slot_scales ? e->be->engine_open(&e->dev, e->m, e->n_slots, e->n_ctx, PREFILL_CHUNK)
                                            : pt_error(PT_ERR_OOM, "out of memory");
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
    if (e->be->engine_open && pt_numerics_default() != PT_NUMERICS_EXACT) {
        pt_engine_free(e);
        return pt_error(PT_ERR_ARG, "--numerics %s runs on the CPU only, and this engine would run on %s: add --device cpu",
                        pt_numerics_name(pt_numerics_default()), e->be->name);
    }
    if (e->be->engine_open) return open_on_device(out, e);
    size_t n = (size_t)c->n_layers * n_slots * n_ctx * e->kv_dim;
    e->k_cache = malloc(sizeof(float) * n);
    e->v_cache = malloc(sizeof(float) * n);
    e->len = calloc((size_t)n_slots, sizeof(int));
    e->slot_scales = calloc((size_t)n_slots * PT_ENGINE_MAX_ADAPTERS, sizeof(float));
    if (!e->k_cache || !e->v_cache || !e->len || !e->slot_scales) {
        pt_engine_free(e);
        return pt_error(PT_ERR_OOM, "out of memory for a %d x %d token key/value cache (%.1f MiB)", n_slots, n_ctx,
                        2.0 * sizeof(float) * n / (1 << 20));
    }
    if (e->be->attach) {
        pt_status st = e->be->attach(m, n_slots, n_ctx);
        if (st) { pt_engine_free(e); return st; }
        e->attached = 1;
    }
    pt_status st = pt_engine_set_numerics(e, pt_numerics_default());
    if (st) { pt_engine_free(e); return st; }
    *out = e;
    return PT_OK;
}

static pt_numerics default_numerics = PT_NUMERICS_EXACT;
void pt_numerics_set_default(pt_numerics n) { default_numerics = n; }
pt_numerics pt_numerics_default(void) { return default_numerics; }
const char *pt_numerics_name(pt_numerics n) { return n == PT_NUMERICS_LLAMACPP ? "llamacpp" : "exact"; }

pt_status pt_numerics_parse(const char *name, pt_numerics *out) {
    if (!strcmp(name, "exact")) *out = PT_NUMERICS_EXACT;
    else if (!strcmp(name, "llamacpp")) *out = PT_NUMERICS_LLAMACPP;
    else return pt_error(PT_ERR_ARG, "--numerics wants exact or llamacpp, got '%s'", name);
    return PT_OK;
}

pt_status pt_engine_set_numerics(pt_engine *e, pt_numerics n) {
    if (n == e->numerics) return PT_OK;
    for (int s = 0; s < e->n_slots; s++)
        if (e->len[s]) return pt_error(PT_ERR_ARG, "numerics can change only while the cache is empty (slot %d holds %d tokens)", s, e->len[s]);
    if (n == PT_NUMERICS_LLAMACPP) {
        if (e->dev) return pt_error(PT_ERR_ARG, "--numerics llamacpp runs on the CPU only, not on %s: add --device cpu", e->be->name);
        const pt_model *m = e->m;
        if (m->cfg.rope_llama3 || m->cfg.head_dim > 512)
            return pt_error(PT_ERR_ARG, "%s: --numerics llamacpp does not emulate %s", m->path ? m->path : "model",
                            m->cfg.rope_llama3 ? "Llama-3.1 RoPE frequency scaling" : "heads wider than 512");
        static const char *const names[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
        for (int l = 0; l < m->cfg.n_layers; l++) {
            const pt_layer *L = &m->layers[l];
            const pt_weight *w[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
            for (int i = 0; i < 7; i++)
                if (!pt_ggml_supported(w[i]->dtype))
                    return pt_error(PT_ERR_ARG, "%s: --numerics llamacpp does not emulate llama.cpp's products with %s weights "
                                    "('blk.%d.%s.weight'; emulated: %s)", m->path ? m->path : "model", pt_dtype_name(w[i]->dtype), l,
                                    names[i], pt_ggml_supported_names());
        }
        if (!pt_ggml_supported(m->output.dtype))
            return pt_error(PT_ERR_ARG, "%s: --numerics llamacpp does not emulate llama.cpp's products with %s weights "
                            "(the output projection; emulated: %s)", m->path ? m->path : "model", pt_dtype_name(m->output.dtype),
                            pt_ggml_supported_names());
    }
    e->numerics = n;
    return PT_OK;
}

static void free_workspace(pt_engine *e) {
    float **bufs[] = {&e->x, &e->xb, &e->q, &e->k, &e->v, &e->hb, &e->hb2, &e->lora_tmp, &e->cos_t, &e->sin_t};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) { free(*bufs[i]); *bufs[i] = NULL; }
    free(e->pos);
    free(e->row_slot);
    e->pos = e->row_slot = NULL;
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
    free(e->lora_gather);
    free(e->steer_on);
    free(e->k_cache);
    free(e->v_cache);
    free(e->len);
    free(e->slot_scales);
    free(e);
}

/* The adapter(s) in use, copied to a backend that runs whole steps: kept apart from the
 * host's LoRA arithmetic in linear() below. A failure leaves the device without adapters and
 * is reported by the next forward pass. */
static void device_adapters(pt_engine *e) {
    if (!e->dev) return;
    e->dev_adapter_status = e->be->engine_set_adapters(e->dev, e->adapters, e->default_scales, e->n_adapters);
    if (e->dev_adapter_status) snprintf(e->dev_adapter_err, sizeof e->dev_adapter_err, "%s", pt_errmsg());
}

void pt_engine_set_adapter(pt_engine *e, const pt_adapter *a) {
    const float one = 1.0f;
    pt_engine_set_adapters(e, &a, &one, a ? 1 : 0);
}

pt_status pt_engine_set_adapters(pt_engine *e, const pt_adapter *const *adapters, const float *scales, int n) {
    if (n < 0 || n > PT_ENGINE_MAX_ADAPTERS) return pt_error(PT_ERR_ARG, "at most %d adapters at once, got %d", PT_ENGINE_MAX_ADAPTERS, n);
    for (int i = 0; i < n; i++)
        if (!adapters[i] || !isfinite(scales[i])) return pt_error(PT_ERR_ARG, "adapter %d: missing, or its scale is not a finite number", i + 1);
        else if (adapters[i]->n_layers != e->m->cfg.n_layers)
            return pt_error(PT_ERR_ARG, "adapter %d has %d layers, the model %d: it was made for another base model", i + 1,
                            adapters[i]->n_layers, e->m->cfg.n_layers);
    int r = 0;
    for (int i = 0; i < n; i++) {
        e->adapters[i] = adapters[i];
        e->default_scales[i] = scales[i];
        if (adapters[i]->r > r) r = adapters[i]->r;
    }
    e->n_adapters = n;
    for (int s = 0; s < e->n_slots; s++) pt_engine_set_slot_scales(e, s, NULL);
    if (r != e->lora_r) free_workspace(e); /* the LoRA scratch is sized by the largest rank */
    e->lora_r = r;
    device_adapters(e);
    return PT_OK;
}

pt_status pt_engine_set_slot_scales(pt_engine *e, int slot, const float *scales) {
    if (slot < 0 || slot >= e->n_slots) return pt_error(PT_ERR_ARG, "slot %d out of range (0..%d)", slot, e->n_slots - 1);
    for (int i = 0; scales && i < e->n_adapters; i++)
        if (!isfinite(scales[i])) return pt_error(PT_ERR_ARG, "adapter %d: scale %g is not a finite number", i + 1, scales[i]);
    /* a backend running whole steps holds one set of scales for every row */
    for (int i = 0; e->dev && scales && i < e->n_adapters; i++)
        if (scales[i] != e->default_scales[i])
            return pt_error(PT_ERR_ARG, "adapter scales per request are not supported on the %s backend yet: run with --device cpu", e->be->name);
    float *dst = e->slot_scales + (size_t)slot * PT_ENGINE_MAX_ADAPTERS;
    memcpy(dst, scales ? scales : e->default_scales, sizeof(float) * e->n_adapters);
    return PT_OK;
}

int pt_engine_n_adapters(const pt_engine *e) { return e->n_adapters; }

pt_status pt_engine_set_steer(pt_engine *e, const pt_steer *s, float scale, const bool *layers) {
    if (!s) { e->steer = NULL; return PT_OK; }
    if (e->dev) return pt_error(PT_ERR_ARG, "steering vectors are not supported on the %s backend yet: run with --device cpu", e->be->name);
    const pt_config *c = &e->m->cfg;
    if (s->n_layers != c->n_layers || s->dim != c->dim)
        return pt_error(PT_ERR_ARG, "steering vector of %d layers x %d does not fit the model's %d x %d", s->n_layers, s->dim, c->n_layers, c->dim);
    if (!isfinite(scale)) return pt_error(PT_ERR_ARG, "steering scale is not a finite number");
    if (!e->steer_on && !(e->steer_on = calloc((size_t)c->n_layers, sizeof(bool)))) return pt_error(PT_ERR_OOM, "out of memory");
    for (int l = 0; l < c->n_layers; l++) e->steer_on[l] = s->has[l] && (!layers || layers[l]);
    e->steer = s;
    e->steer_scale = scale;
    return PT_OK;
}

void pt_engine_set_capture(pt_engine *e, double *sums, int from_row) {
    e->capture = sums;
    e->capture_from = from_row;
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

/* Room in lora_gather for `rows` rows of in + out floats; false when memory is short (the
 * caller then runs the adapter over every row, which is correct, only slower). */
static bool gather_room(pt_engine *e, int rows, int in, int out) {
    size_t need = (size_t)rows * (size_t)(in + out);
    if (need <= e->gather_cap) return true;
    float *g = realloc(e->lora_gather, sizeof(float) * need);
    if (!g) return false;
    e->lora_gather = g;
    e->gather_cap = need;
    return true;
}

static pt_status ensure_workspace(pt_engine *e, int n) {
    if (n <= e->cap) return PT_OK;
    free_workspace(e);
    const pt_config *c = &e->m->cfg;
    int Q = c->n_heads * c->head_dim, D = c->dim, wide = Q > D ? Q : D;
    int r = e->lora_r;
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
    e->row_slot = malloc(sizeof(int) * n);
    if (!e->pos || !e->row_slot) { free_workspace(e); return pt_error(PT_ERR_OOM, "out of memory"); }
    e->cap = n;
    return PT_OK;
}

/* y (N, out) = x W^T (+ bias) + sum over the adapters that target it, in list order, of
 * s_row * (x A^T) B^T, where s_row = (the row's slot's scale) * alpha / r. An adapter whose
 * scale is 0 in every row is skipped, so scale 0 is the base exactly; with one adapter at
 * scale 1 the arithmetic is the single adapter's, operation for operation. When only some
 * rows use an adapter (the server mixing requests), those rows are gathered and their delta
 * added back, so a batch of two adapters costs the LoRA work of one. */
static void linear(pt_engine *e, float *y, const float *x, const pt_weight *W, const float *bias, int n, int accumulate,
                   int layer, pt_lora_target target) {
    if (e->numerics == PT_NUMERICS_LLAMACPP) {
        pt_status st = pt_ggml_matmul(y, x, W, bias, n, accumulate);
        if (st && !e->numerics_status) e->numerics_status = st;
    } else {
        e->be->matmul(y, x, W, bias, n, accumulate);
    }
    for (int i = 0; i < e->n_adapters; i++) {
        const pt_adapter *a = e->adapters[i];
        const pt_lora_pair *p = pt_adapter_pair(a, layer, target);
        if (!p) continue;
        int used = 0;
        for (int row = 0; row < n; row++) used += e->slot_scales[(size_t)e->row_slot[row] * PT_ENGINE_MAX_ADAPTERS + i] != 0.0f;
        if (!used) continue;
        int r = a->r;
        float *t = e->lora_tmp; /* (N, r) */
        if (used < n && gather_room(e, used, p->in, p->out)) {
            float *xs = e->lora_gather, *ys = xs + (size_t)used * p->in; /* (used, in) (used, out) */
            for (int row = 0, k = 0; row < n; row++)
                if (e->slot_scales[(size_t)e->row_slot[row] * PT_ENGINE_MAX_ADAPTERS + i] != 0.0f)
                    memcpy(xs + (size_t)k++ * p->in, x + (size_t)row * p->in, sizeof(float) * p->in);
            e->be->sgemm_nt(t, xs, p->A, used, r, p->in, 0);
            for (int row = 0, k = 0; row < n; row++) {
                float s = e->slot_scales[(size_t)e->row_slot[row] * PT_ENGINE_MAX_ADAPTERS + i] * a->scale;
                if (s == 0.0f) continue;
                for (int j = 0; j < r; j++) t[(size_t)k * r + j] *= s;
                k++;
            }
            e->be->sgemm_nt(ys, t, p->B, used, p->out, r, 0);
            for (int row = 0, k = 0; row < n; row++)
                if (e->slot_scales[(size_t)e->row_slot[row] * PT_ENGINE_MAX_ADAPTERS + i] != 0.0f) {
                    float *yr = y + (size_t)row * p->out;
                    const float *d = ys + (size_t)k++ * p->out;
                    for (int o = 0; o < p->out; o++) yr[o] += d[o];
                }
            continue;
        }
        e->be->sgemm_nt(t, x, p->A, n, r, p->in, 0);
        for (int row = 0; row < n; row++) {
            float s = e->slot_scales[(size_t)e->row_slot[row] * PT_ENGINE_MAX_ADAPTERS + i] * a->scale;
            for (int j = 0; j < r; j++) t[(size_t)row * r + j] *= s;
        }
        e->be->sgemm_nt(y, t, p->B, n, p->out, r, 1);
    }
}

/* A llama.cpp-rounded product or attention failed during the pass (its message is the last
 * error left): reported once, and the next pass starts clean. */
static pt_status take_numerics_error(pt_engine *e) {
    pt_status st = e->numerics_status;
    e->numerics_status = PT_OK;
    return st;
}

/* RMSNorm and RoPE of the forward pass: the backend's, or ggml's formulas in llamacpp numerics. */
static void norm(pt_engine *e, float *out, const float *in, const float *w, int n, int dim) {
    if (e->numerics == PT_NUMERICS_LLAMACPP) pt_ggml_rmsnorm(out, in, w, n, dim, e->m->cfg.norm_eps);
    else e->be->rmsnorm_forward(out, NULL, in, w, n, dim, e->m->cfg.norm_eps);
}
static void rope(pt_engine *e, float *x, int n, int n_heads) {
    const pt_config *c = &e->m->cfg;
    if (e->numerics == PT_NUMERICS_LLAMACPP) pt_ggml_rope(x, e->pos, n, n_heads, c->head_dim, c->rope_theta);
    else e->be->rope_forward(x, e->cos_t, e->sin_t, n, n_heads, c->head_dim);
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
    if (e->capture) return pt_error(PT_ERR_ARG, "capturing the residual stream is not supported on the %s backend yet: run with --device cpu", e->be->name);
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
            e->row_slot[row] = b->slot[s];
            embed_row(e->x + (size_t)row * D, &m->tok_emb, b->ids[s][j]);
        }
    e->be->rope_tables(e->cos_t, e->sin_t, e->pos, N, m->inv_freq, hd / 2);

    for (int l = 0; l < c->n_layers; l++) {
        const pt_layer *L = &m->layers[l];
        norm(e, e->xb, e->x, L->attn_norm, N, D);
        linear(e, e->q, e->xb, &L->wq, L->bq, N, 0, l, PT_LT_Q);
        linear(e, e->k, e->xb, &L->wk, L->bk, N, 0, l, PT_LT_K);
        linear(e, e->v, e->xb, &L->wv, L->bv, N, 0, l, PT_LT_V);
        if (L->q_norm) { /* qwen3: every head of Q and K normalised on its own, before RoPE */
            norm(e, e->q, e->q, L->q_norm, N * H, hd);
            norm(e, e->k, e->k, L->k_norm, N * KVH, hd);
        }
        rope(e, e->q, N, H);
        rope(e, e->k, N, KVH);
        for (int s = 0, row = 0; s < b->n_seq; row += b->n_tokens[s], s++) {
            size_t ci = cache_index(e, l, b->slot[s]);
            float *kc = e->k_cache + ci, *vc = e->v_cache + ci;
            int start = e->len[b->slot[s]], n = b->n_tokens[s];
            if (e->numerics == PT_NUMERICS_LLAMACPP) { /* llama.cpp's default cache type is F16 */
                pt_ggml_round_f16(e->k + (size_t)row * KV, (size_t)n * KV);
                pt_ggml_round_f16(e->v + (size_t)row * KV, (size_t)n * KV);
            }
            memcpy(kc + (size_t)start * KV, e->k + (size_t)row * KV, sizeof(float) * n * KV);
            memcpy(vc + (size_t)start * KV, e->v + (size_t)row * KV, sizeof(float) * n * KV);
            if (e->numerics == PT_NUMERICS_LLAMACPP) {
                pt_status st = pt_ggml_attention_forward(e->xb + (size_t)row * Q, e->q + (size_t)row * Q, kc, vc, e->pos + row, n, H, KVH,
                                                         hd, c->arch != PT_ARCH_QWEN2 && c->arch != PT_ARCH_QWEN3);
                if (st && !e->numerics_status) e->numerics_status = st;
            } else {
                e->be->attention_forward(e->xb + (size_t)row * Q, e->q + (size_t)row * Q, kc, vc, e->pos + row, n, H, KVH, hd);
            }
        }
        linear(e, e->x, e->xb, &L->wo, NULL, N, 1, l, PT_LT_O); /* residual add */
        norm(e, e->xb, e->x, L->ffn_norm, N, D);
        linear(e, e->hb, e->xb, &L->w_gate, NULL, N, 0, l, PT_LT_GATE);
        linear(e, e->hb2, e->xb, &L->w_up, NULL, N, 0, l, PT_LT_UP);
        if (e->numerics == PT_NUMERICS_LLAMACPP) pt_ggml_swiglu(e->hb, e->hb, e->hb2, N, c->ffn_dim);
        else e->be->swiglu_forward(e->hb, e->hb, e->hb2, (int64_t)N * c->ffn_dim);
        linear(e, e->x, e->hb, &L->w_down, NULL, N, 1, l, PT_LT_DOWN); /* residual add */
        if (e->steer && e->steer_on[l] && e->steer_scale != 0.0f) { /* activation addition at the layer's output */
            const float *v = e->steer->v + (size_t)l * D;
            for (int row = 0; row < N; row++)
                for (int k = 0; k < D; k++) e->x[(size_t)row * D + k] += e->steer_scale * v[k];
        }
        if (e->capture)
            for (int row = e->capture_from; row < N; row++)
                for (int k = 0; k < D; k++) e->capture[(size_t)l * D + k] += e->x[(size_t)row * D + k];
    }
    if (e->be->take_error) PT_TRY(e->be->take_error()); /* the cache is left as it was */
    if (e->numerics_status) return take_numerics_error(e);
    for (int s = 0; s < b->n_seq; s++) e->len[b->slot[s]] += b->n_tokens[s];
    if (logits) *logits = NULL;
    if (mode == PT_LOGITS_NONE) return PT_OK;

    /* gather the rows that need logits, normalise them, project to the vocabulary */
    int rows = mode == PT_LOGITS_ALL ? N : b->n_seq;
    if (mode == PT_LOGITS_LAST)
        for (int s = 0, row = 0; s < b->n_seq; s++) {
            row += b->n_tokens[s];
            memmove(e->x + (size_t)s * D, e->x + (size_t)(row - 1) * D, sizeof(float) * D);
            e->row_slot[s] = b->slot[s];
        }
    PT_TRY(ensure_logits(e, rows));
    norm(e, e->xb, e->x, m->out_norm, rows, D);
    linear(e, e->logits, e->xb, &m->output, NULL, rows, 0, 0, PT_LT_HEAD);
    if (e->be->take_error) PT_TRY(e->be->take_error());
    if (e->numerics_status) return take_numerics_error(e);
    PT_TRY(check_finite(e, rows));
    if (logits) *logits = e->logits;
    return PT_OK;
}

pt_status pt_engine_forward_one(pt_engine *e, int slot, const int32_t *ids, int n, pt_logits_mode mode, const float **logits) {
    pt_batch b = {1, &slot, &ids, &n};
    return pt_engine_forward(e, &b, mode, logits);
}
