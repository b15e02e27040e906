/* The reply option scoring (issue #11): the prompt lists no options, so a model cannot answer
 * by an option's place in the list (SmolLM2-135M-Instruct answered the digit "1" to every
 * item under the numbered prompt, and the first- or last-listed label under the label
 * scorings); each option is scored as the whole reply built from its label, by the mean
 * log-probability per token. These tests check the reply rule, that the prompt carries no
 * label, number or order, that each score equals the mean token log-probability computed
 * from scratch by pt_score, that a planted preference for one kind of reply moves the
 * answers, and the messages for labels without a reply and for generate mode. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/compass.h"
#include "eval/compass_impl.h"
#include "internal.h"
#include "model/steer.h"
#include "test.h"

#define STORIES "assets/models/stories260K/stories260K.gguf"

static const char *const PCT_LABELS[] = {"Strongly disagree", "Disagree", "Agree", "Strongly agree"};
/* the replies the documented rule gives for them, written out rather than computed */
static const char *const PCT_REPLIES[] = {"I strongly disagree with this statement.", "I disagree with this statement.",
                                          "I agree with this statement.", "I strongly agree with this statement."};

PT_TEST(test_compass_reply_rule) {
    for (int k = 0; k < 4; k++) {
        char *r = NULL;
        CHECK_OK(pt_template_reply(PCT_LABELS[k], &r));
        CHECK_MSG(r && !strcmp(r, PCT_REPLIES[k]), "'%s' -> '%s'", PCT_LABELS[k], r ? r : "(null)");
        free(r);
    }
    /* 8values: the agree/disagree labels become sentences, the middle one stays itself */
    static const struct { const char *label, *reply; } cases[] = {
        {"Neutral/Unsure", "Neutral/Unsure."},
        {"  Somewhat  AGREE ", "I somewhat agree with this statement."},
        {"Yes!", "Yes!"},
        {"Agree?", "Agree?"},               /* not letters only: the label itself */
        {"Disagreeable", "Disagreeable."}, /* the last word must be the verb itself */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *r = NULL;
        CHECK_OK(pt_template_reply(cases[i].label, &r));
        CHECK_MSG(r && !strcmp(r, cases[i].reply), "'%s' -> '%s', want '%s'", cases[i].label, r ? r : "(null)", cases[i].reply);
        free(r);
    }
    static const char *const empty[] = {"", "   ", "--", " ?! "};
    for (size_t i = 0; i < sizeof empty / sizeof empty[0]; i++) {
        char *r = NULL;
        CHECK(pt_template_reply(empty[i], &r) == PT_ERR_ARG && !r);
        CHECK_MSG(strstr(pt_errmsg(), "empty reply"), "%s", pt_errmsg());
    }
}

/* The reply prompt is one text per template: the same for both option orders and whatever
 * the labels are, with no label and no option number in it. The same checks on the label
 * prompt show they can fail. */
PT_TEST(test_compass_reply_prompt_lists_nothing) {
    static const char *const other[] = {"Alpha", "Bravo", "Charlie", "Delta"};
    static const char *const eight[] = {"Strongly agree", "Agree", "Neutral/Unsure", "Disagree", "Strongly disagree"};
    const char *statement = "Water is wet.";
    for (int t = 0; t < pt_templates_count(); t++) {
        pt_template_variant fwd = {t, false, "f", false}, rev = {t, true, "r", false}, un = {t, false, "u", true};
        char *p[5] = {0};
        REQUIRE_OK(pt_template_render(&fwd, PT_TASK_REPLY, statement, PCT_LABELS, 4, &p[0]));
        REQUIRE_OK(pt_template_render(&rev, PT_TASK_REPLY, statement, PCT_LABELS, 4, &p[1]));
        REQUIRE_OK(pt_template_render(&un, PT_TASK_REPLY, statement, other, 4, &p[2]));
        REQUIRE_OK(pt_template_render(&fwd, PT_TASK_REPLY, statement, eight, 5, &p[3]));
        REQUIRE_OK(pt_template_render(&fwd, PT_TASK_LOGPROB, statement, other, 4, &p[4]));
        for (int i = 1; i < 4; i++) CHECK_MSG(!strcmp(p[0], p[i]), "t%d: reply prompts differ:\n%s\n---\n%s", t + 1, p[0], p[i]);
        for (int k = 0; k < 4; k++) {
            CHECK_MSG(!strstr(p[0], PCT_LABELS[k]), "t%d: the reply prompt names '%s'", t + 1, PCT_LABELS[k]);
            CHECK(!strstr(p[2], other[k]));
            CHECK(strstr(p[4], other[k])); /* the label prompt lists them */
        }
        CHECK(!strstr(p[3], "Neutral"));
        CHECK_MSG(!strpbrk(p[0], "0123456789"), "t%d: the reply prompt has a number: %s", t + 1, p[0]);
        CHECK(strstr(p[0], statement));
        for (int i = 0; i < 5; i++) free(p[i]);
    }
    /* selection: one variant per template, whichever orders were asked */
    pt_compass_config cfg = pt_compass_config_default();
    cfg.option_scoring = PT_OPTION_REPLY;
    cfg.templates = "t2-rev,t1,t5-fwd,t2-fwd";
    pt_template_variant *v = NULL;
    int n = 0;
    REQUIRE_OK(pt_compass_variants(&cfg, &v, &n));
    CHECK(n == 3);
    if (n == 3) {
        CHECK(!strcmp(v[0].id, "t1") && !strcmp(v[1].id, "t2") && !strcmp(v[2].id, "t5"));
        for (int i = 0; i < 3; i++) CHECK(v[i].unlisted && !v[i].reversed);
    }
    free(v);
    cfg.option_scoring = PT_OPTION_NUMBER;
    REQUIRE_OK(pt_compass_variants(&cfg, &v, &n));
    CHECK(n == 5); /* the other scorings keep each order asked */
    free(v);
}

/* log P(cont | prompt) from scratch: a fresh prefill of the whole text, no prefix sharing. */
static double score_from_scratch(pt_engine *e, const int32_t *w, size_t shared, size_t upto) {
    const int32_t *pr = w, *co = w + shared;
    int npr = (int)shared, nco = (int)(upto - shared);
    double lp = 0;
    CHECK_OK(pt_score(e, 1, &pr, &npr, &co, &nco, &lp, NULL));
    return lp;
}

/* Each option's score against pt_score on stories260K: the reply's summed token log-probs
 * after the reply prompt (chat-wrapped as the compass does), divided by its token count.
 * Tolerance 2e-4 relative, as for the other scorings (float32 logits, batched vs single).
 * Also: under --compare-scorings the reply answers are computed once per template and are
 * the same in both orders' cells, and equal the reply run's own answers. */
PT_TEST(test_compass_reply_values_match_pt_score) {
    int threads = pt_backend_threads();
    pt_backend_set_threads(1);
    pt_model *m = NULL;
    pt_questionnaire *q = NULL;
    pt_scoring *s = NULL;
    REQUIRE_OK(pt_model_load(&m, pt_test_shared(STORIES)));
    REQUIRE_OK(pt_questionnaire_load(&q, pt_test_shared("assets/data/pct/pct_propositions.csv")));
    REQUIRE_OK(pt_scoring_load(&s, pt_test_shared("assets/data/pct/pct_scoring.json"), q));
    int n_keep = q->n_items;
    q->n_items = s->n_items = 3;
    pt_compass_config cfg = pt_compass_config_default();
    cfg.templates = "t2,t5";
    cfg.option_scoring = PT_OPTION_REPLY;
    cfg.batch = 2;
    pt_compass_result *r = NULL, *cmp = NULL;
    CHECK_OK(pt_compass_run(m, NULL, q, s, &cfg, &r));
    REQUIRE(r);
    REQUIRE(r->n_variants == 2 && r->option_scoring == PT_OPTION_REPLY);
    CHECK(r->n_prefills == 3 * 2); /* one prefill per item and template, shared by the four replies */
    pt_engine *e = NULL;
    REQUIRE_OK(pt_engine_new(&e, m, 1, 512));
    int checked = 0;
    for (int it = 0; it < 3; it++)
        for (int v = 0; v < 2; v++) {
            const pt_compass_cell *c = &r->cells[(size_t)it * 2 + v];
            char *user = NULL;
            int32_t *p = NULL, *w[4] = {0};
            size_t np = 0, nw[4] = {0};
            REQUIRE_OK(pt_template_render(&r->variants[v], PT_TASK_REPLY, q->items[it].statement, PCT_LABELS, 4, &user));
            REQUIRE_OK(pt_eval_encode_chat(m, PT_CHAT_ALPACA, NULL, user, NULL, &p, &np));
            size_t shared = np;
            for (int k = 0; k < 4; k++) {
                REQUIRE_OK(pt_eval_encode_chat(m, PT_CHAT_ALPACA, NULL, user, PCT_REPLIES[k], &w[k], &nw[k]));
                size_t l = 0;
                while (l < np && l < nw[k] && p[l] == w[k][l]) l++;
                if (l < shared) shared = l;
            }
            double z = 0, best = -INFINITY;
            int arg = -1;
            for (int k = 0; k < 4; k++) {
                REQUIRE(nw[k] > shared + 3); /* a sentence, not a token */
                double mean = score_from_scratch(e, w[k], shared, nw[k]) / (double)(nw[k] - shared);
                CHECK_NEAR(c->logprobs[k], mean, 2e-4 * (1 + fabs(mean)));
                z += exp(mean);
                if (mean > best) { best = mean; arg = k; }
                checked++;
            }
            CHECK(c->answer == arg);
            for (int k = 0; k < 4; k++) CHECK_NEAR(c->probs[k], exp(c->logprobs[k]) / z, 1e-4);
            for (int k = 0; k < 4; k++) free(w[k]);
            free(p);
            free(user);
        }
    CHECK(checked == 3 * 2 * 4);
    /* the reply scoring beside the default one: both orders of t2 share the reply prompt */
    cfg.option_scoring = PT_OPTION_NUMBER;
    cfg.templates = "t2,t5";
    cfg.compare_scorings = true;
    CHECK_OK(pt_compass_run(m, NULL, q, s, &cfg, &cmp));
    if (cmp) {
        REQUIRE(cmp->n_variants == 4 && cmp->scorings_compared);
        for (int it = 0; it < 3; it++)
            for (int v = 0; v < 4; v++) {
                const int want = r->cells[(size_t)it * 2 + v / 2].answer;
                CHECK_MSG(cmp->cells[(size_t)it * 4 + v].scoring_answers[PT_OPTION_REPLY] == want, "item %d variant %s", it, cmp->variants[v].id);
            }
    }
    pt_engine_free(e);
    pt_compass_result_free(r);
    pt_compass_result_free(cmp);
    q->n_items = s->n_items = n_keep;
    pt_scoring_free(s);
    pt_questionnaire_free(q);
    pt_model_free(m);
    pt_backend_set_threads(threads);
}

/* Share of answered cells on the agree side (answer 2 or 3 of 4). */
static double agree_share(const pt_compass_result *r) {
    int agree = 0, n = 0;
    for (size_t i = 0; i < (size_t)r->n_items * r->n_variants; i++) {
        if (r->cells[i].answer < 0) continue;
        n++;
        agree += r->cells[i].answer >= 2;
    }
    return n ? (double)agree / n : NAN;
}

/* A planted preference moves the answers: a steering vector at the last layer along the
 * output row of a token that only the "disagree" replies contain raises (or, negated,
 * lowers) those replies' probability and nothing about the prompt. Aimed at the side the
 * model answers less, it must bring that side to at least 90% of the cells. A scoring that
 * ignored the reply text would give the same answers with and without the tilt. */
PT_TEST(test_compass_reply_planted_bias_moves_answers) {
    int threads = pt_backend_threads();
    pt_backend_set_threads(1);
    pt_model *m = NULL;
    pt_questionnaire *q = NULL;
    pt_scoring *s = NULL;
    REQUIRE_OK(pt_model_load(&m, pt_test_shared(STORIES)));
    REQUIRE(m->output.dtype == PT_F32);
    REQUIRE_OK(pt_questionnaire_load(&q, pt_test_shared("assets/data/pct/pct_propositions.csv")));
    REQUIRE_OK(pt_scoring_load(&s, pt_test_shared("assets/data/pct/pct_scoring.json"), q));
    int n_keep = q->n_items;
    q->n_items = s->n_items = 12;
    pt_compass_config cfg = pt_compass_config_default();
    cfg.templates = "t1,t3";
    cfg.option_scoring = PT_OPTION_REPLY;
    pt_compass_result *base = NULL, *tilted = NULL;
    CHECK_OK(pt_compass_run(m, NULL, q, s, &cfg, &base));
    REQUIRE(base);
    const double base_agree = agree_share(base);
    /* a token of "I disagree ..." that "I agree ..." lacks, as the compass tokenises them */
    int32_t *wd = NULL, *wa = NULL;
    size_t nd = 0, na = 0;
    REQUIRE_OK(pt_eval_encode_chat(m, PT_CHAT_ALPACA, NULL, "x", PCT_REPLIES[1], &wd, &nd));
    REQUIRE_OK(pt_eval_encode_chat(m, PT_CHAT_ALPACA, NULL, "x", PCT_REPLIES[2], &wa, &na));
    size_t shared = 0;
    while (shared < nd && shared < na && wd[shared] == wa[shared]) shared++;
    int32_t dis = -1;
    for (size_t i = shared; i < nd && dis < 0; i++) {
        bool in_agree = false;
        for (size_t j = shared; j < na; j++) in_agree |= wa[j] == wd[i];
        if (!in_agree) dis = wd[i];
    }
    free(wd);
    free(wa);
    REQUIRE(dis >= 0);
    const int L = m->cfg.n_layers, D = m->cfg.dim;
    pt_steer *st = NULL;
    REQUIRE_OK(pt_steer_new(&st, L, D));
    const float *row = (const float *)m->output.data + (size_t)dis * D;
    double norm = 0;
    for (int k = 0; k < D; k++) norm += (double)row[k] * row[k];
    norm = sqrt(norm);
    REQUIRE(norm > 0);
    for (int k = 0; k < D; k++) st->v[(size_t)(L - 1) * D + k] = (float)(row[k] / norm);
    st->has[L - 1] = true;
    /* toward the side the base answers less: + raises the disagree replies, - lowers them */
    const bool to_agree = base_agree < 0.5;
    cfg.steer = st;
    cfg.steer_scale = to_agree ? -50.0f : 50.0f;
    CHECK_OK(pt_compass_run(m, NULL, q, s, &cfg, &tilted));
    if (tilted) {
        const double got = agree_share(tilted);
        printf("    base agree share %.2f, tilted toward %s: %.2f\n", base_agree, to_agree ? "agree" : "disagree", got);
        if (to_agree) CHECK_MSG(got >= 0.9, "tilted toward agree: %.2f of the cells", got);
        else CHECK_MSG(got <= 0.1, "tilted toward disagree: %.2f of the cells agree", got);
        int changed = 0;
        for (size_t i = 0; i < (size_t)12 * 2; i++) changed += base->cells[i].answer != tilted->cells[i].answer;
        CHECK(changed > 0);
    }
    pt_compass_result_free(base);
    pt_compass_result_free(tilted);
    pt_steer_free(st);
    q->n_items = s->n_items = n_keep;
    pt_scoring_free(s);
    pt_questionnaire_free(q);
    pt_model_free(m);
    pt_backend_set_threads(threads);
}

/* Lines in a message (a trailing newline ends the last one). */
static int n_lines(const char *t) {
    int n = 0;
    for (; t && *t; t++) n += *t == '\n';
    return n;
}

/* Bad input, through the CLI: labels that make an empty reply or two equal replies, and the
 * reply scoring with generate mode, each one line and a non-zero exit, nothing written. */
PT_TEST(test_compass_reply_bad_input) {
    const char *dir = pt_test_tmpdir();
    pt_test_write(dir, "q.txt", "Water is wet.\nFire is hot.\n");
    pt_test_write(dir, "empty.json",
                  "{\"answers\": [\"--\", \"Agree\"], \"ids\": [\"1\", \"2\"], \"axes\": [{\"name\": \"x\", \"poles\": [\"a\", \"b\"], "
                  "\"offset\": 0, \"divisor\": 1, \"decimals\": 2, \"range\": [-2, 2], \"weights\": [[-1, 1], [-1, 1]]}]}\n");
    pt_test_write(dir, "same.json",
                  "{\"answers\": [\"Agree\", \" agree\"], \"ids\": [\"1\", \"2\"], \"axes\": [{\"name\": \"x\", \"poles\": [\"a\", \"b\"], "
                  "\"offset\": 0, \"divisor\": 1, \"decimals\": 2, \"range\": [-2, 2], \"weights\": [[-1, 1], [-1, 1]]}]}\n");
    static const struct { const char *scoring, *extra, *want; int rc; } cases[] = {
        {"empty.json", "", "'--' gives an empty reply", 2},
        {"same.json", "", "give the same reply", 2},
        {"empty.json", "--mode generate", "generate mode", 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL, *err = NULL;
        int rc = pt_test_run(&out, &err,
                             "$POLITUNE_BIN compass --model %s --questionnaire %s/q.txt --scoring %s/%s --option-scoring reply %s "
                             "--no-open-prompts --out %s/out%zu",
                             pt_test_shared(STORIES), dir, dir, cases[i].scoring, cases[i].extra, dir, i);
        CHECK_MSG(rc == cases[i].rc, "case %zu: exit %d, want %d (%s)", i, rc, cases[i].rc, err ? err : "");
        CHECK_MSG(err && strstr(err, cases[i].want) && n_lines(err) == 1, "case %zu: %s", i, err ? err : "(none)");
        if (i < 2) CHECK_MSG(err && strstr(err, cases[i].scoring), "case %zu names no file: %s", i, err ? err : "");
        char *j = pt_test_read(dir, i == 0 ? "out0/compass.json" : i == 1 ? "out1/compass.json" : "out2/compass.json");
        CHECK(!j);
        free(j);
        free(out);
        free(err);
    }
}

/* A run split into parts (compass --shard i/n, then --merge) selects its variants as one run
 * does, one per template: the merged files equal the single run's byte for byte. */
PT_TEST(test_compass_reply_parts_merge) {
    const char *dir = pt_test_tmpdir();
    char args[1024];
    snprintf(args, sizeof args, "compass --threads 1 --model '%s' --templates t1,t2-fwd --option-scoring reply --no-open-prompts",
             pt_test_shared(STORIES));
    char *err = NULL;
    int rc = pt_test_run(NULL, &err, "cd '%s' && \"$POLITUNE_BIN\" %s --out one", dir, args);
    CHECK_MSG(rc == 0, "one process: exit %d: %s", rc, err ? err : "");
    free(err), err = NULL;
    for (int i = 0; i < 2; i++) {
        rc = pt_test_run(NULL, &err, "cd '%s' && \"$POLITUNE_BIN\" %s --shard %d/2 --out parts", dir, args, i);
        CHECK_MSG(rc == 0, "part %d: exit %d: %s", i, rc, err ? err : "");
        free(err), err = NULL;
    }
    rc = pt_test_run(NULL, &err, "cd '%s' && \"$POLITUNE_BIN\" %s --merge parts --out merged", dir, args);
    CHECK_MSG(rc == 0, "merge: exit %d: %s", rc, err ? err : "");
    free(err);
    char *a = pt_test_read(dir, "one/compass.json"), *b = pt_test_read(dir, "merged/compass.json");
    CHECK_MSG(a && b && !strcmp(a, b), "compass.json differs between one process and the merged parts");
    json_t *doc = a ? json_loads(a, 0, NULL) : NULL;
    json_t *tpl = json_object_get(json_array_get(json_object_get(doc, "evaluations"), 0), "templates");
    CHECK(json_array_size(tpl) == 2 && !strcmp(json_string_value(json_array_get(tpl, 0)) ?: "", "t1") &&
          !strcmp(json_string_value(json_array_get(tpl, 1)) ?: "", "t2"));
    json_decref(doc);
    free(a);
    free(b);
}
