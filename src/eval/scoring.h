/* Scoring a questionnaire: answers -> coordinates on named axes.
 *
 * Every instrument politune reads reduces to one linear rule per axis:
 *     coordinate = round_d(offset + sum_i w[i][a_i] / divisor)
 * where a_i is item i's answer (an index into the canonical answer order), unanswered items
 * contribute 0 and are counted, and round_d rounds half away from zero at d decimals (as the
 * Political Compass website does on the final value).
 *
 * Scoring files come in three forms:
 *   - the Political Compass table (pct_scoring.json): "econ" and "soc" arrays of per-answer
 *     weights, offsets "e0"/"s0", "econ_divisor"/"soc_divisor"; axes "economic"
 *     (Left..Right) and "social" (Libertarian..Authoritarian), range -10..10, 2 decimals;
 *   - 8values-style effects (scoring.json beside questions.json): per-answer "multipliers",
 *     per-item effects on each axis taken from the questionnaire, score_a =
 *     100 (max_a + sum_a) / (2 max_a), i.e. offset 50 and divisor max_a / 50, range 0..100,
 *     1 decimal; a "max" given in the file must equal sum_i |effect_i[a]|;
 *   - the general form: {"instrument", "answers": [labels], "ids": [optional item ids],
 *     "axes": [{"name", "poles": [low, high], "offset", "divisor", "decimals",
 *     "range": [lo, hi], "weights": [[per answer] per item]}], "chart": [x axis, y axis]}.
 * pt_scoring_check confirms a questionnaire and a scoring file describe the same items. */
#ifndef PT_EVAL_SCORING_H
#define PT_EVAL_SCORING_H

#include <stdbool.h>

#include "eval/questionnaire.h"
#include "util/status.h"

typedef struct {
    char *name;            /* "economic" */
    char *pole_lo, *pole_hi; /* what the low and high ends mean ("Left", "Right"); may be NULL */
    double offset, divisor;
    int decimals;
    double lo, hi;         /* the chart's range for this axis */
    double *w;             /* (n_items, n_answers) */
} pt_axis;

typedef struct {
    char *path;
    char *instrument;      /* may be NULL */
    char *kind;            /* "pct", "effects" or "general" */
    int n_items, n_answers;
    char **answers;        /* (n_answers) labels in canonical order; never NULL after loading */
    char **ids;            /* (n_items) item ids, or NULL when the file names none */
    int n_axes;
    pt_axis *axes;
    int chart_x, chart_y;  /* axes drawn on the chart (indices) */
} pt_scoring;

/* Loads a scoring file. The effects form needs the questionnaire (its items carry the
 * effects); the other forms accept q == NULL. */
pt_status pt_scoring_load(pt_scoring **out, const char *path, const pt_questionnaire *q);
pt_status pt_scoring_parse(pt_scoring **out, const char *text, size_t len, const char *label, const pt_questionnaire *q);
void pt_scoring_free(pt_scoring *s);

/* Checks that q and s agree: item count, ids when the scoring file lists them, the number
 * of answer options when the questionnaire lists them. PT_ERR_FORMAT naming the first
 * disagreement. */
pt_status pt_scoring_check(const pt_scoring *s, const pt_questionnaire *q);

int pt_scoring_axis(const pt_scoring *s, const char *name); /* index or -1 */

/* Rounds half away from zero at `decimals` places, treating values within 1e-9 (in units of
 * the last place) of a half as exact halves, so 2.415 (stored as 2.41499999...) gives 2.42
 * as decimal arithmetic would. Never returns -0. */
double pt_round_half_away(double x, int decimals);

/* Coordinates for an answer vector: answers (n_items) with values 0..n_answers-1, or -1 for
 * unanswered. coords receives n_axes values. n_answered (may be NULL) receives the number
 * of answered items. An answer out of range is PT_ERR_ARG. */
pt_status pt_scoring_score(const pt_scoring *s, const int *answers, double *coords, int *n_answered);

/* Probability-weighted coordinates: probs (n_items, n_answers); an item with valid[i] false
 * (valid may be NULL: all valid) contributes nothing. Rounded like pt_scoring_score. */
void pt_scoring_expected(const pt_scoring *s, const double *probs, const bool *valid, double *coords);

#endif
