/* The rounding rules of the llama.cpp numerics mode (src/nn/ggml_compat.c) on hand-made
 * blocks whose answer differs under the other plausible rule, and its AVX2 kernels against
 * its portable code bit for bit. The end-to-end check against llama.cpp itself is
 * test_smollm_greedy_llamacpp_numerics. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"
#include "nn/ggml_compat.h"
#include "test.h"
#include "util/rng.h"

static void put_f16(uint8_t *p, float v) {
    uint16_t h = pt_f32_to_f16(v);
    memcpy(p, &h, 2);
}

/* Activations are rounded to nearest with ties to even, as ggml's SIMD quantisers do (the
 * scalar reference's roundf would give 3 and 1 for the two ties below). */
PT_TEST(test_ggml_compat_q8_ties_to_even) {
    uint8_t row[34] = {0};
    put_f16(row, 1.0f);
    row[2 + 5] = 1, row[2 + 6] = 1; /* weights: 1 at elements 5 and 6 */
    float x[32] = {0};
    x[0] = 127.0f; /* amax 127: d = 1, multiplier 1 */
    x[5] = 2.5f, x[6] = 0.5f;
    CHECK_NEAR(pt_ggml_dot_for_test(row, PT_Q8_0, x, 32, 0), 2.0, 0);
    CHECK_NEAR(pt_ggml_dot_for_test(row, PT_Q8_0, x, 32, 1), 2.0, 0);
}

/* A Q8_1 block's s is f16(d * sum) with d before its own rounding to f16: with amax 100, d =
 * 100/127 has no exact f16, q = 127 and s = f16(100) = 100, where f16(d) * 127 = 100.02. A
 * Q4_1 row with scale 0 and minimum 1 reads exactly s. */
PT_TEST(test_ggml_compat_q8_1_sum) {
    uint8_t row[20] = {0};
    put_f16(row, 0.0f);
    put_f16(row + 2, 1.0f);
    float x[32] = {0};
    x[0] = 100.0f;
    CHECK_NEAR(pt_ggml_dot_for_test(row, PT_Q4_1, x, 32, 0), 100.0, 0);
    CHECK_NEAR(pt_ggml_dot_for_test(row, PT_Q4_1, x, 32, 1), 100.0, 0);
}

/* The AVX2 lane kernels and the portable code that spells out their order give the same
 * float, bit for bit, on random Q4_1 and Q8_0 rows of 576 elements (SmolLM2's width). */
PT_TEST(test_ggml_compat_simd_equals_portable) {
    pt_rng rng;
    pt_rng_seed(&rng, 11);
    enum { COLS = 576, NB = COLS / 32 };
    float x[COLS];
    uint8_t q41[NB * 20], q80[NB * 34];
    int same = 0, trials = 200;
    for (int t = 0; t < trials; t++) {
        for (int i = 0; i < COLS; i++) x[i] = (float)(4.0 * (2.0 * pt_rng_double(&rng) - 1.0)) * (i % 97 == 0 ? 30.0f : 1.0f);
        for (int b = 0; b < NB; b++) {
            put_f16(q41 + 20 * b, (float)(0.01 + 0.1 * pt_rng_double(&rng)));
            put_f16(q41 + 20 * b + 2, (float)(-0.5 * pt_rng_double(&rng)));
            for (int j = 0; j < 16; j++) q41[20 * b + 4 + j] = (uint8_t)(pt_rng_next(&rng) & 255);
            put_f16(q80 + 34 * b, (float)(0.001 + 0.01 * pt_rng_double(&rng)));
            for (int j = 0; j < 32; j++) q80[34 * b + 2 + j] = (uint8_t)(int8_t)((int)(pt_rng_next(&rng) % 255) - 127);
        }
        float a = pt_ggml_dot_for_test(q41, PT_Q4_1, x, COLS, 0), b = pt_ggml_dot_for_test(q41, PT_Q4_1, x, COLS, 1);
        float c = pt_ggml_dot_for_test(q80, PT_Q8_0, x, COLS, 0), d = pt_ggml_dot_for_test(q80, PT_Q8_0, x, COLS, 1);
        CHECK_MSG(memcmp(&a, &b, 4) == 0 && memcmp(&c, &d, 4) == 0, "trial %d: Q4_1 %.9g vs %.9g, Q8_0 %.9g vs %.9g", t, a, b, c, d);
        same += memcmp(&a, &b, 4) == 0 && memcmp(&c, &d, 4) == 0;
    }
    printf("    %d/%d random rows: the AVX2 and portable kernels agree bit for bit\n", same, trials);
}

PT_TEST(test_ggml_compat_numerics_names) {
    pt_numerics n;
    CHECK_OK(pt_numerics_parse("llamacpp", &n));
    CHECK(n == PT_NUMERICS_LLAMACPP);
    CHECK_OK(pt_numerics_parse("exact", &n));
    CHECK(n == PT_NUMERICS_EXACT);
    CHECK(pt_numerics_parse("ggml", &n) == PT_ERR_ARG);
    CHECK_MSG(strstr(pt_errmsg(), "exact or llamacpp") && strstr(pt_errmsg(), "'ggml'"), "message: %s", pt_errmsg());
}
