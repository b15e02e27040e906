/* The stage loop of `politune run` (see pt_run_exec.h). */
#include "pipeline/exec.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pipeline/fs.h"
#include "pipeline/manifest.h"
#include "pipeline/spawn.h"
#include "util/clock.h"
#include "util/file.h"

/* Formats one message for the caller's callback (long command lines are cut at 8 KiB). */
static void say(const pt_run_exec_opts *o, pt_run_say_kind kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(const pt_run_exec_opts *o, pt_run_say_kind kind, const char *fmt, ...) {
    if (!o->say) return;
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    o->say(o->say_user, kind, buf);
}

static void fmt_secs(char *b, size_t n, double s) {
    if (s < 10) snprintf(b, n, "%.1f s", s);
    else if (s < 600) snprintf(b, n, "%.0f s", s);
    else snprintf(b, n, "%dm%02ds", (int)s / 60, (int)s % 60);
}

/* The last non-empty line of a log file, for the failure message. */
static char *last_line(const char *path) {
    char *text = NULL;
    size_t len;
    if (pt_file_read_all(path, &text, &len)) return NULL;
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r')) text[--len] = 0;
    char *nl = strrchr(text, '\n'), *cr = strrchr(text, '\r');
    char *start = nl > cr ? nl : cr;
    char *line = strdup(start ? start + 1 : text);
    free(text);
    return line;
}

/* Runs stage i (already decided). */
static pt_status exec_stage(const pt_run_plan *p, int i, const pt_run_exec_opts *o, json_t *prev, json_t *inputs, const bool *present,
                           bool forced, bool *resumed, double *secs) {
    const pt_run_stage *s = &p->s[i];
    const int n = p->n;
    char *dir = pt_run_abs(o->run_dir, s->dir);
    if (!dir) return pt_error(PT_ERR_OOM, "out of memory");
    /* an interrupted stage with the same work resumes where its tool can */
    bool resume = s->resumable && !forced && prev && !json_is_true(json_object_get(prev, "completed")) && pt_run_manifest_same_work(prev, s, inputs);
    pt_run_args extra = {0};
    pt_status st = PT_OK;
    if (resume && s->kind == PT_RUN_TRAIN) {
        if (pt_run_has_checkpoint(dir)) {
            st = pt_run_args_push(&extra, "--resume");
            if (!st) st = pt_run_args_push(&extra, s->dir);
        } else {
            resume = false;
        }
    }
    if (!st && !resume) st = pt_run_clear_dir(dir);
    pt_run_args cmd = {0}, plain = {0};
    if (!st) st = pt_run_stage_command(s, present, &extra, &plain);
    if (!st) st = pt_run_stage_launch(p, s, &plain, &cmd);
    pt_run_args_free(&extra);
    const bool launched = s->launched && p->launcher.n > 0;
    pt_run_args_free(&plain);
    json_t *m = NULL;
    if (!st && !(m = pt_run_manifest_start(s, inputs, &cmd, o->run_dir, resume))) st = pt_error(PT_ERR_OOM, "out of memory");
    if (!st) st = pt_run_manifest_save(dir, m);
    if (!st && !o->quiet) {
        char *line = pt_run_args_shell(&cmd);
        say(o, PT_RUN_SAY_COMMAND, "[%d/%d] %s%s: %s", i + 1, n, s->title, resume ? " (resuming)" : "", line ? line : "");
        free(line);
    }
    char *log = o->quiet ? pt_path_join(dir, "log.txt") : NULL, *out = NULL;
    int status = 0;
    double t0 = pt_now_s();
    if (!st) st = pt_run_spawn(&cmd, launched, o->run_dir, log, &out, &status);
    *secs = pt_now_s() - t0;
    if (!st && status) {
        char *why = log ? last_line(log) : NULL;
        char *line = pt_run_args_shell(&cmd);
        st = pt_error(PT_ERR_IO, "stage %s failed (exit status %d)%s%s; its command, run in %s: %s%s%s", s->title, status, why ? ": " : "",
                      why ? why : "", o->run_dir, line ? line : "", log ? "; its messages: " : "", log ? log : "");
        free(line);
        free(why);
    }
    if (!st) st = pt_run_manifest_finish(m, s, o->run_dir, *secs, out);
    if (!st) st = pt_run_manifest_save(dir, m);
    json_decref(m);
    pt_run_args_free(&cmd);
    free(out);
    free(log);
    free(dir);
    *resumed = resume;
    return st;
}

pt_status pt_run_exec(const pt_run_plan *p, const pt_run_exec_opts *o, pt_run_exec_result *res) {
    memset(res, 0, sizeof *res);
    if (!o->dry_run) PT_TRY(pt_mkdir_p(o->run_dir));
    bool *ran = calloc((size_t)p->n + 1, sizeof *ran), *present = calloc(PT_RUN_MAX_STAGE_INPUTS, sizeof *present);
    pt_status st = ran && present ? PT_OK : pt_error(PT_ERR_OOM, "out of memory");
    for (int i = 0; i < p->n && !st; i++) {
        const pt_run_stage *s = &p->s[i];
        bool dep_ran = false;
        for (int j = 0; j < s->n_in; j++) dep_ran |= s->in[j].from >= 0 && ran[s->in[j].from];
        bool forced = o->from >= 0 && (int)s->kind >= o->from;
        char *dir = pt_run_abs(o->run_dir, s->dir);
        json_t *prev = dir ? pt_run_manifest_load(dir) : NULL, *inputs = NULL;
        free(dir);
        st = pt_run_manifest_inputs(s, o->run_dir, prev, present, &inputs);
        if (st && o->dry_run && dep_ran) {
            /* its inputs do not exist yet, but the stage before would make them */
            pt_error_clear();
            st = PT_OK;
        }
        if (st) { json_decref(prev); break; }
        const char *why = NULL;
        bool current = !forced && !dep_ran && inputs && pt_run_manifest_current(prev, s, inputs, o->run_dir, &why);
        /* a stage that prints its own progress on stderr gets its line when it is done */
        bool prefix_now = current || o->dry_run || o->quiet;
        if (prefix_now) say(o, PT_RUN_SAY_PROGRESS, "[%d/%d] %s ... ", i + 1, p->n, s->title);
        if (current) {
            say(o, PT_RUN_SAY_PROGRESS, "skipped (up to date)\n");
            res->skipped++;
        } else if (o->dry_run) {
            pt_run_args plain = {0}, cmd = {0};
            st = pt_run_stage_command(s, NULL, NULL, &plain);
            if (!st) st = pt_run_stage_launch(p, s, &plain, &cmd);
            char *line = st ? NULL : pt_run_args_shell(&cmd);
            say(o, PT_RUN_SAY_PROGRESS, "would run (%s): %s\n", forced ? "--from" : dep_ran ? "an earlier stage runs" : why ? why : "out of date", line ? line : "");
            free(line);
            pt_run_args_free(&plain);
            pt_run_args_free(&cmd);
            ran[i] = true;
            res->ran++;
        } else {
            bool resumed = false;
            double secs = 0;
            st = exec_stage(p, i, o, prev, inputs, present, forced, &resumed, &secs);
            if (!prefix_now) say(o, PT_RUN_SAY_PROGRESS, "[%d/%d] %s ... ", i + 1, p->n, s->title);
            if (!st) {
                char t[32];
                fmt_secs(t, sizeof t, secs);
                say(o, PT_RUN_SAY_PROGRESS, "%sdone in %s\n", resumed ? "resumed, " : "", t);
                ran[i] = true;
                res->ran++;
            } else {
                say(o, PT_RUN_SAY_PROGRESS, "failed\n");
            }
        }
        json_decref(prev);
        json_decref(inputs);
    }
    free(ran);
    free(present);
    return st;
}
