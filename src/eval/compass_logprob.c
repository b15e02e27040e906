/* Logprob mode: the probability of each answer option as the continuation of the assistant
 * turn, with the prompt prefilled once per (item, template) and shared by the options.
 *
 * An option is either its label ("Strongly agree"; prompts that list the labels) or its
 * number in the listed order ("0"; prompts that number the options, the paper's 0..3 scale).
 * For each job the prompt P and, per option k, the prompt followed by the option W_k are
 * encoded; the shared prefix is the longest run of tokens P and every W_k agree on (usually
 * all of P; less when a tokenizer merges across the boundary), so every option is scored
 * from the same cache. A chunk of up to `batch` jobs is prefilled in one forward pass (one
 * slot each, logits of the last prefix token give every option's first token); then per
 * option the remaining tokens (all but the last) of every job in the chunk go through one
 * forward pass on top of the prefix, and each slot is truncated back to the prefix.
 *
 * One pass over the label prompts gives three option scorings at once (the token
 * log-probabilities summed, averaged, or summed over the branching tokens only); the number
 * prompts are a second pass, run only when the number scoring is wanted, and the reply
 * prompts (no option listed; each option a whole reply, scored by its mean per token) a
 * third. A reply prompt does not depend on the option order, so that pass prefills each
 * (item, template) once and gives both orders' cells the same scores. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/compass_impl.h"

typedef struct {
    int32_t **w;            /* (n_answers) prompt + option tokens, options in canonical order */
    size_t *nw;
    unsigned char **branch; /* (n_answers)(nw[k] - shared): 1 where the token counts for FIRST */
    int shared;             /* tokens of the common prefix */
} lp_job;

/* Per job and option, what one pass measures: the summed log-probability of the option's
 * tokens, the sum over its branching tokens only, and its token count. */
typedef struct {
    double full, first;
    int n_tokens;
} opt_score;

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
    for (int k = 0; j->branch && k < n_answers; k++) free(j->branch[k]);
    free(j->w);
    free(j->nw);
    free(j->branch);
    memset(j, 0, sizeof *j);
}

/* Marks, per option, the tokens FIRST scores: token t of option k counts when another option
 * shares k's first t tokens and then goes elsewhere (a branch point of the options' token
 * tree), up to the first token no other option shares. With distinct first tokens that is
 * the first token alone; "Strongly agree" against "Strongly disagree" counts "Strong" (it
 * departs from "Agree" and "Disagree") and " agree", not the "ly" both share. */
static pt_status mark_branches(lp_job *j, int A) {
    const int32_t *const *w = (const int32_t *const *)j->w;
    const size_t sh = (size_t)j->shared;
    for (int k = 0; k < A; k++) {
        size_t n = j->nw[k] - sh;
        j->branch[k] = calloc(n + 1, 1);
        if (!j->branch[k]) return pt_error(PT_ERR_OOM, "out of memory");
        for (size_t t = 0; t < n; t++) {
            bool shared_so_far = false, departs = false;
            for (int o = 0; o < A; o++) {
                if (o == k || j->nw[o] - sh < t) continue;
                if (memcmp(w[o] + sh, w[k] + sh, t * sizeof(int32_t))) continue;
                shared_so_far = true;
                if (j->nw[o] - sh == t || w[o][sh + t] != w[k][sh + t]) departs = true;
            }
            if (!shared_so_far) break; /* unique from the previous token on */
            j->branch[k][t] = departs;
        }
    }
    return PT_OK;
}

/* The continuation for canonical option k: its label, its reply, or the number it is listed
 * under. */
static const char *option_text(const pt_compass_result *r, pt_task_kind task, const char *const *replies, int var, int k, char num[16]) {
    if (task == PT_TASK_REPLY) return replies[k];
    if (task != PT_TASK_NUMBER) return r->s->answers[k];
    /* listing is its own inverse: the canonical answer at listed position k is listed at k */
    snprintf(num, 16, "%d", pt_template_listed_to_canonical(&r->variants[var], k, r->n_answers));
    return num;
}

static pt_status encode_job(const pt_model *m, const pt_compass_config *cfg, pt_chat_template chat, const pt_compass_result *r,
                            pt_task_kind task, const char *const *replies, int item, int var, lp_job *j) {
    const int A = r->n_answers;
    char *user = NULL, num[16];
    int32_t *p = NULL;
    size_t np = 0;
    j->w = calloc((size_t)A, sizeof(int32_t *));
    j->nw = calloc((size_t)A, sizeof(size_t));
    j->branch = calloc((size_t)A, sizeof(unsigned char *));
    if (!j->w || !j->nw || !j->branch) return pt_error(PT_ERR_OOM, "out of memory");
    const char *const *labels = (const char *const *)r->s->answers;
    pt_status st = pt_template_render(&r->variants[var], task, r->q->items[item].statement, labels, A, &user);
    if (!st) st = pt_eval_encode_chat(m, chat, cfg->system, user, NULL, &p, &np);
    size_t shared = np;
    for (int k = 0; !st && k < A; k++) {
        st = pt_eval_encode_chat(m, chat, cfg->system, user, option_text(r, task, replies, var, k, num), &j->w[k], &j->nw[k]);
        if (st) break;
        size_t l = 0;
        while (l < np && l < j->nw[k] && p[l] == j->w[k][l]) l++;
        if (l < shared) shared = l;
    }
    for (int k = 0; !st && k < A; k++)
        if (j->nw[k] <= shared)
            st = pt_error(PT_ERR_INTERNAL, "item %s: option '%s' adds no tokens after the prompt", r->q->items[item].id,
                          option_text(r, task, replies, var, k, num));
    /* every W_k starts with the same `shared` tokens, and the first option token needs the
     * logits of the token before it, so the prefix must not be empty */
    if (!st && shared == 0)
        st = pt_error(PT_ERR_UNSUPPORTED, "item %s: the prompt and its answer options share no first token", r->q->items[item].id);
    j->shared = (int)shared;
    if (!st) st = mark_branches(j, A);
    free(user);
    free(p);
    return st;
}

/* The variant whose prompt variant v shares under `task`: v itself, except that the reply
 * prompt lists no options, so both orders of a template are the template's first variant. */
static int prompt_variant(const pt_compass_result *r, pt_task_kind task, int v) {
    if (task != PT_TASK_REPLY) return v;
    for (int u = 0; u < v; u++)
        if (r->variants[u].template_index == r->variants[v].template_index) return u;
    return v;
}

/* One pass over every (item, template) job with the prompts of `task`: fills os_cells
 * (n_items * n_variants, n_answers) in the cells' order. Cells whose variant renders the
 * same prompt as an earlier one (prompt_variant) are not computed again but copied. */
static pt_status score_pass(const pt_model *m, const pt_adapter *a, const pt_compass_config *cfg, pt_chat_template chat,
                            pt_compass_result *r, pt_task_kind task, const char *const *replies, opt_score *os_cells) {
    const int A = r->n_answers, NV = r->n_variants;
    const int V = m->cfg.vocab_size;
    const int B = cfg->batch > 0 ? cfg->batch : 8;
    int *job_cell = malloc(sizeof(int) * ((size_t)r->n_items * NV + 1));
    if (!job_cell) return pt_error(PT_ERR_OOM, "out of memory");
    int n_jobs = 0;
    for (int c = 0; c < r->n_items * NV; c++)
        if (prompt_variant(r, task, c % NV) == c % NV) job_cell[n_jobs++] = c;
    lp_job *jobs = calloc((size_t)n_jobs + 1, sizeof *jobs);
    opt_score *os = calloc((size_t)n_jobs * A + 1, sizeof *os); /* (n_jobs, A) */
    if (!jobs || !os) {
        free(job_cell);
        free(jobs);
        free(os);
        return pt_error(PT_ERR_OOM, "out of memory");
    }
    pt_status st = PT_OK;
    size_t need = 0;
    for (int j = 0; j < n_jobs && !st; j++) {
        st = encode_job(m, cfg, chat, r, task, replies, job_cell[j] / NV, job_cell[j] % NV, &jobs[j]);
        for (int k = 0; !st && k < A; k++)
            if (jobs[j].nw[k] > need) need = jobs[j].nw[k];
    }
    int cap = m->cfg.max_ctx > 0 ? m->cfg.max_ctx : 4096;
    if (!st && need > (size_t)cap)
        st = pt_error(PT_ERR_ARG, "a compass prompt with its answer needs %zu tokens, more than the model's context of %d", need, cap);
    if (!st && cfg->n_ctx > 0 && need > (size_t)cfg->n_ctx)
        st = pt_error(PT_ERR_ARG, "a compass prompt with its answer needs %zu tokens, more than the context of %d asked for", need, cfg->n_ctx);
    pt_engine *e = NULL;
    if (!st) st = pt_eval_engine(&e, m, a, cfg, B, cfg->n_ctx > 0 ? cfg->n_ctx : (int)need);
    int slot[64];
    const int32_t *ids[64];
    int nt[64], jb[64];
    const int Bc = B < 64 ? B : 64;
    for (int start = 0; !st && start < n_jobs; start += Bc) {
        int nb = n_jobs - start < Bc ? n_jobs - start : Bc;
        opt_score *chunk = os + (size_t)start * A;
        memset(chunk, 0, sizeof *chunk * (size_t)nb * A);
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
                for (int k = 0; k < A; k++) {
                    if (n_pass > 1 && k != pass) continue;
                    opt_score *o = &chunk[b * A + k];
                    double lp = log_prob(logits + (size_t)b * V, V, j->w[k][j->shared]);
                    o->full = lp;
                    o->first = j->branch[k][0] ? lp : 0;
                    o->n_tokens = (int)j->nw[k] - j->shared;
                }
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
                    opt_score *o = &chunk[jb[q] * A + k];
                    for (int t = 0; t < nt[q]; t++, row++) {
                        double lp = log_prob(logits + row * (size_t)V, V, j->w[k][j->shared + 1 + t]);
                        o->full += lp;
                        if (j->branch[k][1 + t]) o->first += lp;
                    }
                    st = pt_engine_truncate(e, slot[q], j->shared);
                }
            }
        }
    }
    pt_engine_free(e);
    for (int j = 0; j < n_jobs; j++) job_free(&jobs[j], A);
    free(jobs);
    for (int j = 0, c = 0; !st && c < r->n_items * NV; c++) {
        if (j < n_jobs && job_cell[j] == c) {
            memcpy(os_cells + (size_t)c * A, os + (size_t)j * A, sizeof *os * A);
            j++;
        } else {
            /* the same prompt as an earlier variant of this item: its scores */
            const int src = c / NV * NV + prompt_variant(r, task, c % NV);
            memcpy(os_cells + (size_t)c * A, os_cells + (size_t)src * A, sizeof *os * A);
        }
    }
    free(os);
    free(job_cell);
    return st;
}

static double option_value(const opt_score *o, pt_option_scoring sc) {
    switch (sc) {
    case PT_OPTION_MEAN:
    case PT_OPTION_REPLY: return o->full / (o->n_tokens > 0 ? o->n_tokens : 1);
    case PT_OPTION_FIRST: return o->first;
    default: return o->full;
    }
}

/* The answer under a scoring: the most likely option, -1 when every option is impossible. */
static int scoring_answer(const opt_score *os, int A, pt_option_scoring sc) {
    int best = -1;
    double bv = -INFINITY;
    for (int k = 0; k < A; k++) {
        double v = option_value(&os[k], sc);
        if (v > bv) { bv = v; best = k; }
    }
    return best;
}

/* Sets a cell's answer, distribution and scores from one job's option scores. */
static void fill_cell(pt_compass_cell *c, const opt_score *os, int A, pt_option_scoring sc) {
    double mx = -INFINITY;
    for (int k = 0; k < A; k++) {
        c->logprobs[k] = option_value(&os[k], sc);
        if (c->logprobs[k] > mx) mx = c->logprobs[k];
    }
    double z = 0, mass = 0;
    for (int k = 0; k < A; k++) {
        z += exp(c->logprobs[k] - mx);
        mass += exp(c->logprobs[k]);
    }
    int best = 0;
    double ev = 0;
    for (int k = 0; k < A; k++) {
        c->probs[k] = exp(c->logprobs[k] - mx) / z;
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

pt_status pt_compass_logprob(const pt_model *m, const pt_adapter *a, const pt_compass_config *cfg, pt_chat_template chat,
                             pt_compass_result *r) {
    const int A = r->n_answers;
    const size_t n_cells = (size_t)r->n_items * r->n_variants;
    const pt_option_scoring primary = cfg->option_scoring;
    if ((unsigned)primary >= PT_OPTION_COUNT) return pt_error(PT_ERR_ARG, "compass: unknown option scoring %d", (int)primary);
    PT_TRY(pt_compass_check_config(cfg, r->s));
    const bool is_label = primary == PT_OPTION_MEAN || primary == PT_OPTION_FIRST || primary == PT_OPTION_FULL;
    const bool want_number = primary == PT_OPTION_NUMBER || cfg->compare_scorings;
    const bool want_labels = is_label || cfg->compare_scorings;
    const bool want_replies = primary == PT_OPTION_REPLY || cfg->compare_scorings;
    opt_score *num = want_number ? calloc(n_cells * A, sizeof *num) : NULL;
    opt_score *lab = want_labels ? calloc(n_cells * A, sizeof *lab) : NULL;
    opt_score *rep = want_replies ? calloc(n_cells * A, sizeof *rep) : NULL;
    char **replies = want_replies ? calloc((size_t)A, sizeof *replies) : NULL;
    pt_status st = PT_OK;
    if ((want_number && !num) || (want_labels && !lab) || (want_replies && (!rep || !replies))) st = pt_error(PT_ERR_OOM, "out of memory");
    for (int k = 0; !st && want_replies && k < A; k++) st = pt_template_reply(r->s->answers[k], &replies[k]);
    if (!st && want_number) st = score_pass(m, a, cfg, chat, r, PT_TASK_NUMBER, NULL, num);
    if (!st && want_labels) st = score_pass(m, a, cfg, chat, r, PT_TASK_LOGPROB, NULL, lab);
    if (!st && want_replies) st = score_pass(m, a, cfg, chat, r, PT_TASK_REPLY, (const char *const *)replies, rep);
    for (size_t i = 0; !st && i < n_cells; i++) {
        pt_compass_cell *c = &r->cells[i];
        fill_cell(c, (primary == PT_OPTION_NUMBER ? num : primary == PT_OPTION_REPLY ? rep : lab) + i * A, A, primary);
        for (int sc = 0; sc < PT_OPTION_COUNT; sc++) {
            const opt_score *src = sc == PT_OPTION_NUMBER ? num : sc == PT_OPTION_REPLY ? rep : lab;
            c->scoring_answers[sc] = (signed char)(src ? scoring_answer(src + i * A, A, (pt_option_scoring)sc) : -1);
        }
    }
    r->option_scoring = primary;
    r->scorings_compared = !st && want_number && want_labels && want_replies;
    for (int k = 0; replies && k < A; k++) free(replies[k]);
    free(replies);
    free(num);
    free(lab);
    free(rep);
    return st;
}

/* compass.json's "scorings": per option scoring, the answer counts over all cells, the
 * position (mean over templates of each template's position) and, per pair of scorings, the
 * share of cells (answered by both) where they give the same answer. NULL unless every
 * scoring was computed (compare_scorings). */
json_t *pt_compass_json_scorings(const pt_compass_result *r) {
    if (r->mode != PT_COMPASS_LOGPROB || !r->scorings_compared) return NULL;
    const int A = r->n_answers, NV = r->n_variants, NI = r->n_items, X = r->n_axes;
    int *ans = malloc(sizeof(int) * (size_t)NI);
    double *coords = malloc(sizeof(double) * (size_t)X);
    json_t *out = json_object(), *agree = json_object();
    if (!ans || !coords || !out || !agree) {
        free(ans);
        free(coords);
        json_decref(out);
        json_decref(agree);
        return NULL;
    }
    for (int sc = 0; sc < PT_OPTION_COUNT; sc++) {
        json_t *o = json_object(), *counts = json_array(), *pos = json_object();
        long unanswered = 0;
        for (int k = 0; k < A; k++) {
            long n = 0;
            for (size_t i = 0; i < (size_t)NI * NV; i++) n += r->cells[i].scoring_answers[sc] == k;
            json_array_append_new(counts, json_integer(n));
        }
        for (size_t i = 0; i < (size_t)NI * NV; i++) unanswered += r->cells[i].scoring_answers[sc] < 0;
        /* position: each template's answers scored, then averaged over templates */
        for (int x = 0; x < X; x++) {
            double sum = 0;
            int n = 0;
            for (int v = 0; v < NV; v++) {
                int n_ans = 0;
                for (int i = 0; i < NI; i++) ans[i] = r->cells[(size_t)i * NV + v].scoring_answers[sc];
                if (pt_scoring_score(r->s, ans, coords, &n_ans) == PT_OK && n_ans > 0) {
                    sum += coords[x];
                    n++;
                }
            }
            json_object_set_new(pos, r->s->axes[x].name, n ? json_real(pt_round_half_away(sum / n, r->s->axes[x].decimals + 3)) : json_null());
        }
        json_object_set_new(o, "answers", counts);
        json_object_set_new(o, "unanswered", json_integer(unanswered));
        json_object_set_new(o, "position", pos);
        json_object_set_new(out, pt_option_scoring_name((pt_option_scoring)sc), o);
        json_t *row = json_object();
        for (int sc2 = 0; sc2 < PT_OPTION_COUNT; sc2++) {
            long same = 0, both = 0;
            for (size_t i = 0; i < (size_t)NI * NV; i++) {
                int a1 = r->cells[i].scoring_answers[sc], a2 = r->cells[i].scoring_answers[sc2];
                if (a1 < 0 || a2 < 0) continue;
                both++;
                same += a1 == a2;
            }
            json_object_set_new(row, pt_option_scoring_name((pt_option_scoring)sc2), both ? json_real((double)same / both) : json_null());
        }
        json_object_set_new(agree, pt_option_scoring_name((pt_option_scoring)sc), row);
    }
    json_object_set_new(out, "agreement", agree);
    free(ans);
    free(coords);
    return out;
}
