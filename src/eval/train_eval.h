/* The compass evaluation during training (`politune train --eval-every N`), as a training
 * hook: training (train/) does not include eval/, so whoever starts a run (the CLI) sets
 * this up and hands pt_train_eval_compass to pt_train_hooks.evaluate.
 *
 * Every N optimiser steps (never at step 0: a base-model evaluation costs as much as any
 * other; run `politune compass` for it), after that step's checkpoint, the Political Compass
 * Test runs on the model with the live adapter through pt_compass_track, which reads the
 * adapter and uses its own engine: training's state and results are untouched. Logprob mode
 * with the given option scoring (NULL: number), the template selection, and the default open
 * prompts with max_new_tokens new tokens (0: none). The row's iteration is the evaluation's number (step / N). A step that pc.csv
 * already has a row for (a resumed run repeating steps) is not evaluated again. */
#ifndef PT_EVAL_TRAIN_EVAL_H
#define PT_EVAL_TRAIN_EVAL_H

#include <stddef.h>

#include "eval/compass.h"
#include "model/adapter.h"
#include "model/model.h"

typedef struct {
    char *dir;             /* the compass result directory */
    char *templates;       /* template selection (NULL: all) */
    char *train_out;       /* the training output directory, recorded in compass.json */
    long every;            /* optimiser steps between evaluations */
    int max_new_tokens;    /* open prompts' reply length (0: no open prompts) */
    pt_option_scoring option_scoring;
} pt_train_eval;

/* Checks the template selection and that the Political Compass files are there, before any
 * training starts. eval_dir NULL: TRAIN_OUT/compass. */
pt_status pt_train_eval_init(pt_train_eval *e, long every, const char *templates, const char *option_scoring, const char *eval_dir,
                             const char *train_out, int max_new_tokens);
void pt_train_eval_free(pt_train_eval *e);

/* The hook (user = a pt_train_eval): evaluates when `step` is due, and leaves a line for the
 * training log in note (empty when nothing was done). */
pt_status pt_train_eval_compass(void *user, const pt_model *m, const pt_adapter *a, long step, char *note, size_t note_cap);

#endif
