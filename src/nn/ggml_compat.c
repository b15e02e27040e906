/* llama.cpp's CPU rounding for the engine's `llamacpp` numerics mode (see ggml_compat.h and
 * docs/numerics.md for what is rounded where, and why the mode is opt-in).
 *
 * The facts followed, from ggml's CPU backend (ggml-cpu/arch/x86/quants.c, ops.cpp, as built
 * by llama-cpp-python 0.3.36 on an AVX2 CPU):
 *   - an activation block of 32 is quantised with amax = max |x|, d = amax / 127 (stored as
 *     f16), multiplier 127 / amax (not 1 / d), and round-to-nearest-even (the SIMD
 *     quantisers' _mm256_round_ps; the scalar reference's roundf would round ties away from
 *     zero). A Q8_1 block's s is f16(d * sum of its int8s) with the float d, before d's own
 *     rounding to f16;
 *   - a Q4_1 . Q8_1 product is sum over blocks of d_w d_x isum + m_w s_x, a Q8_0-type one
 *     sum of d_w d_x isum; the AVX2 kernels keep eight float lanes, lane j accumulating (by
 *     FMA) the integer sums of elements 4j..4j+3 of every block, and add the lanes as
 *     ((l0+l4)+(l2+l6))+((l1+l5)+(l3+l7)). Q4_1 and Q8_0 (SmolLM2's types) follow that
 *     order here, bit for bit; the other block types sum d_w d_x isum block by block;
 *   - f16 conversions round to nearest even (F16C).
 * Everything is written for this file; nothing is copied from ggml. */
#include "nn/ggml_compat.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX2__) || defined(__F16C__)
#include <immintrin.h>
#endif

#include "backend/cpu/matmul.h"
#include "backend/cpu/pool.h"

int pt_ggml_supported(pt_dtype t) {
    switch (t) {
    case PT_F32: case PT_F16: case PT_BF16: case PT_Q8_0: case PT_Q4_0: case PT_Q4_1: case PT_Q5_0: case PT_Q5_1: case PT_IQ4_NL:
        return 1;
    default:
        return 0;
    }
}

const char *pt_ggml_supported_names(void) { return "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL"; }

void pt_ggml_round_f16(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = pt_f16_to_f32(pt_f32_to_f16(x[i]));
}

static inline float load_f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
#ifdef __F16C__
    return _cvtsh_ss(h); /* exact, like the portable conversion, and inline */
#else
    return pt_f16_to_f32(h);
#endif
}

/* ---- activations ------------------------------------------------------------------------ */

/* One block of 32 activations as Q8_0 / Q8_1: the int8s, d as stored (f16, widened) and s
 * (Q8_1 only, f16 widened). */
typedef struct {
    float d, s;
    int8_t q[32];
} act_block;

static void quantize_block(act_block *b, const float *x) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
    const float d = amax / 127.0f, mul = amax != 0.0f ? 127.0f / amax : 0.0f;
    int sum = 0;
    for (int j = 0; j < 32; j++) {
        int v = (int)nearbyintf(x[j] * mul); /* the default rounding mode: nearest, ties to even */
        b->q[j] = (int8_t)v;
        sum += v;
    }
    b->d = pt_f16_to_f32(pt_f32_to_f16(d));
    b->s = pt_f16_to_f32(pt_f32_to_f16(d * (float)sum));
}

/* Integer sums of 4 consecutive products (the kernels' eight lanes) of a 32-element block:
 * lane[j] = sum_{k<4} w[4j+k] * y[4j+k]. */
static void lane_sums(int32_t lane[8], const int8_t *w, const int8_t *y) {
    for (int j = 0; j < 8; j++) {
        int32_t s = 0;
        for (int k = 0; k < 4; k++) s += (int32_t)w[4 * j + k] * y[4 * j + k];
        lane[j] = s;
    }
}

static float hsum_lanes(const float a[8]) { return ((a[4] + a[0]) + (a[6] + a[2])) + ((a[5] + a[1]) + (a[7] + a[3])); }

/* The 32 weights of a block as integers (before scale and minimum). */
static void unpack_block(int8_t *w, const uint8_t *blk, pt_dtype t) {
    switch (t) {
    case PT_Q8_0: memcpy(w, blk + 2, 32); break;
    case PT_Q4_0:
        for (int j = 0; j < 16; j++) w[j] = (int8_t)((blk[2 + j] & 15) - 8), w[j + 16] = (int8_t)((blk[2 + j] >> 4) - 8);
        break;
    case PT_Q4_1:
        for (int j = 0; j < 16; j++) w[j] = (int8_t)(blk[4 + j] & 15), w[j + 16] = (int8_t)(blk[4 + j] >> 4);
        break;
    case PT_IQ4_NL:
        for (int j = 0; j < 16; j++) w[j] = pt_iq4nl_values[blk[2 + j] & 15], w[j + 16] = pt_iq4nl_values[blk[2 + j] >> 4];
        break;
    case PT_Q5_0: case PT_Q5_1: {
        const int off = t == PT_Q5_0 ? 2 : 4, bias = t == PT_Q5_0 ? 16 : 0;
        uint32_t qh;
        memcpy(&qh, blk + off, 4);
        const uint8_t *qs = blk + off + 4;
        for (int j = 0; j < 16; j++) {
            w[j] = (int8_t)(((qs[j] & 15) | (((qh >> j) & 1) << 4)) - bias);
            w[j + 16] = (int8_t)(((qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - bias);
        }
        break;
    }
    default: break;
    }
}

/* ---- one weight row against one activation row ----------------------------------------- */

/* Q4_1 . Q8_1 and Q8_0 . Q8_0 in the AVX2 kernels' lane order (see the top of the file). */
static float dot_lanes(const uint8_t *row, pt_dtype t, const act_block *y, int nb) {
    const size_t bb = pt_dtype_block_bytes(t);
    float acc[8] = {0}, summs = 0.0f;
    for (int b = 0; b < nb; b++, row += bb) {
        int8_t w[32];
        int32_t lane[8];
        unpack_block(w, row, t);
        lane_sums(lane, w, y[b].q);
        const float dd = load_f16(row) * y[b].d;
        for (int j = 0; j < 8; j++) acc[j] = fmaf(dd, (float)lane[j], acc[j]);
        if (t == PT_Q4_1) summs = fmaf(load_f16(row + 2), y[b].s, summs); /* ggml's build contracts this to an FMA */
    }
    return hsum_lanes(acc) + summs;
}

#ifdef __AVX2__
/* The same sums with AVX2: the integer lanes are exact, and each FMA and the final additions
 * are the float operations dot_lanes performs, in its order. */
static float dot_lanes_avx2(const uint8_t *row, pt_dtype t, const act_block *y, int nb) {
    const size_t bb = pt_dtype_block_bytes(t);
    const __m256i ones = _mm256_set1_epi16(1), low = _mm256_set1_epi8(15);
    __m256 acc = _mm256_setzero_ps();
    float summs = 0.0f;
    for (int b = 0; b < nb; b++, row += bb) {
        const __m256i yq = _mm256_loadu_si256((const __m256i *)y[b].q);
        __m256i p16;
        if (t == PT_Q4_1) {
            __m128i raw = _mm_loadu_si128((const __m128i *)(row + 4));
            __m256i w = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), low); /* unsigned 0..15 */
            p16 = _mm256_maddubs_epi16(w, yq);
        } else { /* Q8_0: |w| times y carrying w's sign */
            __m256i w = _mm256_loadu_si256((const __m256i *)(row + 2));
            p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(yq, w));
        }
        const __m256 lanes = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(load_f16(row) * y[b].d), lanes, acc);
        if (t == PT_Q4_1) summs = fmaf(load_f16(row + 2), y[b].s, summs);
    }
    float a[8];
    _mm256_storeu_ps(a, acc);
    return hsum_lanes(a) + summs;
}
#endif

/* The other block types: d_w d_x isum (+ m_w s_x) block by block. */
static float dot_blocks(const uint8_t *row, pt_dtype t, const act_block *y, int nb) {
    const size_t bb = pt_dtype_block_bytes(t);
    float acc = 0.0f, summs = 0.0f;
    for (int b = 0; b < nb; b++, row += bb) {
        int8_t w[32];
        unpack_block(w, row, t);
        int32_t isum = 0;
        for (int j = 0; j < 32; j++) isum += (int32_t)w[j] * y[b].q[j];
        acc += load_f16(row) * y[b].d * (float)isum;
        if (t == PT_Q5_1) summs += load_f16(row + 2) * y[b].s;
    }
    return acc + summs;
}

/* A float weight row (F32, or F16 / BF16 widened on the fly) against float activations that
 * already hold the vec_dot type's values. */
static float dot_plain(const uint8_t *row, pt_dtype t, const float *x, int n) {
    float acc = 0.0f;
    for (int i = 0; i < n; i++) {
        uint16_t h;
        float w;
        if (t == PT_F32) memcpy(&w, row + 4 * (size_t)i, 4);
        else {
            memcpy(&h, row + 2 * (size_t)i, 2);
            w = t == PT_F16 ? pt_f16_to_f32(h) : pt_bf16_to_f32(h);
        }
        acc += w * x[i];
    }
    return acc;
}

/* ---- the product ------------------------------------------------------------------------- */

typedef struct {
    float *y;
    const pt_weight *W;
    const float *bias;
    int n, accumulate, nb;
    size_t row_bytes;
    const act_block *qx; /* (n, nb) for the block types */
    const float *fx;     /* (n, cols) for the float types */
} mm_job;

#define ROWS_PER_ITEM 16

static void mm_item(void *arg, int item) {
    const mm_job *j = arg;
    const pt_weight *W = j->W;
    const int r0 = item * ROWS_PER_ITEM, r1 = r0 + ROWS_PER_ITEM < W->rows ? r0 + ROWS_PER_ITEM : W->rows;
    const pt_dtype t = W->dtype;
    for (int r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)W->data + (size_t)r * j->row_bytes;
        for (int i = 0; i < j->n; i++) {
            float v;
            if (!pt_dtype_is_quant(t)) v = dot_plain(row, t, j->fx + (size_t)i * W->cols, W->cols);
            else if (t == PT_Q4_1 || t == PT_Q8_0) {
#ifdef __AVX2__
                v = dot_lanes_avx2(row, t, j->qx + (size_t)i * j->nb, j->nb);
#else
                v = dot_lanes(row, t, j->qx + (size_t)i * j->nb, j->nb);
#endif
            } else v = dot_blocks(row, t, j->qx + (size_t)i * j->nb, j->nb);
            if (j->bias) v += j->bias[r];
            float *dst = j->y + (size_t)i * W->rows + r;
            *dst = j->accumulate ? *dst + v : v;
        }
    }
}

pt_status pt_ggml_matmul(float *y, const float *x, const pt_weight *W, const float *bias, int n, int accumulate) {
    if (!pt_ggml_supported(W->dtype))
        return pt_error(PT_ERR_ARG, "llama.cpp numerics: weights of type %s are not emulated (only %s)", pt_dtype_name(W->dtype),
                        pt_ggml_supported_names());
    const int cols = W->cols, quant = pt_dtype_is_quant(W->dtype), nb = cols / 32;
    mm_job j = {y, W, bias, n, accumulate, nb, pt_dtype_nbytes(W->dtype, cols), NULL, NULL};
    void *scratch = quant ? malloc(sizeof(act_block) * (size_t)n * nb + 1) : malloc(sizeof(float) * (size_t)n * cols + 1);
    if (!scratch) return pt_error(PT_ERR_OOM, "llama.cpp numerics: out of memory for %d x %d rounded activations", n, cols);
    if (quant) { /* (n, nb) */
        act_block *qx = scratch;
        for (size_t b = 0; b < (size_t)n * nb; b++) quantize_block(qx + b, x + b * 32);
        j.qx = qx;
    } else { /* (n, cols): F16 / BF16 weights see their own type's rounding of x */
        float *fx = scratch;
        for (size_t i = 0; i < (size_t)n * cols; i++)
            fx[i] = W->dtype == PT_F16 ? pt_f16_to_f32(pt_f32_to_f16(x[i]))
                  : W->dtype == PT_BF16 ? pt_bf16_to_f32(pt_f32_to_bf16(x[i])) : x[i];
        j.fx = fx;
    }
    const int items = (W->rows + ROWS_PER_ITEM - 1) / ROWS_PER_ITEM;
    pt_pool_run(items, mm_item, &j, pt_backend_threads());
    free(scratch);
    return PT_OK;
}

float pt_ggml_dot_for_test(const void *row, pt_dtype t, const float *x, int cols, int simd) {
    if (!pt_dtype_is_quant(t)) return dot_plain(row, t, x, cols);
    act_block qx[64];
    const int nb = cols / 32 < 64 ? cols / 32 : 64;
    for (int b = 0; b < nb; b++) quantize_block(qx + b, x + 32 * b);
    if (t != PT_Q4_1 && t != PT_Q8_0) return dot_blocks(row, t, qx, nb);
#ifdef __AVX2__
    if (simd) return dot_lanes_avx2(row, t, qx, nb);
#endif
    return dot_lanes(row, t, qx, nb);
}

/* ---- the element-wise operations --------------------------------------------------------- */

static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* One lane of ggml's vectorised exp (ggml_v_expf, AVX2): e^x = 2^n (1 + p(b)) with n the
 * nearest integer to x / ln 2 (by the 1.5 * 2^23 shifter), b = x - n ln 2 in two parts, p a
 * degree-5 polynomial, and the scale built in the exponent bits, split in two factors where
 * |n| > 126 so that neither overflows. Within an ulp or two of expf, but not equal to it, and
 * the softmax and SiLU round what follows from it: so the same operations, in the same order. */
static float v_expf(float x) {
    const float shifter = 0x1.8p23f;
    const float z = fmaf(x, 0x1.715476p+0f, shifter), n = z - shifter;
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    const uint32_t e = f2u(z) << 23;
    const float k = u2f(e + f2u(1.0f)), u = b * b;
    const float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)), u,
                         0x1.ffffecp-1f * b);
    if (!(fabsf(n) > 126.0f)) return fmaf(k, j, k);
    const uint32_t g = n <= 0.0f ? 0x82000000u : 0u;
    const float s1 = u2f(g + 0x7f000000u), s2 = u2f(e - g);
    if (fabsf(n) > 192.0f) return s1 * s1;
    return fmaf(s2, j, s2) * s1;
}

void pt_ggml_swiglu(float *h, const float *gate, const float *up, int n_rows, int dim) {
    for (int r = 0; r < n_rows; r++) {
        const float *g = gate + (size_t)r * dim, *u = up + (size_t)r * dim;
        float *o = h + (size_t)r * dim;
        int i = 0;
        for (; i + 7 < dim; i++) o[i] = g[i] / (1.0f + v_expf(0.0f - g[i])) * u[i]; /* the 8-wide loop */
        for (; i < dim; i++) o[i] = g[i] / (1.0f + expf(-g[i])) * u[i];             /* its scalar tail */
    }
}

void pt_ggml_rmsnorm(float *out, const float *in, const float *w, int n, int dim, float eps) {
    for (int r = 0; r < n; r++) {
        const float *x = in + (size_t)r * dim;
        float *y = out + (size_t)r * dim;
        double sum = 0.0;
        for (int i = 0; i < dim; i++) sum += (double)(x[i] * x[i]);
        const float mean = (float)(sum / dim), scale = 1.0f / sqrtf(mean + eps);
        for (int i = 0; i < dim; i++) y[i] = x[i] * scale * w[i]; /* rms_norm, then the mul by the weight */
    }
}

void pt_ggml_rope(float *x, const int *pos, int n, int n_heads, int hd, float freq_base) {
    const float theta_scale = powf(freq_base, -2.0f / (float)hd);
    float cs[256], sn[256]; /* (hd / 2) */
    for (int t = 0; t < n; t++) {
        float theta = (float)pos[t];
        for (int i = 0; i < hd / 2; i++) { /* theta_i = p * scale^i, multiplied up in float */
            cs[i] = cosf(theta);
            sn[i] = sinf(theta);
            theta *= theta_scale;
        }
        for (int h = 0; h < n_heads; h++) {
            float *v = x + ((size_t)t * n_heads + h) * hd;
            for (int i = 0; i < hd / 2; i++) {
                const float x0 = v[i], x1 = v[i + hd / 2];
                /* x0 cos - x1 sin and x0 sin + x1 cos, the first product fused as ggml's build does */
                v[i] = fmaf(x0, cs[i], -(x1 * sn[i]));
                v[i + hd / 2] = fmaf(x0, sn[i], x1 * cs[i]);
            }
        }
    }
}

/* ---- attention ----------------------------------------------------------------------------- */

/* ggml_vec_dot_f16's sum on AVX2: four accumulators of eight lanes over steps of 32, element
 * e of a step in accumulator e / 8, lane e % 8; then acc0 += acc2, acc1 += acc3, acc0 +=
 * acc1, the lanes added as ((l0+l4)+(l1+l5)) + ((l2+l6)+(l3+l7)), the rest in double. The
 * products are exact (f16 by f16). a(e), b(e): the operands of element e. */
typedef struct {
    float acc[4][8];
    int tiled; /* the prompt's (several rows') order instead, see below */
} f16_dot;

/* With two or more query rows (a prompt) ggml hands both attention products to llamafile's
 * tinyBLAS instead: one accumulator of eight lanes, element e in lane e % 8, the lanes added
 * as ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)). */
static void f16_dot_start(f16_dot *d, int tiled) {
    memset(d, 0, sizeof *d);
    d->tiled = tiled;
}
static inline void f16_dot_add(f16_dot *d, int e, float a, float b) {
    float *acc = d->tiled ? &d->acc[0][e & 7] : &d->acc[(e >> 3) & 3][e & 7];
    *acc = fmaf(a, b, *acc);
}
static float f16_dot_end(f16_dot *d) {
    if (d->tiled) return hsum_lanes(d->acc[0]);
    float l[8];
    for (int k = 0; k < 8; k++) l[k] = (d->acc[0][k] + d->acc[2][k]) + (d->acc[1][k] + d->acc[3][k]);
    float t[4];
    for (int k = 0; k < 4; k++) t[k] = l[k] + l[k + 4];
    return (float)(double)((t[0] + t[1]) + (t[2] + t[3]));
}

typedef struct {
    float *out;
    const float *q, *k, *v;
    const int *pos;
    int n_heads, n_kv_heads, hd, interleaved, tiled;
    float scale;
    int failed;
} attn_job;

/* Item: one query row's one head, as ggml's decode step computes it. */
static void attn_item(void *arg, int item) {
    attn_job *j = arg;
    const int t = item / j->n_heads, h = item % j->n_heads, hd = j->hd, L = j->pos[t] + 1;
    const int kvh = h / (j->n_heads / j->n_kv_heads), kv_dim = j->n_kv_heads * hd;
    const int Lpad = (L + 31) & ~31; /* llama.cpp's padded cache view: zero weights past L */
    float *p = malloc(sizeof(float) * ((size_t)Lpad + 2 * hd)); /* (Lpad) weights, (hd) f16 query, (hd) element order */
    if (!p) { j->failed = 1; return; }
    float *q16 = p + Lpad;
    int *order = (int *)(q16 + hd);
    /* element e of llama.cpp's head vector is politune's order[e]: GGUF llama files keep Q and
     * K rows in Meta's interleaved rotary order, which politune's loader undoes */
    for (int e = 0; e < hd; e++) order[e] = j->interleaved ? (e >> 1) + (e & 1) * (hd / 2) : e;
    const float *qrow = j->q + ((size_t)t * j->n_heads + h) * hd;
    for (int d = 0; d < hd; d++) q16[d] = pt_f16_to_f32(pt_f32_to_f16(qrow[d]));
    float mx = -INFINITY;
    for (int s = 0; s < L; s++) {
        const float *krow = j->k + (size_t)s * kv_dim + (size_t)kvh * hd;
        f16_dot dot;
        f16_dot_start(&dot, j->tiled);
        for (int e = 0; e < (j->tiled ? hd : hd & ~31); e++) f16_dot_add(&dot, e, krow[order[e]], q16[order[e]]);
        double rest = 0.0;
        for (int e = j->tiled ? hd : hd & ~31; e < hd; e++) rest += (double)(krow[order[e]] * q16[order[e]]);
        float kq = (float)((double)f16_dot_end(&dot) + rest);
        p[s] = kq * j->scale; /* soft_max_ext: scale, then the mask (+0 where seen) */
        mx = fmaxf(mx, p[s]);
    }
    /* the exponentials eight at a time, each group summed ((l0+l4)+(l2+l6))+((l1+l5)+(l3+l7)) into a double */
    for (int s = L; s < Lpad; s++) p[s] = 0.0f;
    double sum = 0.0;
    for (int s0 = 0; s0 < L; s0 += 8) {
        float l[8];
        for (int k = 0; k < 8; k++) l[k] = s0 + k < L ? v_expf(p[s0 + k] - mx) : 0.0f;
        for (int k = 0; k < 8; k++) p[s0 + k] = l[k];
        sum += (double)hsum_lanes(l);
    }
    const float inv = (float)(1.0 / sum);
    for (int s = 0; s < L; s++) p[s] = pt_f16_to_f32(pt_f32_to_f16(p[s] * inv)); /* the weights as f16 for V */
    float *o = j->out + ((size_t)t * j->n_heads + h) * hd;
    for (int d = 0; d < hd; d++) {
        f16_dot dot;
        f16_dot_start(&dot, j->tiled);
        for (int s = 0; s < L; s++) f16_dot_add(&dot, s, j->v[(size_t)s * kv_dim + (size_t)kvh * hd + d], p[s]);
        o[d] = f16_dot_end(&dot);
    }
    free(p);
}

pt_status pt_ggml_attention_forward(float *out, const float *q, const float *k_cache, const float *v_cache, const int *pos,
                                    int n_q, int n_heads, int n_kv_heads, int hd, int interleaved) {
    attn_job j = {out, q, k_cache, v_cache, pos, n_heads, n_kv_heads, hd, interleaved, n_q >= 2, 1.0f / sqrtf((float)hd), 0};
    pt_pool_run(n_q * n_heads, attn_item, &j, pt_backend_threads());
    if (j.failed) return pt_error(PT_ERR_OOM, "llama.cpp numerics: out of memory for attention scores");
    return PT_OK;
}
