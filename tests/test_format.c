/* File-format readers and writers: round trips, and every kind of damaged file rejected
 * with a message naming the file and what is wrong. */
#include <stdlib.h>
#include <string.h>

#include "format/gguf.h"
#include "format/safetensors.h"
#include "test.h"
#include "util/file.h"

static const char *stories_gguf(void) { return pt_test_shared("assets/models/stories260K/stories260K.gguf"); }

PT_TEST(test_format_gguf_reads_stories260K) {
    pt_gguf g;
    REQUIRE_OK(pt_gguf_open(&g, stories_gguf()));
    CHECK(g.version == 3);
    int64_t v = 0;
    CHECK_OK(pt_gguf_get_int(&g, "llama.block_count", &v, true));
    CHECK(v == 5);
    const pt_tensor_view *t = pt_gguf_find_tensor(&g, "blk.0.attn_k.weight");
    REQUIRE(t);
    /* GGUF ne = [64, 32] reads as PyTorch (32, 64) */
    CHECK(t->n_dims == 2 && t->shape[0] == 32 && t->shape[1] == 64 && t->dtype == PT_F32);
    CHECK(pt_gguf_get_int(&g, "no.such.key", &v, true) == PT_ERR_FORMAT && strstr(pt_errmsg(), "no.such.key"));
    pt_gguf_close(&g);
}

/* Every prefix of a real file is either rejected as truncated or (impossible here) valid:
 * never a crash or an out-of-bounds view. */
PT_TEST(test_format_gguf_truncated) {
    pt_mapped_file f;
    REQUIRE_OK(pt_file_map(&f, stories_gguf()));
    size_t cuts[] = {0, 3, 4, 8, 20, 24, 100, 1000, 5000, f.size / 2, f.size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        uint8_t *copy = malloc(cuts[i] + 1);
        memcpy(copy, f.data, cuts[i]);
        pt_gguf g = {0};
        pt_status st = pt_gguf_parse(&g, copy, cuts[i], "cut.gguf");
        CHECK_MSG(st == PT_ERR_FORMAT, "prefix of %zu bytes: status %d", cuts[i], st);
        CHECK_MSG(strstr(pt_errmsg(), "cut.gguf") != NULL, "message lacks the file: %s", pt_errmsg());
        pt_gguf_close(&g);
        free(copy);
    }
    pt_file_unmap(&f);
}

PT_TEST(test_format_gguf_corrupt_fields) {
    pt_mapped_file f;
    REQUIRE_OK(pt_file_map(&f, stories_gguf()));
    uint8_t *copy = malloc(f.size);
    pt_gguf g = {0};
    /* bad magic */
    memcpy(copy, f.data, f.size);
    copy[0] = 'X';
    CHECK(pt_gguf_parse(&g, copy, f.size, "x.gguf") == PT_ERR_FORMAT && strstr(pt_errmsg(), "magic"));
    pt_gguf_close(&g);
    /* unsupported version */
    memcpy(copy, f.data, f.size);
    copy[4] = 9;
    CHECK(pt_gguf_parse(&g, copy, f.size, "x.gguf") == PT_ERR_UNSUPPORTED && strstr(pt_errmsg(), "version 9"));
    pt_gguf_close(&g);
    /* absurd tensor count */
    memcpy(copy, f.data, f.size);
    memset(copy + 8, 0xff, 8);
    CHECK(pt_gguf_parse(&g, copy, f.size, "x.gguf") == PT_ERR_FORMAT);
    pt_gguf_close(&g);
    /* a huge string length in the first key */
    memcpy(copy, f.data, f.size);
    memset(copy + 24, 0x7f, 8);
    CHECK(pt_gguf_parse(&g, copy, f.size, "x.gguf") == PT_ERR_FORMAT && strstr(pt_errmsg(), "truncated"));
    pt_gguf_close(&g);
    free(copy);
    pt_file_unmap(&f);
}

PT_TEST(test_format_gguf_writer_round_trip) {
    const char *dir = pt_test_tmpdir();
    char path[600];
    snprintf(path, sizeof path, "%s/rt.gguf", dir);
    float w[64 * 2];
    for (int i = 0; i < 128; i++) w[i] = (float)(i - 64) / 10.0f;
    pt_gguf_writer *wr = pt_gguf_writer_new();
    pt_gguf_set_str(wr, "general.architecture", "llama");
    pt_gguf_set_u32(wr, "llama.block_count", 7);
    pt_gguf_set_f32(wr, "llama.rope.freq_base", 500000.0f);
    const char *toks[] = {"a", "bb", "ccc"};
    pt_gguf_set_arr_str(wr, "tokenizer.ggml.tokens", toks, 3);
    int64_t shape[] = {2, 64};
    CHECK_OK(pt_gguf_add_tensor(wr, "f32", PT_F32, shape, 2, w));
    CHECK_OK(pt_gguf_add_tensor(wr, "q8", PT_Q8_0, shape, 2, w));
    CHECK_OK(pt_gguf_add_tensor(wr, "q4", PT_Q4_0, shape, 2, w));
    CHECK_OK(pt_gguf_add_tensor(wr, "bf16", PT_BF16, shape, 2, w));
    CHECK_OK(pt_gguf_add_tensor(wr, "f16", PT_F16, shape, 2, w));
    int64_t bad[] = {2, 30};
    CHECK(pt_gguf_add_tensor(wr, "q8bad", PT_Q8_0, bad, 2, w) == PT_ERR_ARG);
    REQUIRE_OK(pt_gguf_writer_write(wr, path));
    pt_gguf_writer_free(wr);
    pt_gguf g;
    REQUIRE_OK(pt_gguf_open(&g, path));
    int64_t v;
    double f;
    char *s;
    CHECK_OK(pt_gguf_get_int(&g, "llama.block_count", &v, true));
    CHECK(v == 7);
    CHECK_OK(pt_gguf_get_float(&g, "llama.rope.freq_base", &f, true));
    CHECK(f == 500000.0);
    CHECK_OK(pt_gguf_get_string(&g, "general.architecture", &s, true));
    CHECK(s && !strcmp(s, "llama"));
    free(s);
    const pt_gguf_kv *kv = pt_gguf_find(&g, "tokenizer.ggml.tokens");
    CHECK(kv && kv->arr_n == 3 && kv->arr_str[2].len == 3 && !memcmp(kv->arr_str[2].ptr, "ccc", 3));
    const char *names[] = {"f32", "q8", "q4", "bf16", "f16"};
    double tol[] = {0, 6.4 / 127, 6.4 / 7, 0.02, 0.004};
    for (int i = 0; i < 5; i++) {
        const pt_tensor_view *t = pt_gguf_find_tensor(&g, names[i]);
        REQUIRE(t);
        CHECK(t->shape[0] == 2 && t->shape[1] == 64);
        float back[128];
        pt_dtype_to_f32(back, t->data, t->dtype, 128);
        double worst = 0;
        for (int j = 0; j < 128; j++) worst = fmax(worst, fabs(back[j] - w[j]));
        CHECK_MSG(worst <= tol[i] + 1e-7, "%s: max error %g > %g", names[i], worst, tol[i]);
    }
    pt_gguf_close(&g);
}

PT_TEST(test_format_safetensors_round_trip_and_damage) {
    const char *dir = pt_test_tmpdir();
    char path[600];
    snprintf(path, sizeof path, "%s/rt.safetensors", dir);
    float a[6] = {1, -2, 3.5f, 4, 5, 6e-3f};
    pt_safetensors_entry e[] = {{"a", PT_F32, 2, {2, 3}, a}, {"b", PT_BF16, 1, {6}, a}, {"c", PT_F16, 1, {6}, a}};
    const char *md[] = {"format", "pt", NULL};
    REQUIRE_OK(pt_safetensors_write(path, e, 3, md));
    pt_safetensors st;
    REQUIRE_OK(pt_safetensors_open(&st, path));
    CHECK(st.n_tensors == 3);
    const pt_tensor_view *t = pt_safetensors_find(&st, "a");
    REQUIRE(t);
    CHECK(t->shape[0] == 2 && t->shape[1] == 3 && !memcmp(t->data, a, sizeof a));
    t = pt_safetensors_find(&st, "b");
    REQUIRE(t);
    float back[6];
    pt_dtype_to_f32(back, t->data, t->dtype, 6);
    CHECK(back[0] == 1 && back[2] == 3.5f);
    /* damaged copies */
    size_t size = st.file.size;
    uint8_t *copy = malloc(size);
    memcpy(copy, st.file.data, size);
    pt_safetensors_close(&st);
    pt_safetensors d = {0};
    CHECK(pt_safetensors_parse(&d, copy, size - 4, "cut.safetensors") == PT_ERR_FORMAT && strstr(pt_errmsg(), "cut.safetensors"));
    pt_safetensors_close(&d);
    CHECK(pt_safetensors_parse(&d, copy, 7, "tiny.safetensors") == PT_ERR_FORMAT);
    pt_safetensors_close(&d);
    uint8_t *bad = malloc(size);
    memcpy(bad, copy, size);
    bad[0] = 0xff, bad[1] = 0xff, bad[2] = 0xff;
    CHECK(pt_safetensors_parse(&d, bad, size, "len.safetensors") == PT_ERR_FORMAT && strstr(pt_errmsg(), "header length"));
    pt_safetensors_close(&d);
    /* a header that is not JSON */
    memcpy(bad, copy, size);
    bad[8] = '[';
    CHECK(pt_safetensors_parse(&d, bad, size, "json.safetensors") == PT_ERR_FORMAT);
    pt_safetensors_close(&d);
    free(bad);
    free(copy);
}

/* Hand-written headers: offsets outside the data, wrong byte counts, overlaps, bad dtypes. */
PT_TEST(test_format_safetensors_bad_headers) {
    struct { const char *hdr; size_t data; const char *expect; } cases[] = {
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "outside"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "expected 12"},
        {"{\"w\":{\"dtype\":\"F8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2, "F8"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"v\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}", 8, "overlap"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "shape"},
        {"{\"w\":{\"dtype\":\"F32\"}}", 4, "data_offsets"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t hl = strlen(cases[i].hdr), size = 8 + hl + cases[i].data;
        uint8_t *buf = calloc(1, size);
        for (int b = 0; b < 8; b++) buf[b] = (uint8_t)((uint64_t)hl >> (8 * b));
        memcpy(buf + 8, cases[i].hdr, hl);
        pt_safetensors st = {0};
        pt_status s = pt_safetensors_parse(&st, buf, size, "h.safetensors");
        CHECK_MSG(s != PT_OK && strstr(pt_errmsg(), cases[i].expect), "case %zu: status %d, message '%s'", i, s, pt_errmsg());
        pt_safetensors_close(&st);
        free(buf);
    }
}

PT_TEST(test_format_half_conversions) {
    /* exact values, rounding to nearest even, subnormals, infinities */
    CHECK(pt_f16_to_f32(0x3c00) == 1.0f);
    CHECK(pt_f16_to_f32(0xc000) == -2.0f);
    CHECK(pt_f16_to_f32(0x0001) == 5.9604644775390625e-08f);
    CHECK(pt_f16_to_f32(0x7c00) == INFINITY);
    CHECK(pt_f32_to_f16(1.0f) == 0x3c00);
    CHECK(pt_f32_to_f16(65504.0f) == 0x7bff);
    CHECK(pt_f32_to_f16(1e6f) == 0x7c00);
    CHECK(pt_f32_to_f16(5.9604644775390625e-08f) == 0x0001);
    for (uint32_t h = 0; h < 0x7c00; h += 7) CHECK(pt_f32_to_f16(pt_f16_to_f32((uint16_t)h)) == h);
    CHECK(pt_f32_to_bf16(1.0f) == 0x3f80);
    CHECK(pt_bf16_to_f32(0x3f80) == 1.0f);
    CHECK(pt_f32_to_bf16(1.00390625f) == 0x3f80);     /* tie -> even */
    CHECK(pt_f32_to_bf16(1.01171875f) == 0x3f82);     /* tie -> even (up) */
}
