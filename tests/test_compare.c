/* `politune compare` and the repeatability of compass.json: a rerun with the same seed writes
 * the same bytes; compare reports the shift, its interval and p-value, and the items that
 * changed; runs that cannot be compared (other questionnaire, other scoring rule or option
 * scoring, no valid answers) and a resample count of 0 fail with a message naming the run. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "eval/compass.h"
#include "test.h"
#include "util/file.h"

static const char *stories(void) { return pt_test_shared("assets/models/stories260K/stories260K.gguf"); }

PT_TEST(test_compare_rerun_byte_identical) {
    const char *tmp = pt_test_tmpdir();
    char *out = NULL, *err = NULL;
    for (int k = 0; k < 2; k++) {
        int rc = pt_test_run(&out, &err, "$POLITUNE_BIN compass --model '%s' --templates t1 --no-open-prompts --threads 1 --resamples 300 --seed 7 --out '%s/run%d'",
                             stories(), tmp, k);
        CHECK_MSG(rc == 0, "compass: rc %d: %s", rc, err ? err : "");
        free(out);
        free(err);
    }
    char *a = pt_test_read(tmp, "run0/compass.json"), *b = pt_test_read(tmp, "run1/compass.json");
    REQUIRE(a && b);
    CHECK_MSG(!strcmp(a, b), "two runs with the same seed wrote different compass.json files");
    /* the interval, resample count and seed are recorded */
    json_t *doc = json_loads(a, 0, NULL);
    json_t *e = json_array_get(json_object_get(doc, "evaluations"), 0);
    CHECK(json_integer_value(json_object_get(json_object_get(e, "interval"), "resamples")) == 300);
    CHECK(json_integer_value(json_object_get(json_object_get(e, "interval"), "seed")) == 7);
    json_t *econ = json_object_get(json_object_get(e, "position"), "economic");
    CHECK(json_array_size(json_object_get(econ, "interval")) == 2);
    CHECK(json_is_object(json_object_get(doc, "scoring_rule")));
    json_decref(doc);
    free(a);
    free(b);
    /* compare of the two: no shift */
    int rc = pt_test_run(&out, &err, "$POLITUNE_BIN compare '%s/run0' '%s/run1' --json", tmp, tmp);
    CHECK_MSG(rc == 0, "compare: rc %d: %s", rc, err ? err : "");
    json_t *j = out ? json_loads(out, 0, NULL) : NULL;
    CHECK(j && json_real_value(json_object_get(json_object_get(json_object_get(j, "axes"), "economic"), "shift")) == 0);
    CHECK(j && json_integer_value(json_object_get(j, "changed")) == 0);
    json_decref(j);
    free(out);
    free(err);
}

/* A saved result with every item answering `a` (or none when a < 0) under t1's two variants. */
static void save_run(const char *dir, const pt_questionnaire *q, const pt_scoring *s, int a, int a0) {
    pt_template_variant *v;
    int nv;
    if (pt_templates_select("t1", &v, &nv)) return;
    pt_compass_result *r = NULL;
    if (pt_compass_result_new(q, s, PT_COMPASS_LOGPROB, 1, v, nv, &r)) { free(v); return; }
    free(v);
    for (int i = 0; a >= 0 && i < r->n_items; i++)
        for (int t = 0; t < nv; t++) {
            pt_compass_cell *c = &r->cells[(size_t)i * nv + t];
            int ans = i < 3 ? a0 : a;
            c->answer = ans;
            c->probs[ans] = 1;
            c->expected = ans;
        }
    pt_compass_aggregate(r);
    pt_compass_meta m = {.label = "m", .model_path = "m.gguf"};
    CHECK_OK(pt_compass_save(dir, r, &m));
    pt_compass_result_free(r);
}

/* Copies dir/compass.json to a new directory with one change made by `edit`. */
static void edited_copy(const char *from, const char *to, void (*edit)(json_t *)) {
    char *p = pt_path_join(from, "compass.json");
    json_t *doc = json_load_file(p, 0, NULL);
    free(p);
    if (!doc) { CHECK(doc); return; }
    edit(doc);
    CHECK_OK(pt_mkdir_p(to));
    char *q = pt_path_join(to, "compass.json");
    CHECK(json_dump_file(doc, q, 0) == 0);
    free(q);
    json_decref(doc);
}

static void other_item(json_t *d) { json_object_set_new(json_array_get(json_object_get(d, "items"), 4), "id", json_string("other-5")); }
static void other_weight(json_t *d) {
    json_t *w = json_object_get(json_array_get(json_object_get(json_object_get(d, "scoring_rule"), "axes"), 0), "weights");
    json_array_set_new(json_array_get(w, 0), 0, json_real(99));
}
static void other_mode(json_t *d) { json_object_set_new(json_array_get(json_object_get(d, "evaluations"), 0), "mode", json_string("generate")); }
static void other_option_scoring(json_t *d) {
    json_object_set_new(json_array_get(json_object_get(d, "evaluations"), 0), "option_scoring", json_string("mean"));
}
static void no_rule(json_t *d) { json_object_del(d, "scoring_rule"); }

PT_TEST(test_compare_shift_and_bad_input) {
    pt_questionnaire *q = NULL;
    pt_scoring *s = NULL;
    REQUIRE_OK(pt_questionnaire_load(&q, pt_test_shared("assets/data/pct/pct_propositions.csv")));
    REQUIRE_OK(pt_scoring_load(&s, pt_test_shared("assets/data/pct/pct_scoring.json"), q));
    char base[600], left[600], empty[600], bad[600];
    const char *tmp = pt_test_tmpdir();
    snprintf(base, sizeof base, "%s/base", tmp);
    snprintf(left, sizeof left, "%s/left", tmp);
    snprintf(empty, sizeof empty, "%s/empty", tmp);
    save_run(base, q, s, 2, 2);
    save_run(left, q, s, 2, 0); /* items 1-3: Agree -> Strongly disagree */
    save_run(empty, q, s, -1, -1);
    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err, "$POLITUNE_BIN compare '%s' '%s' --json --resamples 200", base, left);
    CHECK_MSG(rc == 0, "compare: rc %d: %s", rc, err ? err : "");
    json_t *j = out ? json_loads(out, 0, NULL) : NULL;
    REQUIRE(j);
    CHECK(json_integer_value(json_object_get(j, "changed")) == 3 && json_integer_value(json_object_get(j, "answered_both")) == 62);
    /* the shift equals the sum of the three items' weight changes / 8 (economic) and the sum of
     * the attributions */
    double want[2] = {0, 0};
    for (int x = 0; x < 2; x++)
        for (int i = 0; i < 3; i++) want[x] += (s->axes[x].w[i * 4 + 0] - s->axes[x].w[i * 4 + 2]) / s->axes[x].divisor;
    const char *axes[2] = {"economic", "social"};
    for (int x = 0; x < 2; x++) {
        json_t *ax = json_object_get(json_object_get(j, "axes"), axes[x]);
        CHECK_NEAR(json_real_value(json_object_get(ax, "shift")), want[x], 1e-4);
        double sum = 0;
        json_t *items = json_object_get(j, "items");
        for (size_t i = 0; i < json_array_size(items); i++)
            sum += json_number_value(json_object_get(json_object_get(json_array_get(items, i), "attribution"), axes[x]));
        CHECK_NEAR(sum, want[x], 1e-9);
        /* the same change under both variants: nothing to resample, a zero-width interval */
        json_t *iv = json_object_get(ax, "interval");
        CHECK(json_array_size(iv) == 2);
        /* three items of 62: exact enumeration over the 3 non-zero differences */
        CHECK(json_is_true(json_object_get(ax, "exact")) || want[x] == 0);
    }
    json_decref(j);
    free(out);
    free(err);
    /* the human table names both runs and the changed items */
    rc = pt_test_run(&out, &err, "$POLITUNE_BIN compare '%s' '%s' --resamples 200", base, left);
    CHECK(rc == 0 && out && strstr(out, "changed on 3 of 62") && strstr(out, "pc-1"));
    free(out);
    free(err);

    struct { void (*edit)(json_t *); const char *needle; } cases[] = {
        {other_item, "different questionnaires"}, {other_weight, "different scoring rules"}, {other_mode, "generate mode"},
        {other_option_scoring, "mean scoring"}, {no_rule, "no scoring rule"}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        snprintf(bad, sizeof bad, "%s/bad%zu", tmp, k);
        edited_copy(left, bad, cases[k].edit);
        rc = pt_test_run(&out, &err, "$POLITUNE_BIN compare '%s' '%s'", base, bad);
        CHECK_MSG(rc != 0 && err && strstr(err, cases[k].needle) && strstr(err, bad), "case %zu: rc %d, stderr: %s", k, rc, err ? err : "");
        free(out);
        free(err);
    }
    /* no valid answers: the message names the run */
    rc = pt_test_run(&out, &err, "$POLITUNE_BIN compare '%s' '%s'", base, empty);
    CHECK_MSG(rc != 0 && err && strstr(err, "no valid answers") && strstr(err, empty), "rc %d: %s", rc, err ? err : "");
    free(out);
    free(err);
    /* zero resamples, in compare and in compass */
    rc = pt_test_run(&out, &err, "$POLITUNE_BIN compare '%s' '%s' --resamples 0", base, left);
    CHECK(rc == 2 && err && strstr(err, "--resamples"));
    free(out);
    free(err);
    rc = pt_test_run(&out, &err, "$POLITUNE_BIN compass --model '%s' --out '%s/x' --resamples 0", stories(), tmp);
    CHECK(rc == 2 && err && strstr(err, "--resamples"));
    free(out);
    free(err);
    pt_scoring_free(s);
    pt_questionnaire_free(q);
}
