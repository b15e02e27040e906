/* Prompt templates of the judge stages. Each is a text with {name} placeholders ("{{" and
 * "}}" stand for literal braces); the defaults are compiled in and also ship as files in
 * data/prompts/, and a directory given with --prompts replaces any of them by a file of the
 * same name. A template using a placeholder its stage does not fill is an error naming the
 * file and line, found when the templates are loaded, not halfway through a run.
 *
 * The score scales are fixed, so results stay comparable whichever templates are used:
 * ideology 1 (strongly left) .. 5 (neutral) .. 9 (strongly right); quality 1 .. 5. */
#ifndef PT_DATA_PROMPTS_H
#define PT_DATA_PROMPTS_H

#include "util/status.h"

typedef enum {
    PT_PROMPT_IDEOLOGY = 0,     /* select, annotate-eval: {text} */
    PT_PROMPT_QUALITY,          /* select: {text} */
    PT_PROMPT_INSTRUCTION,      /* synth: {text} */
    PT_PROMPT_CHOSEN,           /* synth: {text} {instruction} {leaning} {opposite} */
    PT_PROMPT_REJECTED,         /* synth: the same */
    PT_PROMPT_ANSWER_IDEOLOGY,  /* judge-answers: {prompt} {answer} */
    PT_PROMPT_ANSWER_RATIONALE, /* judge-answers: {prompt} {answer} */
    /* --swap-check: the same questions with the scale's ends exchanged (1 = strongly right,
     * 9 = strongly left; 1 = clear political statement, 5 = not political), so an answer
     * driven by which option is named first shows up as a disagreement */
    PT_PROMPT_IDEOLOGY_MIRRORED,        /* select, annotate-eval: {text} */
    PT_PROMPT_QUALITY_MIRRORED,         /* select: {text} */
    PT_PROMPT_ANSWER_IDEOLOGY_MIRRORED, /* judge-answers: {prompt} {answer} */
    PT_PROMPT_PAIR_CHECK,       /* synth --swap-check: which of two answers is more {leaning}: {instruction}
                                   {first} {second}, asked with the chosen answer first and second */
    PT_PROMPT_COUNT
} pt_prompt_kind;

typedef struct {
    const char *file;          /* file name in a prompts directory */
    const char *placeholders;  /* space-separated names the stage fills */
    const char *text;          /* the default template */
} pt_prompt_info;

extern const pt_prompt_info pt_prompt_defaults[PT_PROMPT_COUNT];

/* The fixed scales: labels "1".."9" and "1".."5"; a label's value is its number. */
#define PT_IDEOLOGY_MIN 1
#define PT_IDEOLOGY_MAX 9
#define PT_IDEOLOGY_CENTER 5
#define PT_QUALITY_MIN 1
#define PT_QUALITY_MAX 5
extern const char *const pt_scale_labels[9]; /* "1".."9" */

typedef struct {
    char *text[PT_PROMPT_COUNT];
    char *source[PT_PROMPT_COUNT];  /* file it came from, or "built-in" */
} pt_prompts;

/* Loads the templates: the defaults, replaced by the files present in dir (NULL: none). */
pt_status pt_prompts_load(pt_prompts *p, const char *dir);
void pt_prompts_free(pt_prompts *p);

/* Fills a template: names[i] -> values[i]; trailing blank lines are dropped. An unknown or
 * unterminated placeholder is PT_ERR_FORMAT naming `label` and the line. */
pt_status pt_prompt_fill(const char *tmpl, const char *label, const char *const *names, const char *const *values, int n, char **out);

/* Checks a template against the placeholder list of its kind. */
pt_status pt_prompt_check(pt_prompt_kind k, const char *tmpl, const char *label);

#endif
