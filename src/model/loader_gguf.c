/* GGUF checkpoints: configuration and tokenizer from the metadata, weights from the tensor
 * section (Llama-3.1 frequency divisors from rope_freqs.weight when present). */
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
    PT_TRY(pt_arch_bind_weights(m, find_gguf, (void *)g, path, true));
    PT_TRY(pt_config_validate(&m->cfg, path));
    if (pt_gguf_find(g, "tokenizer.ggml.model")) PT_TRY(pt_tokenizer_load_gguf(&m->tok, g));
    if (m->tok && pt_tokenizer_vocab_size(m->tok) > m->cfg.vocab_size)
        return pt_error(PT_ERR_FORMAT, "%s: tokenizer has %d tokens but the embedding%s only %d rows", path,
                        pt_tokenizer_vocab_size(m->tok), m->cfg.tied_embeddings ? " 'token_embd.weight' (tied: also the output)" : "",
                        m->cfg.vocab_size);
    PT_TRY(pt_gguf_get_string(g, "tokenizer.chat_template", &m->chat_source, false));
    if (m->chat_source) m->chat = pt_chat_template_detect(m->chat_source);
    return PT_OK;
}
