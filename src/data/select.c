/* select: ideology and quality of each post from the judge, and the keep decision (see
 * pipeline.h). Two requests per record (four with the swap check), all of a window in flight
 * together. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/stage_impl.h"

typedef struct {
    const pt_select_opts *o;
    const char *label;   /* input file name for notes */
} select_ctx;

/* Request k of record i: 0 ideology, 1 quality, and with the swap check 2 and 3 the same on
 * the mirrored scales. */
static const pt_prompt_kind select_prompt[4] = {PT_PROMPT_IDEOLOGY, PT_PROMPT_QUALITY, PT_PROMPT_IDEOLOGY_MIRRORED, PT_PROMPT_QUALITY_MIRRORED};
static const char *const select_purpose[4] = {"ideology", "quality", "ideology-mirrored", "quality-mirrored"};

static pt_status select_requests(select_ctx *c, pt_stage_batch *b, const pt_record *const *recs, int n, int per) {
    const char *names[] = {"text"};
    for (int i = 0; i < n; i++) {
        const char *vals[] = {recs[i]->text};
        for (int q = 0; q < per; q++) {
            int k = per * i + q;
            char label[48];
            snprintf(label, sizeof label, "select_%s", select_purpose[q]);
            PT_TRY(pt_prompt_fill(c->o->prompts->text[select_prompt[q]], label, names, vals, 1, &b->texts[k]));
            if (asprintf(&b->whats[k], "%s:%d (id %s) %s", c->label, recs[i]->line, recs[i]->id, select_purpose[q]) < 0) b->whats[k] = NULL;
            b->reqs[k] = (pt_judge_req){.prompt = b->texts[k], .labels = pt_scale_labels, .n_labels = q % 2 ? PT_QUALITY_MAX : PT_IDEOLOGY_MAX,
                                        .seed = pt_stage_seed(recs[i]->id, select_purpose[q]), .what = b->whats[k]};
        }
    }
    return PT_OK;
}

static pt_status select_window(void *vctx, pt_judge *j, const pt_record *const *recs, int n, pt_stage_out *outs) {
    select_ctx *c = vctx;
    const int per = c->o->swap ? 4 : 2;
    pt_stage_batch b;
    pt_status st = pt_stage_batch_init(&b, per * n);
    if (!st) st = select_requests(c, &b, recs, n, per);
    if (!st) st = pt_judge_run(j, per * n, b.reqs, b.rep);
    const bool left = !strcmp(c->o->target, "left");
    for (int i = 0; i < n && !st; i++) {
        const pt_record *r = recs[i];
        pt_judge_reply *ri = &b.rep[per * i], *rq = &b.rep[per * i + 1];
        double ideo = pt_stage_label_value(ri, PT_IDEOLOGY_MAX), qual = pt_stage_label_value(rq, PT_QUALITY_MAX);
        json_t *o = json_object(), *swap = NULL;
        bool disagree = false;
        if (c->o->swap) {
            pt_swap_reading si = pt_swap_combine(ideo, pt_stage_label_value(&b.rep[per * i + 2], PT_IDEOLOGY_MAX), PT_IDEOLOGY_MAX);
            pt_swap_reading sq = pt_swap_combine(qual, pt_stage_label_value(&b.rep[per * i + 3], PT_QUALITY_MAX), PT_QUALITY_MAX);
            ideo = si.value;
            qual = sq.value;
            disagree = si.disagree || sq.disagree;
            outs[i].swap = isfinite(ideo) && isfinite(qual) ? 1 + disagree : 0;
            swap = json_pack("{s:o,s:o,s:b}", "ideology", pt_swap_json(&si), "quality", pt_swap_json(&sq), "disagree", disagree);
        }
        json_object_set_new(o, "id", json_string(r->id));
        json_object_set_new(o, "line", json_integer(r->line));
        json_object_set_new(o, "text", json_string(r->text));
        json_object_set_new(o, "target", json_string(c->o->target));
        json_object_set_new(o, "ideology", pt_stage_real(ideo));
        json_object_set_new(o, "ideology_label", ri->label >= 0 ? json_integer(ri->label + 1) : json_null());
        if (ri->probs) json_object_set_new(o, "ideology_probs", pt_stage_probs_json(ri, PT_IDEOLOGY_MAX));
        json_object_set_new(o, "quality", pt_stage_real(qual));
        json_object_set_new(o, "quality_label", rq->label >= 0 ? json_integer(rq->label + 1) : json_null());
        if (swap) json_object_set_new(o, "swap", swap);
        const char *decision;
        char where[256];
        pt_stage_where(where, sizeof where, c->label, r);
        if (isnan(ideo) || isnan(qual)) {
            decision = "invalid";
            outs[i].outcome = OUT_INVALID;
            bool bad_i = isnan(ideo);
            /* with the swap check, the reply that failed may be either order's */
            const pt_judge_reply *bad = bad_i ? (isnan(pt_stage_label_value(ri, PT_IDEOLOGY_MAX)) ? ri : &b.rep[per * i + 2])
                                              : (isnan(pt_stage_label_value(rq, PT_QUALITY_MAX)) ? rq : &b.rep[per * i + 3]);
            outs[i].note = pt_stage_invalid_note(where, bad_i ? "ideology" : "quality", bad_i ? "a score from 1 to 9" : "a score from 1 to 5", bad->text);
            json_object_set_new(o, "error", json_string(outs[i].note ? outs[i].note : "judge reply not in the requested format"));
        } else if (disagree && c->o->swap == PT_SWAP_DROP) {
            decision = "swap-disagree";
            outs[i].outcome = OUT_DROPPED;
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
