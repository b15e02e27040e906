/* The compass chart as a standalone SVG document (plain text, no library): a square plot of
 * two axes (for the Political Compass: economic -10..10 left to right, social -10..10
 * libertarian at the bottom to authoritarian at the top) with the four quadrants shaded, a
 * grid, axis and pole labels, and per series either one labelled point or a trajectory (a
 * line through the points in order, the last one labelled), with optional error bars
 * (spread across templates).
 *
 * Layout (pixels, y downwards): the plot occupies x in [PT_SVG_LEFT, PT_SVG_LEFT +
 * PT_SVG_SIZE] and y in [PT_SVG_TOP, PT_SVG_TOP + PT_SVG_SIZE]; a value is mapped linearly,
 * the axis minimum at the left / bottom edge. Each drawn point is a <circle> with
 * class="point" and data-series, data-x, data-y (the values) attributes, so tools and tests
 * can find it. An interval is a <path> with class="interval" (a cross with end caps, from the
 * low to the high end on each axis) and data-x-lo, data-x-hi, data-y-lo, data-y-hi. Values
 * outside the range are drawn on the border. The title is centred on the whole width and
 * shrunk to fit it. */
#ifndef PT_EVAL_SVG_H
#define PT_EVAL_SVG_H

#include <stdbool.h>
#include <stdio.h>

#include "util/status.h"

#define PT_SVG_LEFT 80.0
#define PT_SVG_TOP 50.0
#define PT_SVG_SIZE 440.0
#define PT_SVG_WIDTH 780
#define PT_SVG_HEIGHT 580

typedef struct {
    const char *title;                  /* may be NULL */
    const char *x_name, *y_name;        /* "economic", "social" */
    const char *x_lo, *x_hi, *y_lo, *y_hi; /* pole labels ("Left", "Right", "Libertarian", "Authoritarian"); may be NULL */
    double x_min, x_max, y_min, y_max;
    bool quadrants;                     /* shade the four quadrants in the compass colours */
} pt_svg_chart;

typedef struct {
    const char *label;
    int n;                  /* points in order (a trajectory when n > 1) */
    const double *x, *y;    /* (n); a NAN coordinate leaves the point out */
    const double *sx, *sy;  /* (n) error bar half-widths, or NULL */
    const long *step;       /* (n) training steps for the tooltips, or NULL */
    const double *x_lo, *x_hi, *y_lo, *y_hi; /* (n) 95% intervals, or NULL; drawn instead of the
                                                error bars where finite (a trajectory: last point) */
    /* Optional styling (zero: the defaults above). A marker other than a circle is a <path
     * class="point"> carrying data-cx / data-cy (its pixel) besides data-x / data-y. */
    const char *color;      /* NULL: the palette's colour of the series' index */
    int marker;             /* pt_svg_marker */
    bool hollow;            /* open markers and a dashed line (the probability-weighted positions) */
    double radius;          /* marker size in pixels; 0: 6 for the last point, 3.5 before */
    bool every_interval;    /* the interval of every point, not only the last one's */
    const char *const *point_labels; /* (n) a label beside each point (a dial's setting
                                        values), or NULL: the series label at the last point */
} pt_svg_series;

typedef enum { PT_SVG_CIRCLE, PT_SVG_SQUARE, PT_SVG_TRIANGLE, PT_SVG_DIAMOND, PT_SVG_MARKERS } pt_svg_marker;

/* The pixel at which (x, y) is drawn (clamped to the plot). */
void pt_svg_pixel(const pt_svg_chart *c, double x, double y, double *px, double *py);

/* Writes the chart to a malloc'd NUL-terminated string. With `standalone` it is a complete
 * SVG file (XML declaration and namespace); without, an <svg> element to inline in HTML. */
pt_status pt_svg_compass(const pt_svg_chart *c, const pt_svg_series *series, int n_series, bool standalone, char **out);

/* The colour of series i (a fixed palette, cycling). */
const char *pt_svg_color(int i);

/* Writes s with the five XML special characters escaped (and control characters XML
 * forbids replaced by spaces). */
void pt_xml_escape(FILE *f, const char *s);

#endif
