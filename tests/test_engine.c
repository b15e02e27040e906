/* Engine parity against the reference fixtures: logits with and without a LoRA adapter,
 * greedy continuations, stories260K in GGUF and Hugging Face form, batch vs one-at-a-time,
 * KV cache vs full recomputation. */
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "internal.h"
#include "test.h"

#define LOGIT_TOL 1e-4 /* x max |expected| (fixtures/README.md) */

/* Checks every forward case of a reference model, with (lora) or without the adapter. */
static void check_forward(const char *model, int lora) {
    pt_model *m = NULL;
    pt_adapter *a = NULL;
    pt_engine *e = NULL;
    pt_safetensors exp = {0};
    json_t *cases = fx_cases(model);
    REQUIRE(cases);
    char path[600];
    REQUIRE_OK(pt_model_load(&m, fx_dir(model)));
    snprintf(path, sizeof path, "%s/expected.safetensors", fx_dir(model));
    REQUIRE_OK(pt_safetensors_open(&exp, path));
    if (lora) {
        snprintf(path, sizeof path, "%s/adapter", fx_dir(model));
        REQUIRE_OK(pt_adapter_load(&a, path, m));
    }
    REQUIRE_OK(pt_engine_new(&e, m, 1, 256));
    pt_engine_set_adapter(e, a);
    json_t *fw = json_object_get(cases, "forward");
    for (size_t i = 0; i < json_array_size(fw); i++) {
        int n;
        int32_t *ids = fx_ids(json_object_get(json_array_get(fw, i), "ids"), &n);
        char name[128];
        snprintf(name, sizeof name, "%s.%zu.logits", lora ? "forward_lora" : "forward", i);
        const pt_tensor_view *t = pt_safetensors_find(&exp, name);
        CHECK_MSG(t, "%s: no tensor %s", model, name);
        const float *logits;
        CHECK_OK(pt_engine_truncate(e, 0, 0));
        CHECK_OK(pt_engine_forward_one(e, 0, ids, n, PT_LOGITS_ALL, &logits));
        if (t && logits) {
            CHECK(t->shape[0] == n && t->shape[1] == m->cfg.vocab_size);
            char what[256];
            snprintf(what, sizeof what, "%s %s", model, name);
            fx_close(what, logits, (const float *)t->data, (int64_t)n * m->cfg.vocab_size, LOGIT_TOL);
        }
        free(ids);
    }
    json_decref(cases);
    pt_engine_free(e);
    pt_adapter_free(a);
    pt_safetensors_close(&exp);
    pt_model_free(m);
}

static void check_greedy(const char *model, const char *key, int lora) {
    pt_model *m = NULL;
    pt_adapter *a = NULL;
    pt_engine *e = NULL;
    json_t *cases = fx_cases(model);
    REQUIRE(cases);
    REQUIRE_OK(pt_model_load(&m, fx_dir(model)));
    if (lora) {
        char path[600];
        snprintf(path, sizeof path, "%s/adapter", fx_dir(model));
        REQUIRE_OK(pt_adapter_load(&a, path, m));
    }
    REQUIRE_OK(pt_engine_new(&e, m, 1, 128));
    pt_engine_set_adapter(e, a);
    json_t *g = json_object_get(cases, key);
    int np, ng;
    int32_t *prompt = fx_ids(json_object_get(g, "prompt"), &np), *want = fx_ids(json_object_get(g, "generated"), &ng);
    pt_gen_params p = pt_gen_params_default();
    p.max_new_tokens = ng;
    pt_gen_result r;
    CHECK_OK(pt_generate(e, 0, prompt, np, &p, NULL, NULL, &r));
    CHECK_MSG(r.n_ids == ng, "%s %s: %d tokens generated, expected %d", model, key, r.n_ids, ng);
    for (int i = 0; i < ng && i < r.n_ids; i++)
        if (r.ids[i] != want[i]) { CHECK_MSG(0, "%s %s: token %d is %d, expected %d", model, key, i, r.ids[i], want[i]); break; }
    pt_gen_result_free(&r);
    free(prompt);
    free(want);
    json_decref(cases);
    pt_engine_free(e);
    pt_adapter_free(a);
    pt_model_free(m);
}

PT_TEST(test_engine_forward_llama3) { check_forward("llama3", 0); }
PT_TEST(test_engine_forward_llama3_bf16) { check_forward("llama3-bf16", 0); }
PT_TEST(test_engine_forward_mistral) { check_forward("mistral", 0); }
PT_TEST(test_engine_forward_qwen2) { check_forward("qwen2", 0); }
PT_TEST(test_engine_forward_stories260K_hf) { check_forward("stories260K-hf", 0); }
PT_TEST(test_engine_forward_lora_llama3) { check_forward("llama3", 1); }
PT_TEST(test_engine_forward_lora_llama3_bf16) { check_forward("llama3-bf16", 1); }
PT_TEST(test_engine_forward_lora_mistral) { check_forward("mistral", 1); }
PT_TEST(test_engine_forward_lora_qwen2) { check_forward("qwen2", 1); }

PT_TEST(test_engine_greedy_llama3) { check_greedy("llama3", "greedy_base", 0); }
PT_TEST(test_engine_greedy_llama3_bf16) { check_greedy("llama3-bf16", "greedy_base", 0); }
PT_TEST(test_engine_greedy_mistral) { check_greedy("mistral", "greedy_base", 0); }
PT_TEST(test_engine_greedy_qwen2) { check_greedy("qwen2", "greedy_base", 0); }
PT_TEST(test_engine_greedy_lora_llama3) { check_greedy("llama3", "greedy_lora", 1); }
PT_TEST(test_engine_greedy_lora_mistral) { check_greedy("mistral", "greedy_lora", 1); }
PT_TEST(test_engine_greedy_lora_qwen2) { check_greedy("qwen2", "greedy_lora", 1); }

/* The GGUF file keeps Meta's interleaved Q/K rows: a correct loader gives the -hf logits. */
PT_TEST(test_engine_stories260K_gguf_matches_hf) {
    pt_model *m = NULL;
    pt_engine *e = NULL;
    pt_safetensors exp = {0};
    json_t *cases = fx_cases("stories260K-hf");
    REQUIRE(cases);
    REQUIRE_OK(pt_model_load(&m, pt_test_shared("assets/models/stories260K/stories260K.gguf")));
    char path[600];
    snprintf(path, sizeof path, "%s/expected.safetensors", fx_dir("stories260K-hf"));
    REQUIRE_OK(pt_safetensors_open(&exp, path));
    REQUIRE_OK(pt_engine_new(&e, m, 1, 256));
    json_t *fw = json_object_get(cases, "forward");
    for (size_t i = 0; i < json_array_size(fw); i++) {
        int n;
        int32_t *ids = fx_ids(json_object_get(json_array_get(fw, i), "ids"), &n);
        char name[64];
        snprintf(name, sizeof name, "forward.%zu.logits", i);
        const pt_tensor_view *t = pt_safetensors_find(&exp, name);
        const float *logits = NULL;
        CHECK_OK(pt_engine_truncate(e, 0, 0));
        CHECK_OK(pt_engine_forward_one(e, 0, ids, n, PT_LOGITS_ALL, &logits));
        if (t && logits) fx_close("stories260K.gguf logits", logits, (const float *)t->data, (int64_t)n * m->cfg.vocab_size, LOGIT_TOL);
        free(ids);
    }
    /* greedy decoding from BOS reproduces the documented story */
    int ng;
    int32_t *want = fx_ids(json_object_get(cases, "greedy_from_bos"), &ng), bos = 1;
    pt_gen_params p = pt_gen_params_default();
    p.max_new_tokens = ng;
    pt_gen_result r;
    CHECK_OK(pt_generate(e, 0, &bos, 1, &p, NULL, NULL, &r));
    CHECK(r.n_ids == ng);
    for (int i = 0; i < ng && i < r.n_ids; i++)
        if (r.ids[i] != want[i]) { CHECK_MSG(0, "greedy token %d is %d, expected %d", i, r.ids[i], want[i]); break; }
    CHECK_MSG(r.text && !strcmp(r.text, json_string_value(json_object_get(cases, "greedy_text"))), "greedy text is '%s'", r.text ? r.text : "(null)");
    pt_gen_result_free(&r);
    free(want);
    json_decref(cases);
    pt_engine_free(e);
    pt_safetensors_close(&exp);
    pt_model_free(m);
}

/* Three sequences of different lengths in one batch give the same logits as one at a time,
 * and decoding token by token through the cache gives the logits of a full recomputation. */
PT_TEST(test_engine_batch_and_cache_consistency) {
    pt_model *m = NULL;
    pt_engine *e = NULL;
    REQUIRE_OK(pt_model_load(&m, fx_dir("qwen2")));
    REQUIRE_OK(pt_engine_new(&e, m, 3, 64));
    const int V = m->cfg.vocab_size;
    int32_t s0[] = {5, 17, 300, 42, 9, 1000, 77}, s1[] = {8}, s2[] = {100, 200, 300, 400};
    const int32_t *seqs[] = {s0, s1, s2};
    int lens[] = {7, 1, 4}, slots[] = {0, 1, 2};
    pt_batch b = {3, slots, seqs, lens};
    const float *lg;
    REQUIRE_OK(pt_engine_forward(e, &b, PT_LOGITS_ALL, &lg));
    float *batched = malloc(sizeof(float) * 12 * V);
    memcpy(batched, lg, sizeof(float) * 12 * V);
    for (int s = 0, row = 0; s < 3; row += lens[s], s++) {
        CHECK_OK(pt_engine_truncate(e, 0, 0));
        CHECK_OK(pt_engine_forward_one(e, 0, seqs[s], lens[s], PT_LOGITS_ALL, &lg));
        fx_close("batched vs single", batched + (size_t)row * V, lg, (int64_t)lens[s] * V, 1e-5);
    }
    /* token-by-token through the cache */
    CHECK_OK(pt_engine_truncate(e, 1, 0));
    for (int t = 0; t < 7; t++) {
        CHECK_OK(pt_engine_forward_one(e, 1, s0 + t, 1, PT_LOGITS_LAST, &lg));
        fx_close("cached decode vs full", lg, batched + (size_t)t * V, V, 1e-5);
    }
    CHECK(pt_engine_slot_len(e, 1) == 7);
    /* bad ids and overflow are refused with a message, not computed */
    int32_t bad = V + 5;
    CHECK(pt_engine_forward_one(e, 2, &bad, 1, PT_LOGITS_LAST, &lg) == PT_ERR_ARG);
    CHECK(strstr(pt_errmsg(), "out of range") != NULL);
    free(batched);
    pt_engine_free(e);
    pt_model_free(m);
}

/* Scoring equals the sum of per-token log-softmax values of a full forward. */
PT_TEST(test_engine_score_matches_dpo_fixture) {
    pt_model *m = NULL;
    pt_engine *e = NULL;
    pt_adapter *a = NULL;
    json_t *cases = fx_cases("llama3");
    REQUIRE(cases);
    REQUIRE_OK(pt_model_load(&m, fx_dir("llama3")));
    char path[600];
    snprintf(path, sizeof path, "%s/adapter", fx_dir("llama3"));
    REQUIRE_OK(pt_adapter_load(&a, path, m));
    REQUIRE_OK(pt_engine_new(&e, m, 4, 64));
    json_t *pairs = json_object_get(json_object_get(cases, "dpo"), "pairs");
    for (int with = 0; with < 2; with++) {
        pt_engine_set_adapter(e, with ? a : NULL);
        for (size_t i = 0; i < json_array_size(pairs); i++) {
            json_t *p = json_array_get(pairs, i);
            int np, nc, nr;
            int32_t *pr = fx_ids(json_object_get(p, "prompt"), &np), *ch = fx_ids(json_object_get(p, "chosen"), &nc),
                    *rj = fx_ids(json_object_get(p, "rejected"), &nr);
            const int32_t *prompts[] = {pr, pr}, *conts[] = {ch, rj};
            int npr[] = {np, np}, nco[] = {nc, nr};
            double lp[2];
            CHECK_OK(pt_score(e, 2, prompts, npr, conts, nco, lp, NULL));
            double want_c = json_number_value(json_object_get(p, with ? "policy_chosen_logp" : "ref_chosen_logp"));
            double want_r = json_number_value(json_object_get(p, with ? "policy_rejected_logp" : "ref_rejected_logp"));
            CHECK_NEAR(lp[0], want_c, 1e-5 * fabs(want_c));
            CHECK_NEAR(lp[1], want_r, 1e-5 * fabs(want_r));
            free(pr);
            free(ch);
            free(rj);
        }
    }
    json_decref(cases);
    pt_engine_free(e);
    pt_adapter_free(a);
    pt_model_free(m);
}

/* A prompt longer than the prefill chunk gives the same last-token logits as one pass. */
PT_TEST(test_engine_chunked_prefill) {
    pt_model *m = NULL;
    pt_engine *e = NULL;
    REQUIRE_OK(pt_model_load(&m, fx_dir("llama3")));
    REQUIRE_OK(pt_engine_new(&e, m, 1, 700));
    const int n = 600, V = m->cfg.vocab_size;
    int32_t *ids = malloc(sizeof(int32_t) * n);
    for (int i = 0; i < n; i++) ids[i] = (int32_t)((i * 7919 + 13) % V);
    const float *lg;
    REQUIRE_OK(pt_engine_forward_one(e, 0, ids, n, PT_LOGITS_ALL, &lg));
    float *full = malloc(sizeof(float) * V);
    memcpy(full, lg + (size_t)(n - 1) * V, sizeof(float) * V);
    CHECK_OK(pt_engine_truncate(e, 0, 0));
    CHECK_OK(pt_engine_forward_one(e, 0, ids, n, PT_LOGITS_LAST, &lg));
    CHECK(pt_engine_slot_len(e, 0) == n);
    if (lg) fx_close("chunked prefill", lg, full, V, 1e-5);
    free(full);
    free(ids);
    pt_engine_free(e);
    pt_model_free(m);
}
