/* The compass run: configuration defaults, the result's memory, the choice of answer mode,
 * and the robustness summary over templates (see compass.h for what each number means). */
#include "eval/compass.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"
#include "eval/compass_impl.h"

pt_compass_config pt_compass_config_default(void) {
    pt_compass_config c;
    memset(&c, 0, sizeof c);
    c.mode = PT_COMPASS_LOGPROB;
    c.templates = "all";
    c.samples = 1;
    c.gen = pt_gen_params_default();
    c.gen.sampling.temperature = 0.3f; /* the paper's evaluation settings */
    c.gen.sampling.top_k = 200;
    c.gen.max_new_tokens = 300;
    c.chat = PT_CHAT_NONE;
    c.batch = 8;
    c.option_scoring = PT_OPTION_NUMBER;
    return c;
}

static const char *const option_scoring_names[PT_OPTION_COUNT] = {"number", "mean", "first", "full", "reply"};

const char *pt_option_scoring_name(pt_option_scoring s) {
    return (unsigned)s < PT_OPTION_COUNT ? option_scoring_names[s] : "?";
}

pt_status pt_option_scoring_from_name(const char *name, pt_option_scoring *out) {
    for (int s = 0; s < PT_OPTION_COUNT; s++)
        if (name && !strcmp(name, option_scoring_names[s])) {
            *out = (pt_option_scoring)s;
            return PT_OK;
        }
    return pt_error(PT_ERR_ARG, "unknown option scoring '%s' (known: number, mean, first, full, reply)", name ? name : "");
}

static void cell_free(pt_compass_cell *c, int samples) {
    free(c->probs);
    free(c->logprobs);
    for (int k = 0; c->texts && k < samples; k++) free(c->texts[k]);
    free(c->texts);
    free(c->sample_answers);
    free(c->sample_status);
}

void pt_compass_result_free(pt_compass_result *r) {
    if (!r) return;
    for (size_t i = 0; r->cells && i < (size_t)r->n_items * r->n_variants; i++) cell_free(&r->cells[i], r->samples);
    free(r->cells);
    free(r->variants);
    free(r->variant_coords);
    free(r->variant_answered);
    free(r->variant_invalid);
    free(r->variant_refused);
    free(r->mean);
    free(r->sd);
    free(r->min);
    free(r->max);
    free(r->pooled);
    free(r->consensus);
    free(r->agreement);
    free(r->flip);
    free(r->item_expected);
    free(r->consensus_coords);
    free(r->expected_coords);
    for (int i = 0; i < r->n_open; i++) {
        free(r->open_ids ? r->open_ids[i] : NULL);
        free(r->open_prompts ? r->open_prompts[i] : NULL);
        free(r->open_responses ? r->open_responses[i] : NULL);
    }
    free(r->open_ids);
    free(r->open_prompts);
    free(r->open_responses);
    free(r);
}

pt_status pt_compass_result_new(const pt_questionnaire *q, const pt_scoring *s, pt_compass_mode mode, int samples,
                                const pt_template_variant *variants, int n_variants, pt_compass_result **out) {
    *out = NULL;
    PT_TRY(pt_scoring_check(s, q));
    if (n_variants < 1) return pt_error(PT_ERR_ARG, "compass: no template selected");
    if (samples < 1) samples = 1;
    pt_compass_result *r = calloc(1, sizeof *r);
    if (!r) return pt_error(PT_ERR_OOM, "out of memory");
    r->q = q;
    r->s = s;
    r->mode = mode;
    r->samples = mode == PT_COMPASS_GENERATE ? samples : 1;
    r->n_items = s->n_items;
    r->n_answers = s->n_answers;
    r->n_axes = s->n_axes;
    r->n_variants = n_variants;
    r->gen = pt_gen_params_default();
    const size_t NI = (size_t)r->n_items, NV = (size_t)n_variants, A = (size_t)r->n_answers, X = (size_t)r->n_axes;
    int ok = 1;
#define ALLOC(p, n) ok &= ((p) = calloc((size_t)(n) + 1, sizeof *(p))) != NULL
    ALLOC(r->variants, NV);
    ALLOC(r->cells, NI * NV);
    ALLOC(r->variant_coords, NV * X);
    ALLOC(r->variant_answered, NV);
    ALLOC(r->variant_invalid, NV);
    ALLOC(r->variant_refused, NV);
    ALLOC(r->mean, X);
    ALLOC(r->sd, X);
    ALLOC(r->min, X);
    ALLOC(r->max, X);
    ALLOC(r->pooled, NI * A);
    ALLOC(r->consensus, NI);
    ALLOC(r->agreement, NI);
    ALLOC(r->flip, NI);
    ALLOC(r->item_expected, NI);
    ALLOC(r->consensus_coords, X);
    ALLOC(r->expected_coords, X);
    for (size_t i = 0; ok && i < NI * NV; i++) {
        pt_compass_cell *c = &r->cells[i];
        c->answer = -1;
        c->expected = NAN;
        memset(c->scoring_answers, -1, sizeof c->scoring_answers);
        ALLOC(c->probs, A);
        ALLOC(c->logprobs, A);
        if (mode == PT_COMPASS_GENERATE) {
            ALLOC(c->texts, (size_t)r->samples);
            ALLOC(c->sample_answers, (size_t)r->samples);
            ALLOC(c->sample_status, (size_t)r->samples);
        }
    }
#undef ALLOC
    if (!ok) { pt_compass_result_free(r); return pt_error(PT_ERR_OOM, "out of memory"); }
    memcpy(r->variants, variants, sizeof *variants * NV);
    for (size_t i = 0; mode == PT_COMPASS_GENERATE && i < NI * NV; i++)
        for (int k = 0; k < r->samples; k++) {
            r->cells[i].sample_answers[k] = -1;
            r->cells[i].sample_status[k] = 1; /* PT_ANSWER_INVALID until parsed */
        }
    pt_compass_aggregate(r);
    *out = r;
    return PT_OK;
}

pt_status pt_compass_aggregate(pt_compass_result *r) {
    const int NI = r->n_items, NV = r->n_variants, A = r->n_answers, X = r->n_axes;
    int *ans = malloc(sizeof(int) * (size_t)NI);
    if (!ans) return pt_error(PT_ERR_OOM, "out of memory");
    pt_status st = PT_OK;
    long bad = 0, refused = 0, total = 0;
    r->n_positioned = 0;
    for (int v = 0; v < NV && !st; v++) {
        int inv = 0, ref = 0;
        for (int i = 0; i < NI; i++) {
            const pt_compass_cell *c = &r->cells[(size_t)i * NV + v];
            ans[i] = c->answer;
            if (r->mode == PT_COMPASS_GENERATE) {
                inv += c->n_invalid + c->n_refused + (r->samples - c->n_valid - c->n_invalid - c->n_refused);
                ref += c->n_refused;
            } else if (c->answer < 0) {
                inv++;
            }
        }
        r->variant_invalid[v] = inv;
        r->variant_refused[v] = ref;
        bad += inv;
        refused += ref;
        total += r->mode == PT_COMPASS_GENERATE ? (long)NI * r->samples : NI;
        int n_ans = 0;
        st = pt_scoring_score(r->s, ans, &r->variant_coords[(size_t)v * X], &n_ans);
        r->variant_answered[v] = n_ans;
        if (n_ans == 0)
            for (int x = 0; x < X; x++) r->variant_coords[(size_t)v * X + x] = NAN;
        else
            r->n_positioned++;
    }
    r->invalid_rate = total ? (double)bad / total : 0;
    r->refusal_rate = total ? (double)refused / total : 0;
    for (int x = 0; x < X; x++) {
        double s = 0, s2 = 0, mn = INFINITY, mx = -INFINITY;
        int n = 0;
        for (int v = 0; v < NV; v++) {
            double c = r->variant_coords[(size_t)v * X + x];
            if (isnan(c)) continue;
            s += c;
            n++;
            if (c < mn) mn = c;
            if (c > mx) mx = c;
        }
        double mean = n ? s / n : NAN;
        for (int v = 0; v < NV; v++) {
            double c = r->variant_coords[(size_t)v * X + x];
            if (!isnan(c)) s2 += (c - mean) * (c - mean);
        }
        /* three more decimals than the coordinates: enough to compare, no summation noise */
        int dec = r->s->axes[x].decimals + 3;
        r->mean[x] = n ? pt_round_half_away(mean, dec) : NAN;
        r->sd[x] = n > 1 ? pt_round_half_away(sqrt(s2 / (n - 1)), dec) : n == 1 ? 0 : NAN;
        r->min[x] = n ? mn : NAN;
        r->max[x] = n ? mx : NAN;
    }
    /* per item: pooled distribution, consensus, agreement, flips */
    bool *valid = malloc(sizeof(bool) * (size_t)NI);
    if (!valid) { free(ans); return pt_error(PT_ERR_OOM, "out of memory"); }
    r->consensus_answered = 0;
    for (int i = 0; i < NI; i++) {
        double *pool = &r->pooled[(size_t)i * A];
        memset(pool, 0, sizeof(double) * (size_t)A);
        int n = 0;
        bool lo = false, hi = false;
        for (int v = 0; v < NV; v++) {
            const pt_compass_cell *c = &r->cells[(size_t)i * NV + v];
            if (c->answer < 0) continue;
            for (int k = 0; k < A; k++) pool[k] += c->probs[k];
            n++;
            /* sides of the middle: with 4 options 0,1 | 2,3; with 5 the middle one is neither */
            if (2 * c->answer < A - 1) lo = true;
            if (2 * c->answer > A - 1) hi = true;
        }
        r->flip[i] = lo && hi;
        if (n == 0) {
            r->consensus[i] = -1;
            r->agreement[i] = NAN;
            r->item_expected[i] = NAN;
            valid[i] = false;
            continue;
        }
        int best = 0;
        double ev = 0;
        for (int k = 0; k < A; k++) {
            pool[k] /= n;
            if (pool[k] > pool[best]) best = k;
            ev += pool[k] * k;
        }
        r->consensus[i] = best;
        r->item_expected[i] = ev;
        int agree = 0;
        for (int v = 0; v < NV; v++) agree += r->cells[(size_t)i * NV + v].answer == best;
        r->agreement[i] = (double)agree / n;
        valid[i] = true;
        r->consensus_answered++;
    }
    if (!st) st = pt_scoring_score(r->s, r->consensus, r->consensus_coords, NULL);
    pt_scoring_expected(r->s, r->pooled, valid, r->expected_coords);
    if (r->consensus_answered == 0)
        for (int x = 0; x < X; x++) r->consensus_coords[x] = r->expected_coords[x] = NAN;
    free(valid);
    free(ans);
    return st;
}

pt_status pt_compass_variants(const pt_compass_config *cfg, pt_template_variant **out, int *n) {
    PT_TRY(pt_templates_select(cfg->templates, out, n));
    if (cfg->mode == PT_COMPASS_LOGPROB && cfg->option_scoring == PT_OPTION_REPLY) pt_templates_unlisted(*out, n);
    return PT_OK;
}

pt_status pt_compass_check_config(const pt_compass_config *cfg, const pt_scoring *s) {
    if (cfg->mode == PT_COMPASS_GENERATE && cfg->option_scoring == PT_OPTION_REPLY)
        return pt_error(PT_ERR_ARG, "the reply option scoring is for logprob mode; generate mode reads the answer from free text");
    const bool replies = cfg->mode == PT_COMPASS_LOGPROB && (cfg->option_scoring == PT_OPTION_REPLY || cfg->compare_scorings);
    if (!replies) return PT_OK;
    const int A = s->n_answers;
    char **r = calloc((size_t)A, sizeof *r);
    if (!r) return pt_error(PT_ERR_OOM, "out of memory");
    pt_status st = PT_OK;
    for (int k = 0; !st && k < A; k++) {
        st = pt_template_reply(s->answers[k], &r[k]);
        if (st) st = pt_error_wrap(st, "%s: ", s->path ? s->path : "scoring");
        for (int o = 0; !st && o < k; o++)
            if (!strcmp(r[o], r[k]))
                st = pt_error(PT_ERR_ARG, "%s: answer labels '%s' and '%s' give the same reply ('%s'), which the reply scoring cannot tell apart",
                              s->path ? s->path : "scoring", s->answers[o], s->answers[k], r[k]);
    }
    for (int k = 0; k < A; k++) free(r[k]);
    free(r);
    return st;
}

/* Under mpirun the ranks share the items (compass_shard.c); every rank calls this alike. */
pt_status pt_compass_run(const pt_model *m, const pt_adapter *a, const pt_questionnaire *q, const pt_scoring *s,
                         const pt_compass_config *cfg_in, pt_compass_result **out) {
    pt_compass_config cfg = cfg_in ? *cfg_in : pt_compass_config_default();
    if (pt_dist_size() > 1 && cfg.mode == PT_COMPASS_LOGPROB) return pt_compass_run_ranks(m, a, q, s, &cfg, out);
    return pt_compass_run_local(m, a, q, s, &cfg, out);
}

pt_status pt_compass_run_local(const pt_model *m, const pt_adapter *a, const pt_questionnaire *q, const pt_scoring *s,
                               const pt_compass_config *cfg_in, pt_compass_result **out) {
    *out = NULL;
    pt_compass_config cfg = cfg_in ? *cfg_in : pt_compass_config_default();
    if (cfg.batch <= 0) cfg.batch = 8;
    if (cfg.batch > 64) cfg.batch = 64;
    if (cfg.samples < 1) return pt_error(PT_ERR_ARG, "compass: samples must be at least 1, got %d", cfg.samples);
    if (cfg.n_open_prompts < 0 || (cfg.n_open_prompts > 0 && !cfg.open_prompts))
        return pt_error(PT_ERR_ARG, "compass: %d open prompts but no prompt texts", cfg.n_open_prompts);
    for (int i = 0; i < cfg.n_open_prompts; i++)
        if (!cfg.open_prompts[i] || !cfg.open_prompts[i][0]) return pt_error(PT_ERR_ARG, "compass: open prompt %d is empty", i + 1);
    if (!m->tok) return pt_error(PT_ERR_ARG, "%s: the checkpoint has no tokenizer; the compass needs one", m->path);
    PT_TRY(pt_compass_check_config(&cfg, s));
    pt_template_variant *vars = NULL;
    int nv = 0;
    PT_TRY(pt_compass_variants(&cfg, &vars, &nv));
    pt_compass_result *r = NULL;
    pt_status st = pt_compass_result_new(q, s, cfg.mode, cfg.samples, vars, nv, &r);
    free(vars);
    if (st) return st;
    r->gen = cfg.gen;
    pt_chat_template chat = pt_eval_chat_for(m, cfg.chat);
    snprintf(r->chat_template, sizeof r->chat_template, "%s", pt_chat_template_name(chat));
    st = cfg.mode == PT_COMPASS_GENERATE ? pt_compass_generate(m, a, &cfg, chat, r) : pt_compass_logprob(m, a, &cfg, chat, r);
    if (!st) st = pt_compass_aggregate(r);
    if (!st) st = pt_compass_open_prompts(m, a, &cfg, chat, r);
    /* the stop lists belong to the caller: keep only the settings */
    r->gen.stop_ids = NULL;
    r->gen.n_stop_ids = 0;
    r->gen.stop_strings = NULL;
    r->gen.n_stop_strings = 0;
    if (st) { pt_compass_result_free(r); return st; }
    *out = r;
    return PT_OK;
}
