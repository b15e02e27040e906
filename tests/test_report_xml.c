/* The tests' minimal XML reader (see test_report_xml.h). */
#include "test_report_xml.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

static int name_char(char c) { return isalnum((unsigned char)c) || c == '-' || c == '_' || c == ':' || c == '.'; }

/* Checks an entity reference at s (after '&'); returns its length including ';' or 0. */
static size_t entity(const char *s) {
    static const char *const named[] = {"amp;", "lt;", "gt;", "quot;", "apos;"};
    for (int k = 0; k < 5; k++)
        if (!strncmp(s, named[k], strlen(named[k]))) return strlen(named[k]);
    if (s[0] == '#') {
        size_t j = 1;
        int hex = s[1] == 'x';
        j += (size_t)hex;
        size_t d = j;
        while (hex ? isxdigit((unsigned char)s[j]) : isdigit((unsigned char)s[j])) j++;
        if (j > d && s[j] == ';') return j + 1;
    }
    return 0;
}

static int parse_text(xml_doc *d, char stop) {
    while (d->s[d->i] && d->s[d->i] != stop) {
        if (d->s[d->i] == '&') {
            size_t n = entity(d->s + d->i + 1);
            if (!n) { d->err = "bad entity"; return -1; }
            d->i += n + 1;
        } else if (stop == '<' && d->s[d->i] == '>') {
            d->i++; /* allowed in text */
        } else if (stop != '<' && d->s[d->i] == '<') {
            d->err = "'<' in attribute";
            return -1;
        } else {
            d->i++;
        }
    }
    return 0;
}

static int parse_element(xml_doc *d, int depth) {
    if (depth > 64) { d->err = "too deep"; return -1; }
    d->i++; /* '<' */
    size_t n0 = d->i;
    while (name_char(d->s[d->i])) d->i++;
    if (d->i == n0) { d->err = "element without a name"; return -1; }
    char name[32];
    snprintf(name, sizeof name, "%.*s", (int)(d->i - n0), d->s + n0);
    if (d->n_elems == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 64;
        d->elems = realloc(d->elems, sizeof(xml_elem) * (size_t)d->cap);
    }
    int me = d->n_elems++;
    xml_elem *e = &d->elems[me];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    for (;;) {
        while (isspace((unsigned char)d->s[d->i])) d->i++;
        if (d->s[d->i] == '/' && d->s[d->i + 1] == '>') { d->i += 2; return 0; }
        if (d->s[d->i] == '>') { d->i++; break; }
        size_t a0 = d->i;
        while (name_char(d->s[d->i])) d->i++;
        if (d->i == a0) { d->err = "bad attribute"; return -1; }
        size_t a1 = d->i;
        if (d->s[d->i] != '=') { d->err = "attribute without '='"; return -1; }
        d->i++;
        char q = d->s[d->i];
        if (q != '"' && q != '\'') { d->err = "unquoted attribute"; return -1; }
        d->i++;
        size_t v0 = d->i;
        if (parse_text(d, q)) return -1;
        if (!d->s[d->i]) { d->err = "unterminated attribute"; return -1; }
        e = &d->elems[me];
        for (int k = 0; k < e->n_attr; k++)
            if (!strncmp(e->attr[k][0], d->s + a0, a1 - a0) && !e->attr[k][0][a1 - a0]) { d->err = "repeated attribute"; return -1; }
        if (e->n_attr < 16) {
            snprintf(e->attr[e->n_attr][0], 96, "%.*s", (int)(a1 - a0), d->s + a0);
            snprintf(e->attr[e->n_attr][1], 96, "%.*s", (int)(d->i - v0), d->s + v0);
            e->n_attr++;
        }
        d->i++;
    }
    for (;;) {
        if (parse_text(d, '<')) return -1;
        if (!d->s[d->i]) { d->err = "unclosed element"; return -1; }
        if (!strncmp(d->s + d->i, "<!--", 4)) {
            const char *end = strstr(d->s + d->i + 4, "-->");
            if (!end) { d->err = "unclosed comment"; return -1; }
            d->i = (size_t)(end - d->s) + 3;
            continue;
        }
        if (d->s[d->i + 1] == '/') {
            d->i += 2;
            size_t c0 = d->i;
            while (name_char(d->s[d->i])) d->i++;
            if (strlen(name) != d->i - c0 || strncmp(name, d->s + c0, d->i - c0)) { d->err = "mismatched closing tag"; return -1; }
            while (isspace((unsigned char)d->s[d->i])) d->i++;
            if (d->s[d->i] != '>') { d->err = "bad closing tag"; return -1; }
            d->i++;
            return 0;
        }
        if (parse_element(d, depth + 1)) return -1;
    }
}

/* Parses a whole document: optional declaration, one root element, nothing else. */
const char *xml_check(const char *s, xml_doc *d) {
    memset(d, 0, sizeof *d);
    d->s = s;
    if (!strncmp(s, "<?xml", 5)) {
        const char *e = strstr(s, "?>");
        if (!e) return "unterminated declaration";
        d->i = (size_t)(e - s) + 2;
    }
    while (isspace((unsigned char)s[d->i])) d->i++;
    if (s[d->i] != '<') return "no root element";
    if (parse_element(d, 0)) return d->err;
    while (isspace((unsigned char)s[d->i])) d->i++;
    if (s[d->i]) return "content after the root element";
    return NULL;
}

const char *xml_attr(const xml_elem *e, const char *name) {
    for (int k = 0; k < e->n_attr; k++)
        if (!strcmp(e->attr[k][0], name)) return e->attr[k][1];
    return NULL;
}

const xml_elem *xml_find_point(const xml_doc *d, const char *x, const char *y) {
    for (int i = 0; i < d->n_elems; i++) {
        const xml_elem *e = &d->elems[i];
        const char *c = xml_attr(e, "class"), *ax = xml_attr(e, "data-x"), *ay = xml_attr(e, "data-y");
        if (!strcmp(e->name, "circle") && c && !strcmp(c, "point") && ax && ay && !strcmp(ax, x) && !strcmp(ay, y)) return e;
    }
    return NULL;
}

void xmllint_ok(const char *path) {
    if (system("command -v xmllint >/dev/null 2>&1") != 0) return;
    char *err = NULL;
    int rc = pt_test_run(NULL, &err, "xmllint --noout '%s'", path);
    CHECK_MSG(rc == 0, "xmllint %s: %s", path, err ? err : "");
    free(err);
}

int xml_count_class(const xml_doc *d, const char *cls) {
    int n = 0;
    for (int i = 0; i < d->n_elems; i++) {
        const char *c = xml_attr(&d->elems[i], "class");
        n += c && !strcmp(c, cls);
    }
    return n;
}
