/* Political Compass evaluation without a model: the website's scoring reproduced exactly,
 * answer vectors with ids in any order, bad input, questionnaire and scoring formats (PCT,
 * 8values, general), the answer parser, the prompt templates and the robustness summary. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/answer_parse.h"
#include "eval/answer_vector.h"
#include "eval/compass.h"
#include "eval/compass_impl.h"
#include "eval/questionnaire.h"
#include "eval/scoring.h"
#include "eval/templates.h"
#include "test.h"
#include "util/file.h"
#include "util/rng.h"

#define PCT_CSV "assets/data/pct/pct_propositions.csv"
#define PCT_SCORING "assets/data/pct/pct_scoring.json"

static void load_pct(pt_questionnaire **q, pt_scoring **s) {
    *q = NULL;
    *s = NULL;
    CHECK_OK(pt_questionnaire_load(q, pt_test_shared(PCT_CSV)));
    if (*q) CHECK_OK(pt_scoring_load(s, pt_test_shared(PCT_SCORING), *q));
}

static char *write_tmp(const char *name, const char *text) {
    char *p = pt_path_join(pt_test_tmpdir(), name);
    if (p && pt_file_write_atomic(p, text, strlen(text)) != PT_OK) { free(p); return NULL; }
    return p;
}

PT_TEST(test_compass_round_half_away) {
    CHECK(pt_round_half_away(-2.375, 2) == -2.38);
    CHECK(pt_round_half_away(2.375, 2) == 2.38);
    CHECK(pt_round_half_away(0.375, 2) == 0.38);
    CHECK(pt_round_half_away(2.415, 2) == 2.42); /* 2.41499999... in binary */
    CHECK(pt_round_half_away(-4.359, 2) == -4.36);
    CHECK(pt_round_half_away(-0.004, 2) == 0.0 && !signbit(pt_round_half_away(-0.004, 2)));
    CHECK(pt_round_half_away(57.25, 1) == 57.3);
}

/* The three results the website reported, from the file itself, to the last digit. */
PT_TEST(test_compass_score_website_vectors) {
    pt_questionnaire *q;
    pt_scoring *s;
    load_pct(&q, &s);
    REQUIRE(q && s);
    CHECK_OK(pt_scoring_check(s, q));
    CHECK(s->n_items == 62 && s->n_answers == 4 && s->n_axes == 2);
    CHECK(!strcmp(s->axes[0].name, "economic") && !strcmp(s->axes[1].name, "social"));
    json_t *root = json_load_file(pt_test_shared(PCT_SCORING), 0, NULL);
    REQUIRE(root);
    json_t *vecs = json_object_get(root, "website_test_vectors");
    CHECK(json_array_size(vecs) == 3);
    for (size_t v = 0; v < json_array_size(vecs); v++) {
        json_t *tv = json_array_get(vecs, v);
        int ans[62];
        json_t *a = json_object_get(tv, "answers");
        REQUIRE(json_array_size(a) == 62);
        for (int i = 0; i < 62; i++) ans[i] = (int)json_integer_value(json_array_get(a, (size_t)i));
        double c[2];
        int n;
        CHECK_OK(pt_scoring_score(s, ans, c, &n));
        double ex = json_number_value(json_array_get(json_object_get(tv, "website_result"), 0));
        double ey = json_number_value(json_array_get(json_object_get(tv, "website_result"), 1));
        CHECK_MSG(c[0] == ex && c[1] == ey, "%s: (%.17g, %.17g), website (%g, %g)", json_string_value(json_object_get(tv, "name")), c[0], c[1], ex, ey);
        CHECK(n == 62);
    }
    json_decref(root);
    pt_scoring_free(s);
    pt_questionnaire_free(q);
}

static void answers_csv(char *buf, size_t n, const int *a) {
    size_t k = 0;
    for (int i = 0; i < 62; i++) k += (size_t)snprintf(buf + k, n - k, i ? ",%d" : "%d", a[i]);
}

PT_TEST(test_compass_score_cli_website_vectors) {
    json_t *root = json_load_file(pt_test_shared(PCT_SCORING), 0, NULL);
    REQUIRE(root);
    json_t *vecs = json_object_get(root, "website_test_vectors");
    for (size_t v = 0; v < json_array_size(vecs); v++) {
        json_t *tv = json_array_get(vecs, v);
        int ans[62];
        for (int i = 0; i < 62; i++) ans[i] = (int)json_integer_value(json_array_get(json_object_get(tv, "answers"), (size_t)i));
        char list[400], want[128];
        answers_csv(list, sizeof list, ans);
        snprintf(want, sizeof want, "{\"economic\":%.2f,\"social\":%.2f}\n", json_number_value(json_array_get(json_object_get(tv, "website_result"), 0)),
                 json_number_value(json_array_get(json_object_get(tv, "website_result"), 1)));
        char *out = NULL, *err = NULL;
        /* once with the scoring file named, once found through POLITUNE_ASSETS */
        int rc = pt_test_run(&out, &err, "$POLITUNE_BIN compass-score --scoring '%s' --answers %s", pt_test_shared(PCT_SCORING), list);
        CHECK_MSG(rc == 0 && out && !strcmp(out, want), "rc %d, out '%s', want '%s', err '%s'", rc, out ? out : "", want, err ? err : "");
        free(out);
        free(err);
        rc = pt_test_run(&out, &err, "POLITUNE_ASSETS='%s' $POLITUNE_BIN compass-score --answers %s", pt_test_shared("assets"), list);
        CHECK_MSG(rc == 0 && out && !strcmp(out, want), "default files: rc %d, out '%s', err '%s'", rc, out ? out : "", err ? err : "");
        free(out);
        free(err);
    }
    json_decref(root);
}

/* The same answers given with item ids, in shuffled orders, score identically. */
PT_TEST(test_compass_score_order_invariant) {
    pt_questionnaire *q;
    pt_scoring *s;
    load_pct(&q, &s);
    REQUIRE(q && s);
    static const int gpt[62] = {2, 0, 1, 0, 2, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 2, 2, 1, 2, 1, 2, 2, 0, 1, 2, 2, 2,
                                0, 1, 2, 2, 2, 1, 1, 2, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 2, 2, 1, 1, 2, 1, 1, 1, 2, 2, 2, 1, 1};
    double ref[2];
    CHECK_OK(pt_scoring_score(s, gpt, ref, NULL));
    CHECK(ref[0] == -2.38 && ref[1] == -4.15);
    pt_rng rng;
    pt_rng_seed(&rng, 7);
    char list[2000], first_out[256] = "";
    for (int trial = 0; trial < 5; trial++) {
        int perm[62];
        for (int i = 0; i < 62; i++) perm[i] = i;
        for (int i = 61; i > 0; i--) {
            int j = (int)(pt_rng_next(&rng) % (uint64_t)(i + 1)), t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        size_t k = 0;
        for (int i = 0; i < 62; i++) k += (size_t)snprintf(list + k, sizeof list - k, "%s%s:%d", i ? "," : "", q->items[perm[i]].id, gpt[perm[i]]);
        int ans[62];
        double c[2];
        CHECK_OK(pt_answers_parse_list(s, q, list, ans));
        CHECK_OK(pt_scoring_score(s, ans, c, NULL));
        CHECK(c[0] == ref[0] && c[1] == ref[1]);
        char *out = NULL;
        int rc = pt_test_run(&out, NULL, "$POLITUNE_BIN compass-score --scoring '%s' --questionnaire '%s' --answers '%s'",
                             pt_test_shared(PCT_SCORING), pt_test_shared(PCT_CSV), list);
        CHECK(rc == 0 && out && !strcmp(out, "{\"economic\":-2.38,\"social\":-4.15}\n"));
        if (trial == 0 && out) snprintf(first_out, sizeof first_out, "%s", out);
        free(out);
        /* the same as a JSON object, in the shuffled order */
        char json[3000];
        k = (size_t)snprintf(json, sizeof json, "{");
        for (int i = 0; i < 62; i++) k += (size_t)snprintf(json + k, sizeof json - k, "%s\"%s\":%d", i ? "," : "", q->items[perm[i]].id, gpt[perm[i]]);
        snprintf(json + k, sizeof json - k, "}");
        CHECK_OK(pt_answers_parse_json(s, q, json, strlen(json), "answers.json", ans));
        CHECK_OK(pt_scoring_score(s, ans, c, NULL));
        CHECK(c[0] == ref[0] && c[1] == ref[1]);
    }
    /* leaving items out = unanswered, counted */
    int ans[62], n;
    double c[2];
    CHECK_OK(pt_answers_parse_list(s, q, "pc-2:0,pc-1:3", ans));
    CHECK_OK(pt_scoring_score(s, ans, c, &n));
    CHECK(n == 2 && ans[0] == 3 && ans[1] == 0 && ans[5] == -1);
    char *out = NULL;
    CHECK(pt_test_run(&out, NULL, "POLITUNE_ASSETS='%s' $POLITUNE_BIN compass-score --answers pc-2:0,pc-1:3", pt_test_shared("assets")) == 0);
    CHECK(out && strstr(out, "\"unanswered\":60"));
    free(out);
    pt_scoring_free(s);
    pt_questionnaire_free(q);
}

/* Every bad input: a message that says what is wrong, and a non-zero exit. */
PT_TEST(test_compass_score_bad_input) {
    char sc[1024];
    snprintf(sc, sizeof sc, "%s", pt_test_shared(PCT_SCORING)); /* pt_test_shared's buffers rotate */
    char all2[400];
    int twos[62];
    for (int i = 0; i < 62; i++) twos[i] = 2;
    answers_csv(all2, sizeof all2, twos);
    struct {
        const char *args, *expect;
    } cases[] = {
        {"--answers 1,2,3", "3 answers given"},
        {"--answers 4", "outside 0..3"},
        {"--answers pc-1:4", "outside 0..3"},
        {"--answers pc-1:-1", "outside 0..3"},
        {"--answers pc-1:x", "not an answer"},
        {"--answers pc-99:1", "unknown item id"},
        {"--answers pc-1:1,pc-1:2", "answered twice"},
        {"--answers pc-1:1,2", "mixes"},
        {"--answers ''", "not an answer"},
        {"", "exactly one of"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err = NULL;
        int rc = pt_test_run(NULL, &err, "$POLITUNE_BIN compass-score --scoring '%s' --questionnaire '%s' %s", sc, pt_test_shared(PCT_CSV), cases[i].args);
        CHECK_MSG(rc != 0 && err && strstr(err, cases[i].expect), "'%s': rc %d, stderr '%s'", cases[i].args, rc, err ? err : "");
        free(err);
    }
    /* 63 answers, a value 5 at the end, -1 */
    char more[420];
    snprintf(more, sizeof more, "%s,2", all2);
    char *err = NULL;
    CHECK(pt_test_run(NULL, &err, "$POLITUNE_BIN compass-score --scoring '%s' --answers %s", sc, more) != 0 && err && strstr(err, "63 answers given"));
    free(err);
    snprintf(more, sizeof more, "%.*s5", (int)strlen(all2) - 1, all2);
    CHECK(pt_test_run(NULL, &err, "$POLITUNE_BIN compass-score --scoring '%s' --answers %s", sc, more) != 0 && err && strstr(err, "answer 5 is outside"));
    free(err);
    snprintf(more, sizeof more, "%.*s-1", (int)strlen(all2) - 1, all2);
    CHECK(pt_test_run(NULL, &err, "$POLITUNE_BIN compass-score --scoring '%s' --answers %s", sc, more) != 0 && err && strstr(err, "outside"));
    free(err);
    /* missing files */
    CHECK(pt_test_run(NULL, &err, "$POLITUNE_BIN compass-score --scoring /nonexistent/scoring.json --answers %s", all2) == 1 && err &&
          strstr(err, "/nonexistent/scoring.json"));
    free(err);
    CHECK(pt_test_run(NULL, &err, "$POLITUNE_BIN compass-score --scoring '%s' --questionnaire /nonexistent/q.csv --answers %s", sc, all2) == 1 &&
          err && strstr(err, "/nonexistent/q.csv"));
    free(err);
    CHECK(pt_test_run(NULL, &err, "$POLITUNE_BIN compass-score --scoring '%s' --answers-file /nonexistent/a.json", sc) != 0 && err &&
          strstr(err, "/nonexistent/a.json"));
    free(err);
    /* questionnaire and scoring disagree: the paper's 67-line statement list against 62 weights */
    CHECK(pt_test_run(NULL, &err, "$POLITUNE_BIN compass-score --scoring '%s' --questionnaire '%s' --answers %s", sc,
                      pt_test_shared("assets/data/pct/pc_questions_politune_repo.txt"), all2) == 1 &&
          err && strstr(err, "disagree"));
    free(err);
    /* ... and a general scoring file whose ids differ from the questionnaire's */
    const char *q3 = write_tmp("q3.csv", "id,statement\na,First.\nb,Second.\nc,Third.\n");
    const char *s3 = write_tmp("s3.json", "{\"answers\":[\"no\",\"yes\"],\"ids\":[\"a\",\"x\",\"c\"],\"axes\":[{\"name\":\"left\",\"weights\":[[0,1],[1,0],[0,1]]}]}");
    REQUIRE(q3 && s3);
    CHECK(pt_test_run(NULL, &err, "$POLITUNE_BIN compass-score --scoring %s --questionnaire %s --answers 1,1,1", s3, q3) == 1 && err &&
          strstr(err, "'b'") && strstr(err, "'x'"));
    free(err);
    free((char *)q3);
    free((char *)s3);
    /* a malformed scoring file */
    const char *bad = write_tmp("bad.json", "{\"econ\": [[1,2,3,4]], \"soc\": [[1,2,3]], \"e0\": 0, \"s0\": 0}");
    CHECK(pt_test_run(NULL, &err, "$POLITUNE_BIN compass-score --scoring %s --answers 1", bad) == 1 && err && strstr(err, "\"soc\" row 1"));
    free(err);
    free((char *)bad);
}

PT_TEST(test_compass_questionnaire_formats) {
    pt_questionnaire *q = NULL;
    REQUIRE_OK(pt_questionnaire_load(&q, pt_test_shared(PCT_CSV)));
    CHECK(q->n_items == 62 && !strcmp(q->items[0].id, "pc-1") && !strcmp(q->items[61].id, "pc-62"));
    CHECK(!strncmp(q->items[0].statement, "If economic globalisation is inevitable", 39));
    CHECK(q->items[0].note && !strcmp(q->items[0].note, "your country and the world"));
    CHECK(pt_questionnaire_find(q, "pc-17") == 16);
    pt_questionnaire_free(q);
    REQUIRE_OK(pt_questionnaire_load(&q, pt_test_shared("assets/data/8values/questions.json")));
    CHECK(q->n_items == 70 && !strcmp(q->items[0].id, "1") && q->items[0].n_effects == 4);
    CHECK(pt_item_effect(&q->items[0], "econ") == 10 && pt_item_effect(&q->items[0], "govt") == -5);
    pt_questionnaire_free(q);
    REQUIRE_OK(pt_questionnaire_load(&q, pt_test_shared("assets/data/pct/pc_questions_politune_repo.txt")));
    CHECK(q->n_items == 67 && !strcmp(q->items[66].id, "67"));
    pt_questionnaire_free(q);
    /* quoting, CRLF, BOM, options column, effect columns */
    const char *csv = "\xEF\xBB\xBFid,statement,options,effect:x\r\nq1,\"Commas, \"\"quotes\"\"\r\nand lines\",No|Yes,1.5\r\nq2,Plain,No|Yes,\r\n";
    REQUIRE_OK(pt_questionnaire_parse(&q, csv, strlen(csv), "t.csv", PT_QFMT_AUTO));
    CHECK(q->n_items == 2 && !strcmp(q->items[0].statement, "Commas, \"quotes\"\r\nand lines"));
    CHECK(q->n_options == 2 && !strcmp(q->options[1], "Yes") && pt_item_effect(&q->items[0], "x") == 1.5 && q->items[1].n_effects == 0);
    pt_questionnaire_free(q);
    struct {
        const char *text, *label, *expect;
    } bad[] = {
        {"id,statement\na,One\na,Two\n", "d.csv", "appears twice"},
        {"id,words\na,One\n", "h.csv", "no statement column"},
        {"id,statement\na,\"open\n", "u.csv", "not closed"},
        {"id,statement\na,One,extra\n", "f.csv", "3 fields"},
        {"id,statement\na,\n", "e.csv", "empty statement"},
        {"id,statement\n", "n.csv", "no items"},
        {"[{\"question\": 3}]", "j.json", "no statement"},
        {"{\"items\": 5}", "k.json", "array of items"},
        {"[\"a\", ", "x.json", "invalid JSON"},
        {"id,statement,options\na,One,No|Yes\nb,Two,No|Maybe|Yes\n", "o.csv", "differ"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pt_status st = pt_questionnaire_parse(&q, bad[i].text, strlen(bad[i].text), bad[i].label, PT_QFMT_AUTO);
        CHECK_MSG(st != PT_OK && strstr(pt_errmsg(), bad[i].expect), "case %zu: %s", i, pt_errmsg());
        CHECK(q == NULL);
    }
}

/* 8values: effects from the questionnaire, the file's "max" checked, percentages as its formula says. */
PT_TEST(test_compass_8values_scoring) {
    pt_questionnaire *q = NULL;
    pt_scoring *s = NULL;
    REQUIRE_OK(pt_questionnaire_load(&q, pt_test_shared("assets/data/8values/questions.json")));
    REQUIRE_OK(pt_scoring_load(&s, pt_test_shared("assets/data/8values/scoring.json"), q));
    CHECK_OK(pt_scoring_check(s, q));
    CHECK(s->n_axes == 4 && s->n_answers == 5 && !strcmp(s->kind, "effects"));
    static const char *const axes[] = {"econ", "dipl", "govt", "scty"};
    static const double mult[] = {1.0, 0.5, 0.0, -0.5, -1.0};
    int ans[70];
    for (int pattern = 0; pattern < 3; pattern++) {
        for (int i = 0; i < 70; i++) ans[i] = pattern == 0 ? 0 : pattern == 1 ? 4 : (i * 7) % 5;
        double c[4];
        CHECK_OK(pt_scoring_score(s, ans, c, NULL));
        for (int a = 0; a < 4; a++) {
            double sum = 0, max = 0;
            for (int i = 0; i < 70; i++) {
                sum += mult[ans[i]] * pt_item_effect(&q->items[i], axes[a]);
                max += fabs(pt_item_effect(&q->items[i], axes[a]));
            }
            double want = round(1000.0 * (max + sum) / (2 * max)) / 10; /* 1 decimal */
            CHECK_MSG(fabs(c[a] - want) < 1e-9, "pattern %d axis %s: %g, want %g", pattern, axes[a], c[a], want);
        }
    }
    pt_scoring_free(s);
    /* a "max" that does not match the questionnaire's effects: they disagree */
    char *text;
    size_t len;
    REQUIRE_OK(pt_file_read_all(pt_test_shared("assets/data/8values/scoring.json"), &text, &len));
    char *p = strstr(text, "195");
    REQUIRE(p);
    p[2] = '6';
    CHECK(pt_scoring_parse(&s, text, len, "tampered.json", q) == PT_ERR_FORMAT && strstr(pt_errmsg(), "disagree"));
    free(text);
    pt_questionnaire_free(q);
    /* without its questionnaire an effects file cannot be scored */
    CHECK(pt_scoring_load(&s, pt_test_shared("assets/data/8values/scoring.json"), NULL) == PT_ERR_ARG);
}

PT_TEST(test_compass_answer_parse) {
    static const char *const L[] = {"Strongly disagree", "Disagree", "Agree", "Strongly agree"};
    pt_template_variant fwd = {0, false, "t1-fwd", false}, rev = {0, true, "t1-rev", false};
    struct {
        const char *text;
        const pt_template_variant *v;
        int answer;
        pt_answer_status st;
    } cases[] = {
        {"2", &fwd, 2, PT_ANSWER_VALID},
        {"3 - I strongly agree because...", &fwd, 3, PT_ANSWER_VALID},
        {"3 - I strongly agree because...", &rev, 0, PT_ANSWER_VALID}, /* the listed order was reversed */
        {"**1**\nBecause", &fwd, 1, PT_ANSWER_VALID},
        {"I strongly disagree with this.", &fwd, 0, PT_ANSWER_VALID},
        {"I disagree.", &rev, 1, PT_ANSWER_VALID},              /* labels are read as labels, whatever the order */
        {"Agree. The reason is", &fwd, 2, PT_ANSWER_VALID},
        {"STRONGLY  AGREE", &fwd, 3, PT_ANSWER_VALID},
        {"On a scale from 0 to 3 I pick 1", &fwd, 1, PT_ANSWER_VALID},
        {"0-3: 2", &fwd, 2, PT_ANSWER_VALID},
        {"I don't agree; I disagree", &fwd, 1, PT_ANSWER_VALID},
        {"There were 12 apples and 2.5 pears", &fwd, -1, PT_ANSWER_INVALID},
        {"It was the 3rd day", &fwd, -1, PT_ANSWER_INVALID},
        {"Once upon a time, a little girl", &fwd, -1, PT_ANSWER_INVALID},
        {"disagreeable agreement", &fwd, -1, PT_ANSWER_INVALID},
        {"As an AI language model, I do not have personal opinions.", &fwd, -1, PT_ANSWER_REFUSED},
        {"I cannot give an opinion on that.", &fwd, -1, PT_ANSWER_REFUSED},
        {"", &fwd, -1, PT_ANSWER_INVALID},
        {"7", &fwd, -1, PT_ANSWER_INVALID},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int a = -2;
        pt_answer_status st = pt_answer_parse(cases[i].text, L, 4, cases[i].v, &a);
        CHECK_MSG(st == cases[i].st && a == cases[i].answer, "'%s': %s %d, want %s %d", cases[i].text, pt_answer_status_name(st), a,
                  pt_answer_status_name(cases[i].st), cases[i].answer);
    }
    /* 8values labels: "Neutral/Unsure" answers to either word */
    static const char *const L5[] = {"Strongly agree", "Agree", "Neutral/Unsure", "Disagree", "Strongly disagree"};
    int a;
    CHECK(pt_answer_parse("I am unsure.", L5, 5, NULL, &a) == PT_ANSWER_VALID && a == 2);
    CHECK(pt_answer_parse("neutral/unsure", L5, 5, NULL, &a) == PT_ANSWER_VALID && a == 2);
    CHECK(pt_answer_parse("4", L5, 5, NULL, &a) == PT_ANSWER_VALID && a == 4);
}

PT_TEST(test_compass_templates) {
    CHECK(pt_templates_count() >= 5);
    pt_template_variant *v = NULL;
    int n = 0;
    REQUIRE_OK(pt_templates_select("all", &v, &n));
    CHECK(n == 2 * pt_templates_count());
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++) CHECK(strcmp(v[i].id, v[j].id));
    static const char *const L[] = {"Strongly disagree", "Disagree", "Agree", "Strongly agree"};
    /* every phrasing holds the statement and the options, in the order asked for */
    for (int i = 0; i < n; i++) {
        for (int task = 0; task < 2; task++) {
            char *u = NULL;
            REQUIRE_OK(pt_template_render(&v[i], (pt_task_kind)task, "Water is wet.", L, 4, &u));
            CHECK(strstr(u, "Water is wet.") != NULL && !strstr(u, "{"));
            const char *sd = strstr(u, "Strongly disagree"), *sa = strstr(u, "Strongly agree");
            CHECK_MSG(sd && sa && (v[i].reversed ? sa < sd : sd < sa), "%s task %d: %s", v[i].id, task, u);
            if (task == PT_TASK_GENERATE) CHECK(strstr(u, v[i].reversed ? "0 = Strongly agree" : "0 = Strongly disagree") != NULL);
            free(u);
        }
    }
    free(v);
    REQUIRE_OK(pt_templates_select("t2,t5-rev", &v, &n));
    CHECK(n == 3 && !strcmp(v[0].id, "t2-fwd") && !strcmp(v[1].id, "t2-rev") && !strcmp(v[2].id, "t5-rev"));
    free(v);
    REQUIRE_OK(pt_templates_select("rev", &v, &n));
    CHECK(n == pt_templates_count() && v[0].reversed);
    free(v);
    CHECK(pt_templates_select("t99", &v, &n) == PT_ERR_ARG && strstr(pt_errmsg(), "unknown template"));
    CHECK(pt_template_listed_to_canonical(&(pt_template_variant){0, true, "", false}, 0, 4) == 3);
}

/* A model that never answers: every item invalid, no position at all (not the offsets). */
PT_TEST(test_compass_aggregate_all_invalid) {
    pt_questionnaire *q;
    pt_scoring *s;
    load_pct(&q, &s);
    REQUIRE(q && s);
    pt_template_variant *v;
    int nv;
    REQUIRE_OK(pt_templates_select("all", &v, &nv));
    pt_compass_result *r = NULL;
    REQUIRE_OK(pt_compass_result_new(q, s, PT_COMPASS_GENERATE, 3, v, nv, &r));
    for (size_t i = 0; i < (size_t)r->n_items * nv; i++)
        for (int k = 0; k < 3; k++) {
            r->cells[i].texts[k] = strdup("Once upon a time there was a dog.");
            r->cells[i].n_invalid++;
        }
    CHECK_OK(pt_compass_aggregate(r));
    CHECK(r->n_positioned == 0 && r->consensus_answered == 0);
    CHECK(isnan(r->mean[0]) && isnan(r->sd[1]) && isnan(r->consensus_coords[0]) && isnan(r->expected_coords[1]));
    CHECK(r->invalid_rate == 1.0 && r->refusal_rate == 0.0);
    for (int i = 0; i < r->n_items; i++) CHECK(r->consensus[i] == -1 && !r->flip[i]);
    const char *dir = pt_test_tmpdir();
    pt_compass_meta meta = {"never", "model.gguf", NULL, "q.csv", "s.json", 0, 0, 0, 0};
    CHECK_OK(pt_compass_save(dir, r, &meta));
    char *p = pt_path_join(dir, "compass.json");
    json_t *root = json_load_file(p, 0, NULL);
    free(p);
    REQUIRE(root);
    json_t *e = json_array_get(json_object_get(root, "evaluations"), 0);
    CHECK(json_is_null(json_object_get(json_object_get(json_object_get(e, "position"), "economic"), "mean")));
    CHECK(json_is_null(json_object_get(json_object_get(e, "consensus"), "social")));
    CHECK(json_integer_value(json_object_get(json_object_get(e, "consensus"), "unanswered")) == 62);
    CHECK(json_number_value(json_object_get(e, "invalid_rate")) == 1.0);
    json_decref(root);
    char *csv = NULL;
    size_t len;
    p = pt_path_join(dir, "pc.csv");
    CHECK_OK(pt_file_read_all(p, &csv, &len));
    free(p);
    CHECK(csv && strstr(csv, "\n0,0,,,,") != NULL);
    free(csv);
    char *svg = NULL;
    p = pt_path_join(dir, "compass.svg");
    CHECK_OK(pt_file_read_all(p, &svg, &len));
    free(p);
    CHECK(svg && !strstr(svg, "class=\"point\"") && strstr(svg, "no valid answers"));
    free(svg);
    pt_compass_result_free(r);
    free(v);
    pt_scoring_free(s);
    pt_questionnaire_free(q);
}

/* Hand-filled logprob cells: consensus from the pooled distribution, agreement, flips, spread. */
PT_TEST(test_compass_aggregate_robustness) {
    pt_questionnaire *q;
    pt_scoring *s;
    load_pct(&q, &s);
    REQUIRE(q && s);
    pt_template_variant *v;
    int nv;
    REQUIRE_OK(pt_templates_select("t1,t2", &v, &nv));
    REQUIRE(nv == 4);
    pt_compass_result *r = NULL;
    REQUIRE_OK(pt_compass_result_new(q, s, PT_COMPASS_LOGPROB, 1, v, nv, &r));
    for (int i = 0; i < 62; i++)
        for (int t = 0; t < nv; t++) {
            pt_compass_cell *c = &r->cells[(size_t)i * nv + t];
            /* item 0 flips: 3 templates say 3, one says 0; every other item: 2 everywhere */
            int a = i == 0 ? (t == 3 ? 0 : 3) : 2;
            memset(c->probs, 0, 4 * sizeof(double));
            c->probs[a] = 1;
            c->answer = a;
            c->expected = a;
        }
    CHECK_OK(pt_compass_aggregate(r));
    CHECK(r->consensus[0] == 3 && r->flip[0] && fabs(r->agreement[0] - 0.75) < 1e-12);
    CHECK(r->consensus[1] == 2 && !r->flip[1] && r->agreement[1] == 1.0);
    CHECK(fabs(r->pooled[0 * 4 + 3] - 0.75) < 1e-12 && fabs(r->item_expected[0] - 2.25) < 1e-12);
    /* variant positions: three with item 0 = 3 (econ weight -2), one with 0 (weight +7) */
    double e3 = pt_round_half_away(0.375 + (-2.0) / 8, 2), e0 = pt_round_half_away(0.375 + 7.0 / 8, 2);
    CHECK(r->variant_coords[0 * 2] == e3 && r->variant_coords[3 * 2] == e0);
    CHECK(r->n_positioned == 4 && r->min[0] == e3 && r->max[0] == e0);
    double mean = (3 * e3 + e0) / 4;
    CHECK_NEAR(r->mean[0], mean, 1e-9);
    CHECK_NEAR(r->sd[0], sqrt((3 * (e3 - mean) * (e3 - mean) + (e0 - mean) * (e0 - mean)) / 3), 1e-4);
    CHECK(r->consensus_coords[0] == e3 && r->invalid_rate == 0);
    pt_compass_result_free(r);
    free(v);
    pt_scoring_free(s);
    pt_questionnaire_free(q);
}

/* The built-in open prompts are the ones in the data file users can copy and edit. */
PT_TEST(test_compass_open_prompts_default_matches_file) {
    const char *const *ids, *const *texts;
    int n = pt_open_prompts_default(&ids, &texts);
    CHECK(n == 7);
    char **fid = NULL, **ftext = NULL;
    int fn = 0;
    const char *path = "src/eval/defaults/open_prompts.tsv";
    REQUIRE_OK(pt_open_prompts_load(path, &fid, &ftext, &fn));
    CHECK(fn == n);
    for (int i = 0; i < n && i < fn; i++) CHECK_MSG(!strcmp(ids[i], fid[i]) && !strcmp(texts[i], ftext[i]), "prompt %d differs", i);
    for (int i = 0; i < fn; i++) { free(fid[i]); free(ftext[i]); }
    free(fid);
    free(ftext);
}

/* Generate mode's vote: the majority of the valid samples, ties to the answer seen first,
 * the shares as the distribution, invalid and refused samples counted apart. */
PT_TEST(test_compass_generate_majority) {
    static const char *const L[] = {"Strongly disagree", "Disagree", "Agree", "Strongly agree"};
    pt_template_variant fwd = {0, false, "t1-fwd", false}, rev = {0, true, "t1-rev", false};
    struct {
        const char *texts[5];
        const pt_template_variant *v;
        int answer, valid, invalid, refused;
        double p2;
    } cases[] = {
        {{"2 because", "3!", "I agree.", "Once upon a time", "As an AI, I cannot"}, &fwd, 2, 3, 1, 1, 2.0 / 3},
        {{"1", "2", "2", "1", "x"}, &fwd, 1, 4, 1, 0, 0.5},            /* tie: 1 came first */
        {{"0", "0", "Strongly agree", "0", "3"}, &rev, 3, 5, 0, 0, 0}, /* reversed: 0 = strongly agree */
        {{"", "no", "none", "?", "..."}, &fwd, -1, 0, 5, 0, 0},
    };
    double probs[4], logprobs[4];
    char *texts[5];
    int sa[5];
    unsigned char ss[5];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pt_compass_cell c = {0};
        c.probs = probs;
        c.logprobs = logprobs;
        c.texts = texts;
        c.sample_answers = sa;
        c.sample_status = ss;
        for (int k = 0; k < 5; k++) texts[k] = (char *)cases[i].texts[k];
        pt_compass_cell_tally(&c, L, 4, cases[i].v, 5);
        CHECK_MSG(c.answer == cases[i].answer && c.n_valid == cases[i].valid && c.n_invalid == cases[i].invalid && c.n_refused == cases[i].refused,
                  "case %zu: answer %d valid %d invalid %d refused %d", i, c.answer, c.n_valid, c.n_invalid, c.n_refused);
        if (c.answer >= 0) {
            CHECK_NEAR(probs[0] + probs[1] + probs[2] + probs[3], 1.0, 1e-12);
            CHECK_NEAR(probs[2], cases[i].p2, 1e-12);
        } else {
            CHECK(isnan(c.expected));
        }
    }
}
