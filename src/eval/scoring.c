/* Scoring files (Political Compass table, 8values-style effects, general per-axis weights)
 * into one linear per-axis rule, and the rule applied to answer vectors and to answer
 * distributions (see scoring.h for the formula and the file forms). */
#include "eval/scoring.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/file.h"

#define MAX_ANSWERS 64
#define MAX_AXES 32

void pt_scoring_free(pt_scoring *s) {
    if (!s) return;
    for (int a = 0; a < s->n_axes; a++) {
        free(s->axes[a].name);
        free(s->axes[a].pole_lo);
        free(s->axes[a].pole_hi);
        free(s->axes[a].w);
    }
    free(s->axes);
    for (int i = 0; s->answers && i < s->n_answers; i++) free(s->answers[i]);
    free(s->answers);
    for (int i = 0; s->ids && i < s->n_items; i++) free(s->ids[i]);
    free(s->ids);
    free(s->instrument);
    free(s->kind);
    free(s->path);
    free(s);
}

int pt_scoring_axis(const pt_scoring *s, const char *name) {
    for (int a = 0; a < s->n_axes; a++)
        if (!strcmp(s->axes[a].name, name)) return a;
    return -1;
}

double pt_round_half_away(double x, int decimals) {
    double scale = pow(10.0, decimals);
    double v = x * scale, t = trunc(v), r = round(v);
    if (fabs(fabs(v - t) - 0.5) < 1e-9) r = t + (v < 0 ? -1.0 : 1.0);
    r /= scale;
    return r == 0 ? 0.0 : r;
}

static char *sdup(const char *s) { return s ? strdup(s) : NULL; }

static pt_axis *add_axis(pt_scoring *s, const char *name, const char *lo, const char *hi) {
    pt_axis *na = realloc(s->axes, sizeof *na * (size_t)(s->n_axes + 1));
    if (!na) return NULL;
    s->axes = na;
    pt_axis *ax = &s->axes[s->n_axes++];
    memset(ax, 0, sizeof *ax);
    ax->name = sdup(name);
    ax->pole_lo = sdup(lo);
    ax->pole_hi = sdup(hi);
    ax->w = calloc((size_t)s->n_items * (size_t)s->n_answers, sizeof(double));
    if (!ax->name || !ax->w || (lo && !ax->pole_lo) || (hi && !ax->pole_hi)) return NULL;
    return ax;
}

static pt_status read_labels(pt_scoring *s, json_t *arr, const char *label) {
    if (!json_is_array(arr) || json_array_size(arr) < 2 || json_array_size(arr) > MAX_ANSWERS)
        return pt_error(PT_ERR_FORMAT, "%s: \"answers\" must be an array of 2 to %d labels", label, MAX_ANSWERS);
    s->n_answers = (int)json_array_size(arr);
    s->answers = calloc((size_t)s->n_answers, sizeof(char *));
    if (!s->answers) return pt_error(PT_ERR_OOM, "out of memory");
    for (int i = 0; i < s->n_answers; i++) {
        json_t *l = json_array_get(arr, (size_t)i);
        if (!json_is_string(l) || !json_string_value(l)[0])
            return pt_error(PT_ERR_FORMAT, "%s: answer label %d is not a non-empty string", label, i);
        if (!(s->answers[i] = strdup(json_string_value(l)))) return pt_error(PT_ERR_OOM, "out of memory");
    }
    return PT_OK;
}

/* Reads a (n_items, n_answers) weight table into ax->w, checking its shape. */
static pt_status read_table(pt_scoring *s, pt_axis *ax, json_t *t, const char *label, const char *key) {
    if (!json_is_array(t) || (int)json_array_size(t) != s->n_items)
        return pt_error(PT_ERR_FORMAT, "%s: \"%s\" must be an array of %d rows (one per item), got %zu", label, key, s->n_items,
                        json_is_array(t) ? json_array_size(t) : (size_t)0);
    for (int i = 0; i < s->n_items; i++) {
        json_t *row = json_array_get(t, (size_t)i);
        if (!json_is_array(row) || (int)json_array_size(row) != s->n_answers)
            return pt_error(PT_ERR_FORMAT, "%s: \"%s\" row %d must have %d weights (one per answer)", label, key, i + 1, s->n_answers);
        for (int a = 0; a < s->n_answers; a++) {
            json_t *v = json_array_get(row, (size_t)a);
            if (!json_is_number(v) || !isfinite(json_number_value(v)))
                return pt_error(PT_ERR_FORMAT, "%s: \"%s\" row %d, answer %d is not a finite number", label, key, i + 1, a);
            ax->w[(size_t)i * s->n_answers + a] = json_number_value(v);
        }
    }
    return PT_OK;
}

static pt_status get_num(json_t *o, const char *key, double def, bool required, double *out, const char *label) {
    json_t *v = json_object_get(o, key);
    if (!v) {
        if (required) return pt_error(PT_ERR_FORMAT, "%s: missing number \"%s\"", label, key);
        *out = def;
        return PT_OK;
    }
    if (!json_is_number(v) || !isfinite(json_number_value(v))) return pt_error(PT_ERR_FORMAT, "%s: \"%s\" is not a finite number", label, key);
    *out = json_number_value(v);
    return PT_OK;
}

static pt_status parse_pct(pt_scoring *s, json_t *root, const char *label) {
    json_t *econ = json_object_get(root, "econ"), *soc = json_object_get(root, "soc");
    if (!json_is_array(econ) || !json_is_array(soc)) return pt_error(PT_ERR_FORMAT, "%s: \"econ\" and \"soc\" must be arrays", label);
    s->n_items = (int)json_array_size(econ);
    if (s->n_items == 0) return pt_error(PT_ERR_FORMAT, "%s: \"econ\" is empty", label);
    if (!s->answers) {
        json_t *row = json_array_get(econ, 0);
        if (!json_is_array(row) || json_array_size(row) < 2 || json_array_size(row) > MAX_ANSWERS)
            return pt_error(PT_ERR_FORMAT, "%s: \"econ\" row 1 must list 2 to %d weights", label, MAX_ANSWERS);
        s->n_answers = (int)json_array_size(row);
        s->answers = calloc((size_t)s->n_answers, sizeof(char *));
        if (!s->answers) return pt_error(PT_ERR_OOM, "out of memory");
        for (int a = 0; a < s->n_answers; a++) {
            char b[32];
            snprintf(b, sizeof b, "%d", a);
            if (!(s->answers[a] = strdup(b))) return pt_error(PT_ERR_OOM, "out of memory");
        }
    }
    pt_axis *e = add_axis(s, "economic", "Left", "Right");
    pt_axis *so = e ? add_axis(s, "social", "Libertarian", "Authoritarian") : NULL;
    if (!e || !so) return pt_error(PT_ERR_OOM, "out of memory");
    e = &s->axes[0];
    PT_TRY(read_table(s, e, econ, label, "econ"));
    PT_TRY(read_table(s, so, soc, label, "soc"));
    PT_TRY(get_num(root, "e0", 0, true, &e->offset, label));
    PT_TRY(get_num(root, "s0", 0, true, &so->offset, label));
    PT_TRY(get_num(root, "econ_divisor", 8.0, false, &e->divisor, label));
    PT_TRY(get_num(root, "soc_divisor", 19.5, false, &so->divisor, label));
    e->decimals = so->decimals = 2;
    e->lo = so->lo = -10;
    e->hi = so->hi = 10;
    s->chart_x = 0;
    s->chart_y = 1;
    return PT_OK;
}

static pt_status parse_effects(pt_scoring *s, json_t *root, const char *label, const pt_questionnaire *q) {
    if (!q) return pt_error(PT_ERR_ARG, "%s: an effects-style scoring file needs its questionnaire (the items carry the effects)", label);
    json_t *mult = json_object_get(root, "multipliers");
    if (!json_is_array(mult) || json_array_size(mult) < 2 || json_array_size(mult) > MAX_ANSWERS)
        return pt_error(PT_ERR_FORMAT, "%s: \"multipliers\" must be an array of 2 to %d numbers", label, MAX_ANSWERS);
    if (s->answers && (size_t)s->n_answers != json_array_size(mult))
        return pt_error(PT_ERR_FORMAT, "%s: %d answer labels but %zu multipliers", label, s->n_answers, json_array_size(mult));
    if (!s->answers) return pt_error(PT_ERR_FORMAT, "%s: missing \"answers\" labels", label);
    double m[MAX_ANSWERS];
    for (int a = 0; a < s->n_answers; a++) {
        json_t *v = json_array_get(mult, (size_t)a);
        if (!json_is_number(v) || !isfinite(json_number_value(v))) return pt_error(PT_ERR_FORMAT, "%s: multiplier %d is not a finite number", label, a);
        m[a] = json_number_value(v);
    }
    s->n_items = q->n_items;
    json_t *axes = json_object_get(root, "axes"), *maxes = json_object_get(root, "max");
    if (!json_is_object(axes) || json_object_size(axes) == 0 || json_object_size(axes) > MAX_AXES)
        return pt_error(PT_ERR_FORMAT, "%s: \"axes\" must be an object {axis: [first pole, second pole]}", label);
    const char *name;
    json_t *poles;
    json_object_foreach(axes, name, poles) {
        const char *p0 = json_is_array(poles) ? json_string_value(json_array_get(poles, 0)) : NULL;
        const char *p1 = json_is_array(poles) ? json_string_value(json_array_get(poles, 1)) : NULL;
        /* the score is the percentage for the first pole, so it is the high end */
        pt_axis *ax = add_axis(s, name, p1, p0);
        if (!ax) return pt_error(PT_ERR_OOM, "out of memory");
        double max = 0;
        int n_with = 0;
        for (int i = 0; i < q->n_items; i++) {
            double eff = 0;
            int found = 0;
            for (int k = 0; k < q->items[i].n_effects; k++)
                if (!strcmp(q->items[i].effect_axes[k], name)) { eff = q->items[i].effects[k]; found = 1; }
            n_with += found;
            max += fabs(eff);
            for (int a = 0; a < s->n_answers; a++) ax->w[(size_t)i * s->n_answers + a] = m[a] * eff;
        }
        if (n_with == 0) return pt_error(PT_ERR_FORMAT, "%s: no item of %s has an effect on axis '%s'", label, q->path, name);
        if (max <= 0) return pt_error(PT_ERR_FORMAT, "%s: axis '%s': every effect is 0", label, name);
        json_t *mv = json_object_get(maxes, name);
        if (mv && (!json_is_number(mv) || fabs(json_number_value(mv) - max) > 1e-9 * (1 + max)))
            return pt_error(PT_ERR_FORMAT, "%s: axis '%s': \"max\" is %g but the effects in %s add up to %g: questionnaire and scoring file disagree",
                            label, name, json_number_value(mv), q->path, max);
        ax->offset = 50;
        ax->divisor = max / 50;
        ax->decimals = 1;
        ax->lo = 0;
        ax->hi = 100;
    }
    /* every effect in the questionnaire must be on an axis the scoring file knows */
    for (int i = 0; i < q->n_items; i++)
        for (int k = 0; k < q->items[i].n_effects; k++)
            if (pt_scoring_axis(s, q->items[i].effect_axes[k]) < 0)
                return pt_error(PT_ERR_FORMAT, "%s: item '%s' of %s has an effect on axis '%s', which the scoring file does not define",
                                label, q->items[i].id, q->path, q->items[i].effect_axes[k]);
    s->chart_x = 0;
    s->chart_y = s->n_axes > 1 ? 1 : 0;
    return PT_OK;
}

static pt_status parse_general(pt_scoring *s, json_t *root, const char *label) {
    json_t *axes = json_object_get(root, "axes");
    if (!json_is_array(axes) || json_array_size(axes) == 0 || json_array_size(axes) > MAX_AXES)
        return pt_error(PT_ERR_FORMAT, "%s: \"axes\" must be an array of 1 to %d axes (or use the PCT or effects form)", label, MAX_AXES);
    if (!s->answers) return pt_error(PT_ERR_FORMAT, "%s: missing \"answers\" labels", label);
    json_t *w0 = json_object_get(json_array_get(axes, 0), "weights");
    if (!json_is_array(w0) || json_array_size(w0) == 0) return pt_error(PT_ERR_FORMAT, "%s: axis 1 has no \"weights\" table", label);
    s->n_items = (int)json_array_size(w0);
    for (size_t k = 0; k < json_array_size(axes); k++) {
        json_t *a = json_array_get(axes, k);
        char where[600];
        snprintf(where, sizeof where, "%s: axis %zu", label, k + 1);
        const char *name = json_string_value(json_object_get(a, "name"));
        if (!json_is_object(a) || !name || !*name) return pt_error(PT_ERR_FORMAT, "%s: needs a \"name\"", where);
        if (pt_scoring_axis(s, name) >= 0) return pt_error(PT_ERR_FORMAT, "%s: axis name '%s' used twice", where, name);
        json_t *poles = json_object_get(a, "poles");
        pt_axis *ax = add_axis(s, name, json_string_value(json_array_get(poles, 0)), json_string_value(json_array_get(poles, 1)));
        if (!ax) return pt_error(PT_ERR_OOM, "out of memory");
        PT_TRY(read_table(s, ax, json_object_get(a, "weights"), where, "weights"));
        PT_TRY(get_num(a, "offset", 0, false, &ax->offset, where));
        PT_TRY(get_num(a, "divisor", 1, false, &ax->divisor, where));
        double dec;
        PT_TRY(get_num(a, "decimals", 2, false, &dec, where));
        if (dec < 0 || dec > 9 || dec != floor(dec)) return pt_error(PT_ERR_FORMAT, "%s: \"decimals\" must be an integer 0..9", where);
        ax->decimals = (int)dec;
        json_t *r = json_object_get(a, "range");
        ax->lo = -10;
        ax->hi = 10;
        if (r) {
            if (!json_is_array(r) || json_array_size(r) != 2 || !json_is_number(json_array_get(r, 0)) || !json_is_number(json_array_get(r, 1)))
                return pt_error(PT_ERR_FORMAT, "%s: \"range\" must be [low, high]", where);
            ax->lo = json_number_value(json_array_get(r, 0));
            ax->hi = json_number_value(json_array_get(r, 1));
        }
        if (!(ax->hi > ax->lo) || !isfinite(ax->lo) || !isfinite(ax->hi)) return pt_error(PT_ERR_FORMAT, "%s: \"range\" must have low < high", where);
    }
    s->chart_x = 0;
    s->chart_y = s->n_axes > 1 ? 1 : 0;
    json_t *chart = json_object_get(root, "chart");
    if (chart) {
        int x = json_is_array(chart) && json_array_size(chart) == 2 ? pt_scoring_axis(s, json_string_value(json_array_get(chart, 0)) ? json_string_value(json_array_get(chart, 0)) : "") : -1;
        int y = x >= 0 ? pt_scoring_axis(s, json_string_value(json_array_get(chart, 1)) ? json_string_value(json_array_get(chart, 1)) : "") : -1;
        if (x < 0 || y < 0) return pt_error(PT_ERR_FORMAT, "%s: \"chart\" must name two of the axes, as [x, y]", label);
        s->chart_x = x;
        s->chart_y = y;
    }
    return PT_OK;
}

pt_status pt_scoring_parse(pt_scoring **out, const char *text, size_t len, const char *label, const pt_questionnaire *q) {
    *out = NULL;
    if (!label) label = "scoring";
    json_error_t err;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (!root) return pt_error(PT_ERR_FORMAT, "%s:%d: invalid JSON: %s", label, err.line, err.text);
    pt_scoring *s = calloc(1, sizeof *s);
    pt_status st = PT_OK;
    if (!s || !(s->path = strdup(label))) st = pt_error(PT_ERR_OOM, "out of memory");
    if (!st && !json_is_object(root)) st = pt_error(PT_ERR_FORMAT, "%s: a scoring file is a JSON object", label);
    if (!st) {
        json_t *inst = json_object_get(root, "instrument");
        if (json_is_string(inst) && !(s->instrument = strdup(json_string_value(inst)))) st = pt_error(PT_ERR_OOM, "out of memory");
    }
    json_t *answers = json_is_object(root) ? json_object_get(root, "answers") : NULL;
    if (!st && answers) st = read_labels(s, answers, label);
    if (!st) {
        const char *kind = json_object_get(root, "econ") ? "pct" : json_object_get(root, "multipliers") ? "effects" : "general";
        if (!(s->kind = strdup(kind))) st = pt_error(PT_ERR_OOM, "out of memory");
        else if (!strcmp(kind, "pct")) st = parse_pct(s, root, label);
        else if (!strcmp(kind, "effects")) st = parse_effects(s, root, label, q);
        else st = parse_general(s, root, label);
    }
    for (int a = 0; !st && a < s->n_axes; a++)
        if (!(s->axes[a].divisor != 0) || !isfinite(s->axes[a].offset))
            st = pt_error(PT_ERR_FORMAT, "%s: axis '%s': the divisor must be non-zero and the offset finite", label, s->axes[a].name);
    json_t *ids = json_is_object(root) ? json_object_get(root, "ids") : NULL;
    if (!st && ids) {
        if (!json_is_array(ids) || (int)json_array_size(ids) != s->n_items)
            st = pt_error(PT_ERR_FORMAT, "%s: \"ids\" must list %d item ids, one per item", label, s->n_items);
        else if (!(s->ids = calloc((size_t)s->n_items, sizeof(char *)))) st = pt_error(PT_ERR_OOM, "out of memory");
        for (int i = 0; !st && i < s->n_items; i++) {
            json_t *v = json_array_get(ids, (size_t)i);
            char b[32];
            const char *id = json_string_value(v);
            if (json_is_integer(v)) { snprintf(b, sizeof b, "%lld", (long long)json_integer_value(v)); id = b; }
            if (!id) { st = pt_error(PT_ERR_FORMAT, "%s: \"ids\" entry %d is not a string", label, i + 1); break; }
            if (!(s->ids[i] = strdup(id))) st = pt_error(PT_ERR_OOM, "out of memory");
        }
    }
    json_decref(root);
    if (st) { pt_scoring_free(s); return st; }
    *out = s;
    return PT_OK;
}

pt_status pt_scoring_load(pt_scoring **out, const char *path, const pt_questionnaire *q) {
    *out = NULL;
    char *text;
    size_t len;
    pt_status st = pt_file_read_all(path, &text, &len);
    if (st) return pt_error_wrap(st, "scoring: ");
    st = pt_scoring_parse(out, text, len, path, q);
    free(text);
    return st;
}

pt_status pt_scoring_check(const pt_scoring *s, const pt_questionnaire *q) {
    if (s->n_items != q->n_items)
        return pt_error(PT_ERR_FORMAT, "questionnaire %s has %d items but scoring file %s scores %d: they disagree", q->path,
                        q->n_items, s->path, s->n_items);
    if (q->n_options && q->n_options != s->n_answers)
        return pt_error(PT_ERR_FORMAT, "questionnaire %s offers %d answer options but scoring file %s weighs %d", q->path,
                        q->n_options, s->path, s->n_answers);
    for (int i = 0; s->ids && i < s->n_items; i++)
        if (strcmp(s->ids[i], q->items[i].id))
            return pt_error(PT_ERR_FORMAT, "item %d: questionnaire %s has id '%s' but scoring file %s has '%s': they disagree", i + 1,
                            q->path, q->items[i].id, s->path, s->ids[i]);
    return PT_OK;
}

pt_status pt_scoring_score(const pt_scoring *s, const int *answers, double *coords, int *n_answered) {
    int n = 0;
    for (int i = 0; i < s->n_items; i++) {
        if (answers[i] == -1) continue;
        if (answers[i] < 0 || answers[i] >= s->n_answers)
            return pt_error(PT_ERR_ARG, "item %d: answer %d is outside 0..%d", i + 1, answers[i], s->n_answers - 1);
        n++;
    }
    for (int a = 0; a < s->n_axes; a++) {
        const pt_axis *ax = &s->axes[a];
        double sum = 0;
        for (int i = 0; i < s->n_items; i++)
            if (answers[i] >= 0) sum += ax->w[(size_t)i * s->n_answers + answers[i]];
        coords[a] = pt_round_half_away(ax->offset + sum / ax->divisor, ax->decimals);
    }
    if (n_answered) *n_answered = n;
    return PT_OK;
}

void pt_scoring_expected(const pt_scoring *s, const double *probs, const bool *valid, double *coords) {
    for (int a = 0; a < s->n_axes; a++) {
        const pt_axis *ax = &s->axes[a];
        double sum = 0;
        for (int i = 0; i < s->n_items; i++) {
            if (valid && !valid[i]) continue;
            for (int k = 0; k < s->n_answers; k++) sum += probs[(size_t)i * s->n_answers + k] * ax->w[(size_t)i * s->n_answers + k];
        }
        coords[a] = pt_round_half_away(ax->offset + sum / ax->divisor, ax->decimals);
    }
}
