/* GGML block types: sizes and type numbers against ggml's published values, dequantisation
 * against the gguf package's reference (gguf.quants, llama.cpp's numpy implementation) bit for
 * bit on random block data, and the GGUF reader's messages for bad block data. */
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/kernels.h"
#include "format/gguf.h"
#include "format/tensor.h"
#include "test.h"
#include "util/rng.h"

/* Byte offsets of the f16 scale fields inside one block of each type (-1 ends the list). */
static const int *scale_offsets(pt_dtype t) {
    static const int q80[] = {0, -1}, q41[] = {0, 2, -1}, q2k[] = {80, 82, -1}, q3k[] = {108, -1}, q6k[] = {208, -1};
    switch (t) {
    case PT_Q8_0: case PT_Q4_0: case PT_Q5_0: case PT_IQ4_NL: return q80;
    case PT_Q4_1: case PT_Q5_1: case PT_Q4_K: case PT_Q5_K: return q41;
    case PT_Q2_K: return q2k;
    case PT_Q3_K: return q3k;
    case PT_Q6_K: return q6k;
    default: return NULL;
    }
}

/* n elements of random blocks of `t`: every byte random except the f16 scales, which are
 * finite (any sign, subnormals included) or, when `small`, of magnitude in [2^-10, 2^-6) so
 * that products stay near 1. */
void pt_test_random_blocks(uint8_t *dst, pt_dtype t, int64_t n, uint64_t seed, int small) {
    pt_rng rng;
    pt_rng_seed(&rng, seed);
    const size_t bytes = pt_dtype_nbytes(t, n), bb = pt_dtype_block_bytes(t);
    for (size_t i = 0; i < bytes; i++) dst[i] = (uint8_t)(pt_rng_next(&rng) >> 24);
    const int *off = scale_offsets(t);
    for (size_t b = 0; off && b < bytes / bb; b++)
        for (int k = 0; off[k] >= 0; k++) {
            uint16_t h = (uint16_t)(pt_rng_next(&rng) >> 16);
            if (small) h = (uint16_t)((h & 0x83ff) | (5 + (h >> 10) % 4) << 10); /* exponent 5..8 */
            else if (((h >> 10) & 31) == 31) h ^= 1 << 10;                      /* not Inf or NaN */
            memcpy(dst + b * bb + off[k], &h, 2);
        }
}

static const pt_dtype block_types[] = {PT_Q8_0, PT_Q4_0, PT_Q4_1, PT_Q5_0, PT_Q5_1, PT_Q2_K,
                                       PT_Q3_K, PT_Q4_K, PT_Q5_K, PT_Q6_K, PT_IQ4_NL};
#define N_BLOCK_TYPES (int)(sizeof block_types / sizeof block_types[0])

/* Facts from ggml (ggml.h's enum ggml_type, ggml.c's type traits), not from politune. */
PT_TEST(test_quants_type_facts) {
    static const struct { pt_dtype t; const char *name; int ggml, block, bytes; } facts[] = {
        {PT_F32, "F32", 0, 1, 4},          {PT_F16, "F16", 1, 1, 2},          {PT_BF16, "BF16", 30, 1, 2},
        {PT_Q4_0, "Q4_0", 2, 32, 18},      {PT_Q4_1, "Q4_1", 3, 32, 20},      {PT_Q5_0, "Q5_0", 6, 32, 22},
        {PT_Q5_1, "Q5_1", 7, 32, 24},      {PT_Q8_0, "Q8_0", 8, 32, 34},      {PT_Q2_K, "Q2_K", 10, 256, 84},
        {PT_Q3_K, "Q3_K", 11, 256, 110},   {PT_Q4_K, "Q4_K", 12, 256, 144},   {PT_Q5_K, "Q5_K", 13, 256, 176},
        {PT_Q6_K, "Q6_K", 14, 256, 210},   {PT_IQ4_NL, "IQ4_NL", 20, 32, 18},
    };
    for (size_t i = 0; i < sizeof facts / sizeof facts[0]; i++) {
        pt_dtype t = facts[i].t, back;
        CHECK_MSG(!strcmp(pt_dtype_name(t), facts[i].name), "name %s, expected %s", pt_dtype_name(t), facts[i].name);
        CHECK_MSG(pt_dtype_ggml_type(t) == facts[i].ggml, "%s: ggml type %d, expected %d", facts[i].name, pt_dtype_ggml_type(t), facts[i].ggml);
        CHECK_MSG(pt_dtype_from_ggml((uint32_t)facts[i].ggml, &back) && back == t, "%s: ggml type %d not read back", facts[i].name, facts[i].ggml);
        CHECK_MSG(pt_dtype_block(t) == facts[i].block, "%s: block %d", facts[i].name, pt_dtype_block(t));
        CHECK_MSG(pt_dtype_block_bytes(t) == (size_t)facts[i].bytes, "%s: block bytes %zu", facts[i].name, pt_dtype_block_bytes(t));
        CHECK(pt_dtype_nbytes(t, 3 * 256) == (size_t)(3 * 256 / facts[i].block * facts[i].bytes));
        CHECK(pt_dtype_is_quant(t) == (facts[i].block > 1));
        if (facts[i].block > 1) CHECK_MSG(pt_dtype_nbytes(t, facts[i].block + 1) == 0, "%s: partial block accepted", facts[i].name);
    }
    pt_dtype t;
    CHECK(!pt_dtype_from_ggml(15, &t)); /* Q8_K: only an intermediate in llama.cpp */
    CHECK(!pt_dtype_from_ggml(16, &t)); /* IQ2_XXS */
    CHECK(!pt_dtype_from_ggml(1000, &t));
}

static int write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* Every block type: 64 rows of random blocks, dequantised here and by gguf.quants; equal as
 * float32 bit patterns, element for element. */
PT_TEST(test_quants_dequant_equals_gguf_reference) {
    const char *why;
    const char *py = pt_test_python("numpy gguf", &why);
    if (!py) SKIP("%s", why);
    const char *dir = pt_test_tmpdir();
    const int rows = 64, cols = 512;
    const int64_t n = (int64_t)rows * cols;
    float *got = malloc(sizeof(float) * n), *ref = malloc(sizeof(float) * n);
    for (int i = 0; i < N_BLOCK_TYPES; i++) {
        const pt_dtype t = block_types[i];
        const size_t bytes = pt_dtype_nbytes(t, n);
        uint8_t *q = malloc(bytes);
        pt_test_random_blocks(q, t, n, 1000 + (uint64_t)t, 0);
        char in[600], out[600];
        snprintf(in, sizeof in, "%s/%s.bin", dir, pt_dtype_name(t));
        snprintf(out, sizeof out, "%s/%s.f32", dir, pt_dtype_name(t));
        CHECK(write_file(in, q, bytes));
        char *err = NULL;
        int rc = pt_test_run(NULL, &err,
                             "'%s' -c 'import sys, numpy as np, gguf; from gguf.quants import dequantize; "
                             "t = gguf.GGMLQuantizationType[sys.argv[1]]; "
                             "d = np.fromfile(sys.argv[2], dtype=np.uint8).reshape(%d, -1); "
                             "dequantize(d, t).astype(np.float32).tofile(sys.argv[3])' %s '%s' '%s'",
                             py, rows, pt_dtype_name(t), in, out);
        CHECK_MSG(rc == 0, "%s: gguf.quants failed: %s", pt_dtype_name(t), err ? err : "");
        free(err);
        FILE *f = fopen(out, "rb");
        size_t got_n = f ? fread(ref, sizeof(float), (size_t)n, f) : 0;
        if (f) fclose(f);
        CHECK_MSG(got_n == (size_t)n, "%s: reference has %zu of %lld values", pt_dtype_name(t), got_n, (long long)n);
        pt_dtype_to_f32(got, q, t, n);
        int64_t bad = 0, first = -1;
        for (int64_t j = 0; j < n && got_n == (size_t)n; j++)
            if (memcmp(&got[j], &ref[j], 4)) { bad++; if (first < 0) first = j; }
        CHECK_MSG(bad == 0, "%s: %lld of %lld values differ from gguf.quants; first at %lld: %.9g vs %.9g", pt_dtype_name(t),
                  (long long)bad, (long long)n, (long long)first, first >= 0 ? got[first] : 0, first >= 0 ? ref[first] : 0);
        /* the SIMD tile dequantiser of batched products, and the float64 path of the
         * training model's checks, give the same values */
        float *tile = malloc(sizeof(float) * n);
        double *wide = malloc(sizeof(double) * n);
        pt_kern_dequant_rows(tile, q, pt_dtype_nbytes(t, cols), t, rows, cols);
        pt_dtype_to_f64(wide, q, t, n);
        int64_t bad_tile = 0, bad_wide = 0;
        for (int64_t j = 0; j < n; j++) {
            bad_tile += memcmp(&tile[j], &got[j], 4) != 0;
            bad_wide += !((float)wide[j] == got[j] || (wide[j] != wide[j] && got[j] != got[j]));
        }
        CHECK_MSG(bad_tile == 0, "%s (%s kernels): %lld tile values differ", pt_dtype_name(t), pt_kern_name(), (long long)bad_tile);
        CHECK_MSG(bad_wide == 0, "%s: %lld float64 values differ", pt_dtype_name(t), (long long)bad_wide);
        free(tile), free(wide), free(q);
    }
    free(got), free(ref);
}
