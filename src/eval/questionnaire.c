/* Questionnaire files (CSV, JSON, plain text) into a pt_questionnaire: items with ids,
 * statements, notes and optional per-axis effects, plus the answer options when the file
 * names them. Every malformed input is rejected with the file and the line or item number;
 * the parser reads only inside the given buffer (it is a fuzz target). */
#include "eval/questionnaire.h"

#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "format/csv.h"
#include "util/file.h"

#define MAX_ITEMS 100000
#define MAX_OPTIONS 64

static void item_free(pt_item *it) {
    free(it->id);
    free(it->statement);
    free(it->note);
    for (int i = 0; i < it->n_effects; i++) free(it->effect_axes[i]);
    free(it->effect_axes);
    free(it->effects);
}

void pt_questionnaire_free(pt_questionnaire *q) {
    if (!q) return;
    for (int i = 0; i < q->n_items; i++) item_free(&q->items[i]);
    free(q->items);
    for (int i = 0; i < q->n_options; i++) free(q->options[i]);
    free(q->options);
    free(q->instrument);
    free(q->path);
    free(q);
}

int pt_questionnaire_find(const pt_questionnaire *q, const char *id) {
    for (int i = 0; i < q->n_items; i++)
        if (!strcmp(q->items[i].id, id)) return i;
    return -1;
}

double pt_item_effect(const pt_item *it, const char *axis) {
    for (int i = 0; i < it->n_effects; i++)
        if (!strcmp(it->effect_axes[i], axis)) return it->effects[i];
    return 0;
}

/* Copies s without leading/trailing ASCII whitespace. */
static char *dup_trim(const char *s) {
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n')) n--;
    char *d = malloc(n + 1);
    if (d) { memcpy(d, s, n); d[n] = 0; }
    return d;
}

static pt_status add_item(pt_questionnaire *q, const char *id, const char *statement, const char *note,
                          const char *where) {
    if (q->n_items >= MAX_ITEMS) return pt_error(PT_ERR_FORMAT, "%s: more than %d items", where, MAX_ITEMS);
    pt_item *ni = realloc(q->items, sizeof *ni * (size_t)(q->n_items + 1));
    if (!ni) return pt_error(PT_ERR_OOM, "out of memory");
    q->items = ni;
    pt_item *it = &q->items[q->n_items];
    memset(it, 0, sizeof *it);
    char idbuf[32];
    if (!id || !*id) { snprintf(idbuf, sizeof idbuf, "%d", q->n_items + 1); id = idbuf; }
    it->id = dup_trim(id);
    it->statement = dup_trim(statement ? statement : "");
    it->note = note && *note ? dup_trim(note) : NULL;
    q->n_items++;
    if (!it->id || !it->statement || (note && *note && !it->note)) return pt_error(PT_ERR_OOM, "out of memory");
    if (!it->id[0]) return pt_error(PT_ERR_FORMAT, "%s: empty item id", where);
    if (!it->statement[0]) return pt_error(PT_ERR_FORMAT, "%s: item '%s' has an empty statement", where, it->id);
    return PT_OK;
}

static pt_status add_effect(pt_item *it, const char *axis, double v, const char *where) {
    if (!isfinite(v)) return pt_error(PT_ERR_FORMAT, "%s: item '%s': effect on '%s' is not a finite number", where, it->id, axis);
    for (int i = 0; i < it->n_effects; i++)
        if (!strcmp(it->effect_axes[i], axis))
            return pt_error(PT_ERR_FORMAT, "%s: item '%s': effect on '%s' given twice", where, it->id, axis);
    char **na = realloc(it->effect_axes, sizeof(char *) * (size_t)(it->n_effects + 1));
    if (!na) return pt_error(PT_ERR_OOM, "out of memory");
    it->effect_axes = na;
    double *ne = realloc(it->effects, sizeof(double) * (size_t)(it->n_effects + 1));
    if (!ne) return pt_error(PT_ERR_OOM, "out of memory");
    it->effects = ne;
    if (!(it->effect_axes[it->n_effects] = strdup(axis))) return pt_error(PT_ERR_OOM, "out of memory");
    it->effects[it->n_effects++] = v;
    return PT_OK;
}

/* Sets the option labels from a '|'-separated list, or checks they match those already set. */
static pt_status set_options_list(pt_questionnaire *q, const char *list, const char *where) {
    char *copy = strdup(list), *save = NULL;
    if (!copy) return pt_error(PT_ERR_OOM, "out of memory");
    char *labels[MAX_OPTIONS];
    int n = 0;
    pt_status st = PT_OK;
    for (char *tok = strtok_r(copy, "|", &save); tok; tok = strtok_r(NULL, "|", &save)) {
        if (n == MAX_OPTIONS) { st = pt_error(PT_ERR_FORMAT, "%s: more than %d answer options", where, MAX_OPTIONS); break; }
        labels[n++] = tok;
    }
    if (!st && n < 2) st = pt_error(PT_ERR_FORMAT, "%s: at least 2 answer options are needed, got %d", where, n);
    if (!st && q->n_options) {
        bool same = q->n_options == n;
        for (int i = 0; same && i < n; i++) {
            char *t = dup_trim(labels[i]);
            same = t && !strcmp(t, q->options[i]);
            free(t);
        }
        if (!same) st = pt_error(PT_ERR_FORMAT, "%s: answer options differ from the first row's", where);
    } else if (!st) {
        q->options = calloc((size_t)n, sizeof(char *));
        if (!q->options) st = pt_error(PT_ERR_OOM, "out of memory");
        for (int i = 0; !st && i < n; i++) {
            q->options[q->n_options++] = dup_trim(labels[i]);
            if (!q->options[i]) st = pt_error(PT_ERR_OOM, "out of memory");
            else if (!q->options[i][0]) st = pt_error(PT_ERR_FORMAT, "%s: empty answer option %d", where, i);
        }
    }
    free(copy);
    return st;
}

static int col_is(const char *name, const char *const *names) {
    for (; *names; names++)
        if (!strcasecmp(name, *names)) return 1;
    return 0;
}

static pt_status parse_csv(pt_questionnaire *q, const char *text, size_t len, const char *label) {
    static const char *const id_names[] = {"id", "item_id", "pct_id", "qid", NULL};
    static const char *const st_names[] = {"statement", "text", "prompt", "pct_prompt", "question", "proposition", NULL};
    static const char *const note_names[] = {"note", "pct_note", "section", "category", NULL};
    static const char *const opt_names[] = {"options", "answers", NULL};
    pt_csv c;
    PT_TRY(pt_csv_parse(&c, text, len, label));
    pt_status st = PT_OK;
    if (c.n_records == 0) { pt_csv_free(&c); return pt_error(PT_ERR_FORMAT, "%s: empty questionnaire (no header row)", label); }
    const pt_csv_record *h = &c.records[0];
    int cid = -1, cst = -1, cnote = -1, copt = -1;
    for (int j = 0; j < h->n_fields; j++) {
        char *name = dup_trim(h->fields[j]);
        if (!name) { pt_csv_free(&c); return pt_error(PT_ERR_OOM, "out of memory"); }
        if (col_is(name, id_names) && cid < 0) cid = j;
        else if (col_is(name, st_names) && cst < 0) cst = j;
        else if (col_is(name, note_names) && cnote < 0) cnote = j;
        else if (col_is(name, opt_names) && copt < 0) copt = j;
        free(name);
    }
    if (cst < 0) {
        pt_csv_free(&c);
        return pt_error(PT_ERR_FORMAT, "%s:1: no statement column in the header (expected one of statement, text, prompt, pct_prompt, question, proposition)", label);
    }
    for (int r = 1; r < c.n_records && !st; r++) {
        const pt_csv_record *rec = &c.records[r];
        char where[600];
        snprintf(where, sizeof where, "%s:%d", label, rec->line);
        if (rec->n_fields != h->n_fields) {
            st = pt_error(PT_ERR_FORMAT, "%s: %d fields, the header has %d", where, rec->n_fields, h->n_fields);
            break;
        }
        st = add_item(q, cid >= 0 ? rec->fields[cid] : NULL, rec->fields[cst], cnote >= 0 ? rec->fields[cnote] : NULL, where);
        if (!st && copt >= 0) st = set_options_list(q, rec->fields[copt], where);
        for (int j = 0; !st && j < h->n_fields; j++) {
            if (strncasecmp(h->fields[j], "effect:", 7) || !h->fields[j][7]) continue;
            char *end;
            const char *v = rec->fields[j];
            if (!*v) continue;
            double x = strtod(v, &end);
            while (*end == ' ') end++;
            if (end == v || *end) st = pt_error(PT_ERR_FORMAT, "%s: column '%s': '%s' is not a number", where, h->fields[j], v);
            else st = add_effect(&q->items[q->n_items - 1], h->fields[j] + 7, x, where);
        }
    }
    pt_csv_free(&c);
    return st;
}

static const char *json_str_any(json_t *o, const char *const *keys) {
    for (; *keys; keys++) {
        json_t *v = json_object_get(o, *keys);
        if (json_is_string(v)) return json_string_value(v);
    }
    return NULL;
}

static pt_status parse_json(pt_questionnaire *q, const char *text, size_t len, const char *label) {
    json_error_t err;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (!root) return pt_error(PT_ERR_FORMAT, "%s:%d: invalid JSON: %s", label, err.line, err.text);
    pt_status st = PT_OK;
    json_t *items = root;
    if (json_is_object(root)) {
        items = json_object_get(root, "items");
        json_t *inst = json_object_get(root, "instrument");
        if (json_is_string(inst) && !(q->instrument = strdup(json_string_value(inst)))) st = pt_error(PT_ERR_OOM, "out of memory");
        json_t *opts = json_object_get(root, "answers");
        if (!opts) opts = json_object_get(root, "options");
        if (!st && opts) {
            if (!json_is_array(opts) || json_array_size(opts) < 2 || json_array_size(opts) > MAX_OPTIONS) {
                st = pt_error(PT_ERR_FORMAT, "%s: \"answers\" must be an array of 2 to %d labels", label, MAX_OPTIONS);
            } else {
                size_t n = json_array_size(opts);
                q->options = calloc(n, sizeof(char *));
                if (!q->options) st = pt_error(PT_ERR_OOM, "out of memory");
                for (size_t i = 0; !st && i < n; i++) {
                    json_t *l = json_array_get(opts, i);
                    if (!json_is_string(l) || !json_string_value(l)[0]) { st = pt_error(PT_ERR_FORMAT, "%s: answer option %zu is not a non-empty string", label, i); break; }
                    if (!(q->options[i] = dup_trim(json_string_value(l)))) st = pt_error(PT_ERR_OOM, "out of memory");
                    else q->n_options = (int)i + 1;
                }
            }
        }
    }
    if (!st && !json_is_array(items)) st = pt_error(PT_ERR_FORMAT, "%s: expected an array of items (or an object with \"items\")", label);
    static const char *const id_keys[] = {"id", "item_id", "pct_id", "qid", NULL};
    static const char *const st_keys[] = {"statement", "question", "text", "prompt", "proposition", NULL};
    static const char *const note_keys[] = {"note", "section", "category", NULL};
    for (size_t i = 0; !st && i < json_array_size(items); i++) {
        json_t *it = json_array_get(items, i);
        char where[600];
        snprintf(where, sizeof where, "%s: item %zu", label, i + 1);
        if (json_is_string(it)) { st = add_item(q, NULL, json_string_value(it), NULL, where); continue; }
        if (!json_is_object(it)) { st = pt_error(PT_ERR_FORMAT, "%s: not an object or a string", where); break; }
        const char *id = json_str_any(it, id_keys);
        char idbuf[32];
        for (int k = 0; !id && id_keys[k]; k++) {
            json_t *v = json_object_get(it, id_keys[k]);
            if (json_is_integer(v)) { snprintf(idbuf, sizeof idbuf, "%lld", (long long)json_integer_value(v)); id = idbuf; }
        }
        const char *s = json_str_any(it, st_keys);
        if (!s) { st = pt_error(PT_ERR_FORMAT, "%s: no statement (\"statement\" or \"question\" string)", where); break; }
        st = add_item(q, id, s, json_str_any(it, note_keys), where);
        json_t *eff = json_object_get(it, "effect");
        if (!eff) eff = json_object_get(it, "effects");
        if (!st && eff) {
            if (!json_is_object(eff)) { st = pt_error(PT_ERR_FORMAT, "%s: \"effect\" must be an object {axis: number}", where); break; }
            const char *axis;
            json_t *v;
            json_object_foreach(eff, axis, v) {
                if (!json_is_number(v)) { st = pt_error(PT_ERR_FORMAT, "%s: effect on '%s' is not a number", where, axis); break; }
                if ((st = add_effect(&q->items[q->n_items - 1], axis, json_number_value(v), where))) break;
            }
        }
    }
    json_decref(root);
    return st;
}

static pt_status parse_txt(pt_questionnaire *q, const char *text, size_t len, const char *label) {
    size_t i = 0;
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) i = 3;
    int line = 1;
    while (i < len) {
        size_t j = i;
        while (j < len && text[j] != '\n') j++;
        char *s = malloc(j - i + 1);
        if (!s) return pt_error(PT_ERR_OOM, "out of memory");
        memcpy(s, text + i, j - i);
        s[j - i] = 0;
        pt_status st = PT_OK;
        if (strlen(s) != j - i) st = pt_error(PT_ERR_FORMAT, "%s:%d: NUL byte in text", label, line);
        char *t = st ? NULL : dup_trim(s);
        if (!st && !t) st = pt_error(PT_ERR_OOM, "out of memory");
        if (!st && t[0]) {
            char where[600];
            snprintf(where, sizeof where, "%s:%d", label, line);
            st = add_item(q, NULL, t, NULL, where);
        }
        free(t);
        free(s);
        if (st) return st;
        i = j + 1;
        line++;
    }
    return PT_OK;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcasecmp(s + n - m, suffix);
}

/* Ids must be unique; sorting (id, index) pairs finds repeats in n log n. */
typedef struct { const char *id; int idx; } id_ref;
static int cmp_id(const void *a, const void *b) {
    const id_ref *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

static pt_status check_unique_ids(const pt_questionnaire *q, const char *label) {
    id_ref *r = malloc(sizeof *r * (size_t)q->n_items);
    if (!r) return pt_error(PT_ERR_OOM, "out of memory");
    for (int i = 0; i < q->n_items; i++) r[i] = (id_ref){q->items[i].id, i};
    qsort(r, (size_t)q->n_items, sizeof *r, cmp_id);
    pt_status st = PT_OK;
    for (int k = 1; k < q->n_items && !st; k++)
        if (!strcmp(r[k].id, r[k - 1].id))
            st = pt_error(PT_ERR_FORMAT, "%s: item id '%s' appears twice (items %d and %d)", label, r[k].id, r[k - 1].idx + 1,
                          r[k].idx + 1);
    free(r);
    return st;
}

pt_status pt_questionnaire_parse(pt_questionnaire **out, const char *text, size_t len, const char *label,
                                 pt_qformat fmt) {
    *out = NULL;
    if (!label) label = "questionnaire";
    pt_questionnaire *q = calloc(1, sizeof *q);
    if (!q || !(q->path = strdup(label))) { free(q); return pt_error(PT_ERR_OOM, "out of memory"); }
    if (fmt == PT_QFMT_AUTO) {
        if (ends_with(label, ".json")) fmt = PT_QFMT_JSON;
        else if (ends_with(label, ".csv")) fmt = PT_QFMT_CSV;
        else if (ends_with(label, ".txt")) fmt = PT_QFMT_TXT;
        else {
            size_t i = 0;
            while (i < len && (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t')) i++;
            fmt = i < len && (text[i] == '[' || text[i] == '{') ? PT_QFMT_JSON : PT_QFMT_CSV;
        }
    }
    pt_status st = fmt == PT_QFMT_JSON ? parse_json(q, text, len, label)
                 : fmt == PT_QFMT_TXT  ? parse_txt(q, text, len, label)
                                       : parse_csv(q, text, len, label);
    if (!st && q->n_items == 0) st = pt_error(PT_ERR_FORMAT, "%s: the questionnaire has no items", label);
    if (!st) st = check_unique_ids(q, label);
    if (st) { pt_questionnaire_free(q); return st; }
    *out = q;
    return PT_OK;
}

pt_status pt_questionnaire_load(pt_questionnaire **out, const char *path) {
    *out = NULL;
    char *text;
    size_t len;
    pt_status st = pt_file_read_all(path, &text, &len);
    if (st) return pt_error_wrap(st, "questionnaire: ");
    st = pt_questionnaire_parse(out, text, len, path, PT_QFMT_AUTO);
    free(text);
    return st;
}
