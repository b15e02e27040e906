/* Encoding: the pipeline that ties the stages together. Validate UTF-8 (the error names the
 * byte offset), cut the raw text at added tokens, and for every stretch between them run the
 * normaliser, the pre-tokeniser and the model; then add the post-processor's ids when asked.
 * Buffers are reused across the stretches of one call; nothing is cached between calls, so
 * a tokenizer can encode from several threads at once. */
#include "tokenizer/tokenizer_impl.h"
#include "util/utf8.h"

#include <stdlib.h>

typedef struct {
    tk_buf norm, pre;
    tk_pieces pieces;
    tk_scratch sc;
} work;

static void work_free(work *w) {
    pt_tokenizer_buf_free(&w->norm);
    pt_tokenizer_buf_free(&w->pre);
    free(w->pieces.v);
    pt_tokenizer_scratch_free(&w->sc);
}

static pt_status encode_text(const pt_tokenizer *t, const char *s, size_t n, bool at_start, work *w, tk_ivec *out) {
    if (t->n_norm) {
        PT_TRY(pt_tokenizer_normalize(t, s, n, &w->norm));
        s = w->norm.v;
        n = w->norm.n;
    }
    if (n == 0) return PT_OK;
    PT_TRY(pt_tokenizer_pretokenize(t, s, n, at_start, &w->pre, &w->pieces));
    for (size_t i = 0; i < w->pieces.n; i++) {
        const tk_piece *p = &w->pieces.v[i];
        const char *ws = w->pre.v + p->off;
        PT_TRY(t->model == TK_MODEL_SPM_SCORES ? pt_tokenizer_spm_word(t, ws, p->len, &w->sc, out)
                                               : pt_tokenizer_bpe_word(t, ws, p->len, &w->sc, out));
    }
    return PT_OK;
}

pt_status pt_tokenizer_encode(const pt_tokenizer *t, const char *text, size_t len, bool add_special, int32_t **ids,
                              size_t *n_ids) {
    return pt_tokenizer_encode_ex(t, text, len, add_special, true, ids, n_ids);
}

pt_status pt_tokenizer_encode_ex(const pt_tokenizer *t, const char *text, size_t len, bool add_special,
                                 bool parse_special, int32_t **ids, size_t *n_ids) {
    *ids = NULL;
    *n_ids = 0;
    if (!text && len) return pt_error(PT_ERR_ARG, "tokenizer encode: NULL text of length %zu", len);
    long bad = len ? pt_utf8_invalid_at(text, len) : -1;
    if (bad >= 0)
        return pt_error(PT_ERR_ARG, "tokenizer encode: invalid UTF-8 at byte offset %ld (byte 0x%02X)", bad,
                        (unsigned)(uint8_t)text[bad]);
    tk_seg *segs = NULL;
    size_t nseg = 0;
    tk_ivec out = {0};
    work w = {0};
    pt_status st = PT_OK;
    if (len) st = pt_tokenizer_split_added(t, text, len, parse_special, &segs, &nseg);
    if (!st) st = pt_tokenizer_ivec_push(&out, 0), out.n = 0; /* never hand back NULL */
    for (int i = 0; !st && add_special && i < t->n_prefix; i++) st = pt_tokenizer_ivec_push(&out, t->prefix[i]);
    for (size_t i = 0; !st && i < nseg; i++) {
        if (segs[i].id >= 0) st = pt_tokenizer_ivec_push(&out, segs[i].id);
        else st = encode_text(t, text + segs[i].start, segs[i].end - segs[i].start, segs[i].start == 0, &w, &out);
    }
    for (int i = 0; !st && add_special && i < t->n_suffix; i++) st = pt_tokenizer_ivec_push(&out, t->suffix[i]);
    free(segs);
    work_free(&w);
    if (st) {
        free(out.v);
        return st;
    }
    *ids = out.v;
    *n_ids = out.n;
    return PT_OK;
}
