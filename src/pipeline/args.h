/* A growable list of strings: the argument vectors `politune run` builds for its stages,
 * and their shell-quoted form recorded in the manifests so a stage can be re-run by hand. */
#ifndef PT_CLI_RUN_ARGS_H
#define PT_CLI_RUN_ARGS_H

#include "util/status.h"

typedef struct {
    char **v; /* NULL-terminated once anything was pushed */
    int n, cap;
} run_args;

pt_status run_args_push(run_args *a, const char *s);
pt_status run_args_pushf(run_args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
pt_status run_args_append(run_args *a, const run_args *b);
void run_args_free(run_args *a);

/* One line, each argument quoted for a POSIX shell where it needs it (malloc'd). */
char *run_args_shell(const run_args *a);

#endif
