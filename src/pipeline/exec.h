/* Executing a plan: each stage in order is skipped when its manifest says it is up to date
 * and nothing it depends on ran in this invocation, resumed when it was interrupted with the
 * same inputs and its tool can resume, and otherwise run afresh in an emptied folder. One
 * line per stage goes to the caller's `say` callback: "[3/7] train left ... done in 41 s". */
#ifndef PT_CLI_RUN_EXEC_H
#define PT_CLI_RUN_EXEC_H

#include <stdbool.h>

#include "pipeline/plan.h"

typedef enum { PT_RUN_SAY_PROGRESS, PT_RUN_SAY_COMMAND } pt_run_say_kind;

typedef struct {
    const char *run_dir; /* absolute; created if missing */
    int from;            /* pt_run_kind forced, with every later kind; -1: none */
    bool dry_run;        /* say what would run, run nothing */
    bool quiet;          /* stage messages go to STAGE_DIR/log.txt instead of stderr */
    /* Where the progress goes: PT_RUN_SAY_PROGRESS pieces make the "[3/7] train left ... done"
     * lines (a piece may end without a newline: the stage runs in between), PT_RUN_SAY_COMMAND
     * is a whole line naming a stage's command before it runs. NULL: silent. */
    void (*say)(void *user, pt_run_say_kind kind, const char *text);
    void *say_user;
} pt_run_exec_opts;

typedef struct {
    int ran, skipped;
} pt_run_exec_result;

pt_status pt_run_exec(const pt_run_plan *p, const pt_run_exec_opts *o, pt_run_exec_result *res);

#endif
