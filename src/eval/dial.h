/* The ideology dial: the compass run at a series of adapter settings (one adapter scaled
 * -1 .. 1.5, or a left/right mix by weight) or of steering-vector scales, each point with its
 * bootstrap interval, and the path drawn through the compass and against the dial's value.
 *
 * Layout of the output directory:
 *   setting-NN/        one compass result directory per setting (compass.json, pc.csv,
 *                      compass.svg; pt_compass_save), written atomically: a rerun skips every
 *                      setting whose compass.json is there and records the same setting
 *   dial.json          the settings in order: value, scales, per axis the estimate and its 95%
 *                      interval, and the probability-weighted ("expected") position
 *   dial.csv           the same, one row per setting
 *   dial.svg           the path through the compass, each point with its interval cross, and
 *                      the expected positions as a dashed path of hollow markers
 *   dial.html          that chart, each axis against the dial's value, and the table
 *
 * pt_dial_combine draws several such directories (an adapter's scales, a left/right mix, a
 * steering vector's scales) on one chart, in one report. */
#ifndef PT_EVAL_DIAL_H
#define PT_EVAL_DIAL_H

#include <stdbool.h>
#include <stdio.h>

#include "engine/engine.h"
#include "eval/compass.h"

#define PT_DIAL_MAX_AXES 8

/* One setting's position, per axis of the scoring (in its order). */
typedef struct {
    double value;                        /* the dial: the scale, or the mix weight */
    float scales[PT_ENGINE_MAX_ADAPTERS]; /* (n_adapters) */
    int n_axes;
    double estimate[PT_DIAL_MAX_AXES], lo[PT_DIAL_MAX_AXES], hi[PT_DIAL_MAX_AXES]; /* lo/hi NAN: no interval */
    /* the probability-weighted position (compass.json "expected": each item's answer weighted
     * by the option probabilities), which moves when the probabilities do even where the
     * most likely answers stay put; NAN: none */
    double expected[PT_DIAL_MAX_AXES];
    bool resumed;                        /* read back from an earlier run's setting directory */
    double perplexity;                   /* of the config's held-out text at this setting; NAN: none */
    int ppl_tokens;                      /* tokens it was measured on */
} pt_dial_point;

typedef struct {
    const char *model_path;              /* recorded */
    int n_adapters;
    const pt_adapter *const *adapters;   /* (n_adapters) loaded against the model */
    const char *const *adapter_paths;    /* (n_adapters) recorded and shown */
    const char *const *adapter_names;    /* (n_adapters) short names for the table ("left") */
    int n_settings;
    const double *values;                /* (n_settings) the dial's value of each setting */
    const float *scales;                 /* (n_settings, n_adapters) */
    const char *value_name;              /* "scale" or "weight" */
    /* a steering dial instead (n_adapters 0): the vector, its layers, values are its scales */
    const struct pt_steer *steer;
    const bool *steer_layers;            /* (n_layers) or NULL: the vector's layers */
    const char *steer_path;              /* recorded */
    const char *title;                   /* the report's title (NULL: "Ideology dial") */
    pt_compass_config compass;           /* its adapter list is set per setting */
    int resamples;                       /* bootstrap resamples (0: PT_STATS_RESAMPLES) */
    uint64_t seed;
    /* called before (done false) and after (done true) each setting */
    void (*progress)(void *user, int index, int n, bool done, const pt_dial_point *p);
    void *user;
    /* a held-out text whose perplexity is measured at every setting (steering and large
     * scales cost fluency); NULL: none. Its first PT_DIAL_PPL_MAX_TOKENS tokens count. */
    const char *ppl_text;
} pt_dial_config;

#define PT_DIAL_PPL_MAX_TOKENS 1024

/* Runs every setting not already in out_dir, then writes dial.json, dial.csv, dial.svg and
 * dial.html. points: (n_settings), filled. */
pt_status pt_dial_run(const pt_model *m, const pt_questionnaire *q, const pt_scoring *s, const pt_dial_config *c, const char *out_dir,
                      pt_dial_point *points);

/* Draws each axis (n_axes, names in order) against the dial's value as an inline <svg>: per
 * axis a solid line through the answers' positions with a vertical interval bar at each
 * setting and a dashed line of hollow markers through the expected positions; the y range
 * fitted to what is drawn (0 included). The elements carry class "axis-line" /
 * "expected-line" (data-axis) and "value-point" / "value-expected" (data-axis, data-value,
 * data-estimate) for tools and tests. */
void pt_dial_value_chart(FILE *f, const char *title, const char *value_name, const char *const *axis_names, int n_axes, const pt_dial_point *pts,
                         int n, double width, double height);

/* Reads the dial directories (each with dial.json and its settings' compass.json), refuses
 * dials measured with another questionnaire, scoring or option scoring than the first (one
 * line naming both directories), and writes under out_dir: dials.html (one compass chart with
 * every dial's path, the expected positions, the base model; a zoomed copy when the points
 * sit close; economic and social against each dial's value; one table), dials.svg (the chart)
 * and dials.csv (the table). title NULL: "Ideology dials". */
pt_status pt_dial_combine(const char *const *dirs, int n_dirs, const char *title, const char *out_dir);

/* Parses "-1,-0.5,0,0.5" into a malloc'd array of finite numbers (what names the list in
 * messages: "--scales"). */
pt_status pt_dial_parse_list(const char *text, const char *what, double **out, int *n);

#endif
