/* Kernel checks: quantised matrix products against float32 products of the dequantised
 * weights (both the single-row and the batched path), and the sampler's rules. */
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "internal.h"
#include "test.h"
#include "backend/cpu/kernels.h"
#include "util/rng.h"

void pt_test_random_blocks(uint8_t *dst, pt_dtype t, int64_t n, uint64_t seed, int small); /* test_quants.c */

static void check_matmul(pt_dtype type, int rows, int cols, int n) {
    pt_rng rng;
    pt_rng_seed(&rng, 42 + type * 7 + n);
    float *w = malloc(sizeof(float) * rows * cols), *x = malloc(sizeof(float) * n * cols), *bias = malloc(sizeof(float) * rows);
    for (int i = 0; i < rows * cols; i++) w[i] = pt_rng_float(&rng) * 2 - 1;
    for (int i = 0; i < n * cols; i++) x[i] = pt_rng_float(&rng) * 2 - 1;
    for (int i = 0; i < rows; i++) bias[i] = pt_rng_float(&rng);
    uint8_t *q = malloc(pt_dtype_nbytes(type, (int64_t)rows * cols));
    if (type == PT_Q8_0) pt_quantize_q8_0(q, w, (int64_t)rows * cols);
    else if (type == PT_Q4_0) pt_quantize_q4_0(q, w, (int64_t)rows * cols);
    else if (pt_dtype_is_quant(type)) pt_test_random_blocks(q, type, (int64_t)rows * cols, 7 + type, 1);
    else memcpy(q, w, sizeof(float) * rows * cols);
    float *deq = malloc(sizeof(float) * rows * cols);
    pt_dtype_to_f32(deq, q, type, (int64_t)rows * cols);
    /* reference: double-precision products of the dequantised weights */
    float *ref = malloc(sizeof(float) * n * rows), *got = malloc(sizeof(float) * n * rows);
    for (int i = 0; i < n; i++)
        for (int r = 0; r < rows; r++) {
            double s = bias[r];
            for (int c = 0; c < cols; c++) s += (double)deq[(size_t)r * cols + c] * x[(size_t)i * cols + c];
            ref[(size_t)i * rows + r] = (float)s;
        }
    pt_weight W = {type, rows, cols, q};
    pt_matmul(got, x, &W, bias, n, 0);
    /* The block types beyond Q8_0 / Q4_0 multiply single rows (n <= 4, the decode path) by an
     * int8 copy of x made per 32 elements: each element moves by at most max|x| / 254 over
     * its 32, so output r may move by sum_c |w_rc| max|x_block(c)| / 254 (1% added for the
     * float rounding of the scales); everything else stays within float32 rounding. */
    const int int8_x = pt_dtype_is_quant(type) && type != PT_Q8_0 && type != PT_Q4_0 && n <= 4 && strcmp(pt_kern_name(), "generic");
    double mx = 0, worst = 0;
    for (int i = 0; i < n * rows; i++) mx = fmax(mx, fabs(ref[i]));
    for (int i = 0; i < n; i++)
        for (int r = 0; r < rows; r++) {
            double bound = 1e-5 * mx;
            for (int c = 0; int8_x && c < cols; c++) {
                double amax = 0;
                for (int k = c / 32 * 32; k < c / 32 * 32 + 32; k++) amax = fmax(amax, fabs(x[(size_t)i * cols + k]));
                bound += 1.01 * fabs(deq[(size_t)r * cols + c]) * amax / 254;
            }
            double err = fabs((double)got[(size_t)i * rows + r] - ref[(size_t)i * rows + r]);
            CHECK_MSG(err <= bound, "%s matmul n=%d: output (%d, %d) is %.7g, expected %.7g (|diff| %.3g > bound %.3g)",
                      pt_dtype_name(type), n, i, r, got[(size_t)i * rows + r], ref[(size_t)i * rows + r], err, bound);
            if (err > bound) return;
            worst = fmax(worst, bound > 0 ? err / bound : 0);
        }
    /* accumulate adds onto what is there */
    float *first = malloc(sizeof(float) * n * rows);
    memcpy(first, got, sizeof(float) * n * rows);
    pt_matmul(got, x, &W, bias, n, 1);
    for (int i = 0; i < n * rows; i++) first[i] *= 2;
    char what[96];
    snprintf(what, sizeof what, "%s matmul accumulate n=%d", pt_dtype_name(type), n);
    fx_close(what, got, first, (int64_t)n * rows, 1e-6);
    free(first);
    free(w), free(x), free(bias), free(q), free(deq), free(ref), free(got);
}

PT_TEST(test_kernels_matmul_all_types) {
    pt_dtype types[] = {PT_F32, PT_Q8_0, PT_Q4_0, PT_Q4_1, PT_Q5_0, PT_Q5_1, PT_Q2_K, PT_Q3_K, PT_Q4_K, PT_Q5_K, PT_Q6_K, PT_IQ4_NL};
    int ns[] = {1, 3, 37};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        for (int i = 0; i < 3; i++) check_matmul(types[t], 300, 512, ns[i]);
}

PT_TEST(test_kernels_sampler) {
    float logits[6] = {0.5f, 2.0f, 2.0f, -1.0f, 1.9f, -5.0f};
    pt_sampling g = pt_sampling_default();
    pt_rng rng;
    pt_rng_seed(&rng, 1);
    CHECK(pt_sample(logits, 6, &g, &rng, NULL) == 1); /* first of the tied maxima, like torch.argmax */
    /* top-k 1 is greedy whatever the temperature */
    pt_sampling s = {.temperature = 5.0f, .top_k = 1, .top_p = 1.0f};
    for (int i = 0; i < 20; i++) CHECK(pt_sample(logits, 6, &s, &rng, NULL) == 1);
    /* top-k 3 never leaves {1, 2, 4}; the frequencies follow softmax over them */
    s = (pt_sampling){.temperature = 1.0f, .top_k = 3, .top_p = 1.0f};
    int counts[6] = {0};
    for (int i = 0; i < 20000; i++) counts[pt_sample(logits, 6, &s, &rng, NULL)]++;
    CHECK(counts[0] == 0 && counts[3] == 0 && counts[5] == 0);
    double z = 2 * exp(2.0) + exp(1.9);
    CHECK_NEAR(counts[4] / 20000.0, exp(1.9) / z, 0.015);
    /* top-p 0.3: the most likely token alone already holds p = 0.31 */
    s = (pt_sampling){.temperature = 1.0f, .top_k = 0, .top_p = 0.3f};
    for (int i = 0; i < 200; i++) { int t = pt_sample(logits, 6, &s, &rng, NULL); CHECK(t == 1); }
    /* same seed, same draws */
    pt_rng a, b;
    pt_rng_seed(&a, 99);
    pt_rng_seed(&b, 99);
    s = (pt_sampling){.temperature = 1.0f, .top_k = 0, .top_p = 1.0f};
    for (int i = 0; i < 50; i++) CHECK(pt_sample(logits, 6, &s, &a, NULL) == pt_sample(logits, 6, &s, &b, NULL));
}
