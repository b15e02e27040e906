/* Two compass evaluations side by side (compare.h): checks that they can be compared, builds
 * the paired item x variant contribution tables from compass.json, and runs the statistics
 * of stats.h on them. */
#include "eval/compare.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/scoring.h"

static double jnum(json_t *v) { return json_is_number(v) ? json_number_value(v) : NAN; }

static json_t *num(double x) { return isfinite(x) ? json_real(x) : json_null(); }

json_t *pt_compare_pick(json_t *doc, const char *label) {
    json_t *evs = json_object_get(doc, "evaluations"), *hit = NULL;
    for (size_t i = 0; i < json_array_size(evs); i++) {
        json_t *e = json_array_get(evs, i);
        const char *l = json_string_value(json_object_get(e, "label"));
        if (!label || (l && !strcmp(l, label))) hit = e;
    }
    return hit;
}

/* The answer scoring of an evaluation: its mode, and in logprob mode the option scoring
 * ("option_scoring" in compass.json: number, mean, first, full or reply, see compass_json.c);
 * evaluations written before it was recorded count as the full-label scoring. */
static void method_of(json_t *e, char *buf, size_t n) {
    const char *mode = json_string_value(json_object_get(e, "mode"));
    const char *sc = json_string_value(json_object_get(e, "option_scoring"));
    if (!mode) mode = "?";
    if (!strcmp(mode, "logprob")) snprintf(buf, n, "%s mode, %s scoring", mode, sc ? sc : "full");
    else snprintf(buf, n, "%s mode", mode);
}

static int consensus(json_t *e, size_t i) {
    json_t *a = json_object_get(json_array_get(json_object_get(e, "items"), i), "answer");
    return json_is_integer(a) ? (int)json_integer_value(a) : -1;
}

/* Same items, in order. */
static pt_status same_items(json_t *da, const char *na, json_t *db, const char *nb) {
    json_t *a = json_object_get(da, "items"), *b = json_object_get(db, "items");
    if (json_array_size(a) != json_array_size(b))
        return pt_error(PT_ERR_FORMAT, "compare: %s and %s hold results for different questionnaires (%zu against %zu items)", na, nb,
                        json_array_size(a), json_array_size(b));
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *ia = json_object_get(json_array_get(a, i), "id"), *ib = json_object_get(json_array_get(b, i), "id");
        if (!json_equal(ia, ib))
            return pt_error(PT_ERR_FORMAT, "compare: %s and %s hold results for different questionnaires (item %zu is '%s' in one, '%s' in the other)",
                            na, nb, i + 1, json_string_value(ia) ? json_string_value(ia) : "?", json_string_value(ib) ? json_string_value(ib) : "?");
    }
    return PT_OK;
}

static pt_status check_comparable(json_t *da, json_t *ea, const char *na, json_t *db, json_t *eb, const char *nb) {
    PT_TRY(same_items(da, na, db, nb));
    json_t *ra = json_object_get(da, "scoring_rule"), *rb = json_object_get(db, "scoring_rule");
    if (!ra || !rb)
        return pt_error(PT_ERR_FORMAT, "compare: %s's compass.json records no scoring rule (written by an older politune); run the compass again",
                        !ra ? na : nb);
    if (!json_equal(ra, rb)) return pt_error(PT_ERR_FORMAT, "compare: %s and %s were scored with different scoring rules (weights or axes differ)", na, nb);
    char ma[96], mb[96];
    method_of(ea, ma, sizeof ma);
    method_of(eb, mb, sizeof mb);
    if (strcmp(ma, mb)) return pt_error(PT_ERR_FORMAT, "compare: %s was scored in %s and %s in %s; compare runs scored alike", na, ma, nb, mb);
    json_t *va = json_object_get(ea, "templates"), *vb = json_object_get(eb, "templates");
    if (!json_equal(va, vb)) return pt_error(PT_ERR_FORMAT, "compare: %s and %s were asked under different template variants", na, nb);
    if (json_array_size(va) < 1) return pt_error(PT_ERR_FORMAT, "compare: %s lists no template variants", na);
    json_t *pa = json_object_get(json_object_get(ea, "consensus"), "answered"), *pb = json_object_get(json_object_get(eb, "consensus"), "answered");
    if (json_integer_value(pa) <= 0) return pt_error(PT_ERR_FORMAT, "compare: %s has no valid answers (no item answered under any template): it has no position", na);
    if (json_integer_value(pb) <= 0) return pt_error(PT_ERR_FORMAT, "compare: %s has no valid answers (no item answered under any template): it has no position", nb);
    return PT_OK;
}

/* contrib (n_axes, n_items, n_variants) of one evaluation; positioned (n_variants) marks the
 * variants with any valid answer. */
static pt_status contributions(json_t *rule_axes, json_t *e, const char *name, int X, int NI, int NV, int A, pt_compare_basis basis,
                                double *contrib, bool *positioned) {
    json_t *items = json_object_get(e, "items");
    if ((int)json_array_size(items) != NI) return pt_error(PT_ERR_FORMAT, "compare: %s: the evaluation lists %zu items, the document %d", name, json_array_size(items), NI);
    for (int v = 0; v < NV; v++) positioned[v] = false;
    for (int i = 0; i < NI; i++) {
        json_t *bt = json_object_get(json_array_get(items, (size_t)i), "by_template");
        if ((int)json_array_size(bt) != NV)
            return pt_error(PT_ERR_FORMAT, "compare: %s: item %d has %zu template answers, expected %d", name, i + 1, json_array_size(bt), NV);
        for (int v = 0; v < NV; v++) {
            json_t *cell = json_array_get(bt, (size_t)v);
            json_t *a = json_object_get(cell, "answer"), *probs = json_object_get(cell, "probs");
            int ans = json_is_integer(a) ? (int)json_integer_value(a) : -1;
            if (ans >= A) return pt_error(PT_ERR_FORMAT, "compare: %s: item %d has answer %d, beyond the %d answer labels", name, i + 1, ans, A);
            if (ans >= 0) positioned[v] = true;
            if (ans >= 0 && basis == PT_COMPARE_EXPECTED && (int)json_array_size(probs) != A)
                return pt_error(PT_ERR_FORMAT, "compare: %s: item %d, template %d has no %d answer probabilities to weight (\"probs\")", name, i + 1,
                                v + 1, A);
            for (int x = 0; x < X; x++) {
                json_t *ax = json_array_get(rule_axes, (size_t)x);
                json_t *weights = json_array_get(json_object_get(ax, "weights"), (size_t)i);
                double div = jnum(json_object_get(ax, "divisor")), c = 0;
                for (int k = 0; ans >= 0 && k < A; k++) {
                    /* ANSWERS: all weight on the answer given; EXPECTED: on each option by its probability */
                    double p = basis == PT_COMPARE_EXPECTED ? jnum(json_array_get(probs, (size_t)k)) : k == ans;
                    if (p == 0) continue;
                    double w = jnum(json_array_get(weights, (size_t)k));
                    if (!isfinite(w) || !isfinite(div) || div == 0)
                        return pt_error(PT_ERR_FORMAT, "compare: %s: the scoring rule has no weight for item %d, answer %d", name, i + 1, k);
                    if (!isfinite(p) || p < 0 || p > 1)
                        return pt_error(PT_ERR_FORMAT, "compare: %s: item %d, template %d has probability %g for answer %d", name, i + 1, v + 1, p, k);
                    c += p * w / div;
                }
                contrib[((size_t)x * NI + i) * NV + v] = c;
            }
        }
    }
    return PT_OK;
}

void pt_compare_free(pt_compare *c) {
    if (!c) return;
    for (int x = 0; c->axes && x < c->n_axes; x++) free(c->axes[x].name);
    free(c->axes);
    free(c->answer_a);
    free(c->answer_b);
    free(c->attribution);
    free(c);
}

pt_status pt_compare_evals(json_t *doc_a, json_t *eval_a, const char *name_a, json_t *doc_b, json_t *eval_b, const char *name_b,
                           int resamples, uint64_t seed, pt_compare_basis basis, pt_compare **out) {
    *out = NULL;
    if (resamples < 1) return pt_error(PT_ERR_ARG, "compare: the number of resamples must be at least 1, got %d", resamples);
    if (!eval_a) return pt_error(PT_ERR_FORMAT, "compare: %s holds no evaluation", name_a);
    if (!eval_b) return pt_error(PT_ERR_FORMAT, "compare: %s holds no evaluation", name_b);
    PT_TRY(check_comparable(doc_a, eval_a, name_a, doc_b, eval_b, name_b));
    json_t *rule_axes = json_object_get(json_object_get(doc_a, "scoring_rule"), "axes");
    const int X = (int)json_array_size(rule_axes), NI = (int)json_array_size(json_object_get(doc_a, "items"));
    const int NV = (int)json_array_size(json_object_get(eval_a, "templates")), A = (int)json_array_size(json_object_get(doc_a, "answers"));
    if (X < 1 || NI < 1 || A < 1) return pt_error(PT_ERR_FORMAT, "compare: %s: the scoring rule names no axes, items or answers", name_a);
    pt_compare *c = calloc(1, sizeof *c);
    double *ca = calloc((size_t)X * NI * NV, sizeof *ca), *cb = calloc((size_t)X * NI * NV, sizeof *cb);
    double *offs = calloc((size_t)X, sizeof *offs);
    bool *pa = calloc((size_t)NV, sizeof *pa), *pb = calloc((size_t)NV, sizeof *pb);
    pt_interval *ia = calloc((size_t)X, sizeof *ia), *ib = calloc((size_t)X, sizeof *ib);
    pt_status st = PT_OK;
    if (!c || !ca || !cb || !offs || !pa || !pb || !ia || !ib) st = pt_error(PT_ERR_OOM, "out of memory");
    if (!st) {
        c->n_axes = X;
        c->n_items = NI;
        c->n_answers = A;
        c->resamples = resamples;
        c->seed = seed;
        c->basis = basis;
        c->axes = calloc((size_t)X, sizeof *c->axes);
        c->answer_a = malloc(sizeof(int) * (size_t)NI);
        c->answer_b = malloc(sizeof(int) * (size_t)NI);
        c->attribution = calloc((size_t)X * NI, sizeof *c->attribution);
        if (!c->axes || !c->answer_a || !c->answer_b || !c->attribution) st = pt_error(PT_ERR_OOM, "out of memory");
    }
    if (!st) st = contributions(rule_axes, eval_a, name_a, X, NI, NV, A, basis, ca, pa);
    if (!st) st = contributions(rule_axes, eval_b, name_b, X, NI, NV, A, basis, cb, pb);
    /* each run on its own, then the paired differences over the variants positioned in both */
    for (int x = 0; !st && x < X; x++) offs[x] = jnum(json_object_get(json_array_get(rule_axes, (size_t)x), "offset"));
    if (!st) st = pt_stats_bootstrap(ca, offs, X, NI, NV, pa, 1, seed, ia);
    if (!st) st = pt_stats_bootstrap(cb, offs, X, NI, NV, pb, 1, seed, ib);
    if (!st) {
        for (size_t k = 0; k < (size_t)X * NI * NV; k++) cb[k] -= ca[k];
        for (int v = 0; v < NV; v++) pa[v] = pa[v] && pb[v];
        int both = 0;
        for (int v = 0; v < NV; v++) both += pa[v];
        if (!both) st = pt_error(PT_ERR_FORMAT, "compare: %s and %s have no template variant that both answered", name_a, name_b);
    }
    pt_interval *shift = ia; /* reused: the per-run estimates are copied out first */
    for (int x = 0; !st && x < X; x++) {
        json_t *ax = json_array_get(json_object_get(doc_a, "axes"), (size_t)x);
        const char *an = json_string_value(json_object_get(json_array_get(rule_axes, (size_t)x), "name"));
        c->axes[x].name = strdup(an ? an : "?");
        c->axes[x].decimals = json_is_integer(json_object_get(ax, "decimals")) ? (int)json_integer_value(json_object_get(ax, "decimals")) : 2;
        c->axes[x].a = ia[x].estimate;
        c->axes[x].b = ib[x].estimate;
        if (!c->axes[x].name) st = pt_error(PT_ERR_OOM, "out of memory");
    }
    if (!st) st = pt_stats_bootstrap(cb, NULL, X, NI, NV, pa, resamples, seed, shift);
    if (!st) {
        pt_stats_item_means(cb, X, NI, NV, pa, c->attribution);
        for (int x = 0; x < X; x++) {
            c->axes[x].shift = shift[x];
            c->axes[x].p = pt_stats_sign_flip_p(&c->attribution[(size_t)x * NI], NI, resamples, seed + 1 + (uint64_t)x, &c->axes[x].exact);
        }
        for (int i = 0; i < NI; i++) {
            c->answer_a[i] = consensus(eval_a, (size_t)i);
            c->answer_b[i] = consensus(eval_b, (size_t)i);
            if (c->answer_a[i] >= 0 && c->answer_b[i] >= 0) {
                c->answered_both++;
                c->changed += c->answer_a[i] != c->answer_b[i];
            }
        }
    }
    free(ca);
    free(cb);
    free(offs);
    free(pa);
    free(pb);
    free(ia);
    free(ib);
    if (st) { pt_compare_free(c); return st; }
    *out = c;
    return PT_OK;
}

json_t *pt_compare_json(const pt_compare *c, json_t *doc, const char *name_a, const char *name_b) {
    json_t *o = json_object(), *axes = json_object(), *items = json_array();
    json_object_set_new(o, "a", json_string(name_a ? name_a : "a"));
    json_object_set_new(o, "b", json_string(name_b ? name_b : "b"));
    json_object_set_new(o, "basis", json_string(c->basis == PT_COMPARE_EXPECTED ? "expected" : "answers"));
    json_object_set_new(o, "resamples", json_integer(c->resamples));
    json_object_set_new(o, "seed", json_integer((json_int_t)c->seed));
    for (int x = 0; x < c->n_axes; x++) {
        const pt_compare_axis *a = &c->axes[x];
        int dec = a->decimals + 3;
        json_t *ci = isfinite(a->shift.lo) ? json_pack("[f,f]", pt_round_half_away(a->shift.lo, a->decimals), pt_round_half_away(a->shift.hi, a->decimals))
                                           : json_null();
        json_object_set_new(axes, a->name,
                            json_pack("{s:o,s:o,s:o,s:o,s:o,s:b}", "a", num(pt_round_half_away(a->a, dec)), "b", num(pt_round_half_away(a->b, dec)),
                                      "shift", num(pt_round_half_away(a->shift.estimate, dec)), "interval", ci, "p", num(a->p), "exact", a->exact));
    }
    json_object_set_new(o, "axes", axes);
    json_object_set_new(o, "changed", json_integer(c->changed));
    json_object_set_new(o, "answered_both", json_integer(c->answered_both));
    json_t *ids = json_object_get(doc, "items");
    for (int i = 0; i < c->n_items; i++) {
        json_t *at = json_object();
        for (int x = 0; x < c->n_axes; x++) json_object_set_new(at, c->axes[x].name, num(c->attribution[(size_t)x * c->n_items + i]));
        json_array_append_new(items, json_pack("{s:O,s:o,s:o,s:o}", "id", json_object_get(json_array_get(ids, (size_t)i), "id"), "a",
                                               c->answer_a[i] >= 0 ? json_integer(c->answer_a[i]) : json_null(), "b",
                                               c->answer_b[i] >= 0 ? json_integer(c->answer_b[i]) : json_null(), "attribution", at));
    }
    json_object_set_new(o, "items", items);
    return o;
}

pt_status pt_forced_free_compare(json_t *doc, json_t *forced, json_t *free_eval, pt_forced_free *out) {
    memset(out, 0, sizeof *out);
    int NI = (int)json_array_size(json_object_get(doc, "items"));
    out->n_items = NI;
    out->forced = malloc(sizeof(int) * (size_t)(NI ? NI : 1));
    out->free_ = malloc(sizeof(int) * (size_t)(NI ? NI : 1));
    if (!out->forced || !out->free_) { pt_forced_free_free(out); return pt_error(PT_ERR_OOM, "out of memory"); }
    for (int i = 0; i < NI; i++) {
        out->forced[i] = consensus(forced, (size_t)i);
        out->free_[i] = consensus(free_eval, (size_t)i);
        if (out->forced[i] >= 0 && out->free_[i] >= 0) {
            out->both++;
            out->agree += out->forced[i] == out->free_[i];
        }
    }
    return PT_OK;
}

void pt_forced_free_free(pt_forced_free *f) {
    free(f->forced);
    free(f->free_);
    f->forced = f->free_ = NULL;
}
