/* Adapter arithmetic at inference (issue 15): the engine's list of (adapter, scale) applied
 * unfused against independent oracles on stories260K with two adapters of random B. Scale 0
 * must be the base bit for bit, one adapter at scale 1 the single-adapter path bit for bit;
 * a 0.5/0.5 mix and scale -1 must match models with those deltas merged into the weights
 * (pt_model_save_hf of the adapter with its scale changed, merged one after the other), within
 * 1e-5 x max |logit|. Also: DIR[:SCALE] parsing and the refusals a user meets. */
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "util/rng.h"
#include "internal.h"
#include "test.h"

#define MIX_TOL 1e-5 /* x max |expected logit| (issue 15) */
#define BIN "\"$POLITUNE_BIN\""

static const int32_t prompt_a[] = {1, 403, 407, 261, 378, 430, 280, 297, 440, 292, 261};
static const int32_t prompt_b[] = {1, 67, 300, 12, 99, 480, 5, 77};

/* An adapter on every target with B drawn too (PEFT starts B at zero: no delta to test). */
static pt_adapter *random_adapter(const pt_model *m, uint64_t seed, int r) {
    pt_adapter *a = NULL;
    if (pt_adapter_new(&a, m, r, 2.0f * r, (1u << PT_LT_COUNT) - 1, false, 0.0f, seed)) return NULL;
    pt_rng rng;
    pt_rng_seed(&rng, seed * 7919 + 1);
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int t = 0; t < PT_LT_COUNT; t++) {
            pt_lora_pair *p = (pt_lora_pair *)pt_adapter_pair(a, l, (pt_lora_target)t);
            if (!p || (t == PT_LT_HEAD && l > 0)) continue;
            for (int64_t i = 0; i < (int64_t)p->out * r; i++) p->B[i] = (float)(0.2 * (2.0 * pt_rng_double(&rng) - 1.0));
        }
    return a;
}

static const char *stories_hf(void) { return fx_dir("stories260K-hf"); }

/* (n, V) logits of one prompt from a fresh slot, copied. */
static float *logits_of(pt_engine *e, const int32_t *ids, int n) {
    const float *lg = NULL;
    if (pt_engine_truncate(e, 0, 0) || pt_engine_forward_one(e, 0, ids, n, PT_LOGITS_ALL, &lg) || !lg) return NULL;
    size_t bytes = sizeof(float) * (size_t)n * pt_engine_model(e)->cfg.vocab_size;
    float *c = malloc(bytes);
    if (c) memcpy(c, lg, bytes);
    return c;
}

static float *list_logits(const pt_model *m, pt_adapter **list, const float *scales, int k, const int32_t *ids, int n) {
    pt_engine *e = NULL;
    float *out = NULL;
    if (!pt_engine_new(&e, m, 1, 64) && !pt_engine_set_adapters(e, (const pt_adapter *const *)list, scales, k)) out = logits_of(e, ids, n);
    pt_engine_free(e);
    return out;
}

/* Logits of a model with the adapters merged into its weights at the given scales, one
 * merge after another (each adapter's own single-adapter export, its scale field changed). */
static float *merged_logits(const pt_model *base, pt_adapter **list, const float *scales, int k, const int32_t *ids, int n) {
    const pt_model *cur = base;
    pt_model *owned = NULL;
    for (int i = 0; i < k; i++) {
        char dir[700];
        snprintf(dir, sizeof dir, "%s/merged-%d", pt_test_tmpdir(), i);
        float saved = list[i]->scale;
        list[i]->scale = saved * scales[i];
        pt_status st = pt_model_save_hf(cur, list[i], dir, PT_F32, 0);
        list[i]->scale = saved;
        pt_model *next = NULL;
        if (!st) st = pt_model_load(&next, dir);
        pt_model_free(owned);
        owned = next;
        if (st) { CHECK_MSG(0, "merging adapter %d: %s", i + 1, pt_errmsg()); return NULL; }
        cur = owned;
    }
    pt_engine *e = NULL;
    float *out = NULL;
    if (!pt_engine_new(&e, cur, 1, 64)) out = logits_of(e, ids, n);
    pt_engine_free(e);
    pt_model_free(owned);
    return out;
}

PT_TEST(test_adapter_mix_scale0_and_1_exact) {
    pt_model *m = NULL;
    REQUIRE_OK(pt_model_load(&m, stories_hf()));
    pt_adapter *left = random_adapter(m, 11, 4), *right = random_adapter(m, 12, 2);
    REQUIRE(left && right);
    const int n = (int)(sizeof prompt_a / sizeof prompt_a[0]);
    size_t count = (size_t)n * m->cfg.vocab_size;

    pt_engine *e = NULL;
    REQUIRE_OK(pt_engine_new(&e, m, 1, 64));
    float *base = logits_of(e, prompt_a, n);
    pt_engine_set_adapter(e, left);
    float *single = logits_of(e, prompt_a, n);
    pt_engine_free(e);
    REQUIRE(base && single);
    CHECK_MSG(memcmp(base, single, sizeof(float) * count) != 0, "the random adapter changes nothing: the test would prove nothing");

    pt_adapter *both[2] = {left, right};
    const float zero[2] = {0, 0}, one[1] = {1};
    float *at0 = list_logits(m, both, zero, 2, prompt_a, n), *at1 = list_logits(m, both, one, 1, prompt_a, n);
    REQUIRE(at0 && at1);
    CHECK_MSG(!memcmp(at0, base, sizeof(float) * count), "scale 0: logits differ from the base model's");
    CHECK_MSG(!memcmp(at1, single, sizeof(float) * count), "one adapter at scale 1: logits differ from the single-adapter path's");
    free(base), free(single), free(at0), free(at1);
    pt_adapter_free(left), pt_adapter_free(right);
    pt_model_free(m);
}

PT_TEST(test_adapter_mix_matches_merged_weights) {
    pt_model *m = NULL;
    REQUIRE_OK(pt_model_load(&m, stories_hf()));
    pt_adapter *left = random_adapter(m, 21, 4), *right = random_adapter(m, 22, 8);
    REQUIRE(left && right);
    const int n = (int)(sizeof prompt_b / sizeof prompt_b[0]);
    size_t count = (size_t)n * m->cfg.vocab_size;
    pt_adapter *both[2] = {left, right};
    struct { const char *what; int k; float scales[2]; } cases[] = {
        {"0.5/0.5 mix", 2, {0.5f, 0.5f}}, {"scale -1", 1, {-1.0f, 0}}, {"0.7/-0.3 mix", 2, {0.7f, -0.3f}}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float *got = list_logits(m, both, cases[c].scales, cases[c].k, prompt_b, n);
        float *want = merged_logits(m, both, cases[c].scales, cases[c].k, prompt_b, n);
        REQUIRE(got && want);
        fx_close(cases[c].what, got, want, (int64_t)count, MIX_TOL);
        /* merge --adapter A:s --adapter B:t writes the combined adapter: same oracle */
        pt_adapter *comb = NULL;
        CHECK_OK(pt_adapter_combine(&comb, (const pt_adapter *const *)both, cases[c].scales, cases[c].k));
        if (comb) {
            const float one = 1.0f;
            float *viacomb = merged_logits(m, &comb, &one, 1, prompt_b, n);
            if (viacomb) fx_close("combined adapter, merged", viacomb, want, (int64_t)count, MIX_TOL);
            free(viacomb);
        }
        pt_adapter_free(comb);
        free(got), free(want);
    }
    pt_adapter_free(left), pt_adapter_free(right);
    pt_model_free(m);
}

/* Two slots of one batch with different scales give what each gives alone. */
PT_TEST(test_adapter_mix_per_slot_scales) {
    pt_model *m = NULL;
    REQUIRE_OK(pt_model_load(&m, stories_hf()));
    pt_adapter *left = random_adapter(m, 31, 4), *right = random_adapter(m, 32, 4);
    REQUIRE(left && right);
    pt_adapter *both[2] = {left, right};
    const float s0[2] = {1, 0}, s1[2] = {-0.5f, 0.8f}, defaults[2] = {0, 0};
    const int na = (int)(sizeof prompt_a / sizeof prompt_a[0]), nb = (int)(sizeof prompt_b / sizeof prompt_b[0]);
    float *alone0 = list_logits(m, both, s0, 2, prompt_a, na), *alone1 = list_logits(m, both, s1, 2, prompt_b, nb);
    pt_engine *e = NULL;
    REQUIRE_OK(pt_engine_new(&e, m, 2, 64));
    REQUIRE_OK(pt_engine_set_adapters(e, (const pt_adapter *const *)both, defaults, 2));
    CHECK_OK(pt_engine_set_slot_scales(e, 0, s0));
    CHECK_OK(pt_engine_set_slot_scales(e, 1, s1));
    int slots[2] = {0, 1}, lens[2] = {na, nb};
    const int32_t *ids[2] = {prompt_a, prompt_b};
    pt_batch b = {2, slots, ids, lens};
    const float *lg = NULL;
    CHECK_OK(pt_engine_forward(e, &b, PT_LOGITS_ALL, &lg));
    const int V = m->cfg.vocab_size;
    REQUIRE(lg && alone0 && alone1);
    fx_close("slot 0 in a mixed batch", lg, alone0, (int64_t)na * V, MIX_TOL);
    fx_close("slot 1 in a mixed batch", lg + (size_t)na * V, alone1, (int64_t)nb * V, MIX_TOL);
    const float bad[2] = {NAN, 1};
    CHECK(pt_engine_set_slot_scales(e, 0, bad) == PT_ERR_ARG);
    pt_engine_free(e);
    free(alone0), free(alone1);
    pt_adapter_free(left), pt_adapter_free(right);
    pt_model_free(m);
}

PT_TEST(test_adapter_mix_parse_spec) {
    char *dir = NULL;
    float s = 0;
    CHECK_OK(pt_adapter_parse_spec("runs/left", &dir, &s));
    CHECK(dir && !strcmp(dir, "runs/left") && s == 1.0f);
    free(dir);
    CHECK_OK(pt_adapter_parse_spec("runs/left:-0.5", &dir, &s));
    CHECK(dir && !strcmp(dir, "runs/left") && s == -0.5f);
    free(dir);
    CHECK_OK(pt_adapter_parse_spec("c:/x:y/left:1e-1", &dir, &s)); /* ':' inside the path */
    CHECK(dir && !strcmp(dir, "c:/x:y/left") && s == 0.1f);
    free(dir);
    CHECK_OK(pt_adapter_parse_spec("runs/a:b", &dir, &s)); /* not a number, no directory "runs/a": a path */
    CHECK(dir && !strcmp(dir, "runs/a:b") && s == 1.0f);
    free(dir);
    const char *bad[] = {"left:nan", "left:inf", "left:1e", "left:--1", "left:1e400", ":0.5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pt_status st = pt_adapter_parse_spec(bad[i], &dir, &s);
        CHECK_MSG(st == PT_ERR_ARG && strstr(pt_errmsg(), bad[i]), "'%s': status %d, message '%s'", bad[i], st, pt_errmsg());
        free(dir);
        dir = NULL;
    }
    char spec[700];
    snprintf(spec, sizeof spec, "%s:abc", pt_test_tmpdir()); /* a directory, then a mistyped scale */
    CHECK(pt_adapter_parse_spec(spec, &dir, &s) == PT_ERR_ARG && strstr(pt_errmsg(), "not a number"));
    free(dir);
}

/* The CLI: a bad scale and an adapter of another base model each get one line, non-zero exit. */
PT_TEST(test_adapter_mix_cli_refusals) {
    pt_model *m = NULL;
    REQUIRE_OK(pt_model_load(&m, stories_hf()));
    pt_adapter *a = random_adapter(m, 41, 2);
    REQUIRE(a);
    char adir[700];
    snprintf(adir, sizeof adir, "%s/stories-adapter", pt_test_tmpdir());
    REQUIRE_OK(pt_adapter_save(a, adir));
    pt_adapter_free(a);
    pt_model_free(m);

    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err, BIN " logits --model '%s' --adapter '%s:1.5x' --ids 1,2,3", stories_hf(), adir);
    CHECK_MSG(rc == 2 && err && strstr(err, "not a number") && strstr(err, "1.5x"), "rc %d, stderr: %s", rc, err ? err : "");
    free(out), free(err);
    /* an adapter of stories260K (dim 64) on the llama3 fixture model */
    rc = pt_test_run(&out, &err, BIN " logits --model '%s' --adapter '%s:0.5' --ids 1,2,3", fx_dir("llama3"), adir);
    CHECK_MSG(rc != 0 && err && strstr(err, "another base model") && strstr(err, "stories-adapter"), "rc %d, stderr: %s", rc, err ? err : "");
    free(out), free(err);
    /* an adapter whose shapes fit but which holds a layer the model lacks (6 layers for 5) */
    char deep[700];
    snprintf(deep, sizeof deep, "%s/deep-adapter", pt_test_tmpdir());
    {
        char cmd[800];
        snprintf(cmd, sizeof cmd, "mkdir -p '%s'", deep);
        CHECK(system(cmd) == 0);
        pt_test_write(deep, "adapter_config.json", "{\"peft_type\":\"LORA\",\"r\":2,\"lora_alpha\":4,\"target_modules\":[\"q_proj\"]}");
        static float A[2 * 64], B[64 * 2];
        char names[12][96];
        pt_safetensors_entry e[12];
        for (int l = 0; l < 6; l++)
            for (int k = 0; k < 2; k++) {
                snprintf(names[l * 2 + k], sizeof names[0], "base_model.model.model.layers.%d.self_attn.q_proj.lora_%c.weight", l, k ? 'B' : 'A');
                e[l * 2 + k] = (pt_safetensors_entry){.name = names[l * 2 + k], .dtype = PT_F32, .n_dims = 2,
                                                       .shape = {k ? 64 : 2, k ? 2 : 64}, .data = k ? B : A};
            }
        char st[800];
        snprintf(st, sizeof st, "%s/adapter_model.safetensors", deep);
        CHECK_OK(pt_safetensors_write(st, e, 12, NULL));
    }
    rc = pt_test_run(&out, &err, BIN " logits --model '%s' --adapter '%s' --ids 1,2,3", stories_hf(), deep);
    CHECK_MSG(rc != 0 && err && strstr(err, "was made for another base model: it holds layer 5") && strstr(err, "deep-adapter"), "rc %d, stderr: %s", rc,
              err ? err : "");
    free(out), free(err);
    /* the same run with scale 0 through the CLI equals the base, and a merge of a mix succeeds */
    char *base_out = NULL;
    rc = pt_test_run(&base_out, &err, BIN " logits --model '%s' --ids 1,2,3", stories_hf());
    CHECK(rc == 0);
    free(err);
    rc = pt_test_run(&out, &err, BIN " logits --model '%s' --adapter '%s:0' --ids 1,2,3", stories_hf(), adir);
    CHECK_MSG(rc == 0 && out && base_out && !strcmp(out, base_out), "scale 0 through the CLI differs from the base (rc %d)", rc);
    free(out), free(err), free(base_out);
    rc = pt_test_run(&out, &err, BIN " merge --model '%s' --adapter '%s:0.5' --adapter '%s:-0.25' --out '%s/merged-mix'", stories_hf(), adir,
                     adir, pt_test_tmpdir());
    CHECK_MSG(rc == 0, "merge of a mix: rc %d, stderr: %s", rc, err ? err : "");
    free(out), free(err);
}

/* compass's default label names the adapters as they were given: NAME= when there is one, the
 * directory otherwise, with the scales of a mix (the name was dropped before). */
PT_TEST(test_adapter_mix_compass_label) {
    const char *gguf = pt_test_shared("assets/models/stories260K/stories260K.gguf");
    const char *tmp = pt_test_tmpdir();
    pt_model *m = NULL;
    REQUIRE_OK(pt_model_load(&m, gguf));
    pt_adapter *a = random_adapter(m, 43, 2);
    REQUIRE(a);
    char adir[700];
    snprintf(adir, sizeof adir, "%s/stories-adapter", tmp);
    REQUIRE_OK(pt_adapter_save(a, adir));
    pt_adapter_free(a);
    pt_model_free(m);
    static const char *cases[][2] = {{"--adapter 'left=%s'", "\"label\": \"left\""},
                                     {"--adapter '%s:0.5' --adapter 'right=%s:-1'", "\"label\": \"stories-adapter:0.5+right:-1\""}};
    for (int i = 0; i < 2; i++) {
        char opts[2000];
        snprintf(opts, sizeof opts, cases[i][0], adir, adir);
        char *out = NULL, *err = NULL;
        int rc = pt_test_run(&out, &err, BIN " compass --model '%s' %s --templates t1-fwd --no-open-prompts --threads 1 --out '%s/c%d'", gguf, opts,
                             tmp, i);
        CHECK_MSG(rc == 0, "rc %d %s", rc, err ? err : "");
        free(out), free(err);
        char name[64];
        snprintf(name, sizeof name, "c%d/compass.json", i);
        char *doc = pt_test_read(tmp, name);
        CHECK_MSG(doc && strstr(doc, cases[i][1]), "expected %s in %s", cases[i][1], doc ? doc : "(none)");
        free(doc);
    }
}
