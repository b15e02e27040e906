/* Reading result directories back: the compass chart drawn from compass.json documents
 * (one series per model/adapter label, a trajectory when a label has several evaluations),
 * and `politune report`'s single self-contained HTML page comparing runs: the chart inline,
 * positions with their intervals and spread, every run's shift against the base with its
 * interval and p-value and the items behind it, forced against free answers, the answers side
 * by side, the items that moved, the invalid and refusal rates, and the open-ended replies. */
#ifndef PT_EVAL_REPORT_H
#define PT_EVAL_REPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "eval/svg.h"
#include "util/status.h"

/* Loads dir/compass.json (or the file itself when `path` is a .json file) and checks it is a
 * politune compass document. */
pt_status pt_compass_json_load(const char *path, json_t **out);

/* Draws the evaluations of n_docs compass.json documents; the axes and ranges come from the
 * first document. A series is one label within one document (a label found in several
 * documents is drawn once per document, named "label (names[d])"; names may be NULL). */
pt_status pt_compass_chart(json_t *const *docs, const char *const *names, int n_docs, bool standalone, char **svg);
/* The same chart with both axes narrowed to where the runs lie (their intervals included,
 * padded, whole units), for runs that sit close together; *svg NULL when the narrowed range
 * would not at least halve the instrument's. */
pt_status pt_compass_chart_zoomed(json_t *const *docs, const char *const *names, int n_docs, char **svg);
/* The zoom of pt_compass_chart_zoomed for any series: narrows c's ranges to the points and
 * their intervals; false (c unchanged) when that would not at least halve them. */
bool pt_compass_chart_fit(pt_svg_chart *c, const pt_svg_series *series, int n_series);
/* A chart's frame (names, poles, ranges, quadrants; no title) from two entries of a
 * compass.json "axes" list; PT_ERR_FORMAT when a range is missing or empty. */
pt_status pt_compass_chart_frame(json_t *ax, json_t *ay, pt_svg_chart *c);

typedef struct {
    int resamples;   /* bootstrap resamples and sign flips of the shifts against the base (>= 1) */
    uint64_t seed;
} pt_report_opts;

/* The HTML report for the documents; names[i] labels document i (its directory). o NULL:
 * PT_STATS_RESAMPLES resamples, seed PT_STATS_SEED. */
pt_status pt_report_html(json_t *const *docs, const char *const *names, int n_docs, const pt_report_opts *o, char **html);

#endif
