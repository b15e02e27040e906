/* Prompt templates for the compass: several phrasings of "what do you think of this
 * statement", each in both option orders (forward: the canonical order, index 0 first;
 * reversed: last first), because forced answers move with the wording and the order of the
 * options and a robust measurement averages over both.
 *
 * A template has a phrasing with the slots {statement} and {task}; {task} is filled per
 * answer mode:
 *   - generate: reply with one integer 0..n-1 (numbers follow the listed order) and then
 *     explain, as the PoliTune paper asks;
 *   - logprob: reply with exactly one of the listed option labels; the labels are then
 *     scored as continuations of the assistant turn;
 *   - number: reply with only the integer 0..n-1 of one listed option (numbers follow the
 *     listed order); the numbers are scored as continuations (one token each, so no option
 *     is favoured for being shorter).
 * The rendered text is the user message; the chat template wraps it. */
#ifndef PT_EVAL_TEMPLATES_H
#define PT_EVAL_TEMPLATES_H

#include <stdbool.h>

#include "util/status.h"

typedef enum { PT_TASK_GENERATE = 0, PT_TASK_LOGPROB, PT_TASK_NUMBER } pt_task_kind;

typedef struct {
    const char *id;   /* "t1" ... */
    const char *text; /* phrasing with {statement} and {task} */
} pt_prompt_template;

/* One template in one option order: id "t1-fwd" / "t1-rev". */
typedef struct {
    int template_index;
    bool reversed;
    char id[16];
} pt_template_variant;

int pt_templates_count(void);
const pt_prompt_template *pt_template_get(int i);

/* Parses a selection: "all" (or NULL / ""), or a comma list of "tN" (both orders), "tN-fwd",
 * "tN-rev", "fwd" / "rev" (every template in that order). Fills a malloc'd list in
 * template-major order without repeats. Unknown names are PT_ERR_ARG listing the known ids. */
pt_status pt_templates_select(const char *spec, pt_template_variant **out, int *n_out);

/* Renders the user message for one item. labels (n) are the answer options in canonical
 * order; with reversed they are listed last first (and in generate mode number k names the
 * k-th listed option). Returns a malloc'd string. */
pt_status pt_template_render(const pt_template_variant *v, pt_task_kind task, const char *statement,
                             const char *const *labels, int n, char **out);

/* The canonical answer index named by the k-th listed option of a variant. */
int pt_template_listed_to_canonical(const pt_template_variant *v, int k, int n);

#endif
