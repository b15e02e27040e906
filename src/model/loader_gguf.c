/* GGUF checkpoints: configuration and tokenizer from the metadata, weights from the tensor
 * section (Llama-3.1 frequency divisors from rope_freqs.weight when present). */
#include <stdio.h>
#include <string.h>

#include "model/arch.h"

static const pt_tensor_view *find_gguf(void *user, const char *name) { return pt_gguf_find_tensor(user, name); }

pt_status pt_model_load_gguf(pt_model *m, const char *path) {
    struct pt_model_storage *s = m->storage;
    PT_TRY(pt_gguf_open(&s->gguf, path));
    s->has_gguf = true;
    m->from_gguf = true;
    const pt_gguf *g = &s->gguf;
    PT_TRY(pt_config_from_gguf(&m->cfg, g));
    /* Everything is checked before a tensor is touched: the Q/K permutation and the layer
     * table trust these sizes. Files that omit vocab_size take it from the embedding. */
    const pt_tensor_view *emb = pt_gguf_find_tensor(g, "token_embd.weight");
    const pt_gguf_kv *arch = pt_gguf_find(g, "general.architecture");
    char key[160];
    snprintf(key, sizeof key, "%.*s.vocab_size", (int)(arch->v.s.len < 100 ? arch->v.s.len : 100), arch->v.s.ptr);
    if (!pt_gguf_find(g, key) && emb && emb->n_dims == 2 && emb->shape[0] <= PT_CONFIG_MAX_WIDTH)
        m->cfg.vocab_size = (int)emb->shape[0];
    PT_TRY(pt_config_validate(&m->cfg, path));
    int n_unused = 0;
    PT_TRY(pt_arch_check_tensors(m, g->tensors, (int)g->n_tensors, path, true, &n_unused));
    PT_TRY(pt_arch_bind_weights(m, find_gguf, (void *)g, path, true));
    if (pt_gguf_find(g, "tokenizer.ggml.model")) PT_TRY(pt_tokenizer_load_gguf(&m->tok, g));
    if (m->tok && pt_tokenizer_vocab_size(m->tok) > m->cfg.vocab_size)
        return pt_error(PT_ERR_FORMAT, "%s: tokenizer has %d tokens but the embedding%s only %d rows", path,
                        pt_tokenizer_vocab_size(m->tok), m->cfg.tied_embeddings ? " 'token_embd.weight' (tied: also the output)" : "",
                        m->cfg.vocab_size);
    PT_TRY(pt_gguf_get_string(g, "tokenizer.chat_template", &m->chat_source, false));
    if (m->chat_source) m->chat = pt_chat_template_detect(m->chat_source);
    return PT_OK;
}
