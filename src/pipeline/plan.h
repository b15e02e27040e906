/* The stage graph of a `politune run` recipe: select and synth per side (from a corpus),
 * pairs per target (sampling and mixing), train per target, compass for the base model and
 * each target (per mode), and the report. Each stage is a command of this same binary run
 * in the run directory, writing into its own folder; its inputs say which earlier stage, if
 * any, makes them, which is what "depends on" means when deciding what to rerun. */
#ifndef PT_CLI_RUN_PLAN_H
#define PT_CLI_RUN_PLAN_H

#include <jansson.h>
#include <stdbool.h>

#include "pipeline/args.h"
#include "pipeline/recipe.h"

typedef enum { RUN_SELECT, RUN_SYNTH, RUN_PAIRS, RUN_TRAIN, RUN_COMPASS, RUN_REPORT, RUN_KINDS } run_kind;

extern const char *const run_kind_names[RUN_KINDS];
/* The kind called `name`, or -1. */
int run_kind_from_name(const char *name);

typedef struct {
    char *role;
    char *flag;     /* NULL: a positional argument */
    char *arg;      /* what goes on the command line (NULL: hashed only) */
    char *file;     /* what is hashed: absolute, or relative to the run directory */
    bool optional;  /* left out of the command and the hashes when missing */
    int from;       /* the stage that makes it, -1 when it comes from outside the run */
} run_stage_input;

typedef struct {
    char *path;     /* relative to the run directory */
    bool optional;  /* e.g. a training trajectory when the run was shorter than eval.every */
} run_output;

#define RUN_MAX_STAGE_INPUTS 24
#define RUN_MAX_OUTPUTS 6

typedef struct {
    run_kind kind;
    char *instance;   /* left, right, base, ... ("" for the report) */
    char *title;      /* "train left" */
    char *dir;        /* its folder in the run directory: "train-left" */
    run_args argv;    /* "politune" "train" ...; inputs are added when it runs */
    run_stage_input in[RUN_MAX_STAGE_INPUTS];
    int n_in;
    run_output out[RUN_MAX_OUTPUTS];
    int n_out;
    json_t *params;
    bool resumable;   /* train: --resume from its last checkpoint; select/synth resume their JSONL */
} run_stage;

typedef struct {
    run_stage *s;
    int n;
} run_plan;

/* threads > 0 is passed to every stage that loads a model (not a parameter: it does not
 * change what a stage makes). */
pt_status run_plan_build(run_plan *p, const run_recipe *r, int threads);
void run_plan_free(run_plan *p);

/* The full command line of stage s given which optional inputs exist (present[i] for in[i]),
 * plus `extra` arguments (a resume flag). */
pt_status run_stage_command(const run_stage *s, const bool *present, const run_args *extra, run_args *out);

#endif
