/* Loading, checking and filling prompt templates (see prompts.h). */
#include "data/prompts.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/file.h"

const char *const pt_scale_labels[9] = {"1", "2", "3", "4", "5", "6", "7", "8", "9"};

/* Appends to a growing buffer; false when out of memory. */
static int grow(char **b, size_t *len, size_t *cap, const char *s, size_t n) {
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 256;
        while (c < *len + n + 1) c *= 2;
        char *t = realloc(*b, c);
        if (!t) return 0;
        *b = t;
        *cap = c;
    }
    memcpy(*b + *len, s, n);
    *len += n;
    (*b)[*len] = 0;
    return 1;
}

/* Walks a template, checking each placeholder against `allowed` (space-separated names;
 * NULL: any) and, when `out` is given, writing the template with values filled in. */
static pt_status walk(const char *tmpl, const char *label, const char *allowed, const char *const *names, const char *const *values, int n,
                      char **out) {
    char *b = NULL;
    size_t len = 0, cap = 0;
    int line = 1;
    const char *p = tmpl;
    pt_status st = PT_OK;
    while (*p && !st) {
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            if (out && !grow(&b, &len, &cap, p, 1)) st = pt_error(PT_ERR_OOM, "out of memory");
            p += 2;
            continue;
        }
        if (*p == '{') {
            const char *e = p + 1;
            while (*e && *e != '}' && *e != '{' && *e != '\n') e++;
            if (*e != '}') { st = pt_error(PT_ERR_FORMAT, "%s:%d: a '{' without its '}' (write '{{' for a literal brace)", label, line); break; }
            size_t k = (size_t)(e - p - 1);
            char name[64];
            if (k == 0 || k >= sizeof name) { st = pt_error(PT_ERR_FORMAT, "%s:%d: a bad placeholder '%.*s'", label, line, (int)(e - p + 1), p); break; }
            memcpy(name, p + 1, k);
            name[k] = 0;
            if (allowed) {
                const char *a = allowed;
                bool ok = false;
                while (*a && !ok) {
                    size_t w = strcspn(a, " ");
                    ok = w == k && !strncmp(a, name, k);
                    a += w + (a[w] == ' ');
                }
                if (!ok) { st = pt_error(PT_ERR_FORMAT, "%s:%d: unknown placeholder {%s} (this template can use: %s)", label, line, name, allowed); break; }
            }
            if (out) {
                int i = 0;
                while (i < n && strcmp(names[i], name)) i++;
                if (i == n) { st = pt_error(PT_ERR_FORMAT, "%s:%d: placeholder {%s} has no value here", label, line, name); break; }
                if (!grow(&b, &len, &cap, values[i], strlen(values[i]))) st = pt_error(PT_ERR_OOM, "out of memory");
            }
            p = e + 1;
            continue;
        }
        if (*p == '}') { st = pt_error(PT_ERR_FORMAT, "%s:%d: a '}' without its '{' (write '}}' for a literal brace)", label, line); break; }
        if (*p == '\n') line++;
        if (out && !grow(&b, &len, &cap, p, 1)) st = pt_error(PT_ERR_OOM, "out of memory");
        p++;
    }
    if (st) { free(b); return st; }
    if (out) {
        if (!b && !(b = strdup(""))) return pt_error(PT_ERR_OOM, "out of memory");
        while (len && (b[len - 1] == '\n' || b[len - 1] == '\r' || b[len - 1] == ' ')) b[--len] = 0;
        *out = b;
    }
    return PT_OK;
}

pt_status pt_prompt_fill(const char *tmpl, const char *label, const char *const *names, const char *const *values, int n, char **out) {
    *out = NULL;
    return walk(tmpl, label, NULL, names, values, n, out);
}

pt_status pt_prompt_check(pt_prompt_kind k, const char *tmpl, const char *label) {
    return walk(tmpl, label, pt_prompt_defaults[k].placeholders, NULL, NULL, 0, NULL);
}

pt_status pt_prompts_load(pt_prompts *p, const char *dir) {
    memset(p, 0, sizeof *p);
    pt_status st = PT_OK;
    if (dir && !pt_dir_exists(dir)) return pt_error(PT_ERR_IO, "%s: no such prompts directory", dir);
    for (int k = 0; k < PT_PROMPT_COUNT && !st; k++) {
        char *path = dir ? pt_path_join(dir, pt_prompt_defaults[k].file) : NULL;
        if (path && pt_file_exists(path)) {
            size_t n;
            st = pt_file_read_all(path, &p->text[k], &n);
            p->source[k] = path;
            path = NULL;
        } else {
            p->text[k] = strdup(pt_prompt_defaults[k].text);
            p->source[k] = strdup("built-in");
            if (!p->text[k] || !p->source[k]) st = pt_error(PT_ERR_OOM, "out of memory");
        }
        free(path);
        if (!st) st = pt_prompt_check((pt_prompt_kind)k, p->text[k], !strcmp(p->source[k], "built-in") ? pt_prompt_defaults[k].file : p->source[k]);
    }
    if (st) pt_prompts_free(p);
    return st;
}

void pt_prompts_free(pt_prompts *p) {
    for (int k = 0; k < PT_PROMPT_COUNT; k++) {
        free(p->text[k]);
        free(p->source[k]);
    }
    memset(p, 0, sizeof *p);
}
