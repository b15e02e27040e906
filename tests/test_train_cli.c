/* `politune train` and `politune merge` end to end: the exact command reproducing the
 * fixtures' two torch.optim.AdamW steps, PEFT key names, the merged export, bad inputs and
 * their messages, recipes, and the NaN stop. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "internal.h"
#include "test.h"


static const char *ref_dir(const char *model) {
    static char buf[4][512];
    static int k;
    char rel[256];
    snprintf(rel, sizeof rel, "fixtures/reference/%s", model);
    char *b = buf[k++ % 4];
    snprintf(b, 512, "%s", pt_test_shared(rel));
    return b;
}

/* Writes the fixture's DPO pairs as pre-tokenized JSONL into dir/pairs.jsonl. */
static void write_pairs(const char *model, const char *dir) {
    json_t *c = fx_cases(model);
    if (!c) return;
    char path[600];
    snprintf(path, sizeof path, "%s/pairs.jsonl", dir);
    FILE *f = fopen(path, "w");
    json_t *pairs = json_object_get(json_object_get(c, "dpo"), "pairs"), *p;
    size_t i;
    json_array_foreach(pairs, i, p) {
        json_t *o = json_pack("{s:O,s:O,s:O}", "prompt_ids", json_object_get(p, "prompt"), "chosen_ids", json_object_get(p, "chosen"),
                              "rejected_ids", json_object_get(p, "rejected"));
        char *line = json_dumps(o, JSON_COMPACT);
        fprintf(f, "%s\n", line);
        free(line);
        json_decref(o);
    }
    fclose(f);
    json_decref(c);
}

/* The command (a stable interface), with --max-steps N. */
static int run_fixture_command(const char *model, const char *dir, int steps, const char *out, char **err) {
    const char *d = ref_dir(model);
    return pt_test_run(NULL, err,
                       "cd '%s' && OMP_NUM_THREADS=1 \"$POLITUNE_BIN\" train --method dpo --model '%s' --data pairs.jsonl --init-adapter '%s/adapter' "
                       "--out %s --lr 1e-3 --adam-betas 0.9,0.999 --adam-eps 1e-8 --weight-decay 0.05 --schedule constant "
                       "--warmup-steps 0 --batch-size 2 --grad-accum 1 --max-grad-norm 0 --lora-dropout 0 --beta 0.1 "
                       "--no-shuffle --max-steps %d",
                       dir, d, d, out, steps);
}

/* Every tensor of dir/out/adapter_model.safetensors against the fixture's after_step<k>.<key>
 * within 1e-6 absolute (fixtures/README.md), and the key set equal to the fixture adapter's.
 * The fixture models are small, so `--precision auto` trains them in float64, the precision
 * the fixture was computed in: Adam's first update lr * g / (|g| + eps) is then reproduced
 * even where |g| is near eps, which float32 gradients cannot resolve. */
static void compare_adapter(const char *model, const char *dir, const char *out, int step) {
    char p[800];
    pt_safetensors got = {0}, exp = {0}, init = {0};
    snprintf(p, sizeof p, "%s/%s/adapter_model.safetensors", dir, out);
    REQUIRE_OK(pt_safetensors_open(&got, p));
    snprintf(p, sizeof p, "%s/expected.safetensors", ref_dir(model));
    REQUIRE_OK(pt_safetensors_open(&exp, p));
    snprintf(p, sizeof p, "%s/adapter/adapter_model.safetensors", ref_dir(model));
    REQUIRE_OK(pt_safetensors_open(&init, p));
    CHECK_MSG(got.n_tensors == init.n_tensors, "%s: %d tensors written, the PEFT adapter has %d", model, got.n_tensors, init.n_tensors);
    double worst = 0;
    for (int i = 0; i < init.n_tensors; i++) {
        const char *key = init.tensors[i].name;
        const pt_tensor_view *g = pt_safetensors_find(&got, key);
        char name[300];
        snprintf(name, sizeof name, "dpo.after_step%d.%s", step, key);
        const pt_tensor_view *e = pt_safetensors_find(&exp, name);
        CHECK_MSG(g, "%s: written adapter lacks PEFT key %s", model, key);
        CHECK_MSG(e, "%s: fixture lacks %s", model, name);
        if (!g || !e) continue;
        CHECK(g->dtype == PT_F32 && pt_tensor_numel(g) == pt_tensor_numel(e));
        const float *a = (const float *)g->data, *b = (const float *)e->data;
        for (int64_t j = 0; j < pt_tensor_numel(e); j++) {
            const double diff = fabs((double)a[j] - b[j]);
            worst = fmax(worst, diff);
            if (!(diff <= 1e-6))
                pt_test_fail(__FILE__, __LINE__, "%s %s[%lld] is %.9g, expected %.9g (|diff| %.3g > 1e-6)", model, name, (long long)j, a[j],
                             b[j], diff);
        }
    }
    if (getenv("POLITUNE_TEST_VERBOSE")) fprintf(stderr, "%s step %d: largest difference %.3g\n", model, step, worst);
    pt_safetensors_close(&got);
    pt_safetensors_close(&exp);
    pt_safetensors_close(&init);
}

/* Replaces OUT1/checkpoint-1's adapter and moments with the fixture's step-1 state. */
static int seed_checkpoint(const char *model, const char *dir) {
    char p[800];
    pt_safetensors exp = {0}, init = {0};
    snprintf(p, sizeof p, "%s/expected.safetensors", ref_dir(model));
    if (pt_safetensors_open(&exp, p)) { pt_test_fail(__FILE__, __LINE__, "%s", pt_errmsg()); return 0; }
    snprintf(p, sizeof p, "%s/adapter/adapter_model.safetensors", ref_dir(model));
    if (pt_safetensors_open(&init, p)) { pt_test_fail(__FILE__, __LINE__, "%s", pt_errmsg()); pt_safetensors_close(&exp); return 0; }
    const int n = init.n_tensors;
    pt_safetensors_entry *ad = calloc(n, sizeof *ad), *mo = calloc(2 * n, sizeof *mo);
    char (*names)[320] = calloc(3 * n, sizeof *names);
    float **bufs = calloc(2 * n, sizeof *bufs);
    int ok = 1;
    for (int i = 0; i < n && ok; i++) {
        const pt_tensor_view *t = &init.tensors[i];
        snprintf(names[3 * i], 320, "dpo.after_step1.%s", t->name);
        const pt_tensor_view *a1 = pt_safetensors_find(&exp, names[3 * i]);
        snprintf(names[3 * i], 320, "dpo.grad.%s", t->name);
        const pt_tensor_view *g = pt_safetensors_find(&exp, names[3 * i]);
        if (!a1 || !g) { ok = 0; break; }
        int64_t ne = pt_tensor_numel(t);
        ad[i] = (pt_safetensors_entry){.name = t->name, .dtype = PT_F32, .n_dims = 2, .shape = {t->shape[0], t->shape[1]},
                                       .data = (const float *)a1->data};
        bufs[2 * i] = malloc(sizeof(float) * ne);
        bufs[2 * i + 1] = malloc(sizeof(float) * ne);
        for (int64_t j = 0; j < ne; j++) {
            double gj = ((const float *)g->data)[j];
            bufs[2 * i][j] = (float)(0.1 * gj);
            bufs[2 * i + 1][j] = (float)(0.001 * gj * gj);
        }
        snprintf(names[3 * i + 1], 320, "exp_avg.%s", t->name);
        snprintf(names[3 * i + 2], 320, "exp_avg_sq.%s", t->name);
        for (int k = 0; k < 2; k++)
            mo[2 * i + k] = (pt_safetensors_entry){.name = names[3 * i + 1 + k], .dtype = PT_F32, .n_dims = 1, .shape = {ne},
                                                   .data = bufs[2 * i + k]};
    }
    CHECK_MSG(ok, "%s: fixture tensors missing", model);
    if (ok) {
        snprintf(p, sizeof p, "%s/OUT1/checkpoint-1/adapter_model.safetensors", dir);
        CHECK_OK(pt_safetensors_write(p, ad, n, NULL));
        snprintf(p, sizeof p, "%s/OUT1/checkpoint-1/optimizer.safetensors", dir);
        CHECK_OK(pt_safetensors_write(p, mo, 2 * n, NULL));
    }
    for (int i = 0; i < 2 * n; i++) free(bufs[i]);
    free(bufs), free(names), free(ad), free(mo);
    pt_safetensors_close(&exp);
    pt_safetensors_close(&init);
    return ok;
}

static void check_adamw_steps(const char *model) {
    const char *dir = pt_test_tmpdir();
    write_pairs(model, dir);
    char *err = NULL;
    int rc = run_fixture_command(model, dir, 1, "OUT1", &err);
    CHECK_MSG(rc == 0, "%s: train --max-steps 1 exited %d: %s", model, rc, err ? err : "");
    free(err);
    if (!rc) compare_adapter(model, dir, "OUT1", 1);
    rc = run_fixture_command(model, dir, 2, "OUT2", &err);
    CHECK_MSG(rc == 0, "%s: train --max-steps 2 exited %d: %s", model, rc, err ? err : "");
    free(err);
    if (!rc) compare_adapter(model, dir, "OUT2", 2);
    /* step 2 on its own: OUT1's checkpoint given the fixture's exact step-1 adapter and the
     * moments torch holds after it (m = (1 - b1) g, v = (1 - b2) g^2), then resumed */
    if (!seed_checkpoint(model, dir)) return;
    rc = run_fixture_command(model, dir, 2, "OUT1 --resume OUT1", &err);
    CHECK_MSG(rc == 0, "%s: resumed step 2 exited %d: %s", model, rc, err ? err : "");
    free(err);
    if (!rc) compare_adapter(model, dir, "OUT1", 2);
}

PT_TEST(test_train_cli_adamw_steps_llama3) { check_adamw_steps("llama3"); }
PT_TEST(test_train_cli_adamw_steps_others) {
    check_adamw_steps("llama3-bf16");
    check_adamw_steps("mistral");
    check_adamw_steps("qwen2");
}

/* The metrics row of step 1 holds the fixture's loss and reward means. */
PT_TEST(test_train_cli_metrics_rows) {
    const char *dir = pt_test_tmpdir();
    write_pairs("llama3", dir);
    REQUIRE(run_fixture_command("llama3", dir, 2, "OUT", NULL) == 0);
    char p[700];
    snprintf(p, sizeof p, "%s/OUT/metrics.jsonl", dir);
    FILE *f = fopen(p, "r");
    REQUIRE(f);
    char line[4096];
    REQUIRE(fgets(line, sizeof line, f));
    json_t *row = json_loads(line, 0, NULL);
    fclose(f);
    REQUIRE(row);
    static const char *keys[] = {"step", "loss", "lr", "grad_norm", "tokens_per_s", "rewards/chosen", "rewards/rejected",
                                 "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected", "elapsed_s", "peak_mem_mib"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) CHECK_MSG(json_is_number(json_object_get(row, keys[i])), "no '%s' in %s", keys[i], line);
    json_t *c = fx_cases("llama3"), *dpo = json_object_get(c, "dpo"), *pairs = json_object_get(dpo, "pairs");
    double rc = 0, rr = 0;
    for (int i = 0; i < 2; i++) {
        rc += json_real_value(json_object_get(json_array_get(pairs, i), "reward_chosen")) / 2;
        rr += json_real_value(json_object_get(json_array_get(pairs, i), "reward_rejected")) / 2;
    }
    double loss = json_real_value(json_object_get(dpo, "loss"));
    CHECK_NEAR(json_number_value(json_object_get(row, "loss")), loss, 1e-5 * loss);
    CHECK_NEAR(json_number_value(json_object_get(row, "rewards/chosen")), rc, 2e-5);
    CHECK_NEAR(json_number_value(json_object_get(row, "rewards/rejected")), rr, 2e-5);
    CHECK_NEAR(json_number_value(json_object_get(row, "lr")), 1e-3, 1e-12);
    json_decref(c);
    json_decref(row);
    snprintf(p, sizeof p, "%s/OUT/metrics.csv", dir);
    f = fopen(p, "r");
    REQUIRE(f);
    int lines = 0;
    while (fgets(line, sizeof line, f)) {
        if (lines == 0) CHECK(strstr(line, "rewards/accuracies") && strstr(line, "tokens_per_s"));
        lines++;
    }
    fclose(f);
    CHECK(lines == 3);
}

/* merge: the adapter merged into an HF export and into GGUF gives the adapter's logits */
PT_TEST(test_train_cli_merge) {
    const char *dir = pt_test_tmpdir(), *d = ref_dir("llama3");
    char *err = NULL;
    int rc = pt_test_run(NULL, &err, "OMP_NUM_THREADS=1 \"$POLITUNE_BIN\" merge --model '%s' --adapter '%s/adapter' --out '%s/merged'", d, d, dir);
    CHECK_MSG(rc == 0, "merge hf exited %d: %s", rc, err ? err : "");
    free(err);
    rc = pt_test_run(NULL, &err, "\"$POLITUNE_BIN\" merge --model '%s' --adapter '%s/adapter' --out '%s/merged.gguf' --type f32", d, d, dir);
    CHECK_MSG(rc == 0, "merge gguf exited %d: %s", rc, err ? err : "");
    free(err);
    pt_safetensors exp = {0};
    char p[800];
    snprintf(p, sizeof p, "%s/expected.safetensors", d);
    REQUIRE_OK(pt_safetensors_open(&exp, p));
    const pt_tensor_view *want = pt_safetensors_find(&exp, "forward_lora.0.logits");
    json_t *c = fx_cases("llama3");
    int n;
    int32_t *ids = fx_ids(json_object_get(json_array_get(json_object_get(c, "forward"), 0), "ids"), &n);
    for (int k = 0; k < 2; k++) {
        snprintf(p, sizeof p, k ? "%s/merged.gguf" : "%s/merged", dir);
        pt_model *m = NULL;
        pt_engine *e = NULL;
        const float *logits = NULL;
        CHECK_OK(pt_model_load(&m, p));
        if (m && pt_engine_new(&e, m, 1, 64) == PT_OK && pt_engine_forward_one(e, 0, ids, n, PT_LOGITS_ALL, &logits) == PT_OK)
            fx_close(k ? "merged gguf logits" : "merged hf logits", logits, (const float *)want->data, (int64_t)n * m->cfg.vocab_size, 1e-4);
        else CHECK_MSG(0, "%s: %s", p, pt_errmsg());
        pt_engine_free(e);
        pt_model_free(m);
    }
    /* bad type for safetensors, missing adapter */
    CHECK(pt_test_run(NULL, NULL, "\"$POLITUNE_BIN\" merge --model '%s' --adapter '%s/adapter' --out '%s/x' --type q8_0", d, d, dir) == 2);
    CHECK(pt_test_run(NULL, NULL, "\"$POLITUNE_BIN\" merge --model '%s' --adapter /nonexistent --out '%s/y'", d, dir) == 1);
    free(ids);
    json_decref(c);
    pt_safetensors_close(&exp);
}
