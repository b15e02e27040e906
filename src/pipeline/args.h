/* A growable list of strings: the argument vectors `politune run` builds for its stages,
 * and their shell-quoted form recorded in the manifests so a stage can be re-run by hand. */
#ifndef PT_CLI_RUN_ARGS_H
#define PT_CLI_RUN_ARGS_H

#include "util/status.h"

typedef struct {
    char **v; /* NULL-terminated once anything was pushed */
    int n, cap;
} pt_run_args;

pt_status pt_run_args_push(pt_run_args *a, const char *s);
pt_status pt_run_args_pushf(pt_run_args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
pt_status pt_run_args_append(pt_run_args *a, const pt_run_args *b);
void pt_run_args_free(pt_run_args *a);

/* One line, each argument quoted for a POSIX shell where it needs it (malloc'd). */
char *pt_run_args_shell(const pt_run_args *a);

#endif
