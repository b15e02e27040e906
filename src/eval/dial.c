/* The ideology dial (dial.h): one compass run per adapter setting through pt_compass_run with
 * the setting's adapter list, each saved as its own result directory so that an interrupted
 * dial resumes where it stopped, then the summary tables and charts. Positions are read back
 * from each setting's compass.json, so fresh and resumed settings report the same numbers. */
#include "eval/dial.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/report.h"
#include "eval/stats.h"
#include "eval/svg.h"
#include "model/steer.h"
#include "tokenizer/tokenizer.h"
#include "util/file.h"

pt_status pt_dial_parse_list(const char *text, const char *what, double **out, int *n) {
    *out = NULL;
    *n = 0;
    size_t cap = 1;
    for (const char *p = text; *p; p++) cap += *p == ',';
    double *v = malloc(sizeof(double) * cap);
    if (!v) return pt_error(PT_ERR_OOM, "out of memory");
    int k = 0;
    for (const char *p = text;;) {
        size_t len = strcspn(p, ",");
        char buf[64];
        char *end = NULL;
        errno = 0;
        if (len > 0 && len < sizeof buf) {
            memcpy(buf, p, len);
            buf[len] = 0;
            v[k] = strtod(buf, &end);
        }
        if (len == 0 || len >= sizeof buf || !end || end == buf || *end || errno || !isfinite(v[k])) {
            free(v);
            return pt_error(PT_ERR_ARG, "%s: item %d ('%.*s') is not a finite number", what, k + 1, (int)len, p);
        }
        k++;
        if (!p[len]) break;
        p += len + 1;
    }
    *out = v;
    *n = k;
    return PT_OK;
}

/* "scale -0.5" / "weight 0.25": the series label of a setting. */
static void setting_label(char *buf, size_t size, const pt_dial_config *c, int i) {
    snprintf(buf, size, "%s %g", c->value_name ? c->value_name : "scale", c->values[i]);
}

/* "runs/left:0.75 + runs/right:0.25": what the setting applies, recorded as its adapter. */
static char *setting_spec(const pt_dial_config *c, int i) {
    if (c->steer) {
        char *s = malloc(strlen(c->steer_path ? c->steer_path : "steer") + 48);
        if (s) sprintf(s, "steer %s:%g", c->steer_path ? c->steer_path : "steer", c->values[i]);
        return s;
    }
    size_t cap = 64;
    for (int a = 0; a < c->n_adapters; a++) cap += strlen(c->adapter_paths[a]) + 40;
    char *s = malloc(cap);
    if (!s) return NULL;
    size_t len = 0;
    s[0] = 0;
    for (int a = 0; a < c->n_adapters; a++)
        len += (size_t)snprintf(s + len, cap - len, "%s%s:%g", a ? " + " : "", c->adapter_paths[a], (double)c->scales[(size_t)i * c->n_adapters + a]);
    return s;
}

/* The position of a setting's (only) evaluation in its compass.json; checks that it is the
 * same setting (label and adapter spec) so a directory reused for another dial is refused. */
static pt_status read_point(const char *path, const pt_scoring *s, const char *label, const char *spec, pt_dial_point *p) {
    json_t *doc = NULL;
    PT_TRY(pt_compass_json_load(path, &doc));
    json_t *evs = json_object_get(doc, "evaluations"), *e = json_array_get(evs, 0);
    const char *got_label = json_string_value(json_object_get(e, "label"));
    const char *got_spec = json_string_value(json_object_get(e, "adapter"));
    pt_status st = PT_OK;
    if (json_array_size(evs) != 1 || !got_label || !got_spec || strcmp(got_label, label) || strcmp(got_spec, spec))
        st = pt_error(PT_ERR_ARG, "%s holds another evaluation than the dial's setting '%s' (%s): remove it or choose another --out", path,
                      label, spec);
    json_t *pos = json_object_get(e, "position"), *expected = json_object_get(e, "expected");
    for (int x = 0; !st && x < p->n_axes; x++) {
        json_t *ev = json_object_get(expected, s->axes[x].name);
        p->expected[x] = json_is_number(ev) ? json_number_value(ev) : NAN;
        json_t *ax = json_object_get(pos, s->axes[x].name), *est = json_object_get(ax, "estimate"), *iv = json_object_get(ax, "interval");
        p->estimate[x] = json_is_number(est) ? json_number_value(est) : NAN;
        p->lo[x] = json_is_number(json_array_get(iv, 0)) ? json_number_value(json_array_get(iv, 0)) : NAN;
        p->hi[x] = json_is_number(json_array_get(iv, 1)) ? json_number_value(json_array_get(iv, 1)) : NAN;
    }
    json_decref(doc);
    return st;
}

static json_t *num(double x) { return isfinite(x) ? json_real(x) : json_null(); }

static pt_status write_json(const char *dir, const pt_dial_config *c, const pt_scoring *s, const pt_dial_point *pts, const char *steer_layers) {
    json_t *doc = json_object(), *ads = json_array(), *rows = json_array();
    for (int a = 0; a < c->n_adapters; a++)
        json_array_append_new(ads, json_pack("{s:s,s:s}", "name", c->adapter_names[a], "path", c->adapter_paths[a]));
    for (int i = 0; i < c->n_settings; i++) {
        json_t *r = json_object(), *sc = json_array();
        char sub[32];
        snprintf(sub, sizeof sub, "setting-%02d", i);
        json_object_set_new(r, c->value_name ? c->value_name : "scale", json_real(pts[i].value));
        for (int a = 0; a < c->n_adapters; a++) json_array_append_new(sc, json_real(pts[i].scales[a]));
        json_object_set_new(r, "scales", sc);
        json_object_set_new(r, "dir", json_string(sub));
        for (int x = 0; x < pts[i].n_axes; x++)
            json_object_set_new(r, s->axes[x].name, json_pack("{s:o,s:[o,o]}", "estimate", num(pts[i].estimate[x]), "interval", num(pts[i].lo[x]), num(pts[i].hi[x])));
        json_t *ex = json_object();
        for (int x = 0; x < pts[i].n_axes; x++) json_object_set_new(ex, s->axes[x].name, num(pts[i].expected[x]));
        json_object_set_new(r, "expected", ex);
        if (c->ppl_text) json_object_set_new(r, "perplexity", json_pack("{s:o,s:i}", "value", num(pts[i].perplexity), "tokens", pts[i].ppl_tokens));
        json_array_append_new(rows, r);
    }
    json_object_set_new(doc, "model", json_string(c->model_path ? c->model_path : ""));
    json_object_set_new(doc, "dial", json_string(c->value_name ? c->value_name : "scale"));
    json_object_set_new(doc, "adapters", ads);
    if (c->steer) json_object_set_new(doc, "steer", json_string(c->steer_path ? c->steer_path : ""));
    if (c->steer && steer_layers) json_object_set_new(doc, "steer_layers", json_string(steer_layers));
    json_object_set_new(doc, "interval", json_pack("{s:f,s:i,s:I}", "level", 0.95, "resamples", c->resamples > 0 ? c->resamples : PT_STATS_RESAMPLES,
                                                   "seed", (json_int_t)c->seed));
    json_object_set_new(doc, "settings", rows);
    char *text = json_dumps(doc, JSON_INDENT(2));
    json_decref(doc);
    if (!text) return pt_error(PT_ERR_OOM, "out of memory");
    char *path = pt_path_join(dir, "dial.json");
    pt_status st = path ? pt_file_write_atomic(path, text, strlen(text)) : pt_error(PT_ERR_OOM, "out of memory");
    free(path);
    free(text);
    return st;
}

/* CSV numbers: empty where there is none. */
static void csv_num(FILE *f, double x) {
    if (isfinite(x)) fprintf(f, ",%.6g", x);
    else fputs(",", f);
}

static pt_status write_csv(const char *dir, const pt_dial_config *c, const pt_scoring *s, const pt_dial_point *pts) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return pt_error(PT_ERR_OOM, "out of memory");
    fprintf(f, "setting,%s", c->value_name ? c->value_name : "scale");
    for (int a = 0; a < c->n_adapters; a++) fprintf(f, ",scale_%s", c->adapter_names[a]);
    for (int x = 0; x < s->n_axes && x < PT_DIAL_MAX_AXES; x++) fprintf(f, ",%s,%s_lo,%s_hi", s->axes[x].name, s->axes[x].name, s->axes[x].name);
    for (int x = 0; x < s->n_axes && x < PT_DIAL_MAX_AXES; x++) fprintf(f, ",%s_expected", s->axes[x].name);
    if (c->ppl_text) fputs(",perplexity", f);
    fputc('\n', f);
    for (int i = 0; i < c->n_settings; i++) {
        fprintf(f, "%d,%g", i, pts[i].value);
        for (int a = 0; a < c->n_adapters; a++) fprintf(f, ",%g", (double)pts[i].scales[a]);
        for (int x = 0; x < pts[i].n_axes; x++) { csv_num(f, pts[i].estimate[x]); csv_num(f, pts[i].lo[x]); csv_num(f, pts[i].hi[x]); }
        for (int x = 0; x < pts[i].n_axes; x++) csv_num(f, pts[i].expected[x]);
        if (c->ppl_text) csv_num(f, pts[i].perplexity);
        fputc('\n', f);
    }
    fclose(f);
    if (!buf) return pt_error(PT_ERR_OOM, "out of memory");
    char *path = pt_path_join(dir, "dial.csv");
    pt_status st = path ? pt_file_write_atomic(path, buf, len) : pt_error(PT_ERR_OOM, "out of memory");
    free(path);
    free(buf);
    return st;
}

/* The path through the compass (first two axes): one series for the line, then one per
 * setting carrying its point and interval cross. */
static pt_status compass_svg(const pt_dial_config *c, const pt_scoring *s, const pt_dial_point *pts, bool standalone, bool zoom, char **out) {
    *out = NULL;
    const int n = c->n_settings;
    double *x = malloc(sizeof(double) * n * 8);
    pt_svg_series *ser = calloc((size_t)n + 2, sizeof *ser);
    char (*labels)[48] = calloc((size_t)n, sizeof *labels);
    if (!x || !ser || !labels) { free(x); free(ser); free(labels); return pt_error(PT_ERR_OOM, "out of memory"); }
    double *y = x + n, *xlo = x + 2 * n, *xhi = x + 3 * n, *ylo = x + 4 * n, *yhi = x + 5 * n, *ex = x + 6 * n, *ey = x + 7 * n;
    for (int i = 0; i < n; i++) {
        ex[i] = pts[i].expected[0], ey[i] = pts[i].n_axes > 1 ? pts[i].expected[1] : 0;
        x[i] = pts[i].estimate[0], y[i] = pts[i].n_axes > 1 ? pts[i].estimate[1] : 0;
        xlo[i] = pts[i].lo[0], xhi[i] = pts[i].hi[0];
        ylo[i] = pts[i].n_axes > 1 ? pts[i].lo[1] : NAN, yhi[i] = pts[i].n_axes > 1 ? pts[i].hi[1] : NAN;
    }
    ser[0] = (pt_svg_series){.label = "path", .n = n, .x = x, .y = y};
    for (int i = 0; i < n; i++) {
        setting_label(labels[i], sizeof labels[i], c, i);
        ser[i + 1] = (pt_svg_series){.label = labels[i], .n = 1, .x = x + i, .y = y + i, .x_lo = xlo + i, .x_hi = xhi + i, .y_lo = ylo + i, .y_hi = yhi + i};
    }
    /* the probability-weighted positions: they move where the answers do not */
    ser[n + 1] = (pt_svg_series){.label = "expected (probability-weighted)", .n = n, .x = ex, .y = ey, .hollow = true, .radius = 4.5,
                                 .color = "#555555"};
    const pt_axis *ax = &s->axes[0], *ay = s->n_axes > 1 ? &s->axes[1] : &s->axes[0];
    pt_svg_chart ch = {c->title ? c->title : "Ideology dial", ax->name, ay->name, ax->pole_lo, ax->pole_hi, ay->pole_lo, ay->pole_hi,
                       ax->lo, ax->hi, ay->lo, ay->hi, !strcmp(s->kind ? s->kind : "", "pct")};
    /* zoom: the same chart narrowed to the points (none when that would not halve the range) */
    char ztitle[300];
    snprintf(ztitle, sizeof ztitle, "%s, zoomed to the settings", ch.title);
    if (zoom) ch.title = ztitle;
    pt_status st = zoom && !pt_compass_chart_fit(&ch, ser, n + 2) ? PT_OK : pt_svg_compass(&ch, ser, n + 2, standalone, out);
    free(x);
    free(ser);
    free(labels);
    return st;
}

void pt_dial_value_chart(FILE *f, const char *title, const char *value_name, const char *const *axis_names, int n_axes, const pt_dial_point *pts,
                         int n, double width, double height) {
    const double L = 60, T = title ? 34 : 16, W = width, H = height;
    double vmin = INFINITY, vmax = -INFINITY, ymin = 0, ymax = 0;
    for (int i = 0; i < n; i++) {
        vmin = fmin(vmin, pts[i].value), vmax = fmax(vmax, pts[i].value);
        for (int x = 0; x < n_axes; x++) {
            const double v[4] = {pts[i].estimate[x], pts[i].lo[x], pts[i].hi[x], pts[i].expected[x]};
            for (int k = 0; k < 4; k++)
                if (isfinite(v[k])) ymin = fmin(ymin, v[k]), ymax = fmax(ymax, v[k]);
        }
    }
    if (!(vmax - vmin > 1e-12)) vmin -= 1, vmax += 1;
    /* whole units, a little room above and below */
    ymin = floor(ymin - 0.05 * (ymax - ymin)), ymax = ceil(ymax + 0.05 * (ymax - ymin));
    if (ymax - ymin < 1) ymin -= 1, ymax += 1;
#define PX(v) (L + ((v) - vmin) / (vmax - vmin) * W)
#define PY(v) (T + (ymax - fmax(ymin, fmin(ymax, (v)))) / (ymax - ymin) * H)
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"value-chart\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" font-size=\"12\">\n",
            L + W + 160, T + H + 44);
    if (title) {
        fprintf(f, "<text x=\"%.1f\" y=\"18\" font-weight=\"bold\">", L);
        pt_xml_escape(f, title);
        fputs("</text>\n", f);
    }
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#888\"/>\n", L, T, W, H);
    fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#bbb\" stroke-dasharray=\"4 3\"/>\n", L, L + W, PY(0.0), PY(0.0));
    for (int i = 0; i < n; i++)
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n", PX(pts[i].value), T + H + 16, pts[i].value);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", L + W / 2, T + H + 34);
    pt_xml_escape(f, value_name ? value_name : "scale");
    fputs("</text>\n", f);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text><text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", L - 6, T + 4, ymax,
            L - 6, T + H + 4, ymin);
    for (int x = 0; x < n_axes; x++) {
        const char *col = pt_svg_color(x);
        for (int e = 0; e < 2; e++) { /* e 0: the answers, e 1: the expected positions */
            fputs(e ? "<polyline class=\"expected-line\" stroke-dasharray=\"6 4\" data-axis=\"" : "<polyline class=\"axis-line\" data-axis=\"", f);
            pt_xml_escape(f, axis_names[x]);
            fprintf(f, "\" fill=\"none\" stroke=\"%s\" stroke-width=\"%s\" points=\"", col, e ? "1.5" : "2");
            for (int i = 0; i < n; i++) {
                double v = e ? pts[i].expected[x] : pts[i].estimate[x];
                if (isfinite(v)) fprintf(f, "%.1f,%.1f ", PX(pts[i].value), PY(v));
            }
            fputs("\"/>\n", f);
        }
        for (int i = 0; i < n; i++) {
            double px = PX(pts[i].value);
            if (isfinite(pts[i].estimate[x]) && isfinite(pts[i].lo[x]) && isfinite(pts[i].hi[x]))
                fprintf(f, "<path class=\"interval\" d=\"M%.1f %.1fV%.1fM%.1f %.1fH%.1fM%.1f %.1fH%.1f\" stroke=\"%s\" data-lo=\"%g\" data-hi=\"%g\"/>\n", px,
                        PY(pts[i].lo[x]), PY(pts[i].hi[x]), px - 4, PY(pts[i].lo[x]), px + 4, px - 4, PY(pts[i].hi[x]), px + 4, col, pts[i].lo[x],
                        pts[i].hi[x]);
            if (isfinite(pts[i].estimate[x])) {
                fprintf(f, "<circle class=\"value-point\" cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\" data-axis=\"", px, PY(pts[i].estimate[x]), col);
                pt_xml_escape(f, axis_names[x]);
                fprintf(f, "\" data-value=\"%g\" data-estimate=\"%g\"/>\n", pts[i].value, pts[i].estimate[x]);
            }
            if (isfinite(pts[i].expected[x])) {
                fprintf(f, "<circle class=\"value-expected\" cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"#ffffff\" stroke=\"%s\" stroke-width=\"1.5\" data-axis=\"", px,
                        PY(pts[i].expected[x]), col);
                pt_xml_escape(f, axis_names[x]);
                fprintf(f, "\" data-value=\"%g\" data-estimate=\"%g\"/>\n", pts[i].value, pts[i].expected[x]);
            }
        }
        for (int e = 0; e < 2; e++) {
            double ly = T + 10 + 20.0 * (2 * x + e);
            fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"%s/><text x=\"%.1f\" y=\"%.1f\">", L + W + 10,
                    L + W + 30, ly, ly, col, e ? " stroke-dasharray=\"4 3\"" : "", L + W + 36, ly + 4);
            pt_xml_escape(f, axis_names[x]);
            fputs(e ? " expected</text>\n" : "</text>\n", f);
        }
    }
    fputs("</svg>\n", f);
#undef PX
#undef PY
}

static pt_status write_charts(const char *dir, const pt_dial_config *c, const pt_scoring *s, const pt_dial_point *pts) {
    char *svg = NULL, *inline_svg = NULL;
    char *zoom_svg = NULL;
    PT_TRY(compass_svg(c, s, pts, true, false, &svg));
    pt_status st = compass_svg(c, s, pts, false, false, &inline_svg);
    if (!st) st = compass_svg(c, s, pts, false, true, &zoom_svg);
    char *path = pt_path_join(dir, "dial.svg");
    if (!st) st = path ? pt_file_write_atomic(path, svg, strlen(svg)) : pt_error(PT_ERR_OOM, "out of memory");
    free(path);
    free(svg);
    if (st) { free(inline_svg); free(zoom_svg); return st; }
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) { free(inline_svg); free(zoom_svg); return pt_error(PT_ERR_OOM, "out of memory"); }
    const char *title = c->title ? c->title : "Ideology dial";
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>", f);
    pt_xml_escape(f, title);
    fputs("</title><style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;"
          "text-align:right}</style></head><body>\n<h1>",
          f);
    pt_xml_escape(f, title);
    fputs("</h1>\n<p>Model: ", f);
    pt_xml_escape(f, c->model_path ? c->model_path : "?");
    if (c->steer) {
        fputs(". Steering vector: ", f);
        pt_xml_escape(f, c->steer_path ? c->steer_path : "?");
    }
    if (c->n_adapters) fputs(". Adapters:", f);
    for (int a = 0; a < c->n_adapters; a++) {
        fputs(a ? ", " : " ", f);
        pt_xml_escape(f, c->adapter_names[a]);
        fputs(" = ", f);
        pt_xml_escape(f, c->adapter_paths[a]);
    }
    fprintf(f, ". Each point is one setting with its 95%% interval (stratified bootstrap over templates and option orders, %d resamples).</p>\n",
            c->resamples > 0 ? c->resamples : PT_STATS_RESAMPLES);
    fputs("<h2>The path through the compass</h2>\n", f);
    fputs(inline_svg, f);
    free(inline_svg);
    if (zoom_svg) {
        fputs("\n<h2>Zoomed to where the settings lie</h2>\n", f);
        fputs(zoom_svg, f);
        free(zoom_svg);
    }
    fputs("\n<h2>Position against the dial</h2>\n", f);
    const char *names[PT_DIAL_MAX_AXES];
    for (int x = 0; x < pts[0].n_axes; x++) names[x] = s->axes[x].name;
    pt_dial_value_chart(f, NULL, c->value_name ? c->value_name : "scale", names, pts[0].n_axes, pts, c->n_settings, 600, 300);
    fputs("<p>Solid: the position of the answers (the most likely option of each item) with its 95% interval; dashed, hollow: the "
          "probability-weighted (expected) position, which moves with the option probabilities even where the answers stay put.</p>\n",
          f);
    fputs("<h2>Settings</h2>\n<table><tr><th>setting</th><th>", f);
    pt_xml_escape(f, c->value_name ? c->value_name : "scale");
    fputs("</th>", f);
    for (int a = 0; a < c->n_adapters; a++) {
        fputs("<th>scale ", f);
        pt_xml_escape(f, c->adapter_names[a]);
        fputs("</th>", f);
    }
    for (int x = 0; x < pts[0].n_axes; x++) {
        fputs("<th>", f);
        pt_xml_escape(f, s->axes[x].name);
        fputs(" (95% interval)</th>", f);
    }
    for (int x = 0; x < pts[0].n_axes; x++) {
        fputs("<th>", f);
        pt_xml_escape(f, s->axes[x].name);
        fputs(" expected</th>", f);
    }
    if (c->ppl_text) fputs("<th>perplexity of the held-out text</th>", f);
    fputs("</tr>\n", f);
    for (int i = 0; i < c->n_settings; i++) {
        fprintf(f, "<tr><td>setting-%02d</td><td>%g</td>", i, pts[i].value);
        for (int a = 0; a < c->n_adapters; a++) fprintf(f, "<td>%g</td>", (double)pts[i].scales[a]);
        for (int x = 0; x < pts[i].n_axes; x++) {
            if (isfinite(pts[i].lo[x])) fprintf(f, "<td>%.2f [%.2f, %.2f]</td>", pts[i].estimate[x], pts[i].lo[x], pts[i].hi[x]);
            else fprintf(f, "<td>%.2f</td>", pts[i].estimate[x]);
        }
        for (int x = 0; x < pts[i].n_axes; x++) fprintf(f, "<td>%.2f</td>", pts[i].expected[x]);
        if (c->ppl_text) fprintf(f, "<td>%.3f</td>", pts[i].perplexity);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n</body></html>\n", f);
    fclose(f);
    if (!buf) return pt_error(PT_ERR_OOM, "out of memory");
    path = pt_path_join(dir, "dial.html");
    st = path ? pt_file_write_atomic(path, buf, len) : pt_error(PT_ERR_OOM, "out of memory");
    free(path);
    free(buf);
    return st;
}

/* "15", "10-20", "2,5-7" or "all": the vector's layers, recorded so that the combined report
 * can name them. */
static void layers_text(const bool *layers, int n_layers, char *buf, size_t size) {
    size_t len = 0;
    int count = 0;
    buf[0] = 0;
    for (int l = 0; l < n_layers; l++) count += !layers || layers[l];
    if (count == n_layers) { snprintf(buf, size, "all"); return; }
    for (int l = 0; l < n_layers && len + 24 < size; l++) {
        if (!layers[l] || (l > 0 && layers[l - 1])) continue;
        int e = l;
        while (e + 1 < n_layers && layers[e + 1]) e++;
        len += (size_t)(e > l ? snprintf(buf + len, size - len, "%s%d-%d", len ? "," : "", l, e) : snprintf(buf + len, size - len, "%s%d", len ? "," : "", l));
    }
}

/* exp(mean over tokens 2..n of -log p(token | before)) of the text under the setting. */
static pt_status perplexity(const pt_model *m, const pt_dial_config *c, const pt_dial_point *p, double *ppl, int *n_used) {
    *ppl = NAN;
    *n_used = 0;
    if (!m->tok) return pt_error(PT_ERR_ARG, "%s: perplexity needs the model's tokenizer", m->path ? m->path : "model");
    int32_t *ids = NULL;
    size_t n = 0;
    PT_TRY(pt_tokenizer_encode(m->tok, c->ppl_text, strlen(c->ppl_text), true, &ids, &n));
    int cap = m->cfg.max_ctx > 0 && m->cfg.max_ctx < PT_DIAL_PPL_MAX_TOKENS ? m->cfg.max_ctx : PT_DIAL_PPL_MAX_TOKENS;
    if (n > (size_t)cap) n = (size_t)cap;
    if (n < 2) { free(ids); return pt_error(PT_ERR_ARG, "the perplexity text has fewer than two tokens"); }
    pt_engine *e = NULL;
    pt_status st = pt_engine_new(&e, m, 1, (int)n);
    if (!st && c->n_adapters) st = pt_engine_set_adapters(e, c->adapters, p->scales, c->n_adapters);
    if (!st && c->steer) st = pt_engine_set_steer(e, c->steer, (float)p->value, c->steer_layers);
    const float *lg = NULL;
    if (!st) st = pt_engine_forward_one(e, 0, ids, (int)n, PT_LOGITS_ALL, &lg);
    if (!st) {
        const int V = m->cfg.vocab_size;
        double nll = 0;
        for (size_t t = 0; t + 1 < n; t++) {
            const float *row = lg + t * (size_t)V;
            float mx = row[0];
            for (int k = 1; k < V; k++) mx = row[k] > mx ? row[k] : mx;
            double z = 0;
            for (int k = 0; k < V; k++) z += exp((double)row[k] - mx);
            nll += mx + log(z) - row[ids[t + 1]];
        }
        *ppl = exp(nll / (double)(n - 1));
        *n_used = (int)n;
    }
    pt_engine_free(e);
    free(ids);
    return st;
}

pt_status pt_dial_run(const pt_model *m, const pt_questionnaire *q, const pt_scoring *s, const pt_dial_config *c, const char *out_dir,
                      pt_dial_point *points) {
    if (c->n_settings <= 0) return pt_error(PT_ERR_ARG, "the dial has no settings");
    if (c->steer ? c->n_adapters != 0 : c->n_adapters <= 0 || c->n_adapters > PT_ENGINE_MAX_ADAPTERS)
        return pt_error(PT_ERR_ARG, "the dial turns 1..%d adapters or one steering vector (got %d adapters%s)", PT_ENGINE_MAX_ADAPTERS, c->n_adapters,
                        c->steer ? " and a vector" : "");
    PT_TRY(pt_mkdir_p(out_dir));
    pt_status st = PT_OK;
    for (int i = 0; i < c->n_settings && !st; i++) {
        pt_dial_point *p = &points[i];
        memset(p, 0, sizeof *p);
        p->value = c->values[i];
        memcpy(p->scales, c->scales + (size_t)i * c->n_adapters, sizeof(float) * c->n_adapters);
        p->n_axes = s->n_axes < PT_DIAL_MAX_AXES ? s->n_axes : PT_DIAL_MAX_AXES;
        char sub[32], label[64];
        snprintf(sub, sizeof sub, "setting-%02d", i);
        setting_label(label, sizeof label, c, i);
        char *spec = setting_spec(c, i), *sdir = pt_path_join(out_dir, sub), *jpath = sdir ? pt_path_join(sdir, "compass.json") : NULL;
        if (!spec || !sdir || !jpath) st = pt_error(PT_ERR_OOM, "out of memory");
        if (!st && pt_file_exists(jpath)) {
            p->resumed = true;
        } else if (!st) {
            if (c->progress) c->progress(c->user, i, c->n_settings, false, p);
            pt_compass_config cfg = c->compass;
            cfg.n_adapters = c->n_adapters;
            cfg.adapters = c->adapters;
            cfg.adapter_scales = p->scales;
            if (c->steer) {
                cfg.steer = c->steer;
                cfg.steer_scale = (float)p->value;
                cfg.steer_layers = c->steer_layers;
            }
            pt_compass_result *res = NULL;
            st = pt_compass_run(m, NULL, q, s, &cfg, &res);
            pt_compass_meta meta = {label, c->model_path, spec, q->path, s->path, 0, 0, c->resamples, c->seed};
            if (!st) st = pt_compass_save(sdir, res, &meta);
            pt_compass_result_free(res);
        }
        if (!st) st = read_point(jpath, s, label, spec, p);
        p->perplexity = NAN;
        if (!st && c->ppl_text) st = perplexity(m, c, p, &p->perplexity, &p->ppl_tokens);
        if (!st && c->progress) c->progress(c->user, i, c->n_settings, true, p);
        free(spec);
        free(sdir);
        free(jpath);
    }
    char layers[256] = "";
    if (c->steer) layers_text(c->steer_layers ? c->steer_layers : c->steer->has, m->cfg.n_layers, layers, sizeof layers);
    if (!st) st = write_json(out_dir, c, s, points, layers);
    if (!st) st = write_csv(out_dir, c, s, points);
    if (!st) st = write_charts(out_dir, c, s, points);
    return st;
}
