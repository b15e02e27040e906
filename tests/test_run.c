/* politune run and politune demo, end to end: the small senators recipe (select -> synth ->
 * pairs -> train -> compass -> report with stories260K as judge and base model) completes; a
 * rerun does no work and changes no file; removing the training output redoes training and
 * what follows, nothing before; --from compass redoes compass and report only; bad recipes
 * fail with one line naming file, line and key before any work; the pairs stage samples and
 * mixes with its seed, and draws held-out pairs disjoint from its sample; and the demo at a
 * tiny scale ends with a report holding three labelled points and two trajectories, and with
 * each adapter's held-out reward accuracy. */
#include <ftw.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "test.h"
#include "test_report_xml.h"
#include "util/file.h"
#include "util/sha256.h"

#define BIN "\"$POLITUNE_BIN\""

/* The tests read assets through the mirror; leave the environment as it was found. */
static bool use_mirror(void) {
    if (getenv("POLITUNE_ASSETS")) return false;
    setenv("POLITUNE_ASSETS", pt_test_shared("assets"), 1);
    return true;
}

static int count(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = s ? strstr(s, needle) : NULL; p; p = strstr(p + 1, needle)) n++;
    return n;
}

/* Every file of a tree with its content hash and modification time, one line each. */
static char snap_buf[1 << 16];
static size_t snap_len;
static int snap_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)ftw;
    if (flag != FTW_F) return 0;
    char sha[PT_SHA256_HEX] = "?";
    pt_sha256_file(path, sha);
    snap_len += (size_t)snprintf(snap_buf + snap_len, sizeof snap_buf - snap_len, "%s %s %lld.%09ld\n", path, sha, (long long)sb->st_mtim.tv_sec,
                                 sb->st_mtim.tv_nsec);
    if (snap_len >= sizeof snap_buf) snap_len = sizeof snap_buf - 1;
    return 0;
}
static char *snapshot(const char *dir) {
    snap_len = 0;
    snap_buf[0] = 0;
    nftw(dir, snap_one, 16, FTW_PHYS);
    return strdup(snap_buf);
}

/* "[k/n] TITLE ... WHAT" on stdout. */
static bool stage_line(const char *out, const char *title, const char *what) {
    char pat[128];
    snprintf(pat, sizeof pat, "] %s ... %s", title, what);
    return out && strstr(out, pat);
}

static long long mtime_of(const char *path) {
    struct stat sb;
    return stat(path, &sb) ? -1 : (long long)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
}

PT_TEST(test_run_recipe_rerun_rules) {
    bool set = use_mirror();
    const char *d = pt_test_tmpdir();
    char run[600], cmd[800];
    snprintf(run, sizeof run, "%s/senators", d);
    snprintf(cmd, sizeof cmd, BIN " run recipes/senators-small.yaml --out '%s' --quiet --threads 2", run);
    static const char *titles[] = {"select left", "synth left", "pairs left", "train left", "compass base", "compass left", "report"};

    /* 1. the whole pipeline */
    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err, "%s", cmd);
    REQUIRE(rc == 0 || !fprintf(stdout, "    run: rc %d\n%s\n%s\n", rc, out ? out : "", err ? err : ""));
    for (int i = 0; i < 7; i++) CHECK_MSG(stage_line(out, titles[i], "done in"), "first run, %s: %s", titles[i], out);
    CHECK(out && strstr(out, "[7/7] report ... done in") && strstr(out, "report: ") && strstr(out, "/report/report.html"));
    free(out);
    free(err);
    char p[800];
    snprintf(p, sizeof p, "%s/train-left/manifest.json", run);
    json_t *m = json_load_file(p, 0, NULL);
    CHECK(json_is_true(json_object_get(m, "completed")) && !strcmp(json_string_value(json_object_get(m, "stage")) ?: "", "train"));
    CHECK(!strncmp(json_string_value(json_object_get(m, "command")) ?: "", "politune train ", 15));
    CHECK(json_string_value(json_object_get(m, "version")) && json_is_object(json_object_get(m, "parameters")));
    /* the recorded hash of the training data is the pairs stage's output */
    char sha[PT_SHA256_HEX];
    snprintf(p, sizeof p, "%s/pairs-left/pairs.jsonl", run);
    CHECK_OK(pt_sha256_file(p, sha));
    CHECK(!strcmp(json_string_value(json_object_get(json_object_get(json_object_get(m, "inputs"), "data"), "sha256")) ?: "", sha));
    CHECK(json_object_get(json_object_get(m, "outputs"), "train-left/adapter_model.safetensors") != NULL);
    json_decref(m);

    /* the report: base and left as points, the training run as a trajectory */
    snprintf(p, sizeof p, "%s/report/compass.svg", run);
    char *svg = pt_test_read(NULL, p);
    xml_doc x = {0};
    CHECK(svg && !xml_check(svg, &x));
    CHECK_MSG(xml_count_class(&x, "trajectory") == 1 && xml_count_class(&x, "point-label") == 3, "%d trajectories, %d labels",
              xml_count_class(&x, "trajectory"), xml_count_class(&x, "point-label"));
    CHECK(svg && strstr(svg, "data-series=\"base\"") && strstr(svg, "data-series=\"left\"") && strstr(svg, "data-series=\"train-left\""));
    free(x.elems);
    free(svg);

    /* 2. a rerun does no work: every stage skipped, no file touched */
    char *before = snapshot(run);
    rc = pt_test_run(&out, &err, "%s", cmd);
    CHECK(rc == 0);
    for (int i = 0; i < 7; i++) CHECK_MSG(stage_line(out, titles[i], "skipped (up to date)"), "rerun, %s: %s", titles[i], out);
    char *after = snapshot(run);
    CHECK_MSG(before && after && !strcmp(before, after), "files changed by a rerun that should do nothing");
    free(after);
    free(out);
    free(err);

    /* 3. without the training output: train and what follows run again, nothing before */
    snprintf(p, sizeof p, "%s/synth-left/pairs.jsonl", run);
    long long synth_mtime = mtime_of(p);
    snprintf(p, sizeof p, "rm -rf '%s/train-left'", run);
    REQUIRE(system(p) == 0);
    rc = pt_test_run(&out, &err, "%s", cmd);
    CHECK_MSG(rc == 0, "after removing train: rc %d %s", rc, err ? err : "");
    for (int i = 0; i < 7; i++) {
        bool redo = i == 3 || i == 5 || i == 6;
        CHECK_MSG(stage_line(out, titles[i], redo ? "done in" : "skipped (up to date)"), "without train, %s: %s", titles[i], out);
    }
    snprintf(p, sizeof p, "%s/synth-left/pairs.jsonl", run);
    CHECK(mtime_of(p) == synth_mtime);
    snprintf(p, sizeof p, "%s/train-left/adapter_model.safetensors", run);
    CHECK(pt_file_exists(p));
    free(out);
    free(err);

    /* 4. --from compass: compass and report only */
    snprintf(p, sizeof p, "%s/compass-base/compass.json", run);
    char *base_before = pt_test_read(NULL, p);
    rc = pt_test_run(&out, &err, "%s --from compass", cmd);
    CHECK(rc == 0);
    for (int i = 0; i < 7; i++) CHECK_MSG(stage_line(out, titles[i], i >= 4 ? "done in" : "skipped (up to date)"), "--from compass, %s: %s", titles[i], out);
    /* redone from scratch, not appended to: still one evaluation */
    char *base_after = pt_test_read(NULL, p);
    json_t *doc = base_after ? json_loads(base_after, 0, NULL) : NULL;
    CHECK(json_array_size(json_object_get(doc, "evaluations")) == 1);
    json_decref(doc);
    free(base_before);
    free(base_after);
    free(out);
    free(err);

    /* 5. a changed parameter reruns that stage and what depends on it, and --dry-run says so */
    rc = pt_test_run(&out, &err, "%s --dry-run --set eval.templates=t1", cmd);
    CHECK(rc == 0 && stage_line(out, "select left", "skipped") && stage_line(out, "train left", "would run (parameters changed): politune train") &&
          stage_line(out, "report", "would run"));
    free(out);
    free(err);

    /* 6. training interrupted after its first checkpoint: the rerun resumes it and ends with
     * the adapter an uninterrupted run made, bit for bit */
    char adapter_sha[PT_SHA256_HEX] = "", resumed_sha[PT_SHA256_HEX] = "";
    snprintf(p, sizeof p, "%s/train-left/adapter_model.safetensors", run);
    CHECK_OK(pt_sha256_file(p, adapter_sha));
    snprintf(p, sizeof p, "%s/train-left/manifest.json", run);
    m = json_load_file(p, 0, NULL);
    REQUIRE(m);
    json_object_set_new(m, "completed", json_false());
    json_object_del(m, "outputs");
    CHECK(json_dump_file(m, p, JSON_INDENT(2)) == 0);
    json_decref(m);
    snprintf(p, sizeof p, "cd '%s/train-left' && rm -rf checkpoint-4 latest adapter_model.safetensors adapter_config.json", run);
    REQUIRE(system(p) == 0);
    rc = pt_test_run(&out, &err, "%s", cmd);
    CHECK_MSG(rc == 0 && stage_line(out, "train left", "resumed, done in") && stage_line(out, "pairs left", "skipped"), "resume: %s %s", out ? out : "",
              err ? err : "");
    snprintf(p, sizeof p, "%s/train-left/adapter_model.safetensors", run);
    CHECK_OK(pt_sha256_file(p, resumed_sha));
    CHECK(!strcmp(adapter_sha, resumed_sha));
    snprintf(p, sizeof p, "%s/train-left/manifest.json", run);
    m = json_load_file(p, 0, NULL);
    CHECK(json_is_true(json_object_get(m, "resumed")) && json_is_true(json_object_get(m, "completed")) &&
          strstr(json_string_value(json_object_get(m, "command")) ?: "", "--resume train-left"));
    json_decref(m);
    free(out);
    free(err);
    free(before);
    if (set) unsetenv("POLITUNE_ASSETS");
}

PT_TEST(test_run_bad_recipes) {
    bool set = use_mirror();
    const char *d = pt_test_tmpdir();
    static const char *head = "model: asset:models/stories260K/stories260K.gguf\n";
    static const struct {
        const char *name, *body, *expect;
    } cases[] = {
        {"unknown-key.yaml", "data:\n  pairs:\n    left: asset:data/politune/politune-left.json\n  sampel: 10\ntargets: [left]\n",
         "unknown-key.yaml:5: unknown key 'data.sampel'"},
        {"missing-file.yaml", "data:\n  pairs:\n    left: nothere.json\ntargets: [left]\n", "missing-file.yaml:4: data.pairs.left: no such file"},
        {"unconnected.yaml",
         "data:\n  pairs:\n    left: asset:data/politune/politune-left.json\ntargets:\n  - left\n  - {name: left75, mix: {left: 0.75, right: 0.25}}\n",
         "unconnected.yaml:7: target 'left75' needs pairs for 'right', and no stage makes them"},
        {"no-data.yaml", "targets: [left]\ntrain:\n  max_steps: 2\n", "no-data.yaml:2: target 'left' needs preference pairs for 'left', and no stage makes them"},
        {"train-key.yaml", "data:\n  pairs:\n    left: asset:data/politune/politune-left.json\ntargets: [left]\ntrain:\n  lora_rnk: 4\n",
         "train-key.yaml:7: unknown key 'train.lora_rnk'"},
        {"train-value.yaml", "data:\n  pairs:\n    left: asset:data/politune/politune-left.json\ntargets: [left]\ntrain:\n  lr: fast\n",
         "train-value.yaml:7: train.lr: "},
        {"missing-recipe.yaml", "data:\n  pairs:\n    left: asset:data/politune/politune-left.json\ntargets: [left]\ntrain:\n  recipe: nope.yaml\n",
         "missing-recipe.yaml:7: train.recipe: no such file"},
        {"corpus-no-judge.yaml", "data:\n  corpus:\n    path: asset:data/corpus/senators.csv\n    text_field: text\ntargets: [left]\n",
         "corpus-no-judge.yaml:3: data.judge: required with data.corpus"},
        {"eval-key.yaml", "eval:\n  mode: vibes\n", "eval-key.yaml:3: eval.mode: expects logprob or generate"},
        {"heldout-sft.yaml", "data:\n  pairs:\n    left: asset:data/politune/politune-left.json\n  heldout: 5\ntargets: [left]\ntrain:\n  method: sft\n",
         "heldout-sft.yaml:5: data.heldout: held-out pairs are evaluated with DPO's rewards"},
        {"eval-data.yaml", "data:\n  pairs:\n    left: asset:data/politune/politune-left.json\ntargets: [left]\ntrain:\n  eval_data: x.jsonl\n",
         "eval-data.yaml:7: key 'train.eval_data' is not a recipe key: it comes from data.heldout"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char body[1024], run[700];
        snprintf(body, sizeof body, "%s%s", head, cases[i].body);
        pt_test_write(d, cases[i].name, body);
        snprintf(run, sizeof run, "%s/run-%zu", d, i);
        char *out = NULL, *err = NULL;
        int rc = pt_test_run(&out, &err, "cd '%s' && " BIN " run %s --out '%s'", d, cases[i].name, run);
        CHECK_MSG(rc == 2, "%s: rc %d", cases[i].name, rc);
        CHECK_MSG(err && count(err, "\n") == 1 && !strncmp(err, "politune run: ", 14) && strstr(err, cases[i].expect), "%s: %s", cases[i].name,
                  err ? err : "");
        CHECK_MSG(!pt_dir_exists(run) && (!out || !*out), "%s: work started", cases[i].name);
        free(out);
        free(err);
    }
    /* options */
    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err, BIN " run recipes/senators-small.yaml --from training --dry-run");
    CHECK(rc == 2 && err && strstr(err, "--from: unknown stage 'training'"));
    free(out);
    free(err);
    pt_test_write(d, "pairs-only.yaml", "model: asset:models/stories260K/stories260K.gguf\ndata:\n  pairs:\n    left: asset:data/politune/politune-left.json\ntargets: [left]\n");
    rc = pt_test_run(&out, &err, "cd '%s' && " BIN " run pairs-only.yaml --from select --dry-run", d);
    CHECK(rc == 2 && err && strstr(err, "this recipe has no select stage"));
    free(out);
    free(err);
    if (set) unsetenv("POLITUNE_ASSETS");
}

PT_TEST(test_run_make_pairs_mix) {
    const char *d = pt_test_tmpdir();
    /* 20 "left" and 20 "right" pairs, recognisable by their prompts */
    char a[8192] = "[", b[8192] = "";
    for (int i = 0; i < 20; i++) {
        size_t n = strlen(a);
        snprintf(a + n, sizeof a - n, "%s{\"chosen\":[{\"role\":\"user\",\"content\":\"L%d\"},{\"role\":\"assistant\",\"content\":\"x\"}],"
                                      "\"rejected\":[{\"role\":\"user\",\"content\":\"L%d\"},{\"role\":\"assistant\",\"content\":\"y\"}]}",
                 i ? "," : "", i, i);
        n = strlen(b);
        snprintf(b + n, sizeof b - n, "{\"prompt\":\"R%d\",\"chosen\":\"c\",\"rejected\":\"r\"}\n", i);
    }
    strcat(a, "]");
    pt_test_write(d, "left.json", a);
    pt_test_write(d, "right.jsonl", b);
    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err, "cd '%s' && " BIN " run --make-pairs --out m1.jsonl --count 8 --seed 3 --weights 0.75,0.25 left.json right.jsonl", d);
    CHECK_MSG(rc == 0 && out && strstr(out, "\"pairs\":8"), "rc %d %s %s", rc, out ? out : "", err ? err : "");
    free(out);
    free(err);
    char p[700];
    snprintf(p, sizeof p, "%s/m1.jsonl", d);
    char *m1 = pt_test_read(NULL, p);
    CHECK(count(m1, "\n") == 8 && count(m1, "\"L") == 2 * 6 && count(m1, "\"R") == 2);
    /* the same seed gives the same file; another seed another sample */
    rc = pt_test_run(NULL, NULL, "cd '%s' && " BIN " run --make-pairs --out m2.jsonl --count 8 --seed 3 --weights 0.75,0.25 left.json right.jsonl", d);
    snprintf(p, sizeof p, "%s/m2.jsonl", d);
    char *m2 = pt_test_read(NULL, p);
    CHECK(rc == 0 && m1 && m2 && !strcmp(m1, m2));
    rc = pt_test_run(NULL, NULL, "cd '%s' && " BIN " run --make-pairs --out m3.jsonl --count 8 --seed 4 --weights 0.75,0.25 left.json right.jsonl", d);
    snprintf(p, sizeof p, "%s/m3.jsonl", d);
    char *m3 = pt_test_read(NULL, p);
    CHECK(rc == 0 && m1 && m3 && strcmp(m1, m3));
    /* more than the proportions allow: scaled down (20 right pairs hold up 80 at 25%), with a note */
    rc = pt_test_run(&out, &err, "cd '%s' && " BIN " run --make-pairs --out m4.jsonl --count 100 --weights 0.75,0.25 left.json right.jsonl", d);
    CHECK_MSG(rc == 0 && out && strstr(out, "\"pairs\":26") && err && strstr(err, "taking 26"), "%s %s", out ? out : "", err ? err : "");
    free(out);
    free(err);
    /* --heldout: 8 more pairs in the same proportions, none of them in the sample, which is the
     * one drawn without them; deterministic */
    for (int k = 0; k < 2; k++) {
        rc = pt_test_run(&out, &err, "cd '%s' && " BIN " run --make-pairs --out h%d.jsonl --heldout 8 --heldout-out held%d.jsonl --count 8 --seed 3 "
                                     "--weights 0.75,0.25 left.json right.jsonl", d, k, k);
        CHECK_MSG(rc == 0 && out && strstr(out, "\"heldout\":{") && strstr(out, "\"pairs\":8}"), "rc %d %s %s", rc, out ? out : "", err ? err : "");
        free(out);
        free(err);
    }
    snprintf(p, sizeof p, "%s/h0.jsonl", d);
    char *h0 = pt_test_read(NULL, p);
    snprintf(p, sizeof p, "%s/held0.jsonl", d);
    char *held0 = pt_test_read(NULL, p);
    snprintf(p, sizeof p, "%s/held1.jsonl", d);
    char *held1 = pt_test_read(NULL, p);
    CHECK_MSG(h0 && m1 && !strcmp(h0, m1), "the sample changed with --heldout");
    CHECK(held0 && held1 && !strcmp(held0, held1));
    CHECK(count(held0, "\n") == 8 && count(held0, "\"L") == 2 * 6 && count(held0, "\"R") == 2);
    for (char *line = held0 ? strtok(held0, "\n") : NULL; line; line = strtok(NULL, "\n"))
        CHECK_MSG(!strstr(m1, line), "held-out pair also in the sample: %s", line);
    free(h0), free(held0), free(held1);
    /* files too small for the held-out pairs and a sample */
    rc = pt_test_run(NULL, &err, "cd '%s' && " BIN " run --make-pairs --out h2.jsonl --heldout 40 --heldout-out held2.jsonl right.jsonl", d);
    CHECK_MSG(rc != 0 && err && strstr(err, "not enough for 40 held-out ones"), "rc %d %s", rc, err ? err : "");
    free(err);
    free(m1);
    free(m2);
    free(m3);
}

/* The demo's machinery on stories260K (the demo itself runs SmolLM2, minutes per stage). */
PT_TEST(test_demo_tiny) {
    bool set = use_mirror();
    const char *d = pt_test_tmpdir();
    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err,
                         "cd '%s' && " BIN " demo --pairs 8 --steps 4 --eval-every 2 --threads 2 --quiet --set eval.templates=t1 --set eval.open_prompts=false "
                         "--set data.heldout=6 --set model=asset:models/stories260K/stories260K.gguf --set train.template=none --set eval.mode=logprob",
                         d);
    CHECK_MSG(rc == 0, "demo: rc %d\n%s\n%s", rc, out ? out : "", err ? err : "");
    /* the closing figures: positions, reward accuracies, and where the report is */
    CHECK_MSG(out && strstr(out, "demo finished in") && strstr(out, "  base   economic ") && strstr(out, "  left   economic ") &&
                  strstr(out, "  right  economic ") && count(out, "reward accuracy") == 4 && strstr(out, "demo-run/report/report.html"),
              "%s", out ? out : "");
    /* the held-out pairs: evaluated at step 0 (the baseline: accuracy and margin 0) and after */
    CHECK_MSG(out && strstr(out, "  left   held-out: 6 unseen pairs, reward accuracy 0.00 -> ") &&
                  strstr(out, "  right  held-out: 6 unseen pairs, reward accuracy 0.00 -> ") && count(out, "margin 0.00 -> ") == 2,
              "%s", out ? out : "");
    free(out);
    free(err);
    char p[700];
    /* drawn from the same files as the training pairs, none of them among those */
    static const char *targets[2] = {"left", "right"};
    for (int t = 0; t < 2; t++) {
        snprintf(p, sizeof p, "%s/demo-run/pairs-%s/pairs.jsonl", d, targets[t]);
        char *train = pt_test_read(NULL, p);
        snprintf(p, sizeof p, "%s/demo-run/pairs-%s/heldout.jsonl", d, targets[t]);
        char *held = pt_test_read(NULL, p);
        CHECK_MSG(train && held && count(train, "\n") == 8 && count(held, "\n") == 6, "%s: pairs and held-out pairs", targets[t]);
        for (char *line = held ? strtok(held, "\n") : NULL; line && train; line = strtok(NULL, "\n"))
            CHECK_MSG(!strstr(train, line), "%s: held-out pair also trained on: %.80s", targets[t], line);
        free(train), free(held);
        /* the training stage reads them, and its manifest hashes them */
        snprintf(p, sizeof p, "%s/demo-run/train-%s/manifest.json", d, targets[t]);
        json_t *man = json_load_file(p, 0, NULL);
        json_t *in = json_object_get(json_object_get(man, "inputs"), "eval_data");
        CHECK_MSG(in && json_string_value(json_object_get(in, "sha256")), "%s: no eval_data input in the manifest", targets[t]);
        const char *command = json_string_value(json_object_get(man, "command"));
        char want[64];
        snprintf(want, sizeof want, "--eval-data pairs-%s/heldout.jsonl", targets[t]);
        CHECK_MSG(command && strstr(command, want), "%s: %s", targets[t], command ? command : "(no command)");
        json_decref(man);
        snprintf(p, sizeof p, "%s/demo-run/train-%s/eval_metrics.jsonl", d, targets[t]);
        char *rows = pt_test_read(NULL, p);
        CHECK_MSG(rows && count(rows, "\n") == 3 && strstr(rows, "{\"step\":0,") && strstr(rows, "{\"step\":4,"), "%s: %s", targets[t],
                  rows ? rows : "(none)");
        free(rows);
    }
    snprintf(p, sizeof p, "%s/demo-run/report/report.html", d);
    char *html = pt_test_read(NULL, p);
    const char *s0 = html ? strstr(html, "<svg") : NULL, *s1 = html ? strstr(html, "</svg>") : NULL;
    REQUIRE(s0 && s1);
    char *svg = strndup(s0, (size_t)(s1 - s0) + 6);
    xml_doc x = {0};
    CHECK(svg && !xml_check(svg, &x));
    /* base, left and right: one labelled point each; train-left, train-right: trajectories */
    CHECK_MSG(xml_count_class(&x, "trajectory") == 2, "%d trajectories", xml_count_class(&x, "trajectory"));
    const char *labels[] = {"base", "left", "right"};
    for (int i = 0; i < 3; i++) {
        int points = 0;
        for (int k = 0; k < x.n_elems; k++) {
            const char *c = xml_attr(&x.elems[k], "class"), *sr = xml_attr(&x.elems[k], "data-series");
            points += c && sr && !strcmp(c, "point") && !strcmp(sr, labels[i]);
        }
        CHECK_MSG(points == 1, "%s: %d points", labels[i], points);
    }
    CHECK(xml_count_class(&x, "point-label") == 5);
    free(x.elems);
    free(svg);
    free(html);
    /* the recipe it ran is the one --print-recipe shows */
    rc = pt_test_run(&out, NULL, BIN " demo --print-recipe");
    snprintf(p, sizeof p, "%s/demo-run/recipe.yaml", d);
    char *recipe = pt_test_read(NULL, p);
    CHECK(rc == 0 && out && recipe && !strcmp(out, recipe) && strstr(out, "asset:data/politune/politune-left.json"));
    free(out);
    free(recipe);
    if (set) unsetenv("POLITUNE_ASSETS");
}

/* The demo's recipe gives generate mode its own phrasings (eval.generate_templates: t1, to fit
 * the ten minutes) while logprob mode keeps t1 and t2; a bad selection is refused before any
 * work, naming the key. */
PT_TEST(test_demo_generate_templates) {
    bool set = use_mirror();
    const char *d = pt_test_tmpdir();
    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err,
                         "cd '%s' && " BIN " demo --print-recipe > demo.yaml && " BIN
                         " run demo.yaml --dry-run --set model=asset:models/stories260K/stories260K.gguf --set train.template=none",
                         d);
    CHECK_MSG(rc == 0, "dry run: rc %d\n%s\n%s", rc, out ? out : "", err ? err : "");
    int stages[2] = {0, 0}; /* logprob, generate */
    for (char *line = out ? strtok(out, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        if (!strstr(line, "politune compass")) continue;
        const bool generate = strstr(line, "--mode=generate") != NULL;
        stages[generate]++;
        const char *last = NULL;
        for (const char *p = strstr(line, "--templates"); p; p = strstr(p + 1, "--templates")) last = p;
        CHECK_MSG(last && !strncmp(last, generate ? "--templates=t1 " : "--templates t1,t2 ", generate ? 15 : 18), "%s", line);
    }
    CHECK_MSG(stages[0] == 3 && stages[1] == 3, "%d logprob and %d generate compass stages", stages[0], stages[1]);
    free(out);
    free(err);
    /* eval.option_scoring reaches the evaluations during training too, so the curve of
     * position against steps is measured as the end points are */
    rc = pt_test_run(&out, &err,
                     "cd '%s' && " BIN " run demo.yaml --dry-run --set model=asset:models/stories260K/stories260K.gguf --set train.template=none "
                     "--set eval.every=4 --set eval.option_scoring=reply",
                     d);
    CHECK_MSG(rc == 0, "dry run: rc %d\n%s", rc, err ? err : "");
    int trains = 0;
    for (char *line = out ? strtok(out, "\n") : NULL; line; line = strtok(NULL, "\n"))
        if (strstr(line, "politune train")) {
            trains++;
            CHECK_MSG(strstr(line, "--eval-every 4") && strstr(line, "--eval-option-scoring reply"), "%s", line);
        }
    CHECK_MSG(trains == 2, "%d train stages", trains);
    free(out);
    free(err);
    rc = pt_test_run(&out, &err, "cd '%s' && " BIN " run demo.yaml --dry-run --set model=asset:models/stories260K/stories260K.gguf --set eval.generate_templates=t9",
                     d);
    CHECK_MSG(rc != 0 && err && strstr(err, "eval.generate_templates") && strstr(err, "t9"), "rc %d: %s", rc, err ? err : "");
    free(out);
    free(err);
    if (set) unsetenv("POLITUNE_ASSETS");
}

/* `launcher` puts a command in front of the training and logprob compass stages (mpirun,
 * srun): here a shell script that logs its arguments and then runs them, so the test sees
 * which stages went through it without MPI. `device` reaches every stage that runs a model.
 * Bad values are refused before anything runs, naming the key. */
PT_TEST(test_run_launcher_and_device) {
    bool set = use_mirror();
    const char *d = pt_test_tmpdir();
    pt_test_write(d, "launch.sh", "#!/bin/sh\necho \"$*\" >> \"$(dirname \"$0\")/launched.txt\"\nexec \"$@\"\n");
    char p[700];
    snprintf(p, sizeof p, "%s/launch.sh", d);
    chmod(p, 0755);
    char recipe[2048];
    snprintf(recipe, sizeof recipe,
             "model: asset:models/stories260K/stories260K.gguf\n"
             "data: {pairs: {left: asset:data/politune/politune-left.json}, sample: 8, seed: 0}\n"
             "targets: [left]\n"
             "train: {method: dpo, template: none, lora_rank: 4, lora_alpha: 8, max_steps: 2, batch_size: 4, max_seq_len: 64}\n"
             "eval: {mode: [logprob, generate], templates: t1-fwd, open_prompts: false, max_new_tokens: 4}\n"
             "report: false\n"
             "launcher: %s/launch.sh\n"
             "device: cpu\n",
             d);
    pt_test_write(d, "r.yaml", recipe);
    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err, "cd '%s' && " BIN " run r.yaml --out run --quiet --threads 1", d);
    CHECK_MSG(rc == 0, "rc %d\n%s\n%s", rc, out ? out : "", err ? err : "");
    free(out);
    free(err);
    char *log = pt_test_read(d, "launched.txt");
    /* train and the two logprob compasses went through the launcher, with this binary's
     * absolute path after it; the pairs stage and the generate-mode compasses did not */
    CHECK_MSG(log && count(log, "\n") == 3 && count(log, "/politune train ") == 1 && count(log, "/politune compass ") == 2 &&
                  count(log, "--mode=logprob") == 2 && !strstr(log, "--mode=generate") && !strstr(log, "make-pairs") &&
                  count(log, "--device=cpu") == 3,
              "%s", log ? log : "(no launched.txt)");
    free(log);
    /* the manifest records the launched command; a generate compass got --device but no launcher */
    char *m = pt_test_read(d, "run/train-left/manifest.json");
    CHECK_MSG(m && strstr(m, "launch.sh") && strstr(m, "--device=cpu"), "%s", m ? m : "");
    free(m);
    m = pt_test_read(d, "run/compass-left-generate/manifest.json");
    CHECK_MSG(m && !strstr(m, "launch.sh") && strstr(m, "--device=cpu"), "%s", m ? m : "");
    free(m);
    /* a rerun without the launcher is up to date: how a stage runs is not what it makes */
    rc = pt_test_run(&out, &err, "cd '%s' && " BIN " run r.yaml --out run --quiet --threads 1 --set launcher=env", d);
    CHECK_MSG(rc == 0 && out && count(out, "skipped (up to date)") == 6, "rc %d\n%s\n%s", rc, out ? out : "", err ? err : "");
    free(out);
    free(err);

    /* bad input, refused before any stage runs */
    static const char *bad[][2] = {{"launcher=no-such-launcher-xyz -np 2", "'no-such-launcher-xyz' is not an executable file on PATH"},
                                   {"device=gpu", "expects one of cpu|cuda|auto, got 'gpu'"}};
    for (int i = 0; i < 2; i++) {
        rc = pt_test_run(&out, &err, "cd '%s' && " BIN " run r.yaml --out bad%d --quiet --set '%s'", d, i, bad[i][0]);
        CHECK_MSG(rc != 0 && err && strstr(err, bad[i][1]) && strstr(err, "r.yaml") && count(err, "\n") == 1, "%s: rc %d %s", bad[i][0], rc, err ? err : "");
        snprintf(p, sizeof p, "%s/bad%d/pairs-left", d, i);
        CHECK_MSG(!pt_file_exists(p), "%s: a stage ran", bad[i][0]);
        free(out);
        free(err);
    }
    if (set) unsetenv("POLITUNE_ASSETS");
}
