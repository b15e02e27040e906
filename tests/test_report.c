/* The compass chart and the HTML report: the SVG is well-formed XML (checked by a small
 * parser here, and by xmllint when installed) with each point at the pixel the layout
 * contract gives for its coordinates; `politune report` builds one self-contained page
 * from several result directories (chart, answers side by side, items that moved, invalid
 * rates) and rejects what it cannot read. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/compass.h"
#include "eval/report.h"
#include "eval/svg.h"
#include "test.h"
#include "test_report_xml.h"
#include "util/file.h"

static const pt_svg_chart pct_chart = {"Political Compass", "economic", "social", "Left", "Right", "Libertarian", "Authoritarian",
                                       -10, 10, -10, 10, true};

PT_TEST(test_report_xml_checker_rejects_bad_xml) {
    xml_doc d;
    CHECK(xml_check("<a><b x=\"1\"/></a>", &d) == NULL);
    free(d.elems);
    static const char *const bad[] = {"<a><b></a>", "<a x=1/>", "<a>&nope;</a>", "<a></a><b/>", "<a x=\"<\"/>", "<a>", "<a x=\"1\" x=\"2\"/>"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_MSG(xml_check(bad[i], &d) != NULL, "accepted %s", bad[i]);
        free(d.elems);
    }
}

/* Known coordinates land at the pixel the layout gives (left 80, top 50, 440 px square). */
PT_TEST(test_report_svg_point_pixels) {
    double px[] = {-2.38, 0, 10, -10, 5.5}, py[] = {-4.15, 0, 10, -10, 12};
    const char *sx[] = {"-2.38", "0.00", "10.00", "-10.00", "5.50"}, *sy[] = {"-4.15", "0.00", "10.00", "-10.00", "12.00"};
    pt_svg_series series[5];
    for (int i = 0; i < 5; i++) series[i] = (pt_svg_series){.label = i == 0 ? "gpt <3.5> & \"friends\"" : "m", .n = 1, .x = &px[i], .y = &py[i]};
    char *svg = NULL;
    REQUIRE_OK(pt_svg_compass(&pct_chart, series, 5, true, &svg));
    xml_doc d;
    const char *err = xml_check(svg, &d);
    CHECK_MSG(err == NULL, "SVG is not well-formed: %s", err ? err : "");
    CHECK(d.n_elems > 0 && !strcmp(d.elems[0].name, "svg") && xml_attr(&d.elems[0], "xmlns"));
    for (int i = 0; i < 5; i++) {
        const xml_elem *e = xml_find_point(&d, sx[i], sy[i]);
        CHECK_MSG(e, "no point for (%s, %s)", sx[i], sy[i]);
        if (!e) continue;
        double want_x = 80 + (px[i] + 10) / 20 * 440, want_y = 50 + 440 - (fmin(py[i], 10) + 10) / 20 * 440; /* clamped to the border */
        CHECK_NEAR(atof(xml_attr(e, "cx")), want_x, 0.006);
        CHECK_NEAR(atof(xml_attr(e, "cy")), want_y, 0.006);
    }
    /* (-2.38, -4.15): 80 + 7.62 * 22 = 247.64, 490 - 5.85 * 22 = 361.30 */
    const xml_elem *g = xml_find_point(&d, "-2.38", "-4.15");
    CHECK(g && !strcmp(xml_attr(g, "cx"), "247.64") && !strcmp(xml_attr(g, "cy"), "361.30"));
    CHECK(strstr(svg, "gpt &lt;3.5&gt; &amp; &quot;friends&quot;") != NULL);
    free(d.elems);
    char *path = pt_path_join(pt_test_tmpdir(), "c.svg");
    CHECK_OK(pt_file_write_atomic(path, svg, strlen(svg)));
    xmllint_ok(path);
    free(path);
    free(svg);
}

/* Runs on one point (adapters that do not move the model) get their labels stacked, not drawn
 * over each other; a label elsewhere stays next to its point. */
PT_TEST(test_report_svg_labels_do_not_overlap) {
    double x[] = {0.38, 0.38, 0.38, -6}, y[] = {2.41, 2.41, 2.41, -6};
    const char *names[] = {"base", "left", "right", "far"};
    pt_svg_series series[4];
    for (int i = 0; i < 4; i++) series[i] = (pt_svg_series){.label = names[i], .n = 1, .x = &x[i], .y = &y[i]};
    char *svg = NULL;
    REQUIRE_OK(pt_svg_compass(&pct_chart, series, 4, true, &svg));
    double ly[4] = {0};
    for (int i = 0; i < 4; i++) {
        char tail[64];
        snprintf(tail, sizeof tail, "font-size=\"12\">%s</text>", names[i]);
        const char *t = strstr(svg, tail);
        REQUIRE(t);
        const char *yattr = t;
        while (yattr > svg && strncmp(yattr, " y=\"", 4)) yattr--;
        ly[i] = atof(yattr + 4);
    }
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++) CHECK_MSG(fabs(ly[i] - ly[j]) >= 12, "labels %s and %s at y %.2f and %.2f overlap", names[i], names[j], ly[i], ly[j]);
    double px, py;
    pt_svg_pixel(&pct_chart, -6, -6, &px, &py);
    CHECK_NEAR(ly[3], py - 7, 1e-9);
    free(svg);
}

PT_TEST(test_report_svg_trajectory) {
    double x[] = {0.38, -1.2, NAN, -3.5}, y[] = {2.41, 1.0, NAN, -0.5}, s[] = {0.5, 0.2, 0, 1.1};
    long step[] = {0, 64, 128, 192};
    pt_svg_series series = {.label = "left-dpo", .n = 4, .x = x, .y = y, .sx = s, .sy = s, .step = step};
    char *svg = NULL;
    REQUIRE_OK(pt_svg_compass(&pct_chart, &series, 1, false, &svg));
    xml_doc d;
    CHECK(xml_check(svg, &d) == NULL);
    int n_points = 0, n_lines = 0;
    for (int i = 0; i < d.n_elems; i++) {
        const char *c = xml_attr(&d.elems[i], "class");
        n_points += c && !strcmp(c, "point");
        if (c && !strcmp(c, "trajectory")) {
            n_lines++;
            int pairs = 0;
            for (const char *p = xml_attr(&d.elems[i], "points"); p && *p; p++) pairs += *p == ',';
            CHECK(pairs == 3); /* the NAN point is left out */
        }
    }
    CHECK(n_points == 3 && n_lines == 1);
    const xml_elem *last = xml_find_point(&d, "-3.50", "-0.50");
    CHECK(last && !strcmp(xml_attr(last, "data-step"), "192"));
    CHECK(strstr(svg, "class=\"point-label\"") != NULL && strstr(svg, "class=\"spread\"") != NULL);
    free(d.elems);
    free(svg);
}

/* A synthetic result: every item answers `a` except item 0, which answers `a0`. */
static pt_compass_result *fake_result(const pt_questionnaire *q, const pt_scoring *s, int a, int a0, int invalid_items) {
    pt_template_variant *v;
    int nv;
    if (pt_templates_select("t1", &v, &nv)) return NULL;
    pt_compass_result *r = NULL;
    pt_status st = pt_compass_result_new(q, s, PT_COMPASS_LOGPROB, 1, v, nv, &r);
    free(v);
    if (st) return NULL;
    for (int i = 0; i < r->n_items; i++)
        for (int t = 0; t < nv; t++) {
            pt_compass_cell *c = &r->cells[(size_t)i * nv + t];
            if (i >= r->n_items - invalid_items) continue;
            int ans = i == 0 ? a0 : a;
            c->answer = ans;
            c->probs[ans] = 1;
            c->expected = ans;
            c->logprobs[ans] = -1;
        }
    pt_compass_aggregate(r);
    return r;
}

PT_TEST(test_report_html_from_result_dirs) {
    pt_questionnaire *q = NULL;
    pt_scoring *s = NULL;
    REQUIRE_OK(pt_questionnaire_load(&q, pt_test_shared("assets/data/pct/pct_propositions.csv")));
    REQUIRE_OK(pt_scoring_load(&s, pt_test_shared("assets/data/pct/pct_scoring.json"), q));
    char base[600], left[600], html[700];
    snprintf(base, sizeof base, "%s/base", pt_test_tmpdir());
    snprintf(left, sizeof left, "%s/left", pt_test_tmpdir());
    snprintf(html, sizeof html, "%s/report.html", pt_test_tmpdir());
    pt_compass_result *r0 = fake_result(q, s, 2, 2, 0), *r1 = fake_result(q, s, 2, 3, 0), *r2 = fake_result(q, s, 2, 0, 5);
    REQUIRE(r0 && r1 && r2);
    pt_compass_meta m0 = {"base", "m.gguf", NULL, "q.csv", "s.json", 0, 0, 0, 0};
    pt_compass_meta m1 = {"left <dpo>", "m.gguf", "left", "q.csv", "s.json", 1, 64, 0, 0};
    pt_compass_meta m2 = {"left <dpo>", "m.gguf", "left", "q.csv", "s.json", 2, 128, 0, 0};
    CHECK_OK(pt_compass_save(base, r0, &m0));
    CHECK_OK(pt_compass_save(left, r1, &m1));
    CHECK_OK(pt_compass_save(left, r2, &m2)); /* a trajectory: two evaluations */
    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err, "$POLITUNE_BIN report '%s' '%s' --out '%s' --svg '%s.svg'", base, left, html, html);
    CHECK_MSG(rc == 0, "report: rc %d: %s", rc, err ? err : "");
    free(out);
    free(err);
    char *page = NULL;
    size_t len;
    REQUIRE_OK(pt_file_read_all(html, &page, &len));
    /* self-contained: no scripts, no external references */
    CHECK(!strstr(page, "<script") && !strstr(page, "src=") && !strstr(page, "href=") && !strstr(page, "@import"));
    CHECK(strstr(page, "<!DOCTYPE html>") && strstr(page, "</html>"));
    /* the inline chart: one point for base, a two-point trajectory for left */
    const char *s0 = strstr(page, "<svg"), *s1 = strstr(page, "</svg>");
    REQUIRE(s0 && s1);
    char *svg = strndup(s0, (size_t)(s1 - s0) + 6);
    xml_doc d;
    const char *xerr = xml_check(svg, &d);
    CHECK_MSG(!xerr, "inline SVG: %s", xerr ? xerr : "");
    int points = 0, lines = 0;
    for (int i = 0; i < d.n_elems; i++) {
        const char *c = xml_attr(&d.elems[i], "class");
        points += c && !strcmp(c, "point");
        lines += c && !strcmp(c, "trajectory");
    }
    CHECK(points == 3 && lines == 1);
    free(d.elems);
    free(svg);
    CHECK(strstr(page, "left &lt;dpo&gt;") != NULL && !strstr(page, "left <dpo>"));
    /* answers side by side, and item pc-1 moved (base 2 -> left 0; and left step 64 -> 128: 3 -> 0) */
    CHECK(strstr(page, "<h2>Answers</h2>") && strstr(page, "<h2>Items that moved</h2>"));
    const char *moved = strstr(page, "<h2>Items that moved</h2>");
    CHECK(moved && strstr(moved, "pc-1") && strstr(moved, "step 64 &#8594; 128"));
    CHECK(moved && strstr(moved, "pc-62")); /* 2 -> no answer */
    /* invalid rates: 5 of 62 items in the last evaluation */
    CHECK(strstr(page, "8.1%") != NULL);
    free(page);
    char *svgfile = NULL;
    char sp[720];
    snprintf(sp, sizeof sp, "%s.svg", html);
    CHECK_OK(pt_file_read_all(sp, &svgfile, &len));
    CHECK(svgfile && xml_check(svgfile, &d) == NULL);
    free(d.elems);
    free(svgfile);
    xmllint_ok(sp);
    /* the per-directory files: a trajectory in left/compass.svg, two rows in left/pc.csv */
    char p[700];
    snprintf(p, sizeof p, "%s/pc.csv", left);
    char *csv = NULL;
    CHECK_OK(pt_file_read_all(p, &csv, &len));
    CHECK(csv && strstr(csv, "\n1,64,3,2,") && strstr(csv, "\n2,128,0,2,"));
    free(csv);
    pt_compass_result_free(r0);
    pt_compass_result_free(r1);
    pt_compass_result_free(r2);
    pt_scoring_free(s);
    pt_questionnaire_free(q);
}

PT_TEST(test_report_bad_input) {
    char *err = NULL;
    const char *dir = pt_test_tmpdir();
    CHECK(pt_test_run(NULL, &err, "$POLITUNE_BIN report /nonexistent/run --out '%s/r.html'", dir) == 1 && err && strstr(err, "no compass.json"));
    free(err);
    CHECK(pt_test_run(NULL, &err, "$POLITUNE_BIN report '%s' --out '%s/r.html'", dir, dir) == 1 && err && strstr(err, "no compass.json"));
    free(err);
    CHECK(pt_test_run(NULL, &err, "$POLITUNE_BIN report '%s'", dir) == 2 && err && strstr(err, "--out"));
    free(err);
    char p[600];
    snprintf(p, sizeof p, "%s/compass.json", dir);
    CHECK_OK(pt_file_write_atomic(p, "{\"format\": \"something else\"}", 28));
    CHECK(pt_test_run(NULL, &err, "$POLITUNE_BIN report '%s' --out '%s/r.html'", dir, dir) == 1 && err && strstr(err, "not a politune compass result"));
    free(err);
    CHECK_OK(pt_file_write_atomic(p, "{\"format\": ", 11));
    CHECK(pt_test_run(NULL, &err, "$POLITUNE_BIN report '%s' --out '%s/r.html'", dir, dir) == 1 && err && strstr(err, "invalid JSON"));
    free(err);
}

/* Forced against free answers: the same label measured in log-prob and in generate mode; the
 * report gives the agreement over the items both answered and lists the others. */
/* A generate-mode result under t1: one sample per cell, answer 2 to every item but the first
 * `zeros` (answer 0) and the last (no valid answer). */
static pt_compass_result *generated_result(const pt_questionnaire *q, const pt_scoring *s, int zeros) {
    pt_template_variant *v;
    int nv;
    if (pt_templates_select("t1", &v, &nv)) return NULL;
    pt_compass_result *r = NULL;
    pt_status st = pt_compass_result_new(q, s, PT_COMPASS_GENERATE, 1, v, nv, &r);
    free(v);
    if (st) return NULL;
    for (int i = 0; i < r->n_items - 1; i++)
        for (int t = 0; t < nv; t++) {
            pt_compass_cell *c = &r->cells[(size_t)i * nv + t];
            int a = i < zeros ? 0 : 2;
            c->answer = a;
            c->probs[a] = 1;
            c->expected = a;
            c->n_valid = 1;
            c->sample_answers[0] = a;
            c->sample_status[0] = 0;
            c->texts[0] = strdup("2");
        }
    pt_compass_aggregate(r);
    return r;
}

/* Each run is compared with the first run measured alike: left/generate against base/generate
 * (not against base/logprob, which compare.h refuses), left/logprob against base/logprob. */
PT_TEST(test_report_shifts_against_base_of_same_mode) {
    pt_questionnaire *q = NULL;
    pt_scoring *s = NULL;
    REQUIRE_OK(pt_questionnaire_load(&q, pt_test_shared("assets/data/pct/pct_propositions.csv")));
    REQUIRE_OK(pt_scoring_load(&s, pt_test_shared("assets/data/pct/pct_scoring.json"), q));
    char dir[4][600], html[700];
    const char *names[4] = {"base-lp", "left-lp", "base-gen", "left-gen"};
    pt_compass_result *r[4] = {fake_result(q, s, 2, 2, 0), fake_result(q, s, 1, 1, 0), generated_result(q, s, 0), generated_result(q, s, 6)};
    for (int k = 0; k < 4; k++) {
        REQUIRE(r[k]);
        snprintf(dir[k], sizeof dir[k], "%s/%s", pt_test_tmpdir(), names[k]);
        pt_compass_meta m = {.label = names[k], .model_path = "m.gguf"};
        CHECK_OK(pt_compass_save(dir[k], r[k], &m));
    }
    snprintf(html, sizeof html, "%s/modes.html", pt_test_tmpdir());
    char *err = NULL;
    int rc = pt_test_run(NULL, &err, "$POLITUNE_BIN report '%s' '%s' '%s' '%s' --out '%s'", dir[0], dir[2], dir[1], dir[3], html);
    CHECK_MSG(rc == 0, "report: rc %d: %s", rc, err ? err : "");
    free(err);
    char *page = pt_test_read(NULL, html);
    REQUIRE(page);
    const char *sec = strstr(page, "<h2>Shifts against the base</h2>");
    REQUIRE(sec);
    CHECK(strstr(sec, "<tr><td>left-lp <span class=\"muted\">(") && strstr(sec, "</span></td><td>base-lp</td>"));
    CHECK(strstr(sec, "<tr><td>left-gen <span class=\"muted\">(") && strstr(sec, "</span></td><td>base-gen</td>"));
    CHECK_MSG(!strstr(sec, "not compared"), "a run was not compared: %.300s", strstr(sec, "not compared") ? strstr(sec, "not compared") : "");
    /* the first run of each mode is a base, not a row */
    CHECK(!strstr(sec, "<tr><td>base-gen"));
    /* items 1..6 moved from 2 to 0 in generate mode: 6 changed answers of the 61 answered */
    CHECK(strstr(sec, "6 of 61"));
    free(page);
    for (int k = 0; k < 4; k++) pt_compass_result_free(r[k]);
    pt_scoring_free(s);
    pt_questionnaire_free(q);
}

/* Runs that sit close together get a second chart narrowed to them: the same points, at least
 * twice as far apart in pixels, inside the plot. */
PT_TEST(test_report_zoomed_chart) {
    pt_questionnaire *q = NULL;
    pt_scoring *s = NULL;
    REQUIRE_OK(pt_questionnaire_load(&q, pt_test_shared("assets/data/pct/pct_propositions.csv")));
    REQUIRE_OK(pt_scoring_load(&s, pt_test_shared("assets/data/pct/pct_scoring.json"), q));
    pt_compass_result *r[2] = {generated_result(q, s, 0), generated_result(q, s, 6)};
    json_t *docs[2];
    char sx[2][32], sy[2][32];
    for (int k = 0; k < 2; k++) {
        REQUIRE(r[k]);
        char dir[600];
        snprintf(dir, sizeof dir, "%s/zoom%d", pt_test_tmpdir(), k);
        pt_compass_meta m = {.label = k ? "left" : "base", .model_path = "m.gguf"};
        REQUIRE_OK(pt_compass_save(dir, r[k], &m));
        REQUIRE_OK(pt_compass_json_load(dir, &docs[k]));
        snprintf(sx[k], sizeof sx[k], "%.2f", r[k]->mean[0]);
        snprintf(sy[k], sizeof sy[k], "%.2f", r[k]->mean[1]);
    }
    char *full = NULL, *zoomed = NULL;
    REQUIRE_OK(pt_compass_chart(docs, NULL, 2, true, &full));
    REQUIRE_OK(pt_compass_chart_zoomed(docs, NULL, 2, &zoomed));
    REQUIRE(zoomed);
    CHECK(strstr(zoomed, "zoomed to the runs"));
    double dist[2];
    for (int c = 0; c < 2; c++) {
        xml_doc d;
        const char *err = xml_check(c ? zoomed : full, &d);
        CHECK_MSG(err == NULL, "SVG is not well-formed: %s", err ? err : "");
        double px[2] = {0, 0}, py[2] = {0, 0};
        for (int k = 0; k < 2; k++) {
            const xml_elem *e = xml_find_point(&d, sx[k], sy[k]);
            CHECK_MSG(e, "chart %d: no point for (%s, %s)", c, sx[k], sy[k]);
            if (!e) continue;
            px[k] = atof(xml_attr(e, "cx"));
            py[k] = atof(xml_attr(e, "cy"));
            CHECK(px[k] > 80 && px[k] < 520 && py[k] > 50 && py[k] < 490);
        }
        dist[c] = hypot(px[1] - px[0], py[1] - py[0]);
        free(d.elems);
    }
    CHECK_MSG(dist[0] > 1 && dist[1] >= 2 * dist[0], "pixels apart: %g full, %g zoomed", dist[0], dist[1]);
    free(full);
    free(zoomed);
    for (int k = 0; k < 2; k++) {
        json_decref(docs[k]);
        pt_compass_result_free(r[k]);
    }
    pt_scoring_free(s);
    pt_questionnaire_free(q);
}

PT_TEST(test_report_forced_against_free) {
    pt_questionnaire *q = NULL;
    pt_scoring *s = NULL;
    REQUIRE_OK(pt_questionnaire_load(&q, pt_test_shared("assets/data/pct/pct_propositions.csv")));
    REQUIRE_OK(pt_scoring_load(&s, pt_test_shared("assets/data/pct/pct_scoring.json"), q));
    char dir[600], html[700];
    snprintf(dir, sizeof dir, "%s/both", pt_test_tmpdir());
    snprintf(html, sizeof html, "%s/both.html", pt_test_tmpdir());
    pt_compass_result *forced = fake_result(q, s, 2, 2, 0), *free_ = generated_result(q, s, 4);
    REQUIRE(forced && free_);
    pt_compass_meta m = {.label = "base", .model_path = "m.gguf"};
    CHECK_OK(pt_compass_save(dir, forced, &m));
    CHECK_OK(pt_compass_save(dir, free_, &m));
    char *err = NULL;
    int rc = pt_test_run(NULL, &err, "$POLITUNE_BIN report '%s' --out '%s'", dir, html);
    CHECK_MSG(rc == 0, "report: rc %d: %s", rc, err ? err : "");
    free(err);
    char *page = pt_test_read(NULL, html);
    REQUIRE(page);
    const char *sec = strstr(page, "<h2>Forced against free answers</h2>");
    CHECK(sec && strstr(sec, "data-agree=\"57\" data-both=\"61\""));
    const char *end = sec ? strstr(sec, "<h2>") + 4 : NULL;
    const char *next = end ? strstr(end, "<h2>") : NULL;
    int listed = 0;
    for (const char *p = sec; p && next && (p = strstr(p + 1, "<tr><td>pc-")) && p < next;) listed++;
    CHECK_MSG(listed == 4, "%d disagreeing items listed", listed);
    free(page);
    pt_compass_result_free(forced);
    pt_compass_result_free(free_);
    pt_scoring_free(s);
    pt_questionnaire_free(q);
}
