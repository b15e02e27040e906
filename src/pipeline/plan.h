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

typedef enum { PT_RUN_SELECT, PT_RUN_SYNTH, PT_RUN_PAIRS, PT_RUN_TRAIN, PT_RUN_COMPASS, PT_RUN_REPORT, PT_RUN_DIAL, PT_RUN_KINDS } pt_run_kind;

extern const char *const pt_run_kind_names[PT_RUN_KINDS];
/* The kind called `name`, or -1. */
int pt_run_kind_from_name(const char *name);

typedef struct {
    char *role;
    char *flag;     /* NULL: a positional argument */
    char *arg;      /* what goes on the command line (NULL: hashed only) */
    char *file;     /* what is hashed: absolute, or relative to the run directory */
    bool optional;  /* left out of the command and the hashes when missing */
    int from;       /* the stage that makes it, -1 when it comes from outside the run */
} pt_run_stage_input;

typedef struct {
    char *path;     /* relative to the run directory */
    bool optional;  /* e.g. a training trajectory when the run was shorter than eval.every */
} pt_run_output;

#define PT_RUN_MAX_STAGE_INPUTS 24
#define PT_RUN_MAX_OUTPUTS 6

typedef struct {
    pt_run_kind kind;
    char *instance;   /* left, right, base, ... ("" for the report) */
    char *title;      /* "train left" */
    char *dir;        /* its folder in the run directory: "train-left" */
    pt_run_args argv;    /* "politune" "train" ...; inputs are added when it runs */
    pt_run_stage_input in[PT_RUN_MAX_STAGE_INPUTS];
    int n_in;
    pt_run_output out[PT_RUN_MAX_OUTPUTS];
    int n_out;
    json_t *params;
    bool resumable;   /* train: --resume from its last checkpoint; select/synth resume their JSONL */
    bool launched;    /* runs under the plan's launcher (train, compass: they split their work over MPI ranks) */
} pt_run_stage;

typedef struct {
    pt_run_stage *s;
    int n;
    pt_run_args launcher; /* the recipe's launcher words (mpirun -np 4); empty: none */
} pt_run_plan;

/* threads > 0 is passed to every stage that loads a model (not a parameter: it does not
 * change what a stage makes). */
pt_status pt_run_plan_build(pt_run_plan *p, const pt_run_recipe *r, int threads);
void pt_run_plan_free(pt_run_plan *p);

/* The full command line of stage s given which optional inputs exist (present[i] for in[i]),
 * plus `extra` arguments (a resume flag). */
pt_status pt_run_stage_command(const pt_run_stage *s, const bool *present, const pt_run_args *extra, pt_run_args *out);

/* The command as it is executed: `cmd` itself, or for a launched stage the launcher's words,
 * then this binary's path, then cmd's arguments (mpirun -np 4 /usr/bin/politune train ...). */
pt_status pt_run_stage_launch(const pt_run_plan *p, const pt_run_stage *s, const pt_run_args *cmd, pt_run_args *out);

#endif
