/* Reading an answer out of generated text, for the generate mode of the compass.
 *
 * The first valid answer in the text wins, scanning from the start: a lone integer naming a
 * listed option (number k = the k-th option in the order the prompt listed them), or one of
 * the option labels as words (case-insensitive, at word boundaries, the longest label at a
 * position winning, so "strongly disagree" is not read as "disagree" nor "disagree" as
 * "agree"; a label with '/' also matches each of its parts). Mentions of the scale itself
 * ("0 to 3", "0-3") are skipped, as are labels right after a negation ("don't agree").
 * Text without an answer is a refusal when it reads like one ("As an AI ...", "I cannot
 * ..."), otherwise invalid. */
#ifndef PT_EVAL_ANSWER_PARSE_H
#define PT_EVAL_ANSWER_PARSE_H

#include "eval/templates.h"

typedef enum { PT_ANSWER_VALID = 0, PT_ANSWER_INVALID, PT_ANSWER_REFUSED } pt_answer_status;

const char *pt_answer_status_name(pt_answer_status s); /* "valid", "invalid", "refused" */

/* labels (n) in canonical order; v gives the listed order the numbers refer to (NULL:
 * forward). *answer receives the canonical index, or -1 when not valid. */
pt_answer_status pt_answer_parse(const char *text, const char *const *labels, int n, const pt_template_variant *v,
                                 int *answer);

#endif
