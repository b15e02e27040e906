/* Parsing answer vectors given on the command line or in a JSON file (see answer_vector.h). */
#include "eval/answer_vector.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static int find_id(const pt_scoring *s, const pt_questionnaire *q, const char *id) {
    if (q) return pt_questionnaire_find(q, id);
    for (int i = 0; s->ids && i < s->n_items; i++)
        if (!strcmp(s->ids[i], id)) return i;
    return -1;
}

static pt_status parse_value(const pt_scoring *s, const char *v, size_t n, int *out, const char *what) {
    char b[64];
    if (n == 0 || n >= sizeof b) return pt_error(PT_ERR_ARG, "%s: '%.*s' is not an answer 0..%d", what, (int)(n < 40 ? n : 40), v, s->n_answers - 1);
    memcpy(b, v, n);
    b[n] = 0;
    char *end;
    errno = 0;
    long x = strtol(b, &end, 10);
    if (end == b || *end || errno) return pt_error(PT_ERR_ARG, "%s: '%s' is not an answer 0..%d", what, b, s->n_answers - 1);
    if (x < 0 || x >= s->n_answers) return pt_error(PT_ERR_ARG, "%s: answer %ld is outside 0..%d", what, x, s->n_answers - 1);
    *out = (int)x;
    return PT_OK;
}

static pt_status set_by_id(const pt_scoring *s, const pt_questionnaire *q, const char *id, int v, int *answers, char *seen) {
    if (!q && !s->ids)
        return pt_error(PT_ERR_ARG, "answers name item ids ('%s') but neither a questionnaire nor the scoring file %s lists ids", id, s->path);
    int i = find_id(s, q, id);
    if (i < 0) return pt_error(PT_ERR_ARG, "answer for unknown item id '%s'", id);
    if (seen[i]) return pt_error(PT_ERR_ARG, "item '%s' is answered twice", id);
    seen[i] = 1;
    answers[i] = v;
    return PT_OK;
}

pt_status pt_answers_parse_list(const pt_scoring *s, const pt_questionnaire *q, const char *list, int *answers) {
    for (int i = 0; i < s->n_items; i++) answers[i] = -1;
    char *seen = calloc((size_t)s->n_items, 1);
    if (!seen) return pt_error(PT_ERR_OOM, "out of memory");
    pt_status st = PT_OK;
    int n = 0, with_ids = -1;
    const char *p = list;
    while (!st) {
        while (*p == ' ') p++;
        size_t len = strcspn(p, ",");
        size_t tl = len;
        while (tl && p[tl - 1] == ' ') tl--;
        const char *sep = memchr(p, ':', tl);
        if (!sep) sep = memchr(p, '=', tl);
        int has_id = sep != NULL;
        char what[300];
        snprintf(what, sizeof what, "answer %d", n + 1);
        if (with_ids >= 0 && has_id != with_ids) { st = pt_error(PT_ERR_ARG, "%s: mixes 'id:answer' entries with plain answers", what); break; }
        with_ids = has_id;
        if (has_id) {
            char id[256];
            size_t il = (size_t)(sep - p);
            if (il == 0 || il >= sizeof id) { st = pt_error(PT_ERR_ARG, "%s: bad item id", what); break; }
            memcpy(id, p, il);
            id[il] = 0;
            int v;
            snprintf(what, sizeof what, "item '%s'", id);
            st = parse_value(s, sep + 1, tl - il - 1, &v, what);
            if (!st) st = set_by_id(s, q, id, v, answers, seen);
        } else {
            if (n >= s->n_items) {
                int total = n;
                for (const char *r = p; *r; r++) total += *r == ',';
                st = pt_error(PT_ERR_ARG, "%d answers given, %s scores %d items", total + 1, s->path, s->n_items);
                break;
            }
            if (tl == 1 && p[0] == '-') answers[n] = -1;
            else st = parse_value(s, p, tl, &answers[n], what);
        }
        n++;
        if (!p[len]) break;
        p += len + 1;
    }
    if (!st && !with_ids && n != s->n_items) st = pt_error(PT_ERR_ARG, "%d answers given, %s scores %d items", n, s->path, s->n_items);
    free(seen);
    return st;
}

pt_status pt_answers_parse_json(const pt_scoring *s, const pt_questionnaire *q, const char *text, size_t len,
                                const char *label, int *answers) {
    for (int i = 0; i < s->n_items; i++) answers[i] = -1;
    json_error_t err;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (!root) return pt_error(PT_ERR_ARG, "%s:%d: invalid JSON: %s", label, err.line, err.text);
    char *seen = calloc((size_t)s->n_items, 1);
    pt_status st = seen ? PT_OK : pt_error(PT_ERR_OOM, "out of memory");
    json_t *arr = json_is_object(root) && json_is_array(json_object_get(root, "answers")) ? json_object_get(root, "answers") : root;
    if (!st && json_is_array(arr)) {
        if ((int)json_array_size(arr) != s->n_items)
            st = pt_error(PT_ERR_ARG, "%s: %zu answers given, %s scores %d items", label, json_array_size(arr), s->path, s->n_items);
        for (int i = 0; !st && i < s->n_items; i++) {
            json_t *v = json_array_get(arr, (size_t)i);
            if (json_is_null(v)) continue;
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= s->n_answers)
                st = pt_error(PT_ERR_ARG, "%s: answer %d is not an integer 0..%d (or null)", label, i + 1, s->n_answers - 1);
            else answers[i] = (int)json_integer_value(v);
        }
    } else if (!st && json_is_object(arr)) {
        const char *id;
        json_t *v;
        json_object_foreach(arr, id, v) {
            if (json_is_null(v)) continue;
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= s->n_answers) {
                st = pt_error(PT_ERR_ARG, "%s: item '%s': answer is not an integer 0..%d (or null)", label, id, s->n_answers - 1);
                break;
            }
            if ((st = set_by_id(s, q, id, (int)json_integer_value(v), answers, seen))) break;
        }
    } else if (!st) {
        st = pt_error(PT_ERR_ARG, "%s: expected an array of answers or an object {item id: answer}", label);
    }
    free(seen);
    json_decref(root);
    return st;
}
