/* Normalisers, applied to each stretch of text between added tokens (Hugging Face runs its
 * normaliser per segment, which is why SentencePiece-style tokenizers prepend "▁" again
 * after a special token). Unicode normal forms come from utf8proc; Prepend, Replace (string
 * patterns), Lowercase and Strip are simple byte operations on valid UTF-8. */
#include "tokenizer/tokenizer_impl.h"
#include "util/utf8.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

static pt_status unicode_form(const tk_norm *nm, const tk_buf *in, tk_buf *out) {
    if (in->n == 0) return PT_OK;
    size_t i = 0;
    while (i < in->n && (uint8_t)in->v[i] < 0x80) i++;
    if (i == in->n) return pt_tokenizer_buf_put(out, in->v, in->n); /* ASCII is in every normal form */
    int opts = UTF8PROC_STABLE;
    switch (nm->type) {
    case TK_NORM_NFC: opts |= UTF8PROC_COMPOSE; break;
    case TK_NORM_NFD: opts |= UTF8PROC_DECOMPOSE; break;
    case TK_NORM_NFKC: opts |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    default: opts |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
    }
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)in->v, (utf8proc_ssize_t)in->n, &dst,
                                      (utf8proc_option_t)opts);
    if (r < 0) {
        free(dst);
        return pt_error(PT_ERR_ARG, "tokenizer: Unicode normalisation failed: %s", utf8proc_errmsg(r));
    }
    pt_status st = pt_tokenizer_buf_put(out, dst, (size_t)r);
    free(dst);
    return st;
}

static pt_status replace_all(const tk_norm *nm, const tk_buf *in, tk_buf *out) {
    size_t i = 0, run = 0;
    if (nm->alen == 0) return pt_tokenizer_buf_put(out, in->v, in->n);
    while (i + nm->alen <= in->n) {
        if (memcmp(in->v + i, nm->a, nm->alen) == 0) {
            PT_TRY(pt_tokenizer_buf_put(out, in->v + run, i - run));
            PT_TRY(pt_tokenizer_buf_put(out, nm->b, nm->blen));
            i += nm->alen;
            run = i;
        } else {
            i++;
        }
    }
    return pt_tokenizer_buf_put(out, in->v + run, in->n - run);
}

static pt_status lowercase(const tk_buf *in, tk_buf *out) {
    size_t i = 0;
    while (i < in->n) {
        int len;
        uint32_t cp = pt_utf8_decode(in->v + i, in->n - i, &len);
        char enc[4];
        int k = pt_utf8_encode((uint32_t)utf8proc_tolower((utf8proc_int32_t)cp), enc);
        PT_TRY(pt_tokenizer_buf_put(out, enc, (size_t)k));
        i += (size_t)len;
    }
    return PT_OK;
}

static pt_status strip(const tk_norm *nm, const tk_buf *in, tk_buf *out) {
    size_t a = 0, b = in->n;
    int len;
    if (nm->left)
        while (a < b) {
            uint32_t cp = pt_utf8_decode(in->v + a, b - a, &len);
            if (!pt_tokenizer_is_space(cp)) break;
            a += (size_t)len;
        }
    if (nm->right)
        while (b > a) {
            size_t i = b - 1;
            while (i > a && ((uint8_t)in->v[i] & 0xC0) == 0x80) i--;
            if (!pt_tokenizer_is_space(pt_utf8_decode(in->v + i, b - i, &len))) break;
            b = i;
        }
    return pt_tokenizer_buf_put(out, in->v + a, b - a);
}

pt_status pt_tokenizer_normalize(const pt_tokenizer *t, const char *s, size_t n, tk_buf *out) {
    tk_buf x = {0}, y = {0};
    tk_buf *cur = &x, *nxt = &y;
    pt_status st = pt_tokenizer_buf_put(cur, s, n);
    for (int i = 0; !st && i < t->n_norm; i++) {
        const tk_norm *nm = &t->norm[i];
        nxt->n = 0;
        switch (nm->type) {
        case TK_NORM_NFC: case TK_NORM_NFD: case TK_NORM_NFKC: case TK_NORM_NFKD:
            st = unicode_form(nm, cur, nxt);
            break;
        case TK_NORM_PREPEND:
            /* Hugging Face prepends only to non-empty text. */
            if (cur->n) st = pt_tokenizer_buf_put(nxt, nm->a, nm->alen);
            if (!st) st = pt_tokenizer_buf_put(nxt, cur->v, cur->n);
            break;
        case TK_NORM_REPLACE: st = replace_all(nm, cur, nxt); break;
        case TK_NORM_LOWERCASE: st = lowercase(cur, nxt); break;
        case TK_NORM_STRIP: st = strip(nm, cur, nxt); break;
        default: st = pt_error(PT_ERR_INTERNAL, "tokenizer: unknown normaliser step %d", nm->type);
        }
        if (!st && nxt->n > PT_TOK_WORK_LIMIT(n))
            st = pt_error(PT_ERR_FORMAT, "tokenizer: normaliser step %d grew %zu bytes of text to %zu, past the work limit of %zu: "
                          "the tokenizer's normalizer expands text without bound", i, n, nxt->n, PT_TOK_WORK_LIMIT(n));
        tk_buf *tmp = cur;
        cur = nxt;
        nxt = tmp;
    }
    if (st) {
        pt_tokenizer_buf_free(&x);
        pt_tokenizer_buf_free(&y);
        return st;
    }
    out->n = 0;
    st = pt_tokenizer_buf_put(out, cur->v, cur->n);
    pt_tokenizer_buf_free(&x);
    pt_tokenizer_buf_free(&y);
    return st;
}
