/* Drawing the compass chart as SVG text (see svg.h for the layout contract). */
#include "eval/svg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const palette[] = {"#1f4e9c", "#c0392b", "#1e8449", "#7d3c98", "#b9770e", "#117a65", "#515a5a", "#a93226"};

const char *pt_svg_color(int i) { return palette[(i < 0 ? -i : i) % (int)(sizeof palette / sizeof palette[0])]; }

void pt_xml_escape(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default:
            /* control characters other than tab/newline are not allowed in XML 1.0 */
            if ((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n' && *s != '\r') fputc(' ', f);
            else fputc(*s, f);
        }
    }
}

static double clampd(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

void pt_svg_pixel(const pt_svg_chart *c, double x, double y, double *px, double *py) {
    double fx = (clampd(x, c->x_min, c->x_max) - c->x_min) / (c->x_max - c->x_min);
    double fy = (clampd(y, c->y_min, c->y_max) - c->y_min) / (c->y_max - c->y_min);
    *px = PT_SVG_LEFT + fx * PT_SVG_SIZE;
    *py = PT_SVG_TOP + PT_SVG_SIZE - fy * PT_SVG_SIZE;
}

/* A "nice" grid step: about 20 cells across the range. */
static double grid_step(double range) {
    double raw = range / 20, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static void fmt_value(char *b, size_t n, double v) {
    snprintf(b, n, "%.2f", v);
    if (!strcmp(b, "-0.00")) snprintf(b, n, "0.00");
}

/* The title, centred over the whole chart and shrunk to fit its width (at about 0.62 em per
 * bold character), so a long instrument name is never cut at an edge. */
static void draw_title(FILE *f, const char *title) {
    if (!title) return;
    size_t n = 0;
    for (const char *p = title; *p; p++) n += ((unsigned char)*p & 0xC0) != 0x80; /* characters, not bytes */
    double avail = PT_SVG_WIDTH - 24.0, size = 16.0;
    if (n > 0 && 0.62 * size * (double)n > avail) size = avail / (0.62 * (double)n);
    fprintf(f, "<text class=\"title\" x=\"%.2f\" y=\"28\" text-anchor=\"middle\" font-size=\"%.1f\" font-weight=\"bold\">", PT_SVG_WIDTH / 2.0, size);
    pt_xml_escape(f, title);
    fputs("</text>\n", f);
}

static void draw_quadrants(FILE *f, double cx, double cy) {
    const double L = PT_SVG_LEFT, T = PT_SVG_TOP, R = L + PT_SVG_SIZE, B = T + PT_SVG_SIZE;
    fputs("<g class=\"quadrants\" fill-opacity=\"0.35\">\n", f);
    fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#ff7575\"/>\n", L, T, cx - L, cy - T);
    fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#42aaff\"/>\n", cx, T, R - cx, cy - T);
    fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#9aed97\"/>\n", L, cy, cx - L, B - cy);
    fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#c09aec\"/>\n", cx, cy, R - cx, B - cy);
    fputs("</g>\n", f);
}

/* Grid lines, the frame, the axes through the origin and the tick labels. */
static void draw_grid(FILE *f, const pt_svg_chart *c, double cx, double cy) {
    const double L = PT_SVG_LEFT, T = PT_SVG_TOP, S = PT_SVG_SIZE, R = L + S, B = T + S;
    fputs("<g class=\"grid\" stroke=\"#000000\" stroke-opacity=\"0.15\" stroke-width=\"1\">\n", f);
    double gx = grid_step(c->x_max - c->x_min), gy = grid_step(c->y_max - c->y_min);
    for (double v = ceil(c->x_min / gx) * gx; v <= c->x_max + 1e-9; v += gx) {
        double px, py;
        pt_svg_pixel(c, v, c->y_min, &px, &py);
        fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", px, T, px, B);
    }
    for (double v = ceil(c->y_min / gy) * gy; v <= c->y_max + 1e-9; v += gy) {
        double px, py;
        pt_svg_pixel(c, c->x_min, v, &px, &py);
        fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", L, py, R, py);
    }
    fputs("</g>\n", f);
    fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"none\" stroke=\"#000000\" stroke-width=\"1.5\"/>\n", L, T, S, S);
    fprintf(f, "<line class=\"axis\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#000000\" stroke-width=\"2\"/>\n", L, cy, R, cy);
    fprintf(f, "<line class=\"axis\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#000000\" stroke-width=\"2\"/>\n", cx, T, cx, B);
    fputs("<g class=\"ticks\" fill=\"#333333\" font-size=\"10\">\n", f);
    for (int k = 0; k <= 4; k++) {
        double vx = c->x_min + (c->x_max - c->x_min) * k / 4, vy = c->y_min + (c->y_max - c->y_min) * k / 4, px, py;
        pt_svg_pixel(c, vx, vy, &px, &py);
        fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">%g</text>\n", px, B + 14, vx);
        fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\">%g</text>\n", L - 6, py + 4, vy);
    }
    fputs("</g>\n", f);
}

/* Axis names and pole labels. */
static void draw_axis_labels(FILE *f, const pt_svg_chart *c) {
    const double L = PT_SVG_LEFT, T = PT_SVG_TOP, S = PT_SVG_SIZE, R = L + S, B = T + S;
    fputs("<g class=\"labels\" font-size=\"13\">\n", f);
    if (c->x_lo) { fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"start\">", L, B + 32); pt_xml_escape(f, c->x_lo); fputs("</text>\n", f); }
    if (c->x_hi) { fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\">", R, B + 32); pt_xml_escape(f, c->x_hi); fputs("</text>\n", f); }
    if (c->x_name) { fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" font-weight=\"bold\">", L + S / 2, B + 32); pt_xml_escape(f, c->x_name); fputs("</text>\n", f); }
    if (c->y_hi) { fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\" transform=\"rotate(-90 %.2f %.2f)\">", L - 40, T, L - 40, T); pt_xml_escape(f, c->y_hi); fputs("</text>\n", f); }
    if (c->y_lo) { fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"start\" transform=\"rotate(-90 %.2f %.2f)\">", L - 40, B, L - 40, B); pt_xml_escape(f, c->y_lo); fputs("</text>\n", f); }
    if (c->y_name) {
        fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" font-weight=\"bold\" transform=\"rotate(-90 %.2f %.2f)\">", L - 40, T + S / 2, L - 40, T + S / 2);
        pt_xml_escape(f, c->y_name);
        fputs("</text>\n", f);
    }
    fputs("</g>\n", f);
}

/* Point labels already placed (x0, y0, x1, y1), so that later ones step down instead of
 * covering them (runs that land on the same point, as adapters that barely move do). */
typedef struct {
    double box[64][4];
    int n;
} label_boxes;

static void place_label(label_boxes *lb, double w, double *lx, double *ly) {
    for (int moved = 1; moved;) {
        moved = 0;
        for (int k = 0; k < lb->n; k++)
            if (*lx < lb->box[k][2] && lb->box[k][0] < *lx + w && *ly - 12 < lb->box[k][3] && lb->box[k][1] < *ly + 2) {
                *ly = lb->box[k][3] + 12 + 1;
                moved = 1;
            }
    }
    if (lb->n < 64) {
        double *b = lb->box[lb->n++];
        b[0] = *lx, b[1] = *ly - 12, b[2] = *lx + w, b[3] = *ly + 2;
    }
}

static bool has_interval(const pt_svg_series *s, int i) {
    return s->x_lo && s->x_hi && s->y_lo && s->y_hi && isfinite(s->x_lo[i]) && isfinite(s->x_hi[i]) && isfinite(s->y_lo[i]) && isfinite(s->y_hi[i]);
}

/* The uncertainty around point i: its interval as a cross with end caps when there is one,
 * else the spread bars (one standard deviation). */
static void draw_uncertainty(FILE *f, const pt_svg_chart *c, const pt_svg_series *s, int i, double px, double py) {
    if (has_interval(s, i)) {
        double ax, ay, bx, by;
        pt_svg_pixel(c, s->x_lo[i], s->y_lo[i], &ax, &ay);
        pt_svg_pixel(c, s->x_hi[i], s->y_hi[i], &bx, &by);
        char v[4][32];
        fmt_value(v[0], sizeof v[0], s->x_lo[i]);
        fmt_value(v[1], sizeof v[1], s->x_hi[i]);
        fmt_value(v[2], sizeof v[2], s->y_lo[i]);
        fmt_value(v[3], sizeof v[3], s->y_hi[i]);
        fprintf(f, "<path class=\"interval\" fill=\"none\" stroke-width=\"1.6\" data-x-lo=\"%s\" data-x-hi=\"%s\" data-y-lo=\"%s\" data-y-hi=\"%s\" "
                   "d=\"M%.2f %.2fH%.2fM%.2f %.2fV%.2fM%.2f %.2fV%.2fM%.2f %.2fV%.2fM%.2f %.2fH%.2fM%.2f %.2fH%.2f\"/>\n",
                v[0], v[1], v[2], v[3], ax, py, bx, px, ay, by, ax, py - 4, py + 4, bx, py - 4, py + 4, px - 4, ay, px + 4, px - 4, by, px + 4);
    } else if (s->sx && s->sy && isfinite(s->sx[i]) && isfinite(s->sy[i]) && (s->sx[i] > 0 || s->sy[i] > 0)) {
        double ax, ay, bx, by;
        pt_svg_pixel(c, s->x[i] - s->sx[i], s->y[i] - s->sy[i], &ax, &ay);
        pt_svg_pixel(c, s->x[i] + s->sx[i], s->y[i] + s->sy[i], &bx, &by);
        fprintf(f, "<path class=\"spread\" fill=\"none\" stroke-width=\"1.2\" d=\"M%.2f %.2fH%.2fM%.2f %.2fV%.2f\"/>\n", ax, py, bx, px, ay, by);
    }
}

/* The series' marker at (px, py): a circle, or a square, triangle or diamond path of about
 * the same area. */
static void draw_marker(FILE *f, const char *cls, const pt_svg_series *s, double px, double py, double r, const char *col) {
    const char *fill = s->hollow ? "none" : col, *edge = s->hollow ? col : "#ffffff";
    const double w = s->hollow ? 1.8 : 1;
    switch (s->marker) {
    case PT_SVG_SQUARE:
        fprintf(f, "<path class=\"%s\" d=\"M%.2f %.2fh%.2fv%.2fh%.2fz\"", cls, px - 0.9 * r, py - 0.9 * r, 1.8 * r, 1.8 * r, -1.8 * r);
        break;
    case PT_SVG_TRIANGLE:
        fprintf(f, "<path class=\"%s\" d=\"M%.2f %.2fL%.2f %.2fL%.2f %.2fz\"", cls, px, py - 1.25 * r, px + 1.1 * r, py + 0.75 * r, px - 1.1 * r, py + 0.75 * r);
        break;
    case PT_SVG_DIAMOND:
        fprintf(f, "<path class=\"%s\" d=\"M%.2f %.2fL%.2f %.2fL%.2f %.2fL%.2f %.2fz\"", cls, px, py - 1.25 * r, px + 1.25 * r, py, px, py + 1.25 * r,
                px - 1.25 * r, py);
        break;
    default: fprintf(f, "<circle class=\"%s\" cx=\"%.2f\" cy=\"%.2f\" r=\"%g\"", cls, px, py, r);
    }
    if (s->marker > PT_SVG_CIRCLE && s->marker < PT_SVG_MARKERS) fprintf(f, " data-cx=\"%.2f\" data-cy=\"%.2f\"", px, py);
    fprintf(f, " fill=\"%s\" stroke=\"%s\" stroke-width=\"%g\"", fill, edge, w);
}

static void draw_series(FILE *f, const pt_svg_chart *c, const pt_svg_series *s, const char *col, label_boxes *lb) {
    const char *label = s->label ? s->label : "";
    fputs("<g class=\"series\" data-series=\"", f);
    pt_xml_escape(f, label);
    fprintf(f, "\" stroke=\"%s\" fill=\"%s\">\n", col, col);
    int n_drawn = 0, last = -1;
    for (int i = 0; i < s->n; i++)
        if (isfinite(s->x[i]) && isfinite(s->y[i])) { n_drawn++; last = i; }
    if (n_drawn > 1) {
        fprintf(f, "<polyline class=\"trajectory\" fill=\"none\" stroke-width=\"2\" stroke-opacity=\"0.8\"%s points=\"",
                s->hollow ? " stroke-dasharray=\"6 4\"" : "");
        int first = 1;
        for (int i = 0; i < s->n; i++) {
            if (!isfinite(s->x[i]) || !isfinite(s->y[i])) continue;
            double px, py;
            pt_svg_pixel(c, s->x[i], s->y[i], &px, &py);
            fprintf(f, first ? "%.2f,%.2f" : " %.2f,%.2f", px, py);
            first = 0;
        }
        fputs("\"/>\n", f);
    }
    for (int i = 0; i < s->n; i++) {
        if (!isfinite(s->x[i]) || !isfinite(s->y[i])) continue;
        double px, py;
        pt_svg_pixel(c, s->x[i], s->y[i], &px, &py);
        /* intervals of a trajectory's earlier points would bury the line: the last one only */
        if (i == last || s->every_interval || !has_interval(s, i)) draw_uncertainty(f, c, s, i, px, py);
        char vx[32], vy[32];
        fmt_value(vx, sizeof vx, s->x[i]);
        fmt_value(vy, sizeof vy, s->y[i]);
        draw_marker(f, "point", s, px, py, s->radius > 0 ? s->radius : i == last ? 6 : 3.5, col);
        fputs(" data-series=\"", f);
        pt_xml_escape(f, label);
        fprintf(f, "\" data-x=\"%s\" data-y=\"%s\"", vx, vy);
        if (s->step) fprintf(f, " data-step=\"%ld\"", s->step[i]);
        fputs("><title>", f);
        pt_xml_escape(f, label);
        if (s->point_labels && s->point_labels[i]) {
            fputs(" ", f);
            pt_xml_escape(f, s->point_labels[i]);
        }
        if (s->step) fprintf(f, " (step %ld)", s->step[i]);
        fprintf(f, ": %s, %s</title></%s>\n", vx, vy, s->marker > PT_SVG_CIRCLE && s->marker < PT_SVG_MARKERS ? "path" : "circle");
        const char *text = s->point_labels ? s->point_labels[i] : i == last ? label : NULL;
        if (text) {
            double lx = px + 9, ly = py - 7;
            place_label(lb, 7.0 * (double)strlen(text), &lx, &ly);
            fprintf(f, "<text class=\"point-label\" x=\"%.2f\" y=\"%.2f\" stroke=\"none\" font-size=\"%s\">", lx, ly, s->point_labels ? "10" : "12");
            pt_xml_escape(f, text);
            fputs("</text>\n", f);
        }
    }
    fputs("</g>\n", f);
}

static void draw_legend(FILE *f, const pt_svg_series *series, int n_series) {
    const double R = PT_SVG_LEFT + PT_SVG_SIZE, T = PT_SVG_TOP;
    fputs("<g class=\"legend\" font-size=\"12\">\n", f);
    for (int si = 0; si < n_series; si++) {
        const pt_svg_series *s = &series[si];
        double y = T + 10 + si * 20;
        if (y > PT_SVG_HEIGHT - 20) break;
        int drawn = 0;
        for (int i = 0; i < s->n; i++) drawn += isfinite(s->x[i]) && isfinite(s->y[i]);
        const char *col = s->color ? s->color : pt_svg_color(si);
        if (s->marker || s->hollow || s->color) {
            /* the series' own marker (and its dashed line), so the legend tells them apart */
            if (s->hollow) fprintf(f, "<line x1=\"%.2f\" x2=\"%.2f\" y1=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" stroke-width=\"2\" stroke-dasharray=\"4 3\"/>\n", R + 14, R + 32, y - 4, y - 4, col);
            pt_svg_series one = *s;
            one.point_labels = NULL;
            draw_marker(f, "legend-marker", &one, R + 23, y - 4, 5, col);
            fputs(" data-legend=\"1\"/>\n", f);
        } else {
            fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"12\" height=\"12\" fill=\"%s\"/>\n", R + 20, y - 10, col);
        }
        fprintf(f, "<text x=\"%.2f\" y=\"%.2f\">", R + 38, y);
        pt_xml_escape(f, s->label ? s->label : "");
        if (!drawn) fputs(" (no valid answers)", f);
        else if (s->n > 1 && !s->point_labels && !s->hollow) fprintf(f, " (%d points)", drawn); /* labelled points count themselves */
        fputs("</text>\n", f);
    }
    fputs("</g>\n", f);
}

pt_status pt_svg_compass(const pt_svg_chart *c, const pt_svg_series *series, int n_series, bool standalone, char **out) {
    *out = NULL;
    if (!(c->x_max > c->x_min) || !(c->y_max > c->y_min)) return pt_error(PT_ERR_ARG, "chart: empty axis range");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return pt_error(PT_ERR_OOM, "out of memory");
    if (standalone) fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", f);
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
               "font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n",
            PT_SVG_WIDTH, PT_SVG_HEIGHT, PT_SVG_WIDTH, PT_SVG_HEIGHT);
    fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", PT_SVG_WIDTH, PT_SVG_HEIGHT);
    draw_title(f, c->title);
    double cx, cy; /* the pixel of the origin (or the middle when 0 is outside the range) */
    pt_svg_pixel(c, c->x_min < 0 && c->x_max > 0 ? 0 : (c->x_min + c->x_max) / 2, c->y_min < 0 && c->y_max > 0 ? 0 : (c->y_min + c->y_max) / 2,
                 &cx, &cy);
    if (c->quadrants) draw_quadrants(f, cx, cy);
    draw_grid(f, c, cx, cy);
    draw_axis_labels(f, c);
    label_boxes lb = {.n = 0};
    for (int si = 0; si < n_series; si++) draw_series(f, c, &series[si], series[si].color ? series[si].color : pt_svg_color(si), &lb);
    draw_legend(f, series, n_series);
    fputs("</svg>\n", f);
    if (fclose(f) != 0 || !buf) { free(buf); return pt_error(PT_ERR_OOM, "out of memory writing the chart"); }
    *out = buf;
    return PT_OK;
}
