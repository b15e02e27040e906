/* Pre-tokenisers: cut a normalised segment into the pieces the BPE model sees, following
 * Hugging Face's semantics step by step. Split (regex via PCRE2 in UTF+UCP mode, or a
 * literal string) with the five SplitDelimiterBehavior modes and `invert`; ByteLevel (the
 * GPT-2 regex when use_regex, the optional prefix space, and the byte -> code point
 * alphabet); Metaspace (spaces to "▁", prepend scheme, optional split). Digits is loaded as
 * a Split on \p{N}.
 *
 * Pieces are (offset, length) ranges into one buffer; a Split only re-cuts ranges, the
 * transforming steps write a new buffer.
 *
 * Hugging Face runs these regexes with Oniguruma; PCRE2 with PCRE2_UCP agrees on \p{L},
 * \p{N} and lookarounds, and its \s differs only on U+0085 (NEXT LINE), which Oniguruma
 * counts as white space and PCRE2 does not. Matching stops at PCRE2's default match limit,
 * which an adversarial pattern reports as an error instead of running for ever. */
#include "tokenizer/tokenizer_impl.h"
#include "util/utf8.h"

#include <stdlib.h>
#include <string.h>

typedef struct { size_t a, b; bool m; } span;
typedef struct { span *v; size_t n, cap; } spans;

static pt_status span_push(spans *s, size_t a, size_t b, bool m) {
    if (s->n == s->cap) {
        size_t c = s->cap ? s->cap * 2 : 32;
        span *p = realloc(s->v, c * sizeof *p);
        if (!p) return pt_error(PT_ERR_OOM, "tokenizer: out of memory pre-tokenizing");
        s->v = p;
        s->cap = c;
    }
    s->v[s->n++] = (span){a, b, m};
    return PT_OK;
}

static pt_status piece_push(tk_pieces *p, size_t off, size_t len, bool first) {
    if (len == 0) return PT_OK; /* Hugging Face drops empty splits */
    if (p->n == p->cap) {
        size_t c = p->cap ? p->cap * 2 : 32;
        tk_piece *v = realloc(p->v, c * sizeof *v);
        if (!v) return pt_error(PT_ERR_OOM, "tokenizer: out of memory pre-tokenizing");
        p->v = v;
        p->cap = c;
    }
    p->v[p->n++] = (tk_piece){off, len, first};
    return PT_OK;
}

/* Matches of `re` in s[0, n) as spans (gaps included), non-empty matches only. */
static pt_status regex_spans(const pcre2_code *re, pcre2_match_data *md, const char *s, size_t n, bool invert,
                             spans *out) {
    size_t start = 0, prev = 0;
    out->n = 0;
    while (start < n) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, n, start, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
            rc = pcre2_match(re, (PCRE2_SPTR)s, n, start, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return pt_error(PT_ERR_ARG, "tokenizer: pre-tokenizer regex failed on a %zu-byte text: %s", n,
                            (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (me <= ms) { /* empty match: step over one character */
            if (ms >= n) break;
            start = ms + 1;
            while (start < n && ((uint8_t)s[start] & 0xC0) == 0x80) start++;
            continue;
        }
        if (ms > prev) PT_TRY(span_push(out, prev, ms, invert));
        PT_TRY(span_push(out, ms, me, !invert));
        prev = start = me;
    }
    if (prev < n) PT_TRY(span_push(out, prev, n, invert));
    return PT_OK;
}

static pt_status literal_spans(const char *lit, size_t ln, const char *s, size_t n, bool invert, spans *out) {
    size_t i = 0, prev = 0;
    out->n = 0;
    if (ln)
        while (i + ln <= n) {
            if (memcmp(s + i, lit, ln) == 0) {
                if (i > prev) PT_TRY(span_push(out, prev, i, invert));
                PT_TRY(span_push(out, i, i + ln, !invert));
                i += ln;
                prev = i;
            } else {
                i++;
            }
        }
    if (prev < n) PT_TRY(span_push(out, prev, n, invert));
    return PT_OK;
}

/* Applies a SplitDelimiterBehavior to the spans of one piece (offsets relative to base). */
static pt_status apply_behavior(spans *sp, int behavior, size_t base, bool first, tk_pieces *out) {
    size_t n = sp->n, k = 0;
    span *v = sp->v;
    bool prev_m = false;
    switch (behavior) {
    case TK_SPLIT_REMOVED:
        for (size_t i = 0; i < n; i++) v[k] = v[i], k += !v[i].m;
        break;
    case TK_SPLIT_ISOLATED:
        k = n;
        break;
    case TK_SPLIT_MERGED_PREV:
        for (size_t i = 0; i < n; i++) {
            if (v[i].m && !prev_m && k > 0) v[k - 1].b = v[i].b;
            else v[k++] = v[i];
            prev_m = v[i].m;
        }
        break;
    case TK_SPLIT_MERGED_NEXT: {
        /* fold from the right: a delimiter joins the piece after it */
        size_t w = n;
        for (size_t i = n; i-- > 0;) {
            if (v[i].m && !prev_m && w < n) v[w].a = v[i].a;
            else v[--w] = v[i];
            prev_m = v[i].m;
        }
        memmove(v, v + w, (n - w) * sizeof *v);
        k = n - w;
        break;
    }
    case TK_SPLIT_CONTIGUOUS:
        for (size_t i = 0; i < n; i++) {
            if (k > 0 && v[i].m == prev_m) v[k - 1].b = v[i].b;
            else v[k++] = v[i];
            prev_m = v[i].m;
        }
        break;
    }
    for (size_t i = 0; i < k; i++) PT_TRY(piece_push(out, base + v[i].a, v[i].b - v[i].a, first && v[i].a == 0));
    return PT_OK;
}

/* Byte-level mapping of s into out, as one new piece. */
static pt_status bytelevel_map(const char *s, size_t n, bool first, tk_buf *out, tk_pieces *pieces) {
    size_t off = out->n;
    for (size_t i = 0; i < n; i++) {
        char enc[4];
        int k = pt_utf8_encode(pt_tokenizer_byte_to_cp((uint8_t)s[i]), enc);
        PT_TRY(pt_tokenizer_buf_put(out, enc, (size_t)k));
    }
    return piece_push(pieces, off, out->n - off, first);
}

typedef struct {
    tk_buf tmp;
    spans sp;
    pcre2_match_data *md;
} ctx;

static pt_status step_bytelevel(const tk_pre *p, ctx *c, const tk_buf *in, const tk_pieces *pin, tk_buf *out,
                                tk_pieces *pout) {
    for (size_t i = 0; i < pin->n; i++) {
        const tk_piece *pc = &pin->v[i];
        const char *s = in->v + pc->off;
        size_t n = pc->len;
        if (p->add_prefix_space && s[0] != ' ') {
            c->tmp.n = 0;
            PT_TRY(pt_tokenizer_buf_put(&c->tmp, " ", 1));
            PT_TRY(pt_tokenizer_buf_put(&c->tmp, s, n));
            s = c->tmp.v;
            n = c->tmp.n;
        }
        if (!p->use_regex) {
            PT_TRY(bytelevel_map(s, n, pc->first, out, pout));
            continue;
        }
        PT_TRY(regex_spans(p->re, c->md, s, n, false, &c->sp));
        for (size_t k = 0; k < c->sp.n; k++)
            PT_TRY(bytelevel_map(s + c->sp.v[k].a, c->sp.v[k].b - c->sp.v[k].a, pc->first && c->sp.v[k].a == 0, out,
                                 pout));
    }
    return PT_OK;
}

static pt_status step_metaspace(const tk_pre *p, ctx *c, const tk_buf *in, const tk_pieces *pin, tk_buf *out,
                                tk_pieces *pout) {
    for (size_t i = 0; i < pin->n; i++) {
        const tk_piece *pc = &pin->v[i];
        const char *s = in->v + pc->off;
        size_t off = out->n;
        /* Hugging Face tests "starts with the replacement" after spaces became it. */
        bool starts = s[0] == ' ' || (pc->len >= (size_t)p->replen && memcmp(s, p->rep, (size_t)p->replen) == 0);
        bool prepend = !starts && (p->prepend_scheme == TK_PREPEND_ALWAYS ||
                                   (p->prepend_scheme == TK_PREPEND_FIRST && pc->first));
        if (prepend) PT_TRY(pt_tokenizer_buf_put(out, p->rep, (size_t)p->replen));
        for (size_t k = 0; k < pc->len; k++) {
            if (s[k] == ' ') PT_TRY(pt_tokenizer_buf_put(out, p->rep, (size_t)p->replen));
            else PT_TRY(pt_tokenizer_buf_put(out, s + k, 1));
        }
        size_t len = out->n - off;
        if (!p->split) {
            PT_TRY(piece_push(pout, off, len, pc->first));
            continue;
        }
        PT_TRY(literal_spans(p->rep, (size_t)p->replen, out->v + off, len, false, &c->sp));
        PT_TRY(apply_behavior(&c->sp, TK_SPLIT_MERGED_NEXT, off, pc->first, pout));
    }
    return PT_OK;
}

pt_status pt_tokenizer_pretokenize(const pt_tokenizer *t, const char *s, size_t n, bool at_start, tk_buf *buf,
                             tk_pieces *pieces) {
    tk_buf other = {0};
    tk_pieces pother = {0};
    ctx c = {0};
    tk_buf *cur = buf, *nxt = &other;
    tk_pieces *pc = pieces, *pn = &pother;
    pt_status st;
    cur->n = 0;
    pc->n = 0;
    if ((st = pt_tokenizer_buf_put(cur, s, n)) || (st = piece_push(pc, 0, n, at_start))) goto done;
    for (int i = 0; i < t->n_pre && pc->n; i++) {
        const tk_pre *p = &t->pre[i];
        if (p->re && !c.md && !(c.md = pcre2_match_data_create(1, NULL))) {
            st = pt_error(PT_ERR_OOM, "tokenizer: out of memory for regex match data");
            goto done;
        }
        pn->n = 0;
        if (p->type == TK_PRE_SPLIT) {
            for (size_t k = 0; k < pc->n; k++) {
                const tk_piece *q = &pc->v[k];
                st = p->re ? regex_spans(p->re, c.md, cur->v + q->off, q->len, p->invert, &c.sp)
                           : literal_spans(p->lit, p->litlen, cur->v + q->off, q->len, p->invert, &c.sp);
                if (st || (st = apply_behavior(&c.sp, p->behavior, q->off, q->first, pn))) goto done;
            }
        } else {
            nxt->n = 0;
            st = p->type == TK_PRE_BYTELEVEL ? step_bytelevel(p, &c, cur, pc, nxt, pn)
                                             : step_metaspace(p, &c, cur, pc, nxt, pn);
            if (st) goto done;
            tk_buf *tb = cur;
            cur = nxt;
            nxt = tb;
        }
        tk_pieces *tp = pc;
        pc = pn;
        pn = tp;
        if (cur->n > PT_TOK_WORK_LIMIT(n) || pc->n > PT_TOK_WORK_LIMIT(n)) {
            st = pt_error(PT_ERR_FORMAT, "tokenizer: pre-tokeniser step %d turned %zu bytes into %zu bytes in %zu pieces, past the work "
                          "limit of %zu: the tokenizer's pre_tokenizer expands text without bound", i, n, cur->n, pc->n,
                          PT_TOK_WORK_LIMIT(n));
            goto done;
        }
    }
    /* Leave the result in the caller's buffer and piece list. */
    if (cur != buf) {
        tk_buf tb = *buf;
        *buf = *cur;
        *cur = tb;
    }
    if (pc != pieces) {
        tk_pieces tp = *pieces;
        *pieces = *pc;
        *pc = tp;
    }
    st = PT_OK;
done:
    pt_tokenizer_buf_free(&other);
    free(pother.v);
    pt_tokenizer_buf_free(&c.tmp);
    free(c.sp.v);
    if (c.md) pcre2_match_data_free(c.md);
    return st;
}
