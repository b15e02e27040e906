/* From compass.json documents to chart series: evaluations are grouped by label (model or
 * adapter), in order of appearance, each group a point or a trajectory through its
 * evaluations; the plotted position is the mean over templates, with its 95% bootstrap
 * interval where compass.json has one, else its standard deviation as error bars. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/report.h"
#include "eval/svg.h"
#include "util/file.h"

pt_status pt_compass_json_load(const char *path, json_t **out) {
    *out = NULL;
    size_t n = strlen(path);
    char *file = n > 5 && !strcmp(path + n - 5, ".json") ? strdup(path) : pt_path_join(path, "compass.json");
    if (!file) return pt_error(PT_ERR_OOM, "out of memory");
    if (!pt_file_exists(file)) {
        pt_status st = pt_error(PT_ERR_IO, "%s: no compass.json (is %s a compass result directory?)", file, path);
        free(file);
        return st;
    }
    json_error_t err;
    json_t *root = json_load_file(file, 0, &err);
    pt_status st = PT_OK;
    if (!root) st = pt_error(PT_ERR_FORMAT, "%s:%d: invalid JSON: %s", file, err.line, err.text);
    else if (!json_is_object(root) || !json_is_string(json_object_get(root, "format")) ||
             strncmp(json_string_value(json_object_get(root, "format")), "politune-compass/", 17) ||
             !json_is_array(json_object_get(root, "evaluations")) || !json_is_array(json_object_get(root, "items")) ||
             !json_is_array(json_object_get(root, "axes")))
        st = pt_error(PT_ERR_FORMAT, "%s: not a politune compass result (no \"format\": \"politune-compass/1\" with axes, items, evaluations)", file);
    free(file);
    if (st) { json_decref(root); return st; }
    *out = root;
    return PT_OK;
}

static double jnum(json_t *v) { return json_is_number(v) ? json_number_value(v) : NAN; }

/* The values drawn per point, in pt_svg_series order. */
enum { V_X, V_Y, V_SX, V_SY, V_XLO, V_XHI, V_YLO, V_YHI, V_COUNT };

typedef struct {
    char *label;
    int doc;
    int n, cap;
    double *v[V_COUNT]; /* (n) each */
    long *step;         /* (n) */
} series_buf;

static int series_push(series_buf *s, const double *vals, long step) {
    if (s->n == s->cap) {
        int nc = s->cap ? s->cap * 2 : 8;
        for (int k = 0; k < V_COUNT; k++) {
            double *a = realloc(s->v[k], sizeof(double) * (size_t)nc);
            if (!a) return -1;
            s->v[k] = a;
        }
        long *e = realloc(s->step, sizeof(long) * (size_t)nc);
        if (!e) return -1;
        s->step = e;
        s->cap = nc;
    }
    for (int k = 0; k < V_COUNT; k++) s->v[k][s->n] = vals[k];
    s->step[s->n] = step;
    s->n++;
    return 0;
}

static void series_free(series_buf *s) {
    free(s->label);
    for (int k = 0; k < V_COUNT; k++) free(s->v[k]);
    free(s->step);
}

/* The chart's axes from the first document: the two named in "chart" (else the first two). */
static pt_status chart_axes(json_t *doc, pt_svg_chart *c) {
    json_t *axes = json_object_get(doc, "axes"), *chart = json_object_get(doc, "chart");
    const char *xn = json_string_value(json_array_get(chart, 0)), *yn = json_string_value(json_array_get(chart, 1));
    json_t *ax = NULL, *ay = NULL;
    for (size_t i = 0; i < json_array_size(axes); i++) {
        json_t *a = json_array_get(axes, i);
        const char *nm = json_string_value(json_object_get(a, "name"));
        if (!nm) continue;
        if (!ax && (!xn || !strcmp(nm, xn))) ax = a;
        else if (!ay && (!yn || !strcmp(nm, yn))) ay = a;
    }
    if (!ax || !ay) return pt_error(PT_ERR_FORMAT, "chart: the result names fewer than two axes to draw");
    PT_TRY(pt_compass_chart_frame(ax, ay, c));
    c->title = json_string_value(json_object_get(doc, "instrument"));
    return PT_OK;
}

pt_status pt_compass_chart_frame(json_t *ax, json_t *ay, pt_svg_chart *c) {
    memset(c, 0, sizeof *c);
    c->x_name = json_string_value(json_object_get(ax, "name"));
    c->y_name = json_string_value(json_object_get(ay, "name"));
    c->x_lo = json_string_value(json_array_get(json_object_get(ax, "poles"), 0));
    c->x_hi = json_string_value(json_array_get(json_object_get(ax, "poles"), 1));
    c->y_lo = json_string_value(json_array_get(json_object_get(ay, "poles"), 0));
    c->y_hi = json_string_value(json_array_get(json_object_get(ay, "poles"), 1));
    c->x_min = jnum(json_array_get(json_object_get(ax, "range"), 0));
    c->x_max = jnum(json_array_get(json_object_get(ax, "range"), 1));
    c->y_min = jnum(json_array_get(json_object_get(ay, "range"), 0));
    c->y_max = jnum(json_array_get(json_object_get(ay, "range"), 1));
    if (!(c->x_max > c->x_min) || !(c->y_max > c->y_min)) return pt_error(PT_ERR_FORMAT, "chart: axis ranges missing or empty");
    c->quadrants = c->x_min < 0 && c->x_max > 0 && c->y_min < 0 && c->y_max > 0;
    return PT_OK;
}

/* The drawn values of one evaluation: mean, sd and interval on each chart axis. */
static void eval_values(json_t *e, const char *xn, const char *yn, double *vals) {
    json_t *pos = json_object_get(e, "position");
    json_t *px = json_object_get(pos, xn), *py = json_object_get(pos, yn);
    vals[V_X] = jnum(json_object_get(px, "mean"));
    vals[V_Y] = jnum(json_object_get(py, "mean"));
    vals[V_SX] = jnum(json_object_get(px, "sd"));
    vals[V_SY] = jnum(json_object_get(py, "sd"));
    vals[V_XLO] = jnum(json_array_get(json_object_get(px, "interval"), 0));
    vals[V_XHI] = jnum(json_array_get(json_object_get(px, "interval"), 1));
    vals[V_YLO] = jnum(json_array_get(json_object_get(py, "interval"), 0));
    vals[V_YHI] = jnum(json_array_get(json_object_get(py, "interval"), 1));
}

/* Groups every evaluation of every document into series by (document, label). */
static pt_status collect_series(json_t *const *docs, int n_docs, const pt_svg_chart *c, series_buf **out, int *n_out) {
    series_buf *sb = NULL;
    int ns = 0;
    pt_status st = PT_OK;
    for (int d = 0; d < n_docs && !st; d++) {
        json_t *evs = json_object_get(docs[d], "evaluations");
        for (size_t i = 0; i < json_array_size(evs) && !st; i++) {
            json_t *e = json_array_get(evs, i);
            const char *label = json_string_value(json_object_get(e, "label"));
            char buf[64];
            if (!label) { snprintf(buf, sizeof buf, "run %d", d + 1); label = buf; }
            int k = -1;
            for (int j = 0; j < ns; j++)
                if (sb[j].doc == d && !strcmp(sb[j].label, label)) k = j;
            if (k < 0) {
                series_buf *nb = realloc(sb, sizeof *nb * (size_t)(ns + 1));
                if (!nb) { st = pt_error(PT_ERR_OOM, "out of memory"); break; }
                sb = nb;
                memset(&sb[ns], 0, sizeof sb[ns]);
                sb[ns].doc = d;
                if (!(sb[ns].label = strdup(label))) { st = pt_error(PT_ERR_OOM, "out of memory"); break; }
                k = ns++;
            }
            double vals[V_COUNT];
            eval_values(e, c->x_name, c->y_name, vals);
            if (series_push(&sb[k], vals, (long)json_integer_value(json_object_get(e, "step")))) st = pt_error(PT_ERR_OOM, "out of memory");
        }
    }
    *out = sb;
    *n_out = ns;
    return st;
}

/* The same label in two documents: say which is which. */
static pt_status disambiguate(series_buf *sb, int ns, const char *const *names) {
    if (!names || ns == 0) return PT_OK;
    /* flags first: renaming one would hide its twin */
    bool *dup = calloc((size_t)ns, sizeof *dup);
    if (!dup) return pt_error(PT_ERR_OOM, "out of memory");
    for (int j = 0; j < ns; j++)
        for (int k = 0; k < ns; k++) dup[j] |= k != j && !strcmp(sb[k].label, sb[j].label) && sb[k].doc != sb[j].doc;
    for (int j = 0; j < ns; j++) {
        if (!dup[j] || !names[sb[j].doc]) continue;
        size_t n = strlen(sb[j].label) + strlen(names[sb[j].doc]) + 4;
        char *l = malloc(n);
        if (!l) { free(dup); return pt_error(PT_ERR_OOM, "out of memory"); }
        snprintf(l, n, "%s (%s)", sb[j].label, names[sb[j].doc]);
        free(sb[j].label);
        sb[j].label = l;
    }
    free(dup);
    return PT_OK;
}

/* Narrows the chart's ranges to the drawn points with their intervals (or error bars), padded
 * and rounded out to whole units, when that shows them at least twice as large; *zoomed tells
 * whether it did. The same range on both axes keeps distances comparable across them. */
static void fit_ranges(pt_svg_chart *c, const pt_svg_series *ss, int ns, bool *zoomed) {
    double lo = INFINITY, hi = -INFINITY;
    for (int j = 0; j < ns; j++)
        for (int k = 0; k < ss[j].n; k++) {
            const double x = ss[j].x[k], y = ss[j].y[k];
            if (!isfinite(x) || !isfinite(y)) continue;
            double xl = ss[j].x_lo ? ss[j].x_lo[k] : NAN, xh = ss[j].x_hi ? ss[j].x_hi[k] : NAN;
            double yl = ss[j].y_lo ? ss[j].y_lo[k] : NAN, yh = ss[j].y_hi ? ss[j].y_hi[k] : NAN;
            double sx = ss[j].sx && isfinite(ss[j].sx[k]) ? ss[j].sx[k] : 0, sy = ss[j].sy && isfinite(ss[j].sy[k]) ? ss[j].sy[k] : 0;
            const double v[4] = {isfinite(xl) ? xl : x - sx, isfinite(xh) ? xh : x + sx, isfinite(yl) ? yl : y - sy, isfinite(yh) ? yh : y + sy};
            for (int t = 0; t < 4; t++) {
                lo = fmin(lo, v[t]);
                hi = fmax(hi, v[t]);
            }
        }
    *zoomed = false;
    if (!(hi >= lo)) return;
    double half = fmax(hi - lo, 1.0) * 0.6, mid = (lo + hi) / 2;
    double nlo = floor(mid - half), nhi = ceil(mid + half);
    nhi = nlo + 4 * ceil((nhi - nlo) / 4); /* the axis labels fall at quarters: whole numbers */
    nlo = fmax(nlo, fmax(c->x_min, c->y_min));
    nhi = fmin(nhi, fmin(c->x_max, c->y_max));
    if (!(nhi > nlo) || 2 * (nhi - nlo) > fmin(c->x_max - c->x_min, c->y_max - c->y_min)) return;
    c->x_min = c->y_min = nlo;
    c->x_max = c->y_max = nhi;
    c->quadrants = nlo < 0 && nhi > 0;
    *zoomed = true;
}

static pt_status chart(json_t *const *docs, const char *const *names, int n_docs, bool standalone, bool fit, char **svg) {
    *svg = NULL;
    if (n_docs < 1) return pt_error(PT_ERR_ARG, "chart: no documents");
    pt_svg_chart c;
    PT_TRY(chart_axes(docs[0], &c));
    series_buf *sb = NULL;
    int ns = 0;
    pt_status st = collect_series(docs, n_docs, &c, &sb, &ns);
    if (!st) st = disambiguate(sb, ns, names);
    pt_svg_series *ss = calloc((size_t)(ns ? ns : 1), sizeof *ss);
    if (!st && !ss) st = pt_error(PT_ERR_OOM, "out of memory");
    for (int j = 0; !st && j < ns; j++)
        ss[j] = (pt_svg_series){.label = sb[j].label, .n = sb[j].n, .x = sb[j].v[V_X], .y = sb[j].v[V_Y], .sx = sb[j].v[V_SX],
                                .sy = sb[j].v[V_SY], .step = sb[j].step, .x_lo = sb[j].v[V_XLO], .x_hi = sb[j].v[V_XHI],
                                .y_lo = sb[j].v[V_YLO], .y_hi = sb[j].v[V_YHI]};
    bool draw = true;
    char title[256];
    if (!st && fit) {
        fit_ranges(&c, ss, ns, &draw);
        snprintf(title, sizeof title, "%s, zoomed to the runs", c.title ? c.title : "Compass");
        c.title = title;
    }
    if (!st && draw) st = pt_svg_compass(&c, ss, ns, standalone, svg);
    for (int j = 0; j < ns; j++) series_free(&sb[j]);
    free(sb);
    free(ss);
    return st;
}

pt_status pt_compass_chart(json_t *const *docs, const char *const *names, int n_docs, bool standalone, char **svg) {
    return chart(docs, names, n_docs, standalone, false, svg);
}

bool pt_compass_chart_fit(pt_svg_chart *c, const pt_svg_series *series, int n_series) {
    bool zoomed = false;
    fit_ranges(c, series, n_series, &zoomed);
    return zoomed;
}

pt_status pt_compass_chart_zoomed(json_t *const *docs, const char *const *names, int n_docs, char **svg) {
    return chart(docs, names, n_docs, false, true, svg);
}
