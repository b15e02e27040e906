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
 *     is favoured for being shorter);
 *   - reply: no option is listed or numbered: reply in one sentence saying whether you agree
 *     or disagree and how strongly; each option is then scored as a whole reply built from
 *     its label (pt_template_reply). The prompt is the same whatever the labels and their
 *     order, so it carries no position cue.
 * The rendered text is the user message; the chat template wraps it. */
#ifndef PT_EVAL_TEMPLATES_H
#define PT_EVAL_TEMPLATES_H

#include <stdbool.h>

#include "util/status.h"

typedef enum { PT_TASK_GENERATE = 0, PT_TASK_LOGPROB, PT_TASK_NUMBER, PT_TASK_REPLY } pt_task_kind;

typedef struct {
    const char *id;   /* "t1" ... */
    const char *text; /* phrasing with {statement} and {task} */
} pt_prompt_template;

/* One template in one option order: id "t1-fwd" / "t1-rev"; or, for prompts that list no
 * options (unlisted), the template alone: id "t1". */
typedef struct {
    int template_index;
    bool reversed;
    char id[16];
    bool unlisted; /* last, so {index, reversed, id} initialisers keep their meaning */
} pt_template_variant;

int pt_templates_count(void);
const pt_prompt_template *pt_template_get(int i);

/* Parses a selection: "all" (or NULL / ""), or a comma list of "tN" (both orders), "tN-fwd",
 * "tN-rev", "fwd" / "rev" (every template in that order). Fills a malloc'd list in
 * template-major order without repeats. Unknown names are PT_ERR_ARG listing the known ids. */
pt_status pt_templates_select(const char *spec, pt_template_variant **out, int *n_out);

/* For prompts that list no options: keeps one variant per template (the first selected of
 * its orders), unordered, with id "tN", in place; *n becomes the number kept. */
void pt_templates_unlisted(pt_template_variant *v, int *n);

/* The reply an option stands for under the reply task, from its label, malloc'd in *out.
 * A label whose last word is "agree" or "disagree", after nothing but letters (an optional
 * degree: "Strongly disagree", "Somewhat agree", "Agree"), becomes the sentence
 * "I <label in lower case> with this statement."; any other label ("Neutral/Unsure") is the
 * reply itself, trimmed, with a full stop added unless it ends in punctuation. A label
 * without a letter or digit has no reply: PT_ERR_ARG naming it. */
pt_status pt_template_reply(const char *label, char **out);

/* Renders the user message for one item. labels (n) are the answer options in canonical
 * order; with reversed they are listed last first (and in generate mode number k names the
 * k-th listed option). Returns a malloc'd string. */
pt_status pt_template_render(const pt_template_variant *v, pt_task_kind task, const char *statement,
                             const char *const *labels, int n, char **out);

/* The canonical answer index named by the k-th listed option of a variant. */
int pt_template_listed_to_canonical(const pt_template_variant *v, int k, int n);

#endif
