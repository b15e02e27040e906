/* select: ideology and quality of each post from the judge, and the keep decision (see
 * pipeline.h). Two requests per record, all of a window in flight together. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/stage_impl.h"

typedef struct {
    const pt_select_opts *o;
    const char *label;   /* input file name for notes */
} select_ctx;

static pt_status select_window(void *vctx, pt_judge *j, const pt_record *const *recs, int n, pt_stage_out *outs) {
    select_ctx *c = vctx;
    const pt_prompts *pr = c->o->prompts;
    pt_stage_batch b;
    pt_status st = pt_stage_batch_init(&b, 2 * n);
    pt_judge_req *reqs = b.reqs;
    pt_judge_reply *rep = b.rep;
    char **texts = b.texts, **whats = b.whats;
    const char *names[] = {"text"};
    for (int i = 0; i < n && !st; i++) {
        const char *vals[] = {recs[i]->text};
        for (int q = 0; q < 2 && !st; q++) {
            int k = 2 * i + q;
            st = pt_prompt_fill(pr->text[q ? PT_PROMPT_QUALITY : PT_PROMPT_IDEOLOGY], q ? "select_quality" : "select_ideology", names, vals, 1,
                                &texts[k]);
            if (st) break;
            if (asprintf(&whats[k], "%s:%d (id %s) %s", c->label, recs[i]->line, recs[i]->id, q ? "quality" : "ideology") < 0) whats[k] = NULL;
            reqs[k] = (pt_judge_req){.prompt = texts[k], .labels = pt_scale_labels, .n_labels = q ? PT_QUALITY_MAX : PT_IDEOLOGY_MAX,
                                     .seed = pt_stage_seed(recs[i]->id, q ? "quality" : "ideology"), .what = whats[k]};
        }
    }
    if (!st) st = pt_judge_run(j, 2 * n, reqs, rep);
    const bool left = !strcmp(c->o->target, "left");
    for (int i = 0; i < n && !st; i++) {
        const pt_record *r = recs[i];
        pt_judge_reply *ri = &rep[2 * i], *rq = &rep[2 * i + 1];
        double ideo = pt_stage_label_value(ri, PT_IDEOLOGY_MAX), qual = pt_stage_label_value(rq, PT_QUALITY_MAX);
        json_t *o = json_object();
        json_object_set_new(o, "id", json_string(r->id));
        json_object_set_new(o, "line", json_integer(r->line));
        json_object_set_new(o, "text", json_string(r->text));
        json_object_set_new(o, "target", json_string(c->o->target));
        json_object_set_new(o, "ideology", pt_stage_real(ideo));
        json_object_set_new(o, "ideology_label", ri->label >= 0 ? json_integer(ri->label + 1) : json_null());
        if (ri->probs) json_object_set_new(o, "ideology_probs", pt_stage_probs_json(ri, PT_IDEOLOGY_MAX));
        json_object_set_new(o, "quality", pt_stage_real(qual));
        json_object_set_new(o, "quality_label", rq->label >= 0 ? json_integer(rq->label + 1) : json_null());
        const char *decision;
        char where[256];
        pt_stage_where(where, sizeof where, c->label, r);
        if (isnan(ideo) || isnan(qual)) {
            decision = "invalid";
            outs[i].outcome = OUT_INVALID;
            bool bad_i = isnan(ideo);
            outs[i].note = pt_stage_invalid_note(where, bad_i ? "ideology" : "quality", bad_i ? "a score from 1 to 9" : "a score from 1 to 5",
                                              bad_i ? ri->text : rq->text);
            json_object_set_new(o, "error", json_string(outs[i].note ? outs[i].note : "judge reply not in the requested format"));
        } else {
            bool keep = qual >= c->o->min_quality &&
                        (left ? ideo <= PT_IDEOLOGY_CENTER - c->o->margin : ideo >= PT_IDEOLOGY_CENTER + c->o->margin);
            decision = keep ? "keep" : "drop";
            outs[i].outcome = keep ? OUT_KEPT : OUT_DROPPED;
        }
        json_object_set_new(o, "decision", json_string(decision));
        json_object_set_new(o, "keep", json_boolean(!strcmp(decision, "keep")));
        json_object_set_new(o, "fields", json_incref(r->fields));
        outs[i].rec = o;
    }
    pt_stage_batch_free(&b);
    return st;
}

pt_status pt_select_run(const pt_recordset *in, pt_judge *j, const pt_select_opts *o, const pt_stage_io *io, const pt_stage_hooks *h,
                        pt_stage_summary *sum) {
    if (!o->target || (strcmp(o->target, "left") && strcmp(o->target, "right")))
        return pt_error(PT_ERR_ARG, "the target must be 'left' or 'right', not '%s'", o->target ? o->target : "");
    select_ctx c = {o, in->label ? in->label : "input"};
    pt_stage_def d = {.key = "id", .fn = select_window, .ctx = &c};
    return pt_stage_run(&d, in, j, io, h, sum);
}
