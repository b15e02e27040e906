/* Running one stage: this same binary (/proc/self/exe) as a child process with the stage's
 * argument vector, in the run directory. Its stdout (the command's one-line JSON summary) is
 * captured; its stderr (progress, notes, errors) goes to the terminal or, quietly, to a log
 * file. A separate process keeps every stage's memory, threads and failures to itself, and
 * the command it ran is exactly the one a user can run again by hand. */
#ifndef PT_CLI_RUN_SPAWN_H
#define PT_CLI_RUN_SPAWN_H

#include <stdbool.h>

#include "pipeline/args.h"

/* Runs argv in `cwd`: this binary with argv.v[0] only the displayed name, or, with
 * `launcher`, the program argv.v[0] found on PATH (mpirun, srun), which starts this binary. stderr goes to `err_path`
 * (appended) or, when NULL, stays the caller's. *out: what it printed on stdout (malloc'd).
 * *status: its exit status, or 128 + the signal that ended it. */
pt_status pt_run_spawn(const pt_run_args *argv, bool launcher, const char *cwd, const char *err_path, char **out, int *status);

#endif
