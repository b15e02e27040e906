/* Strict UTF-8 validation, decoding and encoding (see utf8.h). */
#include "util/utf8.h"

/* Length of the well-formed sequence at p (1-4), or 0 when ill-formed; *sub gets the
 * length of the maximal subpart to replace (>= 1) in that case (Unicode Table 3-7). */
int pt_utf8_seq_len(const unsigned char *p, size_t n, int *sub) {
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

long pt_utf8_invalid_at(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) { i++; continue; }
        int sub, k = pt_utf8_seq_len(p + i, n - i, &sub);
        if (!k) return (long)i;
        i += (size_t)k;
    }
    return -1;
}

uint32_t pt_utf8_decode(const char *s, size_t n, int *len) {
    const unsigned char *p = (const unsigned char *)s;
    int sub, k = n ? pt_utf8_seq_len(p, n, &sub) : 0;
    if (k <= 1) { *len = 1; return n ? p[0] : 0; }
    *len = k;
    if (k == 2) return ((uint32_t)(p[0] & 0x1F) << 6) | (p[1] & 0x3F);
    if (k == 3) return ((uint32_t)(p[0] & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    return ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) | ((uint32_t)(p[2] & 0x3F) << 6) |
           (p[3] & 0x3F);
}

int pt_utf8_encode(uint32_t cp, char out[4]) {
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
