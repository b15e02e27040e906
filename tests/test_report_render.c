/* The report as a browser draws it: `politune report` on two saved runs with known positions
 * and intervals, laid out by headless Chromium (Debian's chromium package), which runs a
 * measuring script appended to a copy of the page and leaves its findings in the DOM it
 * dumps. The test then checks that every point's centre and every interval's extent are at
 * the pixels the data in compass.json give (the layout contract of svg.h), and that the
 * chart's title lies whole inside the chart. Skipped, with the reason, where chromium is not
 * installed. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/compass.h"
#include "eval/report.h"
#include "test.h"
#include "util/file.h"
#include "util/rng.h"

/* A PCT run whose answers are drawn, per item and variant, around `lean` (so positions differ
 * between runs and intervals have width). */
static pt_compass_result *varied_result(const pt_questionnaire *q, const pt_scoring *s, uint64_t seed, double lean) {
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
            double u = pt_rng_double(&rng) + lean;
            int a = u < 0.35 ? 0 : u < 0.6 ? 1 : u < 0.8 ? 2 : 3;
            c->answer = a;
            c->probs[a] = 1;
            c->expected = a;
        }
    pt_compass_aggregate(r);
    return r;
}

/* Measures, relative to the first inline <svg>: each point's centre, each interval's box, the
 * title's box and the svg's size; JSON in <pre id="measured">. */
static const char *measure_script =
    "<pre id=\"measured\"></pre>\n<script>\n"
    "const svg = document.querySelector('svg'), o = svg.getBoundingClientRect();\n"
    "const box = e => { const b = e.getBoundingClientRect(); return [b.left - o.left, b.top - o.top, b.right - o.left, b.bottom - o.top]; };\n"
    "const m = {width: o.width, height: o.height, points: [], intervals: [], title: null};\n"
    "svg.querySelectorAll('circle.point').forEach(c => { const b = box(c);\n"
    "  m.points.push({series: c.getAttribute('data-series'), x: +c.getAttribute('data-x'), y: +c.getAttribute('data-y'), cx: (b[0] + b[2]) / 2, cy: (b[1] + b[3]) / 2}); });\n"
    "svg.querySelectorAll('path.interval').forEach(p => { const b = p.getBBox();\n"
    "  m.intervals.push({series: p.parentNode.getAttribute('data-series'), xlo: +p.getAttribute('data-x-lo'), xhi: +p.getAttribute('data-x-hi'),\n"
    "    ylo: +p.getAttribute('data-y-lo'), yhi: +p.getAttribute('data-y-hi'), box: [b.x, b.y, b.x + b.width, b.y + b.height]}); });\n"
    "const t = svg.querySelector('text.title'); if (t) m.title = {text: t.textContent, box: box(t)};\n"
    "document.getElementById('measured').textContent = JSON.stringify(m);\n"
    "</script>\n";

static double px_x(double x) { return 80 + (x + 10) / 20 * 440; }
static double px_y(double y) { return 50 + 440 - (y + 10) / 20 * 440; }

PT_TEST(test_report_render_chromium) {
    char *why = NULL;
    if (pt_test_run(NULL, &why, "command -v chromium") != 0) { free(why); SKIP("chromium is not installed (apt-get install chromium)"); }
    free(why);
    pt_questionnaire *q = NULL;
    pt_scoring *s = NULL;
    REQUIRE_OK(pt_questionnaire_load(&q, pt_test_shared("assets/data/pct/pct_propositions.csv")));
    REQUIRE_OK(pt_scoring_load(&s, pt_test_shared("assets/data/pct/pct_scoring.json"), q));
    const char *tmp = pt_test_tmpdir();
    char base[600], left[600], html[700], probe[700];
    snprintf(base, sizeof base, "%s/base", tmp);
    snprintf(left, sizeof left, "%s/left", tmp);
    snprintf(html, sizeof html, "%s/report.html", tmp);
    snprintf(probe, sizeof probe, "%s/probe.html", tmp);
    pt_compass_result *r0 = varied_result(q, s, 1, 0.1), *r1 = varied_result(q, s, 2, -0.25);
    REQUIRE(r0 && r1);
    pt_compass_meta m0 = {.label = "base", .model_path = "m.gguf"}, m1 = {.label = "left", .model_path = "m.gguf", .adapter_path = "left"};
    REQUIRE_OK(pt_compass_save(base, r0, &m0));
    REQUIRE_OK(pt_compass_save(left, r1, &m1));
    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err, "$POLITUNE_BIN report '%s' '%s' --out '%s' --resamples 300", base, left, html);
    CHECK_MSG(rc == 0, "report: rc %d: %s", rc, err ? err : "");
    free(out);
    free(err);
    /* the page with the measuring script before </body> */
    char *page = pt_test_read(NULL, html);
    REQUIRE(page);
    CHECK(strstr(page, "class=\"shifts\"") && strstr(page, "class=\"attribution\""));
    char *end = strstr(page, "</body>");
    REQUIRE(end);
    *end = 0;
    size_t n = strlen(page) + strlen(measure_script) + 32;
    char *probed = malloc(n);
    snprintf(probed, n, "%s%s</body></html>\n", page, measure_script);
    CHECK_OK(pt_file_write_atomic(probe, probed, strlen(probed)));
    free(probed);
    free(page);
    rc = pt_test_run(&out, &err, "timeout 120 chromium --headless --no-sandbox --disable-gpu --user-data-dir='%s/chromium' --dump-dom 'file://%s'",
                     tmp, probe);
    const char *m0s = out ? strstr(out, "<pre id=\"measured\">") : NULL;
    const char *m1s = m0s ? strstr(m0s, "</pre>") : NULL;
    CHECK_MSG(rc == 0 && m0s && m1s, "chromium: rc %d: %.300s", rc, err ? err : "");
    json_t *m = NULL;
    if (m0s && m1s) {
        m0s += strlen("<pre id=\"measured\">");
        m = json_loadb(m0s, (size_t)(m1s - m0s), 0, NULL);
    }
    free(out);
    free(err);
    REQUIRE(m);
    /* the data: each run's mean position and interval from its compass.json */
    const char *dirs[2] = {base, left}, *labels[2] = {"base", "left"};
    int seen_points = 0, seen_intervals = 0;
    for (int k = 0; k < 2; k++) {
        json_t *doc = NULL;
        REQUIRE_OK(pt_compass_json_load(dirs[k], &doc));
        json_t *pos = json_object_get(json_array_get(json_object_get(doc, "evaluations"), 0), "position");
        json_t *ex = json_object_get(pos, "economic"), *so = json_object_get(pos, "social");
        double x = json_number_value(json_object_get(ex, "mean")), y = json_number_value(json_object_get(so, "mean"));
        double xlo = json_number_value(json_array_get(json_object_get(ex, "interval"), 0)), xhi = json_number_value(json_array_get(json_object_get(ex, "interval"), 1));
        double ylo = json_number_value(json_array_get(json_object_get(so, "interval"), 0)), yhi = json_number_value(json_array_get(json_object_get(so, "interval"), 1));
        CHECK_MSG(xhi - xlo > 0.2 && yhi - ylo > 0.2, "%s: intervals too narrow to check: [%g, %g] [%g, %g]", labels[k], xlo, xhi, ylo, yhi);
        json_t *pts = json_object_get(m, "points"), *ivs = json_object_get(m, "intervals");
        for (size_t i = 0; i < json_array_size(pts); i++) {
            json_t *p = json_array_get(pts, i);
            if (strcmp(json_string_value(json_object_get(p, "series")), labels[k])) continue;
            seen_points++;
            CHECK_NEAR(json_number_value(json_object_get(p, "cx")), px_x(x), 1.0);
            CHECK_NEAR(json_number_value(json_object_get(p, "cy")), px_y(y), 1.0);
        }
        for (size_t i = 0; i < json_array_size(ivs); i++) {
            json_t *iv = json_array_get(ivs, i), *b = json_object_get(iv, "box");
            if (strcmp(json_string_value(json_object_get(iv, "series")), labels[k])) continue;
            seen_intervals++;
            /* the cross spans lo..hi on each axis; its 4 px end caps may reach past a short arm */
            CHECK_NEAR(json_number_value(json_array_get(b, 0)), fmin(px_x(xlo), px_x(x) - 4), 1.0);
            CHECK_NEAR(json_number_value(json_array_get(b, 2)), fmax(px_x(xhi), px_x(x) + 4), 1.0);
            CHECK_NEAR(json_number_value(json_array_get(b, 1)), fmin(px_y(yhi), px_y(y) - 4), 1.0);
            CHECK_NEAR(json_number_value(json_array_get(b, 3)), fmax(px_y(ylo), px_y(y) + 4), 1.0);
        }
        json_decref(doc);
    }
    CHECK_MSG(seen_points == 2 && seen_intervals == 2, "%d points, %d intervals drawn", seen_points, seen_intervals);
    /* the title whole inside the chart */
    json_t *t = json_object_get(m, "title"), *tb = json_object_get(t, "box");
    double w = json_number_value(json_object_get(m, "width"));
    CHECK(t && !strncmp(json_string_value(json_object_get(t, "text")), "Political Compass Test", 22));
    CHECK_MSG(json_number_value(json_array_get(tb, 0)) >= 0 && json_number_value(json_array_get(tb, 2)) <= w,
              "title spans %.1f..%.1f px of a %.0f px chart", json_number_value(json_array_get(tb, 0)), json_number_value(json_array_get(tb, 2)), w);
    json_decref(m);
    pt_compass_result_free(r0);
    pt_compass_result_free(r1);
    pt_scoring_free(s);
    pt_questionnaire_free(q);
}
