/* UTF-8 helpers for the tokenizer (validation, decoding and encoding are util/utf8.c): the
 * lossy conversion that
 * decoding needs (byte-level tokens can end in the middle of a character; Hugging Face
 * replaces each maximal ill-formed subpart by U+FFFD, as Rust's from_utf8_lossy does), and
 * the GPT-2 byte-level alphabet, computed arithmetically so no table needs initialising. */
#include "tokenizer/tokenizer_impl.h"

#include <stdlib.h>
#include <string.h>

#include "util/utf8.h"

pt_status pt_tokenizer_utf8_lossy(tk_buf *b, const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0; /* run: start of the current well-formed stretch */
    while (i < n) {
        if (p[i] < 0x80) { i++; continue; }
        int sub, k = pt_utf8_seq_len(p + i, n - i, &sub);
        if (k) { i += (size_t)k; continue; }
        PT_TRY(pt_tokenizer_buf_put(b, s + run, i - run));
        PT_TRY(pt_tokenizer_buf_put(b, "\xEF\xBF\xBD", 3));
        i += (size_t)sub;
        run = i;
    }
    return pt_tokenizer_buf_put(b, s + run, n - run);
}

bool pt_tokenizer_is_space(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
           cp == 0x3000;
}

/* Bytes 33-126, 161-172 and 174-255 stand for themselves; the other 68 bytes (0-32,
 * 127-160, 173) take the code points 256.. in byte order. */
uint32_t pt_tokenizer_byte_to_cp(uint8_t b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
    if (b <= 32) return 256u + b;
    if (b <= 160) return (uint32_t)b + 162u; /* 127 -> 289 */
    return 323;                              /* 173 */
}

int pt_tokenizer_cp_to_byte(uint32_t cp) {
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255)) return (int)cp;
    if (cp >= 256 && cp <= 288) return (int)(cp - 256);
    if (cp >= 289 && cp <= 322) return (int)(cp - 162);
    if (cp == 323) return 173;
    return -1;
}

/* ---- vectors -------------------------------------------------------------------------- */

pt_status pt_tokenizer_ivec_push(tk_ivec *a, int32_t x) {
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        int32_t *v = realloc(a->v, cap * sizeof *v);
        if (!v) return pt_error(PT_ERR_OOM, "tokenizer: out of memory growing an id list to %zu", cap);
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return PT_OK;
}

pt_status pt_tokenizer_buf_put(tk_buf *b, const void *p, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *v = realloc(b->v, cap);
        if (!v) return pt_error(PT_ERR_OOM, "tokenizer: out of memory growing a buffer to %zu bytes", cap);
        b->v = v;
        b->cap = cap;
    }
    if (n) memcpy(b->v + b->n, p, n);
    b->n += n;
    b->v[b->n] = 0;
    return PT_OK;
}

void pt_tokenizer_buf_free(tk_buf *b) {
    free(b->v);
    b->v = NULL;
    b->n = b->cap = 0;
}
