/* RFC 4180 CSV reader and a minimal quoting writer (see csv.h). The reader is a small state
 * machine over bytes so that it is easy to fuzz: every input either parses or is rejected
 * with a line number, never read past its length. */
#include "eval/csv.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char *buf;
    size_t len, cap;
} sbuf;

static int sbuf_put(sbuf *b, char c) {
    if (b->len + 1 >= b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 64;
        char *nb = realloc(b->buf, nc);
        if (!nb) return -1;
        b->buf = nb;
        b->cap = nc;
    }
    b->buf[b->len++] = c;
    b->buf[b->len] = 0;
    return 0;
}

static char *sbuf_take(sbuf *b) {
    char *s = b->buf ? b->buf : calloc(1, 1);
    b->buf = NULL;
    b->len = b->cap = 0;
    return s;
}

static void record_free(pt_csv_record *r) {
    for (int i = 0; i < r->n_fields; i++) free(r->fields[i]);
    free(r->fields);
    r->fields = NULL;
    r->n_fields = 0;
}

static int record_push(pt_csv_record *r, char *field) {
    if (!field) return -1;
    char **nf = realloc(r->fields, sizeof(char *) * (size_t)(r->n_fields + 1));
    if (!nf) { free(field); return -1; }
    r->fields = nf;
    r->fields[r->n_fields++] = field;
    return 0;
}

static int csv_push(pt_csv *c, pt_csv_record *r) {
    /* a record that is one empty field is an empty line: skip it */
    if (r->n_fields == 1 && !r->fields[0][0]) { record_free(r); return 0; }
    pt_csv_record *nr = realloc(c->records, sizeof *nr * (size_t)(c->n_records + 1));
    if (!nr) { record_free(r); return -1; }
    c->records = nr;
    c->records[c->n_records++] = *r;
    memset(r, 0, sizeof *r);
    return 0;
}

pt_status pt_csv_parse(pt_csv *out, const char *text, size_t len, const char *label) {
    memset(out, 0, sizeof *out);
    size_t i = 0;
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) i = 3;
    int line = 1;
    pt_csv_record rec = {0};
    rec.line = 1;
    sbuf field = {0};
    int quoted = 0, oom = 0;
    while (i < len && !oom) {
        char ch = text[i];
        if (ch == 0) {
            free(field.buf);
            record_free(&rec);
            pt_csv_free(out);
            return pt_error(PT_ERR_FORMAT, "%s:%d: NUL byte in CSV text", label, line);
        }
        if (quoted) {
            if (ch == '"') {
                if (i + 1 < len && text[i + 1] == '"') { oom |= sbuf_put(&field, '"'); i += 2; continue; }
                quoted = 0;
                i++;
                /* after a closing quote only a separator or end of record may follow */
                if (i < len && text[i] != ',' && text[i] != '\n' && text[i] != '\r') {
                    free(field.buf);
                    record_free(&rec);
                    pt_csv_free(out);
                    return pt_error(PT_ERR_FORMAT, "%s:%d: unexpected character after a closing quote", label, line);
                }
                continue;
            }
            if (ch == '\n') line++;
            oom |= sbuf_put(&field, ch);
            i++;
            continue;
        }
        if (ch == '"' && field.len == 0) { quoted = 1; i++; continue; }
        if (ch == ',') { oom |= record_push(&rec, sbuf_take(&field)); i++; continue; }
        if (ch == '\r' || ch == '\n') {
            if (ch == '\r' && i + 1 < len && text[i + 1] == '\n') i++;
            i++;
            oom |= record_push(&rec, sbuf_take(&field));
            if (!oom) oom |= csv_push(out, &rec);
            line++;
            rec.line = line;
            continue;
        }
        oom |= sbuf_put(&field, ch);
        i++;
    }
    if (!oom && quoted) {
        free(field.buf);
        record_free(&rec);
        pt_csv_free(out);
        return pt_error(PT_ERR_FORMAT, "%s:%d: quoted field not closed at end of file", label, rec.line);
    }
    if (!oom && (field.len > 0 || rec.n_fields > 0)) {
        oom |= record_push(&rec, sbuf_take(&field));
        if (!oom) oom |= csv_push(out, &rec);
    }
    free(field.buf);
    record_free(&rec);
    if (oom) { pt_csv_free(out); return pt_error(PT_ERR_OOM, "%s: out of memory reading CSV", label); }
    return PT_OK;
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
