/* politune dial on stories260K (issue 15) with two adapters of random B, two templates to
 * stay fast. Exact cross-checks rather than expected numbers: the dial's scale-0 setting
 * must equal a plain compass run on the base model, and the mix at weight 0 (left at 1,
 * right at 0) must equal the scale dial's setting at scale 1. Also: the files and the chart
 * (one point with an interval per setting), the rerun that skips settings done, and the
 * refusals of bad lists and mismatched options. */
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
    return fx_random_adapter(stories_gguf(), dir, seed, (1u << PT_LT_Q) | (1u << PT_LT_V) | (1u << PT_LT_DOWN));
}

/* evaluations[0].position.<axis>.estimate of a compass.json, or NAN. */
static double estimate_of(const char *path, const char *axis) {
    json_error_t err;
    json_t *doc = json_load_file(path, 0, &err);
    json_t *e = json_array_get(json_object_get(doc, "evaluations"), 0);
    json_t *v = json_object_get(json_object_get(json_object_get(e, "position"), axis), "estimate");
    double x = json_is_number(v) ? json_number_value(v) : NAN;
    json_decref(doc);
    return x;
}

PT_TEST(test_dial_scales_mix_and_resume) {
    const char *tmp = pt_test_tmpdir();
    char left[600], right[600];
    snprintf(left, sizeof left, "%s/left", tmp);
    snprintf(right, sizeof right, "%s/right", tmp);
    REQUIRE(make_adapter(left, 5) && make_adapter(right, 6));
    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err, BIN " dial --model '%s' --adapter '%s' --scales 0,1 --templates t2 --resamples 300 --out '%s/dial'", stories_gguf(),
                         left, tmp);
    CHECK_MSG(rc == 0, "dial: rc %d, stderr: %s", rc, err ? err : "");
    REQUIRE(rc == 0);
    CHECK(err && strstr(err, "setting 1/2 (scale 0)") && strstr(err, "setting 2/2 (scale 1)"));
    free(out), free(err);

    /* dial.json: two settings, each with an estimate inside its interval on both axes */
    char path[700];
    snprintf(path, sizeof path, "%s/dial/dial.json", tmp);
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    CHECK_MSG(doc, "%s: %s", path, jerr.text);
    REQUIRE(doc);
    json_t *settings = json_object_get(doc, "settings");
    CHECK(json_array_size(settings) == 2);
    for (size_t i = 0; i < json_array_size(settings); i++)
        for (int x = 0; x < 2; x++) {
            json_t *ax = json_object_get(json_array_get(settings, i), x ? "social" : "economic");
            double est = json_number_value(json_object_get(ax, "estimate"));
            json_t *iv = json_object_get(ax, "interval");
            double lo = json_number_value(json_array_get(iv, 0)), hi = json_number_value(json_array_get(iv, 1));
            CHECK_MSG(json_is_number(json_array_get(iv, 0)) && lo <= est + 0.005 && est <= hi + 0.005 && lo < hi,
                      "setting %zu axis %d: %g not in [%g, %g]", i, x, est, lo, hi);
        }
    json_decref(doc);

    /* scale 0 is the base model: a plain compass run gives the same position */
    rc = pt_test_run(&out, &err, BIN " compass --model '%s' --templates t2 --no-open-prompts --out '%s/base'", stories_gguf(), tmp);
    CHECK_MSG(rc == 0, "compass: rc %d, stderr: %s", rc, err ? err : "");
    free(out), free(err);
    char base_json[700], s0_json[700], s1_json[700];
    snprintf(base_json, sizeof base_json, "%s/base/compass.json", tmp);
    snprintf(s0_json, sizeof s0_json, "%s/dial/setting-00/compass.json", tmp);
    snprintf(s1_json, sizeof s1_json, "%s/dial/setting-01/compass.json", tmp);
    for (int x = 0; x < 2; x++) {
        const char *axis = x ? "social" : "economic";
        double b = estimate_of(base_json, axis), d0 = estimate_of(s0_json, axis);
        CHECK_MSG(isfinite(b) && b == d0, "%s: scale 0 gives %g, the base model %g", axis, d0, b);
    }

    /* the chart: one point per setting with its interval cross, well-formed */
    snprintf(path, sizeof path, "%s/dial", tmp);
    char *svg = pt_test_read(path, "dial.svg"), *html = pt_test_read(path, "dial.html"), *csv = pt_test_read(path, "dial.csv");
    REQUIRE(svg && html && csv);
    xml_doc xd = {0};
    const char *why = xml_check(svg, &xd);
    CHECK_MSG(!why, "dial.svg: %s", why);
    CHECK_MSG(xml_count_class(&xd, "interval") == 2, "dial.svg: %d intervals, expected one per setting", xml_count_class(&xd, "interval"));
    CHECK(strstr(html, "Position against the dial") && strstr(html, "class=\"axis-line\""));
    const char *header = "setting,scale,scale_left,economic,economic_lo,economic_hi,social,social_lo,social_hi,economic_expected,social_expected\n";
    CHECK_MSG(!strncmp(csv, header, strlen(header)), "dial.csv starts: %.100s", csv);
    /* the expected (probability-weighted) position of each setting: in dial.json and dial.csv,
     * equal to that setting's compass.json "expected" read here on its own */
    char djson[700];
    snprintf(djson, sizeof djson, "%s/dial/dial.json", tmp);
    doc = json_load_file(djson, 0, &jerr);
    const char *row = strchr(csv, '\n');
    for (int i = 0; i < 2 && doc && row; i++, row = strchr(row + 1, '\n')) {
        double cols[16];
        int nc = 0;
        for (const char *c = row + 1; nc < 16 && *c && *c != '\n'; nc++) {
            cols[nc] = strtod(c, NULL);
            c += strcspn(c, ",\n");
            if (*c == ',') c++;
        }
        CHECK_MSG(nc == 11, "dial.csv row %d has %d columns", i, nc);
        char sjson[700];
        snprintf(sjson, sizeof sjson, "%s/dial/setting-%02d/compass.json", tmp, i);
        json_t *cdoc = json_load_file(sjson, 0, &jerr);
        json_t *want = json_object_get(json_array_get(json_object_get(cdoc, "evaluations"), 0), "expected");
        json_t *got = json_object_get(json_array_get(json_object_get(doc, "settings"), (size_t)i), "expected");
        for (int x = 0; x < 2; x++) {
            const char *axis = x ? "social" : "economic";
            json_t *w = json_object_get(want, axis), *g = json_object_get(got, axis);
            CHECK_MSG(json_is_number(w) && json_is_number(g) && json_number_value(g) == json_number_value(w),
                      "setting %d %s expected: dial.json %g, compass.json %g", i, axis, json_number_value(g), json_number_value(w));
            CHECK_MSG(nc == 11 && fabs(cols[9 + x] - json_number_value(w)) <= 1e-6 * fmax(1, fabs(json_number_value(w))),
                      "setting %d %s expected: dial.csv %g, compass.json %g", i, axis, nc == 11 ? cols[9 + x] : NAN, json_number_value(w));
        }
        json_decref(cdoc);
    }
    CHECK(doc != NULL);
    json_decref(doc);
    /* the expected positions are drawn too: a hollow marker per setting in the chart */
    int hollow = 0;
    for (int k = 0; k < xd.n_elems; k++) {
        const char *c = xml_attr(&xd.elems[k], "class"), *sr = xml_attr(&xd.elems[k], "data-series");
        hollow += c && sr && !strcmp(c, "point") && !strcmp(sr, "expected (probability-weighted)");
    }
    CHECK_MSG(hollow == 2, "dial.svg: %d expected markers, want one per setting", hollow);
    CHECK(strstr(html, "class=\"expected-line\"") && strstr(html, "economic expected"));

    /* a rerun skips both settings and writes the same table */
    rc = pt_test_run(&out, &err, BIN " dial --model '%s' --adapter '%s' --scales 0,1 --templates t2 --resamples 300 --out '%s/dial'", stories_gguf(), left,
                     tmp);
    CHECK_MSG(rc == 0 && err && strstr(err, "(scale 0) already done") && strstr(err, "(scale 1) already done") && !strstr(err, "..."),
              "rerun: rc %d, stderr: %s", rc, err ? err : "");
    free(out), free(err);
    char *csv2 = pt_test_read(path, "dial.csv");
    CHECK(csv2 && !strcmp(csv, csv2));
    free(csv2), free(svg), free(html), free(csv);
    free(xd.elems);
    /* the same directory asked for other settings is refused, not mixed up */
    rc = pt_test_run(&out, &err, BIN " dial --model '%s' --adapter '%s' --scales 0.5 --templates t2 --out '%s/dial'", stories_gguf(), left, tmp);
    CHECK_MSG(rc != 0 && err && strstr(err, "another evaluation"), "reused directory: rc %d, stderr: %s", rc, err ? err : "");
    free(out), free(err);

    /* the mix at weight 0 is left at scale 1 alone: the same position as the scale dial's */
    rc = pt_test_run(&out, &err, BIN " dial --model '%s' --mix '%s,%s' --weights 0 --templates t2 --resamples 300 --out '%s/mix'", stories_gguf(), left,
                     right, tmp);
    CHECK_MSG(rc == 0, "mix: rc %d, stderr: %s", rc, err ? err : "");
    free(out), free(err);
    snprintf(path, sizeof path, "%s/mix/setting-00/compass.json", tmp);
    for (int x = 0; x < 2; x++) {
        const char *axis = x ? "social" : "economic";
        double m0 = estimate_of(path, axis), s1 = estimate_of(s1_json, axis);
        CHECK_MSG(isfinite(m0) && m0 == s1, "%s: the mix at weight 0 gives %g, left at scale 1 %g", axis, m0, s1);
    }
}

PT_TEST(test_dial_bad_input) {
    const char *tmp = pt_test_tmpdir();
    char left[600];
    snprintf(left, sizeof left, "%s/left", tmp);
    REQUIRE(make_adapter(left, 7));
    struct { const char *args, *want; } cases[] = {
        {"--adapter '%s' --scales 0,abc", "item 2 ('abc') is not a finite number"},
        {"--adapter '%s' --scales 0,,1", "item 2"},
        {"--adapter '%s' --weights 0,1", "--scales"},
        {"--adapter '%s:0.5' --scales 0,1", "sets the scale itself"},
        {"--mix '%s' --weights 0,1", "LEFT,RIGHT"},
        {"--adapter '%s:nan' --scales 1", "not a finite number"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[900], *out = NULL, *err = NULL;
        snprintf(args, sizeof args, cases[i].args, left);
        int rc = pt_test_run(&out, &err, BIN " dial --model '%s' %s --out '%s/bad'", stories_gguf(), args, tmp);
        CHECK_MSG(rc == 2 && err && strstr(err, cases[i].want) && !strchr(strchr(err, '\n') + 1, '\n'), "'%s': rc %d, stderr: %s", args, rc,
                  err ? err : "");
        free(out), free(err);
    }
}

/* politune run: the dial section makes one stage per target, one for the mix and one that draws
 * them all on one chart (shown by --dry-run with their commands), and its mistakes are one line naming file, line and key. */
PT_TEST(test_dial_run_stage) {
    const char *d = pt_test_tmpdir();
    bool set = !getenv("POLITUNE_ASSETS");
    if (set) setenv("POLITUNE_ASSETS", pt_test_shared("assets"), 1);
    static const char *head = "model: asset:models/stories260K/stories260K.gguf\n"
                              "data:\n  pairs:\n    left: asset:data/politune/politune-left.json\n"
                              "    right: asset:data/politune/politune-right.json\n  sample: 8\n"
                              "targets: [left, right]\ntrain:\n  max_steps: 1\n";
    char body[1024];
    snprintf(body, sizeof body, "%sdial:\n  scales: [-1, 0, 1.5]\n  mix: [left, right]\n  templates: t2\n", head);
    pt_test_write(d, "dial.yaml", body);
    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err, "cd '%s' && " BIN " run dial.yaml --out '%s/run' --dry-run", d, d);
    CHECK_MSG(rc == 0 && out && strstr(out, "] dial left ... would run") && strstr(out, "politune dial --scales -1,0,1.5 --templates t2") &&
                  strstr(out, "--adapter train-left") && strstr(out, "] dial right ... would run") &&
                  strstr(out, "] dial mix ... would run") && strstr(out, "--weights 0,0.25,0.5,0.75,1") && strstr(out, "--mix train-left,train-right") &&
                  strstr(out, "] dial all ... would run") && strstr(out, "politune dial --combine --out dials dial-left dial-right dial-mix"),
              "dry run: rc %d\n%s%s", rc, out ? out : "", err ? err : "");
    free(out), free(err);
    static const struct { const char *dial, *expect; } bad[] = {
        {"dial:\n  scales: [0, lots]\n", "dial.yaml:11: dial.scales: the list: item 2 ('lots') is not a finite number"},
        {"dial:\n  mix: [left, centre]\n", "dial.yaml:11: dial.mix: 'centre' is not one of the recipe's targets"},
        {"dial:\n  weights: [0, 1]\n", "dial.yaml:11: dial.weights: goes with dial.mix"},
        {"dial:\n  scale: [0, 1]\n", "unknown key 'dial.scale'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(body, sizeof body, "%s%s", head, bad[i].dial);
        pt_test_write(d, "dial.yaml", body);
        rc = pt_test_run(&out, &err, "cd '%s' && " BIN " run dial.yaml --out '%s/bad' --dry-run", d, d);
        CHECK_MSG(rc == 2 && err && strstr(err, bad[i].expect) && !strchr(strchr(err, '\n') + 1, '\n'), "case %zu: rc %d, stderr: %s", i, rc,
                  err ? err : "");
        free(out), free(err);
    }
    if (set) unsetenv("POLITUNE_ASSETS");
}
