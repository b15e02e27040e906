/* `politune run` recipes: the YAML tree checked against the known keys and turned into what
 * each stage needs — its flags (also its recorded parameters), the files it reads (hashed
 * into the manifests), the targets and where their pairs come from. Every problem is found
 * here, before any stage runs, and reported as one message naming the recipe file, the line
 * and the dotted key (docs/pipeline.md lists the keys). */
#ifndef PT_CLI_RUN_RECIPE_H
#define PT_CLI_RUN_RECIPE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "assets/assets.h"
#include "pipeline/args.h"
#include "format/yaml.h"

#define PT_RUN_MAX_SOURCES 8
#define PT_RUN_MAX_INPUTS 8

/* A file a stage reads: `flag path` on its command line (flag NULL: a positional argument). */
typedef struct {
    char *role, *flag, *path; /* path absolute */
} pt_run_input;

/* The options of one kind of stage: flags without paths (recorded as its parameters) and the
 * files it reads. */
typedef struct {
    pt_run_args args;
    json_t *params;
    pt_run_input in[PT_RUN_MAX_INPUTS];
    int n_in;
} pt_run_opts;

typedef struct {
    char *name;                   /* left, right, left75 */
    int n;                        /* sources mixed */
    char *src[PT_RUN_MAX_SOURCES];   /* names of data.pairs entries, or left / right from the corpus */
    double w[PT_RUN_MAX_SOURCES];    /* normalised to sum 1 */
} pt_run_target;

typedef enum { PT_RUN_DATA_NONE, PT_RUN_DATA_CORPUS, PT_RUN_DATA_PAIRS } pt_run_data_kind;

typedef struct {
    char *file;        /* the recipe as named on the command line (for messages) */
    char *dir;         /* absolute: relative paths in the recipe start here */
    char *name;        /* `name:`, else the file's stem */
    char *model;       /* absolute path of the base model */
    pt_run_data_kind data;
    /* corpus: select and synth per side, with the judge */
    pt_run_opts corpus, judge, select;
    bool side_used[2]; /* left, right */
    /* ready pairs */
    int n_sources;
    char *source_name[PT_RUN_MAX_SOURCES], *source_path[PT_RUN_MAX_SOURCES];
    long sample;       /* pairs per target (0: all) */
    long heldout;      /* held-out pairs per target, disjoint from the sample (0: none) */
    int heldout_line;  /* where data.heldout is (for messages) */
    uint64_t seed;
    int n_targets;
    pt_run_target *targets;
    pt_run_opts train;    /* includes the eval_every keys */
    long eval_every;
    pt_run_opts compass;  /* besides --mode */
    bool eval_base;
    int n_modes;
    char *modes[2];
    char *generate_templates; /* eval.generate_templates: generate mode's --templates, or NULL (eval.templates) */
    bool report, report_svg;
    /* dial: the compass along adapter scales (one stage per target) and a two-target mix */
    bool dial;
    pt_run_opts dial_opts;   /* templates, batch, resamples, option scoring */
    char *dial_scales;       /* "-1,-0.5,0" or NULL: no scale stages */
    char *dial_weights;      /* with dial_mix */
    int dial_mix[2];         /* target indices, -1: no mix stage */
    /* how the stages that run a model run: `launcher` words go in front of the training and
     * compass commands (mpirun -np 4, srun; empty: none), `device` is their --device (NULL:
     * each command's default) */
    pt_run_args launcher;
    char *device;
} pt_run_recipe;

/* Reads and checks the recipe; `sets` are "dotted.key=value" overrides applied first (NULL-
 * terminated, may be NULL). Asset paths ("asset:models/...") are resolved, and fetched into
 * the cache when missing, with `pull` (may be NULL) told of the progress. */
pt_status pt_run_recipe_load(pt_run_recipe *r, const char *path, const char *const *sets, const pt_pull_hooks *pull);
void pt_run_recipe_free(pt_run_recipe *r);

#endif
