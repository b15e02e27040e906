/* CSV: streaming reading with per-record error recovery, whole-file parsing on top of it,
 * and the quoting writer (see csv.h). */
#include "format/csv.h"

#include <stdlib.h>
#include <string.h>

static char detect_delim(const char *t, size_t n) {
    size_t c = 0, s = 0, tab = 0;
    bool q = false;
    for (size_t i = 0; i < n && (q || t[i] != '\n'); i++) {
        if (t[i] == '"') q = !q;
        else if (!q) c += t[i] == ',', s += t[i] == ';', tab += t[i] == '\t';
    }
    if (s > c && s >= tab) return ';';
    if (tab > c && tab > s) return '\t';
    return ',';
}

pt_status pt_csv_reader_init(pt_csv_reader *r, const char *text, size_t len, char delim, const char *label) {
    memset(r, 0, sizeof *r);
    r->label = label ? label : "csv";
    r->text = text;
    r->len = len;
    r->line = 1;
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) r->pos = 3;
    r->delim = delim ? delim : detect_delim(text + r->pos, len - r->pos);
    if (r->delim == '"' || r->delim == '\n' || r->delim == '\r') return pt_error(PT_ERR_ARG, "%s: invalid CSV delimiter", r->label);
    return PT_OK;
}

void pt_csv_reader_free(pt_csv_reader *r) {
    free(r->buf);
    free(r->offs);
    free(r->fields);
    memset(r, 0, sizeof *r);
}

static bool put(pt_csv_reader *r, char c) {
    if (r->buf_len == r->buf_cap) {
        size_t cap = r->buf_cap ? r->buf_cap * 2 : 256;
        char *b = realloc(r->buf, cap);
        if (!b) return false;
        r->buf = b;
        r->buf_cap = cap;
    }
    r->buf[r->buf_len++] = c;
    return true;
}

static bool start_field(pt_csv_reader *r) {
    if (r->n == r->cap) {
        int cap = r->cap ? r->cap * 2 : 16;
        size_t *o = realloc(r->offs, sizeof *o * cap);
        if (!o) return false;
        r->offs = o;
        r->cap = cap;
    }
    r->offs[r->n++] = r->buf_len;
    return true;
}

/* Skips to the start of the next line (quotes ignored): recovery after a bad record. */
static void skip_line(pt_csv_reader *r) {
    while (r->pos < r->len && r->text[r->pos] != '\n') r->pos++;
    if (r->pos < r->len) { r->pos++; r->line++; }
}

static bool at_eol(const pt_csv_reader *r, size_t *width) {
    const char *t = r->text;
    if (r->pos < r->len && t[r->pos] == '\n') { *width = 1; return true; }
    if (r->pos + 1 < r->len && t[r->pos] == '\r' && t[r->pos + 1] == '\n') { *width = 2; return true; }
    if (r->pos + 1 == r->len && t[r->pos] == '\r') { *width = 1; return true; }
    return false;
}

pt_status pt_csv_reader_next(pt_csv_reader *r, char ***fields, int *n_fields, int *line, bool *got) {
    *got = false;
    size_t w;
    while (r->pos < r->len && at_eol(r, &w)) { r->pos += w; r->line++; }
    if (r->pos >= r->len) return PT_OK;
    const char *t = r->text;
    const int start = r->line;
    r->n = 0;
    r->buf_len = 0;
    for (;;) {
        if (!start_field(r)) return pt_error(PT_ERR_OOM, "out of memory");
        if (r->pos < r->len && t[r->pos] == '"') {
            int open_line = r->line;
            r->pos++;
            for (;;) {
                if (r->pos >= r->len)
                    return pt_error(PT_ERR_FORMAT, "%s:%d: broken quoting: the quoted field opened on line %d is never closed (not closed at the end of the text)", r->label,
                                    start, open_line);
                char c = t[r->pos];
                if (c == '"') {
                    if (r->pos + 1 < r->len && t[r->pos + 1] == '"') {
                        if (!put(r, '"')) return pt_error(PT_ERR_OOM, "out of memory");
                        r->pos += 2;
                        continue;
                    }
                    r->pos++;
                    break;
                }
                if (c == '\n') r->line++;
                if (!put(r, c)) return pt_error(PT_ERR_OOM, "out of memory");
                r->pos++;
            }
            if (r->pos < r->len && t[r->pos] != r->delim && !at_eol(r, &w)) {
                int bad = r->line;
                skip_line(r);
                return pt_error(PT_ERR_FORMAT, "%s:%d: broken quoting: unexpected character after the closing quote of a field", r->label,
                                bad);
            }
        } else {
            while (r->pos < r->len && t[r->pos] != r->delim && !at_eol(r, &w)) {
                if (!put(r, t[r->pos])) return pt_error(PT_ERR_OOM, "out of memory");
                r->pos++;
            }
        }
        if (!put(r, 0)) return pt_error(PT_ERR_OOM, "out of memory");
        if (r->pos < r->len && t[r->pos] == r->delim) { r->pos++; continue; }
        if (r->pos < r->len && at_eol(r, &w)) { r->pos += w; r->line++; }
        break;
    }
    char **f = realloc(r->fields, sizeof *f * r->n);
    if (!f) return pt_error(PT_ERR_OOM, "out of memory");
    r->fields = f;
    for (int i = 0; i < r->n; i++) f[i] = r->buf + r->offs[i];
    *fields = f;
    *n_fields = r->n;
    *line = start;
    *got = true;
    return PT_OK;
}

static void record_free(pt_csv_record *r) {
    for (int i = 0; i < r->n_fields; i++) free(r->fields[i]);
    free(r->fields);
    memset(r, 0, sizeof *r);
}

/* A copy of the reader's current record, appended to c. */
static pt_status keep_record(pt_csv *c, char **fields, int n, int line) {
    pt_csv_record *nr = realloc(c->records, sizeof *nr * (size_t)(c->n_records + 1));
    if (!nr) return pt_error(PT_ERR_OOM, "out of memory (%zu bytes for CSV records)", sizeof *nr * (size_t)(c->n_records + 1));
    c->records = nr;
    pt_csv_record r = {.n_fields = 0, .fields = calloc((size_t)n, sizeof(char *)), .line = line};
    if (!r.fields) return pt_error(PT_ERR_OOM, "out of memory (%zu bytes for a CSV record)", sizeof(char *) * (size_t)n);
    for (; r.n_fields < n; r.n_fields++)
        if (!(r.fields[r.n_fields] = strdup(fields[r.n_fields]))) {
            record_free(&r);
            return pt_error(PT_ERR_OOM, "out of memory (a CSV field of %zu bytes)", strlen(fields[r.n_fields]) + 1);
        }
    c->records[c->n_records++] = r;
    return PT_OK;
}

pt_status pt_csv_parse(pt_csv *out, const char *text, size_t len, const char *label) {
    memset(out, 0, sizeof *out);
    const char *nul = memchr(text, 0, len);
    if (nul) {
        int line = 1;
        for (const char *p = text; p < nul; p++) line += *p == '\n';
        return pt_error(PT_ERR_FORMAT, "%s:%d: NUL byte in CSV text", label, line);
    }
    pt_csv_reader r;
    pt_status st = pt_csv_reader_init(&r, text, len, ',', label);
    for (bool got = true; !st && got;) {
        char **f;
        int n, line;
        st = pt_csv_reader_next(&r, &f, &n, &line, &got);
        if (!st && got) st = keep_record(out, f, n, line);
    }
    pt_csv_reader_free(&r);
    if (st) pt_csv_free(out);
    return st;
}

void pt_csv_free(pt_csv *c) {
    for (int i = 0; i < c->n_records; i++) record_free(&c->records[i]);
    free(c->records);
    memset(c, 0, sizeof *c);
}

void pt_csv_write_field(FILE *f, const char *s) {
    if (!s) s = "";
    size_t n = strlen(s);
    int need = strpbrk(s, ",\"\r\n") != NULL || (n && (s[0] == ' ' || s[n - 1] == ' '));
    if (!need) { fputs(s, f); return; }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}
