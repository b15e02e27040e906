/* The training forward pass: the same decoder as the engine's (RMSNorm, rotary attention
 * with GQA, SwiGLU MLP, LoRA on any linear), over a packed micro-batch and without a
 * key/value cache, keeping every activation the backward pass reads. Also where the
 * training model's buffers are sized and allocated, once. Compiled for float32 and float64
 * (nn/real.h, tmodel_impl.h). */
#include <stdlib.h>
#include <string.h>

#include "nn/nn.h"
#include "train/tmodel_impl.h"

static uint64_t mix(uint64_t a, uint64_t b) {
    uint64_t z = a ^ (b + 0x9e3779b97f4a7c15ull + (a << 6) + (a >> 2));
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

lora_call PT_RN(pt_tmodel_lora_call)(const tmodel *t, int layer, int target, bool lora, bool train, uint64_t salt) {
    lora_call c = {0};
    if (!lora || !t->a) return c;
    const pt_lora_pair *p = pt_adapter_pair(t->a, layer, (pt_lora_target)target);
    if (!p) return c;
    const int slot = target == PT_LT_HEAD ? t->L * PT_N_LINEAR : layer * PT_N_LINEAR + target;
#ifdef PT_F64
    c.A = t->A[slot], c.B = t->B[slot];
#else
    c.A = p->A, c.B = p->B;
#endif
    c.r = t->a->r;
    c.scale = t->a->scale;
    if (train) {
#ifdef PT_F64
        if (t->ps) c.dA = t->dA[slot], c.dB = t->dB[slot];
#else
        if (t->ps) c.dA = t->ps->dA[slot], c.dB = t->ps->dB[slot];
#endif
        if (t->xd) {
            c.dropout = t->a->dropout;
            /* the mask is indexed by the element's place in the whole micro-batch (row
             * offsets: batch.h), so a piece of it drops what the whole would have dropped;
             * salt is the head chunk's first loss row */
            const bool head = target == PT_LT_HEAD;
            const int64_t row0 = head ? (int64_t)t->drop_loss0 + (int64_t)salt : t->drop_row0;
            c.seed = pt_lora_dropout_seek(mix(mix(t->drop_seed, (uint64_t)layer * 16 + target), 0), row0 * p->in);
        }
    }
    return c;
}

/* A bump allocator over one block: a first pass with base == NULL only counts. */
typedef struct { char *base; size_t off; } arena;
static void *take_bytes(arena *ar, size_t bytes) {
    void *p = ar->base ? ar->base + ar->off : NULL;
    ar->off += (bytes + 63) / 64 * 64;
    return p;
}
static pt_real *take(arena *ar, size_t n) { return take_bytes(ar, n * sizeof(pt_real)); }

static void lay_out(tmodel *t, arena *ar) {
    const size_t N = t->shape.max_tok, D = t->D, Q = t->Q, KV = t->KV, F = t->F, r = t->r;
    const size_t max_in = F > D ? (F > Q ? F : Q) : (D > Q ? D : Q);
    for (int l = 0; l <= t->L; l++) t->xs[l] = take(ar, N * D);
    for (int i = 0; i < t->n_acts; i++) {
        layer_acts *a = &t->acts[i];
        a->xn1 = take(ar, N * D), a->rstd1 = take(ar, N);
        a->q = take(ar, N * Q), a->k = take(ar, N * KV), a->v = take(ar, N * KV);
        a->att = take(ar, N * Q), a->lse = take(ar, N * t->H);
        a->x_mid = take(ar, N * D), a->xn2 = take(ar, N * D), a->rstd2 = take(ar, N);
        a->gate = take(ar, N * F), a->up = take(ar, N * F), a->h = take(ar, N * F);
        for (int k = 0; k < PT_N_LINEAR; k++) {
            bool targeted = false;
            for (int l = 0; t->a && l < t->L && !targeted; l++)
                targeted = (t->n_acts == 1 || l == i || i == 0) && pt_adapter_pair(t->a, l, (pt_lora_target)k);
            a->lu[k] = targeted ? take(ar, N * r) : NULL;
        }
    }
    t->cos_t = take(ar, N * t->hd / 2), t->sin_t = take(ar, N * t->hd / 2);
    t->xnf = take(ar, N * D), t->rstdf = take(ar, N), t->xg = take(ar, N * D), t->uh = take(ar, N * (r ? r : 1));
    t->logits = take(ar, (size_t)t->chunk * t->V);
    t->chunk_logp = take_bytes(ar, sizeof(double) * t->chunk);
    t->dx = take(ar, N * D), t->dxn = take(ar, N * D);
    t->dq = take(ar, N * Q), t->datt = take(ar, N * Q), t->dk = take(ar, N * KV), t->dv = take(ar, N * KV);
    t->df1 = take(ar, N * F), t->df2 = take(ar, N * F), t->du = take(ar, N * (r ? r : 1));
    t->xd = t->a && t->a->dropout > 0 ? take(ar, N * max_in) : NULL;
    t->wtile = take(ar, PT_LINEAR_TILE * max_in);
    t->att_scratch = take(ar, pt_attention_scratch_elems(t->shape.max_len, t->H));
    t->dxg = take(ar, (size_t)t->chunk * D);
#ifdef PT_F64
    for (int slot = 0; slot < t->n_slots; slot++) {
        const pt_lora_pair *p = pt_tmodel_slot_pair(t, slot);
        if (!p) continue;
        t->A[slot] = take(ar, r * p->in), t->B[slot] = take(ar, r * p->out);
        if (!t->ps) continue;
        t->dA[slot] = take(ar, r * p->in), t->dB[slot] = take(ar, r * p->out);
        if (ar->base) memset(t->dA[slot], 0, sizeof(double) * r * p->in), memset(t->dB[slot], 0, sizeof(double) * r * p->out);
    }
#endif
}

pt_status PT_RN(pt_tmodel_impl_new)(void **out, const pt_model *m, const pt_adapter *a, const pt_lora_params *ps,
                                    const pt_tmodel_shape *shape) {
    *out = NULL;
    if (shape->max_seq < 1 || shape->max_tok < 2 || shape->max_len < 2 || shape->max_len > shape->max_tok)
        return pt_error(PT_ERR_ARG, "training shape: %d sequences, %d tokens, longest %d is not a valid batch shape",
                        shape->max_seq, shape->max_tok, shape->max_len);
    const pt_config *c = &m->cfg;
    const pt_backend *be = pt_backend_current();
    const train_ops *ops = PT_RN(pt_backend_train_ops)(be);
    /* a backend picked by --device auto that cannot train hands the job to the CPU */
    if (!ops && pt_backend_is_auto()) be = pt_backend_cpu(), ops = PT_RN(pt_backend_train_ops)(be);
    if (!ops)
        return pt_error(PT_ERR_ARG, "training in %s on the %s backend is not implemented (use --device cpu%s)",
                        sizeof(pt_real) == 8 ? "float64" : "float32", be->name, sizeof(pt_real) == 8 ? " or --precision f32" : "");
    if (be->attach) PT_TRY(be->attach(m, 0, 0));
    tmodel *t = calloc(1, sizeof *t);
    if (!t) {
        if (be->detach) be->detach(m);
        return pt_error(PT_ERR_OOM, "out of memory");
    }
    t->m = m, t->be = be, t->ops = ops, t->a = a, t->ps = ps, t->shape = *shape;
    t->D = c->dim, t->H = c->n_heads, t->KVH = c->n_kv_heads, t->hd = c->head_dim, t->L = c->n_layers;
    t->Q = t->H * t->hd, t->KV = t->KVH * t->hd, t->F = c->ffn_dim, t->V = c->vocab_size;
    t->r = a ? a->r : 0;
    t->n_acts = shape->recompute ? 1 : t->L;
    size_t budget = shape->logits_bytes ? shape->logits_bytes : (size_t)1 << 30;
    size_t rows = budget / (sizeof(pt_real) * (size_t)t->V);
    t->chunk = rows < 1 ? 1 : rows > (size_t)shape->max_tok ? shape->max_tok : (int)rows;
    t->xs = calloc((size_t)t->L + 1, sizeof *t->xs);
    t->acts = calloc((size_t)t->n_acts, sizeof *t->acts);
    bool ok = t->xs && t->acts;
#ifdef PT_F64
    t->n_slots = a ? t->L * PT_N_LINEAR + 1 : 0;
    t->A = calloc(t->n_slots + 1, sizeof *t->A), t->B = calloc(t->n_slots + 1, sizeof *t->B);
    t->dA = calloc(t->n_slots + 1, sizeof *t->dA), t->dB = calloc(t->n_slots + 1, sizeof *t->dB);
    ok = ok && t->A && t->B && t->dA && t->dB;
#endif
    if (!ok) { PT_RN(pt_tmodel_impl_free)(t); return pt_error(PT_ERR_OOM, "out of memory"); }
    arena ar = {0};
    lay_out(t, &ar);
    t->bytes = ar.off;
    t->arena = malloc(ar.off);
    if (!t->arena) {
        PT_RN(pt_tmodel_impl_free)(t);
        return pt_error(PT_ERR_OOM, "out of memory for training activations (%.1f MiB for %d tokens%s)", ar.off / 1048576.0,
                        shape->max_tok, shape->recompute ? "" : "; --recompute needs less");
    }
    ar = (arena){t->arena, 0};
    lay_out(t, &ar);
    *out = t;
    return PT_OK;
}

void PT_RN(pt_tmodel_impl_free)(void *handle) {
    tmodel *t = handle;
    if (!t) return;
    if (t->be->detach) t->be->detach(t->m);
    free(t->arena);
    free(t->xs);
    free(t->acts);
#ifdef PT_F64
    free(t->A), free(t->B), free(t->dA), free(t->dB);
#endif
    free(t);
}

size_t PT_RN(pt_tmodel_impl_bytes)(const void *t) { return ((const tmodel *)t)->bytes; }

void PT_RN(pt_tmodel_layer_forward)(tmodel *t, const pt_tbatch *b, int l, layer_acts *a, const pt_real *x_in, pt_real *x_out,
                                    bool lora, bool train) {
    const pt_model *m = t->m;
    const pt_layer *L = &m->layers[l];
    const int N = b->n_tok, D = t->D;
    lora_call c[PT_N_LINEAR];
    for (int k = 0; k < PT_N_LINEAR; k++) c[k] = PT_RN(pt_tmodel_lora_call)(t, l, k, lora, train, 0);
    t->ops->rmsnorm_forward(a->xn1, a->rstd1, x_in, L->attn_norm, N, D, m->cfg.norm_eps);
    t->ops->linear_forward(a->q, a->lu[PT_LT_Q], t->xd, t->wtile, a->xn1, &L->wq, L->bq, &c[PT_LT_Q], N, 0);
    t->ops->linear_forward(a->k, a->lu[PT_LT_K], t->xd, t->wtile, a->xn1, &L->wk, L->bk, &c[PT_LT_K], N, 0);
    t->ops->linear_forward(a->v, a->lu[PT_LT_V], t->xd, t->wtile, a->xn1, &L->wv, L->bv, &c[PT_LT_V], N, 0);
    t->ops->rope_forward(a->q, t->cos_t, t->sin_t, N, t->H, t->hd);
    t->ops->rope_forward(a->k, t->cos_t, t->sin_t, N, t->KVH, t->hd);
    t->ops->attention_forward(a->att, a->lse, a->q, a->k, a->v, b->seq_start, b->seq_len, b->n_seq, t->H, t->KVH, t->hd,
                               t->att_scratch);
    memcpy(a->x_mid, x_in, sizeof(pt_real) * N * D);
    t->ops->linear_forward(a->x_mid, a->lu[PT_LT_O], t->xd, t->wtile, a->att, &L->wo, NULL, &c[PT_LT_O], N, 1);
    t->ops->rmsnorm_forward(a->xn2, a->rstd2, a->x_mid, L->ffn_norm, N, D, m->cfg.norm_eps);
    t->ops->linear_forward(a->gate, a->lu[PT_LT_GATE], t->xd, t->wtile, a->xn2, &L->w_gate, NULL, &c[PT_LT_GATE], N, 0);
    t->ops->linear_forward(a->up, a->lu[PT_LT_UP], t->xd, t->wtile, a->xn2, &L->w_up, NULL, &c[PT_LT_UP], N, 0);
    t->ops->swiglu_forward(a->h, a->gate, a->up, (int64_t)N * t->F);
    memcpy(x_out, a->x_mid, sizeof(pt_real) * N * D);
    t->ops->linear_forward(x_out, a->lu[PT_LT_DOWN], t->xd, t->wtile, a->h, &L->w_down, NULL, &c[PT_LT_DOWN], N, 1);
}

void PT_RN(pt_tmodel_head_chunk)(tmodel *t, const pt_tbatch *b, int c0, int n, bool lora, bool train, double *logp) {
    lora_call c = PT_RN(pt_tmodel_lora_call)(t, t->L, PT_LT_HEAD, lora, train, (uint64_t)c0);
    t->ops->linear_forward(t->logits, t->uh + (size_t)c0 * (t->r ? t->r : 1), t->xd, t->wtile, t->xg + (size_t)c0 * t->D, &t->m->output,
                      NULL, &c, n, 0);
    t->ops->logsoftmax_forward(logp, t->logits, b->loss_tgt + c0, n, t->V);
}

#ifdef PT_F64
/* The float64 copies of the adapter's current parameters. */
static void refresh_lora(tmodel *t) {
    for (int slot = 0; slot < t->n_slots; slot++) {
        const pt_lora_pair *p = pt_tmodel_slot_pair(t, slot);
        if (!p) continue;
        for (int64_t i = 0; i < (int64_t)t->r * p->in; i++) t->A[slot][i] = p->A[i];
        for (int64_t i = 0; i < (int64_t)t->r * p->out; i++) t->B[slot][i] = p->B[i];
    }
}
#endif

pt_status PT_RN(pt_tmodel_impl_forward)(void *handle, const pt_tbatch *b, bool lora, bool train, uint64_t drop_seed, double *logp) {
    tmodel *t = handle;
    const pt_model *m = t->m;
    const int N = b->n_tok, D = t->D, V = t->V;
    if (b->n_seq > t->shape.max_seq || N > t->shape.max_tok || b->max_len > t->shape.max_len)
        return pt_error(PT_ERR_INTERNAL, "batch of %d sequences / %d tokens / longest %d exceeds the training shape %d / %d / %d",
                        b->n_seq, N, b->max_len, t->shape.max_seq, t->shape.max_tok, t->shape.max_len);
    for (int i = 0; i < N; i++)
        if (b->ids[i] < 0 || b->ids[i] >= V) return pt_error(PT_ERR_ARG, "token id %d is outside the vocabulary of %d", b->ids[i], V);
    t->drop_seed = drop_seed;
    t->drop_row0 = b->drop_row0, t->drop_loss0 = b->drop_loss0;
    t->logits_kept = false;
#ifdef PT_F64
    if (lora) refresh_lora(t);
#endif

    const size_t row_bytes = pt_dtype_nbytes(m->tok_emb.dtype, D);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++)
        pt_dtype_to_real(t->xs[0] + (size_t)i * D, (const uint8_t *)m->tok_emb.data + row_bytes * b->ids[i], m->tok_emb.dtype, D);
    t->ops->rope_tables(t->cos_t, t->sin_t, b->pos, N, m->inv_freq, t->hd / 2);

    /* Without backward, two residual buffers and one activation set are enough (this
     * overwrites what an earlier train forward kept). */
    for (int l = 0; l < t->L; l++) {
        layer_acts *a = &t->acts[train && !t->shape.recompute ? l : 0];
        const pt_real *x_in = train ? t->xs[l] : t->xs[l % 2];
        pt_real *x_out = train ? t->xs[l + 1] : t->xs[(l + 1) % 2];
        PT_RN(pt_tmodel_layer_forward)(t, b, l, a, x_in, x_out, lora, train);
    }
    const pt_real *xf = train ? t->xs[t->L] : t->xs[t->L % 2];
    t->ops->rmsnorm_forward(t->xnf, t->rstdf, xf, m->out_norm, N, D, m->cfg.norm_eps);
    const int M = b->n_loss;
    for (int i = 0; i < M; i++) memcpy(t->xg + (size_t)i * D, t->xnf + (size_t)b->loss_row[i] * D, sizeof(pt_real) * D);
    for (int c0 = 0; c0 < M; c0 += t->chunk) {
        int n = M - c0 < t->chunk ? M - c0 : t->chunk;
        PT_RN(pt_tmodel_head_chunk)(t, b, c0, n, lora, train, logp + c0);
    }
    t->logits_kept = train && M <= t->chunk;
    if (!train) t->drop_seed = 0;
    /* a backend's operations return nothing: a failure among them surfaces here */
    if (t->be->take_error) {
        pt_status st = t->be->take_error();
        if (st) t->logits_kept = false;
        return st;
    }
    return PT_OK;
}
