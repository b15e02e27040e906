/* Recipe -> plan -> execution, for `politune run` and `politune demo` (see run_driver.h). */
#include "run_driver.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "cli.h"
#include "pipeline/exec.h"
#include "pipeline/fs.h"
#include "pipeline/plan.h"
#include "pipeline/recipe.h"
#include "util/file.h"

/* The pipeline library reports; the CLI decides where it goes: the stage lines on stdout,
 * the stage commands on stderr. */
static void say(void *user, pt_run_say_kind kind, const char *text) {
    if (kind == PT_RUN_SAY_COMMAND) {
        fprintf(stderr, "politune run: %s\n", text);
        return;
    }
    fputs(text, stdout);
    fflush(stdout);
}

/* A download's progress, on a terminal only (a log file would fill with carriage returns). */
static void on_pull(void *user, const char *path, int64_t done, int64_t total) {
    if (!isatty(2)) return;
    if (total > 0) fprintf(stderr, "\rpolitune run: fetching %s: %.1f / %.1f MiB ", path, done / 1048576.0, total / 1048576.0);
    else fprintf(stderr, "\rpolitune run: fetching %s: %.1f MiB ", path, done / 1048576.0);
    if (total > 0 && done >= total) fputc('\n', stderr);
}

/* One run at a time per directory: two would interleave their stages' writes. */
static int lock_dir(const char *cmd, const char *dir) {
    char *p = pt_path_join(dir, ".lock");
    int fd = p ? open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0666) : -1;
    free(p);
    if (fd < 0) {
        fprintf(stderr, "politune %s: %s: cannot create the lock file: %s\n", cmd, dir, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        fprintf(stderr, "politune %s: another politune run is working in %s\n", cmd, dir);
        close(fd);
        return -1;
    }
    return fd;
}

int run_pipeline(const char *cmd, const run_request *q, char **run_dir) {
    *run_dir = NULL;
    int from = -1;
    if (q->from && (from = pt_run_kind_from_name(q->from)) < 0)
        return cli_usage_error(cmd, "--from: unknown stage '%s' (stages: select, synth, pairs, train, compass, report)", q->from);
    pt_run_recipe r;
    pt_pull_hooks pull = {on_pull, NULL};
    pt_status st = pt_run_recipe_load(&r, q->recipe, q->sets, &pull);
    if (st) {
        fprintf(stderr, "politune %s: %s\n", cmd, pt_errmsg());
        pt_run_recipe_free(&r);
        return 2;
    }
    pt_run_plan p;
    if ((st = pt_run_plan_build(&p, &r, q->threads))) {
        pt_run_recipe_free(&r);
        return cli_fail(cmd, st);
    }
    bool has_from = from < 0;
    for (int i = 0; i < p.n; i++) has_from |= (int)p.s[i].kind == from;
    if (!has_from) {
        pt_run_plan_free(&p);
        pt_run_recipe_free(&r);
        return cli_usage_error(cmd, "--from %s: this recipe has no %s stage", q->from, q->from);
    }
    /* the run directory, absolute: every stage runs in it */
    char def[512];
    snprintf(def, sizeof def, "runs/%s", r.name);
    const char *out = q->out ? q->out : def;
    char *abs = NULL;
    if (!q->dry_run && (st = pt_mkdir_p(out))) {
        pt_run_plan_free(&p);
        pt_run_recipe_free(&r);
        return cli_fail(cmd, st);
    }
    if (!(abs = realpath(out, NULL))) {
        char cwd[4096];
        abs = out[0] == '/' ? strdup(out) : getcwd(cwd, sizeof cwd) ? pt_path_join(cwd, out) : NULL;
    }
    int lock = -1, rc = 0;
    if (!abs) rc = cli_fail(cmd, pt_error(PT_ERR_OOM, "out of memory"));
    else if (!q->dry_run && (lock = lock_dir(cmd, abs)) < 0) rc = 1;
    if (!rc) {
        pt_run_exec_opts o = {abs, from, q->dry_run, q->quiet, say, NULL};
        pt_run_exec_result res;
        st = pt_run_exec(&p, &o, &res);
        if (st) rc = cli_fail(cmd, st);
        if (st == PT_ERR_ARG) rc = 1; /* a stage failed: not a usage error */
    }
    if (lock >= 0) close(lock);
    pt_run_plan_free(&p);
    pt_run_recipe_free(&r);
    if (rc) free(abs);
    else *run_dir = abs;
    return rc;
}
