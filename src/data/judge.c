/* The judge interface and the in-process judge (see judge.h); replies are parsed in
 * judge_parse.c, the HTTP judge lives in judge_http.c. */
#include "data/judge.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/judge_impl.h"
#include "tokenizer/tokenizer.h"

pt_judge_opts pt_judge_opts_default(void) {
    pt_judge_opts o = {0};
    o.model_name = "default";
    o.concurrency = 4;
    o.timeout_s = 120;
    o.connect_timeout_s = 10;
    o.retries = 4;
    o.backoff_s = 0.5;
    o.backoff_max_s = 30;
    o.mode = PT_JUDGE_TEXT;
    o.max_tokens = 256;
    o.label_max_tokens = 16;
    return o;
}

static const char *mode_name(pt_judge_mode m) { return m == PT_JUDGE_CHOICE ? "choice" : m == PT_JUDGE_LOGPROBS ? "logprobs" : "text"; }

const char *pt_judge_describe(const pt_judge *j) { return j->desc; }
long pt_judge_retries(const pt_judge *j) { return j->retries; }
long pt_judge_requests(const pt_judge *j) { return j->requests; }

void pt_judge_reply_free(pt_judge_reply *r) {
    free(r->text);
    free(r->probs);
    r->text = NULL;
    r->probs = NULL;
}

/* ---- in-process --------------------------------------------------------------------------- */

pt_status pt_judge_local_new(pt_judge **out, pt_engine *e, pt_chat_template chat, const pt_judge_opts *o) {
    *out = NULL;
    const pt_model *m = pt_engine_model(e);
    if (!m->tok) return pt_error(PT_ERR_ARG, "%s: the judge model has no tokenizer", m->path);
    pt_judge *j = calloc(1, sizeof *j);
    if (!j) return pt_error(PT_ERR_OOM, "out of memory");
    j->kind = JUDGE_LOCAL;
    j->o = *o;
    j->e = e;
    j->chat = chat != PT_CHAT_NONE ? chat : PT_CHAT_ALPACA;
    j->system = o->system ? strdup(o->system) : NULL;
    pt_tokenizer_stop_ids(m->tok, j->stop_ids, 16, &j->n_stop_ids);
    pt_status st = pt_batcher_new(&j->b, e, 0, o->batch_invariant);
    if (st) {
        free(j->system);
        free(j);
        return st;
    }
    const char *name = strrchr(m->path, '/') ? strrchr(m->path, '/') + 1 : m->path;
    snprintf(j->desc, sizeof j->desc, "in-process %s (%d in a batch, %s mode, template %s)", name, pt_engine_n_slots(e), mode_name(o->mode),
             pt_chat_template_name(j->chat));
    *out = j;
    return PT_OK;
}

static pt_status local_run(pt_judge *j, int n, const pt_judge_req *reqs, pt_judge_reply *replies) {
    const pt_model *m = pt_engine_model(j->e);
    pt_job **jobs = calloc((size_t)n, sizeof *jobs);
    if (!jobs) return pt_error(PT_ERR_OOM, "out of memory");
    pt_status st = PT_OK;
    for (int i = 0; i < n && !st; i++) {
        const pt_judge_req *r = &reqs[i];
        pt_chat_msg msgs[2];
        int k = 0;
        if (j->system) msgs[k++] = (pt_chat_msg){"system", j->system};
        msgs[k++] = (pt_chat_msg){"user", r->prompt};
        char *text = NULL;
        int32_t *ids = NULL, *prefix = NULL, **cids = NULL;
        int nids = 0, nprefix = 0, *ncids = NULL;
        bool add_special;
        bool scored = r->labels && j->o.mode != PT_JUDGE_TEXT;
        st = pt_batcher_encode_chat(m->tok, j->chat, msgs, k, &text, &ids, &nids, &add_special);
        if (!st && scored)
            st = pt_batcher_choice_tokens(m->tok, text, add_special, r->labels, r->n_labels, &prefix, &nprefix, &cids, &ncids);
        if (!st) {
            pt_job_spec s = {0};
            s.prompt = scored ? prefix : ids;
            s.n_prompt = scored ? nprefix : nids;
            s.sampling = pt_sampling_default();
            s.sampling.temperature = scored ? 0 : j->o.temperature;
            s.sampling.seed = r->seed;
            s.max_new_tokens = r->max_tokens > 0 ? r->max_tokens : r->labels ? j->o.label_max_tokens : j->o.max_tokens;
            s.stop_ids = j->stop_ids;
            s.n_stop_ids = j->n_stop_ids;
            s.top_logprobs = -1;
            if (scored) {
                s.n_choices = r->n_labels;
                s.choice_ids = (const int32_t *const *)cids;
                s.n_choice = ncids;
                s.choice_text = r->labels;
            }
            bool busy;
            st = pt_batcher_submit(j->b, &s, &jobs[i], &busy);
            if (!st && busy) st = pt_error(PT_ERR_INTERNAL, "in-process judge queue full");
        }
        if (st) pt_error_wrap(st, "judge %s: ", r->what ? r->what : "request");
        free(text);
        free(ids);
        free(prefix);
        for (int c = 0; cids && c < r->n_labels; c++) free(cids[c]);
        free(cids);
        free(ncids);
    }
    for (int i = 0; i < n; i++) {
        if (!jobs[i]) continue;
        pt_job_wait(jobs[i], -1);
        const pt_job_result *res = pt_job_result_get(jobs[i]);
        pt_judge_reply *rp = &replies[i];
        if (!st && strcmp(res->finish, "stop") && strcmp(res->finish, "length"))
            st = pt_error(PT_ERR_INTERNAL, "judge %s: generation %s: %s", reqs[i].what ? reqs[i].what : "request", res->finish,
                          res->error ? res->error : "");
        if (!st) {
            rp->text = strdup(res->text);
            rp->label = -1;
            rp->attempts = 1;
            const pt_judge_req *r = &reqs[i];
            if (r->labels && res->choice_logprob && res->choice >= 0) {
                rp->label = res->choice;
                if ((rp->probs = malloc(sizeof(double) * r->n_labels))) {
                    double mx = res->choice_logprob[0], sum = 0;
                    for (int k = 1; k < r->n_labels; k++) mx = fmax(mx, res->choice_logprob[k]);
                    for (int k = 0; k < r->n_labels; k++) sum += rp->probs[k] = exp(res->choice_logprob[k] - mx);
                    for (int k = 0; k < r->n_labels; k++) rp->probs[k] /= sum;
                }
            } else if (r->labels)
                rp->label = pt_judge_parse_label(rp->text, r->labels, r->n_labels);
            if (!rp->text) st = pt_error(PT_ERR_OOM, "out of memory");
            j->requests++;
        }
        pt_job_release(jobs[i]);
    }
    free(jobs);
    return st;
}

pt_status pt_judge_run(pt_judge *j, int n, const pt_judge_req *reqs, pt_judge_reply *replies) {
    memset(replies, 0, sizeof *replies * (size_t)n);
    for (int i = 0; i < n; i++) replies[i].label = -1;
    pt_status st = j->kind == JUDGE_HTTP ? pt_judge_http_run(j, n, reqs, replies) : local_run(j, n, reqs, replies);
    if (st)
        for (int i = 0; i < n; i++) pt_judge_reply_free(&replies[i]);
    return st;
}

void pt_judge_free(pt_judge *j) {
    if (!j) return;
    if (j->kind == JUDGE_HTTP) pt_judge_http_close(j);
    else pt_batcher_free(j->b);
    free(j->system);
    free(j);
}
