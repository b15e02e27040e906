/* What `politune run` and `politune demo` share: load and check a recipe, lay out its stage
 * graph, and execute it in a run directory; plus the demo's embedded recipe. */
#ifndef PT_CLI_RUN_DRIVER_H
#define PT_CLI_RUN_DRIVER_H

#include <stdbool.h>

typedef struct {
    const char *recipe;       /* the recipe file */
    const char *const *sets;  /* "dotted.key=value" overrides, NULL-terminated (may be NULL) */
    const char *out;          /* the run directory (NULL: runs/<recipe name>) */
    const char *from;         /* a stage kind to force with everything after it (NULL: none) */
    bool dry_run, quiet;
    int threads;              /* 0: each stage's default */
} run_request;

/* Runs the recipe; messages go to stderr as "politune <cmd>: ...". Returns the exit status
 * (2 for a recipe that does not check out, before any stage ran). On success *run_dir is the
 * absolute run directory (malloc'd). */
int run_pipeline(const char *cmd, const run_request *q, char **run_dir);

/* The demo's recipe (run_demo_recipe.c). */
extern const char run_demo_recipe[];

#endif
