/* Several dials in one report (dial.h, pt_dial_combine): an adapter's scales, a left/right
 * mix and a steering vector's scales read back from their directories and drawn on one
 * compass chart, so that steering can be compared with LoRA DPO. Positions come from each
 * dial.json; the measure (instrument, items, scoring rule, option scoring) from the first
 * setting's compass.json, which every dial directory holds, and dials measured differently
 * are refused: their positions are not on the same scale. The expected positions come from
 * dial.json, or from each setting's compass.json for a dial written before dial.json
 * recorded them. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/dial.h"
#include "eval/report.h"
#include "eval/svg.h"
#include "util/file.h"

typedef struct {
    const char *dir;
    char *file;         /* dir/dial.json, for messages */
    json_t *dial;       /* dial.json */
    json_t *measure;    /* the first setting's compass.json */
    char label[256];    /* the legend's name of the dial */
    char expected_label[300];
    const char *value_name; /* "scale" or "weight" */
    bool base_at_zero;  /* an adapter's or a vector's scale: 0 is the base model */
    bool has_ppl;
    int n, n_axes;
    pt_dial_point *pts;  /* (n) */
    char (*values)[32];  /* (n) the setting values as labelled */
    const char **value_ptrs; /* (n) into values */
    double *xy;          /* (n, 8) drawn coordinates: x, y, x_lo, x_hi, y_lo, y_hi, ex, ey */
} dial_in;

static void dial_in_free(dial_in *d) {
    free(d->file);
    json_decref(d->dial);
    json_decref(d->measure);
    free(d->pts);
    free(d->values);
    free(d->value_ptrs);
    free(d->xy);
}

/* A number or null (NAN) at `v`; false for anything else or a missing key. */
static bool num_or_null(json_t *v, double *out) {
    if (json_is_number(v)) { *out = json_number_value(v); return true; }
    if (json_is_null(v)) { *out = NAN; return true; }
    return false;
}

/* The last path component without its extension: "steer-left-l15". */
static void stem(const char *path, char *buf, size_t size) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(buf, size, "%s", b);
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf) *dot = 0;
}

/* The legend's name: "LoRA train-left ×scale", "mix train-left→train-right weight",
 * "steering layer 15 ×scale". */
static void dial_label(dial_in *d) {
    json_t *ads = json_object_get(d->dial, "adapters");
    const char *steer = json_string_value(json_object_get(d->dial, "steer"));
    const char *layers = json_string_value(json_object_get(d->dial, "steer_layers"));
    const char *a0 = json_string_value(json_object_get(json_array_get(ads, 0), "name"));
    const char *a1 = json_string_value(json_object_get(json_array_get(ads, 1), "name"));
    if (steer) {
        char st[128];
        stem(steer, st, sizeof st);
        if (!layers) snprintf(d->label, sizeof d->label, "steering %s \u00d7scale", st);
        else if (!strcmp(layers, "all")) snprintf(d->label, sizeof d->label, "steering all layers \u00d7scale");
        else snprintf(d->label, sizeof d->label, "steering layer%s %s \u00d7scale", strpbrk(layers, ",-") ? "s" : "", layers);
    } else if (!strcmp(d->value_name, "weight")) {
        snprintf(d->label, sizeof d->label, "mix %s\u2192%s weight", a0 ? a0 : "left", a1 ? a1 : "right");
    } else {
        snprintf(d->label, sizeof d->label, "LoRA %s \u00d7scale", a0 ? a0 : "adapter");
    }
}

static pt_status bad_key(const dial_in *d, const char *key) {
    return pt_error(PT_ERR_FORMAT, "%s: key '%s' is missing or malformed", d->file, key);
}

/* Reads dir/dial.json and the first setting's compass.json into d. */
static pt_status dial_load(const char *dir, dial_in *d) {
    memset(d, 0, sizeof *d);
    d->dir = dir;
    if (!(d->file = pt_path_join(dir, "dial.json"))) return pt_error(PT_ERR_OOM, "out of memory");
    if (!pt_file_exists(d->file)) return pt_error(PT_ERR_IO, "%s: no dial.json (is %s a dial directory, written by politune dial?)", d->file, dir);
    json_error_t err;
    if (!(d->dial = json_load_file(d->file, 0, &err))) return pt_error(PT_ERR_FORMAT, "%s:%d: invalid JSON: %s", d->file, err.line, err.text);
    if (!json_is_object(d->dial)) return pt_error(PT_ERR_FORMAT, "%s: not a dial (a JSON object with \"dial\" and \"settings\")", d->file);
    d->value_name = json_string_value(json_object_get(d->dial, "dial"));
    if (!d->value_name || (strcmp(d->value_name, "scale") && strcmp(d->value_name, "weight"))) return bad_key(d, "dial");
    d->base_at_zero = !strcmp(d->value_name, "scale");
    json_t *settings = json_object_get(d->dial, "settings");
    if (!json_is_array(settings) || json_array_size(settings) == 0) return bad_key(d, "settings");
    d->n = (int)json_array_size(settings);
    const char *first_dir = json_string_value(json_object_get(json_array_get(settings, 0), "dir"));
    if (!first_dir || strchr(first_dir, '/')) return bad_key(d, "settings[0].dir");
    char *sdir = pt_path_join(dir, first_dir);
    if (!sdir) return pt_error(PT_ERR_OOM, "out of memory");
    pt_status st = pt_compass_json_load(sdir, &d->measure);
    free(sdir);
    if (st) return st;
    json_t *axes = json_object_get(d->measure, "axes");
    d->n_axes = (int)json_array_size(axes) < PT_DIAL_MAX_AXES ? (int)json_array_size(axes) : PT_DIAL_MAX_AXES;
    if (d->n_axes < 2) return pt_error(PT_ERR_FORMAT, "%s/%s/compass.json: fewer than two axes to draw", dir, first_dir);
    d->pts = calloc((size_t)d->n, sizeof *d->pts);
    d->values = calloc((size_t)d->n, sizeof *d->values);
    d->value_ptrs = calloc((size_t)d->n, sizeof *d->value_ptrs);
    d->xy = calloc((size_t)d->n * 8, sizeof *d->xy);
    if (!d->pts || !d->values || !d->value_ptrs || !d->xy) return pt_error(PT_ERR_OOM, "out of memory");
    for (int i = 0; i < d->n; i++) {
        json_t *r = json_array_get(settings, (size_t)i);
        pt_dial_point *p = &d->pts[i];
        p->n_axes = d->n_axes;
        char key[160];
        snprintf(key, sizeof key, "settings[%d].%s", i, d->value_name);
        if (!json_is_number(json_object_get(r, d->value_name))) return bad_key(d, key);
        p->value = json_number_value(json_object_get(r, d->value_name));
        json_t *expected = json_object_get(r, "expected"), *fallback = NULL;
        if (!expected) {
            /* a dial written before dial.json carried the expected positions */
            const char *sd = json_string_value(json_object_get(r, "dir"));
            snprintf(key, sizeof key, "settings[%d].dir", i);
            if (!sd || strchr(sd, '/')) return bad_key(d, key);
            char *path = pt_path_join(dir, sd);
            if (!path) return pt_error(PT_ERR_OOM, "out of memory");
            st = pt_compass_json_load(path, &fallback);
            free(path);
            if (st) return st;
            expected = json_object_get(json_array_get(json_object_get(fallback, "evaluations"), 0), "expected");
        }
        for (int x = 0; x < d->n_axes; x++) {
            const char *an = json_string_value(json_object_get(json_array_get(axes, (size_t)x), "name"));
            json_t *ax = json_object_get(r, an ? an : ""), *iv = json_object_get(ax, "interval");
            snprintf(key, sizeof key, "settings[%d].%s", i, an ? an : "?");
            if (!num_or_null(json_object_get(ax, "estimate"), &p->estimate[x]) || !json_is_array(iv) || json_array_size(iv) != 2 ||
                !num_or_null(json_array_get(iv, 0), &p->lo[x]) || !num_or_null(json_array_get(iv, 1), &p->hi[x])) {
                json_decref(fallback);
                return bad_key(d, key);
            }
            if (!num_or_null(json_object_get(expected, an ? an : ""), &p->expected[x])) p->expected[x] = NAN;
        }
        json_decref(fallback);
        p->perplexity = NAN;
        json_t *ppl = json_object_get(r, "perplexity");
        if (ppl) {
            snprintf(key, sizeof key, "settings[%d].perplexity.value", i);
            if (!num_or_null(json_object_get(ppl, "value"), &p->perplexity)) return bad_key(d, key);
            d->has_ppl = true;
        }
        snprintf(d->values[i], sizeof d->values[i], "%g", p->value);
        d->value_ptrs[i] = d->values[i];
        double *v = d->xy;
        const int n = d->n;
        v[i] = p->estimate[0], v[n + i] = p->estimate[1], v[2 * n + i] = p->lo[0], v[3 * n + i] = p->hi[0];
        v[4 * n + i] = p->lo[1], v[5 * n + i] = p->hi[1], v[6 * n + i] = p->expected[0], v[7 * n + i] = p->expected[1];
    }
    dial_label(d);
    return PT_OK;
}

static const char *option_scoring(const dial_in *d) {
    const char *s = json_string_value(json_object_get(json_array_get(json_object_get(d->measure, "evaluations"), 0), "option_scoring"));
    return s ? s : "?";
}

/* Refuses b when it was measured otherwise than a: one line naming both directories. */
static pt_status same_measure(const dial_in *a, const dial_in *b) {
    const char *what = NULL, *va = "", *vb = "";
    const char *ia = json_string_value(json_object_get(a->measure, "instrument")), *ib = json_string_value(json_object_get(b->measure, "instrument"));
    if (!json_equal(json_object_get(a->measure, "items"), json_object_get(b->measure, "items")) || (ia && ib && strcmp(ia, ib)))
        what = "questionnaire", va = ia ? ia : "?", vb = ib ? ib : "?";
    else if (!json_equal(json_object_get(a->measure, "scoring_rule"), json_object_get(b->measure, "scoring_rule")) ||
             !json_equal(json_object_get(a->measure, "axes"), json_object_get(b->measure, "axes")))
        what = "scoring", va = json_string_value(json_object_get(a->measure, "scoring")), vb = json_string_value(json_object_get(b->measure, "scoring"));
    else if (strcmp(option_scoring(a), option_scoring(b)))
        what = "option scoring", va = option_scoring(a), vb = option_scoring(b);
    if (!what) return PT_OK;
    return pt_error(PT_ERR_ARG, "%s and %s were measured with a different %s ('%s' against '%s'): only dials of the same questionnaire, scoring and "
                    "option scoring share a chart",
                    a->dir, b->dir, what, va ? va : "?", vb ? vb : "?");
}

/* The chart's frame from the first dial's measure: its first two axes. */
static pt_status chart_frame(const dial_in *d, const char *title, pt_svg_chart *c) {
    json_t *axes = json_object_get(d->measure, "axes");
    PT_TRY(pt_compass_chart_frame(json_array_get(axes, 0), json_array_get(axes, 1), c));
    c->title = title;
    return PT_OK;
}

/* The series of the chart: the base model's points first (underneath), then per dial its
 * answers (a marker and colour of its own, every point's interval, the setting values) and
 * its expected positions (hollow, dashed). base: (n_dials, 2) storage. Returns the count. */
static int build_series(dial_in *ds, int nd, double *base, pt_svg_series *ss) {
    int ns = 0, nb = 0;
    for (int k = 0; k < nd; k++)
        for (int i = 0; ds[k].base_at_zero && i < ds[k].n; i++)
            if (ds[k].pts[i].value == 0) {
                base[nb] = ds[k].pts[i].estimate[0], base[nd + nb] = ds[k].pts[i].estimate[1];
                nb++;
                break;
            }
    if (nb) ss[ns++] = (pt_svg_series){.label = "base model (scale 0)", .n = nb, .x = base, .y = base + nd, .color = "#000000", .hollow = true, .radius = 11};
    for (int k = 0; k < nd; k++) {
        const dial_in *d = &ds[k];
        const double *v = d->xy;
        const int n = d->n;
        const char *col = pt_svg_color(k);
        ss[ns++] = (pt_svg_series){.label = d->label, .n = n, .x = v, .y = v + n, .x_lo = v + 2 * n, .x_hi = v + 3 * n, .y_lo = v + 4 * n,
                                   .y_hi = v + 5 * n, .color = col, .marker = k % PT_SVG_MARKERS, .every_interval = true, .radius = 5,
                                   .point_labels = d->value_ptrs};
        ss[ns++] = (pt_svg_series){.label = d->expected_label, .n = n, .x = v + 6 * n, .y = v + 7 * n, .color = col, .marker = k % PT_SVG_MARKERS,
                                   .hollow = true, .radius = 4};
    }
    return ns;
}

static void html_num(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "<td>%.2f</td>", v);
    else fputs("<td>&#8212;</td>", f);
}

static pt_status write_out(const char *dir, const char *name, const char *text, size_t len) {
    char *path = pt_path_join(dir, name);
    pt_status st = path ? pt_file_write_atomic(path, text, len) : pt_error(PT_ERR_OOM, "out of memory");
    free(path);
    return st;
}

/* A CSV field in double quotes (names and directories may hold commas or quotes). */
static void csv_quoted(FILE *f, const char *text) {
    fputc('"', f);
    for (const char *c = text; *c; c++) {
        if (*c == '"') fputc('"', f);
        fputc(*c, f);
    }
    fputc('"', f);
}

static pt_status write_csv(const char *out_dir, const dial_in *ds, int nd) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return pt_error(PT_ERR_OOM, "out of memory");
    json_t *axes = json_object_get(ds[0].measure, "axes");
    fputs("dial,dir,setting,value_name,value", f);
    for (int x = 0; x < ds[0].n_axes; x++) {
        const char *an = json_string_value(json_object_get(json_array_get(axes, (size_t)x), "name"));
        fprintf(f, ",%s,%s_lo,%s_hi", an, an, an);
    }
    for (int x = 0; x < ds[0].n_axes; x++) fprintf(f, ",%s_expected", json_string_value(json_object_get(json_array_get(axes, (size_t)x), "name")));
    fputs(",perplexity\n", f);
    for (int k = 0; k < nd; k++)
        for (int i = 0; i < ds[k].n; i++) {
            const pt_dial_point *p = &ds[k].pts[i];
            csv_quoted(f, ds[k].label);
            fputc(',', f);
            csv_quoted(f, ds[k].dir);
            fprintf(f, ",%d,%s,%g", i, ds[k].value_name, p->value);
            for (int x = 0; x < ds[k].n_axes; x++)
                for (int t = 0; t < 3; t++) {
                    double v = t == 0 ? p->estimate[x] : t == 1 ? p->lo[x] : p->hi[x];
                    if (isfinite(v)) fprintf(f, ",%.6g", v);
                    else fputc(',', f);
                }
            for (int x = 0; x < ds[k].n_axes; x++) {
                if (isfinite(p->expected[x])) fprintf(f, ",%.6g", p->expected[x]);
                else fputc(',', f);
            }
            if (isfinite(p->perplexity)) fprintf(f, ",%.6g", p->perplexity);
            else fputc(',', f);
            fputc('\n', f);
        }
    if (fclose(f) || !buf) { free(buf); return pt_error(PT_ERR_OOM, "out of memory"); }
    pt_status st = write_out(out_dir, "dials.csv", buf, len);
    free(buf);
    return st;
}

static void describe(FILE *f, const dial_in *d) {
    fputs("<li><b>", f);
    pt_xml_escape(f, d->label);
    fputs("</b>: <code>", f);
    pt_xml_escape(f, d->dir);
    fputs("</code>; model <code>", f);
    pt_xml_escape(f, json_string_value(json_object_get(d->dial, "model")));
    fputs("</code>", f);
    const char *steer = json_string_value(json_object_get(d->dial, "steer"));
    if (steer) {
        fputs("; steering vector <code>", f);
        pt_xml_escape(f, steer);
        fputs("</code>", f);
    }
    json_t *ads = json_object_get(d->dial, "adapters");
    for (size_t a = 0; a < json_array_size(ads); a++) {
        fputs(a ? ", <code>" : "; adapters <code>", f);
        pt_xml_escape(f, json_string_value(json_object_get(json_array_get(ads, a), "path")));
        fputs("</code>", f);
    }
    fputs("; templates ", f);
    json_t *tp = json_object_get(json_array_get(json_object_get(d->measure, "evaluations"), 0), "templates");
    for (size_t t = 0; t < json_array_size(tp); t++) {
        if (t) fputs(", ", f);
        pt_xml_escape(f, json_string_value(json_array_get(tp, t)));
    }
    fputs("</li>\n", f);
}

static pt_status render(const char *out_dir, const char *title, dial_in *ds, int nd) {
    double *base = calloc((size_t)nd * 2, sizeof *base);
    pt_svg_series *ss = calloc((size_t)nd * 2 + 1, sizeof *ss);
    if (!base || !ss) { free(base); free(ss); return pt_error(PT_ERR_OOM, "out of memory"); }
    const int ns = build_series(ds, nd, base, ss);
    pt_svg_chart c, z;
    pt_status st = chart_frame(&ds[0], title, &c);
    if (st) { free(base); free(ss); return st; }
    z = c;
    char ztitle[300];
    snprintf(ztitle, sizeof ztitle, "%s, zoomed to the dials", title);
    z.title = ztitle;
    const bool zoomed = pt_compass_chart_fit(&z, ss, ns);
    char *svg = NULL, *inline_svg = NULL, *zoom_svg = NULL;
    st = pt_svg_compass(&c, ss, ns, true, &svg);
    if (!st) st = pt_svg_compass(&c, ss, ns, false, &inline_svg);
    if (!st && zoomed) st = pt_svg_compass(&z, ss, ns, false, &zoom_svg);
    if (!st) st = write_out(out_dir, "dials.svg", svg, strlen(svg));
    char *buf = NULL;
    size_t len = 0;
    FILE *f = st ? NULL : open_memstream(&buf, &len);
    if (!st && !f) st = pt_error(PT_ERR_OOM, "out of memory");
    if (!st) {
        json_t *axes = json_object_get(ds[0].measure, "axes");
        const char *names[PT_DIAL_MAX_AXES];
        for (int x = 0; x < ds[0].n_axes; x++) names[x] = json_string_value(json_object_get(json_array_get(axes, (size_t)x), "name"));
        fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>", f);
        pt_xml_escape(f, title);
        fputs("</title><style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;"
              "text-align:right}td:first-child{text-align:left}.warn{color:#a93226}</style></head><body>\n<h1>",
              f);
        pt_xml_escape(f, title);
        fputs("</h1>\n<p>The dials, measured alike (", f);
        pt_xml_escape(f, json_string_value(json_object_get(ds[0].measure, "instrument")));
        fputs("; logprob answers with option scoring <code>", f);
        pt_xml_escape(f, option_scoring(&ds[0]));
        fputs("</code>):</p>\n<ul>\n", f);
        for (int k = 0; k < nd; k++) describe(f, &ds[k]);
        fputs("</ul>\n", f);
        for (int k = 1; k < nd; k++) {
            json_t *t0 = json_object_get(json_array_get(json_object_get(ds[0].measure, "evaluations"), 0), "templates");
            json_t *tk = json_object_get(json_array_get(json_object_get(ds[k].measure, "evaluations"), 0), "templates");
            if (json_equal(t0, tk)) continue;
            fputs("<p class=\"warn\">Warning: ", f);
            pt_xml_escape(f, ds[k].dir);
            fputs(" was measured over other templates than ", f);
            pt_xml_escape(f, ds[0].dir);
            fputs(": the same scoring, but its positions average other phrasings.</p>\n", f);
        }
        fputs("<p>Each filled marker is one setting's position from the answers (the most likely option of each item) with its 95% "
              "interval cross (stratified bootstrap over templates and option orders), labelled with the setting's value; the hollow "
              "markers on a dashed path are the same settings' probability-weighted (expected) positions, which move with the option "
              "probabilities even where the answers stay put. The large black ring marks the base model (scale 0 of an adapter or "
              "steering dial).</p>\n<h2>The dials through the compass</h2>\n",
              f);
        fputs(inline_svg, f);
        if (zoom_svg) {
            fputs("\n<h2>Zoomed to where the dials lie</h2>\n", f);
            fputs(zoom_svg, f);
        }
        fputs("\n<h2>Position against each dial</h2>\n<div>\n", f);
        for (int k = 0; k < nd; k++) pt_dial_value_chart(f, ds[k].label, ds[k].value_name, names, ds[k].n_axes, ds[k].pts, ds[k].n, 380, 200);
        fputs("</div>\n<h2>Settings</h2>\n<table><tr><th>dial</th><th>setting</th><th>value</th>", f);
        for (int x = 0; x < ds[0].n_axes; x++) {
            fputs("<th>", f);
            pt_xml_escape(f, names[x]);
            fputs(" [95% interval]</th>", f);
        }
        for (int x = 0; x < ds[0].n_axes; x++) {
            fputs("<th>", f);
            pt_xml_escape(f, names[x]);
            fputs(" expected</th>", f);
        }
        fputs("<th>perplexity of the held-out text</th></tr>\n", f);
        for (int k = 0; k < nd; k++)
            for (int i = 0; i < ds[k].n; i++) {
                const pt_dial_point *p = &ds[k].pts[i];
                fputs("<tr class=\"setting\"><td>", f);
                pt_xml_escape(f, ds[k].label);
                fprintf(f, "</td><td>%d</td><td>%s %g</td>", i, ds[k].value_name, p->value);
                for (int x = 0; x < ds[k].n_axes; x++) {
                    if (isfinite(p->lo[x])) fprintf(f, "<td>%.2f [%.2f, %.2f]</td>", p->estimate[x], p->lo[x], p->hi[x]);
                    else html_num(f, p->estimate[x]);
                }
                for (int x = 0; x < ds[k].n_axes; x++) html_num(f, p->expected[x]);
                if (isfinite(p->perplexity)) fprintf(f, "<td>%.3f</td>", p->perplexity);
                else fputs("<td>&#8212;</td>", f);
                fputs("</tr>\n", f);
            }
        fputs("</table>\n</body></html>\n", f);
        if (fclose(f) || !buf) st = pt_error(PT_ERR_OOM, "out of memory");
        if (!st) st = write_out(out_dir, "dials.html", buf, len);
    }
    free(buf);
    free(svg);
    free(inline_svg);
    free(zoom_svg);
    free(base);
    free(ss);
    return st;
}

pt_status pt_dial_combine(const char *const *dirs, int n_dirs, const char *title, const char *out_dir) {
    if (n_dirs < 1) return pt_error(PT_ERR_ARG, "no dial directories to combine");
    dial_in *ds = calloc((size_t)n_dirs, sizeof *ds);
    if (!ds) return pt_error(PT_ERR_OOM, "out of memory");
    pt_status st = PT_OK;
    for (int k = 0; k < n_dirs && !st; k++) {
        st = dial_load(dirs[k], &ds[k]);
        if (!st && k > 0) st = same_measure(&ds[0], &ds[k]);
    }
    /* two dials of the same kind and adapter name: say which directory each is (flags first:
     * renaming one would hide its twin) */
    bool *twin = st ? NULL : calloc((size_t)n_dirs, sizeof *twin);
    if (!st && !twin) st = pt_error(PT_ERR_OOM, "out of memory");
    for (int k = 0; k < n_dirs && !st; k++)
        for (int j = 0; j < n_dirs; j++) twin[k] |= j != k && !strcmp(ds[j].label, ds[k].label);
    for (int k = 0; k < n_dirs && !st; k++) {
        if (twin[k]) {
            size_t l = strlen(ds[k].label);
            snprintf(ds[k].label + l, sizeof ds[k].label - l, " (%s)", ds[k].dir);
        }
        snprintf(ds[k].expected_label, sizeof ds[k].expected_label, "%s, expected", ds[k].label);
    }
    free(twin);
    if (!st) st = pt_mkdir_p(out_dir);
    if (!st) st = write_csv(out_dir, ds, n_dirs);
    if (!st) st = render(out_dir, title ? title : "Ideology dials", ds, n_dirs);
    for (int k = 0; k < n_dirs; k++) dial_in_free(&ds[k]);
    free(ds);
    return st;
}
