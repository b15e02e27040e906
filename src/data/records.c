/* Reading input records from CSV or JSONL, with ids, duplicate dropping and per-record
 * error reporting (see records.h). */
#include "data/records.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "format/csv.h"
#include "data/idset.h"
#include "data/jsonl.h"
#include "util/file.h"
#include "util/utf8.h"

json_t *pt_record_get(json_t *fields, const char *name) {
    json_t *v = json_object_get(fields, name);
    if (v || !strchr(name, '.')) return v;
    char buf[256];
    const char *p = name;
    v = fields;
    while (v && *p) {
        size_t k = strcspn(p, ".");
        if (k >= sizeof buf) return NULL;
        memcpy(buf, p, k);
        buf[k] = 0;
        v = json_object_get(v, buf);
        p += k + (p[k] == '.');
    }
    return v;
}

void pt_records_note(pt_recordset *rs, const char *fmt, ...) {
    if (rs->n_issues >= PT_MAX_ISSUES) return;
    char **iss = realloc(rs->issues, sizeof *iss * (rs->n_issues + 1));
    if (!iss) return;
    rs->issues = iss;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&iss[rs->n_issues], fmt, ap) >= 0) rs->n_issues++;
    va_end(ap);
}

pt_status pt_records_append(pt_recordset *rs, const char *id, const char *text, json_t *fields, int line) {
    if (rs->n == rs->cap) {
        int cap = rs->cap ? rs->cap * 2 : 256;
        pt_record *r = realloc(rs->rec, sizeof *r * cap);
        if (!r) { json_decref(fields); return pt_error(PT_ERR_OOM, "out of memory"); }
        rs->rec = r;
        rs->cap = cap;
    }
    pt_record *r = &rs->rec[rs->n];
    if (id) snprintf(r->id, sizeof r->id, "%s", id);
    else pt_data_id(r->id, text, strlen(text));
    r->text = strdup(text);
    r->fields = fields;
    r->line = line;
    if (!r->text) { json_decref(fields); return pt_error(PT_ERR_OOM, "out of memory"); }
    rs->n++;
    return PT_OK;
}

/* Counts a malformed record and says why. */
static void skip(pt_recordset *rs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void skip(pt_recordset *rs, const char *fmt, ...) {
    rs->n_bad++;
    if (rs->n_issues >= PT_MAX_ISSUES) return;
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    int ok = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (ok >= 0) pt_records_note(rs, "%s", msg);
    free(msg);
}

/* Checks the text and adds the record (taking `fields`); false only when out of memory. */
static bool add(pt_recordset *rs, pt_idset *seen, const char *label, int line, const char *text, json_t *fields,
                const pt_read_opts *o) {
    size_t n = strlen(text), a = 0;
    while (a < n && (text[a] == ' ' || text[a] == '\t' || text[a] == '\n' || text[a] == '\r')) a++;
    if (a == n) {
        skip(rs, "%s:%d: the '%s' field is empty", label, line, o->text_field);
        json_decref(fields);
        return true;
    }
    char id[17];
    pt_data_id(id, text, n);
    if (!o->keep_dups) {
        int added = pt_idset_add(seen, id);
        if (added < 0) { json_decref(fields); return false; }
        if (added == 0) {
            rs->n_dup++;
            pt_records_note(rs, "%s:%d: exact duplicate of an earlier record (id %s), dropped", label, line, id);
            json_decref(fields);
            return true;
        }
    }
    return pt_records_append(rs, id, text, fields, line) == PT_OK;
}

static pt_status parse_csv(pt_recordset *rs, pt_idset *seen, const char *text, size_t len, const char *label, const pt_read_opts *o) {
    pt_csv_reader r;
    PT_TRY(pt_csv_reader_init(&r, text, len, o->delim, label));
    char **f;
    int nf, line;
    bool got;
    pt_status st = pt_csv_reader_next(&r, &f, &nf, &line, &got);
    if (st || !got) {
        pt_csv_reader_free(&r);
        return st ? pt_error_wrap(st, "header: ") : pt_error(PT_ERR_FORMAT, "%s: no header line", label);
    }
    int n_cols = nf, text_col = -1;
    char **cols = calloc((size_t)n_cols, sizeof *cols);
    if (!cols) { pt_csv_reader_free(&r); return pt_error(PT_ERR_OOM, "out of memory"); }
    for (int i = 0; i < n_cols; i++) {
        cols[i] = strdup(f[i]);
        if (cols[i] && !strcmp(cols[i], o->text_field)) text_col = i;
    }
    if (text_col < 0) {
        char list[512] = "";
        for (int i = 0; i < n_cols && strlen(list) < 400; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s'%s'", i ? ", " : "", cols[i] ? cols[i] : "");
        st = pt_error(PT_ERR_FORMAT, "%s:1: no column '%s' in the header (columns: %s; delimiter '%s')", label, o->text_field, list,
                      r.delim == '\t' ? "\\t" : (char[]){r.delim, 0});
    }
    while (!st && (!o->limit || rs->n < o->limit)) {
        pt_status rst = pt_csv_reader_next(&r, &f, &nf, &line, &got);
        if (rst == PT_ERR_OOM) { st = rst; break; }
        if (rst) {
            rs->n_read++;
            skip(rs, "%s", pt_errmsg());
            continue;
        }
        if (!got) break;
        rs->n_read++;
        if (nf != n_cols) {
            skip(rs, "%s:%d: %d fields, the header has %d", label, line, nf, n_cols);
            continue;
        }
        long bad = -1;
        int bad_col = -1;
        for (int i = 0; i < nf && bad < 0; i++)
            if ((bad = pt_utf8_invalid_at(f[i], strlen(f[i]))) >= 0) bad_col = i;
        if (bad >= 0) {
            skip(rs, "%s:%d: field '%s' is not valid UTF-8 (byte %ld of the field)", label, line, cols[bad_col] ? cols[bad_col] : "?", bad);
            continue;
        }
        json_t *obj = json_object();
        for (int i = 0; obj && i < nf; i++)
            if (cols[i]) json_object_set_new(obj, cols[i], json_string(f[i]));
        if (!obj || !add(rs, seen, label, line, f[text_col], obj, o)) st = pt_error(PT_ERR_OOM, "out of memory");
    }
    for (int i = 0; i < n_cols; i++) free(cols[i]);
    free(cols);
    pt_csv_reader_free(&r);
    return st;
}

/* A JSON object as a record (taking obj): its text field must be a string. `where` names it
 * in messages. False only when out of memory. */
static bool add_object(pt_recordset *rs, pt_idset *seen, const char *label, const char *where, int line, json_t *obj,
                       const pt_read_opts *o) {
    rs->n_read++;
    json_t *t = pt_record_get(obj, o->text_field);
    if (!json_is_string(t)) {
        skip(rs, "%s: %s '%s' field", where, t ? "a non-string" : "no", o->text_field);
        json_decref(obj);
        return true;
    }
    return add(rs, seen, label, line, json_string_value(t), obj, o);
}

static pt_status parse_jsonl(pt_recordset *rs, pt_idset *seen, const char *text, size_t len, const char *label, const pt_read_opts *o) {
    pt_jsonl_reader r;
    pt_jsonl_reader_init(&r, text, len, label);
    char where[600];
    /* a whole-file JSON array (e.g. the PoliTune chat JSON) is read element by element */
    size_t i = r.pos;
    while (i < len && (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t')) i++;
    if (i < len && text[i] == '[') {
        json_error_t e;
        json_t *arr = json_loadb(text, len, 0, &e);
        if (!arr) return pt_error(PT_ERR_FORMAT, "%s:%d: not valid JSON: %s", label, e.line, e.text);
        pt_status st = PT_OK;
        for (size_t k = 0; k < json_array_size(arr) && !st && (!o->limit || rs->n < o->limit); k++) {
            snprintf(where, sizeof where, "%s: element %zu", label, k + 1);
            if (!add_object(rs, seen, label, where, (int)k + 1, json_incref(json_array_get(arr, k)), o)) st = pt_error(PT_ERR_OOM, "out of memory");
        }
        json_decref(arr);
        return st;
    }
    while (!o->limit || rs->n < o->limit) {
        json_t *obj;
        int line;
        bool got;
        pt_status st = pt_jsonl_next(&r, &obj, &line, &got);
        if (st == PT_ERR_OOM) return st;
        if (st) {
            rs->n_read++;
            skip(rs, "%s", pt_errmsg());
            continue;
        }
        if (!got) break;
        snprintf(where, sizeof where, "%s:%d", label, line);
        if (!add_object(rs, seen, label, where, line, obj, o)) return pt_error(PT_ERR_OOM, "out of memory");
    }
    return PT_OK;
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcasecmp(s + a - b, suf);
}

pt_status pt_records_parse(pt_recordset *rs, const char *text, size_t len, const char *label, const pt_read_opts *o) {
    memset(rs, 0, sizeof *rs);
    if (!o->text_field || !*o->text_field) return pt_error(PT_ERR_ARG, "no text field given");
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t')) i++;
    if (i == len) return pt_error(PT_ERR_FORMAT, "%s: the file is empty", label);
    pt_data_format fmt = o->format;
    if (fmt == PT_FMT_AUTO) {
        if (ends_with(label, ".csv") || ends_with(label, ".tsv")) fmt = PT_FMT_CSV;
        else if (ends_with(label, ".jsonl") || ends_with(label, ".json") || ends_with(label, ".ndjson")) fmt = PT_FMT_JSONL;
        else {
            size_t k = len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3) ? 3 : 0;
            while (k < len && (text[k] == ' ' || text[k] == '\n' || text[k] == '\r' || text[k] == '\t')) k++;
            fmt = k < len && (text[k] == '{' || text[k] == '[') ? PT_FMT_JSONL : PT_FMT_CSV;
        }
    }
    if (!(rs->label = strdup(label))) return pt_error(PT_ERR_OOM, "out of memory");
    pt_idset seen;
    pt_idset_init(&seen);
    pt_status st = fmt == PT_FMT_CSV ? parse_csv(rs, &seen, text, len, label, o) : parse_jsonl(rs, &seen, text, len, label, o);
    pt_idset_free(&seen);
    if (st) pt_records_free(rs);
    return st;
}

pt_status pt_records_load(pt_recordset *rs, const char *path, const pt_read_opts *o) {
    memset(rs, 0, sizeof *rs);
    char *text = NULL;
    size_t len = 0;
    PT_TRY(pt_file_read_all(path, &text, &len));
    pt_status st = pt_records_parse(rs, text, len, path, o);
    free(text);
    return st;
}

void pt_records_free(pt_recordset *rs) {
    for (int i = 0; i < rs->n; i++) {
        free(rs->rec[i].text);
        json_decref(rs->rec[i].fields);
    }
    for (int i = 0; i < rs->n_issues; i++) free(rs->issues[i]);
    free(rs->rec);
    free(rs->issues);
    free(rs->label);
    memset(rs, 0, sizeof *rs);
}
