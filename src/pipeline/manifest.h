/* Stage manifests: STAGE_DIR/manifest.json records what a stage read (each input's path and
 * SHA-256), its parameters, the exact command line, the tool version, what it wrote (with
 * hashes) and whether it completed. A stage is up to date when its manifest is complete for
 * the same version, parameters and input hashes, and its outputs exist.
 *
 * Hashing a multi-gigabyte model on every rerun would cost minutes, so each input also gets
 * a fingerprint (size, modification time and inode of every file): when the fingerprint is
 * the one the previous manifest recorded, its hash is reused without reading the file. */
#ifndef PT_CLI_RUN_MANIFEST_H
#define PT_CLI_RUN_MANIFEST_H

#include <jansson.h>
#include <stdbool.h>

#include "pipeline/args.h"
#include "pipeline/plan.h"

#define PT_RUN_MANIFEST_FORMAT "politune-run-stage/1"

/* The inputs object {role: {"path", "sha256", "fingerprint"}} of a stage; present[i] says
 * whether in[i] exists. A required input that is missing is an error naming it. `prev` is
 * the stage's previous manifest (NULL: none). */
pt_status pt_run_manifest_inputs(const pt_run_stage *s, const char *run_dir, json_t *prev, bool *present, json_t **inputs);

/* The manifest in `dir`, or NULL when there is none (or it is unreadable: then the stage just
 * runs again). */
json_t *pt_run_manifest_load(const char *dir);

/* Whether the stage can be skipped; otherwise *why says what changed (static text). */
bool pt_run_manifest_current(json_t *m, const pt_run_stage *s, json_t *inputs, const char *run_dir, const char **why);
/* The same inputs and parameters as `m`, whether or not it completed: an interrupted stage
 * with these may be resumed. */
bool pt_run_manifest_same_work(json_t *m, const pt_run_stage *s, json_t *inputs);

/* A manifest for a stage about to run (completed: false). `cmd` is its full command line. */
json_t *pt_run_manifest_start(const pt_run_stage *s, json_t *inputs, const pt_run_args *cmd, const char *run_dir, bool resumed);
/* Marks it completed: hashes the outputs, records the time taken and the command's JSON
 * summary (its stdout) when it printed one. */
pt_status pt_run_manifest_finish(json_t *m, const pt_run_stage *s, const char *run_dir, double seconds, const char *summary);
pt_status pt_run_manifest_save(const char *dir, json_t *m);

#endif
