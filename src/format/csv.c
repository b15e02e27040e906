/* Streaming CSV reading with per-record error recovery (see csv.h). */
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

pt_status pt_dcsv_init(pt_dcsv *r, const char *text, size_t len, char delim, const char *label) {
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

void pt_dcsv_free(pt_dcsv *r) {
    free(r->buf);
    free(r->offs);
    free(r->fields);
    memset(r, 0, sizeof *r);
}

static bool put(pt_dcsv *r, char c) {
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

static bool start_field(pt_dcsv *r) {
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
static void skip_line(pt_dcsv *r) {
    while (r->pos < r->len && r->text[r->pos] != '\n') r->pos++;
    if (r->pos < r->len) { r->pos++; r->line++; }
}

static bool at_eol(const pt_dcsv *r, size_t *width) {
    const char *t = r->text;
    if (r->pos < r->len && t[r->pos] == '\n') { *width = 1; return true; }
    if (r->pos + 1 < r->len && t[r->pos] == '\r' && t[r->pos + 1] == '\n') { *width = 2; return true; }
    if (r->pos + 1 == r->len && t[r->pos] == '\r') { *width = 1; return true; }
    return false;
}

pt_status pt_dcsv_next(pt_dcsv *r, char ***fields, int *n_fields, int *line, bool *got) {
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
                    return pt_error(PT_ERR_FORMAT, "%s:%d: broken quoting: the quoted field opened on line %d is never closed", r->label,
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
