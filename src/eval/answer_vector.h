/* Answer vectors as users write them: "2,0,1,..." in item order, or "pc-3:2,pc-1:0,..."
 * (item id, colon or '=', answer) in any order, or a JSON array / object of the same. An
 * unanswered item is written '-' (or null in JSON) in the positional form and simply left out
 * in the id form. The result is one int per item of the scoring file, -1 for unanswered. */
#ifndef PT_EVAL_ANSWER_VECTOR_H
#define PT_EVAL_ANSWER_VECTOR_H

#include "eval/questionnaire.h"
#include "eval/scoring.h"

/* Ids are looked up in q (may be NULL) and else in the scoring file's "ids". Wrong length,
 * values outside 0..n_answers-1, unknown or repeated ids, and mixing the two forms are
 * PT_ERR_ARG with a message naming the entry. */
pt_status pt_answers_parse_list(const pt_scoring *s, const pt_questionnaire *q, const char *list, int *answers);
pt_status pt_answers_parse_json(const pt_scoring *s, const pt_questionnaire *q, const char *text, size_t len,
                                const char *label, int *answers);

#endif
