/* Interop with the Python ecosystem and llama.cpp, each against the real other side (the
 * oracle venv of tools/oracles/setup.sh; a test whose oracle is missing is skipped with the
 * reason). The model is stories260K in both of its forms, with a LoRA adapter politune trains
 * for a few DPO steps on every target (lm_head included, so the tied-embedding case of merge
 * is exercised by the HF form):
 *   - merge --out DIR: transformers loads it, tokenizer files copied, logits equal politune's;
 *   - the trained PEFT adapter: peft applies it on the base with politune's logits;
 *   - merge --out FILE.gguf: llama.cpp loads it (tokenizer and all) and its greedy
 *     continuation equals politune's, as does its tokenisation of the prompt;
 *   - export-lora --gguf: llama.cpp applies the adapter GGUF to the base GGUF with the same
 *     greedy continuation as politune's adapter.
 * Tolerance for logits: 1e-4 x max |logit| (float32 sums in a different order; the adapter's
 * own effect on the logits is checked to be far above it, so the comparison can fail). */
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

#define IDS "1,403,407,261,378,285,410,266,403"
#define PROMPT "Once upon a time, there was a little girl named"
#define N_GREEDY 24

/* tools/interop_oracle.py by absolute path: the runner starts in the repository root, the
 * commands run in their temporary directories. */
static const char *oracle_script(void) {
    static char path[4096];
    if (!path[0] && getcwd(path, sizeof path - 32)) strcat(path, "/tools/interop_oracle.py");
    return path;
}

static const char *stories_gguf(void) { return pt_test_shared("assets/models/stories260K/stories260K.gguf"); }
static const char *stories_hf(void) { return pt_test_shared("fixtures/reference/stories260K-hf"); }

/* Trains dir/adapter: 4 DPO steps at lr 1e-2, rank 4, every target. */
static int train_adapter(const char *dir, const char *model) {
    pt_test_write(dir, "pairs.jsonl", pt_test_stories_pairs);
    char *err = NULL;
    int rc = pt_test_run(NULL, &err,
                         "cd '%s' && OMP_NUM_THREADS=1 \"$POLITUNE_BIN\" train --method dpo --model '%s' --data pairs.jsonl "
                         "--out adapter --lr 1e-2 --warmup-steps 0 --max-steps 4 --batch-size 2 --lora-rank 4 "
                         "--lora-alpha 8 --lora-dropout 0 --lora-targets all",
                         dir, model);
    CHECK_MSG(rc == 0, "train: %s", err ? err : "");
    free(err);
    return rc;
}

/* The "logits" or "ids" array of a JSON document (a new reference), NULL on error. */
static json_t *json_field(const char *text, const char *key) {
    json_error_t e;
    json_t *o = text ? json_loads(text, 0, &e) : NULL;
    json_t *v = o ? json_incref(json_object_get(o, key)) : NULL;
    json_decref(o);
    return v;
}

/* max |a - b| over two (T, V) arrays, and max |b| into *scale; -1 if the shapes differ. */
static double max_diff(json_t *a, json_t *b, double *scale) {
    double d = 0, s = 0;
    if (json_array_size(a) != json_array_size(b) || !json_array_size(a)) return -1;
    for (size_t t = 0; t < json_array_size(a); t++) {
        json_t *ra = json_array_get(a, t), *rb = json_array_get(b, t);
        if (json_array_size(ra) != json_array_size(rb)) return -1;
        for (size_t v = 0; v < json_array_size(ra); v++) {
            double x = json_number_value(json_array_get(ra, v)), y = json_number_value(json_array_get(rb, v));
            if (fabs(x - y) > d) d = fabs(x - y);
            if (fabs(y) > s) s = fabs(y);
        }
    }
    if (scale) *scale = s;
    return d;
}

static json_t *politune_logits(const char *model, const char *adapter) {
    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err, "OMP_NUM_THREADS=1 \"$POLITUNE_BIN\" logits --model '%s' %s%s%s --ids " IDS, model,
                         adapter ? "--adapter '" : "", adapter ? adapter : "", adapter ? "'" : "");
    CHECK_MSG(rc == 0, "politune logits %s: %s", model, err ? err : "");
    json_t *l = json_field(out, "logits");
    free(out);
    free(err);
    return l;
}

PT_TEST(test_interop_hf_merge_and_peft_adapter) {
    const char *why;
    const char *py = pt_test_python("torch transformers peft", &why);
    if (!py) SKIP("%s", why);
    const char *dir = pt_test_tmpdir();
    /* a source directory with tokenizer-side files, which merge must carry over */
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/src' && ln -s '%s/config.json' '%s/model.safetensors' '%s/src/'", dir,
             stories_hf(), stories_hf(), dir);
    REQUIRE(pt_test_run(NULL, NULL, "%s", cmd) == 0);
    pt_test_write(dir, "src/generation_config.json", "{\"bos_token_id\": 1, \"eos_token_id\": 2}\n");
    pt_test_write(dir, "src/special_tokens_map.json", "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}\n");
    /* trained on the GGUF form (the HF fixture has no tokenizer); the weights are the same */
    if (train_adapter(dir, stories_gguf())) return;
    char *err = NULL;
    int rc = pt_test_run(NULL, &err, "cd '%s' && \"$POLITUNE_BIN\" merge --model src --adapter adapter --out merged", dir);
    CHECK_MSG(rc == 0, "merge: %s", err ? err : "");
    free(err);
    REQUIRE(rc == 0);
    static const char *const copied[] = {"generation_config.json", "special_tokens_map.json"};
    for (int i = 0; i < 2; i++) {
        char a[600], b[600];
        snprintf(a, sizeof a, "src/%s", copied[i]);
        snprintf(b, sizeof b, "merged/%s", copied[i]);
        char *x = pt_test_read(dir, a), *y = pt_test_read(dir, b);
        CHECK_MSG(x && y && !strcmp(x, y), "%s not copied into the merged directory", copied[i]);
        free(x);
        free(y);
    }

    char src[600], adapter[600];
    snprintf(src, sizeof src, "%s/src", dir);
    snprintf(adapter, sizeof adapter, "%s/adapter", dir);
    json_t *base = politune_logits(src, NULL), *ours = politune_logits(src, adapter);
    char *out = NULL;
    err = NULL;
    rc = pt_test_run(&out, &err, "cd '%s' && '%s' '%s' hf-logits --ids " IDS " merged src+adapter", dir, py,
                     oracle_script());
    CHECK_MSG(rc == 0, "oracle: %s", err ? err : "");
    json_t *theirs = json_field(out, "logits");
    free(out);
    free(err);
    REQUIRE(base && ours && theirs && json_array_size(theirs) == 2);
    double scale = 0, effect = max_diff(ours, base, &scale);
    double tol = 1e-4 * scale;
    double d_merged = max_diff(json_array_get(theirs, 0), ours, NULL);
    double d_peft = max_diff(json_array_get(theirs, 1), ours, NULL);
    printf("    adapter effect %.3g; transformers on the merged directory %.3g, peft %.3g (tolerance %.3g)\n", effect,
           d_merged, d_peft, tol);
    CHECK_MSG(effect > 100 * tol, "the adapter barely changes the logits (%g): the comparison would prove nothing", effect);
    CHECK_MSG(d_merged >= 0 && d_merged <= tol, "merged directory in transformers: max |diff| %g > %g", d_merged, tol);
    CHECK_MSG(d_peft >= 0 && d_peft <= tol, "politune's adapter in peft: max |diff| %g > %g", d_peft, tol);
    json_decref(base);
    json_decref(ours);
    json_decref(theirs);
}

/* "1,2,3" of a JSON array of integers (malloc'd). */
static char *ids_csv(json_t *ids) {
    size_t n = json_array_size(ids);
    char *s = malloc(n * 12 + 2);
    size_t k = 0;
    s[0] = 0;
    for (size_t i = 0; i < n; i++)
        k += (size_t)sprintf(s + k, "%s%lld", i ? "," : "", (long long)json_integer_value(json_array_get(ids, i)));
    return s;
}

static bool same_ids(json_t *a, json_t *b) {
    if (!a || !b || json_array_size(a) != json_array_size(b)) return false;
    for (size_t i = 0; i < json_array_size(a); i++)
        if (json_integer_value(json_array_get(a, i)) != json_integer_value(json_array_get(b, i))) return false;
    return true;
}

/* politune's greedy continuation of PROMPT (ids), NULL on error. */
static json_t *politune_greedy(const char *model, const char *adapter) {
    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err,
                         "OMP_NUM_THREADS=1 \"$POLITUNE_BIN\" generate --model '%s' %s%s%s --prompt '" PROMPT
                         "' --max-new-tokens %d --json", model, adapter ? "--adapter '" : "", adapter ? adapter : "",
                         adapter ? "'" : "", N_GREEDY);
    CHECK_MSG(rc == 0, "politune generate %s: %s", model, err ? err : "");
    json_t *ids = json_field(out, "ids");
    free(out);
    free(err);
    return ids;
}

/* llama.cpp's greedy continuation of the prompt ids, with an optional LoRA GGUF. */
static json_t *llama_greedy(const char *py, const char *model, const char *lora, const char *prompt_csv) {
    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err, "'%s' '%s' llama-greedy '%s' --ids %s --n %d %s%s%s", py, oracle_script(), model,
                         prompt_csv, N_GREEDY, lora ? "--lora '" : "", lora ? lora : "", lora ? "'" : "");
    CHECK_MSG(rc == 0, "llama.cpp on %s: %s", model, err ? err : "");
    json_t *all = json_field(out, "ids"), *ids = json_incref(json_array_get(all, 0));
    json_decref(all);
    free(out);
    free(err);
    return ids;
}

PT_TEST(test_interop_gguf_merge_and_lora_in_llamacpp) {
    const char *why;
    const char *py = pt_test_python("llama_cpp numpy", &why);
    if (!py) SKIP("%s", why);
    const char *dir = pt_test_tmpdir();
    if (train_adapter(dir, stories_gguf())) return;
    char *err = NULL, *out = NULL;
    int rc = pt_test_run(NULL, &err,
                         "cd '%s' && \"$POLITUNE_BIN\" merge --model '%s' --adapter adapter --out merged.gguf && "
                         "\"$POLITUNE_BIN\" export-lora --model '%s' --adapter adapter --out lora.gguf --gguf",
                         dir, stories_gguf(), stories_gguf());
    CHECK_MSG(rc == 0, "merge / export-lora: %s", err ? err : "");
    free(err);
    REQUIRE(rc == 0);
    char merged[600], lora[600], adapter[600];
    snprintf(merged, sizeof merged, "%s/merged.gguf", dir);
    snprintf(lora, sizeof lora, "%s/lora.gguf", dir);
    snprintf(adapter, sizeof adapter, "%s/adapter", dir);

    /* the prompt as politune feeds it (BOS included, as the tokenizer adds it) */
    rc = pt_test_run(&out, NULL, "\"$POLITUNE_BIN\" tokenize --model '%s' --add-special --text '" PROMPT "'", merged);
    json_t *prompt = json_field(out, "ids");
    free(out);
    REQUIRE(rc == 0 && prompt && json_array_size(prompt) > 2);
    char *csv = ids_csv(prompt);

    /* llama.cpp tokenises the prompt of the merged file like politune (no BOS on its side) */
    pt_test_write(dir, "texts.json", "[\"" PROMPT "\"]");
    out = NULL;
    err = NULL;
    rc = pt_test_run(&out, &err, "cd '%s' && '%s' '%s' llama-tokenize merged.gguf texts.json", dir, py, oracle_script());
    CHECK_MSG(rc == 0, "llama.cpp tokenize: %s", err ? err : "");
    json_t *lt = json_field(out, "ids");
    free(out);
    free(err);
    json_t *lt0 = json_array_get(lt, 0);
    bool tok_ok = lt0 && json_array_size(lt0) + 1 == json_array_size(prompt);
    for (size_t i = 0; tok_ok && i < json_array_size(lt0); i++)
        tok_ok = json_integer_value(json_array_get(lt0, i)) == json_integer_value(json_array_get(prompt, i + 1));
    CHECK_MSG(tok_ok, "llama.cpp tokenises the merged file's prompt differently");
    json_decref(lt);

    json_t *ours_merged = politune_greedy(merged, NULL), *theirs_merged = llama_greedy(py, merged, NULL, csv);
    json_t *ours_lora = politune_greedy(stories_gguf(), adapter), *theirs_lora = llama_greedy(py, stories_gguf(), lora, csv);
    json_t *ours_base = politune_greedy(stories_gguf(), NULL);
    char *a = ours_merged ? ids_csv(ours_merged) : NULL, *b = theirs_merged ? ids_csv(theirs_merged) : NULL;
    CHECK_MSG(same_ids(ours_merged, theirs_merged), "merged GGUF: politune %s, llama.cpp %s", a ? a : "?", b ? b : "?");
    free(a), free(b);
    a = ours_lora ? ids_csv(ours_lora) : NULL, b = theirs_lora ? ids_csv(theirs_lora) : NULL;
    CHECK_MSG(same_ids(ours_lora, theirs_lora), "base + LoRA GGUF: politune %s, llama.cpp %s", a ? a : "?", b ? b : "?");
    free(a), free(b);
    CHECK_MSG(same_ids(ours_merged, ours_lora), "politune: merged and base + adapter continue differently");
    printf("    %zu greedy tokens equal; the adapter %s the base model's continuation\n", json_array_size(ours_lora),
           same_ids(ours_lora, ours_base) ? "does not change" : "changes");
    json_decref(ours_merged), json_decref(theirs_merged), json_decref(ours_lora), json_decref(theirs_lora);
    json_decref(ours_base);
    json_decref(prompt);
    free(csv);
}
