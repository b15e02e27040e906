/* Generate mode (the paper's): free-text replies sampled K times per (item, template),
 * parsed for an answer; and the open-ended prompts. Generation runs with continuous
 * batching: every engine slot holds one reply in progress, all of them advance together in
 * one forward pass per token (new prompts are prefilled in the same pass), and a finished
 * reply's slot takes the next prompt at once, so the model's weights are read once per step
 * for up to `batch` sequences instead of once per sequence. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/answer_parse.h"
#include "eval/compass_impl.h"
#include "tokenizer/tokenizer.h"

void pt_eval_gen_job_free(pt_eval_gen_job *j) {
    free(j->prompt);
    free(j->ids);
    free(j->text);
    memset(j, 0, sizeof *j);
}

/* Whether the text of the last few generated tokens contains a stop string. The window is
 * decoded alone, which is enough to notice an ASCII marker; the final text is cut from the
 * full decode. */
static int tail_has_stop(const pt_model *m, const pt_eval_gen_job *j, const char *const *stops, int n_stops) {
    if (!n_stops || !m->tok) return 0;
    int from = j->n_ids > 24 ? j->n_ids - 24 : 0;
    char *t = NULL;
    if (pt_tokenizer_decode(m->tok, j->ids + from, (size_t)(j->n_ids - from), true, &t)) return 0;
    int hit = 0;
    for (int i = 0; i < n_stops && !hit; i++) hit = strstr(t, stops[i]) != NULL;
    free(t);
    return hit;
}

static pt_status finish_job(const pt_model *m, pt_eval_gen_job *j, const char *reason, const char *const *stops, int n_stops) {
    j->stop_reason = reason;
    if (!m->tok) return PT_OK;
    PT_TRY(pt_tokenizer_decode(m->tok, j->ids, (size_t)j->n_ids, true, &j->text));
    char *cut = NULL;
    for (int i = 0; i < n_stops; i++) {
        char *h = strstr(j->text, stops[i]);
        if (h && (!cut || h < cut)) cut = h;
    }
    if (cut) {
        *cut = 0;
        j->stop_reason = "stop_string";
    }
    return PT_OK;
}

pt_status pt_eval_generate_jobs(pt_engine *e, const pt_model *m, pt_eval_gen_job *jobs, int n_jobs, const pt_gen_params *p,
                                const char *const *stop_strings, int n_stop_strings, long *generated_tokens) {
    const int V = m->cfg.vocab_size, B = pt_engine_n_slots(e), n_ctx = pt_engine_n_ctx(e);
    const int max_new = p->max_new_tokens > 0 ? p->max_new_tokens : 0;
    for (int i = 0; i < n_jobs; i++) {
        if (jobs[i].n_prompt < 1 || jobs[i].n_prompt > n_ctx)
            return pt_error(PT_ERR_ARG, "generate: prompt %d has %d tokens; the cache holds %d", i, jobs[i].n_prompt, n_ctx);
        if (!(jobs[i].ids = malloc(sizeof(int32_t) * (size_t)(max_new > 0 ? max_new : 1)))) return pt_error(PT_ERR_OOM, "out of memory");
        jobs[i].n_ids = 0;
    }
    if (max_new == 0) {
        for (int i = 0; i < n_jobs; i++) PT_TRY(finish_job(m, &jobs[i], "length", stop_strings, n_stop_strings));
        return PT_OK;
    }
    int *slot_job = malloc(sizeof(int) * (size_t)B), *fresh = malloc(sizeof(int) * (size_t)B);
    int *slot = malloc(sizeof(int) * (size_t)B), *nt = malloc(sizeof(int) * (size_t)B);
    const int32_t **ids = malloc(sizeof(int32_t *) * (size_t)B);
    pt_rng *rng = malloc(sizeof(pt_rng) * (size_t)B);
    float *work = malloc(sizeof(float) * 2 * (size_t)V);
    pt_status st = PT_OK;
    if (!slot_job || !fresh || !slot || !nt || !ids || !rng || !work) st = pt_error(PT_ERR_OOM, "out of memory");
    for (int b = 0; !st && b < B; b++) slot_job[b] = -1;
    int next = 0;
    while (!st) {
        for (int b = 0; b < B && next < n_jobs && !st; b++) {
            if (slot_job[b] >= 0) continue;
            slot_job[b] = next;
            fresh[b] = 1;
            pt_rng_seed(&rng[b], jobs[next].seed);
            st = pt_engine_truncate(e, b, 0);
            next++;
        }
        int n = 0;
        for (int b = 0; b < B; b++) {
            if (slot_job[b] < 0) continue;
            pt_eval_gen_job *j = &jobs[slot_job[b]];
            slot[n] = b;
            ids[n] = fresh[b] ? j->prompt : &j->ids[j->n_ids - 1];
            nt[n] = fresh[b] ? j->n_prompt : 1;
            fresh[b] = 0;
            n++;
        }
        if (n == 0 || st) break;
        const float *logits;
        pt_batch batch = {n, slot, ids, nt};
        st = pt_engine_forward(e, &batch, PT_LOGITS_LAST, &logits);
        for (int q = 0; q < n && !st; q++) {
            int b = slot[q];
            pt_eval_gen_job *j = &jobs[slot_job[b]];
            int32_t tok = pt_sample(logits + (size_t)q * V, V, &p->sampling, &rng[b], work);
            const char *done = NULL;
            for (int s = 0; s < p->n_stop_ids; s++)
                if (tok == p->stop_ids[s]) done = "eos";
            if (!done) {
                j->ids[j->n_ids++] = tok;
                if (generated_tokens) (*generated_tokens)++;
                if (tail_has_stop(m, j, stop_strings, n_stop_strings)) done = "stop_string";
                else if (j->n_ids >= max_new) done = "length";
                else if (pt_engine_slot_len(e, b) >= n_ctx) done = "context";
            }
            if (done) {
                st = finish_job(m, j, done, stop_strings, n_stop_strings);
                slot_job[b] = -1;
            }
        }
    }
    free(slot_job);
    free(fresh);
    free(slot);
    free(nt);
    free(ids);
    free(rng);
    free(work);
    return st;
}

/* Stop ids from the tokenizer (EOS, end-of-turn) unless the caller set a list. */
static void default_stops(const pt_model *m, pt_gen_params *p, int32_t *buf, int cap) {
    if (p->stop_ids) return; /* the caller's list, possibly empty (ignore EOS) */
    int n = 0;
    if (m->tok) pt_tokenizer_stop_ids(m->tok, buf, cap, &n);
    if (n == 0 && m->cfg.eos_id >= 0) buf[n++] = m->cfg.eos_id;
    p->stop_ids = buf;
    p->n_stop_ids = n;
}

/* The caller's stop strings, plus "\n### " with the alpaca template (a model may write the
 * next "### Instruction:" itself). `buf` holds up to 17 entries. */
static int stop_strings(const pt_gen_params *p, pt_chat_template chat, const char **buf) {
    int n = 0;
    for (int i = 0; i < p->n_stop_strings && n < 16; i++) buf[n++] = p->stop_strings[i];
    if (chat == PT_CHAT_ALPACA) buf[n++] = "\n### ";
    return n;
}

static int needed_ctx(const pt_eval_gen_job *jobs, int n, int max_new) {
    int need = 0;
    for (int i = 0; i < n; i++)
        if (jobs[i].n_prompt > need) need = jobs[i].n_prompt;
    return need + (max_new > 0 ? max_new : 0);
}

void pt_compass_cell_tally(pt_compass_cell *c, const char *const *labels, int A, const pt_template_variant *v, int K) {
    int counts[64] = {0}, first_seen[64];
    for (int k = 0; k < A; k++) first_seen[k] = K;
    c->n_valid = c->n_invalid = c->n_refused = 0;
    for (int k = 0; k < K; k++) {
        int ans;
        pt_answer_status as = pt_answer_parse(c->texts[k], labels, A, v, &ans);
        c->sample_answers[k] = ans;
        c->sample_status[k] = (unsigned char)as;
        if (as == PT_ANSWER_VALID) {
            c->n_valid++;
            counts[ans]++;
            if (first_seen[ans] == K) first_seen[ans] = k;
        } else if (as == PT_ANSWER_REFUSED) {
            c->n_refused++;
        } else {
            c->n_invalid++;
        }
    }
    for (int k = 0; k < A; k++) c->probs[k] = 0;
    if (c->n_valid == 0) {
        c->answer = -1;
        c->expected = NAN;
        return;
    }
    /* majority; a tie goes to the answer that came first */
    int best = -1;
    for (int k = 0; k < A; k++)
        if (counts[k] && (best < 0 || counts[k] > counts[best] || (counts[k] == counts[best] && first_seen[k] < first_seen[best]))) best = k;
    c->answer = best;
    c->expected = 0;
    for (int k = 0; k < A; k++) {
        c->probs[k] = (double)counts[k] / c->n_valid;
        c->expected += c->probs[k] * k;
    }
}

pt_status pt_compass_generate(const pt_model *m, const pt_adapter *a, const pt_compass_config *cfg, pt_chat_template chat,
                              pt_compass_result *r) {
    const int A = r->n_answers, NV = r->n_variants, K = r->samples;
    const int n_jobs = r->n_items * NV * K;
    pt_gen_params p = r->gen;
    int32_t stop_buf[16];
    default_stops(m, &p, stop_buf, 16);
    const char *const *labels = (const char *const *)r->s->answers;
    pt_eval_gen_job *jobs = calloc((size_t)(n_jobs ? n_jobs : 1), sizeof *jobs);
    if (!jobs) return pt_error(PT_ERR_OOM, "out of memory");
    pt_status st = PT_OK;
    /* one encoding per (item, variant), copied to its K sample jobs */
    for (int it = 0; it < r->n_items && !st; it++)
        for (int v = 0; v < NV && !st; v++) {
            char *user = NULL;
            int32_t *ids = NULL;
            size_t n = 0;
            st = pt_template_render(&r->variants[v], PT_TASK_GENERATE, r->q->items[it].statement, labels, A, &user);
            if (!st) st = pt_eval_encode_chat(m, chat, cfg->system, user, NULL, &ids, &n);
            free(user);
            for (int k = 0; k < K && !st; k++) {
                pt_eval_gen_job *j = &jobs[((size_t)it * NV + v) * K + k];
                j->prompt = malloc(sizeof(int32_t) * (n ? n : 1));
                if (!j->prompt) { st = pt_error(PT_ERR_OOM, "out of memory"); break; }
                memcpy(j->prompt, ids, sizeof(int32_t) * n);
                j->n_prompt = (int)n;
                j->seed = pt_eval_seed(p.sampling.seed, (uint64_t)it, (uint64_t)v, (uint64_t)k);
            }
            free(ids);
        }
    pt_engine *e = NULL;
    int cap = m->cfg.max_ctx > 0 ? m->cfg.max_ctx : 4096;
    int need = needed_ctx(jobs, n_jobs, p.max_new_tokens);
    for (int i = 0; i < n_jobs && !st; i++)
        if (jobs[i].n_prompt > cap)
            st = pt_error(PT_ERR_ARG, "item %s: the prompt has %d tokens, more than the model's context of %d",
                          r->q->items[i / (NV * K)].id, jobs[i].n_prompt, cap);
    if (!st) st = pt_eval_engine(&e, m, a, cfg, cfg->batch > 0 ? cfg->batch : 8, cfg->n_ctx > 0 ? cfg->n_ctx : need);
    if (!st) {
        r->n_prefills += n_jobs;
        for (int i = 0; i < n_jobs; i++) r->prefill_tokens += jobs[i].n_prompt;
        const char *stops[17];
        int n_stops = stop_strings(&p, chat, stops);
        st = pt_eval_generate_jobs(e, m, jobs, n_jobs, &p, stops, n_stops, &r->generated_tokens);
    }
    for (int it = 0; it < r->n_items && !st; it++)
        for (int v = 0; v < NV; v++) {
            pt_compass_cell *c = &r->cells[(size_t)it * NV + v];
            for (int k = 0; k < K; k++) {
                pt_eval_gen_job *j = &jobs[((size_t)it * NV + v) * K + k];
                c->texts[k] = j->text ? j->text : strdup("");
                j->text = NULL;
            }
            pt_compass_cell_tally(c, labels, A, &r->variants[v], K);
        }
    pt_engine_free(e);
    for (int i = 0; i < n_jobs; i++) pt_eval_gen_job_free(&jobs[i]);
    free(jobs);
    return st;
}

pt_status pt_compass_open_prompts(const pt_model *m, const pt_adapter *a, const pt_compass_config *cfg, pt_chat_template chat,
                                  pt_compass_result *r) {
    int n = cfg->n_open_prompts;
    if (n <= 0) return PT_OK;
    pt_gen_params p = r->gen;
    int32_t stop_buf[16];
    default_stops(m, &p, stop_buf, 16);
    r->open_ids = calloc((size_t)n, sizeof(char *));
    r->open_prompts = calloc((size_t)n, sizeof(char *));
    r->open_responses = calloc((size_t)n, sizeof(char *));
    pt_eval_gen_job *jobs = calloc((size_t)n, sizeof *jobs);
    if (!r->open_ids || !r->open_prompts || !r->open_responses || !jobs) { free(jobs); return pt_error(PT_ERR_OOM, "out of memory"); }
    r->n_open = n;
    pt_status st = PT_OK;
    for (int i = 0; i < n && !st; i++) {
        char idb[32];
        snprintf(idb, sizeof idb, "p%d", i + 1);
        r->open_ids[i] = strdup(cfg->open_prompt_ids && cfg->open_prompt_ids[i] && cfg->open_prompt_ids[i][0] ? cfg->open_prompt_ids[i] : idb);
        r->open_prompts[i] = strdup(cfg->open_prompts[i]);
        if (!r->open_ids[i] || !r->open_prompts[i]) { st = pt_error(PT_ERR_OOM, "out of memory"); break; }
        size_t np = 0;
        st = pt_eval_encode_chat(m, chat, cfg->system, cfg->open_prompts[i], NULL, &jobs[i].prompt, &np);
        jobs[i].n_prompt = (int)np;
        jobs[i].seed = pt_eval_seed(p.sampling.seed, 0x6F70656EULL, (uint64_t)i, 0);
    }
    pt_engine *e = NULL;
    int cap = m->cfg.max_ctx > 0 ? m->cfg.max_ctx : 4096;
    for (int i = 0; i < n && !st; i++)
        if (jobs[i].n_prompt > cap) st = pt_error(PT_ERR_ARG, "open prompt %d has %d tokens, more than the model's context of %d", i + 1, jobs[i].n_prompt, cap);
    if (!st) st = pt_eval_engine(&e, m, a, cfg, cfg->batch > 0 ? cfg->batch : 8, needed_ctx(jobs, n, p.max_new_tokens));
    const char *stops[17];
    int n_stops = stop_strings(&p, chat, stops);
    if (!st) st = pt_eval_generate_jobs(e, m, jobs, n, &p, stops, n_stops, &r->generated_tokens);
    for (int i = 0; i < n && !st; i++) {
        r->open_responses[i] = jobs[i].text ? jobs[i].text : strdup("");
        jobs[i].text = NULL;
    }
    pt_engine_free(e);
    for (int i = 0; i < n; i++) pt_eval_gen_job_free(&jobs[i]);
    free(jobs);
    return st;
}
