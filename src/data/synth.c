/* synth: preference pairs from kept posts (see pipeline.h). Per window, one round of
 * instruction requests, then one round of chosen + rejected requests for the records whose
 * instruction came back usable, and with the swap check a third round asking which of the
 * two answers is more on the target side, in both orders. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "data/jsonl.h"
#include "data/stage_impl.h"
#include "util/file.h"

typedef struct {
    const pt_synth_opts *o;
    const char *label;
} synth_ctx;

static const char *leaning_of(const char *target) {
    return !strcmp(target, "left") ? "left-leaning (progressive, liberal)" : "right-leaning (conservative)";
}

static const char *target_of(const synth_ctx *c, const pt_record *r) {
    if (c->o->target) return c->o->target;
    const char *t = json_string_value(json_object_get(r->fields, "target"));
    return t && (!strcmp(t, "left") || !strcmp(t, "right")) ? t : NULL;
}

static bool synth_wanted(void *vctx, const pt_record *r) {
    synth_ctx *c = vctx;
    if (c->o->all) return true;
    json_t *k = json_object_get(r->fields, "keep");
    return !k || json_is_true(k);
}

/* The useful part of a generated text: trimmed, without a leading "Question:"-style label or
 * wrapping quotes. Empty when nothing is left. */
static char *clean(const char *s) {
    while (*s && isspace((unsigned char)*s)) s++;
    static const char *heads[] = {"question:", "instruction:", "answer:", "response:", "### response:", "### instruction:"};
    for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++)
        if (!strncasecmp(s, heads[i], strlen(heads[i]))) {
            s += strlen(heads[i]);
            while (*s && isspace((unsigned char)*s)) s++;
            break;
        }
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) n--;
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') s++, n -= 2;
    return strndup(s, n);
}

static const char *const ab_labels[2] = {"A", "B"};

/* The swap check's requests: for each of the m pairs, "which is more <target>?" with the
 * chosen answer first, then second (labels A/B); replies in chk->rep[2 slot + 0/1]. */
static pt_status pair_check(synth_ctx *c, pt_judge *j, const pt_record *const *recs, int n, const int *slot, char *const *instr,
                            const pt_judge_reply *rep, int m, pt_stage_batch *chk) {
    PT_TRY(pt_stage_batch_init(chk, 2 * m));
    const char *names[] = {"instruction", "leaning", "first", "second"};
    for (int i = 0; i < n; i++) {
        if (slot[i] < 0) continue;
        const char *ch = rep[2 * slot[i]].text ? rep[2 * slot[i]].text : "", *rj = rep[2 * slot[i] + 1].text ? rep[2 * slot[i] + 1].text : "";
        for (int q = 0; q < 2; q++) {
            int k = 2 * slot[i] + q;
            const char *vals[] = {instr[i], leaning_of(target_of(c, recs[i])), q ? rj : ch, q ? ch : rj};
            PT_TRY(pt_prompt_fill(c->o->prompts->text[PT_PROMPT_PAIR_CHECK], "synth_pair_check", names, vals, 4, &chk->texts[k]));
            if (asprintf(&chk->whats[k], "%s:%d (id %s) pair check, chosen %s", c->label, recs[i]->line, recs[i]->id, q ? "second" : "first") < 0)
                chk->whats[k] = NULL;
            chk->reqs[k] = (pt_judge_req){.prompt = chk->texts[k], .labels = ab_labels, .n_labels = 2,
                                          .seed = pt_stage_seed(recs[i]->id, q ? "check-chosen-second" : "check-chosen-first"), .what = chk->whats[k]};
        }
    }
    return pt_judge_run(j, 2 * m, chk->reqs, chk->rep);
}

static pt_status synth_window(void *vctx, pt_judge *j, const pt_record *const *recs, int n, pt_stage_out *outs) {
    synth_ctx *c = vctx;
    const pt_prompts *pr = c->o->prompts;
    pt_stage_batch b;
    pt_status st = pt_stage_batch_init(&b, 2 * n);
    pt_judge_req *reqs = b.reqs;
    pt_judge_reply *rep = b.rep, *inst = calloc((size_t)n, sizeof *inst);
    char **texts = b.texts, **whats = b.whats;
    char **instr = calloc((size_t)n, sizeof *instr);
    int *slot = calloc((size_t)n, sizeof *slot);
    if (!st && !(inst && instr && slot)) st = pt_error(PT_ERR_OOM, "out of memory");
    /* round 1: instructions */
    const char *n1[] = {"text"};
    for (int i = 0; i < n && !st; i++) {
        const char *v1[] = {recs[i]->text};
        st = pt_prompt_fill(pr->text[PT_PROMPT_INSTRUCTION], "synth_instruction", n1, v1, 1, &texts[i]);
        if (!st && asprintf(&whats[i], "%s:%d (id %s) instruction", c->label, recs[i]->line, recs[i]->id) < 0) whats[i] = NULL;
        reqs[i] = (pt_judge_req){.prompt = texts[i], .max_tokens = c->o->max_tokens, .seed = pt_stage_seed(recs[i]->id, "instruction"), .what = whats[i]};
    }
    if (!st) st = pt_judge_run(j, n, reqs, inst);
    for (int i = 0; texts && i < n; i++) {
        free(texts[i]);
        free(whats[i]);
        texts[i] = whats[i] = NULL;
    }
    /* round 2: chosen and rejected for the usable instructions */
    int m = 0;
    const char *n2[] = {"text", "instruction", "leaning", "opposite"};
    for (int i = 0; i < n && !st; i++) {
        slot[i] = -1;
        const char *target = target_of(c, recs[i]);
        char where[256];
        pt_stage_where(where, sizeof where, c->label, recs[i]);
        if (!target) {
            if (asprintf(&outs[i].note, "%s: no target leaning (give --target, or synthesise from select output)", where) < 0) outs[i].note = NULL;
            continue;
        }
        instr[i] = clean(inst[i].text ? inst[i].text : "");
        if (!instr[i]) { st = pt_error(PT_ERR_OOM, "out of memory"); break; }
        if (!*instr[i]) {
            outs[i].note = pt_stage_invalid_note(where, "the instruction", "a non-empty question", inst[i].text);
            continue;
        }
        const char *opposite = !strcmp(target, "left") ? "right" : "left";
        const char *v2[] = {recs[i]->text, instr[i], leaning_of(target), leaning_of(opposite)};
        for (int q = 0; q < 2 && !st; q++) {
            int k = 2 * m + q;
            st = pt_prompt_fill(pr->text[q ? PT_PROMPT_REJECTED : PT_PROMPT_CHOSEN], q ? "synth_rejected" : "synth_chosen", n2, v2, 4, &texts[k]);
            if (!st && asprintf(&whats[k], "%s:%d (id %s) %s", c->label, recs[i]->line, recs[i]->id, q ? "rejected" : "chosen") < 0) whats[k] = NULL;
            reqs[k] = (pt_judge_req){.prompt = texts[k], .max_tokens = c->o->max_tokens, .seed = pt_stage_seed(recs[i]->id, q ? "rejected" : "chosen"),
                                     .what = whats[k]};
        }
        slot[i] = m++;
    }
    if (!st && m) st = pt_judge_run(j, 2 * m, reqs, rep);
    /* round 3 (swap check): the chosen answer as A, then as B */
    pt_stage_batch chk = {0};
    if (!st && c->o->swap && m) st = pair_check(c, j, recs, n, slot, instr, rep, m, &chk);
    for (int i = 0; i < n && !st; i++) {
        const pt_record *r = recs[i];
        char where[256];
        pt_stage_where(where, sizeof where, c->label, r);
        char *chosen = NULL, *rejected = NULL;
        if (slot[i] >= 0) {
            chosen = clean(rep[2 * slot[i]].text ? rep[2 * slot[i]].text : "");
            rejected = clean(rep[2 * slot[i] + 1].text ? rep[2 * slot[i] + 1].text : "");
            if (!chosen || !rejected) st = pt_error(PT_ERR_OOM, "out of memory");
            else if (!*chosen) outs[i].note = pt_stage_invalid_note(where, "the chosen response", "a non-empty text", rep[2 * slot[i]].text);
            else if (!*rejected) outs[i].note = pt_stage_invalid_note(where, "the rejected response", "a non-empty text", rep[2 * slot[i] + 1].text);
        }
        if (!st && slot[i] >= 0 && *chosen && *rejected) {
            char pid_src[64], pid[17];
            snprintf(pid_src, sizeof pid_src, "pair:%s", r->id);
            pt_data_id(pid, pid_src, strlen(pid_src));
            json_t *o = json_object();
            json_object_set_new(o, "id", json_string(pid));
            json_object_set_new(o, "prompt", json_string(instr[i]));
            json_object_set_new(o, "chosen", json_string(chosen));
            json_object_set_new(o, "rejected", json_string(rejected));
            json_object_set_new(o, "source_id", json_string(r->id));
            json_object_set_new(o, "target", json_string(target_of(c, r)));
            bool drop = false;
            if (c->o->swap) {
                const pt_judge_reply *ra = &chk.rep[2 * slot[i]], *rb = &chk.rep[2 * slot[i] + 1];
                /* labels {A, B}: chosen first wins with A, chosen second wins with B */
                bool valid = ra->label >= 0 && rb->label >= 0, disagree = valid && ra->label == rb->label;
                json_object_set_new(o, "swap", json_pack("{s:o,s:o,s:b,s:o}", "chosen_first", ra->label >= 0 ? json_string(ra->label ? "B" : "A") : json_null(),
                                                         "chosen_second", rb->label >= 0 ? json_string(rb->label ? "B" : "A") : json_null(), "disagree",
                                                         disagree, "chosen_wins", valid && !disagree ? json_boolean(ra->label == 0) : json_null()));
                outs[i].swap = valid ? 1 + disagree : 0;
                drop = disagree && c->o->swap == PT_SWAP_DROP;
            }
            if (drop) {
                outs[i].side = json_pack("{s:s,s:s,s:O}", "source_id", r->id, "error", "the judge's verdict followed the order of the answers (swap check)",
                                         "swap", json_object_get(o, "swap"));
                outs[i].outcome = OUT_DROPPED;
                json_decref(o);
            } else {
                outs[i].rec = o;
                outs[i].outcome = OUT_KEPT;
            }
        } else if (!st) {
            outs[i].outcome = OUT_INVALID;
            outs[i].side = json_pack("{s:s,s:s}", "source_id", r->id, "error", outs[i].note ? outs[i].note : "unusable judge reply");
        }
        free(chosen);
        free(rejected);
    }
    pt_stage_batch_free(&b);
    pt_stage_batch_free(&chk);
    for (int i = 0; i < n; i++) {
        if (inst) pt_judge_reply_free(&inst[i]);
        if (instr) free(instr[i]);
    }
    free(inst);
    free(instr);
    free(slot);
    return st;
}

pt_status pt_synth_run(const pt_recordset *in, pt_judge *j, const pt_synth_opts *o, const pt_stage_io *io, const pt_stage_hooks *h,
                       pt_stage_summary *sum) {
    if (o->target && strcmp(o->target, "left") && strcmp(o->target, "right"))
        return pt_error(PT_ERR_ARG, "the target must be 'left' or 'right', not '%s'", o->target);
    synth_ctx c = {o, in->label ? in->label : "input"};
    char *side = NULL;
    if (asprintf(&side, "%s.invalid.jsonl", io->out) < 0) return pt_error(PT_ERR_OOM, "out of memory");
    pt_stage_def d = {.key = "source_id", .side_path = side, .wanted = synth_wanted, .fn = synth_window, .ctx = &c};
    pt_status st = pt_stage_run(&d, in, j, io, h, sum);
    free(side);
    return st;
}

pt_status pt_synth_write_chat_json(const char *prefs_jsonl, const char *out_json) {
    json_t *pairs;
    PT_TRY(pt_jsonl_read_all(prefs_jsonl, &pairs));
    json_t *arr = json_array();
    pt_status st = PT_OK;
    for (size_t i = 0; i < json_array_size(pairs) && !st; i++) {
        json_t *o = json_array_get(pairs, i);
        json_t *p = json_object_get(o, "prompt"), *c = json_object_get(o, "chosen"), *rj = json_object_get(o, "rejected");
        if (!json_is_string(p) || !json_is_string(c) || !json_is_string(rj))
            st = pt_error(PT_ERR_FORMAT, "%s: record %zu: a pair needs string 'prompt', 'chosen' and 'rejected'", prefs_jsonl, i + 1);
        else
            json_array_append_new(arr, json_pack("{s:[{s:s,s:O},{s:s,s:O}],s:[{s:s,s:O},{s:s,s:O}]}", "chosen", "role", "user", "content", p, "role",
                                                 "assistant", "content", c, "rejected", "role", "user", "content", p, "role", "assistant",
                                                 "content", rj));
    }
    json_decref(pairs);
    char *s = st ? NULL : json_dumps(arr, JSON_INDENT(1));
    json_decref(arr);
    if (!st && !s) st = pt_error(PT_ERR_OOM, "out of memory");
    if (!st) st = pt_file_write_atomic(out_json, s, strlen(s));
    free(s);
    return st;
}
