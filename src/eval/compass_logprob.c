/* Logprob mode: the probability of each answer label as the continuation of the assistant
 * turn, with the prompt prefilled once per (item, template) and shared by the options.
 *
 * For each job the prompt P and, per option k, the prompt followed by the label W_k are
 * encoded; the shared prefix is the longest run of tokens P and every W_k agree on (usually
 * all of P; less when a tokenizer merges across the boundary), so every option is scored
 * from the same cache. A chunk of up to `batch` jobs is prefilled in one forward pass (one
 * slot each, logits of the last prefix token give every option's first token); then per
 * option the remaining label tokens (all but the last) of every job in the chunk go through
 * one forward pass on top of the prefix, and each slot is truncated back to the prefix. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/compass_impl.h"

typedef struct {
    int32_t **w;  /* (n_answers) prompt + label tokens */
    size_t *nw;
    int shared;   /* tokens of the common prefix */
} lp_job;

/* log softmax(row)[tok], in double. */
static double log_prob(const float *row, int V, int32_t tok) {
    float mx = row[0];
    for (int i = 1; i < V; i++)
        if (row[i] > mx) mx = row[i];
    double s = 0;
    for (int i = 0; i < V; i++) s += exp((double)row[i] - mx);
    return (double)row[tok] - mx - log(s);
}

static void job_free(lp_job *j, int n_answers) {
    for (int k = 0; j->w && k < n_answers; k++) free(j->w[k]);
    free(j->w);
    free(j->nw);
    memset(j, 0, sizeof *j);
}

static pt_status encode_job(const pt_model *m, const pt_compass_config *cfg, pt_chat_template chat, const pt_compass_result *r,
                            int item, int var, lp_job *j) {
    const int A = r->n_answers;
    char *user = NULL;
    int32_t *p = NULL;
    size_t np = 0;
    j->w = calloc((size_t)A, sizeof(int32_t *));
    j->nw = calloc((size_t)A, sizeof(size_t));
    if (!j->w || !j->nw) return pt_error(PT_ERR_OOM, "out of memory");
    const char *const *labels = (const char *const *)r->s->answers;
    pt_status st = pt_template_render(&r->variants[var], PT_TASK_LOGPROB, r->q->items[item].statement, labels, A, &user);
    if (!st) st = pt_eval_encode_chat(m, chat, cfg->system, user, NULL, &p, &np);
    size_t shared = np;
    for (int k = 0; !st && k < A; k++) {
        st = pt_eval_encode_chat(m, chat, cfg->system, user, labels[k], &j->w[k], &j->nw[k]);
        if (st) break;
        size_t l = 0;
        while (l < np && l < j->nw[k] && p[l] == j->w[k][l]) l++;
        if (l < shared) shared = l;
    }
    for (int k = 0; !st && k < A; k++)
        if (j->nw[k] <= shared)
            st = pt_error(PT_ERR_INTERNAL, "item %s: option '%s' adds no tokens after the prompt", r->q->items[item].id, labels[k]);
    /* every W_k starts with the same `shared` tokens, and the first option token needs the
     * logits of the token before it, so the prefix must not be empty */
    if (!st && shared == 0)
        st = pt_error(PT_ERR_UNSUPPORTED, "item %s: the prompt and its answer options share no first token", r->q->items[item].id);
    j->shared = (int)shared;
    free(user);
    free(p);
    return st;
}

pt_status pt_compass_logprob(const pt_model *m, const pt_adapter *a, const pt_compass_config *cfg, pt_chat_template chat,
                             pt_compass_result *r) {
    const int A = r->n_answers, NV = r->n_variants;
    const int n_jobs = r->n_items * NV;
    const int V = m->cfg.vocab_size;
    const int B = cfg->batch > 0 ? cfg->batch : 8;
    lp_job *jobs = calloc((size_t)n_jobs, sizeof *jobs);
    if (!jobs) return pt_error(PT_ERR_OOM, "out of memory");
    pt_status st = PT_OK;
    size_t need = 0;
    for (int j = 0; j < n_jobs && !st; j++) {
        st = encode_job(m, cfg, chat, r, j / NV, j % NV, &jobs[j]);
        for (int k = 0; !st && k < A; k++)
            if (jobs[j].nw[k] > need) need = jobs[j].nw[k];
    }
    int cap = m->cfg.max_ctx > 0 ? m->cfg.max_ctx : 4096;
    if (!st && need > (size_t)cap)
        st = pt_error(PT_ERR_ARG, "a compass prompt with its answer needs %zu tokens, more than the model's context of %d", need, cap);
    if (!st && cfg->n_ctx > 0 && need > (size_t)cfg->n_ctx)
        st = pt_error(PT_ERR_ARG, "a compass prompt with its answer needs %zu tokens, more than the context of %d asked for", need, cfg->n_ctx);
    pt_engine *e = NULL;
    if (!st) st = pt_eval_engine(&e, m, a, B, cfg->n_ctx > 0 ? cfg->n_ctx : (int)need);
    int slot[64];
    const int32_t *ids[64];
    int nt[64], jb[64];
    const int Bc = B < 64 ? B : 64;
    double *lp = malloc(sizeof(double) * (size_t)Bc * A);
    if (!st && !lp) st = pt_error(PT_ERR_OOM, "out of memory");
    for (int start = 0; !st && start < n_jobs; start += Bc) {
        int nb = n_jobs - start < Bc ? n_jobs - start : Bc;
        /* shared: one prefill, then every option on top; unshared (benchmark baseline): a
         * prefill per option, as scoring each option from scratch would do */
        const int n_pass = cfg->no_prefix_sharing ? A : 1;
        for (int pass = 0; pass < n_pass && !st; pass++) {
            for (int b = 0; b < nb && !st; b++) {
                st = pt_engine_truncate(e, b, 0);
                slot[b] = b;
                ids[b] = jobs[start + b].w[0];
                nt[b] = jobs[start + b].shared;
                r->n_prefills++;
                r->prefill_tokens += nt[b];
            }
            const float *logits = NULL;
            pt_batch batch = {nb, slot, ids, nt};
            if (!st) st = pt_engine_forward(e, &batch, PT_LOGITS_LAST, &logits);
            for (int b = 0; b < nb && !st; b++) {
                const lp_job *j = &jobs[start + b];
                for (int k = 0; k < A; k++)
                    if (n_pass == 1 || k == pass) lp[b * A + k] = log_prob(logits + (size_t)b * V, V, j->w[k][j->shared]);
            }
            /* the rest of each option's tokens on top of the prefix */
            for (int k = 0; k < A && !st; k++) {
                if (n_pass > 1 && k != pass) continue;
                int n = 0;
                for (int b = 0; b < nb; b++) {
                    const lp_job *j = &jobs[start + b];
                    int rest = (int)j->nw[k] - j->shared - 1; /* the last token needs no forward */
                    if (rest <= 0) continue;
                    slot[n] = b;
                    ids[n] = j->w[k] + j->shared;
                    nt[n] = rest;
                    jb[n] = b;
                    n++;
                    r->option_tokens += rest;
                }
                if (n == 0) continue;
                pt_batch ob = {n, slot, ids, nt};
                st = pt_engine_forward(e, &ob, PT_LOGITS_ALL, &logits);
                r->option_forwards++;
                size_t row = 0;
                for (int q = 0; q < n && !st; q++) {
                    const lp_job *j = &jobs[start + jb[q]];
                    for (int t = 0; t < nt[q]; t++, row++)
                        lp[jb[q] * A + k] += log_prob(logits + row * (size_t)V, V, j->w[k][j->shared + 1 + t]);
                    st = pt_engine_truncate(e, slot[q], j->shared);
                }
            }
        }
        for (int b = 0; b < nb && !st; b++) {
            int job = start + b;
            pt_compass_cell *c = &r->cells[(size_t)(job / NV) * NV + job % NV];
            double mx = -INFINITY;
            for (int k = 0; k < A; k++)
                if (lp[b * A + k] > mx) mx = lp[b * A + k];
            double z = 0, mass = 0;
            for (int k = 0; k < A; k++) {
                z += exp(lp[b * A + k] - mx);
                mass += exp(lp[b * A + k]);
            }
            int best = 0;
            double ev = 0;
            for (int k = 0; k < A; k++) {
                c->logprobs[k] = lp[b * A + k];
                c->probs[k] = exp(lp[b * A + k] - mx) / z;
                if (c->probs[k] > c->probs[best]) best = k;
            }
            for (int k = 0; k < A; k++) ev += c->probs[k] * k;
            if (!isfinite(mx)) {
                c->answer = -1; /* every option impossible: nothing to read */
                c->expected = NAN;
                for (int k = 0; k < A; k++) c->probs[k] = 0;
            } else {
                c->answer = best;
                c->expected = ev;
            }
            c->mass = mass;
        }
    }
    free(lp);
    pt_engine_free(e);
    for (int j = 0; j < n_jobs; j++) job_free(&jobs[j], A);
    free(jobs);
    return st;
}
