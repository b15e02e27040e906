/* Checking recipe mappings against their key tables and turning them into stage flags,
 * parameters and input files (see run_keys.h). */
#include "pipeline/keys.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "assets/assets.h"
#include "util/file.h"

pt_status pt_run_err(const pt_run_ctx *c, int line, const char *key, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char where[64];
    if (line > 0) snprintf(where, sizeof where, ":%d", line);
    else snprintf(where, sizeof where, " (--set)");
    if (key) return pt_error(PT_ERR_ARG, "%s%s: %s: %s", c->label, where, key, msg);
    return pt_error(PT_ERR_ARG, "%s%s: %s", c->label, where, msg);
}

int pt_run_key_line(const pt_yaml_node *map, const char *key) {
    if (!map || map->kind != PT_YAML_MAP) return 0;
    for (int i = 0; i < map->n; i++)
        if (!strcmp(map->keys[i], key)) return map->key_lines[i];
    return 0;
}

static void join(char *buf, size_t n, const char *section, const char *key) {
    if (section && *section) snprintf(buf, n, "%s.%s", section, key);
    else snprintf(buf, n, "%s", key);
}

pt_status pt_run_keys_check(const pt_run_ctx *c, const pt_yaml_node *map, int line, const char *section, const pt_run_keydef *defs) {
    if (!map) return PT_OK;
    if (map->kind != PT_YAML_MAP) return pt_run_err(c, line, section, "expects a mapping of keys to values");
    for (int i = 0; i < map->n; i++) {
        bool known = false;
        for (const pt_run_keydef *d = defs; d->key && !known; d++) known = !strcmp(d->key, map->keys[i]);
        if (known) continue;
        char full[256], list[1024] = "";
        join(full, sizeof full, section, map->keys[i]);
        for (const pt_run_keydef *d = defs; d->key; d++) {
            size_t n = strlen(list);
            snprintf(list + n, sizeof list - n, "%s%s", n ? ", " : "", d->key);
        }
        return pt_run_err(c, map->key_lines[i], NULL, "unknown key '%s' (known here: %s)", full, list);
    }
    return PT_OK;
}

pt_status pt_run_scalar(const pt_run_ctx *c, const pt_yaml_node *v, int line, const char *dotted, const char **out) {
    if (!v || v->kind != PT_YAML_SCALAR) return pt_run_err(c, line, dotted, "expects a single value, not a %s", v && v->kind == PT_YAML_MAP ? "mapping" : "list");
    *out = v->value;
    return PT_OK;
}

static int parse_bool(const char *s) {
    static const char *yes[] = {"true", "yes", "on", "1", "True", "TRUE", "Yes"}, *no[] = {"false", "no", "off", "0", "False", "FALSE", "No"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        if (!strcmp(s, yes[i])) return 1;
        if (!strcmp(s, no[i])) return 0;
    }
    return -1;
}

pt_status pt_run_get_bool(const pt_run_ctx *c, const pt_yaml_node *v, int line, const char *dotted, bool *out) {
    const char *s = NULL;
    PT_TRY(pt_run_scalar(c, v, line, dotted, &s));
    int b = parse_bool(s);
    if (b < 0) return pt_run_err(c, line, dotted, "expects true or false, got '%s'", s);
    *out = b;
    return PT_OK;
}

pt_status pt_run_get_int(const pt_run_ctx *c, const pt_yaml_node *v, int line, const char *dotted, long lo, long hi, long *out) {
    const char *s = NULL;
    PT_TRY(pt_run_scalar(c, v, line, dotted, &s));
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno || end == s || *end || x < lo || x > hi) return pt_run_err(c, line, dotted, "expects an integer from %ld to %ld, got '%s'", lo, hi, s);
    *out = x;
    return PT_OK;
}

pt_status pt_run_resolve_path(const pt_run_ctx *c, const pt_yaml_node *v, int line, const char *dotted, pt_run_key_kind kind, char **out) {
    *out = NULL;
    const char *s = NULL;
    PT_TRY(pt_run_scalar(c, v, line, dotted, &s));
    if (!*s) return pt_run_err(c, line, dotted, "expects a path, got an empty value");
    char *p = NULL;
    if (!strncmp(s, "asset:", 6)) {
        pt_status st = pt_assets_path(s + 6, true, c->pull, &p);
        if (st) return pt_run_err(c, line, dotted, "%s", pt_errmsg());
    } else if (s[0] == '/') {
        p = strdup(s);
    } else {
        p = pt_path_join(c->dir, s);
    }
    if (!p) return pt_error(PT_ERR_OOM, "out of memory");
    bool is_dir = pt_dir_exists(p), is_file = pt_file_exists(p) && !is_dir;
    const char *want = kind == RK_FILE ? "file" : kind == RK_DIR ? "directory" : "file or directory";
    bool ok = kind == RK_FILE ? is_file : kind == RK_DIR ? is_dir : is_file || is_dir;
    pt_status st = PT_OK;
    if (!ok) st = pt_run_err(c, line, dotted, "no such %s: %s", want, p);
    char *abs = ok ? realpath(p, NULL) : NULL;
    if (ok && !abs) st = pt_run_err(c, line, dotted, "%s: %s", p, strerror(errno));
    free(p);
    if (st) return st;
    *out = abs;
    return PT_OK;
}

pt_status pt_run_opts_flag(pt_run_opts *o, const char *key, const char *flag, const char *value) {
    if (!o->params && !(o->params = json_object())) return pt_error(PT_ERR_OOM, "out of memory");
    PT_TRY(pt_run_args_push(&o->args, flag));
    if (value) PT_TRY(pt_run_args_push(&o->args, value));
    if (json_object_set_new(o->params, key, value ? json_string(value) : json_true())) return pt_error(PT_ERR_OOM, "out of memory");
    return PT_OK;
}

pt_status pt_run_opts_input(pt_run_opts *o, const char *role, const char *flag, const char *path) {
    if (o->n_in >= PT_RUN_MAX_INPUTS) return pt_error(PT_ERR_INTERNAL, "too many inputs for one stage");
    pt_run_input *in = &o->in[o->n_in];
    in->role = strdup(role);
    in->flag = flag ? strdup(flag) : NULL;
    in->path = strdup(path);
    if (!in->role || !in->path || (flag && !in->flag)) return pt_error(PT_ERR_OOM, "out of memory");
    o->n_in++;
    return PT_OK;
}

void pt_run_opts_free(pt_run_opts *o) {
    pt_run_args_free(&o->args);
    json_decref(o->params);
    for (int i = 0; i < o->n_in; i++) {
        free(o->in[i].role);
        free(o->in[i].flag);
        free(o->in[i].path);
    }
    *o = (pt_run_opts){0};
}

/* Checks one value against its definition and returns it as a parameter. */
static pt_status typed(const pt_run_ctx *c, const pt_run_keydef *d, const pt_yaml_node *v, int line, const char *dotted, json_t **out) {
    const char *s = NULL;
    PT_TRY(pt_run_scalar(c, v, line, dotted, &s));
    char *end;
    switch (d->kind) {
    case RK_INT: {
        long x;
        PT_TRY(pt_run_get_int(c, v, line, dotted, (long)d->lo, (long)d->hi, &x));
        *out = json_integer(x);
        break;
    }
    case RK_NUM: {
        errno = 0;
        double x = strtod(s, &end);
        if (errno || end == s || *end || !isfinite(x) || x < d->lo || x > d->hi)
            return pt_run_err(c, line, dotted, "expects a number from %g to %g, got '%s'", d->lo, d->hi, s);
        *out = json_real(x);
        break;
    }
    case RK_BOOL: {
        bool b;
        PT_TRY(pt_run_get_bool(c, v, line, dotted, &b));
        *out = json_boolean(b);
        break;
    }
    default:
        if (d->choices) {
            size_t n = strlen(s);
            const char *p = d->choices;
            bool ok = false;
            while (*p && !ok) {
                size_t k = strcspn(p, "|");
                ok = k == n && !strncmp(p, s, n);
                p += k + (p[k] == '|');
            }
            if (!ok) return pt_run_err(c, line, dotted, "expects one of %s, got '%s'", d->choices, s);
        }
        *out = json_string(s);
        break;
    }
    return *out ? PT_OK : pt_error(PT_ERR_OOM, "out of memory");
}

pt_status pt_run_opts_add(pt_run_opts *o, const pt_run_ctx *c, const pt_yaml_node *map, const char *section, const pt_run_keydef *defs) {
    if (!map) return PT_OK;
    if (!o->params && !(o->params = json_object())) return pt_error(PT_ERR_OOM, "out of memory");
    for (int i = 0; i < map->n; i++) {
        const pt_run_keydef *d = defs;
        while (d->key && strcmp(d->key, map->keys[i])) d++;
        if (!d->key || !d->flag || d->kind == RK_OTHER) continue;
        char dotted[256];
        join(dotted, sizeof dotted, section, d->key);
        int line = map->key_lines[i];
        if (d->kind == RK_FILE || d->kind == RK_DIR || d->kind == RK_PATH) {
            char *p = NULL;
            PT_TRY(pt_run_resolve_path(c, map->items[i], line, dotted, d->kind, &p));
            pt_status st = pt_run_opts_input(o, dotted, d->flag, p);
            free(p);
            PT_TRY(st);
            continue;
        }
        json_t *v = NULL;
        PT_TRY(typed(c, d, map->items[i], line, dotted, &v));
        pt_status st = PT_OK;
        if (d->kind == RK_BOOL) {
            if (json_is_true(v)) st = pt_run_args_push(&o->args, d->flag);
        } else {
            st = pt_run_args_push(&o->args, d->flag);
            if (!st) st = pt_run_args_push(&o->args, map->items[i]->value);
        }
        if (!st && json_object_set_new(o->params, d->key, v)) st = pt_error(PT_ERR_OOM, "out of memory");
        PT_TRY(st);
    }
    return PT_OK;
}
