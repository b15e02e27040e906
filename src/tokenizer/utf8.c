/* UTF-8 helpers for the tokenizer: strict validation (input text must be well-formed, and
 * the error names the byte offset), character decoding/encoding, the lossy conversion that
 * decoding needs (byte-level tokens can end in the middle of a character; Hugging Face
 * replaces each maximal ill-formed subpart by U+FFFD, as Rust's from_utf8_lossy does), and
 * the GPT-2 byte-level alphabet, computed arithmetically so no table needs initialising. */
#include "tokenizer/tokenizer_impl.h"

#include <stdlib.h>
#include <string.h>

/* Length of the well-formed sequence at p (1-4), or 0 when ill-formed; *sub gets the
 * length of the maximal subpart to replace (>= 1) in that case (Unicode Table 3-7). */
static int seq_len(const unsigned char *p, size_t n, int *sub) {
    unsigned c = p[0];
    *sub = 1;
    if (c < 0x80) return 1;
    int need;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c == 0xE0) { need = 2; lo = 0xA0; }
    else if (c >= 0xE1 && c <= 0xEC) need = 2;
    else if (c == 0xED) { need = 2; hi = 0x9F; }
    else if (c >= 0xEE && c <= 0xEF) need = 2;
    else if (c == 0xF0) { need = 3; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) need = 3;
    else if (c == 0xF4) { need = 3; hi = 0x8F; }
    else return 0;
    for (int i = 1; i <= need; i++) {
        if ((size_t)i >= n) { *sub = i; return 0; }
        unsigned b = p[i];
        unsigned l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
        if (b < l || b > h) { *sub = i; return 0; }
    }
    return need + 1;
}

size_t pt_tok_utf8_invalid_at(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) { i++; continue; }
        int sub, k = seq_len(p + i, n - i, &sub);
        if (!k) return i;
        i += (size_t)k;
    }
    return SIZE_MAX;
}

uint32_t pt_tok_utf8_decode(const char *s, size_t n, int *len) {
    const unsigned char *p = (const unsigned char *)s;
    int sub, k = n ? seq_len(p, n, &sub) : 0;
    if (k <= 1) { *len = 1; return n ? p[0] : 0; }
    *len = k;
    if (k == 2) return ((uint32_t)(p[0] & 0x1F) << 6) | (p[1] & 0x3F);
    if (k == 3) return ((uint32_t)(p[0] & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    return ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) | ((uint32_t)(p[2] & 0x3F) << 6) |
           (p[3] & 0x3F);
}

int pt_tok_utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

pt_status pt_tok_utf8_lossy(tk_buf *b, const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0; /* run: start of the current well-formed stretch */
    while (i < n) {
        if (p[i] < 0x80) { i++; continue; }
        int sub, k = seq_len(p + i, n - i, &sub);
        if (k) { i += (size_t)k; continue; }
        PT_TRY(pt_tok_buf_put(b, s + run, i - run));
        PT_TRY(pt_tok_buf_put(b, "\xEF\xBF\xBD", 3));
        i += (size_t)sub;
        run = i;
    }
    return pt_tok_buf_put(b, s + run, n - run);
}

bool pt_tok_is_space(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
           cp == 0x3000;
}

/* Bytes 33-126, 161-172 and 174-255 stand for themselves; the other 68 bytes (0-32,
 * 127-160, 173) take the code points 256.. in byte order. */
uint32_t pt_tok_byte_to_cp(uint8_t b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
    if (b <= 32) return 256u + b;
    if (b <= 160) return (uint32_t)b + 162u; /* 127 -> 289 */
    return 323;                              /* 173 */
}

int pt_tok_cp_to_byte(uint32_t cp) {
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255)) return (int)cp;
    if (cp >= 256 && cp <= 288) return (int)(cp - 256);
    if (cp >= 289 && cp <= 322) return (int)(cp - 162);
    if (cp == 323) return 173;
    return -1;
}

/* ---- vectors -------------------------------------------------------------------------- */

pt_status pt_tok_ivec_push(tk_ivec *a, int32_t x) {
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

pt_status pt_tok_buf_put(tk_buf *b, const void *p, size_t n) {
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

void pt_tok_buf_free(tk_buf *b) {
    free(b->v);
    b->v = NULL;
    b->n = b->cap = 0;
}
