/* TRL as the oracle for DPO (issue #11 item 6): tools/trl_dpo_oracle.py runs trl.DPOTrainer's
 * own loss and backward pass on one batch of seeded pairs with a PEFT LoRA adapter on the random
 * reference Llama (float64), and `politune train --method dpo` takes one step on the same
 * tokenized pairs from the same adapter, writing its gradients with --grad-dump. Compared:
 * the loss and the reward metrics of metrics.jsonl's first row against TRL's, and every LoRA
 * gradient. Tolerances (fixtures/README.md's for this model): loss and log-probs within 1e-5
 * relative; rewards within 1e-6 absolute plus 1e-5 relative (TRL logs its metrics as float32);
 * gradients within 1e-4 x the largest |TRL gradient|. Skipped, with the reason, when the
 * oracle's Python packages are missing. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "format/safetensors.h"
#include "politune.h"
#include "test.h"

static double row_number(json_t *o, const char *key) { return json_number_value(json_object_get(o, key)); }

PT_TEST(test_trl_dpo_oracle_one_step) {
    const char *why = NULL;
    const char *py = pt_test_python("torch transformers peft trl datasets safetensors", &why);
    if (!py) SKIP("TRL oracle unavailable: %s", why);
    const char *dir = pt_test_tmpdir();
    const char *ref = pt_test_shared("fixtures/reference/llama3");
    char *err = NULL;
    /* the runner starts in the source tree (make test), where tools/ is */
    int rc = pt_test_run(NULL, &err, "OMP_NUM_THREADS=1 '%s' tools/trl_dpo_oracle.py --out '%s/trl' --pairs 3 --beta 0.1", py, dir);
    CHECK_MSG(rc == 0, "trl_dpo_oracle.py exited %d: %s", rc, err ? err : "");
    free(err);
    if (rc) return;
    rc = pt_test_run(NULL, &err,
                     "OMP_NUM_THREADS=1 \"$POLITUNE_BIN\" train --method dpo --model '%s' --data '%s/trl/pairs.jsonl' --init-adapter '%s/trl/adapter' "
                     "--out '%s/pt' --max-steps 1 --batch-size 3 --grad-accum 1 --beta 0.1 --loss-type sigmoid --lora-dropout 0 "
                     "--max-grad-norm 0 --no-shuffle --lr 1e-3 --schedule constant --warmup-steps 0 --grad-dump '%s/pt_grads.safetensors'",
                     ref, dir, dir, dir, dir);
    CHECK_MSG(rc == 0, "politune train exited %d: %s", rc, err ? err : "");
    free(err);
    if (rc) return;

    char *trl_text = pt_test_read(dir, "trl/trl.json"), *metrics = pt_test_read(dir, "pt/metrics.jsonl");
    REQUIRE(trl_text && metrics);
    json_t *trl = json_loads(trl_text, 0, NULL), *row = json_loads(metrics, JSON_DISABLE_EOF_CHECK, NULL);
    REQUIRE(trl && row);
    json_t *tm = json_object_get(trl, "trl_metrics");
    double loss = row_number(trl, "loss");
    CHECK_NEAR(row_number(row, "loss"), loss, 1e-5 * fabs(loss));
    static const char *const rewards[] = {"rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"};
    for (int i = 0; i < 4; i++) {
        double want = row_number(tm, rewards[i]);
        CHECK_MSG(fabs(row_number(row, rewards[i]) - want) <= 1e-6 + 1e-5 * fabs(want), "%s: politune %.9g, TRL %.9g", rewards[i],
                  row_number(row, rewards[i]), want);
    }
    static const char *const logps[] = {"logps/chosen", "logps/rejected"};
    for (int i = 0; i < 2; i++) {
        double want = row_number(tm, logps[i]);
        CHECK_MSG(fabs(row_number(row, logps[i]) - want) <= 1e-5 * fabs(want), "%s: politune %.9g, TRL %.9g", logps[i], row_number(row, logps[i]),
                  want);
    }
    printf("    loss politune %.9f TRL %.9f; rewards/margins politune %.9g TRL %.9g\n", row_number(row, "loss"), loss,
           row_number(row, "rewards/margins"), row_number(tm, "rewards/margins"));

    char p[800];
    pt_safetensors want = {0}, got = {0};
    snprintf(p, sizeof p, "%s/trl/trl_grads.safetensors", dir);
    REQUIRE_OK(pt_safetensors_open(&want, p));
    snprintf(p, sizeof p, "%s/pt_grads.safetensors", dir);
    REQUIRE_OK(pt_safetensors_open(&got, p));
    CHECK_MSG(want.n_tensors == got.n_tensors && want.n_tensors > 0, "TRL has %d gradient tensors, politune %d", want.n_tensors, got.n_tensors);
    double scale = 0, worst = 0;
    for (int i = 0; i < want.n_tensors; i++) {
        const float *w = (const float *)want.tensors[i].data;
        for (int64_t j = 0; j < pt_tensor_numel(&want.tensors[i]); j++) scale = fmax(scale, fabs(w[j]));
    }
    for (int i = 0; i < want.n_tensors; i++) {
        const pt_tensor_view *w = &want.tensors[i], *g = pt_safetensors_find(&got, w->name);
        CHECK_MSG(g, "politune's gradient dump lacks %s", w->name);
        if (!g) continue;
        CHECK_MSG(pt_tensor_numel(g) == pt_tensor_numel(w), "%s: %lld elements, TRL %lld", w->name, (long long)pt_tensor_numel(g),
                  (long long)pt_tensor_numel(w));
        if (pt_tensor_numel(g) != pt_tensor_numel(w)) continue;
        const float *a = (const float *)g->data, *b = (const float *)w->data;
        double d = 0;
        for (int64_t j = 0; j < pt_tensor_numel(w); j++) d = fmax(d, fabs((double)a[j] - b[j]));
        CHECK_MSG(d <= 1e-4 * scale, "%s: largest |politune - TRL| %.3g > 1e-4 x %.3g", w->name, d, scale);
        worst = fmax(worst, d);
    }
    printf("    %d LoRA gradient tensors, largest |politune - TRL| %.3g (%.2g of the largest gradient)\n", want.n_tensors, worst,
           scale > 0 ? worst / scale : 0);
    CHECK(scale > 0);
    pt_safetensors_close(&want);
    pt_safetensors_close(&got);
    json_decref(trl);
    json_decref(row);
    free(trl_text);
    free(metrics);
}
