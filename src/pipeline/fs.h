/* File-system chores of `politune run`: emptying a stage folder before a stage
 * starts over, and asking whether a training folder holds a checkpoint to resume from. */
#ifndef PT_CLI_RUN_FS_H
#define PT_CLI_RUN_FS_H

#include <stdbool.h>

#include "util/status.h"

/* Removes everything inside `dir` (the folder itself stays; a missing one is created). */
pt_status pt_run_clear_dir(const char *dir);
/* Whether `dir` holds a finished checkpoint-<step> folder. */
bool pt_run_has_checkpoint(const char *dir);
/* An absolute path for `rel` inside `dir` (rel absolute: itself). malloc'd. */
char *pt_run_abs(const char *dir, const char *rel);

#endif
