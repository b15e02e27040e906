/* Element-type facts and conversions: IEEE half, bfloat16, and the GGML Q8_0 / Q4_0 blocks
 * (layouts as documented in shared/docs/FORMATS.md); the other GGML block types are
 * dequantised in quant.c. */
#include "format/tensor.h"

#include <math.h>
#include <string.h>

/* Per type: name, elements per block, bytes per block, GGML type number (-1: none). Block
 * sizes and byte counts are GGML's (ggml.c type traits; gguf.constants.GGML_QUANT_SIZES). */
static const struct {
    const char *name;
    int block;
    int bytes;
    int ggml;
} traits[PT_DTYPE_COUNT] = {
    [PT_F32] = {"F32", 1, 4, 0},        [PT_F16] = {"F16", 1, 2, 1},        [PT_BF16] = {"BF16", 1, 2, 30},
    [PT_Q8_0] = {"Q8_0", 32, 34, 8},    [PT_Q4_0] = {"Q4_0", 32, 18, 2},    [PT_I32] = {"I32", 1, 4, 26},
    [PT_I64] = {"I64", 1, 8, 27},       [PT_Q4_1] = {"Q4_1", 32, 20, 3},    [PT_Q5_0] = {"Q5_0", 32, 22, 6},
    [PT_Q5_1] = {"Q5_1", 32, 24, 7},    [PT_Q2_K] = {"Q2_K", 256, 84, 10},  [PT_Q3_K] = {"Q3_K", 256, 110, 11},
    [PT_Q4_K] = {"Q4_K", 256, 144, 12}, [PT_Q5_K] = {"Q5_K", 256, 176, 13}, [PT_Q6_K] = {"Q6_K", 256, 210, 14},
    [PT_IQ4_NL] = {"IQ4_NL", 32, 18, 20},
};

const char *pt_dtype_name(pt_dtype t) { return (unsigned)t < PT_DTYPE_COUNT ? traits[t].name : "?"; }

int pt_dtype_block(pt_dtype t) { return (unsigned)t < PT_DTYPE_COUNT ? traits[t].block : 0; }

size_t pt_dtype_block_bytes(pt_dtype t) { return (unsigned)t < PT_DTYPE_COUNT ? (size_t)traits[t].bytes : 0; }

int pt_dtype_is_quant(pt_dtype t) { return pt_dtype_block(t) > 1; }

int pt_dtype_ggml_type(pt_dtype t) { return (unsigned)t < PT_DTYPE_COUNT ? traits[t].ggml : -1; }

/* I32 and I64 stay out: GGUF weights never use them, and the readers never did. */
int pt_dtype_from_ggml(uint32_t ggml, pt_dtype *out) {
    for (int t = 0; t < PT_DTYPE_COUNT; t++)
        if (t != PT_I32 && t != PT_I64 && traits[t].ggml == (int)ggml) {
            *out = (pt_dtype)t;
            return 1;
        }
    return 0;
}

const char *pt_dtype_ggml_name(uint32_t ggml) {
    static const char *names[] = {"F32",    "F16",    "Q4_0",    "Q4_1",  "4 (removed Q4_2)", "5 (removed Q4_3)", "Q5_0",
                                  "Q5_1",   "Q8_0",   "Q8_1",    "Q2_K",  "Q3_K",   "Q4_K",   "Q5_K",
                                  "Q6_K",   "Q8_K",   "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S",  "IQ4_NL",
                                  "IQ3_S",  "IQ2_S",  "IQ4_XS",  "I8",    "I16",    "I32",    "I64",
                                  "F64",    "IQ1_M",  "BF16",    NULL,    NULL,     NULL,     "TQ1_0",
                                  "TQ2_0",  NULL,     NULL,      NULL,    "MXFP4",  "NVFP4",  "Q1_0"};
    return ggml < sizeof names / sizeof names[0] && names[ggml] && ggml != 4 && ggml != 5 ? names[ggml] : "unknown";
}

const char *pt_dtype_ggml_supported(void) {
    return "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL";
}

size_t pt_dtype_nbytes(pt_dtype t, int64_t n) {
    const int block = pt_dtype_block(t);
    if (n < 0 || block == 0 || n % block) return 0;
    return (size_t)(n / block) * (size_t)traits[t].bytes;
}

int64_t pt_shape_numel(const int64_t *shape, int n_dims) {
    int64_t n = 1;
    for (int i = 0; i < n_dims; i++) {
        if (shape[i] < 0) return -1;
        if (shape[i] != 0 && n > INT64_MAX / 16 / shape[i]) return -1;
        n *= shape[i];
    }
    return n;
}

int64_t pt_tensor_numel(const pt_tensor_view *t) { return pt_shape_numel(t->shape, t->n_dims); }

float pt_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else { /* subnormal: renormalise */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400));
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) bits = sign | 0x7f800000u | man << 13;
    else bits = sign | (exp + 112) << 23 | man << 13;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t pt_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t man = x & 0x7fffff;
    if (((x >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = sign | (uint32_t)exp << 10 | man >> 13, rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* may carry into the exponent: correct */
    return (uint16_t)h;
}

uint16_t pt_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

void pt_dtype_to_f32(float *dst, const void *src, pt_dtype t, int64_t n) {
    const uint8_t *s = src;
    switch (t) {
    case PT_F32: memcpy(dst, src, (size_t)n * 4); break;
    case PT_F16:
        for (int64_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, s + 2 * i, 2); dst[i] = pt_f16_to_f32(h); }
        break;
    case PT_BF16:
        for (int64_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, s + 2 * i, 2); dst[i] = pt_bf16_to_f32(h); }
        break;
    case PT_Q8_0:
        for (int64_t b = 0; b < n / PT_QBLOCK; b++) {
            const uint8_t *blk = s + b * 34;
            uint16_t h; memcpy(&h, blk, 2);
            float d = pt_f16_to_f32(h);
            for (int j = 0; j < 32; j++) dst[b * 32 + j] = d * (float)(int8_t)blk[2 + j];
        }
        break;
    case PT_Q4_0:
        for (int64_t b = 0; b < n / PT_QBLOCK; b++) {
            const uint8_t *blk = s + b * 18;
            uint16_t h; memcpy(&h, blk, 2);
            float d = pt_f16_to_f32(h);
            for (int j = 0; j < 16; j++) {
                dst[b * 32 + j] = d * (float)((blk[2 + j] & 0x0f) - 8);
                dst[b * 32 + j + 16] = d * (float)((blk[2 + j] >> 4) - 8);
            }
        }
        break;
    case PT_I32:
        for (int64_t i = 0; i < n; i++) { int32_t v; memcpy(&v, s + 4 * i, 4); dst[i] = (float)v; }
        break;
    case PT_I64:
        for (int64_t i = 0; i < n; i++) { int64_t v; memcpy(&v, s + 8 * i, 8); dst[i] = (float)v; }
        break;
    default: pt_quant_dequant(dst, src, t, n); break;
    }
}

void pt_dtype_to_f64(double *dst, const void *src, pt_dtype t, int64_t n) {
    float buf[256]; /* a multiple of the 32-element quantisation block */
    for (int64_t done = 0; done < n; done += 256) {
        const int64_t k = n - done < 256 ? n - done : 256;
        pt_dtype_to_f32(buf, (const uint8_t *)src + pt_dtype_nbytes(t, done), t, k);
        for (int64_t i = 0; i < k; i++) dst[done + i] = buf[i];
    }
}

/* Float to int with the range clamped first: a C cast of NaN, Inf or an out-of-range value is
 * undefined behaviour. NaN becomes 0; callers that must not lose it check before quantising. */
static int clamp_to_int(float x, int lo, int hi) {
    if (x >= (float)hi) return hi;
    if (x >= (float)lo) return (int)x;
    return x < (float)lo ? lo : 0;
}

void pt_quantize_q8_0(void *dst, const float *src, int64_t n) {
    uint8_t *o = dst;
    for (int64_t b = 0; b < n / PT_QBLOCK; b++) {
        const float *x = src + b * 32;
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        uint16_t h = pt_f32_to_f16(d);
        memcpy(o, &h, 2);
        for (int j = 0; j < 32; j++) o[2 + j] = (uint8_t)(int8_t)clamp_to_int(roundf(x[j] * id), -128, 127);
        o += 34;
    }
}

void pt_quantize_q4_0(void *dst, const float *src, int64_t n) {
    uint8_t *o = dst;
    for (int64_t b = 0; b < n / PT_QBLOCK; b++) {
        const float *x = src + b * 32;
        float amax = 0, max = 0; /* signed value of largest magnitude, as ggml does */
        for (int j = 0; j < 32; j++)
            if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); max = x[j]; }
        float d = max / -8.0f, id = d ? 1.0f / d : 0.0f;
        uint16_t h = pt_f32_to_f16(d);
        memcpy(o, &h, 2);
        for (int j = 0; j < 16; j++) {
            int lo = clamp_to_int(x[j] * id + 8.5f, 0, 15), hi = clamp_to_int(x[j + 16] * id + 8.5f, 0, 15);
            o[2 + j] = (uint8_t)(lo | hi << 4);
        }
        o += 18;
    }
}
