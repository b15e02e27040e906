/* Added / special tokens in raw text. Hugging Face matches added tokens before
 * normalisation and pre-tokenisation, leftmost-longest (aho-corasick LeftmostLongest), and
 * the text between matches is tokenized on its own. lstrip/rstrip let a match absorb the
 * whitespace beside it; single_word rejects a match glued to a word character.
 *
 * Simplification: Hugging Face matches `normalized: true` tokens in the normalised text of
 * each segment; here every added token is matched in the raw text. For the checkpoints
 * politune targets all added tokens are `normalized: false`, so this makes no difference. */
#include "tokenizer/tokenizer_impl.h"
#include "util/utf8.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

static bool is_word_char(uint32_t cp) {
    if (cp < 0x80) return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '_';
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) ||
           (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO);
}

/* The character that ends at `end` (text is valid UTF-8). */
static uint32_t char_before(const char *s, size_t end, size_t *start) {
    size_t i = end - 1;
    while (i > 0 && ((uint8_t)s[i] & 0xC0) == 0x80) i--;
    int len;
    *start = i;
    return pt_utf8_decode(s + i, end - i, &len);
}

static bool single_word_ok(const char *s, size_t n, size_t start, size_t end) {
    size_t st;
    int len;
    if (start > 0 && is_word_char(char_before(s, start, &st))) return false;
    if (end < n && is_word_char(pt_utf8_decode(s + end, n - end, &len))) return false;
    return true;
}

static pt_status push_seg(tk_seg **v, size_t *n, size_t *cap, size_t start, size_t end, int32_t id) {
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 8;
        tk_seg *p = realloc(*v, c * sizeof *p);
        if (!p) return pt_error(PT_ERR_OOM, "tokenizer: out of memory splitting text");
        *v = p;
        *cap = c;
    }
    (*v)[(*n)++] = (tk_seg){start, end, id};
    return PT_OK;
}

pt_status pt_tokenizer_split_added(const pt_tokenizer *t, const char *s, size_t n, bool parse_special, tk_seg **segs,
                             size_t *nseg) {
    tk_seg *v = NULL;
    size_t nv = 0, cap = 0, seg_start = 0, pos = 0;
    pt_status st = PT_OK;
    while (pos < n) {
        uint8_t c = (uint8_t)s[pos];
        int lo = t->added_first[c], hi = t->added_first[c + 1];
        const tk_added *hit = NULL;
        for (int k = lo; k < hi; k++) {
            const tk_added *a = &t->added[t->added_order[k]];
            if (a->special && !parse_special) continue;
            if (a->len > n - pos || memcmp(a->content, s + pos, a->len) != 0) continue;
            if (a->single_word && !single_word_ok(s, n, pos, pos + a->len)) continue;
            hit = a;
            break; /* longest first within the bucket */
        }
        if (!hit) {
            pos++;
            continue;
        }
        size_t ms = pos, me = pos + hit->len;
        if (hit->lstrip) {
            while (ms > seg_start) {
                size_t cs;
                if (!pt_tokenizer_is_space(char_before(s, ms, &cs))) break;
                ms = cs;
            }
        }
        if (hit->rstrip) {
            while (me < n) {
                int len;
                if (!pt_tokenizer_is_space(pt_utf8_decode(s + me, n - me, &len))) break;
                me += (size_t)len;
            }
        }
        if (ms > seg_start && (st = push_seg(&v, &nv, &cap, seg_start, ms, -1))) break;
        if ((st = push_seg(&v, &nv, &cap, ms, me, hit->id))) break;
        pos = seg_start = me;
    }
    if (!st && seg_start < n) st = push_seg(&v, &nv, &cap, seg_start, n, -1);
    if (st) {
        free(v);
        return st;
    }
    *segs = v;
    *nseg = nv;
    return PT_OK;
}
