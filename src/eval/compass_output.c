/* Result directories: compass.json (appended evaluation by evaluation), pc.csv (the paper's
 * layout, header "iteration,step,<item ids>", one row per evaluation with the consensus
 * answers, empty where no valid answer), prompts.csv (the open-ended replies, same layout
 * with the prompt ids) and compass.svg (redrawn from compass.json). Everything is checked
 * before anything is written, and each file is replaced atomically. Also the training hook,
 * which runs the compass and saves in one call. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dist/dist.h"
#include "eval/compass_impl.h"
#include "format/csv.h"
#include "eval/report.h"
#include "util/file.h"

/* The CSV header line for a table of (iteration, step, columns...). */
static char *csv_header(int n, char *const *cols) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    fputs("iteration,step", f);
    for (int i = 0; i < n; i++) {
        fputc(',', f);
        pt_csv_write_field(f, cols[i]);
    }
    fputc('\n', f);
    fclose(f);
    return buf;
}

/* Reads an existing table (or "" when absent) and checks its header. */
static pt_status read_table(const char *path, const char *header, char **old) {
    *old = NULL;
    if (!pt_file_exists(path)) {
        *old = strdup(header);
        return *old ? PT_OK : pt_error(PT_ERR_OOM, "out of memory");
    }
    size_t len;
    PT_TRY(pt_file_read_all(path, old, &len));
    size_t hl = strlen(header);
    if (len < hl || memcmp(*old, header, hl)) {
        free(*old);
        *old = NULL;
        return pt_error(PT_ERR_FORMAT, "%s: its header row is not \"%.*s\": the file belongs to another questionnaire or prompt set", path,
                        (int)(hl > 0 ? hl - 1 : 0), header);
    }
    if (len > 0 && (*old)[len - 1] != '\n') {
        char *t = realloc(*old, len + 2);
        if (!t) { free(*old); *old = NULL; return pt_error(PT_ERR_OOM, "out of memory"); }
        t[len] = '\n';
        t[len + 1] = 0;
        *old = t;
    }
    return PT_OK;
}

static char *append_row(const char *old, long iteration, long step, int n, const int *answers, char *const *texts) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    fputs(old, f);
    fprintf(f, "%ld,%ld", iteration, step);
    for (int i = 0; i < n; i++) {
        fputc(',', f);
        if (answers && answers[i] >= 0) fprintf(f, "%d", answers[i]);
        else if (texts) pt_csv_write_field(f, texts[i]);
    }
    fputc('\n', f);
    fclose(f);
    return buf;
}

/* Whether an existing compass.json holds the same items (ids and statements) and axes. */
static pt_status same_instrument(json_t *old, json_t *fresh, const char *path) {
    json_t *a = json_object_get(old, "items"), *b = json_object_get(fresh, "items");
    int same = json_array_size(a) == json_array_size(b);
    for (size_t i = 0; same && i < json_array_size(a); i++)
        same = json_equal(json_object_get(json_array_get(a, i), "id"), json_object_get(json_array_get(b, i), "id"));
    if (!same) return pt_error(PT_ERR_FORMAT, "%s holds results for other items; use another --out directory", path);
    if (!json_equal(json_object_get(old, "axes"), json_object_get(fresh, "axes")))
        return pt_error(PT_ERR_FORMAT, "%s holds results scored on other axes; use another --out directory", path);
    /* files written before the rule was recorded keep their evaluations comparable by axes only */
    json_t *rule = json_object_get(old, "scoring_rule");
    if (rule && !json_equal(rule, json_object_get(fresh, "scoring_rule")))
        return pt_error(PT_ERR_FORMAT, "%s holds results scored with other weights; use another --out directory", path);
    return PT_OK;
}

pt_status pt_compass_save(const char *dir, const pt_compass_result *r, const pt_compass_meta *meta) {
    PT_TRY(pt_mkdir_p(dir));
    char *jpath = pt_path_join(dir, "compass.json"), *cpath = pt_path_join(dir, "pc.csv");
    char *ppath = pt_path_join(dir, "prompts.csv"), *spath = pt_path_join(dir, "compass.svg");
    json_t *doc = NULL, *fresh = NULL;
    char *old_pc = NULL, *old_pr = NULL, *new_pc = NULL, *new_pr = NULL, *json = NULL, *svg = NULL;
    char *pc_header = NULL, *pr_header = NULL;
    char **ids = NULL;
    pt_status st = PT_OK;
    if (!jpath || !cpath || !ppath || !spath) { st = pt_error(PT_ERR_OOM, "out of memory"); goto done; }
    fresh = pt_compass_json_header(r, meta);
    if (pt_file_exists(jpath)) {
        if ((st = pt_compass_json_load(jpath, &doc))) goto done;
        if ((st = same_instrument(doc, fresh, jpath))) goto done;
    } else {
        doc = json_incref(fresh);
    }
    /* check the tables before writing anything */
    ids = malloc(sizeof(char *) * (size_t)(r->n_items + 1));
    if (!ids) { st = pt_error(PT_ERR_OOM, "out of memory"); goto done; }
    for (int i = 0; i < r->n_items; i++) ids[i] = r->q->items[i].id;
    if (!(pc_header = csv_header(r->n_items, ids))) { st = pt_error(PT_ERR_OOM, "out of memory"); goto done; }
    if ((st = read_table(cpath, pc_header, &old_pc))) goto done;
    if (r->n_open > 0) {
        if (!(pr_header = csv_header(r->n_open, r->open_ids))) { st = pt_error(PT_ERR_OOM, "out of memory"); goto done; }
        if ((st = read_table(ppath, pr_header, &old_pr))) goto done;
    }
    json_array_append_new(json_object_get(doc, "evaluations"), pt_compass_json_evaluation(r, meta));
    json = pt_compass_json_dump(doc);
    long it = meta ? meta->iteration : 0, step = meta ? meta->step : 0;
    new_pc = append_row(old_pc, it, step, r->n_items, r->consensus, NULL);
    if (r->n_open > 0) new_pr = append_row(old_pr, it, step, r->n_open, NULL, r->open_responses);
    if (!json || !new_pc || (r->n_open > 0 && !new_pr)) { st = pt_error(PT_ERR_OOM, "out of memory"); goto done; }
    if ((st = pt_compass_chart(&doc, NULL, 1, true, &svg))) goto done;
    if ((st = pt_file_write_atomic(jpath, json, strlen(json)))) goto done;
    if ((st = pt_file_write_atomic(cpath, new_pc, strlen(new_pc)))) goto done;
    if (new_pr && (st = pt_file_write_atomic(ppath, new_pr, strlen(new_pr)))) goto done;
    st = pt_file_write_atomic(spath, svg, strlen(svg));
done:
    json_decref(doc);
    json_decref(fresh);
    free(ids);
    free(pc_header);
    free(pr_header);
    free(old_pc);
    free(old_pr);
    free(new_pc);
    free(new_pr);
    free(json);
    free(svg);
    free(jpath);
    free(cpath);
    free(ppath);
    free(spath);
    return st;
}

pt_status pt_compass_track(const pt_model *m, const pt_adapter *a, const char *run_dir, long iteration, long step,
                           const pt_questionnaire *q, const pt_scoring *s, const pt_compass_config *cfg, const char *label) {
    pt_questionnaire *own_q = NULL;
    pt_scoring *own_s = NULL;
    char *qpath = NULL, *spath = NULL;
    pt_status st = PT_OK;
    if (!q || !s) {
        qpath = pt_eval_find_asset(PT_PCT_QUESTIONNAIRE);
        spath = pt_eval_find_asset(PT_PCT_SCORING);
        if (!qpath || !spath) st = pt_error(PT_ERR_IO, "compass: the Political Compass files (%s, %s) were not found under $POLITUNE_ASSETS or ../shared/assets",
                                            PT_PCT_QUESTIONNAIRE, PT_PCT_SCORING);
        if (!st) st = pt_questionnaire_load(&own_q, qpath);
        if (!st) st = pt_scoring_load(&own_s, spath, own_q);
        if (!st) st = pt_scoring_check(own_s, own_q);
        q = own_q;
        s = own_s;
    }
    pt_compass_result *r = NULL;
    if (!st) st = pt_compass_run(m, a, q, s, cfg, &r);
    if (!st) {
        pt_compass_meta meta = {0};
        meta.label = label ? label : "train";
        meta.model_path = m->path;
        meta.adapter_path = NULL;
        meta.questionnaire_path = qpath ? qpath : q->path;
        meta.scoring_path = spath ? spath : s->path;
        meta.iteration = iteration;
        meta.step = step;
        /* in a job of several ranks (training's --eval-every under mpirun), rank 0 writes */
        st = pt_dist_agree(pt_dist_rank() == 0 ? pt_compass_save(run_dir, r, &meta) : PT_OK);
    }
    pt_compass_result_free(r);
    pt_scoring_free(own_s);
    pt_questionnaire_free(own_q);
    free(qpath);
    free(spath);
    return st;
}
