/* From compass.json documents to chart series: evaluations are grouped by label (model or
 * adapter), in order of appearance, each group a point or a trajectory through its
 * evaluations; the plotted position is the mean over templates with its standard deviation
 * as error bars. */
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

typedef struct {
    char *label;
    int doc;
    int n, cap;
    double *x, *y, *sx, *sy;
    long *step;
} series_buf;

static int series_push(series_buf *s, double x, double y, double sx, double sy, long step) {
    if (s->n == s->cap) {
        int nc = s->cap ? s->cap * 2 : 8;
        double *a = realloc(s->x, sizeof(double) * nc), *b = a ? realloc(s->y, sizeof(double) * nc) : NULL;
        if (a) s->x = a;
        if (b) s->y = b;
        double *c = b ? realloc(s->sx, sizeof(double) * nc) : NULL;
        if (c) s->sx = c;
        double *d = c ? realloc(s->sy, sizeof(double) * nc) : NULL;
        if (d) s->sy = d;
        long *e = d ? realloc(s->step, sizeof(long) * nc) : NULL;
        if (e) s->step = e;
        if (!e) return -1;
        s->cap = nc;
    }
    s->x[s->n] = x;
    s->y[s->n] = y;
    s->sx[s->n] = sx;
    s->sy[s->n] = sy;
    s->step[s->n] = step;
    s->n++;
    return 0;
}

pt_status pt_compass_chart(json_t *const *docs, const char *const *names, int n_docs, bool standalone, char **svg) {
    *svg = NULL;
    if (n_docs < 1) return pt_error(PT_ERR_ARG, "chart: no documents");
    json_t *axes = json_object_get(docs[0], "axes"), *chart = json_object_get(docs[0], "chart");
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
    xn = json_string_value(json_object_get(ax, "name"));
    yn = json_string_value(json_object_get(ay, "name"));
    pt_svg_chart c = {0};
    c.x_name = xn;
    c.y_name = yn;
    c.x_lo = json_string_value(json_array_get(json_object_get(ax, "poles"), 0));
    c.x_hi = json_string_value(json_array_get(json_object_get(ax, "poles"), 1));
    c.y_lo = json_string_value(json_array_get(json_object_get(ay, "poles"), 0));
    c.y_hi = json_string_value(json_array_get(json_object_get(ay, "poles"), 1));
    c.x_min = jnum(json_array_get(json_object_get(ax, "range"), 0));
    c.x_max = jnum(json_array_get(json_object_get(ax, "range"), 1));
    c.y_min = jnum(json_array_get(json_object_get(ay, "range"), 0));
    c.y_max = jnum(json_array_get(json_object_get(ay, "range"), 1));
    if (!(c.x_max > c.x_min) || !(c.y_max > c.y_min)) return pt_error(PT_ERR_FORMAT, "chart: axis ranges missing or empty");
    c.quadrants = c.x_min < 0 && c.x_max > 0 && c.y_min < 0 && c.y_max > 0;
    c.title = json_string_value(json_object_get(docs[0], "instrument"));
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
            json_t *pos = json_object_get(e, "position");
            json_t *px = json_object_get(pos, xn), *py = json_object_get(pos, yn);
            if (series_push(&sb[k], jnum(json_object_get(px, "mean")), jnum(json_object_get(py, "mean")), jnum(json_object_get(px, "sd")),
                            jnum(json_object_get(py, "sd")), (long)json_integer_value(json_object_get(e, "step"))))
                st = pt_error(PT_ERR_OOM, "out of memory");
        }
    }
    /* the same label in two documents: say which is which */
    char *dup = calloc((size_t)(ns ? ns : 1), 1);
    if (!st && !dup) st = pt_error(PT_ERR_OOM, "out of memory");
    for (int j = 0; !st && j < ns; j++)
        for (int k = 0; k < ns; k++) dup[j] |= k != j && !strcmp(sb[k].label, sb[j].label) && sb[k].doc != sb[j].doc;
    for (int j = 0; !st && names && j < ns; j++) {
        if (!dup[j] || !names[sb[j].doc]) continue;
        size_t n = strlen(sb[j].label) + strlen(names[sb[j].doc]) + 4;
        char *l = malloc(n);
        if (!l) { st = pt_error(PT_ERR_OOM, "out of memory"); break; }
        snprintf(l, n, "%s (%s)", sb[j].label, names[sb[j].doc]);
        free(sb[j].label);
        sb[j].label = l;
    }
    pt_svg_series *ss = calloc((size_t)(ns ? ns : 1), sizeof *ss);
    if (!st && !ss) st = pt_error(PT_ERR_OOM, "out of memory");
    for (int j = 0; !st && j < ns; j++) ss[j] = (pt_svg_series){sb[j].label, sb[j].n, sb[j].x, sb[j].y, sb[j].sx, sb[j].sy, sb[j].step};
    if (!st) st = pt_svg_compass(&c, ss, ns, standalone, svg);
    for (int j = 0; j < ns; j++) {
        free(sb[j].label);
        free(sb[j].x);
        free(sb[j].y);
        free(sb[j].sx);
        free(sb[j].sy);
        free(sb[j].step);
    }
    free(sb);
    free(ss);
    free(dup);
    return st;
}
