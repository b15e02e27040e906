/* `politune train --eval-every N`: compass evaluations appended to OUT/compass/ during
 * training, without changing the trained adapter, and not repeated by a resumed run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "internal.h"
#include "test.h"
#include "util/file.h"

#define STORIES "assets/models/stories260K/stories260K.gguf"

/* A handful of pre-tokenized DPO pairs (stories260K has a 512-token vocabulary). */
static void write_pairs(const char *dir) {
    char path[600];
    snprintf(path, sizeof path, "%s/pairs.jsonl", dir);
    FILE *f = fopen(path, "w");
    if (!f) return;
    for (int i = 0; i < 6; i++) {
        fprintf(f, "{\"prompt_ids\":[1,%d,%d,%d],\"chosen_ids\":[%d,%d,%d],\"rejected_ids\":[%d,%d]}\n", 10 + i, 40 + 3 * i, 7 + i,
                100 + i, 200 + 2 * i, 13, 300 + i, 400 + 5 * i);
    }
    fclose(f);
}

static int train(const char *dir, const char *out, const char *extra, char **err) {
    return pt_test_run(NULL, err,
                       "cd '%s' && POLITUNE_ASSETS='%s' OMP_NUM_THREADS=1 \"$POLITUNE_BIN\" train --method dpo --model '%s' --data pairs.jsonl "
                       "--out %s --lora-rank 4 --lora-alpha 8 --lora-targets q,v,head --lr 1e-2 --schedule constant --warmup-steps 0 "
                       "--batch-size 2 --grad-accum 1 --seed 3 --max-seq-len 64 --threads 1 --max-steps 4 %s",
                       dir, pt_test_shared("assets"), pt_test_shared(STORIES), out, extra);
}

static char *read_file(const char *dir, const char *rel, size_t *len) {
    char path[800];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    char *buf = NULL;
    size_t n = 0;
    if (pt_file_read_all(path, &buf, &n)) return NULL;
    if (len) *len = n;
    return buf;
}

static bool same_file(const char *dir, const char *a, const char *b) {
    size_t na = 0, nb = 0;
    char *x = read_file(dir, a, &na), *y = read_file(dir, b, &nb);
    bool same = x && y && na == nb && !memcmp(x, y, na);
    free(x), free(y);
    return same;
}

/* The step column of every pc.csv row after the header; returns the number of rows. */
static int pc_steps(const char *dir, const char *out, long *steps, int cap) {
    char rel[256];
    snprintf(rel, sizeof rel, "%s/compass/pc.csv", out);
    char *csv = read_file(dir, rel, NULL);
    if (!csv) return -1;
    int n = 0;
    char *line = strchr(csv, '\n');
    while (line && line[1]) {
        line++;
        char *comma = strchr(line, ',');
        if (comma && n < cap) steps[n] = strtol(comma + 1, NULL, 10);
        n++;
        line = strchr(line, '\n');
    }
    free(csv);
    return n;
}

static void check_compass_json(const char *dir, const char *out) {
    char path[800];
    snprintf(path, sizeof path, "%s/%s/compass/compass.json", dir, out);
    json_t *root = json_load_file(path, 0, NULL);
    REQUIRE(root);
    json_t *evs = json_object_get(root, "evaluations");
    CHECK(json_array_size(evs) == 2);
    if (json_array_size(evs) == 2) {
        CHECK(json_integer_value(json_object_get(json_array_get(evs, 0), "step")) == 2);
        CHECK(json_integer_value(json_object_get(json_array_get(evs, 1), "step")) == 4);
    }
    json_decref(root);
}

PT_TEST(test_train_eval_every) {
    const char *dir = pt_test_tmpdir();
    write_pairs(dir);
    char *err = NULL;
    /* without evaluations */
    int rc = train(dir, "plain", "", &err);
    CHECK_MSG(rc == 0, "plain run: rc %d: %s", rc, err ? err : "");
    free(err), err = NULL;
    /* with evaluations at steps 2 and 4 (one template, a few open-prompt tokens) */
    rc = train(dir, "eval", "--eval-every 2 --eval-templates t1-fwd --eval-max-new-tokens 4", &err);
    CHECK_MSG(rc == 0, "eval run: rc %d: %s", rc, err ? err : "");
    free(err), err = NULL;
    REQUIRE(rc == 0);
    long steps[8] = {0};
    int n = pc_steps(dir, "eval", steps, 8);
    CHECK_MSG(n == 2 && steps[0] == 2 && steps[1] == 4, "pc.csv: %d rows (steps %ld, %ld)", n, steps[0], steps[1]);
    check_compass_json(dir, "eval");
    char svg[256];
    snprintf(svg, sizeof svg, "%s/eval/compass/compass.svg", dir);
    CHECK(pt_file_exists(svg));
    /* evaluations do not change training: bitwise the same adapter */
    CHECK(same_file(dir, "plain/adapter_model.safetensors", "eval/adapter_model.safetensors"));
    CHECK(same_file(dir, "plain/adapter_config.json", "eval/adapter_config.json"));
    /* a run checkpointing at steps 2 and 4, resumed from step 2: it repeats steps 3 and 4 (bit
     * for bit) but not the step-4 evaluation already recorded */
    const char *ev = "--eval-every 2 --eval-templates t1-fwd --eval-max-new-tokens 4 --save-every 2";
    rc = train(dir, "res", ev, &err);
    CHECK_MSG(rc == 0, "res run: rc %d: %s", rc, err ? err : "");
    free(err), err = NULL;
    char extra[256];
    snprintf(extra, sizeof extra, "%s --resume res/checkpoint-2", ev);
    rc = train(dir, "res", extra, &err);
    CHECK_MSG(rc == 0, "resumed run: rc %d: %s", rc, err ? err : "");
    n = pc_steps(dir, "res", steps, 8);
    CHECK_MSG(n == 2 && steps[0] == 2 && steps[1] == 4, "after resume, pc.csv: %d rows (steps %ld, %ld)", n, steps[0], steps[1]);
    check_compass_json(dir, "res");
    CHECK(same_file(dir, "plain/adapter_model.safetensors", "res/adapter_model.safetensors"));
    free(err);
    /* a bad template selection fails before training */
    CHECK(train(dir, "bad", "--eval-every 2 --eval-templates t99", NULL) != 0);
}

/* The evaluation's option scoring (`--eval-option-scoring`, a recipe's eval.option_scoring):
 * the step-4 evaluation under the reply scoring equals a separate `politune compass
 * --option-scoring reply` of the finished adapter, answer for answer and position for
 * position, and an unknown scoring fails before training. */
PT_TEST(test_train_eval_option_scoring) {
    const char *dir = pt_test_tmpdir();
    write_pairs(dir);
    char *err = NULL;
    int rc = train(dir, "reply", "--eval-every 4 --eval-templates t1 --eval-max-new-tokens 0 --eval-option-scoring reply", &err);
    CHECK_MSG(rc == 0, "reply run: rc %d: %s", rc, err ? err : "");
    free(err), err = NULL;
    REQUIRE(rc == 0);
    rc = pt_test_run(NULL, &err,
                     "cd '%s' && POLITUNE_ASSETS='%s' OMP_NUM_THREADS=1 \"$POLITUNE_BIN\" compass --model '%s' --adapter reply "
                     "--option-scoring reply --templates t1 --no-open-prompts --threads 1 --out alone",
                     dir, pt_test_shared("assets"), pt_test_shared(STORIES));
    CHECK_MSG(rc == 0, "compass: rc %d: %s", rc, err ? err : "");
    free(err), err = NULL;
    REQUIRE(rc == 0);
    char path[800];
    snprintf(path, sizeof path, "%s/reply/compass/compass.json", dir);
    json_t *tracked = json_load_file(path, 0, NULL);
    snprintf(path, sizeof path, "%s/alone/compass.json", dir);
    json_t *alone = json_load_file(path, 0, NULL);
    REQUIRE(tracked && alone);
    json_t *a = json_array_get(json_object_get(tracked, "evaluations"), 0);
    json_t *b = json_array_get(json_object_get(alone, "evaluations"), 0);
    REQUIRE(a && b);
    CHECK(json_integer_value(json_object_get(a, "step")) == 4);
    CHECK(!strcmp(json_string_value(json_object_get(a, "option_scoring")), "reply"));
    CHECK(!strcmp(json_string_value(json_object_get(b, "option_scoring")), "reply"));
    CHECK_MSG(json_equal(json_object_get(a, "position"), json_object_get(b, "position")), "positions differ");
    CHECK_MSG(json_equal(json_object_get(a, "expected"), json_object_get(b, "expected")), "expected positions differ");
    /* item by item: answers, probabilities and log-probabilities of every template */
    json_t *ia = json_object_get(a, "items"), *ib = json_object_get(b, "items");
    CHECK(json_array_size(ia) == 62 && json_array_size(ib) == 62);
    for (size_t i = 0; i < json_array_size(ia) && i < json_array_size(ib); i++)
        CHECK_MSG(json_equal(json_array_get(ia, i), json_array_get(ib, i)), "item %zu differs", i + 1);
    json_decref(tracked);
    json_decref(alone);
    rc = train(dir, "bad", "--eval-every 2 --eval-option-scoring longest", &err);
    CHECK(rc != 0);
    CHECK_MSG(err && strstr(err, "eval_option_scoring") && strstr(err, "longest"), "message: %s", err ? err : "");
    free(err);
}
