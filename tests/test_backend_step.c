/* The engine's side of the whole-step hooks (backend.h: engine_open, forward_step,
 * engine_set_adapters), checked on the CPU: a backend of this file's own implements
 * forward_step with the CPU's operations over the pt_step description alone (each row's id,
 * position and slot; the rows whose logits are wanted), keeping its own key/value cache in the
 * layout the CUDA engine uses (plan.h: pt_cuda_kv_offset). Its logits must equal the CPU
 * engine's for single prompts, long prompts the engine splits into chunks, batched decode of
 * sequences at different positions, truncated slots and a LoRA adapter. Both run the same
 * float32 operations in the same order, so they agree to float32 rounding: the bound is
 * 1e-6 x max|logit|. What the CUDA kernels compute is tests/gpu's to check, on a device. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cuda/plan.h"
#include "model/adapter.h"
#include "internal.h"
#include "test.h"

#define STEP_TOL 1e-6

typedef struct {
    const pt_model *m;
    int n_slots, n_ctx;
    float *kc, *vc; /* (n_layers, n_slots, n_ctx, kv_dim) */
    const pt_adapter *adapters[4];
    float weights[4];
    int n_adapters;
    int steps, rows; /* forward_step calls and rows seen, to show the engine used the hooks */
} step_backend;

static step_backend *the_state; /* the one open engine's, for the tests' counts */

static pt_status sb_open(void **dev, const pt_model *m, int n_slots, int n_ctx, int max_rows) {
    (void)max_rows;
    step_backend *sb = calloc(1, sizeof *sb);
    const size_t n = pt_cuda_kv_offset(&m->cfg, n_slots, n_ctx, m->cfg.n_layers, 0, 0);
    if (!sb || !(sb->kc = calloc(n, sizeof(float))) || !(sb->vc = calloc(n, sizeof(float)))) {
        if (sb) free(sb->kc), free(sb);
        return pt_error(PT_ERR_OOM, "out of memory");
    }
    sb->m = m, sb->n_slots = n_slots, sb->n_ctx = n_ctx;
    *dev = the_state = sb;
    return PT_OK;
}

static void sb_close(void *dev) {
    step_backend *sb = dev;
    free(sb->kc), free(sb->vc), free(sb);
    the_state = NULL;
}

static pt_status sb_set_adapters(void *dev, const struct pt_adapter *const *adapters, const float *weights, int n) {
    step_backend *sb = dev;
    if (n > 4) return pt_error(PT_ERR_ARG, "at most 4 adapters");
    sb->n_adapters = n;
    for (int i = 0; i < n; i++) sb->adapters[i] = adapters[i], sb->weights[i] = weights[i];
    return PT_OK;
}

/* y (n, out) (+)= x W^T + bias, + for each adapter (scale x weight) (x A^T) B^T, as engine.c's linear */
static void sb_linear(const step_backend *sb, float *y, float *t, const float *x, const pt_weight *W, const float *bias, int n, int acc,
                      int layer, pt_lora_target target) {
    const pt_backend *cpu = pt_backend_cpu();
    cpu->matmul(y, x, W, bias, n, acc);
    for (int i = 0; i < sb->n_adapters; i++) {
        const pt_adapter *a = sb->adapters[i];
        const pt_lora_pair *p = pt_adapter_pair(a, layer, target);
        if (!p) continue;
        cpu->sgemm_nt(t, x, p->A, n, a->r, p->in, 0);
        const float s = a->scale * sb->weights[i];
        for (int64_t j = 0; j < (int64_t)n * a->r; j++) t[j] *= s;
        cpu->sgemm_nt(y, t, p->B, n, p->out, a->r, 1);
    }
}

static pt_status sb_step(void *dev, const pt_step *s, float *logits) {
    step_backend *sb = dev;
    const pt_model *m = sb->m;
    const pt_config *c = &m->cfg;
    const pt_backend *cpu = pt_backend_cpu();
    const int N = s->n_rows, D = c->dim, H = c->n_heads, KVH = c->n_kv_heads, hd = c->head_dim, Q = H * hd, KV = KVH * hd,
              F = c->ffn_dim, V = c->vocab_size, wide = Q > D ? Q : D;
    int r = 1;
    for (int i = 0; i < sb->n_adapters; i++) r = sb->adapters[i]->r > r ? sb->adapters[i]->r : r;
    float *x = malloc(sizeof(float) * N * D), *xb = malloc(sizeof(float) * N * wide), *q = malloc(sizeof(float) * N * Q),
          *k = malloc(sizeof(float) * N * KV), *v = malloc(sizeof(float) * N * KV), *hb = malloc(sizeof(float) * N * F),
          *hb2 = malloc(sizeof(float) * N * F), *t = malloc(sizeof(float) * N * r), *cs = malloc(sizeof(float) * N * hd / 2),
          *sn = malloc(sizeof(float) * N * hd / 2);
    sb->steps++;
    sb->rows += N;
    for (int row = 0; row < N; row++) {
        size_t rb = pt_dtype_nbytes(m->tok_emb.dtype, D);
        pt_dtype_to_f32(x + (size_t)row * D, (const uint8_t *)m->tok_emb.data + rb * s->ids[row], m->tok_emb.dtype, D);
    }
    cpu->rope_tables(cs, sn, s->pos, N, m->inv_freq, hd / 2);
    for (int l = 0; l < c->n_layers; l++) {
        const pt_layer *L = &m->layers[l];
        cpu->rmsnorm_forward(xb, NULL, x, L->attn_norm, N, D, c->norm_eps);
        sb_linear(sb, q, t, xb, &L->wq, L->bq, N, 0, l, PT_LT_Q);
        sb_linear(sb, k, t, xb, &L->wk, L->bk, N, 0, l, PT_LT_K);
        sb_linear(sb, v, t, xb, &L->wv, L->bv, N, 0, l, PT_LT_V);
        if (L->q_norm) {
            cpu->rmsnorm_forward(q, NULL, q, L->q_norm, N * H, hd, c->norm_eps);
            cpu->rmsnorm_forward(k, NULL, k, L->k_norm, N * KVH, hd, c->norm_eps);
        }
        cpu->rope_forward(q, cs, sn, N, H, hd);
        cpu->rope_forward(k, cs, sn, N, KVH, hd);
        for (int row = 0; row < N; row++) {
            size_t o = pt_cuda_kv_offset(c, sb->n_slots, sb->n_ctx, l, s->slot[row], s->pos[row]);
            memcpy(sb->kc + o, k + (size_t)row * KV, sizeof(float) * KV);
            memcpy(sb->vc + o, v + (size_t)row * KV, sizeof(float) * KV);
        }
        /* attention a run of rows of one slot at a time, each over its slot's cache */
        for (int row = 0; row < N;) {
            int end = row + 1;
            while (end < N && s->slot[end] == s->slot[row]) end++;
            size_t o = pt_cuda_kv_offset(c, sb->n_slots, sb->n_ctx, l, s->slot[row], 0);
            cpu->attention_forward(xb + (size_t)row * Q, q + (size_t)row * Q, sb->kc + o, sb->vc + o, s->pos + row, end - row, H, KVH, hd);
            row = end;
        }
        sb_linear(sb, x, t, xb, &L->wo, NULL, N, 1, l, PT_LT_O);
        cpu->rmsnorm_forward(xb, NULL, x, L->ffn_norm, N, D, c->norm_eps);
        sb_linear(sb, hb, t, xb, &L->w_gate, NULL, N, 0, l, PT_LT_GATE);
        sb_linear(sb, hb2, t, xb, &L->w_up, NULL, N, 0, l, PT_LT_UP);
        cpu->swiglu_forward(hb, hb, hb2, (int64_t)N * F);
        sb_linear(sb, x, t, hb, &L->w_down, NULL, N, 1, l, PT_LT_DOWN);
    }
    for (int i = 0; i < s->n_out; i++) memcpy(q + (size_t)i * D, x + (size_t)s->out_rows[i] * D, sizeof(float) * D); /* q: spare rows */
    cpu->rmsnorm_forward(xb, NULL, q, m->out_norm, s->n_out, D, c->norm_eps);
    if (s->n_out) sb_linear(sb, logits, t, xb, &m->output, NULL, s->n_out, 0, 0, PT_LT_HEAD);
    (void)V;
    free(x), free(xb), free(q), free(k), free(v), free(hb), free(hb2), free(t), free(cs), free(sn);
    pt_status st = cpu->take_error ? cpu->take_error() : PT_OK;
    return st;
}

static const pt_backend *step_table(void) {
    static pt_backend be;
    be = *pt_backend_cpu();
    be.name = "cpu-steps";
    be.engine_open = sb_open;
    be.engine_close = sb_close;
    be.engine_set_adapters = sb_set_adapters;
    be.forward_step = sb_step;
    return &be;
}

/* An engine made while `be` is current (which it keeps); the CPU is current again after. */
static pt_engine *engine_with(const pt_backend *be, const pt_model *m, int slots, int ctx) {
    pt_engine *e = NULL;
    pt_backend_set_current_for_test(be);
    pt_status st = pt_engine_new(&e, m, slots, ctx);
    pt_backend_select(PT_DEVICE_CPU);
    return st ? NULL : e;
}

static void close_to(const char *what, const float *got, const float *want, size_t n) {
    double mx = 0, worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) mx = fabs(want[i]) > mx ? fabs(want[i]) : mx;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= worst)) worst = d, at = i;
    }
    CHECK_MSG(worst <= STEP_TOL * mx, "%s: |got - want| = %.3g at %zu (got %.8g, want %.8g), max %.3g", what, worst, at, got[at], want[at], mx);
}

static void ids_for(int32_t *ids, int n, int vocab, unsigned seed) {
    for (int i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        ids[i] = 2 + (int32_t)((seed >> 8) % (unsigned)(vocab - 2));
    }
}

/* Runs the same batch on both engines and compares the logits they return. */
static void same_batch(pt_engine *a, pt_engine *b, const pt_batch *batch, pt_logits_mode mode, const char *what) {
    const float *la = NULL, *lb = NULL;
    CHECK_OK(pt_engine_forward(a, batch, mode, &la));
    float *copy = NULL;
    size_t rows = 0;
    for (int s = 0; s < batch->n_seq; s++) rows += mode == PT_LOGITS_ALL ? (size_t)batch->n_tokens[s] : 1;
    const size_t n = rows * pt_engine_model(a)->cfg.vocab_size;
    if (la) {
        copy = malloc(sizeof(float) * n);
        memcpy(copy, la, sizeof(float) * n);
    }
    CHECK_OK(pt_engine_forward(b, batch, mode, &lb));
    if (copy && lb) close_to(what, lb, copy, n);
    free(copy);
}

/* One prompt with every row's logits; one longer than the engine's prefill chunk (256) whose
 * last row only is asked for (the engine splits it into steps); then, after truncating the
 * slot, the prompt's tail again on top of its head. */
PT_TEST(test_backend_step_hooks_single_sequence) {
    pt_model *m = NULL;
    REQUIRE_OK(pt_model_load(&m, pt_test_shared("assets/models/stories260K/stories260K.gguf")));
    pt_engine *cpu = engine_with(pt_backend_cpu(), m, 1, 512), *hooked = engine_with(step_table(), m, 1, 512);
    REQUIRE(cpu && hooked);
    REQUIRE(the_state);
    int32_t ids[400];
    ids_for(ids, 400, m->cfg.vocab_size, 3);
    int slot = 0, n = 20;
    const int32_t *rows[1] = {ids};
    pt_batch b = {1, &slot, rows, &n};
    same_batch(cpu, hooked, &b, PT_LOGITS_ALL, "20 rows, all logits");
    CHECK(the_state->steps == 1 && the_state->rows == 20);
    CHECK_OK(pt_engine_truncate(cpu, 0, 0));
    CHECK_OK(pt_engine_truncate(hooked, 0, 0));
    n = 400;
    same_batch(cpu, hooked, &b, PT_LOGITS_LAST, "400 rows in chunks, last logits");
    CHECK_MSG(the_state->steps == 3, "%d steps for 20 + 400 rows (256 + 144)", the_state->steps);
    CHECK(pt_engine_slot_len(hooked, 0) == 400);
    CHECK_OK(pt_engine_truncate(cpu, 0, 150));
    CHECK_OK(pt_engine_truncate(hooked, 0, 150));
    rows[0] = ids + 150, n = 30;
    same_batch(cpu, hooked, &b, PT_LOGITS_ALL, "30 rows on a truncated slot");
    pt_engine_free(cpu);
    pt_engine_free(hooked);
    CHECK(the_state == NULL);
    pt_model_free(m);
}

/* Continuous batching: 4 sequences on slots 3, 0, 2, 1 with prompts of 5, 1, 9 and 3 tokens
 * in one step, then 10 decode steps of one row each at 4 different positions, with a fifth
 * sequence joining on a freed slot halfway; then the same with a LoRA adapter on every target
 * (B random, so it changes the logits), and removed again. */
PT_TEST(test_backend_step_hooks_batched_decode_and_adapter) {
    pt_model *m = NULL;
    REQUIRE_OK(pt_model_load(&m, pt_test_shared("assets/models/stories260K/stories260K.gguf")));
    const int V = m->cfg.vocab_size;
    pt_adapter *a = NULL;
    unsigned all = 0;
    REQUIRE_OK(pt_lora_parse_targets("all", &all));
    REQUIRE_OK(pt_adapter_new(&a, m, 4, 8.0f, all, false, 0.0f, 7));
    unsigned seed = 99;
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int t = 0; t < PT_LT_COUNT; t++) {
            const pt_lora_pair *p = pt_adapter_pair(a, l, (pt_lora_target)t);
            if (!p) continue;
            for (int64_t i = 0; i < (int64_t)p->out * a->r; i++) {
                seed = seed * 1103515245u + 12345u;
                p->B[i] = 0.1f * ((int)((seed >> 8) % 2001) - 1000) / 1000.0f;
            }
        }
    for (int pass = 0; pass < 3; pass++) {
        pt_engine *cpu = engine_with(pt_backend_cpu(), m, 4, 64), *hooked = engine_with(step_table(), m, 4, 64);
        REQUIRE(cpu && hooked);
        const pt_adapter *use = pass == 1 ? a : NULL;
        pt_engine_set_adapter(cpu, use);
        pt_engine_set_adapter(hooked, use);
        CHECK(the_state->n_adapters == (use ? 1 : 0));
        int32_t prompts[4][9], next[4];
        const int lens[4] = {5, 1, 9, 3};
        int slots[4] = {3, 0, 2, 1}, nt[4];
        const int32_t *rows[4];
        for (int s = 0; s < 4; s++) ids_for(prompts[s], lens[s], V, 10 + s), rows[s] = prompts[s], nt[s] = lens[s];
        pt_batch b = {4, slots, rows, nt};
        char what[96];
        snprintf(what, sizeof what, "pass %d: prefill of 4 prompts", pass);
        same_batch(cpu, hooked, &b, PT_LOGITS_LAST, what);
        for (int g = 0; g < 10; g++) {
            for (int s = 0; s < 4; s++) next[s] = (int32_t)(2 + (g * 37 + s * 11) % (V - 2)), rows[s] = &next[s], nt[s] = 1;
            if (g == 5) { /* the sequence on slot 2 ends; a new one starts there with a 4-token prompt */
                CHECK_OK(pt_engine_truncate(cpu, 2, 0));
                CHECK_OK(pt_engine_truncate(hooked, 2, 0));
                rows[2] = prompts[2] + 5, nt[2] = 4;
            }
            snprintf(what, sizeof what, "pass %d: decode step %d", pass, g);
            same_batch(cpu, hooked, &b, PT_LOGITS_LAST, what);
        }
        CHECK(pt_engine_slot_len(hooked, 3) == 15 && pt_engine_slot_len(hooked, 2) == 8);
        pt_engine_free(cpu);
        pt_engine_free(hooked);
    }
    pt_adapter_free(a);
    pt_model_free(m);
}
