/* Autoregressive generation: prefill the prompt, then sample one token at a time from the
 * cached state, streaming text that can no longer change (whole characters, never the start
 * of a stop string) to a callback. */
#include "engine/generate.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokenizer/tokenizer.h"
#include "util/clock.h"

pt_gen_params pt_gen_params_default(void) {
    pt_gen_params p = {0};
    p.sampling = pt_sampling_default();
    p.max_new_tokens = 256;
    return p;
}

/* Bytes at the end of `s` that may still change: an unfinished UTF-8 sequence or a
 * replacement character standing in for one. */
static size_t unstable_utf8_tail(const char *s, size_t n) {
    if (n >= 3 && !memcmp(s + n - 3, "\xEF\xBF\xBD", 3)) return 3;
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        unsigned char c = (unsigned char)s[n - k];
        if ((c & 0xC0) == 0x80) continue;           /* continuation byte: look further back */
        int need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        return need > (int)k ? k : 0;
    }
    return 0;
}

/* Length of the longest suffix of text that is a proper prefix of a stop string. */
static size_t stop_prefix_tail(const char *s, size_t n, const pt_gen_params *p) {
    size_t best = 0;
    for (int i = 0; i < p->n_stop_strings; i++) {
        size_t L = strlen(p->stop_strings[i]);
        for (size_t k = L > 1 ? L - 1 : 0; k > best; k--)
            if (k <= n && !memcmp(s + n - k, p->stop_strings[i], k)) { best = k; break; }
    }
    return best;
}

pt_status pt_generate(pt_engine *e, int slot, const int32_t *prompt, int n_prompt, const pt_gen_params *p,
                      pt_text_callback cb, void *user, pt_gen_result *out) {
    memset(out, 0, sizeof *out);
    const pt_model *m = pt_engine_model(e);
    const int V = m->cfg.vocab_size;
    if (n_prompt < 1) return pt_error(PT_ERR_ARG, "generate: the prompt is empty");
    PT_TRY(pt_engine_truncate(e, slot, 0));
    int room = pt_engine_n_ctx(e) - n_prompt;
    if (room < 0) return pt_error(PT_ERR_ARG, "generate: the prompt has %d tokens, more than the context of %d", n_prompt, pt_engine_n_ctx(e));
    int max_new = p->max_new_tokens < room ? p->max_new_tokens : room;
    out->ids = malloc(sizeof(int32_t) * (max_new > 0 ? max_new : 1));
    float *work = malloc(sizeof(float) * 2 * (size_t)V);
    if (!out->ids || !work) { free(work); return pt_error(PT_ERR_OOM, "out of memory"); }
    out->n_prompt = n_prompt;
    pt_rng rng;
    pt_rng_seed(&rng, p->sampling.seed);
    double t0 = pt_now_s();
    const float *logits;
    pt_status rc = pt_engine_forward_one(e, slot, prompt, n_prompt, PT_LOGITS_LAST, &logits);
    out->prefill_s = pt_now_s() - t0;
    t0 = pt_now_s();
    size_t emitted = 0; /* bytes of text already passed to cb */
    out->stop_reason = max_new < p->max_new_tokens ? "context" : "length";
    while (!rc && out->n_ids < max_new) {
        int32_t tok = pt_sample(logits, V, &p->sampling, &rng, work);
        int is_stop = 0;
        for (int i = 0; i < p->n_stop_ids; i++) is_stop |= tok == p->stop_ids[i];
        if (is_stop) { out->stop_reason = "eos"; break; }
        out->ids[out->n_ids++] = tok;
        if (m->tok) {
            free(out->text);
            out->text = NULL;
            rc = pt_tokenizer_decode_n(m->tok, out->ids, out->n_ids, true, &out->text, &out->text_len);
            if (rc) break;
            size_t n = out->text_len, final = n;
            const char *hit = NULL;
            for (int i = 0; i < p->n_stop_strings; i++) {
                size_t from = emitted > 64 ? emitted - 64 : 0;
                const char *h = memmem(out->text + from, n - from, p->stop_strings[i], strlen(p->stop_strings[i]));
                if (h && (!hit || h < hit)) hit = h;
            }
            if (hit) final = (size_t)(hit - out->text);
            else final -= unstable_utf8_tail(out->text, n) > stop_prefix_tail(out->text, n, p) ? unstable_utf8_tail(out->text, n)
                                                                                                 : stop_prefix_tail(out->text, n, p);
            if (final > emitted && cb && !cb(user, out->text + emitted, final - emitted)) { out->stop_reason = "callback"; emitted = final; break; }
            if (final > emitted) emitted = final;
            if (hit) { out->text[final] = 0; out->text_len = final; out->stop_reason = "stop_string"; break; }
        }
        if (out->n_ids == max_new) break;
        rc = pt_engine_forward_one(e, slot, &tok, 1, PT_LOGITS_LAST, &logits);
    }
    if (!rc && out->text && cb && out->text_len > emitted) cb(user, out->text + emitted, out->text_len - emitted);
    out->decode_s = pt_now_s() - t0;
    free(work);
    if (rc) pt_gen_result_free(out);
    return rc;
}

void pt_gen_result_free(pt_gen_result *r) {
    free(r->ids);
    free(r->text);
    r->ids = NULL;
    r->text = NULL;
}
