/* SIMD inner loops of the CPU backend (see kernels.h). Decode is a stream of matrix-vector
 * products whose speed is set by how fast weight bytes arrive, so the dot kernels stream each
 * weight row once against an activation row held in cache, and the quantised ones widen
 * int8 / nibbles to float in registers rather than through a dequantised copy, which keeps
 * Q8_0 reading about a quarter of F32's bytes with float32 arithmetic (no activation
 * quantisation: results stay the float dot of the dequantised weights). */
#include "backend/cpu/kernels.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

void openblas_set_num_threads(int n);

/* ---- portable versions ------------------------------------------------------------- */

static float f16_scale(const uint8_t *blk) {
    uint16_t h;
    memcpy(&h, blk, 2);
    return pt_f16_to_f32(h);
}

static float dot_f32_c(const float *a, const float *b, int n) {
    float s[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) s[j] += a[i + j] * b[i + j];
    float t = 0;
    for (; i < n; i++) t += a[i] * b[i];
    for (int j = 0; j < 8; j++) t += s[j];
    return t;
}

static float dot_q8_0_c(const uint8_t *blk, const float *x, int n) {
    float t = 0;
    for (int b = 0; b < n / 32; b++, blk += 34, x += 32) {
        const int8_t *q = (const int8_t *)(blk + 2);
        float u = 0;
        for (int j = 0; j < 32; j++) u += (float)q[j] * x[j];
        t += f16_scale(blk) * u;
    }
    return t;
}

static float dot_q4_0_c(const uint8_t *blk, const float *x, int n) {
    float t = 0;
    for (int b = 0; b < n / 32; b++, blk += 18, x += 32) {
        const uint8_t *q = blk + 2;
        float u = 0;
        for (int j = 0; j < 16; j++) u += (float)((q[j] & 15) - 8) * x[j] + (float)((q[j] >> 4) - 8) * x[j + 16];
        t += f16_scale(blk) * u;
    }
    return t;
}

/* The other block types: each block dequantised (exactly, by format/quant.c) into a buffer,
 * then a float dot product. */
static float dot_blocks_c(const uint8_t *w, pt_dtype dtype, const float *x, int n) {
    const int block = pt_dtype_block(dtype);
    const size_t bytes = pt_dtype_block_bytes(dtype);
    float buf[256], t = 0; /* (block) */
    for (int b = 0; b < n / block; b++, w += bytes, x += block) {
        pt_quant_dequant(buf, w, dtype, block);
        t += dot_f32_c(buf, x, block);
    }
    return t;
}

static void dot_rows_c(float *out, const uint8_t *w, size_t rb, pt_dtype dtype, const float *x, int nr, int cols) {
    for (int r = 0; r < nr; r++, w += rb)
        out[r] = dtype == PT_F32 ? dot_f32_c((const float *)w, x, cols)
               : dtype == PT_Q8_0 ? dot_q8_0_c(w, x, cols)
               : dtype == PT_Q4_0 ? dot_q4_0_c(w, x, cols) : dot_blocks_c(w, dtype, x, cols);
}

static void dequant_rows_c(float *dst, const uint8_t *src, size_t rb, pt_dtype dtype, int nr, int cols) {
    for (int r = 0; r < nr; r++) pt_dtype_to_f32(dst + (size_t)r * cols, src + (size_t)r * rb, dtype, cols);
}

static float exp_sum_c(float *x, int n, float shift) {
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i] = expf(x[i] - shift);
    return (float)s;
}

static float max_c(const float *x, int n) {
    float m = x[0];
    for (int i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

/* ---- AVX-512 versions ---------------------------------------------------------------- */
#if HAVE_X86
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))

AVX512 static inline float scale_avx(const uint8_t *blk) {
    uint16_t h;
    memcpy(&h, blk, 2);
    return _cvtsh_ss(h);
}

/* 32 int8 weights of a Q8_0 block as two float vectors */
AVX512 static inline void q8_widen(const uint8_t *blk, __m512 *lo, __m512 *hi) {
    *lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 2))));
    *hi = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 18))));
}

/* 32 nibbles of a Q4_0 block (low nibbles: elements 0-15, high: 16-31) minus 8 */
AVX512 static inline void q4_widen(const uint8_t *blk, __m512 *lo, __m512 *hi) {
    const __m128i v = _mm_loadu_si128((const __m128i *)(blk + 2)), m = _mm_set1_epi8(15), eight = _mm_set1_epi8(8);
    __m128i l = _mm_sub_epi8(_mm_and_si128(v, m), eight), h = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(v, 4), m), eight);
    *lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(l));
    *hi = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(h));
}

/* One row at a time: the weights then stream through memory in a single sequential pass,
 * which the hardware prefetchers follow best (interleaving four rows, or software
 * prefetching ahead, measured slower here); the activation row stays in L1. */
AVX512 static void rows_f32_avx512(float *out, const uint8_t *w, size_t rb, const float *x, int nr, int cols) {
    for (int r = 0; r < nr; r++) {
        const float *w0 = (const float *)(w + (size_t)r * rb);
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        /* a masked first step brings the weight loads to 64-byte boundaries (safetensors data
         * is only 8-byte aligned): one cache line per load from memory */
        int c = (int)((64 - ((uintptr_t)w0 & 63)) & 63) / 4;
        c = c > cols ? cols : c;
        if (c) {
            __mmask16 m = (__mmask16)((1u << c) - 1);
            a0 = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, w0), _mm512_maskz_loadu_ps(m, x));
        }
        for (; c + 64 <= cols; c += 64) {
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + c), _mm512_loadu_ps(x + c), a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + c + 16), _mm512_loadu_ps(x + c + 16), a1);
            a2 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + c + 32), _mm512_loadu_ps(x + c + 32), a2);
            a3 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + c + 48), _mm512_loadu_ps(x + c + 48), a3);
        }
        for (; c + 16 <= cols; c += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + c), _mm512_loadu_ps(x + c), a0);
        if (c < cols) {
            __mmask16 m = (__mmask16)((1u << (cols - c)) - 1);
            a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w0 + c), _mm512_maskz_loadu_ps(m, x + c), a1);
        }
        out[r] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    }
}

/* acc += d * (q . x) for one 32-element block at p against x[0..31] */
#define QBLOCK(widen, p, x, acc)                                                                     \
    do {                                                                                             \
        __m512 lo_, hi_;                                                                             \
        widen((p), &lo_, &hi_);                                                                      \
        __m512 t_ = _mm512_fmadd_ps(hi_, _mm512_loadu_ps((x) + 16), _mm512_mul_ps(lo_, _mm512_loadu_ps(x))); \
        acc = _mm512_fmadd_ps(_mm512_set1_ps(scale_avx(p)), t_, acc);                                \
    } while (0)

/* Blocks alternate between two accumulators to halve the dependency chain. */
#define DEFINE_QROWS(name, widen, bb)                                                                \
    AVX512 static void name(float *out, const uint8_t *w, size_t rb, const float *x, int nr, int cols) { \
        const int nb = cols / 32;                                                                    \
        for (int r = 0; r < nr; r++) {                                                               \
            const uint8_t *p = w + (size_t)r * rb;                                                   \
            __m512 a0 = _mm512_setzero_ps(), a1 = a0;                                                \
            int b = 0;                                                                               \
            for (; b + 2 <= nb; b += 2) {                                                            \
                QBLOCK(widen, p + (size_t)b * (bb), x + 32 * b, a0);                                 \
                QBLOCK(widen, p + (size_t)(b + 1) * (bb), x + 32 * b + 32, a1);                      \
            }                                                                                        \
            if (b < nb) QBLOCK(widen, p + (size_t)b * (bb), x + 32 * b, a0);                         \
            out[r] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));                                    \
        }                                                                                            \
    }

DEFINE_QROWS(rows_q8_0_avx512, q8_widen, 34)
DEFINE_QROWS(rows_q4_0_avx512, q4_widen, 18)

AVX512 static void dequant_rows_avx512(float *dst, const uint8_t *src, size_t rb, pt_dtype dtype, int nr, int cols) {
    const int nb = cols / 32, bb = dtype == PT_Q8_0 ? 34 : 18;
    for (int r = 0; r < nr; r++) {
        const uint8_t *p = src + (size_t)r * rb;
        float *d = dst + (size_t)r * cols;
        for (int b = 0; b < nb; b++, p += bb, d += 32) {
            __m512 lo, hi, s = _mm512_set1_ps(scale_avx(p));
            if (dtype == PT_Q8_0) q8_widen(p, &lo, &hi);
            else q4_widen(p, &lo, &hi);
            _mm512_storeu_ps(d, _mm512_mul_ps(lo, s));
            _mm512_storeu_ps(d + 16, _mm512_mul_ps(hi, s));
        }
    }
}

/* exp(x) for x <= 88.7: 2^n * p(r) with r = x - n ln2 in [-ln2/2, ln2/2] and Cephes' degree-6
 * polynomial (about 1 ulp); scalef handles the 2^n scaling, including underflow to 0. Inputs
 * below -104 are raised to it (their exponential is 0 in float anyway); NaN passes through. */
AVX512 static inline __m512 exp_avx512(__m512 x) {
    x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x);
    x = _mm512_min_ps(_mm512_set1_ps(88.7f), x);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

AVX512 static float exp_sum_avx512(float *x, int n, float shift) {
    const __m512 sh = _mm512_set1_ps(shift);
    __m512 s = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 e = exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(x + i), sh));
        _mm512_storeu_ps(x + i, e);
        s = _mm512_add_ps(s, e);
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m512 e = exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), sh));
        _mm512_mask_storeu_ps(x + i, m, e);
        s = _mm512_mask_add_ps(s, m, s, e);
    }
    return _mm512_reduce_add_ps(s);
}

AVX512 static float max_avx512(const float *x, int n) {
    __m512 m = _mm512_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 16 <= n; i += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(x + i));
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        m = _mm512_mask_max_ps(m, k, m, _mm512_maskz_loadu_ps(k, x + i));
    }
    return _mm512_reduce_max_ps(m);
}
/* ---- AVX2 versions (CPUs without AVX-512): the decode dot kernels only ---------------- */
#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX2 static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2 static inline float scale_avx2(const uint8_t *blk) {
    uint16_t h;
    memcpy(&h, blk, 2);
    return _cvtsh_ss(h);
}

AVX2 static void rows_f32_avx2(float *out, const uint8_t *w, size_t rb, const float *x, int nr, int cols) {
    for (int r = 0; r < nr; r++) {
        const float *w0 = (const float *)(w + (size_t)r * rb);
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int c = 0;
        for (; c + 32 <= cols; c += 32) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + c), _mm256_loadu_ps(x + c), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + c + 8), _mm256_loadu_ps(x + c + 8), a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + c + 16), _mm256_loadu_ps(x + c + 16), a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + c + 24), _mm256_loadu_ps(x + c + 24), a3);
        }
        for (; c + 8 <= cols; c += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + c), _mm256_loadu_ps(x + c), a0);
        float t = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
        for (; c < cols; c++) t += w0[c] * x[c];
        out[r] = t;
    }
}

/* 8 int8 at p as floats */
#define Q8X8(p) _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p))))

AVX2 static void rows_q8_0_avx2(float *out, const uint8_t *w, size_t rb, const float *x, int nr, int cols) {
    for (int r = 0; r < nr; r++) {
        const uint8_t *p = w + (size_t)r * rb;
        __m256 acc = _mm256_setzero_ps();
        for (int b = 0; b < cols / 32; b++, p += 34) {
            const float *xb = x + 32 * b;
            __m256 t = _mm256_mul_ps(Q8X8(p + 2), _mm256_loadu_ps(xb));
            t = _mm256_fmadd_ps(Q8X8(p + 10), _mm256_loadu_ps(xb + 8), t);
            t = _mm256_fmadd_ps(Q8X8(p + 18), _mm256_loadu_ps(xb + 16), t);
            t = _mm256_fmadd_ps(Q8X8(p + 26), _mm256_loadu_ps(xb + 24), t);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(scale_avx2(p)), t, acc);
        }
        out[r] = hsum256(acc);
    }
}

AVX2 static void rows_q4_0_avx2(float *out, const uint8_t *w, size_t rb, const float *x, int nr, int cols) {
    const __m128i m = _mm_set1_epi8(15), eight = _mm_set1_epi8(8);
    for (int r = 0; r < nr; r++) {
        const uint8_t *p = w + (size_t)r * rb;
        __m256 acc = _mm256_setzero_ps();
        for (int b = 0; b < cols / 32; b++, p += 18) {
            const float *xb = x + 32 * b;
            __m128i v = _mm_loadu_si128((const __m128i *)(p + 2));
            __m128i lo = _mm_sub_epi8(_mm_and_si128(v, m), eight), hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(v, 4), m), eight);
            __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), _mm256_loadu_ps(xb));
            t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))), _mm256_loadu_ps(xb + 8), t);
            t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), _mm256_loadu_ps(xb + 16), t);
            t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))), _mm256_loadu_ps(xb + 24), t);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(scale_avx2(p)), t, acc);
        }
        out[r] = hsum256(acc);
    }
}

/* Q8_0 / Q4_0 rows dequantised for batched products: d * q, one product per element as in
 * the reference. Without these an AVX2-only CPU dequantised them with the scalar
 * pt_dtype_to_f32, an F16 scale conversion per block and no SIMD, which made Q8_0 prefill
 * slower than Q4_1's. */
AVX2 static void dequant_q8_0_avx2(float *dst, const uint8_t *src, size_t rb, int nr, int cols) {
    const int nb = cols / 32;
    for (int r = 0; r < nr; r++) {
        const uint8_t *p = src + (size_t)r * rb;
        float *d = dst + (size_t)r * cols;
        for (int b = 0; b < nb; b++, p += 34, d += 32) {
            const __m256 s = _mm256_set1_ps(scale_avx2(p));
            for (int i = 0; i < 4; i++) _mm256_storeu_ps(d + 8 * i, _mm256_mul_ps(Q8X8(p + 2 + 8 * i), s));
        }
    }
}

AVX2 static void dequant_q4_0_avx2(float *dst, const uint8_t *src, size_t rb, int nr, int cols) {
    const int nb = cols / 32;
    const __m128i m = _mm_set1_epi8(15), eight = _mm_set1_epi8(8);
    for (int r = 0; r < nr; r++) {
        const uint8_t *p = src + (size_t)r * rb;
        float *d = dst + (size_t)r * cols;
        for (int b = 0; b < nb; b++, p += 18, d += 32) {
            const __m256 s = _mm256_set1_ps(scale_avx2(p));
            const __m128i v = _mm_loadu_si128((const __m128i *)(p + 2));
            const __m128i lo = _mm_sub_epi8(_mm_and_si128(v, m), eight), hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(v, 4), m), eight);
            const __m128i part[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
            for (int i = 0; i < 4; i++) _mm256_storeu_ps(d + 8 * i, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(part[i])), s));
        }
    }
}

/* ---- the other block types (Q4_1, Q5_0, Q5_1, Q2_K ... Q6_K, IQ4_NL), AVX2 and AVX-512 -----
 * A block is unpacked into 32-element slices of small integers q (int8 in one 256-bit
 * register) with a scale d and an additive term m per 16 elements: value = d * q + m (m = 0
 * and never added for types without a minimum, so -0 stays -0 as in the reference). The dot
 * kernels (rows_blocks_i8) multiply q by an int8 copy of the activation row and fold the
 * minima in through per-16 float sums of the row computed once per call:
 * sum_l (d q_l + m) x_l = d (q . x) + m sum(x). The dequantiser computes d * q then + m, the
 * reference's order. */
typedef struct {
    __m256i q[8];       /* (slices, 32) int8 */
    float d[16], m[16]; /* per 16 elements */
} unpacked;

#define AVX2_INLINE AVX2 static inline __attribute__((always_inline))

AVX2_INLINE __m256i nibbles32(const uint8_t *p) { /* low nibbles of 16 bytes, then the high ones */
    const __m128i v = _mm_loadu_si128((const __m128i *)p), m = _mm_set1_epi8(15);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm_and_si128(v, m));
}

AVX2_INLINE __m256i bits32(uint32_t bits) { /* byte j = 0xff where bit j is set */
    const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i sel = _mm256_set1_epi64x(0x8040201008040201LL);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), shuf);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, sel), sel);
}

AVX2_INLINE __m256i bitk(__m256i v, int k) { /* byte l = 0xff where bit k of byte l of v is set */
    const __m256i b = _mm256_set1_epi8((char)(1 << k));
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, b), b);
}

AVX2_INLINE __m256i shr_mask(__m256i v, int n, int mask) { /* (byte >> n) & mask, per byte */
    return _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(n)), _mm256_set1_epi8((char)mask));
}

AVX2_INLINE void set_pair(unpacked *u, int g, float d, float m) { u->d[g] = u->d[g + 1] = d, u->m[g] = u->m[g + 1] = m; }

static inline int has_min(pt_dtype t) { return t == PT_Q4_1 || t == PT_Q5_1 || t == PT_Q2_K || t == PT_Q4_K || t == PT_Q5_K; }

/* The 6-bit scale and minimum j of a Q4_K / Q5_K super-block (12 packed bytes). */
static inline void scale_min_k4(const uint8_t *p, int j, int *sc, int *mn) {
    if (j < 4) *sc = p[j] & 63, *mn = p[j + 4] & 63;
    else *sc = (p[j + 4] & 15) | (p[j - 4] >> 6) << 4, *mn = (p[j + 4] >> 4) | (p[j] >> 6) << 4;
}

/* Slices of one block of `t` (layouts in format/quant.c); returns their number (1 or 8). */
AVX2_INLINE int unpack(unpacked *u, const uint8_t *b, pt_dtype t) {
    switch (t) {
    case PT_Q4_1:
        u->q[0] = nibbles32(b + 4);
        set_pair(u, 0, scale_avx2(b), scale_avx2(b + 2));
        return 1;
    case PT_Q5_0: case PT_Q5_1: {
        const int off = t == PT_Q5_0 ? 2 : 4;
        uint32_t qh;
        memcpy(&qh, b + off, 4);
        __m256i q = _mm256_or_si256(nibbles32(b + off + 4), _mm256_and_si256(bits32(qh), _mm256_set1_epi8(16)));
        if (t == PT_Q5_0) q = _mm256_sub_epi8(q, _mm256_set1_epi8(16));
        u->q[0] = q;
        set_pair(u, 0, scale_avx2(b), t == PT_Q5_1 ? scale_avx2(b + 2) : 0.0f);
        return 1;
    }
    case PT_IQ4_NL: {
        const __m128i table = _mm_loadu_si128((const __m128i *)pt_iq4nl_values), v = _mm_loadu_si128((const __m128i *)(b + 2)),
                      m = _mm_set1_epi8(15);
        u->q[0] = _mm256_set_m128i(_mm_shuffle_epi8(table, _mm_and_si128(_mm_srli_epi16(v, 4), m)),
                                   _mm_shuffle_epi8(table, _mm_and_si128(v, m)));
        set_pair(u, 0, scale_avx2(b), 0.0f);
        return 1;
    }
    case PT_Q2_K: {
        const uint8_t *sc = b;
        const float d = scale_avx2(b + 80), dmin = scale_avx2(b + 82);
        for (int k = 0; k < 8; k++) u->q[k] = shr_mask(_mm256_loadu_si256((const __m256i *)(b + 16 + 32 * (k / 4))), 2 * (k % 4), 3);
        for (int g = 0; g < 16; g++) u->d[g] = d * (float)(sc[g] & 15), u->m[g] = -(dmin * (float)(sc[g] >> 4));
        return 8;
    }
    case PT_Q3_K: {
        const uint8_t *sc = b + 96;
        const float d = scale_avx2(b + 108);
        const __m256i hm = _mm256_loadu_si256((const __m256i *)b), four = _mm256_set1_epi8(4);
        for (int k = 0; k < 8; k++) {
            __m256i ql = shr_mask(_mm256_loadu_si256((const __m256i *)(b + 32 + 32 * (k / 4))), 2 * (k % 4), 3);
            u->q[k] = _mm256_sub_epi8(ql, _mm256_andnot_si256(bitk(hm, k), four));
        }
        for (int g = 0; g < 16; g++) {
            int lo = g < 8 ? sc[g] & 15 : sc[g - 8] >> 4, hi = (sc[8 + g % 4] >> (2 * (g / 4))) & 3;
            u->d[g] = d * (float)((lo | hi << 4) - 32), u->m[g] = 0;
        }
        return 8;
    }
    case PT_Q4_K: case PT_Q5_K: {
        const float d = scale_avx2(b), dmin = scale_avx2(b + 2);
        const uint8_t *qs = b + (t == PT_Q4_K ? 16 : 48);
        const __m256i qh = _mm256_loadu_si256((const __m256i *)(b + 16)), sixteen = _mm256_set1_epi8(16);
        for (int j = 0; j < 8; j++) {
            int sc, mn;
            scale_min_k4(b + 4, j, &sc, &mn);
            __m256i q = shr_mask(_mm256_loadu_si256((const __m256i *)(qs + 32 * (j / 2))), 4 * (j % 2), 15);
            if (t == PT_Q5_K) q = _mm256_or_si256(q, _mm256_and_si256(bitk(qh, j), sixteen));
            u->q[j] = q;
            set_pair(u, 2 * j, d * (float)sc, -(dmin * (float)mn));
        }
        return 8;
    }
    case PT_Q6_K: {
        const int8_t *sc = (const int8_t *)(b + 192);
        const float d = scale_avx2(b + 208);
        for (int k = 0; k < 8; k++) {
            const int h = k / 4, s = k % 4;
            __m256i lo = shr_mask(_mm256_loadu_si256((const __m256i *)(b + 64 * h + 32 * (s % 2))), 4 * (s / 2), 15);
            __m256i hi = _mm256_slli_epi16(shr_mask(_mm256_loadu_si256((const __m256i *)(b + 128 + 32 * h)), 2 * s, 3), 4);
            u->q[k] = _mm256_sub_epi8(_mm256_or_si256(lo, hi), _mm256_set1_epi8(32));
        }
        for (int g = 0; g < 16; g++) u->d[g] = d * (float)sc[g], u->m[g] = 0;
        return 8;
    }
    default: return 0;
    }
}

/* Sums of x over each run of 16 elements: xs (n / 16). */
AVX2_INLINE void sums16(float *xs, const float *x, int n) {
    for (int g = 0; g < n / 16; g++) xs[g] = hsum256(_mm256_add_ps(_mm256_loadu_ps(x + 16 * g), _mm256_loadu_ps(x + 16 * g + 8)));
}

AVX2_INLINE __m256 cvt8(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)); }

/* The activation row quantised per 32 elements as llama.cpp's Q8_0 does: qx (cols) int8 =
 * round(x / dx), dx (cols / 32) = max |x| / 127 over the 32. */
AVX2_INLINE void quantize_x(int8_t *qx, float *dx, const float *x, int cols) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int b = 0; b < cols / 32; b++) {
        const float *xb = x + 32 * b;
        __m256 v[4], amax = _mm256_setzero_ps();
        for (int i = 0; i < 4; i++) v[i] = _mm256_loadu_ps(xb + 8 * i), amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[i]));
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_movehdup_ps(m));
        const float mx = _mm_cvtss_f32(m);
        dx[b] = mx / 127.0f;
        const __m256 id = _mm256_set1_ps(mx > 0 ? 127.0f / mx : 0.0f);
        __m256i q[4];
        for (int i = 0; i < 4; i++) q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], id));
        /* packing works per 128-bit lane; the permutation restores element order */
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        _mm256_storeu_si256((__m256i *)(qx + 32 * b), _mm256_permutevar8x32_epi32(p, order));
    }
}

/* Decode products for the block types: integer dot products of the unpacked weights with the
 * activation row quantised to int8 per 32 (as llama.cpp does), scaled in float32; the minima
 * use exact float sums of x. One maddubs covers 32 products where widening to float took
 * eight instructions; the cost is the activation's rounding, at most dx / 2 per element
 * (tests/test_kernels.c checks products against that bound). The sign trick makes the
 * weights the unsigned operand: |q| * (sign(q) x); |q| <= 127, so no pair saturates. */
/* Sum of the int8 products of slice q with activations xq, as 8 int32 lanes converted to
 * float (lanes 0-3: elements 0-15, lanes 4-7: elements 16-31). */
AVX2_INLINE __m256 slice_dot_i8(__m256i q, __m256i xq) {
    const __m256i prod = _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(xq, q));
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(prod, _mm256_set1_epi16(1)));
}

/* One scale for all 32 elements of a slice (every type but Q2_K, Q3_K, Q6_K). */
static inline int one_scale(pt_dtype t) { return t != PT_Q2_K && t != PT_Q3_K && t != PT_Q6_K; }

/* acc += slice k of u against activation slice s; the minimum's share goes to *msum. */
AVX2_INLINE __m256 slice_step(__m256 acc, float *msum, const unpacked *u, int k, int s, pt_dtype t, const int8_t *qx,
                              const float *dx, const float *xs) {
    const __m256 f = slice_dot_i8(u->q[k], _mm256_loadu_si256((const __m256i *)(qx + 32 * s)));
    if (one_scale(t)) {
        if (has_min(t)) *msum += u->m[2 * k] * xs[s];
        return _mm256_fmadd_ps(f, _mm256_set1_ps(u->d[2 * k] * dx[s]), acc);
    }
    if (has_min(t)) *msum += u->m[2 * k] * xs[2 * s] + u->m[2 * k + 1] * xs[2 * s + 1];
    const __m256 sc = _mm256_mul_ps(_mm256_setr_m128(_mm_set1_ps(u->d[2 * k]), _mm_set1_ps(u->d[2 * k + 1])), _mm256_set1_ps(dx[s]));
    return _mm256_fmadd_ps(f, sc, acc);
}

AVX2_INLINE void rows_blocks_i8(float *out, const uint8_t *w, size_t rb, pt_dtype t, const float *x, int nr, int cols) {
    const int block = pt_dtype_block(t), nb = cols / block, mins = has_min(t);
    const size_t bytes = pt_dtype_block_bytes(t);
    int8_t qx[cols];                /* (cols) */
    float dx[cols / 32];            /* (cols / 32) */
    float xs[mins ? cols / 16 : 1]; /* (cols / 16), then (cols / 32) pairwise sums for one-scale types */
    quantize_x(qx, dx, x, cols);
    if (mins) {
        sums16(xs, x, cols);
        if (one_scale(t))
            for (int s = 0; s < cols / 32; s++) xs[s] = xs[2 * s] + xs[2 * s + 1];
    }
    for (int r = 0; r < nr; r++) {
        const uint8_t *p = w + (size_t)r * rb;
        __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0; /* two chains of FMAs */
        float m0 = 0, m1 = 0;
        unpacked u, v;
        if (block == 32) { /* two blocks per step */
            int b = 0;
            for (; b + 2 <= nb; b += 2, p += 2 * bytes) {
                unpack(&u, p, t);
                unpack(&v, p + bytes, t);
                acc0 = slice_step(acc0, &m0, &u, 0, b, t, qx, dx, xs);
                acc1 = slice_step(acc1, &m1, &v, 0, b + 1, t, qx, dx, xs);
            }
            if (b < nb) {
                unpack(&u, p, t);
                acc0 = slice_step(acc0, &m0, &u, 0, b, t, qx, dx, xs);
            }
        } else { /* eight slices per super-block, two per step */
            for (int b = 0; b < nb; b++, p += bytes) {
                unpack(&u, p, t);
                for (int k = 0; k < 8; k += 2) {
                    acc0 = slice_step(acc0, &m0, &u, k, 8 * b + k, t, qx, dx, xs);
                    acc1 = slice_step(acc1, &m1, &u, k + 1, 8 * b + k + 1, t, qx, dx, xs);
                }
            }
        }
        out[r] = hsum256(_mm256_add_ps(acc0, acc1)) + (m0 + m1);
    }
}

/* Exact: d * q, then + m where the type has a minimum (no fused multiply-add). */
AVX2_INLINE void dequant_blocks_avx2(float *dst, const uint8_t *src, size_t rb, pt_dtype t, int nr, int cols) {
    const int block = pt_dtype_block(t), nb = cols / block, mins = has_min(t);
    const size_t bytes = pt_dtype_block_bytes(t);
    for (int r = 0; r < nr; r++) {
        const uint8_t *p = src + (size_t)r * rb;
        float *y = dst + (size_t)r * cols;
        for (int b = 0; b < nb; b++, p += bytes) {
            unpacked u;
            const int ns = unpack(&u, p, t);
            for (int k = 0; k < ns; k++, y += 32) {
                const __m128i lo = _mm256_castsi256_si128(u.q[k]), hi = _mm256_extracti128_si256(u.q[k], 1);
                const __m128i part[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
                for (int i = 0; i < 4; i++) {
                    __m256 v = _mm256_mul_ps(_mm256_set1_ps(u.d[2 * k + i / 2]), cvt8(part[i]));
                    if (mins) v = _mm256_add_ps(v, _mm256_set1_ps(u.m[2 * k + i / 2]));
                    _mm256_storeu_ps(y + 8 * i, v);
                }
            }
        }
    }
}

/* One function per type, so that unpack's switch folds away. */
#define DEFINE_TYPE(T)                                                                                                    \
    AVX2 static void rows_##T##_i8(float *o, const uint8_t *w, size_t rb, const float *x, int nr, int c) {                \
        rows_blocks_i8(o, w, rb, PT_##T, x, nr, c);                                                                       \
    }                                                                                                                     \
    AVX2 static void dequant_##T##_avx2(float *d, const uint8_t *s, size_t rb, int nr, int c) {                           \
        dequant_blocks_avx2(d, s, rb, PT_##T, nr, c);                                                                     \
    }
DEFINE_TYPE(Q4_1)
DEFINE_TYPE(Q5_0)
DEFINE_TYPE(Q5_1)
DEFINE_TYPE(Q2_K)
DEFINE_TYPE(Q3_K)
DEFINE_TYPE(Q4_K)
DEFINE_TYPE(Q5_K)
DEFINE_TYPE(Q6_K)
DEFINE_TYPE(IQ4_NL)

typedef void (*rows_fn)(float *, const uint8_t *, size_t, const float *, int, int);
typedef void (*dequant_fn)(float *, const uint8_t *, size_t, int, int);
/* AVX-512 CPUs run the AVX2 code for these types: same results on every x86 machine. */
#define ENTRY(T) [PT_##T] = {rows_##T##_i8, dequant_##T##_avx2}
static const struct {
    rows_fn rows;
    dequant_fn dequant;
} block_kernels[PT_DTYPE_COUNT] = {ENTRY(Q4_1), ENTRY(Q5_0), ENTRY(Q5_1), ENTRY(Q2_K), ENTRY(Q3_K),
                                   ENTRY(Q4_K), ENTRY(Q5_K), ENTRY(Q6_K), ENTRY(IQ4_NL)};
#endif

/* ---- dispatch ------------------------------------------------------------------------- */

enum { K_GENERIC, K_AVX2, K_AVX512 };
static int level = -1;
static int cap = K_AVX512; /* pt_kern_limit */

pt_status pt_kern_limit(const char *name) {
    static const char *names[] = {"generic", "avx2", "avx512"};
    for (int k = K_GENERIC; k <= K_AVX512; k++)
        if (!strcmp(name, names[k])) {
            cap = k;
            level = -1;
            return PT_OK;
        }
    return pt_error(PT_ERR_ARG, "kernels '%s': expected generic, avx2 or avx512", name);
}

static int pick(void) {
    int v = level;
    if (v >= 0) return v;
    v = K_GENERIC;
#if HAVE_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) v = K_AVX2;
    if (v == K_AVX2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        v = K_AVX512;
    v = v < cap ? v : cap;
#endif
    level = v; /* every thread computes the same value, so the race is benign */
    return v;
}

const char *pt_kern_name(void) {
    static const char *names[] = {"generic", "avx2", "avx512"};
    return names[pick()];
}

void pt_kern_dot_rows(float *out, const uint8_t *w, size_t row_bytes, pt_dtype dtype, const float *x, int nr, int cols) {
#if HAVE_X86
    int k = pick();
    /* the int8 kernels keep the quantised activation row on the stack: 1.3 bytes per column */
    if (block_kernels[dtype].rows) {
        if (k >= K_AVX2 && cols <= (1 << 17)) block_kernels[dtype].rows(out, w, row_bytes, x, nr, cols);
        else dot_rows_c(out, w, row_bytes, dtype, x, nr, cols);
        return;
    }
    if (k == K_AVX512) {
        if (dtype == PT_F32) rows_f32_avx512(out, w, row_bytes, x, nr, cols);
        else if (dtype == PT_Q8_0) rows_q8_0_avx512(out, w, row_bytes, x, nr, cols);
        else rows_q4_0_avx512(out, w, row_bytes, x, nr, cols);
        return;
    }
    if (k == K_AVX2) {
        if (dtype == PT_F32) rows_f32_avx2(out, w, row_bytes, x, nr, cols);
        else if (dtype == PT_Q8_0) rows_q8_0_avx2(out, w, row_bytes, x, nr, cols);
        else rows_q4_0_avx2(out, w, row_bytes, x, nr, cols);
        return;
    }
#endif
    dot_rows_c(out, w, row_bytes, dtype, x, nr, cols);
}

void pt_kern_dequant_rows(float *dst, const uint8_t *src, size_t row_bytes, pt_dtype dtype, int nr, int cols) {
#if HAVE_X86
    if (pick() == K_AVX512 && (dtype == PT_Q8_0 || dtype == PT_Q4_0)) {
        dequant_rows_avx512(dst, src, row_bytes, dtype, nr, cols);
        return;
    }
    if (pick() >= K_AVX2 && (dtype == PT_Q8_0 || dtype == PT_Q4_0)) {
        (dtype == PT_Q8_0 ? dequant_q8_0_avx2 : dequant_q4_0_avx2)(dst, src, row_bytes, nr, cols);
        return;
    }
    if (pick() >= K_AVX2 && block_kernels[dtype].dequant) {
        block_kernels[dtype].dequant(dst, src, row_bytes, nr, cols);
        return;
    }
#endif
    dequant_rows_c(dst, src, row_bytes, dtype, nr, cols);
}

float pt_kern_exp_sum(float *x, int n, float shift) {
#if HAVE_X86
    if (pick() == K_AVX512) return exp_sum_avx512(x, n, shift);
#endif
    return exp_sum_c(x, n, shift);
}

float pt_kern_max(const float *x, int n) {
#if HAVE_X86
    if (pick() == K_AVX512) return max_avx512(x, n);
#endif
    return max_c(x, n);
}

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static void blas_single(void) { openblas_set_num_threads(1); }
void pt_kern_blas_init(void) { pthread_once(&blas_once, blas_single); }
