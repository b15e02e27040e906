/* GGML block types: sizes and type numbers against ggml's published values, dequantisation
 * against the gguf package's reference (gguf.quants, llama.cpp's numpy implementation) bit for
 * bit on random block data, and the GGUF reader's messages for bad block data. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/kernels.h"
#include "fixture.h"
#include "format/gguf.h"
#include "nn/linear.h"
#include "format/tensor.h"
#include "test.h"
#include "util/rng.h"
#include "util/status.h"

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

/* A GGUF v3 file holding one 2-D tensor `name` of GGML type `ggml`, shape (ne1, ne0) in GGML
 * order, followed by `data_bytes` bytes of data (whatever the type needs). */
static void write_one_tensor_gguf(const char *path, const char *name, uint32_t ggml, uint64_t ne0, uint64_t ne1, size_t data_bytes) {
    FILE *f = fopen(path, "wb");
    if (!f) { CHECK_MSG(0, "cannot write %s", path); return; }
    const uint32_t version = 3, nd = 2;
    const uint64_t n_tensors = 1, n_kv = 0, len = strlen(name), offset = 0;
    long pos = 0;
    pos += (long)fwrite("GGUF", 1, 4, f);
    pos += (long)fwrite(&version, 1, 4, f);
    pos += (long)fwrite(&n_tensors, 1, 8, f);
    pos += (long)fwrite(&n_kv, 1, 8, f);
    pos += (long)fwrite(&len, 1, 8, f);
    pos += (long)fwrite(name, 1, len, f);
    pos += (long)fwrite(&nd, 1, 4, f);
    pos += (long)fwrite(&ne0, 1, 8, f);
    pos += (long)fwrite(&ne1, 1, 8, f);
    pos += (long)fwrite(&ggml, 1, 4, f);
    pos += (long)fwrite(&offset, 1, 8, f);
    for (; pos % 32; pos++) fputc(0, f);
    for (size_t i = 0; i < data_bytes; i++) fputc((int)(i * 37 & 0x7f), f);
    fclose(f);
}

/* Each case: one line naming the tensor and what is wrong, exit status 1, from the library
 * and from the command line. */
PT_TEST(test_quants_bad_block_data) {
    const char *dir = pt_test_tmpdir();
    static const struct { const char *file; uint32_t ggml; uint64_t ne0, ne1; size_t bytes; const char *expect[3]; } cases[] = {
        /* Q4_K (256, 4) needs 4 * 144 bytes: one block short */
        {"short.gguf", 12, 256, 4, 3 * 144, {"tensor 'blk.0.ffn_up.weight'", "Q4_K data of 576 bytes", "truncated"}},
        /* IQ2_XXS: a real GGML type politune does not read */
        {"iq2.gguf", 16, 256, 4, 4 * 66, {"tensor 'blk.0.ffn_up.weight'", "ggml type 16 (IQ2_XXS) not supported", "Q4_K, Q5_K, Q6_K, IQ4_NL"}},
        /* a number no GGML version has used */
        {"t77.gguf", 77, 256, 4, 1024, {"tensor 'blk.0.ffn_up.weight'", "ggml type 77 (unknown) not supported", "supported: F32"}},
        /* Q6_K rows of 300 elements cannot be whole 256-element blocks */
        {"rows.gguf", 14, 300, 2, 4096, {"tensor 'blk.0.ffn_up.weight'", "row length 300 is not a multiple of the Q6_K block (256)", ""}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s", dir, cases[i].file);
        write_one_tensor_gguf(path, "blk.0.ffn_up.weight", cases[i].ggml, cases[i].ne0, cases[i].ne1, cases[i].bytes);
        pt_gguf g;
        pt_status st = pt_gguf_open(&g, path);
        CHECK_MSG(st != PT_OK, "%s: opened", cases[i].file);
        const char *msg = pt_errmsg();
        for (int k = 0; k < 3; k++)
            CHECK_MSG(strstr(msg, cases[i].expect[k]), "%s: message lacks '%s': %s", cases[i].file, cases[i].expect[k], msg);
        CHECK_MSG(strstr(msg, path), "%s: message does not name the file: %s", cases[i].file, msg);
        if (st == PT_OK) pt_gguf_close(&g);
        char *out = NULL, *err = NULL;
        int rc = pt_test_run(&out, &err, "\"$POLITUNE_BIN\" inspect '%s'", path);
        CHECK_MSG(rc == 1, "%s: inspect exited %d", cases[i].file, rc);
        CHECK_MSG(err && strstr(err, cases[i].expect[0]) && strchr(err, '\n') == err + strlen(err) - 1,
                  "%s: expected one line on stderr, got: %s", cases[i].file, err ? err : "(none)");
        CHECK_MSG(out && !*out, "%s: printed on stdout: %s", cases[i].file, out ? out : "");
        free(out), free(err);
    }
}

/* The frozen base under LoRA training: a LoRA linear layer's forward and backward over a
 * quantised W equal those over the float32 copy of its dequantised values (which
 * tests/test_train_layers.c checks against finite differences). Batches of 1 and 9 rows take
 * the decode kernels and 64-row dequantised tiles, the 72-row batch larger tiles: float32
 * products in other orders, 1e-5 of the largest value. A W of at most 4M elements is dequantised whole for the input
 * gradient, and for the forward when the batch has more rows than W: then the products are
 * those of the float32 copy, and the results equal bit for bit (the 80-row batch). A larger W
 * (16400 x 256, like a vocabulary-sized head) splits the input gradient into column slabs and
 * each slab into chunks of rows: 1e-5 again. */
PT_TEST(test_quants_lora_linear_over_quantised_base) {
    static const struct { int in, out, n[2]; bool exact; } shapes[] = {
        {512, 96, {1, 9}, false}, {768, 1400, {72, 72}, false}, {256, 64, {80, 80}, true}, {256, 16400, {8, 8}, false}};
    enum { r = 4 };
    const pt_dtype types[] = {PT_Q4_1, PT_Q5_0, PT_Q5_1, PT_Q2_K, PT_Q3_K, PT_Q4_K, PT_Q5_K, PT_Q6_K, PT_IQ4_NL, PT_Q8_0, PT_Q4_0};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int in = shapes[si].in, out = shapes[si].out, nmax = shapes[si].n[1];
        pt_rng rng;
        pt_rng_seed(&rng, 5);
        float *x = malloc(sizeof(float) * nmax * in), *A = malloc(sizeof(float) * r * in), *B = malloc(sizeof(float) * out * r),
              *dy = malloc(sizeof(float) * nmax * out), *wf = malloc(sizeof(float) * out * in);
        float *y[2], *u[2], *du[2], *dx[2], *dA[2], *dB[2], *xd = malloc(sizeof(float) * nmax * in);
        for (int k = 0; k < 2; k++) {
            y[k] = malloc(sizeof(float) * nmax * out), u[k] = malloc(sizeof(float) * nmax * r), du[k] = malloc(sizeof(float) * nmax * r);
            dx[k] = malloc(sizeof(float) * nmax * in), dA[k] = malloc(sizeof(float) * r * in), dB[k] = malloc(sizeof(float) * out * r);
        }
        for (int i = 0; i < nmax * in; i++) x[i] = pt_rng_float(&rng) * 2 - 1;
        for (int i = 0; i < r * in; i++) A[i] = (pt_rng_float(&rng) * 2 - 1) * 0.1f;
        for (int i = 0; i < out * r; i++) B[i] = (pt_rng_float(&rng) * 2 - 1) * 0.1f;
        for (int i = 0; i < nmax * out; i++) dy[i] = pt_rng_float(&rng) * 2 - 1;
        float *tile = malloc(sizeof(float) * PT_LINEAR_TILE * in);
        for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
            const pt_dtype t = types[ti];
            uint8_t *wq = malloc(pt_dtype_nbytes(t, (int64_t)out * in));
            pt_test_random_blocks(wq, t, (int64_t)out * in, 50 + (uint64_t)t, 1);
            pt_dtype_to_f32(wf, wq, t, (int64_t)out * in);
            const pt_weight Wq = {t, out, in, wq}, Wf = {PT_F32, out, in, wf};
            for (int ni = 0; ni < 2; ni++) {
                const int n = shapes[si].n[ni];
                if (ni && n == shapes[si].n[0]) break;
                for (int k = 0; k < 2; k++) {
                    const pt_weight *W = k ? &Wf : &Wq;
                    memset(dA[k], 0, sizeof(float) * r * in), memset(dB[k], 0, sizeof(float) * out * r);
                    pt_lora_call call = {A, B, dA[k], dB[k], r, 2.0f, 0.0f, 7};
                    pt_linear_forward(y[k], u[k], xd, tile, x, W, NULL, &call, n, 0);
                    pt_linear_backward(dx[k], du[k], xd, tile, dy, x, u[k], W, &call, n, 0);
                }
                char what[96];
                if (shapes[si].exact) {
                    CHECK_MSG(!memcmp(y[0], y[1], sizeof(float) * n * out), "%s forward n=%d out=%d: not bit for bit", pt_dtype_name(t), n, out);
                    CHECK_MSG(!memcmp(dx[0], dx[1], sizeof(float) * n * in), "%s dx n=%d out=%d: not bit for bit", pt_dtype_name(t), n, out);
                    CHECK_MSG(!memcmp(dA[0], dA[1], sizeof(float) * r * in) && !memcmp(dB[0], dB[1], sizeof(float) * out * r),
                              "%s dA, dB n=%d out=%d: not bit for bit", pt_dtype_name(t), n, out);
                }
                snprintf(what, sizeof what, "%s LoRA forward n=%d out=%d", pt_dtype_name(t), n, out);
                fx_close(what, y[0], y[1], (int64_t)n * out, 1e-5);
                snprintf(what, sizeof what, "%s LoRA dx n=%d out=%d", pt_dtype_name(t), n, out);
                fx_close(what, dx[0], dx[1], (int64_t)n * in, 1e-5);
                snprintf(what, sizeof what, "%s LoRA dA n=%d out=%d", pt_dtype_name(t), n, out);
                fx_close(what, dA[0], dA[1], r * in, 1e-5);
                snprintf(what, sizeof what, "%s LoRA dB n=%d out=%d", pt_dtype_name(t), n, out);
                fx_close(what, dB[0], dB[1], out * r, 1e-5);
            }
            free(wq);
        }
        for (int k = 0; k < 2; k++) free(y[k]), free(u[k]), free(du[k]), free(dx[k]), free(dA[k]), free(dB[k]);
        free(x), free(A), free(B), free(dy), free(wf), free(tile), free(xd);
    }
}

/* Logits (n_ids, vocab) of `model` over `ids` through the CLI, or NULL with a failure. */
static float *cli_logits(const char *model, const char *ids, int n_ids, int *vocab, const char *kernels) {
    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err, "%s%s \"$POLITUNE_BIN\" logits --model '%s' --ids %s", kernels ? "POLITUNE_KERNELS=" : "",
                         kernels ? kernels : "", model, ids);
    CHECK_MSG(rc == 0, "logits on %s exited %d: %s", model, rc, err ? err : "");
    json_t *o = rc == 0 && out ? json_loads(out, 0, NULL) : NULL, *rows = json_object_get(o, "logits");
    float *v = NULL;
    if (json_array_size(rows) == (size_t)n_ids) {
        *vocab = (int)json_array_size(json_array_get(rows, 0));
        v = malloc(sizeof(float) * n_ids * *vocab);
        for (int r = 0; r < n_ids; r++)
            for (int k = 0; k < *vocab; k++) v[(size_t)r * *vocab + k] = (float)json_number_value(json_array_get(json_array_get(rows, r), k));
    } else CHECK_MSG(0, "logits on %s: %zu rows, expected %d", model, json_array_size(rows), n_ids);
    json_decref(o);
    free(out), free(err);
    return v;
}

/* A small random Llama (dim 256, so every row length suits the K-quants) quantised by
 * llama.cpp's own quantiser with its presets, against the same file with every tensor
 * dequantised by gguf.quants and stored as F32 (tools/oracles/quant_models.py). politune's
 * dequantisation equals gguf.quants exactly, so where activations stay float32 the two runs
 * differ only in the order of float32 sums through two layers: within 1e-4 of the largest
 * logit. The presets together must have produced every type politune reads besides F32 / F16
 * / BF16. */
PT_TEST(test_quants_llamacpp_presets) {
    const char *why;
    const char *py = pt_test_python("numpy gguf llama_cpp", &why);
    if (!py) SKIP("%s", why);
    const char *dir = pt_test_tmpdir();
    static const char *presets[] = {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "IQ4_NL"};
    char list[256] = "";
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) snprintf(list + strlen(list), sizeof list - strlen(list), " %s", presets[i]);
    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err, "'%s' tools/oracles/quant_models.py '%s' '%s'%s", py, dir,
                         pt_test_shared("assets/models/stories260K/stories260K.gguf"), list);
    CHECK_MSG(rc == 0, "quant_models.py exited %d: %s", rc, err ? err : "");
    if (rc != 0) { free(out), free(err); return; }
    char seen[512] = "";
    for (char *save = NULL, *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_t *o = json_loads(line, 0, NULL);
        const char *preset = json_string_value(json_object_get(o, "preset"));
        json_t *types = json_object_get(o, "types");
        if (!preset) { CHECK_MSG(0, "quant_models.py printed: %s", line); json_decref(o); continue; }
        char tstr[128] = "";
        for (size_t k = 0; k < json_array_size(types); k++) {
            const char *tn = json_string_value(json_array_get(types, k));
            snprintf(seen + strlen(seen), sizeof seen - strlen(seen), " %s ", tn);
            snprintf(tstr + strlen(tstr), sizeof tstr - strlen(tstr), "%s%s", k ? "+" : "", tn);
        }
        /* twelve ids: dequantised tiles and sgemm, float32 throughout; three ids: the decode
         * kernels, in float with the portable ones, and with the SIMD ones on an int8 copy
         * of the activations (checked per product against its rounding bound in
         * test_kernels.c; through two layers and the head it moved the logits by 1-4% of the
         * largest in trials, so here only a 10% sanity bound) */
        static const struct { const char *ids; int n; const char *kernels; double tol; } runs[] = {
            {"1,10,20,30,40,50,60,70,80,90,100,110", 12, NULL, 1e-4}, {"1,100,200", 3, "generic", 1e-4}, {"1,100,200", 3, NULL, 0.1}};
        for (int s = 0; s < 3; s++) {
            char qpath[700], dpath[700], what[160];
            snprintf(qpath, sizeof qpath, "%s/%s.gguf", dir, preset);
            snprintf(dpath, sizeof dpath, "%s/%s-deq.gguf", dir, preset);
            int vq = 0, vd = 0;
            float *lq = cli_logits(qpath, runs[s].ids, runs[s].n, &vq, runs[s].kernels), *ld = cli_logits(dpath, runs[s].ids, runs[s].n, &vd, NULL);
            snprintf(what, sizeof what, "%s (%s) %d ids%s%s: quantised vs gguf.quants-dequantised logits", preset, tstr, runs[s].n,
                     runs[s].kernels ? ", kernels " : "", runs[s].kernels ? runs[s].kernels : "");
            if (lq && ld && vq == vd) fx_close(what, lq, ld, (int64_t)runs[s].n * vq, runs[s].tol);
            free(lq), free(ld);
        }
        json_decref(o);
    }
    static const char *want[] = {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char key[32];
        snprintf(key, sizeof key, " %s ", want[i]);
        CHECK_MSG(strstr(seen, key), "no preset produced %s tensors (seen:%s)", want[i], seen);
    }
    free(out), free(err);
}
