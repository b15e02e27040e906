/* Weight names of the Llama family (llama, mistral, qwen2, qwen3) in both naming schemes. */
#include <stdio.h>
#include <string.h>

#include "model/arch.h"

typedef enum { W_ATTN_NORM, W_Q, W_K, W_V, W_O, W_FFN_NORM, W_GATE, W_UP, W_DOWN, W_BQ, W_BK, W_BV, W_QN, W_KN, W_COUNT } slot;

static const struct { const char *hf, *gguf; } layer_names[W_COUNT] = {
    [W_ATTN_NORM] = {"input_layernorm.weight", "attn_norm.weight"},
    [W_Q] = {"self_attn.q_proj.weight", "attn_q.weight"},
    [W_K] = {"self_attn.k_proj.weight", "attn_k.weight"},
    [W_V] = {"self_attn.v_proj.weight", "attn_v.weight"},
    [W_O] = {"self_attn.o_proj.weight", "attn_output.weight"},
    [W_FFN_NORM] = {"post_attention_layernorm.weight", "ffn_norm.weight"},
    [W_GATE] = {"mlp.gate_proj.weight", "ffn_gate.weight"},
    [W_UP] = {"mlp.up_proj.weight", "ffn_up.weight"},
    [W_DOWN] = {"mlp.down_proj.weight", "ffn_down.weight"},
    [W_BQ] = {"self_attn.q_proj.bias", "attn_q.bias"},
    [W_BK] = {"self_attn.k_proj.bias", "attn_k.bias"},
    [W_BV] = {"self_attn.v_proj.bias", "attn_v.bias"},
    [W_QN] = {"self_attn.q_norm.weight", "attn_q_norm.weight"},
    [W_KN] = {"self_attn.k_norm.weight", "attn_k_norm.weight"},
};

static const struct { const char *hf, *gguf; } global_names[] = {
    {"model.embed_tokens.weight", "token_embd.weight"},
    {"model.norm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"},
};

int pt_arch_hf_to_gguf(const char *hf, char *out, size_t n) {
    for (size_t i = 0; i < sizeof global_names / sizeof global_names[0]; i++)
        if (!strcmp(hf, global_names[i].hf)) return snprintf(out, n, "%s", global_names[i].gguf), 1;
    int layer, off = 0;
    if (sscanf(hf, "model.layers.%d.%n", &layer, &off) == 1 && off > 0)
        for (int s = 0; s < W_COUNT; s++)
            if (!strcmp(hf + off, layer_names[s].hf)) return snprintf(out, n, "blk.%d.%s", layer, layer_names[s].gguf), 1;
    return 0;
}

pt_status pt_arch_check_tensors(const pt_model *m, const pt_tensor_view *tensors, int n, const char *label, bool gguf,
                                 int *n_unused) {
    const pt_config *c = &m->cfg;
    char unused[512] = "";
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        const char *name = tensors[i].name;
        int layer = -1, off = 0, known = 0;
        if (gguf ? sscanf(name, "blk.%d.%n", &layer, &off) == 1 : sscanf(name, "model.layers.%d.%n", &layer, &off) == 1) {
            if (off > 0 && layer >= c->n_layers)
                return pt_error(PT_ERR_FORMAT, "%s: tensor '%s' belongs to layer %d, but the configuration has %d layers", label, name,
                                layer, c->n_layers);
            for (int s = 0; s < W_COUNT && off > 0; s++)
                known |= !strcmp(name + off, gguf ? layer_names[s].gguf : layer_names[s].hf) && (s < W_BQ || c->qkv_bias);
        } else {
            for (size_t g = 0; g < sizeof global_names / sizeof global_names[0]; g++)
                known |= !strcmp(name, gguf ? global_names[g].gguf : global_names[g].hf);
            known |= gguf && !strcmp(name, "rope_freqs.weight");
        }
        if (!known) {
            ++*n_unused;
            if (len < sizeof unused - 1) len += (size_t)snprintf(unused + len, sizeof unused - len, "%s'%s'", len ? ", " : "", name);
        }
    }
    if (len) pt_warn("%s: ignoring tensors politune does not use: %s%s", label, unused, len >= sizeof unused - 1 ? "..." : "");
    return PT_OK;
}

static pt_status find_req(const pt_tensor_view **t, pt_tensor_finder find, void *user, const char *label, const char *name) {
    *t = find(user, name);
    if (!*t) return pt_error(PT_ERR_FORMAT, "%s: missing tensor '%s'", label, name);
    return PT_OK;
}

pt_status pt_arch_bind_weights(pt_model *m, pt_tensor_finder find, void *user, const char *label, bool gguf) {
    const pt_config *c = &m->cfg;
    int D = c->dim, Q = c->n_heads * c->head_dim, KV = c->n_kv_heads * c->head_dim, F = c->ffn_dim, V = c->vocab_size;
    const pt_tensor_view *t;
    char name[256];
    int gi = gguf ? 1 : 0;
#define GNAME(i) (gi ? global_names[i].gguf : global_names[i].hf)
    PT_TRY(find_req(&t, find, user, label, GNAME(0)));
    if (V <= 0 && t->n_dims == 2) m->cfg.vocab_size = V = (int)t->shape[0]; /* GGUF files may omit vocab_size */
    /* A tied embedding doubles as the output projection: a row count that disagrees with the
     * vocabulary would make every logit past it read another tensor's bytes. */
    if ((c->tied_embeddings || gguf) && !find(user, GNAME(2)) && t->n_dims == 2 && t->shape[0] != V)
        return pt_error(PT_ERR_FORMAT, "%s: tied embeddings: tensor '%s' has %lld rows but the vocabulary (%s) has %d tokens",
                        label, t->name, (long long)t->shape[0], gguf ? "vocab_size" : "config vocab_size", V);
    PT_TRY(pt_model_weight(m, &m->tok_emb, t, label, V, D, 0));
    PT_TRY(find_req(&t, find, user, label, GNAME(1)));
    PT_TRY(pt_model_vector(m, &m->out_norm, t, label, D));
    t = find(user, GNAME(2));
    if (t && !c->tied_embeddings) PT_TRY(pt_model_weight(m, &m->output, t, label, V, D, 0));
    else if (!t && !c->tied_embeddings && !gguf)
        return pt_error(PT_ERR_FORMAT, "%s: missing tensor '%s' (config says tie_word_embeddings is false)", label, GNAME(2));
    else {
        m->cfg.tied_embeddings = true; /* GGUF marks tying by omitting output.weight */
        m->output = m->tok_emb;
    }
#undef GNAME
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    if (!m->layers) return pt_error(PT_ERR_OOM, "out of memory");
    /* GGUF llama files store Q/K in Meta's interleaved rotary order; qwen2/qwen3 files do not. */
    bool qwen = c->arch == PT_ARCH_QWEN2 || c->arch == PT_ARCH_QWEN3;
    int perm = gguf && !qwen ? c->head_dim : 0;
    for (int l = 0; l < c->n_layers; l++) {
        pt_layer *L = &m->layers[l];
        const pt_tensor_view *w[W_COUNT] = {0};
        for (int s = 0; s < W_COUNT; s++) {
            if (gguf) snprintf(name, sizeof name, "blk.%d.%s", l, layer_names[s].gguf);
            else snprintf(name, sizeof name, "model.layers.%d.%s", l, layer_names[s].hf);
            bool is_bias = s >= W_BQ && s <= W_BV, is_qk_norm = s == W_QN || s == W_KN;
            if (is_bias && !c->qkv_bias) continue;
            if (is_qk_norm && c->arch != PT_ARCH_QWEN3) continue;
            PT_TRY(find_req(&w[s], find, user, label, name));
        }
        PT_TRY(pt_model_vector(m, &L->attn_norm, w[W_ATTN_NORM], label, D));
        PT_TRY(pt_model_vector(m, &L->ffn_norm, w[W_FFN_NORM], label, D));
        PT_TRY(pt_model_weight(m, &L->wq, w[W_Q], label, Q, D, perm));
        PT_TRY(pt_model_weight(m, &L->wk, w[W_K], label, KV, D, perm));
        PT_TRY(pt_model_weight(m, &L->wv, w[W_V], label, KV, D, 0));
        PT_TRY(pt_model_weight(m, &L->wo, w[W_O], label, D, Q, 0));
        PT_TRY(pt_model_weight(m, &L->w_gate, w[W_GATE], label, F, D, 0));
        PT_TRY(pt_model_weight(m, &L->w_up, w[W_UP], label, F, D, 0));
        PT_TRY(pt_model_weight(m, &L->w_down, w[W_DOWN], label, D, F, 0));
        if (c->arch == PT_ARCH_QWEN3) {
            PT_TRY(pt_model_vector(m, &L->q_norm, w[W_QN], label, c->head_dim));
            PT_TRY(pt_model_vector(m, &L->k_norm, w[W_KN], label, c->head_dim));
        }
        if (c->qkv_bias) {
            /* biases follow their rows: permute them like the weights */
            pt_weight b;
            PT_TRY(pt_model_weight(m, &b, w[W_BQ], label, Q, 0, perm));
            L->bq = b.data;
            PT_TRY(pt_model_weight(m, &b, w[W_BK], label, KV, 0, perm));
            L->bk = b.data;
            PT_TRY(pt_model_vector(m, &L->bv, w[W_BV], label, KV));
        }
    }
    return PT_OK;
}
