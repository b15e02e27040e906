/* politune dial --combine (issue 15): several dials on one chart. A real dial run on
 * stories260K (an adapter's scales 0 and 1, one template) and a mix dial at weights 0 and 1
 * made from a copy of it by hand (the same measure), then copies whose dial.json positions are
 * rewritten to known, distinct numbers so that every drawn point can be checked against its
 * data: its data-x / data-y and its pixel, computed here from the chart's layout contract
 * (svg.h) rather than by the code under test.
 * Also the legend, the table, dials.csv, the base model's ring, and the refusals: a directory
 * that is not a dial, malformed dial.json, dials measured with another questionnaire, scoring
 * or option scoring. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "internal.h"
#include "test.h"
#include "test_report_xml.h"
#include "util/rng.h"

#define BIN "\"$POLITUNE_BIN\""

static const char *stories_gguf(void) { return pt_test_shared("assets/models/stories260K/stories260K.gguf"); }

static int make_adapter(const char *dir, uint64_t seed) {
    return fx_random_adapter(stories_gguf(), dir, seed, (1u << PT_LT_Q) | (1u << PT_LT_V));
}

/* Rewrites settings[i] of DIR/dial.json to the answers' position (ex, sx) and the expected one
 * (ee, se), intervals +-1 around the answers. */
static void set_position(const char *dir, int i, double ex, double sx, double ee, double se) {
    char path[700];
    snprintf(path, sizeof path, "%s/dial.json", dir);
    json_error_t err;
    json_t *doc = json_load_file(path, 0, &err);
    json_t *r = json_array_get(json_object_get(doc, "settings"), (size_t)i);
    REQUIRE(r);
    json_object_set_new(r, "economic", json_pack("{s:f,s:[f,f]}", "estimate", ex, "interval", ex - 1, ex + 1));
    json_object_set_new(r, "social", json_pack("{s:f,s:[f,f]}", "estimate", sx, "interval", sx - 1, sx + 1));
    json_object_set_new(r, "expected", json_pack("{s:f,s:f}", "economic", ee, "social", se));
    REQUIRE(json_dump_file(doc, path, JSON_INDENT(2)) == 0);
    json_decref(doc);
}

/* Edits one value of a setting's compass.json: evaluations[0].option_scoring, the first
 * item's statement, or the scoring rule's first offset. */
static void corrupt_measure(const char *dir, const char *what) {
    char path[700];
    snprintf(path, sizeof path, "%s/setting-00/compass.json", dir);
    json_error_t err;
    json_t *doc = json_load_file(path, 0, &err);
    REQUIRE(doc);
    if (!strcmp(what, "option"))
        json_object_set_new(json_array_get(json_object_get(doc, "evaluations"), 0), "option_scoring", json_string("mean"));
    else if (!strcmp(what, "questionnaire"))
        json_object_set_new(json_array_get(json_object_get(doc, "items"), 0), "statement", json_string("Another proposition."));
    else
        json_object_set_new(json_array_get(json_object_get(json_object_get(doc, "scoring_rule"), "axes"), 0), "offset", json_real(1.5));
    REQUIRE(json_dump_file(doc, path, JSON_INDENT(2)) == 0);
    json_decref(doc);
}

typedef struct {
    double x, y, px, py;
    int found;
} drawn;

/* The chart's point of series `series` whose data-x/data-y are (x, y) as formatted ("%.2f"). */
static drawn find_point(const xml_doc *d, const char *series, double x, double y) {
    drawn r = {0};
    char sx[32], sy[32];
    snprintf(sx, sizeof sx, "%.2f", x);
    snprintf(sy, sizeof sy, "%.2f", y);
    for (int i = 0; i < d->n_elems; i++) {
        const xml_elem *e = &d->elems[i];
        const char *c = xml_attr(e, "class"), *s = xml_attr(e, "data-series"), *ax = xml_attr(e, "data-x"), *ay = xml_attr(e, "data-y");
        if (!c || strcmp(c, "point") || !s || strcmp(s, series) || !ax || !ay || strcmp(ax, sx) || strcmp(ay, sy)) continue;
        const char *cx = xml_attr(e, "cx") ? xml_attr(e, "cx") : xml_attr(e, "data-cx");
        const char *cy = xml_attr(e, "cy") ? xml_attr(e, "cy") : xml_attr(e, "data-cy");
        if (!cx || !cy) continue;
        r.x = x, r.y = y, r.px = atof(cx), r.py = atof(cy);
        r.found++;
    }
    return r;
}

static int count_series_points(const xml_doc *d, const char *series) {
    int n = 0;
    for (int i = 0; i < d->n_elems; i++) {
        const char *c = xml_attr(&d->elems[i], "class"), *s = xml_attr(&d->elems[i], "data-series");
        n += c && s && !strcmp(c, "point") && !strcmp(s, series);
    }
    return n;
}

/* Where the full chart (-10..10 on both axes) puts (x, y): svg.h's layout, restated. */
static void expect_pixel(const drawn *p, const char *what) {
    const double px = 80.0 + (p->x + 10.0) / 20.0 * 440.0, py = 50.0 + 440.0 - (p->y + 10.0) / 20.0 * 440.0;
    CHECK_MSG(p->found == 1 && fabs(p->px - px) < 0.011 && fabs(p->py - py) < 0.011, "%s (%g, %g): found %d, drawn at (%g, %g), want (%g, %g)", what,
              p->x, p->y, p->found, p->px, p->py, px, py);
}

PT_TEST(test_dial_combine) {
    const char *tmp = pt_test_tmpdir();
    char left[600], right[600];
    snprintf(left, sizeof left, "%s/left", tmp);
    snprintf(right, sizeof right, "%s/right", tmp);
    REQUIRE(make_adapter(left, 11)); /* the right adapter is only named, by the mix made by hand */
    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err, BIN " dial --model '%s' --adapter '%s' --scales 0,1 --templates t2 --resamples 100 --out '%s/real-scale'",
                         stories_gguf(), left, tmp);
    CHECK_MSG(rc == 0, "scale dial: rc %d, stderr: %s", rc, err ? err : "");
    REQUIRE(rc == 0);
    free(out), free(err);
    /* a mix dial by hand, from a copy of the real one: the same measure, weights 0 and 1 */
    rc = pt_test_run(NULL, NULL, "cp -r '%s/real-scale' '%s/real-mix'", tmp, tmp);
    REQUIRE(rc == 0);
    {
        char path[700];
        snprintf(path, sizeof path, "%s/real-mix/dial.json", tmp);
        json_error_t jerr;
        json_t *doc = json_load_file(path, 0, &jerr);
        REQUIRE(doc);
        json_object_set_new(doc, "dial", json_string("weight"));
        json_object_set_new(doc, "adapters", json_pack("[{s:s,s:s},{s:s,s:s}]", "name", "left", "path", left, "name", "right", "path", right));
        json_t *settings = json_object_get(doc, "settings");
        for (size_t i = 0; i < json_array_size(settings); i++) {
            json_t *r = json_array_get(settings, i);
            json_object_del(r, "scale");
            json_object_set_new(r, "weight", json_real((double)i));
            json_object_set_new(r, "scales", json_pack("[f,f]", 1.0 - (double)i, (double)i));
        }
        REQUIRE(json_dump_file(doc, path, JSON_INDENT(2)) == 0);
        json_decref(doc);
    }
    /* the real dials combine as they are */
    rc = pt_test_run(&out, &err, BIN " dial --combine '%s/real-scale' '%s/real-mix' --out '%s/real-both'", tmp, tmp, tmp);
    CHECK_MSG(rc == 0 && out && strstr(out, "\"dials\":2"), "combine: rc %d, stdout: %s, stderr: %s", rc, out ? out : "", err ? err : "");
    free(out), free(err);

    /* copies with known positions */
    rc = pt_test_run(NULL, NULL, "cp -r '%s/real-scale' '%s/scale' && cp -r '%s/real-mix' '%s/mix'", tmp, tmp, tmp, tmp);
    REQUIRE(rc == 0);
    char scale_dir[700], mix_dir[700];
    snprintf(scale_dir, sizeof scale_dir, "%s/scale", tmp);
    snprintf(mix_dir, sizeof mix_dir, "%s/mix", tmp);
    const double pos[4][4] = {{0.5, -0.25, 1.0, 0.75}, {3.0, -2.0, 2.5, -1.5}, {-4.0, 5.0, -3.5, 4.0}, {-6.0, 7.25, -5.0, 6.0}};
    set_position(scale_dir, 0, pos[0][0], pos[0][1], pos[0][2], pos[0][3]);
    set_position(scale_dir, 1, pos[1][0], pos[1][1], pos[1][2], pos[1][3]);
    set_position(mix_dir, 0, pos[2][0], pos[2][1], pos[2][2], pos[2][3]);
    set_position(mix_dir, 1, pos[3][0], pos[3][1], pos[3][2], pos[3][3]);
    rc = pt_test_run(&out, &err, BIN " dial --combine '%s' '%s' --title 'Two dials' --out '%s/both'", scale_dir, mix_dir, tmp);
    CHECK_MSG(rc == 0, "combine: rc %d, stderr: %s", rc, err ? err : "");
    REQUIRE(rc == 0);
    free(out), free(err);

    char both[700];
    snprintf(both, sizeof both, "%s/both", tmp);
    char *svg = pt_test_read(both, "dials.svg"), *html = pt_test_read(both, "dials.html"), *csv = pt_test_read(both, "dials.csv");
    REQUIRE(svg && html && csv);
    xml_doc xd = {0};
    const char *why = xml_check(svg, &xd);
    CHECK_MSG(!why, "dials.svg: %s", why);
    snprintf(both, sizeof both, "%s/both/dials.svg", tmp);
    xmllint_ok(both);
    /* every point where its data says, answers and expected, in each dial's series */
    const char *series[2] = {"LoRA left \u00d7scale", "mix left\u2192right weight"};
    for (int k = 0; k < 2; k++) {
        char ex[200];
        snprintf(ex, sizeof ex, "%s, expected", series[k]);
        CHECK_MSG(count_series_points(&xd, series[k]) == 2 && count_series_points(&xd, ex) == 2, "%s: %d answer and %d expected points", series[k],
                  count_series_points(&xd, series[k]), count_series_points(&xd, ex));
        for (int i = 0; i < 2; i++) {
            const double *q = pos[2 * k + i];
            drawn a = find_point(&xd, series[k], q[0], q[1]), e = find_point(&xd, ex, q[2], q[3]);
            expect_pixel(&a, series[k]);
            expect_pixel(&e, ex);
        }
    }
    /* the base model: the scale dial's scale 0, once; the mix has none */
    drawn b = find_point(&xd, "base model (scale 0)", pos[0][0], pos[0][1]);
    expect_pixel(&b, "base model");
    CHECK(count_series_points(&xd, "base model (scale 0)") == 1);
    /* each interval cross: one per answer point, from lo to hi (+-1 here) */
    CHECK_MSG(xml_count_class(&xd, "interval") == 4, "%d interval crosses, want 4", xml_count_class(&xd, "interval"));
    /* the legend names every dial and its expected positions; the points carry their values */
    const char *legend = strstr(svg, "class=\"legend\"");
    CHECK(legend);
    for (int k = 0; legend && k < 2; k++) {
        char want[200];
        snprintf(want, sizeof want, ">%s</text>", series[k]);
        CHECK_MSG(strstr(legend, want), "legend lacks %s", want);
        snprintf(want, sizeof want, ">%s, expected</text>", series[k]);
        CHECK_MSG(strstr(legend, want), "legend lacks %s", want);
    }
    CHECK(strstr(svg, "class=\"point-label\"") && strstr(svg, "font-size=\"10\">0</text>") && strstr(svg, "font-size=\"10\">1</text>"));
    /* the HTML: the chart inline, a value panel per dial, every setting in the table */
    int rows = 0;
    for (const char *p = html; (p = strstr(p, "<tr class=\"setting\">")); p++) rows++;
    CHECK_MSG(rows == 4, "the table has %d settings, want 4", rows);
    int panels = 0;
    for (const char *p = html; (p = strstr(p, "class=\"value-chart\"")); p++) panels++;
    CHECK_MSG(panels == 2, "%d value panels, want one per dial", panels);
    CHECK(strstr(html, "<h1>Two dials</h1>") && strstr(html, "3.00 [2.00, 4.00]") && strstr(html, "7.25 [6.25, 8.25]"));
    /* dials.csv: a header and one row per setting with the numbers written above */
    const char *header = "dial,dir,setting,value_name,value,economic,economic_lo,economic_hi,social,social_lo,social_hi,economic_expected,social_expected,"
                         "perplexity\n";
    CHECK_MSG(!strncmp(csv, header, strlen(header)), "dials.csv starts: %.200s", csv);
    CHECK(strstr(csv, ",1,weight,1,-6,-7,-5,7.25,6.25,8.25,-5,6,\n") && strstr(csv, ",0,scale,0,0.5,-0.5,1.5,-0.25,-1.25,0.75,1,0.75,\n"));
    free(xd.elems);
    free(svg), free(html), free(csv);

    /* points close together get a zoomed chart as well */
    for (int i = 0; i < 2; i++) set_position(scale_dir, i, 0.1 * i, 0.2, 0.05, 0.1), set_position(mix_dir, i, -0.1 * i, 0.1, 0, 0);
    rc = pt_test_run(&out, &err, BIN " dial --combine '%s' '%s' --out '%s/close'", scale_dir, mix_dir, tmp);
    CHECK_MSG(rc == 0, "combine: rc %d, stderr: %s", rc, err ? err : "");
    free(out), free(err);
    snprintf(both, sizeof both, "%s/close", tmp);
    html = pt_test_read(both, "dials.html");
    CHECK(html && strstr(html, "Zoomed to where the dials lie") && strstr(html, "zoomed to the dials"));
    free(html);

    /* refusals: one line naming the file and key, or both directories */
    REQUIRE(pt_test_run(NULL, NULL, "mkdir -p '%s/notadial' '%s/broken'", tmp, tmp) == 0);
    pt_test_write(tmp, "broken/dial.json", "{\"dial\": \"scale\", \"settings\": [");
    rc = pt_test_run(NULL, NULL, "cp -r '%s/real-scale' '%s/nokey' && cp -r '%s/real-scale' '%s/opt' && cp -r '%s/real-scale' '%s/quest' && "
                                 "cp -r '%s/real-scale' '%s/rule'",
                     tmp, tmp, tmp, tmp, tmp, tmp, tmp, tmp);
    REQUIRE(rc == 0);
    {
        char path[700];
        snprintf(path, sizeof path, "%s/nokey/dial.json", tmp);
        json_error_t jerr;
        json_t *doc = json_load_file(path, 0, &jerr);
        REQUIRE(doc);
        json_object_del(json_array_get(json_object_get(doc, "settings"), 1), "economic");
        REQUIRE(json_dump_file(doc, path, 0) == 0);
        json_decref(doc);
    }
    char d_opt[700], d_quest[700], d_rule[700];
    snprintf(d_opt, sizeof d_opt, "%s/opt", tmp);
    snprintf(d_quest, sizeof d_quest, "%s/quest", tmp);
    snprintf(d_rule, sizeof d_rule, "%s/rule", tmp);
    corrupt_measure(d_opt, "option");
    corrupt_measure(d_quest, "questionnaire");
    corrupt_measure(d_rule, "rule");
    struct { const char *dirs, *want1, *want2; } cases[] = {
        {"notadial", "notadial/dial.json: no dial.json", "dial directory"},
        {"broken", "broken/dial.json:1: invalid JSON", ""},
        {"nokey", "nokey/dial.json: key 'settings[1].economic' is missing or malformed", ""},
        {"opt", "real-scale and ", "/opt were measured with a different option scoring ('number' against 'mean')"},
        {"quest", "real-scale and ", "/quest were measured with a different questionnaire"},
        {"rule", "real-scale and ", "/rule were measured with a different scoring"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const bool pair = i >= 3;
        rc = pt_test_run(&out, &err, BIN " dial --combine %s%s%s '%s/%s' --out '%s/bad'", pair ? "'" : "", pair ? tmp : "", pair ? "/real-scale'" : "",
                         tmp, cases[i].dirs, tmp);
        CHECK_MSG(rc == (pair ? 2 : 1) && err && strstr(err, cases[i].want1) && strstr(err, cases[i].want2) && !strchr(strchr(err, '\n') + 1, '\n'),
                  "%s: rc %d, stderr: %s", cases[i].dirs, rc, err ? err : "");
        free(out), free(err);
    }
    /* usage mistakes */
    rc = pt_test_run(&out, &err, BIN " dial --combine --out '%s/bad'", tmp);
    CHECK_MSG(rc == 2 && err && strstr(err, "--combine wants the dial directories"), "no dirs: rc %d, stderr: %s", rc, err ? err : "");
    free(out), free(err);
    rc = pt_test_run(&out, &err, BIN " dial --combine '%s/real-scale' --model '%s' --out '%s/bad'", tmp, stories_gguf(), tmp);
    CHECK_MSG(rc == 2 && err && strstr(err, "dials already run"), "--model: rc %d, stderr: %s", rc, err ? err : "");
    free(out), free(err);
}
