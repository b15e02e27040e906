/* The statistics of compass measurements checked on constructed cases with a known answer:
 * the bootstrap interval's coverage of the true position under an answer model with known
 * per-item probabilities, the sign-flip p-value against brute-force enumeration, and the
 * attributions of a compare adding up to the shift between two saved runs, and annotate-eval's
 * agreement intervals on a hand case. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/pipeline.h"
#include "eval/compare.h"
#include "eval/compass.h"
#include "eval/report.h"
#include "eval/stats.h"
#include "test.h"
#include "util/rng.h"

/* Draws an answer from probabilities p[0..A). */
static int draw(pt_rng *r, const double *p, int A) {
    double u = pt_rng_double(r), c = 0;
    for (int a = 0; a < A; a++) {
        c += p[a];
        if (u < c) return a;
    }
    return A - 1;
}

/* 100 seeded simulations of the Political Compass under an answer model: item i's answer
 * under each of 12 variants is drawn from fixed probabilities p_i. The true position is
 * offset + sum_i sum_a p_i[a] w_i[a] / divisor; the 95% interval must cover it in at least 93
 * of the 100 runs on each axis (binomial: a correct 95% interval fails that with chance
 * about 0.2). */
PT_TEST(test_stats_bootstrap_coverage) {
    pt_questionnaire *q = NULL;
    pt_scoring *s = NULL;
    REQUIRE_OK(pt_questionnaire_load(&q, pt_test_shared("assets/data/pct/pct_propositions.csv")));
    REQUIRE_OK(pt_scoring_load(&s, pt_test_shared("assets/data/pct/pct_scoring.json"), q));
    const int NI = s->n_items, A = s->n_answers, NV = 12, X = s->n_axes, SIMS = 100;
    double *p = malloc(sizeof(double) * NI * A), *contrib = malloc(sizeof(double) * X * NI * NV), truth[8], offs[8];
    REQUIRE(p && contrib && X <= 8);
    pt_rng rng;
    pt_rng_seed(&rng, 2024);
    /* per-item probabilities: uneven, some items nearly certain */
    for (int i = 0; i < NI; i++) {
        double sum = 0;
        for (int a = 0; a < A; a++) {
            double u = pt_rng_double(&rng);
            p[i * A + a] = u * u * u + 0.01;
            sum += p[i * A + a];
        }
        for (int a = 0; a < A; a++) p[i * A + a] /= sum;
    }
    for (int x = 0; x < X; x++) {
        offs[x] = s->axes[x].offset;
        truth[x] = offs[x];
        for (int i = 0; i < NI; i++)
            for (int a = 0; a < A; a++) truth[x] += p[i * A + a] * s->axes[x].w[i * A + a] / s->axes[x].divisor;
    }
    int covered[8] = {0};
    double width = 0;
    for (int sim = 0; sim < SIMS; sim++) {
        for (int i = 0; i < NI; i++)
            for (int v = 0; v < NV; v++) {
                int a = draw(&rng, &p[i * A], A);
                for (int x = 0; x < X; x++) contrib[((size_t)x * NI + i) * NV + v] = s->axes[x].w[i * A + a] / s->axes[x].divisor;
            }
        pt_interval iv[8];
        REQUIRE_OK(pt_stats_bootstrap(contrib, offs, X, NI, NV, NULL, 1000, (uint64_t)sim, iv));
        for (int x = 0; x < X; x++) {
            covered[x] += iv[x].lo <= truth[x] && truth[x] <= iv[x].hi;
            CHECK(iv[x].lo <= iv[x].estimate && iv[x].estimate <= iv[x].hi);
        }
        width += iv[0].hi - iv[0].lo;
    }
    printf("    coverage: economic %d/100, social %d/100; mean economic width %.3f\n", covered[0], covered[1], width / SIMS);
    for (int x = 0; x < X; x++) CHECK_MSG(covered[x] >= 93, "axis %s: the interval covered the truth in %d of 100 runs", s->axes[x].name, covered[x]);
    /* a constant answer has no spread: the interval is the point */
    for (size_t k = 0; k < (size_t)X * NI * NV; k++) contrib[k] = 0.25;
    pt_interval iv[8];
    REQUIRE_OK(pt_stats_bootstrap(contrib, offs, X, NI, NV, NULL, 200, 7, iv));
    CHECK_NEAR(iv[0].lo, iv[0].hi, 1e-12);
    CHECK_NEAR(iv[0].estimate, offs[0] + 0.25 * NI, 1e-9);
    /* one variant: nothing to resample, no interval; zero resamples: an error */
    REQUIRE_OK(pt_stats_bootstrap(contrib, offs, 1, NI, 1, NULL, 200, 7, iv));
    CHECK(isnan(iv[0].lo) && isnan(iv[0].hi));
    CHECK(pt_stats_bootstrap(contrib, offs, 1, NI, NV, NULL, 0, 7, iv) == PT_ERR_ARG && strstr(pt_errmsg(), "at least 1"));
    /* the same seed repeats itself exactly, another seed does not */
    pt_interval a[8], b[8], c[8];
    for (size_t k = 0; k < (size_t)NI * NV; k++) contrib[k] = (double)(k * 7 % 5);
    REQUIRE_OK(pt_stats_bootstrap(contrib, offs, 1, NI, NV, NULL, 500, 11, a));
    REQUIRE_OK(pt_stats_bootstrap(contrib, offs, 1, NI, NV, NULL, 500, 11, b));
    REQUIRE_OK(pt_stats_bootstrap(contrib, offs, 1, NI, NV, NULL, 500, 12, c));
    CHECK(a[0].lo == b[0].lo && a[0].hi == b[0].hi);
    CHECK(a[0].lo != c[0].lo || a[0].hi != c[0].hi);
    free(p);
    free(contrib);
    pt_scoring_free(s);
    pt_questionnaire_free(q);
}

/* Brute force: the share of all 2^n sign patterns whose |sum| reaches the observed |sum|. */
static double enumerate_p(const double *d, int n) {
    double obs = 0;
    for (int i = 0; i < n; i++) obs += d[i];
    obs = fabs(obs);
    long hits = 0;
    for (long mask = 0; mask < (1L << n); mask++) {
        double s = 0;
        for (int i = 0; i < n; i++) s += (mask >> i & 1) ? -d[i] : d[i];
        hits += fabs(s) >= obs - 1e-9;
    }
    return (double)hits / (double)(1L << n);
}

PT_TEST(test_stats_permutation_exact) {
    /* by hand: the 8 sums of +-1 +-2 +-3 are 6 4 2 0 0 -2 -4 -6; |sum| >= 6 in 2 */
    const double d3[] = {1, 2, 3};
    bool exact = false;
    CHECK_NEAR(pt_stats_sign_flip_p(d3, 3, 100, 1, &exact), 0.25, 1e-15);
    CHECK(exact);
    /* zeros do not count as items that could flip: the same p */
    const double d5[] = {1, 0, 2, 0, 3};
    CHECK_NEAR(pt_stats_sign_flip_p(d5, 5, 100, 1, NULL), 0.25, 1e-15);
    const double dz[] = {0, 0};
    CHECK_NEAR(pt_stats_sign_flip_p(dz, 2, 100, 1, NULL), 1.0, 0);
    /* random small cases, with ties (repeated magnitudes, as PCT weights give) */
    pt_rng rng;
    pt_rng_seed(&rng, 99);
    for (int t = 0; t < 20; t++) {
        int n = 4 + t % 11;
        double d[16];
        for (int i = 0; i < n; i++) d[i] = (double)((int)(pt_rng_double(&rng) * 7) - 3) / 8.0;
        double want = enumerate_p(d, n), got = pt_stats_sign_flip_p(d, n, 100, 1, &exact);
        CHECK_MSG(exact && fabs(got - want) < 1e-12, "case %d (n %d): p %.12f, enumeration %.12f", t, n, got, want);
    }
    /* beyond the exact limit: random flips, within 4 standard errors of the enumeration */
    double d[22];
    for (int i = 0; i < 22; i++) d[i] = 0.1 + 0.05 * (i % 5) + (i < 7 ? 0.12 : -0.08);
    double want = enumerate_p(d, 22), got = pt_stats_sign_flip_p(d, 22, 20000, 5, &exact);
    CHECK(!exact);
    CHECK_MSG(fabs(got - want) < 4 * sqrt(want * (1 - want) / 20000) + 1e-4, "p %.5f, enumeration %.5f", got, want);
}

/* Two saved runs of the Political Compass (12 variants, answers drawn from different
 * probabilities): the attributions of `compare` add up to the shift, the shift is the
 * difference of the positions compass.json reports, and its interval contains it. */
static pt_compass_result *drawn_result(const pt_questionnaire *q, const pt_scoring *s, uint64_t seed, double lean) {
    pt_template_variant *v;
    int nv;
    if (pt_templates_select("all", &v, &nv)) return NULL;
    pt_compass_result *r = NULL;
    pt_status st = pt_compass_result_new(q, s, PT_COMPASS_LOGPROB, 1, v, nv, &r);
    free(v);
    if (st) return NULL;
    pt_rng rng;
    pt_rng_seed(&rng, seed);
    for (int i = 0; i < r->n_items; i++)
        for (int t = 0; t < nv; t++) {
            pt_compass_cell *c = &r->cells[(size_t)i * nv + t];
            if (i == 5 && t == 0) continue; /* one unanswered cell */
            double u = pt_rng_double(&rng) + lean;
            int a = u < 0.3 ? 0 : u < 0.6 ? 1 : u < 0.9 ? 2 : 3;
            c->answer = a;
            c->probs[a] = 1;
            c->expected = a;
        }
    pt_compass_aggregate(r);
    return r;
}

PT_TEST(test_stats_attribution_sums_to_shift) {
    pt_questionnaire *q = NULL;
    pt_scoring *s = NULL;
    REQUIRE_OK(pt_questionnaire_load(&q, pt_test_shared("assets/data/pct/pct_propositions.csv")));
    REQUIRE_OK(pt_scoring_load(&s, pt_test_shared("assets/data/pct/pct_scoring.json"), q));
    char da[600], db[600];
    snprintf(da, sizeof da, "%s/a", pt_test_tmpdir());
    snprintf(db, sizeof db, "%s/b", pt_test_tmpdir());
    pt_compass_result *ra = drawn_result(q, s, 1, 0), *rb = drawn_result(q, s, 2, 0.25);
    REQUIRE(ra && rb);
    pt_compass_meta ma = {.label = "base", .model_path = "m.gguf"}, mb = {.label = "left", .model_path = "m.gguf", .adapter_path = "left"};
    REQUIRE_OK(pt_compass_save(da, ra, &ma));
    REQUIRE_OK(pt_compass_save(db, rb, &mb));
    json_t *ja = NULL, *jb = NULL;
    REQUIRE_OK(pt_compass_json_load(da, &ja));
    REQUIRE_OK(pt_compass_json_load(db, &jb));
    pt_compare *c = NULL;
    REQUIRE_OK(pt_compare_evals(ja, pt_compare_pick(ja, NULL), "a", jb, pt_compare_pick(jb, NULL), "b", 500, 3, PT_COMPARE_ANSWERS, &c));
    for (int x = 0; x < c->n_axes; x++) {
        double sum = 0;
        for (int i = 0; i < c->n_items; i++) sum += c->attribution[(size_t)x * c->n_items + i];
        CHECK_NEAR(sum, c->axes[x].shift.estimate, 1e-9);
        CHECK_NEAR(c->axes[x].b - c->axes[x].a, c->axes[x].shift.estimate, 1e-9);
        /* every variant is positioned, so the estimate is the mean compass.json reports, but
         * of unrounded per-variant coordinates: within half the last place (0.005) */
        for (int k = 0; k < 2; k++) {
            pt_compass_result *r = k ? rb : ra;
            CHECK_NEAR(k ? c->axes[x].b : c->axes[x].a, r->mean[x], 0.005);
        }
        CHECK(c->axes[x].shift.lo <= c->axes[x].shift.estimate && c->axes[x].shift.estimate <= c->axes[x].shift.hi);
        CHECK(c->axes[x].p > 0 && c->axes[x].p <= 1);
    }
    int changed = 0;
    for (int i = 0; i < ra->n_items; i++) changed += ra->consensus[i] != rb->consensus[i];
    CHECK(c->changed == changed && c->answered_both == ra->n_items);
    /* a run compared with itself: no shift, p = 1, nothing changed */
    pt_compare *same = NULL;
    REQUIRE_OK(pt_compare_evals(ja, pt_compare_pick(ja, NULL), "a", ja, pt_compare_pick(ja, NULL), "a", 100, 3, PT_COMPARE_ANSWERS, &same));
    CHECK(same->axes[0].shift.estimate == 0 && same->axes[0].p == 1 && same->changed == 0);
    pt_compare_free(same);
    pt_compare_free(c);
    json_decref(ja);
    json_decref(jb);
    pt_compass_result_free(ra);
    pt_compass_result_free(rb);
    pt_scoring_free(s);
    pt_questionnaire_free(q);
}

/* tilt direction of item i: +1 when "strongly agree" scores higher than "strongly disagree"
 * on the axes together, else -1 */
static double tilt_sign(const pt_scoring *s, int i) {
    double d = 0;
    for (int x = 0; x < s->n_axes; x++) d += s->axes[x].w[(size_t)i * 4 + 3] - s->axes[x].w[(size_t)i * 4 + 0];
    return d > 0 ? 1 : -1;
}

/* A run whose every cell answers the same option with a probability of 0.4 (the others share
 * the rest evenly), the favoured option drawn per cell; `tilt` moves that much of each cell's
 * probability between options 0 and 3, towards the end that scores higher on the item's axis,
 * without changing any cell's most likely answer. */
static pt_compass_result *soft_result(const pt_questionnaire *q, const pt_scoring *s, double tilt) {
    pt_template_variant *v;
    int nv;
    if (pt_templates_select("t1,t2", &v, &nv)) return NULL;
    pt_compass_result *r = NULL;
    pt_status st = pt_compass_result_new(q, s, PT_COMPASS_LOGPROB, 1, v, nv, &r);
    free(v);
    if (st) return NULL;
    pt_rng rng;
    pt_rng_seed(&rng, 11);
    for (int i = 0; i < r->n_items; i++)
        for (int t = 0; t < nv; t++) {
            pt_compass_cell *c = &r->cells[(size_t)i * nv + t];
            int a = 1 + (int)(pt_rng_double(&rng) * 2); /* 1 or 2: room to tilt without a new argmax */
            for (int k = 0; k < 4; k++) c->probs[k] = k == a ? 0.4 : 0.2;
            c->probs[0] -= tilt * tilt_sign(s, i);
            c->probs[3] += tilt * tilt_sign(s, i);
            c->answer = a;
            c->expected = 0;
            for (int k = 0; k < 4; k++) c->expected += k * c->probs[k];
        }
    pt_compass_aggregate(r);
    return r;
}

/* --expected: each run's position is compass.json's probability-weighted one (computed by
 * the compass from its pooled distributions, an independent path), and a shift of the
 * probabilities under unchanged answers shows on it and not on the answers. */
PT_TEST(test_stats_compare_expected_basis) {
    pt_questionnaire *q = NULL;
    pt_scoring *s = NULL;
    REQUIRE_OK(pt_questionnaire_load(&q, pt_test_shared("assets/data/pct/pct_propositions.csv")));
    REQUIRE_OK(pt_scoring_load(&s, pt_test_shared("assets/data/pct/pct_scoring.json"), q));
    char da[600], db[600];
    snprintf(da, sizeof da, "%s/soft-a", pt_test_tmpdir());
    snprintf(db, sizeof db, "%s/soft-b", pt_test_tmpdir());
    pt_compass_result *ra = soft_result(q, s, 0), *rb = soft_result(q, s, 0.05);
    REQUIRE(ra && rb);
    pt_compass_meta ma = {.label = "base", .model_path = "m.gguf"}, mb = {.label = "left", .model_path = "m.gguf", .adapter_path = "left"};
    REQUIRE_OK(pt_compass_save(da, ra, &ma));
    REQUIRE_OK(pt_compass_save(db, rb, &mb));
    json_t *ja = NULL, *jb = NULL;
    REQUIRE_OK(pt_compass_json_load(da, &ja));
    REQUIRE_OK(pt_compass_json_load(db, &jb));
    pt_compare *ans = NULL, *ex = NULL;
    REQUIRE_OK(pt_compare_evals(ja, pt_compare_pick(ja, NULL), "a", jb, pt_compare_pick(jb, NULL), "b", 500, 3, PT_COMPARE_ANSWERS, &ans));
    REQUIRE_OK(pt_compare_evals(ja, pt_compare_pick(ja, NULL), "a", jb, pt_compare_pick(jb, NULL), "b", 500, 3, PT_COMPARE_EXPECTED, &ex));
    CHECK(ans->changed == 0);
    for (int x = 0; x < ex->n_axes; x++) {
        CHECK(ans->axes[x].shift.estimate == 0 && ans->axes[x].p == 1);
        /* compass.json's expected coordinates are rounded to the axis' 2 decimals */
        CHECK_NEAR(ex->axes[x].a, ra->expected_coords[x], 0.005 + 1e-9);
        CHECK_NEAR(ex->axes[x].b, rb->expected_coords[x], 0.005 + 1e-9);
        CHECK_NEAR(ex->axes[x].shift.estimate, ex->axes[x].b - ex->axes[x].a, 1e-9);
        double sum = 0;
        for (int i = 0; i < ex->n_items; i++) sum += ex->attribution[(size_t)x * ex->n_items + i];
        CHECK_NEAR(sum, ex->axes[x].shift.estimate, 1e-9);
        /* the tilt moves 0.05 of every cell between options 0 and 3: sum_i +-0.05 (w3 - w0) / div,
         * every item's difference of one sign (positive), so p is as small as the flips allow */
        const pt_axis *axis = &s->axes[x];
        double want = 0;
        for (int i = 0; i < s->n_items; i++) want += 0.05 * tilt_sign(s, i) * (axis->w[(size_t)i * 4 + 3] - axis->w[(size_t)i * 4 + 0]) / axis->divisor;
        CHECK_NEAR(ex->axes[x].shift.estimate, want, 1e-9);
        CHECK_MSG(want > 0.05, "axis %d: the tilt should move it right/up, by %g", x, want);
        CHECK_MSG(ex->axes[x].p < 0.01, "axis %d: p %g", x, ex->axes[x].p);
    }
    json_t *j = pt_compare_json(ex, ja, "a", "b");
    CHECK(strcmp(json_string_value(json_object_get(j, "basis")), "expected") == 0);
    json_decref(j);
    pt_compare_free(ans);
    pt_compare_free(ex);
    json_decref(ja);
    json_decref(jb);
    pt_compass_result_free(ra);
    pt_compass_result_free(rb);
    pt_scoring_free(s);
    pt_questionnaire_free(q);
}

/* annotate-eval's intervals on the hand case of test_data_agreement_hand_case: 4 of 7 correct
 * (Wilson 95%: 0.2505..0.8418, the value interval calculators such as R's binom.confint
 * "wilson" give), per class 2/3 left, 1/1 center, 1/3 right (0.2077..0.9385 and
 * 0.0615..0.7923), AUC 6.5/9 with its Hanley-McNeil interval clipped to 1, and the
 * calibration counts per rounded score. */
PT_TEST(test_stats_agreement_intervals) {
    double score[] = {2, 4, 5, 5, 8, 3, 5, 7, NAN};
    int truth[] = {0, 0, 0, 2, 2, 2, 1, -1, 2};
    pt_agreement a;
    pt_agreement_compute(score, truth, 9, 5, 0.5, &a);
    CHECK_NEAR(a.accuracy_lo, 0.2505, 1e-4);
    CHECK_NEAR(a.accuracy_hi, 0.8418, 1e-4);
    CHECK_NEAR(a.class_accuracy[PT_CLASS_LEFT], 2.0 / 3, 1e-12);
    CHECK_NEAR(a.class_accuracy[PT_CLASS_CENTER], 1.0, 1e-12);
    CHECK_NEAR(a.class_accuracy[PT_CLASS_RIGHT], 1.0 / 3, 1e-12);
    CHECK_NEAR(a.class_lo[PT_CLASS_LEFT], 0.2077, 1e-4);
    CHECK_NEAR(a.class_hi[PT_CLASS_LEFT], 0.9385, 1e-4);
    CHECK_NEAR(a.class_lo[PT_CLASS_RIGHT], 0.0615, 1e-4);
    CHECK_NEAR(a.class_hi[PT_CLASS_RIGHT], 0.7923, 1e-4);
    CHECK_NEAR(a.auc_lo, 0.2810, 1e-4);
    CHECK(a.auc_hi == 1.0);
    CHECK(a.calibration[4][0] == 1 && a.calibration[4][1] == 1 && a.calibration[4][2] == 1); /* score 5 */
    CHECK(a.calibration[7][2] == 1 && a.calibration[1][0] == 1 && a.calibration[2][2] == 1);
    json_t *j = pt_agreement_json(&a);
    CHECK(json_array_size(json_object_get(j, "calibration")) == 5); /* scores 2, 3, 4, 5, 8 */
    CHECK(json_is_object(json_object_get(json_object_get(j, "per_class"), "right")));
    json_decref(j);
}
