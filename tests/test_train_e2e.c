/* Training behaviour end to end through the CLI: DPO on a handful of stories260K preference
 * pairs learns them (rewards/accuracies 1.0, rising margin) and changes generation; a run
 * killed with SIGKILL and resumed ends with the bitwise-same adapter; the reference cache,
 * gradient accumulation, loss variants and schedules behave as defined; bad inputs give
 * clear errors and exit codes; a failed checkpoint write or a NaN leaves the previous
 * checkpoint intact. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "internal.h"
#include "test.h"
#include "train/config.h"
#include "train/loss.h"
#include "train/optim.h"

#define STORIES "assets/models/stories260K/stories260K.gguf"

/* All JSONL rows of dir/OUT/metrics.jsonl. */
static json_t *metrics(const char *dir, const char *out) {
    char name[256];
    snprintf(name, sizeof name, "%s/metrics.jsonl", out);
    char *text = pt_test_read(dir, name);
    json_t *rows = json_array();
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        json_t *r = json_loads(line, 0, NULL);
        if (r) json_array_append_new(rows, r);
        else pt_test_fail(__FILE__, __LINE__, "bad metrics row: %s", line);
    }
    free(text);
    return rows;
}

static double num(json_t *row, const char *key) { return json_number_value(json_object_get(row, key)); }

#define STORIES_ARGS                                                                                                        \
    "--method dpo --model '%s' --data pairs.jsonl --template none --lora-rank 8 --lora-alpha 16 --lora-targets all "    \
    "--schedule constant --warmup-steps 0 --lora-dropout 0 "

PT_TEST(test_train_stories_dpo_behaviour) {
    const char *dir = pt_test_tmpdir(), *model = pt_test_shared(STORIES);
    pt_test_write(dir, "pairs.jsonl", pt_test_stories_pairs);
    char *err = NULL;
    int rc = pt_test_run(NULL, &err, "cd '%s' && \"$POLITUNE_BIN\" train --threads 1 " STORIES_ARGS "--lr 3e-3 --batch-size 6 --grad-accum 1 --max-steps 30 --out OUT",
                         dir, model);
    CHECK_MSG(rc == 0, "train exited %d: %s", rc, err ? err : "");
    free(err);
    json_t *rows = metrics(dir, "OUT");
    REQUIRE(json_array_size(rows) == 30);
    json_t *first = json_array_get(rows, 0), *last = json_array_get(rows, 29);
    CHECK_NEAR(num(last, "rewards/accuracies"), 1.0, 0);
    CHECK_MSG(num(last, "rewards/margins") > num(first, "rewards/margins") + 1.0, "margin %.4g -> %.4g", num(first, "rewards/margins"),
              num(last, "rewards/margins"));
    CHECK(num(last, "loss") < 0.5 * num(first, "loss"));
    CHECK(num(last, "rewards/chosen") > num(last, "rewards/rejected"));
    json_decref(rows);
    /* the adapter changes what the model writes */
    char *base = NULL, *tuned = NULL;
    const char *gen = "\"$POLITUNE_BIN\" generate --model '%s' %s --prompt 'One day, Tim went to the park. He saw a big' --max-new-tokens 12";
    char extra[700];
    snprintf(extra, sizeof extra, "--adapter '%s/OUT'", dir);
    CHECK(pt_test_run(&base, NULL, gen, model, "") == 0);
    CHECK(pt_test_run(&tuned, NULL, gen, model, extra) == 0);
    CHECK_MSG(base && tuned && strcmp(base, tuned), "generation unchanged by the adapter: '%s'", base ? base : "");
    free(base), free(tuned);
    /* and the preferred continuation of a training prompt became more likely, the other less */
    const char *score = "\"$POLITUNE_BIN\" score --model '%s' %s --prompt 'One day, Tim went to the park. He saw a big' --continuation '%s'";
    double lp[2][2];
    for (int k = 0; k < 2; k++)
        for (int c = 0; c < 2; c++) {
            char *o = NULL;
            CHECK(pt_test_run(&o, NULL, score, model, k ? extra : "", c ? " tree." : " red ball.") == 0);
            json_t *j = o ? json_loads(o, 0, NULL) : NULL;
            lp[k][c] = json_number_value(json_object_get(j, "logprob"));
            json_decref(j);
            free(o);
        }
    CHECK_MSG(lp[1][0] > lp[0][0] && lp[1][1] < lp[0][1], "log p(red ball) %.3f -> %.3f, log p(tree) %.3f -> %.3f", lp[0][0], lp[1][0],
              lp[0][1], lp[1][1]);
}

/* SIGKILL mid-run, resume, and compare with an uninterrupted run: the same bytes. Shuffling,
 * dropout, accumulation and epoch boundaries are all on. */
PT_TEST(test_train_resume_after_sigkill_is_bitwise) {
    const char *dir = pt_test_tmpdir(), *model = pt_test_shared(STORIES);
    pt_test_write(dir, "pairs.jsonl", pt_test_stories_pairs);
    const char *args = "--method dpo --model '%s' --data pairs.jsonl --template none --lora-rank 4 --lora-alpha 8 --lora-targets q,v,down,head "
                       "--lora-dropout 0.1 --lr 1e-3 --schedule cosine --warmup-steps 3 --batch-size 2 --grad-accum 2 --max-steps 40 "
                       "--save-every 4 --keep-checkpoints 2 --seed 7";
    char fmt[2048];
    snprintf(fmt, sizeof fmt, "cd '%%s' && \"$POLITUNE_BIN\" train --threads 1 %s --out A", args);
    char *err = NULL;
    int rc = pt_test_run(NULL, &err, fmt, dir, model);
    CHECK_MSG(rc == 0, "uninterrupted run exited %d: %s", rc, err ? err : "");
    free(err);
    snprintf(fmt, sizeof fmt,
             "cd '%%s' && ( \"$POLITUNE_BIN\" train --threads 1 %s --out B >/dev/null 2>&1 & pid=$!; n=0; "
             "while [ ! -e B/checkpoint-8/trainer_state.json ] && [ $n -lt 3000 ]; do sleep 0.01; n=$((n+1)); done; "
             "kill -9 $pid; wait $pid; echo killed $? )",
             args);
    char *out = NULL;
    rc = pt_test_run(&out, NULL, fmt, dir, model);
    CHECK_MSG(out && strstr(out, "killed 137"), "the run was not killed by SIGKILL: %s", out ? out : "");
    free(out);
    snprintf(fmt, sizeof fmt, "cd '%%s' && \"$POLITUNE_BIN\" train --threads 1 %s --out B --resume B", args);
    rc = pt_test_run(&out, &err, fmt, dir, model);
    CHECK_MSG(rc == 0, "resumed run exited %d: %s", rc, err ? err : "");
    json_t *res = out ? json_loads(out, 0, NULL) : NULL;
    long start = (long)json_integer_value(json_object_get(res, "start_step"));
    CHECK_MSG(start >= 8 && start < 40, "resumed from step %ld (stderr: %s)", start, err ? err : "");
    /* (checkpoint-8 was complete when the kill came, so the resumed run starts there or later) */
    json_decref(res);
    free(out), free(err);
    char *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    char pa[700], pb[700];
    snprintf(pa, sizeof pa, "%s/A/adapter_model.safetensors", dir);
    snprintf(pb, sizeof pb, "%s/B/adapter_model.safetensors", dir);
    CHECK_OK(pt_file_read_all(pa, &a, &na));
    CHECK_OK(pt_file_read_all(pb, &b, &nb));
    CHECK_MSG(a && b && na == nb && !memcmp(a, b, na), "resumed adapter differs from the uninterrupted run's");
    free(a), free(b);
    /* the metrics log holds each step once */
    json_t *rows = metrics(dir, "B");
    CHECK(json_array_size(rows) == 40);
    for (size_t i = 0; i < json_array_size(rows); i++) CHECK(num(json_array_get(rows, i), "step") == (double)(i + 1));
    json_decref(rows);
    /* only the newest checkpoints are kept */
    snprintf(pa, sizeof pa, "%s/B/checkpoint-32", dir);
    snprintf(pb, sizeof pb, "%s/B/checkpoint-36", dir);
    CHECK(!pt_dir_exists(pa) && pt_dir_exists(pb));
}

/* --precompute-ref: computed once, cached, reused; the same training result. */
PT_TEST(test_train_precompute_ref_cache) {
    const char *dir = pt_test_tmpdir(), *model = pt_test_shared(STORIES);
    pt_test_write(dir, "pairs.jsonl", pt_test_stories_pairs);
    const char *fmt = "cd '%s' && \"$POLITUNE_BIN\" train --threads 1 " STORIES_ARGS "--lr 1e-3 --batch-size 3 --grad-accum 1 --max-steps 4 --out %s %s";
    char *err = NULL;
    CHECK(pt_test_run(NULL, NULL, fmt, dir, model, "P", "") == 0);
    CHECK(pt_test_run(NULL, &err, fmt, dir, model, "Q", "--precompute-ref --ref-cache .") == 0);
    CHECK_MSG(err && strstr(err, "cached in"), "no cache message: %s", err ? err : "");
    free(err);
    CHECK(pt_test_run(NULL, &err, fmt, dir, model, "R", "--precompute-ref --ref-cache .") == 0);
    CHECK_MSG(err && strstr(err, "read from"), "the cache was not reused: %s", err ? err : "");
    free(err);
    json_t *p = metrics(dir, "P"), *q = metrics(dir, "Q"), *r = metrics(dir, "R");
    REQUIRE(json_array_size(p) == 4 && json_array_size(q) == 4 && json_array_size(r) == 4);
    for (int i = 0; i < 4; i++) {
        /* the cache is computed in other batches than training packs: float32 rounding differs */
        CHECK_NEAR(num(json_array_get(q, i), "loss"), num(json_array_get(p, i), "loss"), 1e-5 * num(json_array_get(p, i), "loss"));
        CHECK_NEAR(num(json_array_get(r, i), "loss"), num(json_array_get(q, i), "loss"), 0);
        CHECK_NEAR(num(json_array_get(q, i), "rewards/margins"), num(json_array_get(p, i), "rewards/margins"), 1e-5);
    }
    json_decref(p), json_decref(q), json_decref(r);
}

/* Batch 6, batch 3 x 2 and batch 1 x 6 accumulate the same gradient (and loss). */
PT_TEST(test_train_grad_accumulation) {
    const char *dir = pt_test_tmpdir(), *model = pt_test_shared(STORIES);
    pt_test_write(dir, "pairs.jsonl", pt_test_stories_pairs);
    const char *fmt = "cd '%s' && \"$POLITUNE_BIN\" train --threads 1 --method %s --model '%s' --data pairs.jsonl --template none --lora-targets all "
                      "--lr 1e-3 --lora-dropout 0 --no-shuffle --max-steps 1 --batch-size %d --grad-accum %d --out %s";
    static const int shapes[3][2] = {{6, 1}, {3, 2}, {1, 6}};
    for (int m = 0; m < 2; m++) {
        const char *method = m ? "sft" : "dpo";
        double loss0 = 0, norm0 = 0;
        for (int s = 0; s < 3; s++) {
            char out[32];
            snprintf(out, sizeof out, "%s%d", method, s);
            CHECK(pt_test_run(NULL, NULL, fmt, dir, method, model, shapes[s][0], shapes[s][1], out) == 0);
            json_t *rows = metrics(dir, out), *row = json_array_get(rows, 0);
            if (s == 0) loss0 = num(row, "loss"), norm0 = num(row, "grad_norm");
            else {
                CHECK_NEAR(num(row, "loss"), loss0, 1e-6 * fabs(loss0) + 1e-9);
                CHECK_NEAR(num(row, "grad_norm"), norm0, 1e-5 * norm0);
            }
            CHECK(num(row, "grad_norm") > 0);
            json_decref(rows);
        }
    }
}

/* Step 1's loss for each DPO variant from the fixture's log-probabilities (TRL's formulas; IPO
 * on length-averaged log-probabilities), and SFT's against the fixture's SFT loss. */
PT_TEST(test_train_loss_variants_cli) {
    const char *dir = pt_test_tmpdir(), *d = pt_test_shared("fixtures/reference/llama3");
    json_t *c = fx_cases("llama3");
    REQUIRE(c);
    json_t *pairs = json_object_get(json_object_get(c, "dpo"), "pairs");
    FILE *f;
    char path[700];
    snprintf(path, sizeof path, "%s/pairs.jsonl", dir);
    f = fopen(path, "w");
    for (size_t i = 0; i < json_array_size(pairs); i++) {
        json_t *p = json_array_get(pairs, i);
        json_t *o = json_pack("{s:O,s:O,s:O}", "prompt_ids", json_object_get(p, "prompt"), "chosen_ids", json_object_get(p, "chosen"),
                              "rejected_ids", json_object_get(p, "rejected"));
        char *line = json_dumps(o, JSON_COMPACT);
        fprintf(f, "%s\n", line);
        free(line);
        json_decref(o);
    }
    fclose(f);
    struct { const char *args; pt_dpo_loss_type t; double ls; } v[] = {
        {"--loss-type sigmoid --label-smoothing 0.1", PT_DPO_SIGMOID, 0.1}, {"--loss-type ipo", PT_DPO_IPO, 0}, {"--loss-type hinge", PT_DPO_HINGE, 0}};
    for (int k = 0; k < 3; k++) {
        double want = 0, d1, d2;
        for (size_t i = 0; i < json_array_size(pairs); i++) {
            json_t *p = json_array_get(pairs, i);
            double nc = v[k].t == PT_DPO_IPO ? json_array_size(json_object_get(p, "chosen")) : 1;
            double nr = v[k].t == PT_DPO_IPO ? json_array_size(json_object_get(p, "rejected")) : 1;
            want += pt_dpo_loss(v[k].t, 0.1, v[k].ls, json_real_value(json_object_get(p, "policy_chosen_logp")) / nc,
                                json_real_value(json_object_get(p, "policy_rejected_logp")) / nr,
                                json_real_value(json_object_get(p, "ref_chosen_logp")) / nc,
                                json_real_value(json_object_get(p, "ref_rejected_logp")) / nr, &d1, &d2) /
                    2;
        }
        char out[16];
        snprintf(out, sizeof out, "V%d", k);
        char *err = NULL;
        int rc = pt_test_run(NULL, &err,
                             "cd '%s' && \"$POLITUNE_BIN\" train --threads 1 --method dpo --model '%s' --data pairs.jsonl --init-adapter '%s/adapter' "
                             "--lora-dropout 0 --max-steps 1 --batch-size 2 --grad-accum 1 --out %s %s",
                             dir, d, d, out, v[k].args);
        CHECK_MSG(rc == 0, "%s: %s", v[k].args, err ? err : "");
        free(err);
        json_t *rows = metrics(dir, out);
        CHECK_NEAR(num(json_array_get(rows, 0), "loss"), want, 1e-5 * fabs(want) + 1e-7);
        json_decref(rows);
    }
    /* SFT */
    json_t *ex = json_object_get(json_object_get(c, "sft"), "examples");
    snprintf(path, sizeof path, "%s/sft.jsonl", dir);
    f = fopen(path, "w");
    for (size_t i = 0; i < json_array_size(ex); i++) {
        json_t *e = json_array_get(ex, i);
        json_t *o = json_pack("{s:O,s:O}", "prompt_ids", json_object_get(e, "prompt"), "response_ids", json_object_get(e, "response"));
        char *line = json_dumps(o, JSON_COMPACT);
        fprintf(f, "%s\n", line);
        free(line);
        json_decref(o);
    }
    fclose(f);
    CHECK(pt_test_run(NULL, NULL,
                      "cd '%s' && \"$POLITUNE_BIN\" train --threads 1 --method sft --model '%s' --data sft.jsonl --init-adapter '%s/adapter' "
                      "--lora-dropout 0 --max-steps 1 --batch-size 1 --grad-accum 2 --out S",
                      dir, d, d) == 0);
    json_t *rows = metrics(dir, "S");
    double want = json_real_value(json_object_get(json_object_get(c, "sft"), "loss"));
    CHECK_NEAR(num(json_array_get(rows, 0), "loss"), want, 1e-5 * want);
    json_decref(rows);
    json_decref(c);
}

/* Cosine with warm-up in the metrics' lr column; epochs decide the step count; clipping to a
 * tiny norm all but stops AdamW's first step. */
PT_TEST(test_train_schedule_epochs_clipping) {
    const char *dir = pt_test_tmpdir(), *model = pt_test_shared(STORIES);
    pt_test_write(dir, "pairs.jsonl", pt_test_stories_pairs);
    CHECK(pt_test_run(NULL, NULL,
                      "cd '%s' && \"$POLITUNE_BIN\" train --threads 1 --method dpo --model '%s' --data pairs.jsonl --template none --lr 1e-3 "
                      "--schedule cosine --warmup-steps 2 --batch-size 2 --grad-accum 1 --epochs 3 --out C",
                      dir, model) == 0);
    json_t *rows = metrics(dir, "C");
    REQUIRE(json_array_size(rows) == 9); /* 6 pairs / 2 per step x 3 epochs */
    for (int s = 0; s < 9; s++) {
        double want = 1e-3 * pt_schedule_factor(PT_SCHED_COSINE, s, 2, 9);
        CHECK_NEAR(num(json_array_get(rows, s), "lr"), want, 1e-12);
    }
    CHECK_NEAR(num(json_array_get(rows, 8), "epoch"), 3.0, 1e-9);
    json_decref(rows);
    /* clipping: the adapter's B (zero at start) moves ~lr unclipped, ~0 clipped to 1e-12 */
    for (int k = 0; k < 2; k++)
        CHECK(pt_test_run(NULL, NULL,
                          "cd '%s' && \"$POLITUNE_BIN\" train --threads 1 --method dpo --model '%s' --data pairs.jsonl --template none --lr 1e-3 "
                          "--schedule constant --warmup-steps 0 --max-steps 1 --batch-size 6 --lora-targets q --out K%d %s",
                          dir, model, k, k ? "--max-grad-norm 1e-12" : "--max-grad-norm 0") == 0);
    double moved[2];
    for (int k = 0; k < 2; k++) {
        char p[700];
        snprintf(p, sizeof p, "%s/K%d/adapter_model.safetensors", dir, k);
        pt_safetensors st = {0};
        REQUIRE_OK(pt_safetensors_open(&st, p));
        const pt_tensor_view *b = pt_safetensors_find(&st, "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight");
        REQUIRE(b);
        moved[k] = 0;
        for (int64_t i = 0; i < pt_tensor_numel(b); i++) moved[k] = fmax(moved[k], fabs(((const float *)b->data)[i]));
        pt_safetensors_close(&st);
    }
    CHECK_MSG(moved[0] > 5e-4 && moved[1] < 1e-6, "max |B| after one step: %.3g unclipped, %.3g clipped", moved[0], moved[1]);
}

static void expect_fail(const char *dir, const char *args, int want_rc, const char *needle) {
    char *err = NULL;
    int rc = pt_test_run(NULL, &err, "cd '%s' && \"$POLITUNE_BIN\" train --threads 1 %s", dir, args);
    CHECK_MSG(rc == want_rc, "train %s: exit %d, expected %d (%s)", args, rc, want_rc, err ? err : "");
    CHECK_MSG(err && strstr(err, needle), "train %s: message lacks '%s': %s", args, needle, err ? err : "");
    free(err);
}

PT_TEST(test_train_bad_inputs) {
    const char *dir = pt_test_tmpdir(), *model = pt_test_shared(STORIES), *llama = pt_test_shared("fixtures/reference/llama3"),
               *mistral = pt_test_shared("fixtures/reference/mistral");
    pt_test_write(dir, "bad.jsonl",
               "{\"prompt_ids\":[1,2,3],\"chosen_ids\":[4],\"rejected_ids\":[5]}\n"
               "\n"
               "{\"prompt_ids\":[1,2,3],\"chosen_ids\":[4],\"rejected_ids\":[5]\n"
               "{\"prompt_ids\":[1,2],\"chosen_ids\":[4,5],\"rejected_ids\":[6]}\n");
    pt_test_write(dir, "missing.jsonl", "{\"prompt_ids\":[1,2,3],\"chosen_ids\":[4],\"rejected_ids\":[5]}\n{\"prompt_ids\":[1],\"chosen_ids\":[4]}\n");
    pt_test_write(dir, "empty_prompt.jsonl", "{\"prompt\":\"\",\"chosen\":\" a\",\"rejected\":\" b\"}\n");
    pt_test_write(dir, "empty_resp.jsonl", "{\"prompt\":\"Once\",\"chosen\":\"\",\"rejected\":\" b\"}\n");
    pt_test_write(dir, "range.jsonl", "{\"prompt_ids\":[1,2,3],\"chosen_ids\":[4000],\"rejected_ids\":[5]}\n");
    pt_test_write(dir, "array.json", "[\n  {\"prompt_ids\":[1],\"chosen_ids\":[2],\"rejected_ids\":[3]},\n  {\"prompt_ids\":[1],\n   \"chosen_ids\":[], \"rejected_ids\":[3]}\n]\n");
    pt_test_write(dir, "bad.yaml", "lr: 1e-4\nbatch_size: 2\nlerning_rate: 3\n");
    pt_test_write(dir, "badval.yaml", "lr: fast\n");
    char a[2048];
    const char *base = "--method dpo --model '%s' --out O --max-steps 1 --data %s";
    snprintf(a, sizeof a, base, model, "bad.jsonl");
    expect_fail(dir, a, 1, "bad.jsonl:3:");
    /* --skip-bad skips and counts */
    char *out = NULL;
    snprintf(a, sizeof a, base, model, "bad.jsonl --skip-bad");
    CHECK(pt_test_run(&out, NULL, "cd '%s' && \"$POLITUNE_BIN\" train --threads 1 %s", dir, a) == 0);
    CHECK_MSG(out && strstr(out, "\"skipped\":1") && strstr(out, "\"examples\":2"), "summary: %s", out ? out : "");
    free(out);
    /* bad records, recipes and flags: each names what is wrong (data file and line, recipe
     * line and key, the flag) */
    static const struct { const char *args; int rc; const char *msg; } cases[] = {
        {"missing.jsonl", 1, "missing.jsonl:2: a pre-tokenized pair needs 'chosen_ids' and 'rejected_ids'"},
        {"empty_prompt.jsonl", 1, "empty_prompt.jsonl:1: empty prompt"},
        {"empty_resp.jsonl", 1, "empty_resp.jsonl:1: empty chosen response"},
        {"range.jsonl", 1, "range.jsonl:1: 'chosen_ids'[0] = 4000 is outside the vocabulary"},
        {"array.json", 1, "array.json:3: 'chosen_ids' is empty"},
        {"nonexistent.jsonl", 1, "nonexistent.jsonl"},
        {"bad.jsonl --recipe bad.yaml", 2, "bad.yaml:3: unknown key 'lerning_rate'"},
        {"bad.jsonl --recipe badval.yaml", 2, "badval.yaml:1: lr: 'fast' is not a number"},
        {"bad.jsonl --skip-bad --learning-rate 1", 2, "unknown option '--learning-rate'"},
        {"bad.jsonl --skip-bad --lora-dropout 1.5", 2, "lora_dropout"},
        {"bad.jsonl --skip-bad --method ppo", 2, "method: 'ppo' is not dpo or sft"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(a, sizeof a, base, model, cases[i].args);
        expect_fail(dir, a, cases[i].rc, cases[i].msg);
    }
    /* an adapter made for another model */
    snprintf(a, sizeof a, "--method dpo --model '%s' --out O --data bad.jsonl --skip-bad --init-adapter '%s/adapter'", mistral, llama);
    expect_fail(dir, a, 1, "the base model needs");
    expect_fail(dir, "--method dpo --data x --out O", 2, "--model PATH is required");
    /* resuming with a different setting */
    CHECK(pt_test_run(NULL, NULL, "cd '%s' && \"$POLITUNE_BIN\" train --threads 1 --method dpo --model '%s' --data bad.jsonl --skip-bad --out R --max-steps 1", dir,
                      model) == 0);
    snprintf(a, sizeof a, "--method dpo --model '%s' --data bad.jsonl --skip-bad --out R --max-steps 2 --resume R --lr 1e-2", model);
    expect_fail(dir, a, 2, "cannot resume: lr is 0.01 now but the checkpoint was made with 0.0005");
}

/* Keys from a recipe apply; flags and key=value override them wherever they stand. */
PT_TEST(test_train_recipe_applies) {
    const char *dir = pt_test_tmpdir(), *model = pt_test_shared(STORIES);
    pt_test_write(dir, "pairs.jsonl", pt_test_stories_pairs);
    pt_test_write(dir, "r.yaml",
               "# a small recipe\nmethod: dpo\ntemplate: none\nlora_rank: 2\nlora_alpha: 4\nlora_targets: [q_proj, v_proj]\n"
               "adam_betas: [0.8, 0.99]\nlr: 2.0e-3\nschedule: constant\nwarmup_steps: 0\nbatch_size: 3\ngrad_accum: 1\nmax_steps: 3\n");
    CHECK(pt_test_run(NULL, NULL, "cd '%s' && \"$POLITUNE_BIN\" train --threads 1 lr=1e-3 --model '%s' --data pairs.jsonl --out O --recipe r.yaml --max-steps=2",
                      dir, model) == 0);
    json_t *rows = metrics(dir, "O");
    CHECK(json_array_size(rows) == 2);
    CHECK_NEAR(num(json_array_get(rows, 0), "lr"), 1e-3, 1e-12);
    json_decref(rows);
    char *cfg = pt_test_read(dir, "O/adapter_config.json");
    json_t *o = cfg ? json_loads(cfg, 0, NULL) : NULL;
    CHECK(json_integer_value(json_object_get(o, "r")) == 2);
    CHECK(json_array_size(json_object_get(o, "target_modules")) == 2);
    CHECK(!strcmp(json_string_value(json_object_get(o, "peft_type")), "LORA"));
    json_decref(o);
    free(cfg);
    /* the shipped recipes parse */
    static const char *shipped[] = {"recipes/llama3-8b-lora-dpo.yaml", "recipes/llama3-8b-lora-sft.yaml", "recipes/mistral-7b-lora-dpo.yaml",
                                    "recipes/mistral-7b-lora-sft.yaml", "recipes/stories260k-lora-dpo.yaml"};
    for (size_t i = 0; i < sizeof shipped / sizeof shipped[0]; i++) {
        pt_train_config c;
        pt_train_config_defaults(&c);
        CHECK_OK(pt_train_recipe_load(&c, shipped[i]));
        pt_train_config_free(&c);
    }
}

/* A loss that turns infinite stops the run; the checkpoint before it stays and resumes. */
PT_TEST(test_train_nan_stops_run) {
    const char *dir = pt_test_tmpdir(), *model = pt_test_shared(STORIES);
    pt_test_write(dir, "pairs.jsonl", pt_test_stories_pairs);
    char *err = NULL;
    int rc = pt_test_run(NULL, &err,
                         "cd '%s' && \"$POLITUNE_BIN\" train --threads 1 --method dpo --model '%s' --data pairs.jsonl --template none --lr 1e30 "
                         "--schedule constant --warmup-steps 0 --batch-size 6 --max-steps 5 --save-every 1 --out N",
                         dir, model);
    CHECK_MSG(rc == 1, "exit %d", rc);
    CHECK_MSG(err && strstr(err, "stopping") && (strstr(err, "NaN") || strstr(err, "infinite") || strstr(err, "non-finite")), "message: %s",
              err ? err : "");
    free(err);
    char p[700];
    snprintf(p, sizeof p, "%s/N/checkpoint-1/trainer_state.json", dir);
    int kept = pt_file_exists(p);
    snprintf(p, sizeof p, "%s/N/checkpoint-2", dir);
    /* step 1's update already blows the parameters up: the run stops there or at step 2 */
    CHECK_MSG(kept || !pt_dir_exists(p), "no good checkpoint kept");
    snprintf(p, sizeof p, "%s/N/adapter_model.safetensors", dir);
    CHECK(!pt_file_exists(p));
}

/* A checkpoint write that fails leaves the previous checkpoint and `latest` as they were. */
PT_TEST(test_train_failed_checkpoint_write_keeps_previous) {
    const char *dir = pt_test_tmpdir(), *model = pt_test_shared(STORIES);
    pt_test_write(dir, "pairs.jsonl", pt_test_stories_pairs);
    char p[700];
    snprintf(p, sizeof p, "%s/F", dir);
    mkdir(p, 0755);
    /* a plain file where step 3's temporary directory must go makes that write fail */
    pt_test_write(dir, "F/.checkpoint-3.tmp", "in the way");
    const char *fmt = "cd '%s' && \"$POLITUNE_BIN\" train --threads 1 --method dpo --model '%s' --data pairs.jsonl --template none --lr 1e-3 "
                      "--batch-size 2 --grad-accum 1 --max-steps 4 --save-every 1 --keep-checkpoints 5 --out F %s";
    char *err = NULL;
    int rc = pt_test_run(NULL, &err, fmt, dir, model, "");
    CHECK_MSG(rc == 1 && err && strstr(err, "writing checkpoint checkpoint-3"), "exit %d: %s", rc, err ? err : "");
    free(err);
    char *latest = pt_test_read(dir, "F/latest");
    CHECK_MSG(latest && !strcmp(latest, "checkpoint-2"), "latest: %s", latest ? latest : "(none)");
    free(latest);
    snprintf(p, sizeof p, "%s/F/checkpoint-2/adapter_model.safetensors", dir);
    pt_safetensors st = {0};
    CHECK_OK(pt_safetensors_open(&st, p));
    pt_safetensors_close(&st);
    /* and the run resumes from it once the obstacle is gone */
    snprintf(p, sizeof p, "%s/F/.checkpoint-3.tmp", dir);
    unlink(p);
    rc = pt_test_run(NULL, &err, fmt, dir, model, "--resume F");
    CHECK_MSG(rc == 0, "resume exit %d: %s", rc, err ? err : "");
    free(err);
}
