/* The compass evaluation hook of training (see train_eval.h). */
#include "eval/train_eval.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"
#include "eval/compass.h"
#include "eval/templates.h"
#include "util/clock.h"

pt_status pt_train_eval_init(pt_train_eval *e, long every, const char *templates, const char *option_scoring, const char *eval_dir,
                             const char *train_out, int max_new_tokens) {
    memset(e, 0, sizeof *e);
    e->every = every;
    e->max_new_tokens = max_new_tokens;
    e->option_scoring = PT_OPTION_NUMBER;
    if (option_scoring) {
        pt_status st = pt_option_scoring_from_name(option_scoring, &e->option_scoring);
        if (st) return pt_error_wrap(st, "eval_option_scoring: ");
    }
    pt_template_variant *v = NULL;
    int nv = 0;
    pt_status st = pt_templates_select(templates, &v, &nv);
    free(v);
    if (st) return pt_error_wrap(st, "eval_templates: ");
    char *qp = pt_eval_find_asset(PT_PCT_QUESTIONNAIRE), *sp = pt_eval_find_asset(PT_PCT_SCORING);
    const bool found = qp && sp;
    free(qp), free(sp);
    if (!found)
        return pt_error(PT_ERR_IO, "eval_every: the Political Compass files (%s, %s) were not found under $POLITUNE_ASSETS or ../shared/assets",
                        PT_PCT_QUESTIONNAIRE, PT_PCT_SCORING);
    if (eval_dir) e->dir = strdup(eval_dir);
    else {
        size_t n = strlen(train_out) + 16;
        if ((e->dir = malloc(n))) snprintf(e->dir, n, "%s/compass", train_out);
    }
    e->train_out = strdup(train_out);
    if (templates) e->templates = strdup(templates);
    if (!e->dir || !e->train_out || (templates && !e->templates)) {
        pt_train_eval_free(e);
        return pt_error(PT_ERR_OOM, "out of memory");
    }
    return PT_OK;
}

void pt_train_eval_free(pt_train_eval *e) {
    free(e->dir);
    free(e->templates);
    free(e->train_out);
    memset(e, 0, sizeof *e);
}

/* Whether dir/pc.csv has a row for `step` (its second column). */
static bool eval_recorded(const char *dir, long step) {
    char path[4096];
    snprintf(path, sizeof path, "%s/pc.csv", dir);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    bool found = false, header = true;
    char line[256];
    while (!found && fgets(line, sizeof line, f)) {
        const bool whole = strchr(line, '\n') != NULL;
        if (!header) {
            char *comma = strchr(line, ',');
            char *end;
            if (comma) {
                long s = strtol(comma + 1, &end, 10);
                if (end != comma + 1 && (*end == ',' || *end == '\n' || *end == '\r' || !*end) && s == step) found = true;
            }
        }
        /* skip the rest of a long line */
        int ch = 0;
        if (!whole)
            while ((ch = fgetc(f)) != EOF && ch != '\n') {}
        header = false;
        if (ch == EOF && !whole) break;
    }
    fclose(f);
    return found;
}

pt_status pt_train_eval_compass(void *user, const pt_model *m, const pt_adapter *a, long step, char *note, size_t note_cap) {
    const pt_train_eval *e = user;
    if (note_cap) note[0] = 0;
    if (e->every <= 0 || step <= 0 || step % e->every) return PT_OK;
    /* rank 0's files decide for every rank of a job, which all run the evaluation together */
    uint8_t recorded = pt_dist_rank() == 0 && eval_recorded(e->dir, step);
    PT_TRY(pt_dist_bcast(&recorded, 1, 0));
    if (recorded) {
        snprintf(note, note_cap, "compass: step %ld already evaluated in %s", step, e->dir);
        return PT_OK;
    }
    pt_compass_config cfg = pt_compass_config_default();
    cfg.mode = PT_COMPASS_LOGPROB;
    cfg.templates = e->templates;
    cfg.option_scoring = e->option_scoring;
    if (e->max_new_tokens > 0) {
        const char *const *ids, *const *prompts;
        cfg.n_open_prompts = pt_open_prompts_default(&ids, &prompts);
        cfg.open_prompt_ids = ids;
        cfg.open_prompts = prompts;
        cfg.gen.max_new_tokens = e->max_new_tokens;
    }
    const double t0 = pt_now_s();
    pt_status st = pt_compass_track(m, a, e->dir, step / e->every, step, NULL, NULL, &cfg, e->train_out);
    if (st) return pt_error_wrap(st, "compass evaluation at step %ld: ", step);
    snprintf(note, note_cap, "compass: step %ld evaluated in %.1f s, appended to %s", step, pt_now_s() - t0, e->dir);
    return PT_OK;
}
