/* judge-answers: ideology of open-ended answers (from compass.json or prompt/answer JSONL),
 * per-evaluation summaries, and the summary written back into compass.json (see pipeline.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/idset.h"
#include "data/jsonl.h"
#include "data/stage_impl.h"
#include "util/file.h"

/* ---- reading ------------------------------------------------------------------------------- */

static pt_status add_answer(pt_recordset *rs, pt_idset *seen, const char *eval, json_int_t iteration, json_int_t step, const char *pid,
                            const char *prompt, const char *answer, int line) {
    rs->n_read++;
    char key_src[4096], id[17];
    snprintf(key_src, sizeof key_src, "%s\x1f%lld\x1f%lld\x1f%s\x1f", eval, (long long)iteration, (long long)step, pid);
    uint64_t h = pt_data_hash(key_src, strlen(key_src), 0);
    snprintf(id, sizeof id, "%016llx", (unsigned long long)pt_data_hash(answer, strlen(answer), h));
    int added = pt_idset_add(seen, id);
    if (added < 0) return pt_error(PT_ERR_OOM, "out of memory");
    if (added == 0) {
        rs->n_dup++;
        pt_records_note(rs, "%s:%d: the same answer to prompt '%s' of evaluation '%s' again (id %s), dropped", rs->label, line, pid, eval, id);
        return PT_OK;
    }
    json_t *f = json_pack("{s:s,s:I,s:I,s:s,s:s,s:s}", "evaluation", eval, "iteration", iteration, "step", step, "prompt_id", pid, "prompt",
                          prompt, "answer", answer);
    if (!f) return pt_error(PT_ERR_OOM, "out of memory");
    return pt_records_append(rs, id, answer, f, line);
}

static pt_status load_compass(pt_recordset *rs, pt_idset *seen, json_t *doc) {
    json_t *evals = json_object_get(doc, "evaluations");
    int line = 0;
    for (size_t e = 0; e < json_array_size(evals); e++) {
        json_t *ev = json_array_get(evals, e);
        const char *label = json_string_value(json_object_get(ev, "label"));
        json_int_t it = json_integer_value(json_object_get(ev, "iteration")), step = json_integer_value(json_object_get(ev, "step"));
        json_t *ops = json_object_get(ev, "open_prompts");
        for (size_t k = 0; k < json_array_size(ops); k++) {
            json_t *op = json_array_get(ops, k);
            line++;
            const char *pid = json_string_value(json_object_get(op, "id")), *prompt = json_string_value(json_object_get(op, "prompt")),
                       *resp = json_string_value(json_object_get(op, "response"));
            if (!prompt || !resp) {
                rs->n_read++;
                rs->n_bad++;
                pt_records_note(rs, "%s: evaluation %zu, open prompt %zu: no string 'prompt' and 'response'", rs->label, e + 1, k + 1);
                continue;
            }
            char pid_buf[32];
            if (!pid) snprintf(pid_buf, sizeof pid_buf, "p%zu", k + 1), pid = pid_buf;
            PT_TRY(add_answer(rs, seen, label ? label : "model", it, step, pid, prompt, resp, line));
        }
    }
    return PT_OK;
}

static pt_status load_pairs(pt_recordset *rs, pt_idset *seen, const char *text, size_t len) {
    pt_jsonl_reader r;
    pt_jsonl_reader_init(&r, text, len, rs->label);
    for (;;) {
        json_t *o;
        int line;
        bool got;
        pt_status st = pt_jsonl_next(&r, &o, &line, &got);
        if (st == PT_ERR_OOM) return st;
        if (st) {
            rs->n_read++;
            rs->n_bad++;
            pt_records_note(rs, "%s", pt_errmsg());
            continue;
        }
        if (!got) break;
        const char *prompt = json_string_value(json_object_get(o, "prompt"));
        const char *answer = json_string_value(json_object_get(o, "answer"));
        if (!answer) answer = json_string_value(json_object_get(o, "response"));
        if (!prompt || !answer) {
            rs->n_read++;
            rs->n_bad++;
            pt_records_note(rs, "%s:%d: a record needs string 'prompt' and 'answer' (or 'response')", rs->label, line);
            json_decref(o);
            continue;
        }
        const char *eval = json_string_value(json_object_get(o, "evaluation"));
        if (!eval) eval = json_string_value(json_object_get(o, "label"));
        const char *pid = json_string_value(json_object_get(o, "prompt_id"));
        char pid_buf[32];
        if (!pid) snprintf(pid_buf, sizeof pid_buf, "p%d", line), pid = pid_buf;
        st = add_answer(rs, seen, eval ? eval : "answers", json_integer_value(json_object_get(o, "iteration")),
                        json_integer_value(json_object_get(o, "step")), pid, prompt, answer, line);
        json_decref(o);
        if (st) return st;
    }
    return PT_OK;
}

pt_status pt_answers_load(pt_recordset *rs, const char *path, char **compass) {
    memset(rs, 0, sizeof *rs);
    *compass = NULL;
    char *file = pt_dir_exists(path) ? pt_path_join(path, "compass.json") : strdup(path);
    if (!file) return pt_error(PT_ERR_OOM, "out of memory");
    char *text = NULL;
    size_t len = 0;
    pt_status st = pt_file_read_all(file, &text, &len);
    if (!st && !(rs->label = strdup(file))) st = pt_error(PT_ERR_OOM, "out of memory");
    size_t i = 0;
    while (!st && i < len && (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t')) i++;
    if (!st && i == len) st = pt_error(PT_ERR_FORMAT, "%s: the file is empty", file);
    pt_idset seen;
    pt_idset_init(&seen);
    if (!st) {
        json_t *doc = NULL;
        if (text[i] == '{' || text[i] == '[') doc = json_loadb(text, len, 0, NULL);
        const char *fmt = json_string_value(json_object_get(doc, "format"));
        if (doc && fmt && !strncmp(fmt, "politune-compass/", 17)) {
            st = load_compass(rs, &seen, doc);
            if (!st && !(*compass = strdup(file))) st = pt_error(PT_ERR_OOM, "out of memory");
        } else if (json_is_array(doc)) {
            /* a JSON array of prompt/answer records: one per line, as JSONL */
            char *lines = NULL;
            size_t n = 0;
            FILE *f = open_memstream(&lines, &n);
            for (size_t k = 0; f && k < json_array_size(doc); k++) {
                char *s = json_dumps(json_array_get(doc, k), JSON_COMPACT | JSON_ENCODE_ANY);
                if (s) fprintf(f, "%s\n", s);
                free(s);
            }
            if (f) fclose(f);
            st = lines ? load_pairs(rs, &seen, lines, n) : pt_error(PT_ERR_OOM, "out of memory");
            free(lines);
        } else
            st = load_pairs(rs, &seen, text, len);
        json_decref(doc);
    }
    pt_idset_free(&seen);
    free(text);
    free(file);
    if (!st && rs->n == 0 && rs->n_bad == 0) st = pt_error(PT_ERR_FORMAT, "%s: no open-ended answers in it", rs->label ? rs->label : path);
    if (st) {
        pt_records_free(rs);
        free(*compass);
        *compass = NULL;
    }
    return st;
}

/* ---- judging ------------------------------------------------------------------------------- */

typedef struct {
    const pt_answers_opts *o;
} answers_ctx;

static pt_status answers_window(void *vctx, pt_judge *j, const pt_record *const *recs, int n, pt_stage_out *outs) {
    answers_ctx *c = vctx;
    /* per answer: the ideology, the rationale (optional), the mirrored ideology (swap check) */
    const int per = 1 + c->o->rationale + (c->o->swap != PT_SWAP_OFF);
    const int q_mirror = c->o->swap ? per - 1 : -1;
    pt_stage_batch b;
    pt_status st = pt_stage_batch_init(&b, n * per);
    pt_judge_req *reqs = b.reqs;
    pt_judge_reply *rep = b.rep;
    char **texts = b.texts, **whats = b.whats;
    const char *names[] = {"prompt", "answer"};
    for (int i = 0; i < n && !st; i++) {
        const pt_record *r = recs[i];
        const char *vals[] = {json_string_value(json_object_get(r->fields, "prompt")), r->text};
        for (int q = 0; q < per && !st; q++) {
            int k = per * i + q;
            bool rationale = q > 0 && q != q_mirror, mirrored = q == q_mirror;
            const char *purpose = rationale ? "rationale" : mirrored ? "ideology-mirrored" : "ideology";
            pt_prompt_kind kind = rationale ? PT_PROMPT_ANSWER_RATIONALE : mirrored ? PT_PROMPT_ANSWER_IDEOLOGY_MIRRORED : PT_PROMPT_ANSWER_IDEOLOGY;
            st = pt_prompt_fill(c->o->prompts->text[kind], rationale ? "answer_rationale" : mirrored ? "answer_ideology_mirrored" : "answer_ideology", names,
                                vals, 2, &texts[k]);
            if (!st && asprintf(&whats[k], "answer %s (prompt %s of %s) %s", r->id, json_string_value(json_object_get(r->fields, "prompt_id")),
                                json_string_value(json_object_get(r->fields, "evaluation")), purpose) < 0)
                whats[k] = NULL;
            reqs[k] = (pt_judge_req){.prompt = texts[k], .labels = rationale ? NULL : pt_scale_labels, .n_labels = rationale ? 0 : PT_IDEOLOGY_MAX,
                                     .max_tokens = rationale ? c->o->rationale_tokens : 0, .seed = pt_stage_seed(r->id, purpose), .what = whats[k]};
        }
    }
    if (!st) st = pt_judge_run(j, n * per, reqs, rep);
    for (int i = 0; i < n && !st; i++) {
        const pt_record *r = recs[i];
        pt_judge_reply *ri = &rep[per * i];
        double v = pt_stage_label_value(ri, PT_IDEOLOGY_MAX);
        json_t *o = json_object();
        pt_swap_reading sw = {0};
        if (c->o->swap) {
            sw = pt_swap_combine(v, pt_stage_label_value(&rep[per * i + q_mirror], PT_IDEOLOGY_MAX), PT_IDEOLOGY_MAX);
            v = sw.disagree && c->o->swap == PT_SWAP_DROP ? NAN : sw.value;
            outs[i].swap = isfinite(sw.value) ? 1 + sw.disagree : 0;
        }
        json_object_set_new(o, "id", json_string(r->id));
        const char *keys[] = {"evaluation", "iteration", "step", "prompt_id", "prompt"};
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) json_object_set(o, keys[k], json_object_get(r->fields, keys[k]));
        json_object_set_new(o, "answer", json_string(r->text));
        json_object_set_new(o, "ideology", pt_stage_real(v));
        json_object_set_new(o, "ideology_label", ri->label >= 0 ? json_integer(ri->label + 1) : json_null());
        if (ri->probs) json_object_set_new(o, "ideology_probs", pt_stage_probs_json(ri, PT_IDEOLOGY_MAX));
        if (c->o->rationale) {
            char *t = rep[per * i + 1].text;
            size_t a = 0, b = t ? strlen(t) : 0;
            while (a < b && (t[a] == ' ' || t[a] == '\n')) a++;
            while (b > a && (t[b - 1] == ' ' || t[b - 1] == '\n')) b--;
            json_object_set_new(o, "rationale", t ? json_stringn(t + a, b - a) : json_null());
        }
        if (c->o->swap) json_object_set_new(o, "swap", pt_swap_json(&sw));
        if (c->o->swap && sw.disagree && c->o->swap == PT_SWAP_DROP) {
            outs[i].outcome = OUT_DROPPED;
            json_object_set_new(o, "decision", json_string("swap-disagree"));
        } else if (isnan(v)) {
            char where[256];
            snprintf(where, sizeof where, "%s (answer %s, prompt %s)", json_string_value(json_object_get(r->fields, "evaluation")), r->id,
                     json_string_value(json_object_get(r->fields, "prompt_id")));
            const pt_judge_reply *bad = isnan(pt_stage_label_value(ri, PT_IDEOLOGY_MAX)) || !c->o->swap ? ri : &rep[per * i + q_mirror];
            outs[i].note = pt_stage_invalid_note(where, "ideology", "a score from 1 to 9", bad->text);
            outs[i].outcome = OUT_INVALID;
            json_object_set_new(o, "decision", json_string("invalid"));
        } else {
            outs[i].outcome = OUT_KEPT;
            json_object_set_new(o, "decision", json_string("scored"));
        }
        outs[i].rec = o;
    }
    pt_stage_batch_free(&b);
    return st;
}

pt_status pt_answers_run(const pt_recordset *in, pt_judge *j, const pt_answers_opts *o, const pt_stage_io *io, const pt_stage_hooks *h,
                         pt_stage_summary *sum) {
    answers_ctx c = {o};
    pt_stage_def d = {.key = "id", .fn = answers_window, .ctx = &c};
    return pt_stage_run(&d, in, j, io, h, sum);
}

/* ---- summaries ----------------------------------------------------------------------------- */

pt_status pt_answers_summary(const pt_recordset *in, const char *judged_jsonl, const char *judge, json_t **out) {
    *out = NULL;
    json_t *by_id;
    PT_TRY(pt_jsonl_index(judged_jsonl, "id", &by_id));
    json_t *res = json_array();
    for (int i = 0; i < in->n; i++) {
        const pt_record *rec = &in->rec[i];
        json_t *jo = json_object_get(by_id, rec->id);
        if (!jo) continue;
        const char *ev = json_string_value(json_object_get(rec->fields, "evaluation"));
        json_int_t it = json_integer_value(json_object_get(rec->fields, "iteration")), step = json_integer_value(json_object_get(rec->fields, "step"));
        json_t *group = NULL;
        for (size_t g = 0; g < json_array_size(res) && !group; g++) {
            json_t *c = json_array_get(res, g);
            if (!strcmp(json_string_value(json_object_get(c, "evaluation")), ev) && json_integer_value(json_object_get(c, "iteration")) == it &&
                json_integer_value(json_object_get(c, "step")) == step)
                group = c;
        }
        if (!group) {
            group = json_pack("{s:s,s:I,s:I,s:s,s:{s:i,s:i,s:i},s:i,s:i,s:n,s:[]}", "evaluation", ev, "iteration", it, "step", step, "judge",
                              judge ? judge : "", "scale", "min", PT_IDEOLOGY_MIN, "center", PT_IDEOLOGY_CENTER, "max", PT_IDEOLOGY_MAX, "n", 0,
                              "invalid", 0, "mean", "by_prompt");
            json_array_append_new(res, group);
        }
        json_t *score = json_object_get(jo, "ideology");
        json_t *bp = json_pack("{s:O,s:O,s:O,s:O}", "id", json_object_get(rec->fields, "prompt_id"), "prompt", json_object_get(rec->fields, "prompt"),
                               "ideology", score ? score : json_null(), "rationale",
                               json_object_get(jo, "rationale") ? json_object_get(jo, "rationale") : json_null());
        json_array_append_new(json_object_get(group, "by_prompt"), bp);
        const char *cnt = json_is_number(score) ? "n" : "invalid";
        json_object_set_new(group, cnt, json_integer(json_integer_value(json_object_get(group, cnt)) + 1));
    }
    for (size_t g = 0; g < json_array_size(res); g++) {
        json_t *c = json_array_get(res, g), *bp = json_object_get(c, "by_prompt");
        double sum = 0;
        int k = 0;
        for (size_t p = 0; p < json_array_size(bp); p++) {
            json_t *s = json_object_get(json_array_get(bp, p), "ideology");
            if (json_is_number(s)) sum += json_number_value(s), k++;
        }
        json_object_set_new(c, "mean", k ? pt_stage_real(sum / k) : json_null());
    }
    json_decref(by_id);
    if (!res) return pt_error(PT_ERR_OOM, "out of memory");
    *out = res;
    return PT_OK;
}

pt_status pt_answers_update_compass(const char *compass_json, const json_t *summary, const char *judge) {
    json_error_t e;
    json_t *doc = json_load_file(compass_json, 0, &e);
    if (!doc) return pt_error(PT_ERR_FORMAT, "%s:%d: not valid JSON: %s", compass_json, e.line, e.text);
    json_t *evals = json_object_get(doc, "evaluations");
    for (size_t g = 0; g < json_array_size(summary); g++) {
        json_t *s = json_array_get(summary, g);
        for (size_t k = 0; k < json_array_size(evals); k++) {
            json_t *ev = json_array_get(evals, k);
            const char *label = json_string_value(json_object_get(ev, "label"));
            if (strcmp(label ? label : "model", json_string_value(json_object_get(s, "evaluation"))) ||
                json_integer_value(json_object_get(ev, "iteration")) != json_integer_value(json_object_get(s, "iteration")) ||
                json_integer_value(json_object_get(ev, "step")) != json_integer_value(json_object_get(s, "step")))
                continue;
            json_t *copy = json_deep_copy(s);
            json_object_del(copy, "evaluation");
            json_object_del(copy, "iteration");
            json_object_del(copy, "step");
            if (judge) json_object_set_new(copy, "judge", json_string(judge));
            json_object_set_new(ev, "open_judge", copy);
        }
    }
    char *out = json_dumps(doc, JSON_INDENT(1) | JSON_REAL_PRECISION(15));
    json_decref(doc);
    if (!out) return pt_error(PT_ERR_OOM, "out of memory");
    size_t n = strlen(out);
    char *t = realloc(out, n + 2);
    if (!t) { free(out); return pt_error(PT_ERR_OOM, "out of memory"); }
    t[n] = '\n';
    t[n + 1] = 0;
    pt_status st = pt_file_write_atomic(compass_json, t, n + 1);
    free(t);
    return st;
}
