/* Executing a plan: each stage in order is skipped when its manifest says it is up to date
 * and nothing it depends on ran in this invocation, resumed when it was interrupted with the
 * same inputs and its tool can resume, and otherwise run afresh in an emptied folder. One
 * line per stage goes to stdout: "[3/7] train left ... done in 41 s". */
#ifndef PT_CLI_RUN_EXEC_H
#define PT_CLI_RUN_EXEC_H

#include <stdbool.h>

#include "pipeline/plan.h"

typedef struct {
    const char *run_dir; /* absolute; created if missing */
    int from;            /* run_kind forced, with every later kind; -1: none */
    bool dry_run;        /* say what would run, run nothing */
    bool quiet;          /* stage messages go to STAGE_DIR/log.txt instead of stderr */
} run_exec_opts;

typedef struct {
    int ran, skipped;
} run_exec_result;

pt_status run_exec(const run_plan *p, const run_exec_opts *o, run_exec_result *res);

#endif
