/* Tokenizer tests: golden tokenizations of the three tokenizer.json files in shared/assets
 * (ids, ids with special tokens, decoded text), the GGUF vocabularies (stories260K's
 * SentencePiece one, and a byte-level one written here from the Llama 3 / Qwen 3
 * tokenizer.json and checked against the tokenizer.json path), bad inputs and malformed
 * files, and the engine-facing queries (stop ids). */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "format/gguf.h"
#include "test.h"
#include "tokenizer/tokenizer.h"

static json_t *load_json(const char *rel) {
    json_error_t err;
    json_t *j = json_load_file(pt_test_shared(rel), 0, &err);
    if (!j) pt_test_fail(__FILE__, __LINE__, "%s: %s (line %d)", rel, err.text, err.line);
    return j;
}

static int32_t *json_ids(json_t *arr, size_t *n) {
    *n = json_array_size(arr);
    int32_t *v = malloc((*n ? *n : 1) * sizeof *v);
    for (size_t i = 0; i < *n; i++) v[i] = (int32_t)json_integer_value(json_array_get(arr, i));
    return v;
}

static int ids_equal(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    return na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
}

static void report_ids(const char *what, const char *text, const int32_t *got, size_t ng, const int32_t *want,
                       size_t nw) {
    char g[512] = "", w[512] = "";
    for (size_t i = 0; i < ng && strlen(g) < 480; i++) snprintf(g + strlen(g), sizeof g - strlen(g), " %d", got[i]);
    for (size_t i = 0; i < nw && strlen(w) < 480; i++) snprintf(w + strlen(w), sizeof w - strlen(w), " %d", want[i]);
    pt_test_fail(__FILE__, __LINE__, "%s of \"%.60s\": got [%s ] want [%s ]", what, text, g, w);
}

static pt_tokenizer *load_tok(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "assets/tokenizers/%s/tokenizer.json", name);
    pt_tokenizer *t = NULL;
    pt_status st = pt_tokenizer_load_json(&t, pt_test_shared(rel));
    if (st) pt_test_fail(__FILE__, __LINE__, "loading %s: %s", name, pt_errmsg());
    return t;
}

/* Every case of fixtures/tokenizers/<name>.json: ids, ids_with_special, decoded. */
static void check_fixture(pt_tokenizer *t, const char *name, int check_special) {
    char rel[256];
    snprintf(rel, sizeof rel, "fixtures/tokenizers/%s.json", name);
    json_t *fx = load_json(rel);
    if (!fx) return;
    json_t *cases = json_object_get(fx, "cases");
    CHECK(json_array_size(cases) >= 30);
    for (size_t i = 0; i < json_array_size(cases); i++) {
        json_t *c = json_array_get(cases, i);
        const char *text = json_string_value(json_object_get(c, "text"));
        size_t len = json_string_length(json_object_get(c, "text"));
        size_t nw, nws, ng;
        int32_t *want = json_ids(json_object_get(c, "ids"), &nw);
        int32_t *want_sp = json_ids(json_object_get(c, "ids_with_special"), &nws);
        int32_t *got = NULL;
        CHECK_OK(pt_tokenizer_encode(t, text, len, false, &got, &ng));
        if (got && !ids_equal(got, ng, want, nw)) report_ids("encode", text, got, ng, want, nw);
        free(got);
        got = NULL;
        if (check_special) {
            CHECK_OK(pt_tokenizer_encode(t, text, len, true, &got, &ng));
            if (got && !ids_equal(got, ng, want_sp, nws)) report_ids("encode+special", text, got, ng, want_sp, nws);
            free(got);
        }
        char *dec = NULL;
        const char *want_dec = json_string_value(json_object_get(c, "decoded"));
        CHECK_OK(pt_tokenizer_decode(t, want, nw, false, &dec));
        CHECK_MSG(dec && !strcmp(dec, want_dec), "decode of case %zu: got \"%s\" want \"%s\"", i, dec ? dec : "(null)",
                  want_dec);
        free(dec);
        free(want);
        free(want_sp);
    }
    json_decref(fx);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

PT_TEST(test_tokenizer_llama3_fixture) {
    double t0 = now_s();
    pt_tokenizer *t = load_tok("llama3");
    double dt = now_s() - t0;
    REQUIRE(t);
    /* a generous bound: the machine is shared; typically about 0.4 s. Sanitizer builds (make
     * asan) run several times slower, so the bound does not apply there. */
#ifndef __SANITIZE_ADDRESS__
    CHECK_MSG(dt < 3.0, "loading the llama3 tokenizer.json took %.2f s", dt);
#else
    (void)dt;
#endif
    CHECK(pt_tokenizer_vocab_size(t) == 128256);
    CHECK(!strcmp(pt_tokenizer_kind(t), "byte-level BPE"));
    /* the post_processor is ByteLevel only: no BOS is added (the fixture agrees) */
    CHECK(!pt_tokenizer_adds_bos(t));
    CHECK(pt_tokenizer_bos(t) == 128000);
    CHECK(pt_tokenizer_eos(t) == 128001);
    CHECK(pt_tokenizer_token_id(t, "<|eot_id|>") == 128009);
    CHECK(pt_tokenizer_is_special(t, 128009) && !pt_tokenizer_is_special(t, 9906));
    CHECK(!strcmp(pt_tokenizer_token_text(t, 9906), "Hello"));
    CHECK(pt_tokenizer_token_text(t, 128256) == NULL);
    CHECK(pt_tokenizer_chat_template_source(t) != NULL);
    check_fixture(t, "llama3", 1);
    pt_tokenizer_free(t);
}

PT_TEST(test_tokenizer_parse_special_off) {
    pt_tokenizer *t = load_tok("llama3");
    REQUIRE(t);
    const char *text = "Hi<|eot_id|>";
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK_OK(pt_tokenizer_encode_ex(t, text, strlen(text), false, true, &ids, &n));
    CHECK(n == 2 && ids[1] == 128009);
    free(ids);
    CHECK_OK(pt_tokenizer_encode_ex(t, text, strlen(text), false, false, &ids, &n));
    CHECK(n > 2);
    for (size_t i = 0; i < n; i++) CHECK(ids[i] < 128000);
    char *s = NULL;
    CHECK_OK(pt_tokenizer_decode(t, ids, n, false, &s));
    CHECK(s && !strcmp(s, text));
    free(s);
    free(ids);
    pt_tokenizer_free(t);
}

PT_TEST(test_tokenizer_spm32k_fixture) {
    pt_tokenizer *t = load_tok("spm32k");
    REQUIRE(t);
    CHECK(pt_tokenizer_vocab_size(t) == 32000);
    CHECK(!strcmp(pt_tokenizer_kind(t), "sentencepiece BPE"));
    CHECK(pt_tokenizer_adds_bos(t) && pt_tokenizer_bos(t) == 1 && pt_tokenizer_eos(t) == 2);
    check_fixture(t, "spm32k", 1);
    pt_tokenizer_free(t);
}

PT_TEST(test_tokenizer_qwen3_fixture) {
    pt_tokenizer *t = load_tok("qwen3");
    REQUIRE(t);
    CHECK(pt_tokenizer_vocab_size(t) == 151669);
    CHECK(!pt_tokenizer_adds_bos(t) && pt_tokenizer_bos(t) == -1);
    CHECK(pt_tokenizer_eos(t) == 151645);
    /* <think> is an added token that is not special: recognised, kept by skip_special */
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK_OK(pt_tokenizer_encode(t, "<think>x</think>", 16, false, &ids, &n));
    CHECK(n == 3 && ids && ids[0] == 151667 && ids[2] == 151668);
    char *s = NULL;
    CHECK_OK(pt_tokenizer_decode(t, ids, n, true, &s));
    CHECK(s && !strcmp(s, "<think>x</think>"));
    free(s);
    free(ids);
    check_fixture(t, "qwen3", 1);
    pt_tokenizer_free(t);
}

/* Encoding throughput, reported for information (the compass and training encode thousands
 * of texts); the check only catches pathological slowness. */
PT_TEST(test_tokenizer_encode_speed) {
    pt_tokenizer *t = load_tok("llama3");
    json_t *texts = load_json("fixtures/tokenizers/texts.json");
    REQUIRE(t && texts);
    size_t bytes = 0, tokens = 0;
    double t0 = now_s();
    for (int rep = 0; rep < 200; rep++)
        for (size_t i = 0; i < json_array_size(texts); i++) {
            json_t *s = json_array_get(texts, i);
            int32_t *ids = NULL;
            size_t n = 0;
            CHECK_OK(pt_tokenizer_encode(t, json_string_value(s), json_string_length(s), false, &ids, &n));
            free(ids);
            bytes += json_string_length(s);
            tokens += n;
        }
    double dt = now_s() - t0;
    printf("    encode: %.1f MB/s, %.0f k tokens/s\n", bytes / dt / 1e6, tokens / dt / 1e3);
    CHECK_MSG(bytes / dt > 1e5, "encoding runs at only %.0f bytes/s", bytes / dt);
    json_decref(texts);
    pt_tokenizer_free(t);
}

PT_TEST(test_tokenizer_long_word) {
    /* a 100k-character word goes through the heap-based merge, not a quadratic loop */
    pt_tokenizer *t = load_tok("spm32k");
    REQUIRE(t);
    size_t n = 100000;
    char *s = malloc(n);
    for (size_t i = 0; i < n; i++) s[i] = "abcdefgh"[i % 8];
    int32_t *ids = NULL;
    size_t ni = 0;
    double t0 = now_s();
    CHECK_OK(pt_tokenizer_encode(t, s, n, false, &ids, &ni));
    CHECK(now_s() - t0 < 2.0);
    char *back = NULL;
    CHECK_OK(pt_tokenizer_decode(t, ids, ni, false, &back));
    CHECK(back && strlen(back) == n && !memcmp(back, s, n));
    free(back);
    free(ids);
    free(s);
    pt_tokenizer_free(t);
}

PT_TEST(test_tokenizer_stop_ids) {
    pt_tokenizer *t = load_tok("llama3");
    REQUIRE(t);
    int32_t ids[8];
    int n = 0;
    CHECK_OK(pt_tokenizer_stop_ids(t, ids, 8, &n));
    CHECK(n == 2 && ids[0] == 128001 && ids[1] == 128009);
    CHECK(pt_tokenizer_stop_ids(t, ids, 1, &n) == PT_ERR_ARG);
    pt_tokenizer_free(t);
    t = load_tok("qwen3");
    REQUIRE(t);
    CHECK_OK(pt_tokenizer_stop_ids(t, ids, 8, &n));
    CHECK(n == 2 && ids[0] == 151645 && ids[1] == 151643);
    pt_tokenizer_free(t);
    /* a directory is taken to hold tokenizer.json (and tokenizer_config.json) */
    REQUIRE_OK(pt_tokenizer_load_json(&t, pt_test_shared("assets/tokenizers/spm32k")));
    CHECK_OK(pt_tokenizer_stop_ids(t, ids, 8, &n));
    CHECK(n == 1 && ids[0] == 2);
    pt_tokenizer_free(t);
}

/* ---- bad input ------------------------------------------------------------------------ */

PT_TEST(test_tokenizer_invalid_utf8) {
    pt_tokenizer *t = load_tok("llama3");
    REQUIRE(t);
    int32_t *ids = (int32_t *)1;
    size_t n = 7;
    static const char *bad[] = {"abc\xff", "abc\xc3", "abc\xed\xa0\x80", "abc\xc0\xaf", "abc\xf4\x90\x80\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(pt_tokenizer_encode(t, bad[i], strlen(bad[i]), false, &ids, &n) == PT_ERR_ARG);
        CHECK_MSG(strstr(pt_errmsg(), "byte offset 3"), "message: %s", pt_errmsg());
        CHECK(ids == NULL && n == 0);
    }
    /* NUL bytes are valid UTF-8 and are tokenized, not taken as the end */
    CHECK_OK(pt_tokenizer_encode(t, "a\0b", 3, false, &ids, &n));
    CHECK(n >= 2);
    free(ids);
    pt_tokenizer_free(t);
}

PT_TEST(test_tokenizer_decode_out_of_range) {
    pt_tokenizer *t = load_tok("llama3");
    REQUIRE(t);
    int32_t ids[] = {9906, 128256};
    char *s = (char *)1;
    CHECK(pt_tokenizer_decode(t, ids, 2, false, &s) == PT_ERR_ARG);
    CHECK_MSG(strstr(pt_errmsg(), "128256") && strstr(pt_errmsg(), "size 128256") && strstr(pt_errmsg(), "position 1"),
              "message: %s", pt_errmsg());
    CHECK(s == NULL);
    ids[1] = -5;
    CHECK(pt_tokenizer_decode(t, ids, 2, false, &s) == PT_ERR_ARG && strstr(pt_errmsg(), "-5"));
    pt_tokenizer_free(t);
}

static pt_status parse_str(const char *json, pt_tokenizer **t) {
    return pt_tokenizer_parse_json(t, json, strlen(json), "bad.json");
}

PT_TEST(test_tokenizer_malformed_json) {
    pt_tokenizer *t = NULL;
    CHECK(parse_str("{\"model\": ", &t) == PT_ERR_FORMAT && t == NULL);
    CHECK_MSG(strstr(pt_errmsg(), "bad.json") && strstr(pt_errmsg(), "line 1"), "message: %s", pt_errmsg());
    CHECK(parse_str("[1, 2]", &t) == PT_ERR_FORMAT && strstr(pt_errmsg(), "bad.json"));
    CHECK(parse_str("{\"model\": {\"type\": \"BPE\"}}", &t) == PT_ERR_FORMAT);
    CHECK_MSG(strstr(pt_errmsg(), "bad.json") && strstr(pt_errmsg(), "model.vocab"), "message: %s", pt_errmsg());
    CHECK(parse_str("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, "
                    "\"merges\": [\"a b\", \"a c\"]}}", &t) == PT_ERR_FORMAT);
    CHECK_MSG(strstr(pt_errmsg(), "bad.json") && strstr(pt_errmsg(), "model.merges[1]") && strstr(pt_errmsg(), "'c'"),
              "message: %s", pt_errmsg());
    CHECK(parse_str("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}}", &t) ==
          PT_ERR_FORMAT);
    CHECK_MSG(strstr(pt_errmsg(), "model.merges[0]"), "message: %s", pt_errmsg());
    CHECK(parse_str("{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", 0.0]]}}", &t) == PT_ERR_UNSUPPORTED);
    CHECK_MSG(strstr(pt_errmsg(), "bad.json") && strstr(pt_errmsg(), "model.type") && strstr(pt_errmsg(), "Unigram"),
              "message: %s", pt_errmsg());
    CHECK(parse_str("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}", &t) == PT_ERR_UNSUPPORTED);
    CHECK(strstr(pt_errmsg(), "WordPiece") != NULL);
    CHECK(parse_str("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}, \"pre_tokenizer\": "
                    "{\"type\": \"BertPreTokenizer\"}}", &t) == PT_ERR_UNSUPPORTED);
    CHECK_MSG(strstr(pt_errmsg(), "pre_tokenizer") && strstr(pt_errmsg(), "BertPreTokenizer"), "message: %s",
              pt_errmsg());
    CHECK(parse_str("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}, \"pre_tokenizer\": {\"type\": \"Split\", "
                    "\"pattern\": {\"Regex\": \"(\"}, \"behavior\": \"Isolated\"}}", &t) == PT_ERR_FORMAT);
    CHECK_MSG(strstr(pt_errmsg(), "pre_tokenizer.pattern.Regex"), "message: %s", pt_errmsg());
    CHECK(parse_str("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 2000000000}}}", &t) == PT_ERR_FORMAT);
    CHECK(parse_str("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0}}}", &t) == PT_ERR_FORMAT);
    CHECK(t == NULL);
    /* a missing file names the path */
    CHECK(pt_tokenizer_load_json(&t, "/nonexistent/tokenizer.json") == PT_ERR_IO);
    CHECK(strstr(pt_errmsg(), "/nonexistent/tokenizer.json") != NULL);
}

/* A small hand-written tokenizer exercising what the three real ones do not: Metaspace,
 * added tokens with lstrip/rstrip, unknown characters, a decoder-less join. */
PT_TEST(test_tokenizer_small_features) {
    static const char json[] =
        "{\"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"fuse_unk\": true,"
        " \"vocab\": {\"<unk>\": 0, \"\\u2581\": 1, \"a\": 2, \"b\": 3, \"\\u2581a\": 4, \"ab\": 5, \"\\u2581ab\": 6},"
        " \"merges\": [\"a b\", \"\\u2581 a\", \"\\u2581 ab\"]},"
        " \"added_tokens\": [{\"id\": 7, \"content\": \"<X>\", \"special\": true, \"lstrip\": true, \"rstrip\": true}],"
        " \"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": \"\\u2581\", \"prepend_scheme\": \"first\","
        " \"split\": true},"
        " \"decoder\": {\"type\": \"Metaspace\", \"replacement\": \"\\u2581\", \"prepend_scheme\": \"first\"}}";
    pt_tokenizer *t = NULL;
    REQUIRE_OK(pt_tokenizer_parse_json(&t, json, strlen(json), "small.json"));
    CHECK(pt_tokenizer_vocab_size(t) == 8);
    int32_t *ids = NULL;
    size_t n = 0;
    /* "ab ab" -> "▁ab", "▁ab"; " <X>  " is absorbed by lstrip/rstrip; "xy" is unknown (fused) */
    const char *text = "ab ab <X>  ab xyb";
    CHECK_OK(pt_tokenizer_encode(t, text, strlen(text), false, &ids, &n));
    int32_t want[] = {6, 6, 7, 5, 1, 0, 3};
    if (ids && !ids_equal(ids, n, want, 7)) report_ids("encode", text, ids, n, want, 7);
    char *s = NULL;
    CHECK_OK(pt_tokenizer_decode(t, ids, n, true, &s));
    CHECK_MSG(s && !strcmp(s, "ab abab <unk>b"), "decoded \"%s\"", s ? s : "(null)");
    free(s);
    free(ids);
    pt_tokenizer_free(t);
}

/* ---- GGUF ----------------------------------------------------------------------------- */

PT_TEST(test_tokenizer_gguf_stories260k) {
    pt_gguf g;
    REQUIRE_OK(pt_gguf_open(&g, pt_test_shared("assets/models/stories260K/stories260K.gguf")));
    pt_tokenizer *t = NULL;
    pt_status st = pt_tokenizer_load_gguf(&t, &g);
    pt_gguf_close(&g); /* the tokenizer keeps its own copies */
    REQUIRE_OK(st);
    CHECK(pt_tokenizer_vocab_size(t) == 512);
    CHECK(pt_tokenizer_bos(t) == 1 && pt_tokenizer_eos(t) == 2 && pt_tokenizer_adds_bos(t));
    CHECK(!strcmp(pt_tokenizer_kind(t), "sentencepiece (scores)"));

    json_t *cases = load_json("fixtures/reference/stories260K-hf/cases.json");
    REQUIRE(cases);
    size_t n;
    int32_t *ids = json_ids(json_object_get(cases, "greedy_from_bos"), &n);
    CHECK(n == 60);
    char *text = NULL;
    CHECK_OK(pt_tokenizer_decode(t, ids, n, false, &text));
    const char *want = json_string_value(json_object_get(cases, "greedy_text"));
    CHECK_MSG(text && !strcmp(text, want), "decoded \"%s\"\n    want    \"%s\"", text ? text : "(null)", want);
    free(text);
    /* after BOS the dummy-prefix space is dropped, as llama2.c prints it */
    int32_t *with_bos = malloc((n + 1) * sizeof *with_bos);
    with_bos[0] = 1;
    memcpy(with_bos + 1, ids, n * sizeof *ids);
    CHECK_OK(pt_tokenizer_decode(t, with_bos, n + 1, true, &text));
    CHECK(text && !strcmp(text, want + 1));
    free(text);
    CHECK_OK(pt_tokenizer_decode(t, with_bos, n + 1, false, &text));
    CHECK(text && !strncmp(text, "<s>Once upon", 12));
    free(text);

    /* ids from llama2.c's encoder (its merge loop run over tok512.bin, the same vocabulary
     * and scores): the first is the start of the greedy text, the second needs byte fallback */
    {
        static const int32_t want1[] = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426};
        static const int32_t want2[] = {1,   410, 469, 198, 191, 325, 402, 410, 233, 154, 168,
                                        233, 159, 175, 410, 243, 162, 155, 131, 279, 289, 411};
        const char *s1 = "Once upon a time, there was a little girl named Lily.";
        const char *s2 = "Z\xC3\xBCrich \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80 done";
        int32_t *got = NULL;
        size_t ng = 0;
        CHECK_OK(pt_tokenizer_encode(t, s1, strlen(s1), true, &got, &ng));
        if (got && !ids_equal(got, ng, want1, 16)) report_ids("encode", s1, got, ng, want1, 16);
        free(got);
        CHECK_OK(pt_tokenizer_encode(t, s2, strlen(s2), true, &got, &ng));
        if (got && !ids_equal(got, ng, want2, 22)) report_ids("encode", s2, got, ng, want2, 22);
        free(got);
    }
    /* round trips, including characters that need byte fallback */
    const char *sents[] = {"Once upon a time, there was a little girl named Lily.",
                           "She said: \"Wow!\"  Then\nthey played.", "Zürich 日本 \xF0\x9F\x98\x80 done"};
    for (int i = 0; i < 3; i++) {
        int32_t *enc = NULL;
        size_t ne = 0;
        CHECK_OK(pt_tokenizer_encode(t, sents[i], strlen(sents[i]), true, &enc, &ne));
        CHECK(ne > 1 && enc[0] == 1);
        CHECK_OK(pt_tokenizer_decode(t, enc, ne, false, &text));
        CHECK_MSG(text && !strncmp(text, "<s>", 3) && !strcmp(text + 3, sents[i]), "round trip %d: \"%s\"", i,
                  text ? text : "(null)");
        free(text);
        free(enc);
    }
    /* control tokens written in the text are recognised; the text after one gets its own
     * dummy-prefix space, as in llama.cpp and Hugging Face's legacy Llama tokenizer */
    int32_t *sp = NULL;
    size_t nsp = 0;
    CHECK_OK(pt_tokenizer_encode(t, "a</s>b", 6, false, &sp, &nsp));
    CHECK(nsp >= 3 && sp[1] == 2);
    CHECK_OK(pt_tokenizer_decode(t, sp, nsp, false, &text));
    CHECK(text && !strcmp(text, " a</s> b"));
    free(text);
    free(sp);
    /* merges happen: the greedy text re-encodes to no more tokens than the model wrote */
    int32_t *enc = NULL;
    size_t ne = 0;
    CHECK_OK(pt_tokenizer_encode(t, want + 1, strlen(want + 1), false, &enc, &ne));
    CHECK_MSG(ne <= n, "%zu tokens for a text the model wrote in %zu", ne, n);
    CHECK(ne > 0 && enc[0] == ids[0]);
    free(enc);
    free(ids);
    free(with_bos);
    json_decref(cases);
    pt_tokenizer_free(t);
}

/* Writes a "gpt2" GGUF vocabulary from a tokenizer.json and checks it encodes the fixture
 * texts as the tokenizer.json does. */
static void gguf_from_json(const char *name, const char *pre, int32_t bos, int32_t eos) {
    char rel[256];
    snprintf(rel, sizeof rel, "assets/tokenizers/%s/tokenizer.json", name);
    json_t *tj = load_json(rel);
    pt_tokenizer *ref = load_tok(name);
    if (!tj || !ref) {
        json_decref(tj);
        pt_tokenizer_free(ref);
        return;
    }
    int32_t nv = pt_tokenizer_vocab_size(ref);
    const char **tokens = calloc((size_t)nv, sizeof *tokens);
    int32_t *types = calloc((size_t)nv, sizeof *types);
    for (int32_t i = 0; i < nv; i++) {
        tokens[i] = pt_tokenizer_token_text(ref, i);
        types[i] = pt_tokenizer_is_special(ref, i) ? 3 : 1;
    }
    /* the added tokens that are not special (Qwen's <think>) are user-defined */
    json_t *added = json_object_get(tj, "added_tokens");
    for (size_t i = 0; i < json_array_size(added); i++) {
        json_t *a = json_array_get(added, i);
        if (!json_is_true(json_object_get(a, "special")))
            types[json_integer_value(json_object_get(a, "id"))] = 4;
    }
    json_t *merges = json_object_get(json_object_get(tj, "model"), "merges");
    size_t nm = json_array_size(merges);
    char **ms = calloc(nm, sizeof *ms);
    for (size_t i = 0; i < nm; i++) {
        json_t *m = json_array_get(merges, i);
        if (json_is_string(m)) {
            ms[i] = strdup(json_string_value(m));
        } else {
            const char *a = json_string_value(json_array_get(m, 0)), *b = json_string_value(json_array_get(m, 1));
            ms[i] = malloc(strlen(a) + strlen(b) + 2);
            sprintf(ms[i], "%s %s", a, b);
        }
    }
    pt_gguf_writer *w = pt_gguf_writer_new();
    pt_gguf_set_str(w, "general.architecture", "llama");
    pt_gguf_set_str(w, "tokenizer.ggml.model", "gpt2");
    pt_gguf_set_str(w, "tokenizer.ggml.pre", pre);
    pt_gguf_set_arr_str(w, "tokenizer.ggml.tokens", tokens, (uint64_t)nv);
    pt_gguf_set_arr_i32(w, "tokenizer.ggml.token_type", types, (uint64_t)nv);
    pt_gguf_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)ms, nm);
    if (bos >= 0) pt_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
    pt_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
    pt_gguf_set_str(w, "tokenizer.chat_template", "{{ x }}");
    char path[600];
    snprintf(path, sizeof path, "%s/%s-vocab.gguf", pt_test_tmpdir(), name);
    pt_status st = pt_gguf_writer_write(w, path);
    pt_gguf_writer_free(w);
    for (size_t i = 0; i < nm; i++) free(ms[i]);
    free(ms);
    free(tokens);
    free(types);
    json_decref(tj);
    CHECK_OK(st);

    pt_gguf g;
    pt_tokenizer *t = NULL;
    if (!st && !(st = pt_gguf_open(&g, path))) {
        st = pt_tokenizer_load_gguf(&t, &g);
        pt_gguf_close(&g);
    }
    CHECK_OK(st);
    if (t) {
        CHECK(!strcmp(pt_tokenizer_kind(t), "byte-level BPE"));
        CHECK(pt_tokenizer_vocab_size(t) == nv && pt_tokenizer_eos(t) == eos);
        CHECK(pt_tokenizer_chat_template_source(t) && !strcmp(pt_tokenizer_chat_template_source(t), "{{ x }}"));
        snprintf(rel, sizeof rel, "fixtures/tokenizers/%s.json", name);
        json_t *fx = load_json(rel);
        json_t *cases = json_object_get(fx, "cases");
        for (size_t i = 0; i < json_array_size(cases); i++) {
            json_t *c = json_array_get(cases, i);
            const char *text = json_string_value(json_object_get(c, "text"));
            size_t len = json_string_length(json_object_get(c, "text")), nw, ng;
            int32_t *want = json_ids(json_object_get(c, "ids"), &nw), *got = NULL;
            CHECK_OK(pt_tokenizer_encode(t, text, len, false, &got, &ng));
            if (got && !ids_equal(got, ng, want, nw)) report_ids("gguf encode", text, got, ng, want, nw);
            free(got);
            CHECK_OK(pt_tokenizer_encode(t, text, len, true, &got, &ng));
            /* llama.cpp adds BOS for llama-bpe vocabularies by default, not for qwen2 */
            if (got && bos >= 0) CHECK(ng == nw + 1 && got[0] == bos);
            if (got && bos < 0) CHECK(ng == nw);
            free(got);
            char *dec = NULL;
            CHECK_OK(pt_tokenizer_decode(t, want, nw, false, &dec));
            CHECK(dec && !strcmp(dec, json_string_value(json_object_get(c, "decoded"))));
            free(dec);
            free(want);
        }
        json_decref(fx);
        pt_tokenizer_free(t);
    }
    pt_tokenizer_free(ref);
}

PT_TEST(test_tokenizer_gguf_gpt2_llama3) { gguf_from_json("llama3", "llama-bpe", 128000, 128009); }

PT_TEST(test_tokenizer_gguf_gpt2_qwen2) { gguf_from_json("qwen3", "qwen2", -1, 151645); }

PT_TEST(test_tokenizer_gguf_bad) {
    /* unsupported model and missing keys are errors naming the key */
    pt_gguf_writer *w = pt_gguf_writer_new();
    pt_gguf_set_str(w, "tokenizer.ggml.model", "t5");
    char path[600];
    snprintf(path, sizeof path, "%s/bad.gguf", pt_test_tmpdir());
    REQUIRE_OK(pt_gguf_writer_write(w, path));
    pt_gguf_writer_free(w);
    pt_gguf g;
    REQUIRE_OK(pt_gguf_open(&g, path));
    pt_tokenizer *t = NULL;
    CHECK(pt_tokenizer_load_gguf(&t, &g) == PT_ERR_UNSUPPORTED && t == NULL);
    CHECK_MSG(strstr(pt_errmsg(), "tokenizer.ggml.model") && strstr(pt_errmsg(), "t5"), "message: %s", pt_errmsg());
    pt_gguf_close(&g);

    w = pt_gguf_writer_new();
    pt_gguf_set_str(w, "tokenizer.ggml.model", "gpt2");
    const char *toks[] = {"a", "b"};
    pt_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, 2);
    REQUIRE_OK(pt_gguf_writer_write(w, path));
    pt_gguf_writer_free(w);
    REQUIRE_OK(pt_gguf_open(&g, path));
    CHECK(pt_tokenizer_load_gguf(&t, &g) == PT_ERR_FORMAT && strstr(pt_errmsg(), "tokenizer.ggml.merges"));
    pt_gguf_close(&g);
}
