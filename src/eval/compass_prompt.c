/* Turning a compass prompt into tokens for a given model: the chat template choice
 * (requested, else the checkpoint's own, else the paper's alpaca template), rendering with
 * the generation prompt, and encoding with BOS handled the way the template expects. */
#include <stdlib.h>
#include <string.h>

#include "eval/compass_impl.h"
#include "tokenizer/chat.h"
#include "tokenizer/tokenizer.h"

pt_chat_template pt_eval_chat_for(const pt_model *m, pt_chat_template requested) {
    if (requested != PT_CHAT_NONE) return requested;
    if (m->chat != PT_CHAT_NONE) return m->chat;
    return PT_CHAT_ALPACA;
}

pt_status pt_eval_encode_chat(const pt_model *m, pt_chat_template chat, const char *system, const char *user,
                              const char *continuation, int32_t **ids, size_t *n) {
    *ids = NULL;
    *n = 0;
    if (!m->tok) return pt_error(PT_ERR_ARG, "%s: the checkpoint has no tokenizer; the compass needs one", m->path);
    pt_chat_msg msgs[2];
    int k = 0;
    if (system && *system) msgs[k++] = (pt_chat_msg){"system", system};
    msgs[k++] = (pt_chat_msg){"user", user};
    int32_t bos = pt_tokenizer_bos(m->tok);
    const char *bos_text = bos >= 0 ? pt_tokenizer_token_text(m->tok, bos) : NULL;
    char *text = NULL;
    PT_TRY(pt_chat_render(chat, msgs, k, true, chat == PT_CHAT_ALPACA ? NULL : bos_text, &text));
    if (continuation && *continuation) {
        size_t a = strlen(text), b = strlen(continuation);
        char *t2 = realloc(text, a + b + 1);
        if (!t2) { free(text); return pt_error(PT_ERR_OOM, "out of memory"); }
        memcpy(t2 + a, continuation, b + 1);
        text = t2;
    }
    pt_status st = pt_tokenizer_encode(m->tok, text, strlen(text), chat == PT_CHAT_ALPACA, ids, n);
    free(text);
    return st;
}

uint64_t pt_eval_seed(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
    uint64_t h = seed ^ 0x9E3779B97F4A7C15ull;
    uint64_t in[3] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        h ^= in[i] + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
        h ^= h >> 30;
        h *= 0xBF58476D1CE4E5B9ull;
        h ^= h >> 27;
        h *= 0x94D049BB133111EBull;
        h ^= h >> 31;
    }
    return h;
}

pt_status pt_eval_engine(pt_engine **e, const pt_model *m, const pt_adapter *a, const pt_compass_config *cfg, int slots, int n_ctx) {
    int cap = m->cfg.max_ctx > 0 ? m->cfg.max_ctx : 4096;
    if (n_ctx <= 0 || n_ctx > cap) n_ctx = cap;
    if (cfg->n_adapters > 0 && a) return pt_error(PT_ERR_ARG, "the compass takes one adapter or a list of them, not both");
    PT_TRY(pt_engine_new(e, m, slots, n_ctx));
    pt_status st = PT_OK;
    if (cfg->n_adapters <= 0) pt_engine_set_adapter(*e, a);
    else st = pt_engine_set_adapters(*e, cfg->adapters, cfg->adapter_scales, cfg->n_adapters);
    if (!st && cfg->steer) st = pt_engine_set_steer(*e, cfg->steer, cfg->steer_scale, cfg->steer_layers);
    if (st) { pt_engine_free(*e); *e = NULL; }
    return st;
}
