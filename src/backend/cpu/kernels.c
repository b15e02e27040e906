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

static void dot_rows_c(float *out, const uint8_t *w, size_t rb, pt_dtype dtype, const float *x, int nr, int cols) {
    for (int r = 0; r < nr; r++, w += rb)
        out[r] = dtype == PT_F32 ? dot_f32_c((const float *)w, x, cols)
               : dtype == PT_Q8_0 ? dot_q8_0_c(w, x, cols) : dot_q4_0_c(w, x, cols);
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
