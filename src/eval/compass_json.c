/* compass.json: the header (instrument, axes, answer labels, items) and one evaluation
 * entry (everything measured: per item and template the raw replies, probabilities and
 * answers; the robustness summary; the open-ended replies; the work done). Non-finite
 * numbers (a position that does not exist) are written as null. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/answer_parse.h"
#include "eval/compass_impl.h"
#include "eval/stats.h"

static json_t *num(double x) { return isfinite(x) ? json_real(x) : json_null(); }

/* A JSON string from text that may hold invalid UTF-8 (a model can emit a lone byte token):
 * each bad byte becomes U+FFFD instead of the whole value being lost. */
static json_t *text_json(const char *s) {
    if (!s) s = "";
    json_t *j = json_string(s);
    if (j) return j;
    size_t n = strlen(s);
    char *o = malloc(3 * n + 1);
    if (!o) return json_string("");
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        int ok = len > 0 && i + (size_t)len <= n;
        for (int t = 1; ok && t < len; t++) ok = ((unsigned char)s[i + t] & 0xC0) == 0x80;
        if (ok && len > 1) {
            json_t *probe = json_stringn(s + i, (size_t)len); /* rejects overlong forms and surrogates */
            ok = probe != NULL;
            json_decref(probe);
        }
        if (ok) {
            memcpy(o + k, s + i, (size_t)len);
            k += (size_t)len;
            i += (size_t)len;
        } else {
            memcpy(o + k, "\xEF\xBF\xBD", 3);
            k += 3;
            i++;
        }
    }
    o[k] = 0;
    j = json_string(o);
    free(o);
    return j ? j : json_string("");
}

static json_t *str_or_null(const char *s) { return s ? text_json(s) : json_null(); }

/* {axis: value} */
static json_t *coords_obj(const pt_scoring *s, const double *c) {
    json_t *o = json_object();
    for (int x = 0; x < s->n_axes; x++) json_object_set_new(o, s->axes[x].name, num(c[x]));
    return o;
}

static json_t *dist(const double *p, int n) {
    json_t *a = json_array();
    for (int k = 0; k < n; k++) json_array_append_new(a, num(p[k]));
    return a;
}

/* The scoring rule itself (offsets, divisors, per-answer weights), so that `politune compare`
 * can attribute a shift to items and check two runs were scored alike without the scoring
 * file at hand. */
static json_t *scoring_rule_json(const pt_scoring *s) {
    json_t *axes = json_array();
    for (int x = 0; x < s->n_axes; x++) {
        const pt_axis *a = &s->axes[x];
        json_t *w = json_array();
        for (int i = 0; i < s->n_items; i++) json_array_append_new(w, dist(&a->w[(size_t)i * s->n_answers], s->n_answers));
        json_array_append_new(axes, json_pack("{s:o,s:f,s:f,s:o}", "name", text_json(a->name), "offset", a->offset, "divisor", a->divisor, "weights", w));
    }
    return json_pack("{s:o,s:o}", "kind", str_or_null(s->kind), "axes", axes);
}

json_t *pt_compass_json_header(const pt_compass_result *r, const pt_compass_meta *meta) {
    const pt_scoring *s = r->s;
    json_t *h = json_object();
    json_object_set_new(h, "format", json_string("politune-compass/1"));
    json_object_set_new(h, "instrument", str_or_null(s->instrument ? s->instrument : r->q->instrument));
    json_object_set_new(h, "questionnaire", str_or_null(meta ? meta->questionnaire_path : NULL));
    json_object_set_new(h, "scoring", str_or_null(meta ? meta->scoring_path : NULL));
    json_t *ans = json_array();
    for (int k = 0; k < s->n_answers; k++) json_array_append_new(ans, text_json(s->answers[k]));
    json_object_set_new(h, "answers", ans);
    json_t *axes = json_array();
    for (int x = 0; x < s->n_axes; x++) {
        const pt_axis *a = &s->axes[x];
        json_t *o = json_object();
        json_object_set_new(o, "name", text_json(a->name));
        json_object_set_new(o, "poles", json_pack("[o,o]", str_or_null(a->pole_lo), str_or_null(a->pole_hi)));
        json_object_set_new(o, "range", json_pack("[f,f]", a->lo, a->hi));
        json_object_set_new(o, "decimals", json_integer(a->decimals));
        json_array_append_new(axes, o);
    }
    json_object_set_new(h, "axes", axes);
    json_object_set_new(h, "chart", json_pack("[s,s]", s->axes[s->chart_x].name, s->axes[s->chart_y].name));
    json_object_set_new(h, "scoring_rule", scoring_rule_json(s));
    json_t *items = json_array();
    for (int i = 0; i < r->q->n_items; i++)
        json_array_append_new(items, json_pack("{s:o,s:o}", "id", text_json(r->q->items[i].id), "statement", text_json(r->q->items[i].statement)));
    json_object_set_new(h, "items", items);
    json_object_set_new(h, "evaluations", json_array());
    return h;
}

static json_t *cell_json(const pt_compass_result *r, int item, int v) {
    const pt_compass_cell *c = &r->cells[(size_t)item * r->n_variants + v];
    const int A = r->n_answers;
    json_t *o = json_object();
    json_object_set_new(o, "template", json_string(r->variants[v].id));
    json_object_set_new(o, "answer", c->answer >= 0 ? json_integer(c->answer) : json_null());
    json_object_set_new(o, "probs", c->answer >= 0 ? dist(c->probs, A) : json_null());
    json_object_set_new(o, "expected", num(c->expected));
    if (r->mode == PT_COMPASS_LOGPROB) {
        json_object_set_new(o, "logprobs", dist(c->logprobs, A));
        json_object_set_new(o, "mass", num(c->mass));
    } else {
        json_object_set_new(o, "valid", json_integer(c->n_valid));
        json_object_set_new(o, "invalid", json_integer(c->n_invalid));
        json_object_set_new(o, "refused", json_integer(c->n_refused));
        json_t *samples = json_array();
        for (int k = 0; k < r->samples; k++)
            json_array_append_new(samples, json_pack("{s:o,s:o,s:s}", "text", text_json(c->texts[k]), "answer",
                                                     c->sample_answers[k] >= 0 ? json_integer(c->sample_answers[k]) : json_null(),
                                                     "status", pt_answer_status_name((pt_answer_status)c->sample_status[k])));
        json_object_set_new(o, "samples", samples);
    }
    return o;
}

/* The bootstrap intervals of the position (stats.h): item x variant contributions of the
 * answers given, over the variants that have a position. iv: (n_axes). */
static pt_status position_intervals(const pt_compass_result *r, int resamples, uint64_t seed, pt_interval *iv) {
    const int NI = r->n_items, NV = r->n_variants, X = r->n_axes;
    double *contrib = calloc((size_t)X * NI * NV, sizeof *contrib), *offsets = calloc((size_t)X, sizeof *offsets);
    bool *use = calloc((size_t)NV, sizeof *use);
    if (!contrib || !offsets || !use) { free(contrib); free(offsets); free(use); return pt_error(PT_ERR_OOM, "out of memory"); }
    for (int v = 0; v < NV; v++) use[v] = r->variant_answered[v] > 0;
    for (int x = 0; x < X; x++) {
        const pt_axis *a = &r->s->axes[x];
        offsets[x] = a->offset;
        for (int i = 0; i < NI; i++)
            for (int v = 0; v < NV; v++) {
                int ans = r->cells[(size_t)i * NV + v].answer;
                if (ans >= 0) contrib[((size_t)x * NI + i) * NV + v] = a->w[(size_t)i * r->n_answers + ans] / a->divisor;
            }
    }
    pt_status st = pt_stats_bootstrap(contrib, offsets, X, NI, NV, use, resamples, seed, iv);
    free(contrib);
    free(offsets);
    free(use);
    return st;
}

static json_t *position_json(const pt_compass_result *r, const pt_interval *iv) {
    json_t *o = json_object();
    for (int x = 0; x < r->n_axes; x++) {
        /* the interval is rounded as coordinates are (the website's rule), the unrounded
         * estimate it is built around at three more decimals, like the mean */
        int dec = r->s->axes[x].decimals + 3, cdec = r->s->axes[x].decimals;
        bool has = r->n_positioned > 0 && iv && isfinite(iv[x].lo);
        json_t *ci = has ? json_pack("[o,o]", num(pt_round_half_away(iv[x].lo, cdec)), num(pt_round_half_away(iv[x].hi, cdec))) : json_null();
        json_object_set_new(o, r->s->axes[x].name,
                            json_pack("{s:o,s:o,s:o,s:o,s:i,s:o,s:o}", "mean", num(r->mean[x]), "sd", num(r->sd[x]), "min", num(r->min[x]),
                                      "max", num(r->max[x]), "n", r->n_positioned, "estimate",
                                      num(r->n_positioned > 0 && iv ? pt_round_half_away(iv[x].estimate, dec) : NAN), "interval", ci));
    }
    return o;
}

static char *default_label(const pt_compass_meta *meta) {
    const char *p = meta && meta->adapter_path ? meta->adapter_path : meta && meta->model_path ? meta->model_path : "model";
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && p[b - 1] != '/') b--;
    char *l = malloc(n - b + 1);
    if (l) { memcpy(l, p + b, n - b); l[n - b] = 0; }
    return l;
}

json_t *pt_compass_json_evaluation(const pt_compass_result *r, const pt_compass_meta *meta) {
    json_t *e = json_object();
    char *label = meta && meta->label ? strdup(meta->label) : default_label(meta);
    json_object_set_new(e, "label", text_json(label ? label : "model"));
    free(label);
    json_object_set_new(e, "model", str_or_null(meta ? meta->model_path : NULL));
    json_object_set_new(e, "adapter", str_or_null(meta ? meta->adapter_path : NULL));
    json_object_set_new(e, "iteration", json_integer(meta ? meta->iteration : 0));
    json_object_set_new(e, "step", json_integer(meta ? meta->step : 0));
    json_object_set_new(e, "mode", json_string(r->mode == PT_COMPASS_LOGPROB ? "logprob" : "generate"));
    json_object_set_new(e, "chat_template", json_string(r->chat_template));
    if (r->mode == PT_COMPASS_LOGPROB) json_object_set_new(e, "option_scoring", json_string(pt_option_scoring_name(r->option_scoring)));
    if (r->mode == PT_COMPASS_LOGPROB && r->option_scoring == PT_OPTION_REPLY) {
        /* what was scored, and why each template is one variant */
        json_t *replies = json_array();
        for (int k = 0; k < r->n_answers; k++) {
            char *t = NULL;
            json_array_append_new(replies, pt_template_reply(r->s->answers[k], &t) ? json_null() : json_string(t));
            free(t);
        }
        json_object_set_new(e, "replies", replies);
        json_object_set_new(e, "option_orders", json_string("none: the prompt lists no options, so each template is one variant"));
    }
    json_t *tpl = json_array();
    for (int v = 0; v < r->n_variants; v++) json_array_append_new(tpl, json_string(r->variants[v].id));
    json_object_set_new(e, "templates", tpl);
    if (r->mode == PT_COMPASS_GENERATE || r->n_open > 0)
        json_object_set_new(e, "settings",
                            json_pack("{s:i,s:f,s:i,s:f,s:I,s:i}", "samples", r->samples, "temperature", (double)r->gen.sampling.temperature,
                                      "top_k", r->gen.sampling.top_k, "top_p", (double)r->gen.sampling.top_p, "seed",
                                      (json_int_t)r->gen.sampling.seed, "max_new_tokens", r->gen.max_new_tokens));
    int resamples = meta && meta->resamples > 0 ? meta->resamples : PT_STATS_RESAMPLES;
    uint64_t seed = meta ? meta->seed : PT_STATS_SEED;
    pt_interval *iv = calloc((size_t)r->n_axes, sizeof *iv);
    if (iv && position_intervals(r, resamples, seed, iv)) { free(iv); iv = NULL; }
    json_object_set_new(e, "position", position_json(r, iv));
    free(iv);
    const bool unlisted = r->n_variants > 0 && r->variants[0].unlisted;
    json_object_set_new(e, "interval", json_pack("{s:s,s:f,s:i,s:I}", "method",
                                                 unlisted ? "stratified bootstrap over templates within items, rescaled"
                                                          : "stratified bootstrap over templates x option orders within items, rescaled",
                                                 "level", 0.95, "resamples", resamples, "seed", (json_int_t)seed));
    json_t *cons = coords_obj(r->s, r->consensus_coords);
    json_object_set_new(cons, "answered", json_integer(r->consensus_answered));
    json_object_set_new(cons, "unanswered", json_integer(r->n_items - r->consensus_answered));
    json_object_set_new(e, "consensus", cons);
    json_object_set_new(e, "expected", coords_obj(r->s, r->expected_coords));
    json_object_set_new(e, "invalid_rate", json_real(r->invalid_rate));
    json_object_set_new(e, "refusal_rate", json_real(r->refusal_rate));
    json_t *vars = json_array();
    for (int v = 0; v < r->n_variants; v++) {
        const pt_template_variant *tv = &r->variants[v];
        const pt_prompt_template *t = pt_template_get(tv->template_index);
        json_t *o = json_pack("{s:s,s:s,s:s}", "id", tv->id, "template", t ? t->id : "?", "order", tv->unlisted ? "none" : tv->reversed ? "reversed" : "forward");
        json_object_set_new(o, "coords", r->variant_answered[v] ? coords_obj(r->s, &r->variant_coords[(size_t)v * r->n_axes]) : json_null());
        json_object_set_new(o, "answered", json_integer(r->variant_answered[v]));
        json_object_set_new(o, "invalid", json_integer(r->variant_invalid[v]));
        json_object_set_new(o, "refused", json_integer(r->variant_refused[v]));
        json_array_append_new(vars, o);
    }
    json_object_set_new(e, "variants", vars);
    json_t *scorings = pt_compass_json_scorings(r);
    if (scorings) json_object_set_new(e, "scorings", scorings);
    json_t *items = json_array();
    for (int i = 0; i < r->n_items; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "id", text_json(r->q->items[i].id));
        json_object_set_new(o, "answer", r->consensus[i] >= 0 ? json_integer(r->consensus[i]) : json_null());
        json_object_set_new(o, "probs", r->consensus[i] >= 0 ? dist(&r->pooled[(size_t)i * r->n_answers], r->n_answers) : json_null());
        json_object_set_new(o, "expected", num(r->item_expected[i]));
        json_object_set_new(o, "agreement", num(r->agreement[i]));
        json_object_set_new(o, "flip", json_boolean(r->flip[i]));
        json_t *cells = json_array();
        for (int v = 0; v < r->n_variants; v++) json_array_append_new(cells, cell_json(r, i, v));
        json_object_set_new(o, "by_template", cells);
        json_array_append_new(items, o);
    }
    json_object_set_new(e, "items", items);
    json_t *open = json_array();
    for (int i = 0; i < r->n_open; i++)
        json_array_append_new(open, json_pack("{s:o,s:o,s:o}", "id", text_json(r->open_ids[i]), "prompt", text_json(r->open_prompts[i]),
                                              "response", text_json(r->open_responses[i])));
    json_object_set_new(e, "open_prompts", open);
    json_object_set_new(e, "stats",
                        json_pack("{s:I,s:I,s:I,s:I,s:I}", "prefills", (json_int_t)r->n_prefills, "prefill_tokens",
                                  (json_int_t)r->prefill_tokens, "option_tokens", (json_int_t)r->option_tokens, "option_forwards",
                                  (json_int_t)r->option_forwards, "generated_tokens", (json_int_t)r->generated_tokens));
    return e;
}

char *pt_compass_json_dump(const json_t *root) {
    char *s = json_dumps(root, JSON_INDENT(1) | JSON_REAL_PRECISION(15));
    if (!s) return NULL;
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (!t) { free(s); return NULL; }
    t[n] = '\n';
    t[n + 1] = 0;
    return t;
}
