/* CPU matrix products: BLAS for batches, threaded row-dot kernels for single rows. */
#include "backend/cpu/matmul.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

void openblas_set_num_threads(int n);

static int n_threads = 0;

void pt_backend_set_threads(int n) {
    if (n <= 0) n = omp_get_num_procs();
    n_threads = n;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int pt_backend_threads(void) { return n_threads > 0 ? n_threads : omp_get_max_threads(); }

void pt_sgemm_nt(float *C, const float *A, const float *B, int m, int n, int k, int accumulate) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, A, k, B, k, accumulate ? 1.0f : 0.0f, C, n);
}

static inline float dot_f32(const float *restrict a, const float *restrict b, int n) {
    /* 8 partial sums let the compiler keep several vector accumulators in flight */
    float s[16] = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) s[j] += a[i + j] * b[i + j];
    float t = 0;
    for (; i < n; i++) t += a[i] * b[i];
    for (int j = 0; j < 16; j++) t += s[j];
    return t;
}

static inline float dot_q8_0(const uint8_t *restrict blk, const float *restrict x, int n) {
    float t = 0;
    for (int b = 0; b < n / 32; b++, blk += 34, x += 32) {
        uint16_t h;
        memcpy(&h, blk, 2);
        const int8_t *q = (const int8_t *)(blk + 2);
        float s[16] = {0};
        for (int j = 0; j < 16; j++) s[j] = (float)q[j] * x[j] + (float)q[j + 16] * x[j + 16];
        float u = 0;
        for (int j = 0; j < 16; j++) u += s[j];
        t += pt_f16_to_f32(h) * u;
    }
    return t;
}

static inline float dot_q4_0(const uint8_t *restrict blk, const float *restrict x, int n) {
    float t = 0;
    for (int b = 0; b < n / 32; b++, blk += 18, x += 32) {
        uint16_t h;
        memcpy(&h, blk, 2);
        const uint8_t *q = blk + 2;
        float s[16];
        for (int j = 0; j < 16; j++) s[j] = (float)((q[j] & 15) - 8) * x[j] + (float)((q[j] >> 4) - 8) * x[j + 16];
        float u = 0;
        for (int j = 0; j < 16; j++) u += s[j];
        t += pt_f16_to_f32(h) * u;
    }
    return t;
}

/* Single-row (or few-row) product: each thread takes a contiguous band of weight rows so
 * every weight byte is read once per input row. */
static void matvec(float *out, const float *in, const pt_weight *W, const float *bias, int n, int accumulate) {
    const int rows = W->rows, cols = W->cols;
    size_t row_bytes = pt_dtype_nbytes(W->dtype, cols);
    const uint8_t *base = W->data;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        const uint8_t *w = base + (size_t)r * row_bytes;
        for (int i = 0; i < n; i++) {
            const float *x = in + (size_t)i * cols;
            float v;
            switch (W->dtype) {
            case PT_F32: v = dot_f32((const float *)w, x, cols); break;
            case PT_Q8_0: v = dot_q8_0(w, x, cols); break;
            default: v = dot_q4_0(w, x, cols); break;
            }
            if (bias) v += bias[r];
            float *o = out + (size_t)i * rows + r;
            *o = accumulate ? *o + v : v;
        }
    }
}

#define TILE_ROWS 256
#define SMALL_BATCH 4

void pt_matmul(float *out, const float *in, const pt_weight *W, const float *bias, int n, int accumulate) {
    const int rows = W->rows, cols = W->cols;
    if (n <= SMALL_BATCH) { matvec(out, in, W, bias, n, accumulate); return; }
    if (W->dtype == PT_F32) {
        pt_sgemm_nt(out, in, W->data, n, rows, cols, accumulate);
    } else {
        /* dequantise a band of rows, multiply it into the matching output columns */
        size_t row_bytes = pt_dtype_nbytes(W->dtype, cols);
        float *tile = malloc(sizeof(float) * TILE_ROWS * cols);
        PT_ASSERT(tile);
        for (int r0 = 0; r0 < rows; r0 += TILE_ROWS) {
            int nr = rows - r0 < TILE_ROWS ? rows - r0 : TILE_ROWS;
#pragma omp parallel for schedule(static)
            for (int r = 0; r < nr; r++)
                pt_dtype_to_f32(tile + (size_t)r * cols, (const uint8_t *)W->data + (size_t)(r0 + r) * row_bytes, W->dtype, cols);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, nr, cols, 1.0f, in, cols, tile, cols,
                        accumulate ? 1.0f : 0.0f, out + r0, rows);
        }
        free(tile);
    }
    if (bias)
        for (int i = 0; i < n; i++)
            for (int r = 0; r < rows; r++) out[(size_t)i * rows + r] += bias[r];
}
