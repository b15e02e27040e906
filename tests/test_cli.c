/* End-to-end tests of the politune command: the JSON contracts (logits, tokenize, score,
 * inspect), generation, and bad input answered with one clear line and a non-zero exit. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "internal.h"
#include "test.h"

#define BIN "\"$POLITUNE_BIN\""

static const char *stories(void) { return pt_test_shared("assets/models/stories260K/stories260K.gguf"); }
static int count_lines(const char *s) {
    int n = 0;
    for (; s && *s; s++) n += *s == '\n';
    return n;
}

/* Runs a command expected to fail: non-zero exit, exactly one line on stderr containing
 * `needle`, nothing on stdout. */
static void expect_error(const char *needle, const char *cmdline) {
    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err, "%s", cmdline);
    CHECK_MSG(rc != 0 && rc != 128, "'%s' exited %d", cmdline, rc);
    CHECK_MSG(err && strstr(err, needle), "'%s': stderr '%s' lacks '%s'", cmdline, err ? err : "", needle);
    CHECK_MSG(count_lines(err) == 1, "'%s': %d lines on stderr: %s", cmdline, count_lines(err), err ? err : "");
    CHECK_MSG(!out || !*out, "'%s': unexpected stdout '%s'", cmdline, out);
    free(out);
    free(err);
}

static void check_logits_cli(const char *model, const char *adapter_flag, const char *tensor) {
    json_t *cases = fx_cases(model);
    REQUIRE(cases);
    json_t *ids = json_object_get(json_array_get(json_object_get(cases, "forward"), 0), "ids");
    char list[4096] = "";
    for (size_t i = 0; i < json_array_size(ids); i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%lld", i ? "," : "", (long long)json_integer_value(json_array_get(ids, i)));
    char *out = NULL, *err = NULL;
    char adapter[700] = "";
    if (adapter_flag) snprintf(adapter, sizeof adapter, "--adapter '%s/adapter'", fx_dir(model));
    int rc = pt_test_run(&out, &err, BIN " logits --model '%s' %s --ids %s", fx_dir(model), adapter, list);
    CHECK_MSG(rc == 0, "logits exited %d: %s", rc, err ? err : "");
    json_t *o = out ? json_loads(out, 0, NULL) : NULL;
    json_t *rows = json_object_get(o, "logits");
    CHECK_MSG(json_array_size(rows) == json_array_size(ids), "logits: %zu rows for %zu ids", json_array_size(rows), json_array_size(ids));
    pt_safetensors exp = {0};
    char p[700];
    snprintf(p, sizeof p, "%s/expected.safetensors", fx_dir(model));
    if (json_array_size(rows) == json_array_size(ids) && pt_safetensors_open(&exp, p) == PT_OK) {
        const pt_tensor_view *t = pt_safetensors_find(&exp, tensor);
        REQUIRE(t);
        int V = (int)t->shape[1], T = (int)t->shape[0];
        float *got = malloc(sizeof(float) * T * V);
        for (int r = 0; r < T; r++)
            for (int v = 0; v < V; v++) got[(size_t)r * V + v] = (float)json_number_value(json_array_get(json_array_get(rows, r), v));
        fx_close("CLI logits", got, (const float *)t->data, (int64_t)T * V, 1e-4);
        free(got);
        pt_safetensors_close(&exp);
    }
    json_decref(o);
    json_decref(cases);
    free(out);
    free(err);
}

PT_TEST(test_cli_logits_contract) {
    check_logits_cli("llama3", NULL, "forward.0.logits");
    check_logits_cli("qwen2", "lora", "forward_lora.0.logits");
}

PT_TEST(test_cli_generate_story_from_bos) {
    json_t *cases = fx_cases("stories260K-hf");
    REQUIRE(cases);
    char *out = NULL, *err = NULL;
    /* an empty prompt is just BOS: greedy decoding reproduces the documented story */
    int rc = pt_test_run(&out, &err, BIN " generate --model '%s' --prompt '' --max-new-tokens 60 --json", stories());
    CHECK_MSG(rc == 0, "generate exited %d: %s", rc, err ? err : "");
    json_t *o = out ? json_loads(out, 0, NULL) : NULL;
    const char *text = json_string_value(json_object_get(o, "text"));
    const char *want = json_string_value(json_object_get(cases, "greedy_text"));
    CHECK_MSG(text && want && !strcmp(text, want), "text '%s'", text ? text : "(none)");
    CHECK(json_array_size(json_object_get(o, "ids")) == 60);
    json_decref(o);
    free(out);
    free(err);
    /* streaming prints the same text, and a stop string cuts it */
    rc = pt_test_run(&out, &err, BIN " generate --model '%s' --prompt '' --max-new-tokens 60 --stop 'Lily'", stories());
    CHECK(rc == 0);
    CHECK_MSG(out && !strcmp(out, " Once upon a time, there was a little girl named \n"), "stream '%s'", out ? out : "");
    free(out);
    free(err);
    /* sampling with a seed is repeatable */
    char *a = NULL, *b = NULL;
    pt_test_run(&a, NULL, BIN " generate --model '%s' --prompt 'Once' --temperature 0.9 --top-p 0.9 --seed 7 --max-new-tokens 30", stories());
    pt_test_run(&b, NULL, BIN " generate --model '%s' --prompt 'Once' --temperature 0.9 --top-p 0.9 --seed 7 --max-new-tokens 30", stories());
    CHECK(a && b && strlen(a) > 10 && !strcmp(a, b));
    free(a);
    free(b);
    json_decref(cases);
}

PT_TEST(test_cli_tokenize_and_score) {
    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err, BIN " tokenize --model '%s' --text 'Hello world'", pt_test_shared("assets/tokenizers/llama3/tokenizer.json"));
    CHECK(rc == 0 && out && !strcmp(out, "{\"ids\":[9906,1917]}\n"));
    free(out);
    free(err);
    rc = pt_test_run(&out, &err, BIN " tokenize --model '%s' --decode 9906,1917", pt_test_shared("assets/tokenizers/llama3/tokenizer.json"));
    CHECK(rc == 0 && out && !strcmp(out, "{\"text\":\"Hello world\"}\n"));
    free(out);
    free(err);
    rc = pt_test_run(&out, &err, BIN " score --model '%s' --prompt 'Once upon a time' --continuation ' there was a girl'", stories());
    CHECK_MSG(rc == 0, "score: %s", err ? err : "");
    json_t *o = out ? json_loads(out, 0, NULL) : NULL;
    double sum = 0;
    json_t *toks = json_object_get(o, "tokens");
    for (size_t i = 0; i < json_array_size(toks); i++) sum += json_number_value(json_object_get(json_array_get(toks, i), "logprob"));
    CHECK(json_array_size(toks) > 0);
    CHECK_NEAR(json_number_value(json_object_get(o, "logprob")), sum, 1e-6);
    CHECK(json_number_value(json_object_get(o, "logprob")) < 0);
    json_decref(o);
    free(out);
    free(err);
}

PT_TEST(test_cli_inspect_and_chat) {
    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err, BIN " inspect '%s' --json", fx_dir("qwen2"));
    json_t *o = out ? json_loads(out, 0, NULL) : NULL;
    CHECK(rc == 0 && o);
    CHECK(!strcmp(json_string_value(json_object_get(o, "architecture")) ?: "", "qwen2"));
    CHECK(json_is_true(json_object_get(o, "qkv_bias")) && json_is_true(json_object_get(o, "tied_embeddings")));
    json_decref(o);
    free(out);
    free(err);
    rc = pt_test_run(&out, &err, BIN " inspect '%s'", stories());
    CHECK(rc == 0 && out && strstr(out, "llama") && strstr(out, "5 layers"));
    free(out);
    free(err);
    rc = pt_test_run(&out, &err, "printf 'Tell me a story\\n/reset\\nHi\\n/exit\\n' | " BIN " chat --model '%s' --chat-template alpaca --max-new-tokens 8 --seed 1", stories());
    CHECK_MSG(rc == 0 && out && count_lines(out) == 2, "chat exited %d, out '%s' err '%s'", rc, out ? out : "", err ? err : "");
    free(out);
    free(err);
}

PT_TEST(test_cli_bad_input) {
    const char *dir = pt_test_tmpdir();
    char cmd[2048];
    snprintf(cmd, sizeof cmd, BIN " logits --model '%s' --ids 1,2,99999", fx_dir("llama3"));
    expect_error("99999", cmd);
    snprintf(cmd, sizeof cmd, BIN " logits --model '%s' --ids 1,x,3", fx_dir("llama3"));
    expect_error("'x'", cmd);
    snprintf(cmd, sizeof cmd, BIN " generate --model /no/such/model --prompt hi");
    expect_error("/no/such/model", cmd);
    snprintf(cmd, sizeof cmd, BIN " generate --model '%s' --prompt hi --chat --chat-template vicuna", stories());
    expect_error("vicuna", cmd);
    snprintf(cmd, sizeof cmd, BIN " generate --model '%s' --prompt hi --chat", stories());
    expect_error("--chat-template", cmd);
    snprintf(cmd, sizeof cmd, BIN " generate --model '%s' --prompt hi --temperature -1", stories());
    expect_error("--temperature", cmd);
    snprintf(cmd, sizeof cmd, BIN " generate --model '%s' --bogus", stories());
    expect_error("--bogus", cmd);
    snprintf(cmd, sizeof cmd, BIN " tokenize --model '%s' --text \"$(printf 'ab\\377cd')\"", pt_test_shared("assets/tokenizers/llama3/tokenizer.json"));
    expect_error("UTF-8", cmd);
    snprintf(cmd, sizeof cmd, BIN " tokenize --model '%s' --decode 5,200000", pt_test_shared("assets/tokenizers/llama3/tokenizer.json"));
    expect_error("200000", cmd);
    /* a truncated GGUF */
    snprintf(cmd, sizeof cmd, "head -c 30000 '%s' > '%s/cut.gguf' && " BIN " inspect '%s/cut.gguf'", stories(), dir, dir);
    expect_error("cut.gguf", cmd);
    /* an adapter that does not fit the model */
    snprintf(cmd, sizeof cmd, BIN " logits --model '%s' --adapter '%s/adapter' --ids 1,2", fx_dir("mistral"), fx_dir("llama3"));
    expect_error("the base model needs", cmd);
    expect_error("unknown command", BIN " frobnicate");
}
