/* The qwen3 architecture (per-head RMSNorm of Q and K before RoPE, no QKV bias, head_dim
 * independent of hidden / heads) against transformers: tools/make_qwen3_fixture.py writes a
 * tiny random Qwen3 as a Hugging Face directory and as a GGUF file with transformers' logits;
 * politune's logits from both, and from its own GGUF and HF exports of the model, must agree
 * within 1e-4 x max |logit| (float32 sums in another order; measured ~1e-6 x). Skipped with the
 * reason when the oracle venv lacks torch, transformers or gguf. Training a qwen3 model is
 * refused in one line until the training model has the norms' backward. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "test.h"

static double compare(const char *dir, json_t *expected, const char *model, const char *ids, double *scale) {
    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err, "cd '%s' && \"$POLITUNE_BIN\" logits --model '%s' --ids %s", dir, model, ids);
    CHECK_MSG(rc == 0, "politune logits %s: %s", model, err ? err : "");
    json_error_t e;
    json_t *o = out ? json_loads(out, 0, &e) : NULL, *got = json_object_get(o, "logits");
    double d = -1, s = 0;
    if (got && json_array_size(got) == json_array_size(expected)) {
        d = 0;
        for (size_t t = 0; t < json_array_size(got); t++) {
            json_t *a = json_array_get(got, t), *b = json_array_get(expected, t);
            if (json_array_size(a) != json_array_size(b)) { d = -1; break; }
            for (size_t v = 0; v < json_array_size(a); v++) {
                double x = json_number_value(json_array_get(a, v)), y = json_number_value(json_array_get(b, v));
                d = fmax(d, fabs(x - y));
                s = fmax(s, fabs(y));
            }
        }
    }
    *scale = s;
    json_decref(o);
    free(out);
    free(err);
    return d;
}

PT_TEST(test_qwen3_matches_transformers) {
    const char *why;
    const char *py = pt_test_python("torch transformers gguf", &why);
    if (!py) SKIP("%s", why);
    const char *dir = pt_test_tmpdir();
    char script[4096];
    if (!getcwd(script, sizeof script - 40)) SKIP("no working directory");
    strcat(script, "/tools/make_qwen3_fixture.py");
    char *err = NULL;
    int rc = pt_test_run(NULL, &err, "'%s' '%s' '%s/fx'", py, script, dir);
    CHECK_MSG(rc == 0, "make_qwen3_fixture.py: %s", err ? err : "");
    free(err);
    REQUIRE(rc == 0);
    char *text = pt_test_read(dir, "fx/expected.json");
    json_error_t e;
    json_t *fx = text ? json_loads(text, 0, &e) : NULL;
    free(text);
    REQUIRE(fx);
    json_t *expected = json_object_get(fx, "logits"), *idarr = json_object_get(fx, "ids");
    char ids[512] = "";
    for (size_t i = 0; i < json_array_size(idarr); i++)
        snprintf(ids + strlen(ids), sizeof ids - strlen(ids), "%s%lld", i ? "," : "", (long long)json_integer_value(json_array_get(idarr, i)));

    /* politune's own exports, read back: GGUF (qwen3 keys, attn_q_norm/attn_k_norm) and HF */
    char src[600], dst[600];
    pt_model *m = NULL;
    snprintf(src, sizeof src, "%s/fx/hf", dir);
    REQUIRE_OK(pt_model_load(&m, src));
    CHECK(m->cfg.arch == PT_ARCH_QWEN3 && m->cfg.head_dim == 32 && !m->cfg.qkv_bias);
    snprintf(dst, sizeof dst, "%s/export.gguf", dir);
    CHECK_OK(pt_model_save_gguf(m, NULL, dst, PT_F32));
    snprintf(dst, sizeof dst, "%s/export-hf", dir);
    CHECK_OK(pt_model_save_hf(m, NULL, dst, PT_F32, 0));
    pt_model_free(m);
    static const char *const models[] = {"fx/hf", "fx/qwen3.gguf", "export.gguf", "export-hf"};
    for (int i = 0; i < 4; i++) {
        double scale = 0, d = compare(dir, expected, models[i], ids, &scale);
        printf("    %s: max |logit - transformers| %.3g (max |logit| %.3g)\n", models[i], d, scale);
        CHECK_MSG(d >= 0 && d <= 1e-4 * scale, "%s: max |diff| %g > %g", models[i], d, 1e-4 * scale);
    }
    json_decref(fx);

    /* training is refused in one line: the per-head norms have no backward yet */
    pt_test_write(dir, "pairs.jsonl", "{\"prompt_ids\": [1, 17, 250], \"chosen_ids\": [3, 99], \"rejected_ids\": [42, 311]}\n");
    err = NULL;
    rc = pt_test_run(NULL, &err, "cd '%s' && \"$POLITUNE_BIN\" train --method dpo --model fx/hf --data pairs.jsonl --out a --max-steps 1", dir);
    CHECK(rc != 0);
    CHECK_MSG(err && strstr(err, "qwen3") && strstr(err, "cannot be trained"), "stderr: %s", err ? err : "");
    free(err);
}
