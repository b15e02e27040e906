/* Decoding: ids -> token strings -> the decoder chain -> one UTF-8 string. As in Hugging
 * Face's Rust core, every kept token (special ones too) goes through the decoder chain, each
 * step maps a list of strings to a list of strings (ByteLevel and Fuse collapse it to one),
 * and the pieces are concatenated; without a decoder the tokens are joined with spaces.
 * Decoders: ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace. transformers'
 * clean_up_tokenization_spaces is a Python-side step the Rust core (and the fixtures) do not
 * apply, so neither does this.
 *
 * GGUF SentencePiece vocabularies decode like llama2.c: "▁" becomes a space, <0xXX> tokens
 * become bytes, and only the space of the dummy prefix right after BOS is dropped; ids that
 * do not start with BOS keep their leading space (the stories260K fixture's greedy_text). */
#include "tokenizer/tokenizer_impl.h"
#include "util/utf8.h"

#include <stdlib.h>
#include <string.h>

typedef struct { tk_buf *v; size_t n, cap; } strlist;

static void list_free(strlist *l) {
    for (size_t i = 0; i < l->n; i++) pt_tokenizer_buf_free(&l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static pt_status list_add(strlist *l, const char *s, size_t n) {
    if (l->n == l->cap) {
        size_t c = l->cap ? l->cap * 2 : 16;
        tk_buf *v = realloc(l->v, c * sizeof *v);
        if (!v) return pt_error(PT_ERR_OOM, "tokenizer decode: out of memory");
        l->v = v;
        l->cap = c;
    }
    l->v[l->n] = (tk_buf){0};
    pt_status st = pt_tokenizer_buf_put(&l->v[l->n], s, n);
    if (st) return st;
    l->n++;
    return PT_OK;
}

static pt_status dec_bytelevel(const strlist *in, strlist *out) {
    tk_buf raw = {0}, fixed = {0};
    pt_status st = pt_tokenizer_buf_put(&raw, "", 0);
    for (size_t i = 0; !st && i < in->n; i++) {
        const tk_buf *tk = &in->v[i];
        /* A token whose characters are not all in the byte alphabet (an added token such as
         * "<|im_start|>" is, one with a space is not) contributes its own bytes. */
        size_t start = raw.n, k = 0;
        bool all = true;
        while (!st && k < tk->n) {
            int len;
            int b = pt_tokenizer_cp_to_byte(pt_utf8_decode(tk->v + k, tk->n - k, &len));
            if (b < 0) { all = false; break; }
            char c = (char)b;
            st = pt_tokenizer_buf_put(&raw, &c, 1);
            k += (size_t)len;
        }
        if (!st && !all) {
            raw.n = start;
            st = pt_tokenizer_buf_put(&raw, tk->v, tk->n);
        }
    }
    if (!st) st = pt_tokenizer_utf8_lossy(&fixed, raw.v, raw.n);
    if (!st) st = list_add(out, fixed.v ? fixed.v : "", fixed.n);
    pt_tokenizer_buf_free(&raw);
    pt_tokenizer_buf_free(&fixed);
    return st;
}

static pt_status dec_replace(const tk_dec *d, const strlist *in, strlist *out) {
    tk_buf b = {0};
    pt_status st = PT_OK;
    for (size_t i = 0; !st && i < in->n; i++) {
        const tk_buf *tk = &in->v[i];
        size_t k = 0, run = 0;
        b.n = 0;
        st = pt_tokenizer_buf_put(&b, "", 0);
        while (!st && d->alen && k + d->alen <= tk->n) {
            if (memcmp(tk->v + k, d->a, d->alen) == 0) {
                st = pt_tokenizer_buf_put(&b, tk->v + run, k - run);
                if (!st) st = pt_tokenizer_buf_put(&b, d->b, d->blen);
                k += d->alen;
                run = k;
            } else {
                k++;
            }
        }
        if (!st) st = pt_tokenizer_buf_put(&b, tk->v + run, tk->n - run);
        if (!st) st = list_add(out, b.v, b.n);
    }
    pt_tokenizer_buf_free(&b);
    return st;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static pt_status flush_bytes(tk_buf *pend, strlist *out) {
    if (pend->n == 0) return PT_OK;
    pt_status st;
    if (pt_utf8_invalid_at(pend->v, pend->n) < 0) {
        st = list_add(out, pend->v, pend->n);
    } else {
        /* Hugging Face: one U+FFFD per byte token when the run is not valid UTF-8 */
        st = PT_OK;
        for (size_t i = 0; !st && i < pend->n; i++) st = list_add(out, "\xEF\xBF\xBD", 3);
    }
    pend->n = 0;
    return st;
}

static pt_status dec_bytefallback(const strlist *in, strlist *out) {
    tk_buf pend = {0};
    pt_status st = PT_OK;
    for (size_t i = 0; !st && i < in->n; i++) {
        const tk_buf *tk = &in->v[i];
        int hi, lo;
        if (tk->n == 6 && memcmp(tk->v, "<0x", 3) == 0 && tk->v[5] == '>' && (hi = hexval(tk->v[3])) >= 0 &&
            (lo = hexval(tk->v[4])) >= 0) {
            char c = (char)(hi * 16 + lo);
            st = pt_tokenizer_buf_put(&pend, &c, 1);
            continue;
        }
        st = flush_bytes(&pend, out);
        if (!st) st = list_add(out, tk->v, tk->n);
    }
    if (!st) st = flush_bytes(&pend, out);
    pt_tokenizer_buf_free(&pend);
    return st;
}

static pt_status dec_fuse(const strlist *in, strlist *out) {
    tk_buf b = {0};
    pt_status st = pt_tokenizer_buf_put(&b, "", 0);
    for (size_t i = 0; !st && i < in->n; i++) st = pt_tokenizer_buf_put(&b, in->v[i].v, in->v[i].n);
    if (!st) st = list_add(out, b.v, b.n);
    pt_tokenizer_buf_free(&b);
    return st;
}

static pt_status dec_strip(const tk_dec *d, const strlist *in, strlist *out) {
    char enc[4];
    size_t cl = (size_t)pt_utf8_encode(d->ch, enc);
    pt_status st = PT_OK;
    for (size_t i = 0; !st && i < in->n; i++) {
        const char *s = in->v[i].v;
        size_t a = 0, b = in->v[i].n;
        for (int k = 0; k < d->start && b - a >= cl && memcmp(s + a, enc, cl) == 0; k++) a += cl;
        for (int k = 0; k < d->stop && b - a >= cl && memcmp(s + b - cl, enc, cl) == 0; k++) b -= cl;
        st = list_add(out, s + a, b - a);
    }
    return st;
}

static pt_status dec_metaspace(const tk_dec *d, const strlist *in, strlist *out) {
    char enc[4];
    size_t cl = (size_t)pt_utf8_encode(d->ch, enc);
    tk_buf b = {0};
    pt_status st = PT_OK;
    for (size_t i = 0; !st && i < in->n; i++) {
        const tk_buf *tk = &in->v[i];
        b.n = 0;
        st = pt_tokenizer_buf_put(&b, "", 0);
        /* Hugging Face drops every replacement character of the first token (not just a
         * leading one) unless the prepend scheme is "never". */
        bool drop = i == 0 && d->prepend_scheme != TK_PREPEND_NEVER;
        for (size_t k = 0; !st && k < tk->n;) {
            if (tk->n - k >= cl && memcmp(tk->v + k, enc, cl) == 0) {
                if (!drop) st = pt_tokenizer_buf_put(&b, " ", 1);
                k += cl;
            } else {
                st = pt_tokenizer_buf_put(&b, tk->v + k, 1);
                k++;
            }
        }
        if (!st) st = list_add(out, b.v, b.n);
    }
    pt_tokenizer_buf_free(&b);
    return st;
}

pt_status pt_tokenizer_decode(const pt_tokenizer *t, const int32_t *ids, size_t n, bool skip_special, char **out) {
    size_t len;
    return pt_tokenizer_decode_n(t, ids, n, skip_special, out, &len);
}

pt_status pt_tokenizer_decode_n(const pt_tokenizer *t, const int32_t *ids, size_t n, bool skip_special, char **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    strlist a = {0}, b = {0};
    pt_status st = PT_OK;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->n_vocab) {
            list_free(&a);
            return pt_error(PT_ERR_ARG, "tokenizer decode: id %d at position %zu is outside the vocabulary (size %d)",
                            id, i, t->n_vocab);
        }
        size_t len;
        const char *s = pt_tokenizer_text(t, id, &len);
        if (!s) continue; /* an id the vocabulary leaves unassigned decodes to nothing */
        if (skip_special && (t->attr[id] & TK_ATTR_SPECIAL)) continue;
        if (t->strip_after_bos && i > 0 && ids[i - 1] == t->bos && len >= 3 && memcmp(s, "\xE2\x96\x81", 3) == 0) {
            s += 3;
            len -= 3;
        }
        if ((st = list_add(&a, s, len))) break;
    }
    for (int k = 0; !st && t->has_decoder && k < t->n_dec; k++) {
        const tk_dec *d = &t->dec[k];
        switch (d->type) {
        case TK_DEC_BYTELEVEL: st = dec_bytelevel(&a, &b); break;
        case TK_DEC_REPLACE: st = dec_replace(d, &a, &b); break;
        case TK_DEC_BYTEFALLBACK: st = dec_bytefallback(&a, &b); break;
        case TK_DEC_FUSE: st = dec_fuse(&a, &b); break;
        case TK_DEC_STRIP: st = dec_strip(d, &a, &b); break;
        case TK_DEC_METASPACE: st = dec_metaspace(d, &a, &b); break;
        default: st = pt_error(PT_ERR_INTERNAL, "tokenizer decode: unknown decoder step %d", d->type);
        }
        list_free(&a);
        a = b;
        b = (strlist){0};
    }
    tk_buf joined = {0}, res = {0};
    if (!st) st = pt_tokenizer_buf_put(&joined, "", 0);
    for (size_t i = 0; !st && i < a.n; i++) {
        if (!t->has_decoder && i > 0) st = pt_tokenizer_buf_put(&joined, " ", 1);
        if (!st) st = pt_tokenizer_buf_put(&joined, a.v[i].v, a.v[i].n);
    }
    if (!st) st = pt_tokenizer_buf_put(&res, "", 0);
    if (!st) st = pt_tokenizer_utf8_lossy(&res, joined.v, joined.n);
    list_free(&a);
    list_free(&b);
    pt_tokenizer_buf_free(&joined);
    if (st) {
        pt_tokenizer_buf_free(&res);
        return st;
    }
    *out = res.v;
    *out_len = res.n;
    return PT_OK;
}
