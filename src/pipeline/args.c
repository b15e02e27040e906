/* String lists for stage command lines (see pt_run_args.h). */
#include "pipeline/args.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

pt_status pt_run_args_push(pt_run_args *a, const char *s) {
    if (a->n + 2 > a->cap) {
        int nc = a->cap ? a->cap * 2 : 16;
        char **v = realloc(a->v, sizeof *v * (size_t)nc);
        if (!v) return pt_error(PT_ERR_OOM, "out of memory");
        a->v = v;
        a->cap = nc;
    }
    if (!(a->v[a->n] = strdup(s))) return pt_error(PT_ERR_OOM, "out of memory");
    a->v[++a->n] = NULL;
    return PT_OK;
}

pt_status pt_run_args_pushf(pt_run_args *a, const char *fmt, ...) {
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf) return pt_error(PT_ERR_ARG, "argument too long");
    return pt_run_args_push(a, buf);
}

pt_status pt_run_args_append(pt_run_args *a, const pt_run_args *b) {
    for (int i = 0; i < b->n; i++) PT_TRY(pt_run_args_push(a, b->v[i]));
    return PT_OK;
}

void pt_run_args_free(pt_run_args *a) {
    for (int i = 0; i < a->n; i++) free(a->v[i]);
    free(a->v);
    *a = (pt_run_args){0};
}

/* Plain words need no quotes; anything else goes in single quotes, with ' as '\''. */
static bool plain(const char *s) {
    if (!*s) return false;
    for (; *s; s++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%", *s)) return false;
    return true;
}

char *pt_run_args_shell(const pt_run_args *a) {
    size_t cap = 1;
    for (int i = 0; i < a->n; i++) cap += strlen(a->v[i]) * 4 + 3;
    char *s = malloc(cap), *p = s;
    if (!s) return NULL;
    for (int i = 0; i < a->n; i++) {
        if (i) *p++ = ' ';
        if (plain(a->v[i])) {
            p += sprintf(p, "%s", a->v[i]);
            continue;
        }
        *p++ = '\'';
        for (const char *c = a->v[i]; *c; c++) {
            if (*c == '\'') { memcpy(p, "'\\''", 4); p += 4; }
            else *p++ = *c;
        }
        *p++ = '\'';
    }
    *p = 0;
    return s;
}
