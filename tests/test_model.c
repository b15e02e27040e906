/* Model loading beyond the fixtures' own files: sharded checkpoints, every GGUF weight type
 * (written by politune's exporter from the reference weights), and broken checkpoints that
 * must be refused with a message naming the file and the tensor or key. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "internal.h"
#include "test.h"

/* All-position logits of a fixed id sequence. */
static float *logits_of(const char *path, const int32_t *ids, int n, int *vocab) {
    pt_model *m = NULL;
    pt_engine *e = NULL;
    if (pt_model_load(&m, path) != PT_OK) { pt_test_fail(__FILE__, __LINE__, "load %s: %s", path, pt_errmsg()); return NULL; }
    float *out = NULL;
    const float *lg;
    if (pt_engine_new(&e, m, 1, 64) == PT_OK && pt_engine_forward_one(e, 0, ids, n, PT_LOGITS_ALL, &lg) == PT_OK) {
        *vocab = m->cfg.vocab_size;
        out = malloc(sizeof(float) * n * *vocab);
        memcpy(out, lg, sizeof(float) * n * *vocab);
    } else pt_test_fail(__FILE__, __LINE__, "forward %s: %s", path, pt_errmsg());
    pt_engine_free(e);
    pt_model_free(m);
    return out;
}

static const int32_t probe[] = {1, 17, 400, 5, 88, 230, 9, 311, 2, 64};

/* Exported as HF (sharded) and as GGUF of every type, each must reproduce the original. */
static void check_exports(const char *model) {
    int V = 0, V2 = 0;
    float *ref = logits_of(fx_dir(model), probe, 10, &V);
    REQUIRE(ref);
    pt_model *m = NULL;
    REQUIRE_OK(pt_model_load(&m, fx_dir(model)));
    const char *dir = pt_test_tmpdir();
    char path[600];
    snprintf(path, sizeof path, "%s/sharded", dir);
    CHECK_OK(pt_model_save_hf(m, NULL, path, PT_F32, 200000));
    char idx[700];
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", path);
    CHECK_MSG(access(idx, F_OK) == 0, "%s: no shard index written", model);
    float *got = logits_of(path, probe, 10, &V2);
    if (got) fx_close("sharded HF export", got, ref, 10 * V, 1e-6);
    free(got);
    struct { pt_dtype t; double tol; } types[] = {{PT_F32, 1e-6}, {PT_F16, 2e-3}, {PT_BF16, 2e-2}, {PT_Q8_0, 3e-2}, {PT_Q4_0, 0.5}};
    /* Q4_0 of random weights is coarse; its kernels are checked exactly in test_kernels.c */
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        snprintf(path, sizeof path, "%s/model-%s.gguf", dir, pt_dtype_name(types[i].t));
        CHECK_OK(pt_model_save_gguf(m, NULL, path, types[i].t));
        got = logits_of(path, probe, 10, &V2);
        char what[128];
        snprintf(what, sizeof what, "%s GGUF %s", model, pt_dtype_name(types[i].t));
        if (got) fx_close(what, got, ref, 10 * V, types[i].tol);
        free(got);
    }
    pt_model_free(m);
    free(ref);
}

PT_TEST(test_model_exports_llama3) { check_exports("llama3"); }
PT_TEST(test_model_exports_qwen2) { check_exports("qwen2"); }
PT_TEST(test_model_exports_mistral) { check_exports("mistral"); }

/* A directory whose config.json is the fixture's with one edit, and whose weights are the
 * fixture's own file (linked, not copied). */
static const char *broken_dir(const char *key, const char *json_value) {
    const char *dir = pt_test_tmpdir();
    char cfg[600], src[600], dst[600];
    snprintf(src, sizeof src, "%s/config.json", fx_dir("llama3"));
    json_t *o = json_load_file(src, 0, NULL);
    if (key) json_object_set_new(o, key, json_loads(json_value, JSON_DECODE_ANY, NULL));
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    json_dump_file(o, cfg, 0);
    json_decref(o);
    snprintf(src, sizeof src, "%s/model.safetensors", fx_dir("llama3"));
    snprintf(dst, sizeof dst, "%s/model.safetensors", dir);
    if (symlink(src, dst) != 0) pt_test_fail(__FILE__, __LINE__, "symlink failed");
    return dir;
}

static void expect_load_error(const char *dir, pt_status want, const char *needle1, const char *needle2) {
    pt_model *m = NULL;
    pt_status st = pt_model_load(&m, dir);
    CHECK_MSG(st == want, "expected status %d, got %d (%s)", want, st, pt_errmsg());
    CHECK_MSG(strstr(pt_errmsg(), needle1) && (!needle2 || strstr(pt_errmsg(), needle2)), "message '%s' lacks '%s'/'%s'", pt_errmsg(),
              needle1, needle2 ? needle2 : "");
    pt_model_free(m);
}

PT_TEST(test_model_bad_checkpoints) {
    expect_load_error(broken_dir("hidden_size", "96"), PT_ERR_FORMAT, "model.embed_tokens.weight", "expected (1024, 96)");
    expect_load_error(broken_dir("num_hidden_layers", "4"), PT_ERR_FORMAT, "missing tensor", "model.layers.3.");
    expect_load_error(broken_dir("model_type", "\"gpt2\""), PT_ERR_UNSUPPORTED, "model_type 'gpt2'", NULL);
    expect_load_error(broken_dir("num_key_value_heads", "3"), PT_ERR_FORMAT, "multiple of 3", NULL);
    expect_load_error(broken_dir("hidden_size", "\"wide\""), PT_ERR_FORMAT, "hidden_size", NULL);
    expect_load_error(broken_dir("rope_scaling", "{\"rope_type\":\"yarn\",\"factor\":4}"), PT_ERR_UNSUPPORTED, "yarn", NULL);
    expect_load_error("/nonexistent/model", PT_ERR_IO, "/nonexistent/model", NULL);
    /* a file that is not GGUF */
    char p[600];
    snprintf(p, sizeof p, "%s/config.json", fx_dir("llama3"));
    expect_load_error(p, PT_ERR_FORMAT, "not a GGUF file", NULL);
}

PT_TEST(test_model_adapter_mismatch) {
    pt_model *m = NULL;
    pt_adapter *a = NULL;
    REQUIRE_OK(pt_model_load(&m, fx_dir("mistral")));
    char p[600];
    snprintf(p, sizeof p, "%s/adapter", fx_dir("llama3")); /* llama3's adapter on mistral */
    CHECK(pt_adapter_load(&a, p, m) == PT_ERR_FORMAT);
    CHECK_MSG(strstr(pt_errmsg(), "base model needs"), "message: %s", pt_errmsg());
    CHECK(a == NULL);
    pt_model_free(m);
}

/* Merging the adapter into the weights gives the fixture's merged q_proj and, through the
 * exporter, the adapter's logits without an adapter at run time. */
PT_TEST(test_model_merge_matches_fixture) {
    pt_model *m = NULL;
    pt_adapter *a = NULL;
    REQUIRE_OK(pt_model_load(&m, fx_dir("llama3")));
    char p[800];
    snprintf(p, sizeof p, "%s/adapter", fx_dir("llama3"));
    REQUIRE_OK(pt_adapter_load(&a, p, m));
    const char *dir = pt_test_tmpdir();
    char out[600];
    snprintf(out, sizeof out, "%s/merged", dir);
    REQUIRE_OK(pt_model_save_hf(m, a, out, PT_F32, 0));
    pt_safetensors exp = {0}, got = {0};
    snprintf(p, sizeof p, "%s/expected.safetensors", fx_dir("llama3"));
    REQUIRE_OK(pt_safetensors_open(&exp, p));
    snprintf(p, sizeof p, "%s/model.safetensors", out);
    REQUIRE_OK(pt_safetensors_open(&got, p));
    const pt_tensor_view *e = pt_safetensors_find(&exp, "merged.model.layers.0.self_attn.q_proj.weight");
    const pt_tensor_view *g = pt_safetensors_find(&got, "model.layers.0.self_attn.q_proj.weight");
    REQUIRE(e && g);
    fx_close("merged q_proj", (const float *)g->data, (const float *)e->data, pt_tensor_numel(e), 1e-6);
    pt_safetensors_close(&exp);
    pt_safetensors_close(&got);
    pt_adapter_free(a);
    pt_model_free(m);
}

/* A weight stored as integers is refused by name, dtype and what was expected. */
PT_TEST(test_model_wrong_dtype) {
    const char *dir = broken_dir(NULL, NULL);
    char p[700];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    unlink(p);
    const char *hdr = "{\"model.embed_tokens.weight\":{\"dtype\":\"I32\",\"shape\":[1024,128],\"data_offsets\":[0,524288]}}";
    size_t hl = strlen(hdr);
    FILE *f = fopen(p, "wb");
    REQUIRE(f);
    uint64_t n = hl;
    fwrite(&n, 8, 1, f);
    fwrite(hdr, 1, hl, f);
    for (int i = 0; i < 524288; i++) fputc(0, f);
    fclose(f);
    expect_load_error(dir, PT_ERR_UNSUPPORTED, "model.embed_tokens.weight", "I32");
}

/* Newer transformers write rope settings as `rope_parameters` (theta inside): same model. */
PT_TEST(test_model_rope_parameters_form) {
    const char *dir = broken_dir(NULL, NULL);
    char p[700], src[700];
    snprintf(src, sizeof src, "%s/config.json", fx_dir("llama3"));
    json_t *o = json_load_file(src, 0, NULL);
    REQUIRE(o);
    json_t *rp = json_deep_copy(json_object_get(o, "rope_scaling"));
    json_object_set(rp, "rope_theta", json_object_get(o, "rope_theta"));
    json_object_del(o, "rope_scaling");
    json_object_del(o, "rope_theta");
    json_object_set_new(o, "rope_parameters", rp);
    snprintf(p, sizeof p, "%s/config.json", dir);
    json_dump_file(o, p, 0);
    json_decref(o);
    int V, V2;
    float *want = logits_of(fx_dir("llama3"), probe, 10, &V), *got = logits_of(dir, probe, 10, &V2);
    if (want && got) fx_close("rope_parameters config", got, want, 10 * V, 0);
    free(want);
    free(got);
}
