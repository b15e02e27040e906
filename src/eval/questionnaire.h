/* Questionnaires as data: a list of items (id, statement, optional note and optional
 * per-axis effects) and, when the file names them, the answer options in their canonical
 * order (index 0 first; for the Political Compass Test 0 = strongly disagree ...
 * 3 = strongly agree).
 *
 * Three file forms are read:
 *   - CSV with a header row: an id column (id, item_id, pct_id, qid), a statement column
 *     (statement, text, prompt, pct_prompt, question, proposition), optionally a note
 *     column (note, pct_note, section, category), an options column (options, answers:
 *     labels separated by '|', the same on every row) and effect columns "effect:<axis>".
 *     Without an id column the ids are "1", "2", ...
 *   - JSON: {"instrument": ..., "answers": [labels], "items": [{"id", "statement", "note",
 *     "effect": {axis: number}}]} or a bare array of such items (8values' questions.json:
 *     {"question", "effect"}); an item may also be a plain string.
 *   - plain text (.txt): one statement per non-empty line, ids "1", "2", ...
 * Ids must be unique and statements non-empty. */
#ifndef PT_EVAL_QUESTIONNAIRE_H
#define PT_EVAL_QUESTIONNAIRE_H

#include <stddef.h>

#include "util/status.h"

typedef struct {
    char *id;
    char *statement;
    char *note;         /* NULL when none */
    int n_effects;      /* 8values-style effects on named axes; 0 when none */
    char **effect_axes; /* (n_effects) */
    double *effects;    /* (n_effects) */
} pt_item;

typedef struct {
    char *path;         /* the file (or label) it came from */
    char *instrument;   /* NULL when the file names none */
    int n_items;
    pt_item *items;
    int n_options;      /* 0 when the file names no answer options */
    char **options;
} pt_questionnaire;

typedef enum { PT_QFMT_AUTO = 0, PT_QFMT_CSV, PT_QFMT_JSON, PT_QFMT_TXT } pt_qformat;

/* Reads a questionnaire file; the form comes from the extension (.csv, .json, .txt) or,
 * failing that, from the content. */
pt_status pt_questionnaire_load(pt_questionnaire **out, const char *path);
/* Parses questionnaire text already in memory (the fuzz target's entry point); `label`
 * names it in messages and, with PT_QFMT_AUTO, its extension picks the form. */
pt_status pt_questionnaire_parse(pt_questionnaire **out, const char *text, size_t len, const char *label,
                                 pt_qformat fmt);
void pt_questionnaire_free(pt_questionnaire *q);

/* Index of the item with this id, or -1. */
int pt_questionnaire_find(const pt_questionnaire *q, const char *id);
/* The effect of item i on `axis`, or 0 when it has none. */
double pt_item_effect(const pt_item *it, const char *axis);

#endif
