/* Comparing two compass evaluations read back from compass.json: the shift on each axis
 * with its bootstrap interval, the paired sign-flip permutation test over propositions, the
 * items whose consensus answer changed, and the attribution of the shift to items (stats.h
 * for the method). Also the check of forced against free answers: the same model's
 * log-prob (forced choice) and generate (free text) evaluations, item by item.
 *
 * Two evaluations are comparable when they cover the same items (ids, in order), were scored
 * with the same rule (the "scoring_rule" compass.json carries), in the same answer mode and
 * option scoring (logprob mode), under the same template variants, and both have at least one valid answer;
 * otherwise the call fails with a message naming the runs. */
#ifndef PT_EVAL_COMPARE_H
#define PT_EVAL_COMPARE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "eval/stats.h"

/* What a proposition's answer under one template variant contributes to a position:
 *   - ANSWERS: the weight of the answer given (the most likely option in logprob mode, the
 *     consensus of the samples in generate mode), as the instrument scores a person;
 *   - EXPECTED: the probability-weighted weight, sum_a probs[a] * w[a], i.e. the position of
 *     the model's answer distribution rather than of its most likely answer. It moves when the
 *     probabilities move under an unchanged argmax, so it sees shifts a small model's sticky
 *     argmax hides (logprob mode: the renormalised option probabilities; generate mode: the
 *     share of valid samples on each answer). */
typedef enum { PT_COMPARE_ANSWERS = 0, PT_COMPARE_EXPECTED } pt_compare_basis;

typedef struct {
    char *name;          /* axis name */
    int decimals;
    double a, b;         /* each run's position (stats.h estimate, not rounded) */
    pt_interval shift;   /* b - a with its bootstrap interval */
    double p;            /* sign-flip permutation p-value */
    bool exact;          /* p from exact enumeration */
} pt_compare_axis;

typedef struct {
    int n_axes, n_items, n_answers;
    pt_compare_axis *axes;   /* (n_axes) */
    int *answer_a, *answer_b;/* (n_items) consensus answers, -1 when none */
    double *attribution;     /* (n_axes, n_items) each item's share of the shift; sums to shift.estimate */
    int changed;             /* items answered in both runs whose consensus answer differs */
    int answered_both;
    int resamples;
    uint64_t seed;
    pt_compare_basis basis;
} pt_compare;

/* Compares evaluation eval_b of doc_b with eval_a of doc_a (B minus A), positions taken on
 * `basis`. name_a and name_b name the runs in messages. resamples >= 1. */
pt_status pt_compare_evals(json_t *doc_a, json_t *eval_a, const char *name_a, json_t *doc_b, json_t *eval_b, const char *name_b,
                           int resamples, uint64_t seed, pt_compare_basis basis, pt_compare **out);
void pt_compare_free(pt_compare *c);

/* {"a", "b", "basis", "resamples", "seed", "axes": {name: {a, b, shift, interval, p, exact}},
 *  "changed", "answered_both", "items": [{id, a, b, attribution: {axis: value}}]} */
json_t *pt_compare_json(const pt_compare *c, json_t *doc, const char *name_a, const char *name_b);

/* The evaluation of a document to compare: the last one, or the last one with `label`
 * (NULL: any). NULL when there is none. */
json_t *pt_compare_pick(json_t *doc, const char *label);

/* Forced (log-prob) against free (generate) answers of one model: per item, whether the
 * consensus answers agree, over the items both answered. */
typedef struct {
    int n_items, both, agree;
    int *forced, *free_; /* (n_items) consensus answers, -1 when none */
} pt_forced_free;

pt_status pt_forced_free_compare(json_t *doc, json_t *forced, json_t *free_eval, pt_forced_free *out);
void pt_forced_free_free(pt_forced_free *f);

#endif
