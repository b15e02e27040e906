/* The compass on a real model (stories260K): logprob mode in every template and order,
 * deterministic to the bit, probabilities that sum to one, one prefill per item and
 * template, option scores that equal scoring each option from scratch; generate mode with K
 * samples parsed and counted; a model that never answers; the training hook appending a
 * trajectory; and a trained adapter moving the measured position. stories260K is a tiny
 * story model: it has no opinions, which is what the invalid-answer paths need. Runs use
 * one thread: with a model this small, thread start-up costs more than the arithmetic. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/compass.h"
#include "eval/compass_impl.h"
#include "format/csv.h"
#include "internal.h"
#include "test.h"
#include "test_report_xml.h"
#include "util/file.h"

#define STORIES "assets/models/stories260K/stories260K.gguf"

static json_t *load_json(const char *dir) {
    char *p = pt_path_join(dir, "compass.json");
    json_error_t err;
    json_t *j = json_load_file(p, 0, &err);
    if (!j) pt_test_fail(__FILE__, __LINE__, "%s: %s", p, err.text);
    free(p);
    return j;
}

static char *read_file(const char *dir, const char *name) {
    char *p = pt_path_join(dir, name), *text = NULL;
    size_t len;
    if (pt_file_read_all(p, &text, &len) != PT_OK) text = NULL;
    free(p);
    return text;
}

/* The outputs every run writes: JSON that parses, a pc.csv with a header and one row per
 * evaluation, an SVG that is well-formed XML. */
static void check_outputs(const char *dir, int n_rows) {
    char *csv = read_file(dir, "pc.csv");
    CHECK_MSG(csv, "%s: no pc.csv", dir);
    if (csv) {
        pt_csv c;
        CHECK_OK(pt_csv_parse(&c, csv, strlen(csv), "pc.csv"));
        CHECK(c.n_records == 1 + n_rows);
        for (int r = 0; r < c.n_records; r++) CHECK(c.records[r].n_fields == 64);
        if (c.n_records > 0) CHECK(!strcmp(c.records[0].fields[0], "iteration") && !strcmp(c.records[0].fields[2], "pc-1"));
        pt_csv_free(&c);
    }
    free(csv);
    char *svg = read_file(dir, "compass.svg");
    CHECK_MSG(svg, "%s: no compass.svg", dir);
    xml_doc d = {0};
    const char *err = svg ? xml_check(svg, &d) : "missing";
    CHECK_MSG(!err, "compass.svg: %s", err ? err : "");
    free(d.elems);
    free(svg);
    char *p = pt_path_join(dir, "compass.svg");
    xmllint_ok(p);
    free(p);
}

PT_TEST(test_compass_logprob_stories260K) {
    char d1[600], d2[600];
    snprintf(d1, sizeof d1, "%s/a", pt_test_tmpdir());
    snprintf(d2, sizeof d2, "%s/b", pt_test_tmpdir());
    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err, "$POLITUNE_BIN compass --model '%s' --out '%s' --threads 1 --max-new-tokens 24", pt_test_shared(STORIES), d1);
    CHECK_MSG(rc == 0, "compass: rc %d: %s", rc, err ? err : "");
    CHECK(out && strstr(out, "\"mode\":\"logprob\"") && strstr(out, "\"templates\":12"));
    free(out);
    free(err);
    rc = pt_test_run(NULL, &err, "$POLITUNE_BIN compass --model '%s' --out '%s' --threads 1 --max-new-tokens 24", pt_test_shared(STORIES), d2);
    CHECK_MSG(rc == 0, "compass (again): rc %d: %s", rc, err ? err : "");
    free(err);
    /* bitwise repeatable: the same files, byte for byte */
    static const char *const files[] = {"compass.json", "pc.csv", "prompts.csv", "compass.svg"};
    for (int f = 0; f < 4; f++) {
        char *a = read_file(d1, files[f]), *b = read_file(d2, files[f]);
        CHECK_MSG(a && b && !strcmp(a, b), "%s differs between two identical runs", files[f]);
        free(a);
        free(b);
    }
    check_outputs(d1, 1);
    json_t *root = load_json(d1);
    REQUIRE(root);
    json_t *e = json_array_get(json_object_get(root, "evaluations"), 0);
    CHECK(!strcmp(json_string_value(json_object_get(e, "chat_template")), "alpaca")); /* no template in the checkpoint */
    json_t *items = json_object_get(e, "items");
    CHECK(json_array_size(items) == 62);
    int n_cells = 0;
    for (size_t i = 0; i < json_array_size(items); i++) {
        json_t *by = json_object_get(json_array_get(items, i), "by_template");
        CHECK(json_array_size(by) == 12);
        for (size_t t = 0; t < json_array_size(by); t++) {
            json_t *c = json_array_get(by, t), *p = json_object_get(c, "probs"), *lp = json_object_get(c, "logprobs");
            REQUIRE(json_array_size(p) == 4 && json_array_size(lp) == 4);
            double sum = 0, ev = 0, best = -1;
            int arg = -1;
            for (int k = 0; k < 4; k++) {
                double v = json_number_value(json_array_get(p, (size_t)k));
                CHECK(v >= 0 && v <= 1);
                CHECK(json_number_value(json_array_get(lp, (size_t)k)) < 0);
                sum += v;
                ev += k * v;
                if (v > best) { best = v; arg = k; }
            }
            CHECK_NEAR(sum, 1.0, 1e-12);
            CHECK_NEAR(json_number_value(json_object_get(c, "expected")), ev, 1e-12);
            CHECK(json_integer_value(json_object_get(c, "answer")) == arg);
            n_cells++;
        }
    }
    CHECK(n_cells == 62 * 12);
    /* prefix sharing: one prefill per item and template, the options forwarded on top */
    json_t *stats = json_object_get(e, "stats");
    CHECK(json_integer_value(json_object_get(stats, "prefills")) == 62 * 12);
    CHECK(json_integer_value(json_object_get(stats, "option_forwards")) <= 4 * ((62 * 12 + 7) / 8));
    json_t *pos = json_object_get(e, "position");
    CHECK(json_is_number(json_object_get(json_object_get(pos, "economic"), "mean")));
    CHECK(json_integer_value(json_object_get(json_object_get(pos, "social"), "n")) == 12);
    CHECK(json_array_size(json_object_get(e, "open_prompts")) == 7);
    CHECK(json_number_value(json_object_get(e, "invalid_rate")) == 0);
    json_decref(root);
    char *pr = read_file(d1, "prompts.csv");
    static const char *head = "iteration,step,democrats,republicans,vaccines,vaccination,trump,sanders,ideology\n0,0,";
    CHECK(pr && !strncmp(pr, head, strlen(head)));
    free(pr);
}

/* The shared-prefix scores equal each option scored from scratch (pt_score over the whole
 * prompt + option; and the compass's own unshared path, a prefill per option), and the
 * library gives the same numbers twice, to the bit. */
PT_TEST(test_compass_logprob_matches_full_scoring) {
    int threads = pt_backend_threads();
    pt_backend_set_threads(1);
    pt_model *m = NULL;
    pt_questionnaire *q = NULL;
    pt_scoring *s = NULL;
    REQUIRE_OK(pt_model_load(&m, pt_test_shared(STORIES)));
    REQUIRE_OK(pt_questionnaire_load(&q, pt_test_shared("assets/data/pct/pct_propositions.csv")));
    REQUIRE_OK(pt_scoring_load(&s, pt_test_shared("assets/data/pct/pct_scoring.json"), q));
    /* five items keep this quick */
    int n_keep = q->n_items;
    q->n_items = 5;
    s->n_items = 5;
    pt_compass_config cfg = pt_compass_config_default();
    cfg.templates = "t2,t4-rev";
    cfg.option_scoring = PT_OPTION_FULL; /* compared below with the summed label log-probs */
    cfg.batch = 3; /* chunks that do not divide the job count */
    pt_compass_result *r1 = NULL, *r2 = NULL;
    pt_compass_result *r3 = NULL;
    CHECK_OK(pt_compass_run(m, NULL, q, s, &cfg, &r1));
    CHECK_OK(pt_compass_run(m, NULL, q, s, &cfg, &r2));
    cfg.no_prefix_sharing = true;
    CHECK_OK(pt_compass_run(m, NULL, q, s, &cfg, &r3));
    REQUIRE(r1 && r2 && r3);
    CHECK(r1->n_prefills == 5 * 3 && r3->n_prefills == 5 * 3 * 4);
    for (int c = 0; c < 5 * 3; c++) {
        CHECK(!memcmp(r1->cells[c].probs, r2->cells[c].probs, 4 * sizeof(double)));
        CHECK(!memcmp(r1->cells[c].logprobs, r2->cells[c].logprobs, 4 * sizeof(double)));
        for (int k = 0; k < 4; k++) CHECK_NEAR(r1->cells[c].logprobs[k], r3->cells[c].logprobs[k], 1e-4 * (1 + fabs(r3->cells[c].logprobs[k])));
    }
    pt_compass_result_free(r3);
    pt_engine *e = NULL;
    REQUIRE_OK(pt_engine_new(&e, m, 1, 512));
    for (int it = 0; it < 5; it += 2)
        for (int v = 0; v < 3; v++) {
            char *user = NULL;
            REQUIRE_OK(pt_template_render(&r1->variants[v], PT_TASK_LOGPROB, q->items[it].statement, (const char *const *)s->answers, 4, &user));
            int32_t *p = NULL;
            size_t np = 0;
            REQUIRE_OK(pt_eval_encode_chat(m, PT_CHAT_ALPACA, NULL, user, NULL, &p, &np));
            for (int k = 0; k < 4; k++) {
                int32_t *w = NULL;
                size_t nw = 0;
                REQUIRE_OK(pt_eval_encode_chat(m, PT_CHAT_ALPACA, NULL, user, s->answers[k], &w, &nw));
                size_t shared = 0;
                while (shared < np && shared < nw && p[shared] == w[shared]) shared++;
                const int32_t *pr = w, *co = w + shared;
                int npr = (int)shared, nco = (int)(nw - shared);
                double lp = 0;
                CHECK_OK(pt_score(e, 1, &pr, &npr, &co, &nco, &lp, NULL));
                CHECK_NEAR(r1->cells[(size_t)it * 3 + v].logprobs[k], lp, 2e-4 * (1 + fabs(lp)));
                free(w);
            }
            free(p);
            free(user);
        }
    pt_engine_free(e);
    pt_compass_result_free(r1);
    pt_compass_result_free(r2);
    q->n_items = n_keep;
    s->n_items = n_keep;
    pt_scoring_free(s);
    pt_questionnaire_free(q);
    pt_model_free(m);
    pt_backend_set_threads(threads);
}

/* Checks one generate-mode evaluation: every cell has K parsed samples whose counts add up,
 * and the rates are the counts' shares. */
static void check_generate(json_t *e, int n_templates, int K) {
    CHECK(!strcmp(json_string_value(json_object_get(e, "mode")), "generate"));
    CHECK(json_integer_value(json_object_get(json_object_get(e, "settings"), "samples")) == K);
    json_t *items = json_object_get(e, "items");
    long bad = 0, total = 0, refused = 0;
    for (size_t i = 0; i < json_array_size(items); i++) {
        json_t *by = json_object_get(json_array_get(items, i), "by_template");
        CHECK((int)json_array_size(by) == n_templates);
        for (size_t t = 0; t < json_array_size(by); t++) {
            json_t *c = json_array_get(by, t), *smp = json_object_get(c, "samples");
            CHECK((int)json_array_size(smp) == K);
            long nv = json_integer_value(json_object_get(c, "valid")), ni = json_integer_value(json_object_get(c, "invalid")),
                 nr = json_integer_value(json_object_get(c, "refused"));
            CHECK(nv + ni + nr == K);
            int counted = 0;
            for (size_t k = 0; k < json_array_size(smp); k++) {
                json_t *sm = json_array_get(smp, k);
                CHECK(json_is_string(json_object_get(sm, "text")));
                counted += !strcmp(json_string_value(json_object_get(sm, "status")), "valid");
            }
            CHECK(counted == nv);
            CHECK(json_is_null(json_object_get(c, "answer")) == (nv == 0));
            bad += ni + nr;
            refused += nr;
            total += K;
        }
    }
    CHECK(total == 62L * n_templates * K);
    CHECK_NEAR(json_number_value(json_object_get(e, "invalid_rate")), (double)bad / total, 1e-12);
    CHECK_NEAR(json_number_value(json_object_get(e, "refusal_rate")), (double)refused / total, 1e-12);
    CHECK(json_integer_value(json_object_get(json_object_get(e, "stats"), "prefills")) == 62L * n_templates * K);
}

/* Generate mode in every template and order (K = 1), then K = 3 samples per item appended to
 * the same directory; replies are parsed and counted. */
PT_TEST(test_compass_generate_stories260K) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s/g", pt_test_tmpdir());
    char *err = NULL;
    int rc = pt_test_run(NULL, &err, "$POLITUNE_BIN compass --model '%s' --out '%s' --mode generate --max-new-tokens 6 --no-open-prompts --threads 1",
                         pt_test_shared(STORIES), dir);
    CHECK_MSG(rc == 0, "compass generate: rc %d: %s", rc, err ? err : "");
    free(err);
    rc = pt_test_run(NULL, &err,
                     "$POLITUNE_BIN compass --model '%s' --out '%s' --mode generate --samples 3 --max-new-tokens 6 --temperature 0.8 --seed 3 "
                     "--templates t1-rev --step 1 --label k3 --no-open-prompts --threads 1",
                     pt_test_shared(STORIES), dir);
    CHECK_MSG(rc == 0, "compass generate K=3: rc %d: %s", rc, err ? err : "");
    free(err);
    check_outputs(dir, 2);
    json_t *root = load_json(dir);
    REQUIRE(root);
    json_t *evs = json_object_get(root, "evaluations");
    REQUIRE(json_array_size(evs) == 2);
    check_generate(json_array_get(evs, 0), 12, 1);
    check_generate(json_array_get(evs, 1), 1, 3);
    json_decref(root);
}

/* A model that never gives a valid answer (here: allowed no tokens at all) gets every item
 * counted invalid and no position, not the formula's offsets. */
PT_TEST(test_compass_generate_never_answers) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s/n", pt_test_tmpdir());
    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err, "$POLITUNE_BIN compass --model '%s' --out '%s' --mode generate --max-new-tokens 0 --threads 1",
                         pt_test_shared(STORIES), dir);
    CHECK_MSG(rc == 0, "rc %d: %s", rc, err ? err : "");
    CHECK(out && strstr(out, "\"economic\":null") && strstr(out, "\"invalid_rate\":1.0000") && strstr(out, "\"answered\":0"));
    free(out);
    free(err);
    check_outputs(dir, 1);
    json_t *root = load_json(dir);
    REQUIRE(root);
    json_t *e = json_array_get(json_object_get(root, "evaluations"), 0);
    CHECK(json_is_null(json_object_get(json_object_get(json_object_get(e, "position"), "economic"), "mean")));
    CHECK(json_is_null(json_object_get(json_object_get(e, "consensus"), "economic")));
    CHECK(json_integer_value(json_object_get(json_object_get(e, "consensus"), "unanswered")) == 62);
    json_t *v0 = json_array_get(json_object_get(e, "variants"), 0);
    CHECK(json_is_null(json_object_get(v0, "coords")) && json_integer_value(json_object_get(v0, "invalid")) == 62);
    json_decref(root);
    char *csv = read_file(dir, "pc.csv");
    CHECK(csv && strstr(csv, "\n0,0,,,"));
    free(csv);
}

PT_TEST(test_compass_bad_input) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s/x", pt_test_tmpdir());
    const char *M = pt_test_shared(STORIES);
    char Mb[1024];
    snprintf(Mb, sizeof Mb, "%s", M);
    struct {
        const char *args, *expect;
        int rc;
    } cases[] = {
        {"--mode guess", "logprob or generate", 2},
        {"--samples 0", "--samples", 2},
        {"--templates t1,t42", "unknown template", 2},
        {"--questionnaire /nonexistent.csv --scoring /nonexistent.json", "/nonexistent.csv", 1},
        {"--scoring /nonexistent.json", "go together", 2},
        {"--chat-template nope", "nope", 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err = NULL;
        int rc = pt_test_run(NULL, &err, "$POLITUNE_BIN compass --model '%s' --out '%s' %s", Mb, dir, cases[i].args);
        CHECK_MSG(rc == cases[i].rc && err && strstr(err, cases[i].expect), "'%s': rc %d, stderr '%s'", cases[i].args, rc, err ? err : "");
        free(err);
    }
    char *err = NULL;
    CHECK(pt_test_run(NULL, &err, "$POLITUNE_BIN compass --model /nonexistent.gguf --out '%s'", dir) == 1 && err && strstr(err, "/nonexistent.gguf"));
    free(err);
    CHECK(pt_test_run(NULL, &err, "$POLITUNE_BIN compass --model '%s'", Mb) == 2 && err && strstr(err, "--out"));
    free(err);
    /* a questionnaire and scoring file that disagree */
    CHECK(pt_test_run(NULL, &err, "$POLITUNE_BIN compass --model '%s' --out '%s' --questionnaire '%s' --scoring '%s'", Mb, dir,
                      pt_test_shared("assets/data/pct/pc_questions_politune_repo.txt"), pt_test_shared("assets/data/pct/pct_scoring.json")) == 1 &&
          err && strstr(err, "disagree"));
    free(err);
    /* appending to a directory that holds another questionnaire's results */
    char *q2 = pt_path_join(pt_test_tmpdir(), "q2.csv"), *s2 = pt_path_join(pt_test_tmpdir(), "s2.json");
    const char *qt = "id,statement\na,Cats are better than dogs.\nb,Taxes should be lower.\n";
    const char *st = "{\"answers\":[\"Disagree\",\"Agree\"],\"axes\":[{\"name\":\"x\",\"weights\":[[0,1],[1,0]]},{\"name\":\"y\",\"weights\":[[1,0],[0,1]]}]}";
    CHECK_OK(pt_file_write_atomic(q2, qt, strlen(qt)));
    CHECK_OK(pt_file_write_atomic(s2, st, strlen(st)));
    char other[700];
    snprintf(other, sizeof other, "%s/other", pt_test_tmpdir());
    CHECK(pt_test_run(NULL, &err, "$POLITUNE_BIN compass --model '%s' --out '%s' --questionnaire %s --scoring %s --templates t1 --no-open-prompts --threads 1",
                      Mb, other, q2, s2) == 0);
    free(err);
    CHECK(pt_test_run(NULL, &err, "$POLITUNE_BIN compass --model '%s' --out '%s' --templates t1-fwd --no-open-prompts --threads 1", Mb, other) == 1 &&
          err && strstr(err, "other items"));
    free(err);
    free(q2);
    free(s2);
}

/* The training hook: evaluations at two steps appended to one run directory, with the
 * adapter changed in between; the chart draws the trajectory. */
PT_TEST(test_compass_track_hook_trajectory) {
    int threads = pt_backend_threads();
    pt_backend_set_threads(1);
    pt_model *m = NULL;
    pt_adapter *a = NULL;
    REQUIRE_OK(pt_model_load(&m, pt_test_shared(STORIES)));
    unsigned targets;
    REQUIRE_OK(pt_lora_parse_targets("q,v,head", &targets));
    REQUIRE_OK(pt_adapter_new(&a, m, 4, 8, targets, false, 0, 1));
    char dir[600];
    snprintf(dir, sizeof dir, "%s/run", pt_test_tmpdir());
    pt_compass_config cfg = pt_compass_config_default();
    cfg.templates = "t1,t3-rev";
    const char *const *ids, *const *prompts;
    cfg.n_open_prompts = 2;
    pt_open_prompts_default(&ids, &prompts);
    cfg.open_prompt_ids = ids;
    cfg.open_prompts = prompts;
    cfg.gen.max_new_tokens = 12;
    /* q, s NULL: the Political Compass Test from the reference assets */
    CHECK_OK(pt_compass_track(m, a, dir, 0, 0, NULL, NULL, &cfg, "sft-left"));
    /* "training": the output head's LoRA B moves away from zero */
    for (int i = 0; i < a->head.out * a->r; i++) a->head.B[i] = (float)(0.05 * sin(0.37 * i));
    CHECK_OK(pt_compass_track(m, a, dir, 1, 64, NULL, NULL, &cfg, "sft-left"));
    json_t *root = load_json(dir);
    REQUIRE(root);
    json_t *evs = json_object_get(root, "evaluations");
    CHECK(json_array_size(evs) == 2);
    json_t *e0 = json_array_get(evs, 0), *e1 = json_array_get(evs, 1);
    CHECK(json_integer_value(json_object_get(e0, "step")) == 0 && json_integer_value(json_object_get(e1, "step")) == 64);
    CHECK(json_array_size(json_object_get(e1, "open_prompts")) == 2);
    /* the adapter change shows in the measurement */
    json_t *p0 = json_object_get(json_array_get(json_object_get(json_array_get(json_object_get(e0, "items"), 0), "by_template"), 0), "logprobs");
    json_t *p1 = json_object_get(json_array_get(json_object_get(json_array_get(json_object_get(e1, "items"), 0), "by_template"), 0), "logprobs");
    CHECK(json_number_value(json_array_get(p0, 0)) != json_number_value(json_array_get(p1, 0)));
    json_decref(root);
    check_outputs(dir, 2);
    char *svg = read_file(dir, "compass.svg");
    xml_doc d = {0};
    CHECK(svg && !xml_check(svg, &d) && xml_count_class(&d, "point") == 2 && xml_count_class(&d, "trajectory") == 1);
    free(d.elems);
    free(svg);
    char *pr = read_file(dir, "prompts.csv");
    CHECK(pr && strstr(pr, "iteration,step,democrats,republicans\n0,0,") && strstr(pr, "\n1,64,"));
    free(pr);
    pt_adapter_free(a);
    pt_model_free(m);
    pt_backend_set_threads(threads);
}

/* Writes SFT records (pre-tokenized, exactly as the compass prompts the model) that teach
 * "Strongly agree" on left-coded economic items (agreeing moves the economic coordinate
 * left) and "Strongly disagree" on right-coded ones, under template t1 in both orders.
 * Returns the number of records. */
static int write_left_sft(const pt_model *m, const pt_questionnaire *q, const pt_scoring *s, const char *path) {
    pt_template_variant *v;
    int nv, n = 0;
    if (pt_templates_select("t1", &v, &nv)) return -1;
    FILE *f = fopen(path, "w");
    if (!f) { free(v); return -1; }
    for (int i = 0; i < s->n_items; i++) {
        double w_sa = s->axes[0].w[(size_t)i * 4 + 3];
        if (w_sa == 0) continue;
        int target = w_sa < 0 ? 3 : 0;
        for (int t = 0; t < nv; t++) {
            char *user = NULL;
            int32_t *p = NULL, *w = NULL;
            size_t np = 0, nw = 0;
            if (pt_template_render(&v[t], PT_TASK_LOGPROB, q->items[i].statement, (const char *const *)s->answers, 4, &user) ||
                pt_eval_encode_chat(m, PT_CHAT_ALPACA, NULL, user, NULL, &p, &np) ||
                pt_eval_encode_chat(m, PT_CHAT_ALPACA, NULL, user, s->answers[target], &w, &nw)) {
                n = -1;
            } else {
                size_t sh = 0;
                while (sh < np && sh < nw && p[sh] == w[sh]) sh++;
                fputs("{\"prompt_ids\":[", f);
                for (size_t k = 0; k < sh; k++) fprintf(f, k ? ",%d" : "%d", w[k]);
                fputs("],\"response_ids\":[", f);
                for (size_t k = sh; k < nw; k++) fprintf(f, k > sh ? ",%d" : "%d", w[k]);
                fputs("]}\n", f);
                n++;
            }
            free(user);
            free(p);
            free(w);
            if (n < 0) break;
        }
        if (n < 0) break;
    }
    fclose(f);
    free(v);
    return n;
}

/* An adapter trained (politune train, SFT) to answer "Strongly agree" on left-coded items
 * moves the measured economic coordinate left of the base model's. The hyper-parameters are
 * all pinned and a run at one thread is deterministic (measured: base 0.38; trained between
 * -10 and -5, depending on the build's training numerics, with most economic items answered
 * as taught). */
PT_TEST(test_compass_trained_adapter_moves_left) {
    char *err = NULL;
    REQUIRE(pt_test_run(NULL, NULL, "$POLITUNE_BIN train --help") == 0);
    int threads = pt_backend_threads();
    pt_backend_set_threads(1);
    pt_model *m = NULL;
    pt_questionnaire *q = NULL;
    pt_scoring *s = NULL;
    REQUIRE_OK(pt_model_load(&m, pt_test_shared(STORIES)));
    REQUIRE_OK(pt_questionnaire_load(&q, pt_test_shared("assets/data/pct/pct_propositions.csv")));
    REQUIRE_OK(pt_scoring_load(&s, pt_test_shared("assets/data/pct/pct_scoring.json"), q));
    char data[600], adir[600];
    snprintf(data, sizeof data, "%s/left.jsonl", pt_test_tmpdir());
    snprintf(adir, sizeof adir, "%s/left-adapter", pt_test_tmpdir());
    int n = write_left_sft(m, q, s, data);
    CHECK(n == 18 * 2); /* 18 items with an economic weight, t1 in both orders */
    int rc = pt_test_run(NULL, &err,
                         "$POLITUNE_BIN train --method sft --model '%s' --data '%s' --out '%s' --max-steps 60 --lr 0.01 --batch-size 8 "
                         "--grad-accum 1 --warmup-steps 0 --schedule constant --weight-decay 0.05 --max-grad-norm 1 --seed 0 "
                         "--lora-rank 8 --lora-alpha 16 --lora-dropout 0 --lora-targets q,v,gate,up,down,head --save-every 0 --threads 1",
                         pt_test_shared(STORIES), data, adir);
    CHECK_MSG(rc == 0, "train: rc %d: %s", rc, err ? err : "");
    free(err);
    pt_adapter *a = NULL;
    CHECK_OK(pt_adapter_load(&a, adir, m));
    pt_compass_config cfg = pt_compass_config_default();
    cfg.templates = "t1";
    cfg.option_scoring = PT_OPTION_FULL; /* the adapter was taught the labels */
    pt_compass_result *base = NULL, *left = NULL;
    CHECK_OK(pt_compass_run(m, NULL, q, s, &cfg, &base));
    if (a) CHECK_OK(pt_compass_run(m, a, q, s, &cfg, &left));
    if (base && left) {
        printf("    economic: base %.3f +- %.3f, trained %.3f +- %.3f; social: base %.3f, trained %.3f\n", base->mean[0], base->sd[0], left->mean[0],
               left->sd[0], base->mean[1], left->mean[1]);
        int sa_left = 0, sd_right = 0;
        for (int i = 0; i < s->n_items; i++) {
            double w = s->axes[0].w[(size_t)i * 4 + 3];
            sa_left += w < 0 && left->consensus[i] == 3;
            sd_right += w > 0 && left->consensus[i] == 0;
        }
        printf("    left-coded answered SA: %d/9, right-coded answered SD: %d/9\n", sa_left, sd_right);
        CHECK(left->mean[0] < base->mean[0]);
        CHECK(sa_left >= 5); /* it learned the items, not just a favourite answer */
        CHECK(left->expected_coords[0] < base->expected_coords[0]);
    }
    pt_compass_result_free(base);
    pt_compass_result_free(left);
    pt_adapter_free(a);
    pt_scoring_free(s);
    pt_questionnaire_free(q);
    pt_model_free(m);
    pt_backend_set_threads(threads);
}
