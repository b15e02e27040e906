/* Dequantisation of the GGML block types beyond Q8_0 / Q4_0: Q4_1, Q5_0, Q5_1, the K-quants
 * Q2_K ... Q6_K (super-blocks of 256) and IQ4_NL. These are what llama.cpp's quantisation
 * presets emit, so a downloaded GGUF is one of them.
 *
 * The reference is gguf.quants (llama.cpp's numpy implementation), and the results must equal
 * it bit for bit as float32. numpy evaluates each expression as separate float32 operations in
 * a fixed order (scale products first, then `d * q`, then `+ m` or `- dm`), so the code below
 * does the same, and the build's -std=c11 keeps the compiler from fusing a multiply and an add
 * into one FMA (which would round once instead of twice). The byte layouts follow ggml's
 * block_* structs; each function's comment gives the layout of one block. */
#include <string.h>

#include "format/tensor.h"

#define QK_K 256

static float f16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return pt_f16_to_f32(h);
}

/* block_q4_1 (20 bytes): d f16, m f16, qs[16]; element j < 16 is the low nibble of qs[j],
 * element j + 16 the high nibble; value d * q + m. */
static void deq_q4_1(float *y, const uint8_t *b) {
    const float d = f16_at(b), m = f16_at(b + 2);
    const uint8_t *qs = b + 4;
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)(qs[j] & 15) + m;
        y[j + 16] = d * (float)(qs[j] >> 4) + m;
    }
}

/* block_q5_0 (22 bytes): d f16, qh u32 (bit j: fifth bit of element j), qs[16] as in Q4_1;
 * value d * (q - 16). */
static void deq_q5_0(float *y, const uint8_t *b) {
    const float d = f16_at(b);
    uint32_t qh;
    memcpy(&qh, b + 2, 4);
    const uint8_t *qs = b + 6;
    for (int j = 0; j < 16; j++) {
        int lo = (qs[j] & 15) | (int)((qh >> j) & 1) << 4, hi = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
        y[j] = d * (float)(lo - 16);
        y[j + 16] = d * (float)(hi - 16);
    }
}

/* block_q5_1 (24 bytes): d f16, m f16, qh u32, qs[16]; value d * q + m. */
static void deq_q5_1(float *y, const uint8_t *b) {
    const float d = f16_at(b), m = f16_at(b + 2);
    uint32_t qh;
    memcpy(&qh, b + 4, 4);
    const uint8_t *qs = b + 8;
    for (int j = 0; j < 16; j++) {
        int lo = (qs[j] & 15) | (int)((qh >> j) & 1) << 4, hi = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
        y[j] = d * (float)lo + m;
        y[j + 16] = d * (float)hi + m;
    }
}

/* block_q2_K (84 bytes): scales[16] (low nibble: scale, high nibble: minimum, one pair per 16
 * elements), qs[64], d f16, dmin f16. Element 128 h + 32 s + l (h < 2, s < 4, l < 32) is bits
 * 2s..2s+1 of qs[32 h + l]; value (d * sc) * q - (dmin * mn). */
static void deq_q2_k(float *y, const uint8_t *b) {
    const uint8_t *sc = b, *qs = b + 16;
    const float d = f16_at(b + 80), dmin = f16_at(b + 82);
    for (int i = 0; i < QK_K; i++) {
        int h = i / 128, s = (i / 32) % 4, l = i % 32, g = i / 16;
        float dl = d * (float)(sc[g] & 15), ml = dmin * (float)(sc[g] >> 4);
        y[i] = dl * (float)((qs[32 * h + l] >> (2 * s)) & 3) - ml;
    }
}

/* block_q3_K (110 bytes): hmask[32], qs[64], scales[12] (sixteen 6-bit signed scales: low
 * four bits in the nibbles of bytes 0-7, high two bits in bytes 8-11), d f16. Element i =
 * 32 k + l (k < 8) takes bits 2(k%4).. of qs[32(k/4) + l] and subtracts 4 when bit k of
 * hmask[l] is clear; value (d * (scale - 32)) * q. */
static void deq_q3_k(float *y, const uint8_t *b) {
    const uint8_t *hm = b, *qs = b + 32, *sc = b + 96;
    const float d = f16_at(b + 108);
    float dl[16];
    for (int g = 0; g < 16; g++) {
        int lo = g < 8 ? sc[g] & 15 : sc[g - 8] >> 4, hi = (sc[8 + g % 4] >> (2 * (g / 4))) & 3;
        dl[g] = d * (float)((lo | hi << 4) - 32);
    }
    for (int i = 0; i < QK_K; i++) {
        int k = i / 32, l = i % 32;
        int q = ((qs[32 * (k / 4) + l] >> (2 * (k % 4))) & 3) - ((hm[l] >> k) & 1 ? 0 : 4);
        y[i] = dl[i / 16] * (float)q;
    }
}

/* The eight 6-bit scales and minima of Q4_K / Q5_K, packed in 12 bytes. */
static void scale_min_k4(const uint8_t *p, int j, int *sc, int *mn) {
    if (j < 4) {
        *sc = p[j] & 63;
        *mn = p[j + 4] & 63;
    } else {
        *sc = (p[j + 4] & 15) | (p[j - 4] >> 6) << 4;
        *mn = (p[j + 4] >> 4) | (p[j] >> 6) << 4;
    }
}

/* block_q4_K (144 bytes): d f16, dmin f16, scales[12], qs[128]. Sub-block j (32 elements)
 * takes nibble j%2 of qs[32(j/2) + l]; value (d * sc) * q - (dmin * mn). */
static void deq_q4_k(float *y, const uint8_t *b) {
    const float d = f16_at(b), dmin = f16_at(b + 2);
    const uint8_t *qs = b + 16;
    for (int j = 0; j < 8; j++) {
        int sc, mn;
        scale_min_k4(b + 4, j, &sc, &mn);
        const float dl = d * (float)sc, ml = dmin * (float)mn;
        for (int l = 0; l < 32; l++) y[32 * j + l] = dl * (float)((qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 15) - ml;
    }
}

/* block_q5_K (176 bytes): d f16, dmin f16, scales[12], qh[32], qs[128]; as Q4_K with bit j
 * of qh[l] as the fifth bit of element 32 j + l. */
static void deq_q5_k(float *y, const uint8_t *b) {
    const float d = f16_at(b), dmin = f16_at(b + 2);
    const uint8_t *qh = b + 16, *qs = b + 48;
    for (int j = 0; j < 8; j++) {
        int sc, mn;
        scale_min_k4(b + 4, j, &sc, &mn);
        const float dl = d * (float)sc, ml = dmin * (float)mn;
        for (int l = 0; l < 32; l++) {
            int q = ((qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 15) | ((qh[l] >> j) & 1) << 4;
            y[32 * j + l] = dl * (float)q - ml;
        }
    }
}

/* block_q6_K (210 bytes): ql[128], qh[64], scales[16] int8, d f16. Element 128 h + 32 s + l
 * (s < 4) has low four bits from nibble s/2 of ql[64 h + 32(s%2) + l] and high two bits
 * 2s.. of qh[32 h + l]; value (d * scale) * (q - 32), one scale per 16 elements. */
static void deq_q6_k(float *y, const uint8_t *b) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    const float d = f16_at(b + 208);
    for (int i = 0; i < QK_K; i++) {
        int h = i / 128, s = (i / 32) % 4, l = i % 32;
        int q = ((ql[64 * h + 32 * (s % 2) + l] >> (4 * (s / 2))) & 15) | ((qh[32 * h + l] >> (2 * s)) & 3) << 4;
        y[i] = (d * (float)sc[i / 16]) * (float)(q - 32);
    }
}

/* The IQ4_NL code book: sixteen non-uniform levels (ggml's kvalues_iq4nl). */
const int8_t pt_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/* block_iq4_nl (18 bytes): d f16, qs[16] with Q4_0's nibble order; value d * table[q]. */
static void deq_iq4_nl(float *y, const uint8_t *b) {
    const float d = f16_at(b);
    const uint8_t *qs = b + 2;
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)pt_iq4nl_values[qs[j] & 15];
        y[j + 16] = d * (float)pt_iq4nl_values[qs[j] >> 4];
    }
}

void pt_quant_dequant(float *dst, const void *src, pt_dtype t, int64_t n) {
    void (*one)(float *, const uint8_t *);
    switch (t) {
    case PT_Q4_1: one = deq_q4_1; break;
    case PT_Q5_0: one = deq_q5_0; break;
    case PT_Q5_1: one = deq_q5_1; break;
    case PT_Q2_K: one = deq_q2_k; break;
    case PT_Q3_K: one = deq_q3_k; break;
    case PT_Q4_K: one = deq_q4_k; break;
    case PT_Q5_K: one = deq_q5_k; break;
    case PT_Q6_K: one = deq_q6_k; break;
    case PT_IQ4_NL: one = deq_iq4_nl; break;
    default: return;
    }
    const int block = pt_dtype_block(t);
    const size_t bytes = pt_dtype_block_bytes(t);
    const uint8_t *s = src;
    for (int64_t b = 0; b < n / block; b++) one(dst + b * block, s + (size_t)b * bytes);
}
