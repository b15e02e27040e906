/* `politune train --eval-data FILE`: held-out DPO evaluation on stories260K. Rows at step 0,
 * every eval_every steps and at the end; step 0 is the baseline (policy = reference: rewards,
 * margins and accuracy 0, loss log 2); accuracy rises on held-out pairs of the training
 * pairs' kind; the last row equals the metrics computed here from the final adapter with
 * pt_tmodel_forward; the adapter is bitwise the one a run without --eval-data makes (with
 * dropout on and a held-out pair longer than any training micro-batch); a resumed run adds no
 * duplicate rows and fills in a missing one; bad eval data fail with the file and line. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "model/adapter.h"
#include "model/model.h"
#include "test.h"
#include "train/batch.h"
#include "train/data.h"
#include "train/loss.h"
#include "train/tmodel.h"
#include "util/file.h"

#define STORIES "assets/models/stories260K/stories260K.gguf"

/* Held-out pairs of the same kind, never trained on; the last is longer than any training
 * micro-batch, so the training model must make room for it. */
static const char *held_text =
    "{\"prompt\": \"Tom and his friend went outside to play. They found a\", \"chosen\": \" red ball.\", \"rejected\": \" stick.\"}\n"
    "{\"prompt\": \"Mia was very happy. Her mom gave her a\", \"chosen\": \" red ball.\", \"rejected\": \" hug.\"}\n"
    "{\"prompt\": \"The cat ran into the garden and saw\", \"chosen\": \" a red ball in the garden.\", \"rejected\": \" a bird.\"}\n"
    "{\"prompt\": \"Once upon a time, in a small house near the big forest, there lived a little boy named Sam. Sam liked to run and "
    "jump and play all day with his friends. One morning his mom said he could choose one toy at the shop, and Sam picked a\", "
    "\"chosen\": \" red ball.\", \"rejected\": \" dog that was very big and brown and liked to sleep in the sun all day long.\"}\n";

/* The rows of dir/OUT/eval_metrics.jsonl. */
static json_t *eval_rows(const char *dir, const char *out) {
    char name[256];
    snprintf(name, sizeof name, "%s/eval_metrics.jsonl", out);
    char *text = pt_test_read(dir, name);
    json_t *rows = json_array();
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        json_t *r = json_loads(line, 0, NULL);
        if (r) json_array_append_new(rows, r);
        else pt_test_fail(__FILE__, __LINE__, "bad eval row: %s", line);
    }
    free(text);
    return rows;
}

static double num(json_t *row, const char *key) { return json_number_value(json_object_get(row, key)); }

/* "0,10,20" from the rows' steps. */
static void steps_of(json_t *rows, char *buf, size_t n) {
    buf[0] = 0;
    for (size_t i = 0; i < json_array_size(rows); i++) {
        size_t k = strlen(buf);
        snprintf(buf + k, n - k, "%s%ld", i ? "," : "", (long)num(json_array_get(rows, i), "step"));
    }
}

static bool same_file(const char *dir, const char *a, const char *b) {
    char pa[700], pb[700];
    snprintf(pa, sizeof pa, "%s/%s", dir, a);
    snprintf(pb, sizeof pb, "%s/%s", dir, b);
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    bool same = !pt_file_read_all(pa, &x, &nx) && !pt_file_read_all(pb, &y, &ny) && nx == ny && !memcmp(x, y, nx);
    free(x), free(y);
    return same;
}

#define TRAIN                                                                                                                  \
    "cd '%s' && POLITUNE_ASSETS='%s' \"$POLITUNE_BIN\" train --threads 1 --method dpo --model '%s' --data pairs.jsonl "     \
    "--template none --lora-rank 8 --lora-alpha 16 --lora-targets all --lora-dropout 0.1 --lr 3e-3 --schedule constant "  \
    "--warmup-steps 0 --batch-size 2 --grad-accum 1 --seed 5 "

static int train(const char *dir, const char *args, char **out, char **err) {
    char fmt[1024];
    snprintf(fmt, sizeof fmt, "%s%s", TRAIN, args); /* args hold no % */
    return pt_test_run(out, err, fmt, dir, pt_test_shared("assets"), pt_test_shared(STORIES));
}

/* The held-out metrics of the adapter in dir/OUT computed here, one pair per pass. */
static bool direct_metrics(const char *dir, const char *out, double beta, double m[7]) {
    pt_model *model = NULL;
    pt_adapter *a = NULL;
    pt_tmodel *tm = NULL;
    pt_dataset d = {0};
    pt_tbatch b = {0};
    char path[700];
    bool ok = false;
    if (pt_model_load(&model, pt_test_shared(STORIES))) goto done;
    snprintf(path, sizeof path, "%s/%s", dir, out);
    if (pt_adapter_load(&a, path, model)) goto done;
    pt_data_opts o = {.pairs = true, .tok = model->tok, .tmpl = PT_CHAT_NONE, .vocab = model->cfg.vocab_size, .max_seq_len = 1024};
    o.eos = pt_tokenizer_eos(model->tok);
    if (o.eos < 0) o.eos = model->cfg.eos_id;
    snprintf(path, sizeof path, "%s/held.jsonl", dir);
    if (pt_dataset_load(&d, path, &o)) goto done;
    int max_tok = 0, max_len = 0;
    for (int i = 0; i < d.n; i++) {
        const pt_example *e = &d.ex[i];
        int tok = 2 * e->np + e->nr[0] + e->nr[1];
        if (tok > max_tok) max_tok = tok;
        for (int j = 0; j < 2; j++)
            if (e->np + e->nr[j] > max_len) max_len = e->np + e->nr[j];
    }
    pt_tmodel_shape shape = {2, max_tok, max_len, false, 0, true, NULL}; /* float64, as --precision auto picks for stories260K */
    if (pt_tmodel_new(&tm, model, a, NULL, &shape) || pt_tbatch_init(&b, 2, max_tok)) goto done;
    double *logp = malloc(sizeof(double) * max_tok);
    for (int k = 0; k < 7; k++) m[k] = 0;
    for (int i = 0; logp && i < d.n; i++) {
        const pt_example *e = &d.ex[i];
        pt_tbatch_clear(&b);
        for (int j = 0; j < 2; j++) pt_tbatch_add(&b, e->prompt, e->np, e->resp[j], e->nr[j]);
        double seq[2][2] = {{0, 0}, {0, 0}}; /* [reference, policy][chosen, rejected] */
        for (int lora = 0; lora < 2; lora++) {
            if (pt_tmodel_forward(tm, &b, lora, false, 0, logp)) goto done_logp;
            for (int r = 0; r < b.n_loss; r++) seq[lora][b.loss_seq[r]] += logp[r];
        }
        double d1, d2;
        const double wc = beta * (seq[1][0] - seq[0][0]), wr = beta * (seq[1][1] - seq[0][1]);
        m[0] += pt_dpo_loss(PT_DPO_SIGMOID, beta, 0, seq[1][0], seq[1][1], seq[0][0], seq[0][1], &d1, &d2) / d.n;
        m[1] += wc / d.n, m[2] += wr / d.n, m[3] += (wc > wr) / (double)d.n, m[4] += (wc - wr) / d.n;
        m[5] += seq[1][0] / d.n, m[6] += seq[1][1] / d.n;
    }
    ok = logp != NULL;
done_logp:
    free(logp);
done:
    pt_tbatch_free(&b);
    pt_tmodel_free(tm);
    pt_dataset_free(&d);
    pt_adapter_free(a);
    pt_model_free(model);
    return ok;
}

static const char *metric_names[7] = {"eval_loss", "eval_rewards/chosen", "eval_rewards/rejected", "eval_rewards/accuracies",
                                      "eval_rewards/margins", "eval_logps/chosen", "eval_logps/rejected"};

PT_TEST(test_train_heldout_metrics) {
    const char *dir = pt_test_tmpdir();
    pt_test_write(dir, "pairs.jsonl", pt_test_stories_pairs);
    pt_test_write(dir, "held.jsonl", held_text);
    char *out = NULL, *err = NULL;
    /* the compass during training as well (one template, no open prompts): both evaluations */
    const char *every = "--max-steps 30 --eval-every 10 --eval-templates t1-fwd --eval-max-new-tokens 0 ";
    char args[512];
    snprintf(args, sizeof args, "%s--out A", every);
    int rc = train(dir, args, NULL, &err);
    CHECK_MSG(rc == 0, "plain run: rc %d: %s", rc, err ? err : "");
    free(err), err = NULL;
    snprintf(args, sizeof args, "%s--eval-data held.jsonl --out B", every);
    rc = train(dir, args, &out, &err);
    CHECK_MSG(rc == 0, "run with --eval-data: rc %d: %s", rc, err ? err : "");
    REQUIRE(rc == 0);
    /* one line per evaluation on stderr, and the figures in the one-line report */
    CHECK_MSG(err && strstr(err, "eval: step 0, 4 pairs: accuracy 0.00, margin 0.00") && strstr(err, "eval: step 30, 4 pairs: accuracy "),
              "%s", err ? err : "");
    json_t *summary = out ? json_loads(out, 0, NULL) : NULL;
    json_t *ev = json_object_get(summary, "eval");
    CHECK_MSG(json_integer_value(json_object_get(ev, "pairs")) == 4 && json_integer_value(json_object_get(json_object_get(ev, "last"), "step")) == 30,
              "summary: %s", out ? out : "");
    json_decref(summary);
    free(out), free(err);

    /* evaluating changes nothing of training */
    CHECK_MSG(same_file(dir, "A/adapter_model.safetensors", "B/adapter_model.safetensors"), "the adapter differs with --eval-data");

    json_t *rows = eval_rows(dir, "B");
    char steps[128];
    steps_of(rows, steps, sizeof steps);
    CHECK_MSG(!strcmp(steps, "0,10,20,30"), "evaluated at steps %s", steps);
    REQUIRE(json_array_size(rows) == 4);
    json_t *first = json_array_get(rows, 0), *last = json_array_get(rows, 3);
    /* step 0: the adapter's B is zero, the policy is the reference */
    CHECK(num(first, "eval_rewards/chosen") == 0 && num(first, "eval_rewards/rejected") == 0);
    CHECK(num(first, "eval_rewards/accuracies") == 0 && num(first, "eval_rewards/margins") == 0);
    CHECK_NEAR(num(first, "eval_loss"), log(2.0), 1e-15);
    CHECK(num(first, "eval_pairs") == 4 && num(last, "eval_pairs") == 4);
    /* learned: the red ball is preferred on pairs never trained on */
    CHECK_MSG(num(last, "eval_rewards/accuracies") >= 0.75 && num(last, "eval_rewards/margins") > 1.0 &&
                  num(last, "eval_loss") < num(first, "eval_loss"),
              "held-out accuracy %.2f, margin %.3f, loss %.4f", num(last, "eval_rewards/accuracies"), num(last, "eval_rewards/margins"),
              num(last, "eval_loss"));
    /* the last row is what the final adapter gives, computed independently */
    double m[7];
    CHECK(direct_metrics(dir, "B", 0.1, m));
    for (int k = 0; k < 7; k++)
        CHECK_NEAR(num(last, metric_names[k]), m[k], 1e-9 * fmax(1.0, fabs(m[k])));
    /* the CSV has the same rows */
    char *csv = pt_test_read(dir, "B/eval_metrics.csv");
    const char *head = "step,eval_loss,eval_rewards/chosen,eval_rewards/rejected,eval_rewards/accuracies,eval_rewards/margins,"
                       "eval_logps/chosen,eval_logps/rejected,eval_pairs\n0,";
    CHECK_MSG(csv && !strncmp(csv, head, strlen(head)), "%s", csv ? csv : "(no csv)");
    int lines = 0;
    for (const char *p = csv; p && *p; p++) lines += *p == '\n';
    CHECK(lines == 5);
    free(csv);
    json_decref(rows);
}

PT_TEST(test_train_heldout_resume) {
    const char *dir = pt_test_tmpdir();
    pt_test_write(dir, "pairs.jsonl", pt_test_stories_pairs);
    pt_test_write(dir, "held.jsonl", held_text);
    char *err = NULL;
    /* eval_every 0: held-out at step 0 and at the end only */
    int rc = train(dir, "--max-steps 4 --save-every 2 --keep-checkpoints 5 --eval-data held.jsonl --out R", NULL, &err);
    CHECK_MSG(rc == 0, "rc %d: %s", rc, err ? err : "");
    free(err), err = NULL;
    char *before = pt_test_read(dir, "R/eval_metrics.jsonl"), p[700];
    char *adapter = NULL, *adapter2 = NULL;
    size_t na = 0, na2 = 0;
    snprintf(p, sizeof p, "%s/R/adapter_model.safetensors", dir);
    CHECK_OK(pt_file_read_all(p, &adapter, &na));
    json_t *rows = eval_rows(dir, "R");
    char steps[128];
    steps_of(rows, steps, sizeof steps);
    CHECK_MSG(!strcmp(steps, "0,4"), "evaluated at steps %s", steps);
    json_decref(rows);
    /* resumed from step 2: steps 3 and 4 again, the step-4 evaluation already made */
    rc = train(dir, "--max-steps 4 --save-every 2 --keep-checkpoints 5 --eval-data held.jsonl --out R --resume R/checkpoint-2", NULL, &err);
    CHECK_MSG(rc == 0 && err && strstr(err, "eval: step 4 already in"), "rc %d: %s", rc, err ? err : "");
    free(err), err = NULL;
    char *after = pt_test_read(dir, "R/eval_metrics.jsonl");
    CHECK_MSG(before && after && !strcmp(before, after), "rows changed by the resume:\n%s\n--\n%s", before ? before : "", after ? after : "");
    CHECK_OK(pt_file_read_all(p, &adapter2, &na2));
    CHECK_MSG(adapter && adapter2 && na == na2 && !memcmp(adapter, adapter2, na), "the resumed run's adapter differs");
    free(before), free(after), free(adapter), free(adapter2);
    /* extended to 6 steps: one more row */
    rc = train(dir, "--max-steps 6 --save-every 2 --keep-checkpoints 5 --eval-data held.jsonl --out R --resume R", NULL, &err);
    CHECK_MSG(rc == 0, "rc %d: %s", rc, err ? err : "");
    free(err), err = NULL;
    rows = eval_rows(dir, "R");
    steps_of(rows, steps, sizeof steps);
    CHECK_MSG(!strcmp(steps, "0,4,6"), "after extending, steps %s", steps);
    json_decref(rows);
    char *csv = pt_test_read(dir, "R/eval_metrics.csv");
    int lines = 0;
    for (const char *p = csv; p && *p; p++) lines += *p == '\n';
    CHECK_MSG(lines == 4, "eval_metrics.csv:\n%s", csv ? csv : "");
    free(csv);
    /* a run trained without held-out pairs, resumed with them at its end: evaluated there */
    rc = train(dir, "--max-steps 2 --out P", NULL, NULL);
    CHECK(rc == 0);
    rc = train(dir, "--max-steps 2 --eval-data held.jsonl --out P --resume P", NULL, &err);
    CHECK_MSG(rc == 0 && err && strstr(err, "eval: step 2, 4 pairs"), "rc %d: %s", rc, err ? err : "");
    free(err);
    rows = eval_rows(dir, "P");
    steps_of(rows, steps, sizeof steps);
    CHECK_MSG(!strcmp(steps, "2"), "steps %s", steps);
    json_decref(rows);
}

static void expect_fail(const char *dir, const char *args, const char *needle) {
    char *err = NULL;
    int rc = train(dir, args, NULL, &err);
    CHECK_MSG(rc != 0, "train %s succeeded", args);
    CHECK_MSG(err && strstr(err, needle), "train %s: message lacks '%s': %s", args, needle, err ? err : "");
    free(err);
}

PT_TEST(test_train_heldout_bad_data) {
    const char *dir = pt_test_tmpdir();
    pt_test_write(dir, "pairs.jsonl", pt_test_stories_pairs);
    pt_test_write(dir, "bad_eval.jsonl",
               "{\"prompt\": \"One day\", \"chosen\": \" a ball.\", \"rejected\": \" a tree.\"}\n"
               "{\"prompt\": \"Once\", \"chosen\": \" a ball.\"}\n");
    pt_test_write(dir, "badjson.jsonl", "{\"prompt\": \"One day\", \"chosen\": \" a ball.\", \"rejected\": \" a tree.\"}\n\n{\"prompt\": \n");
    expect_fail(dir, "--max-steps 1 --eval-data bad_eval.jsonl --out X", "bad_eval.jsonl:2:");
    expect_fail(dir, "--max-steps 1 --eval-data badjson.jsonl --out X", "badjson.jsonl:3:");
    expect_fail(dir, "--max-steps 1 --eval-data nothere.jsonl --out X", "nothere.jsonl");
    char *p = NULL;
    /* nothing was trained */
    CHECK(!(p = pt_test_read(dir, "X/adapter_model.safetensors")));
    free(p);
    expect_fail(dir, "--max-steps 1 --method sft --eval-data pairs.jsonl --out X", "eval_data: held-out evaluation ranks preference pairs");
    /* --skip-bad skips bad held-out records as it does training ones */
    char *err = NULL;
    CHECK(train(dir, "--max-steps 1 --skip-bad --eval-data bad_eval.jsonl --out S", NULL, &err) == 0);
    CHECK_MSG(err && strstr(err, "eval data: 1 malformed records skipped") && strstr(err, "eval: step 1, 1 pairs"), "%s", err ? err : "");
    free(err);
}
