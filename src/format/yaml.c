/* YAML text -> pt_yaml_node tree (see run_yaml.h), built from libyaml's event stream with a
 * recursive descent: one function per node, reading the events of its children. */
#include "format/yaml.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Recipes nest three or four levels; a document nested deeper is not a recipe, and the
 * recursion below must not follow a hostile one down the stack. */
#define MAX_DEPTH 64

typedef struct {
    yaml_parser_t p;
    const char *label;
    int depth; /* mappings and sequences open around the node being read */
} reader;

static pt_yaml_node *node_new(pt_yaml_kind k, int line) {
    pt_yaml_node *n = calloc(1, sizeof *n);
    if (n) n->kind = k, n->line = line;
    return n;
}

void pt_yaml_node_free(pt_yaml_node *n) {
    if (!n) return;
    for (int i = 0; i < n->n; i++) {
        pt_yaml_node_free(n->items[i]);
        if (n->keys) free(n->keys[i]);
    }
    free(n->items);
    free(n->keys);
    free(n->key_lines);
    free(n->value);
    free(n);
}

static pt_status push(pt_yaml_node *n, char *key, int key_line, pt_yaml_node *item) {
    pt_yaml_node **items = realloc(n->items, sizeof *items * (size_t)(n->n + 1));
    if (!items) return pt_error(PT_ERR_OOM, "out of memory");
    n->items = items;
    if (n->kind == PT_YAML_MAP) {
        char **keys = realloc(n->keys, sizeof *keys * (size_t)(n->n + 1));
        if (!keys) return pt_error(PT_ERR_OOM, "out of memory");
        n->keys = keys;
        int *lines = realloc(n->key_lines, sizeof *lines * (size_t)(n->n + 1));
        if (!lines) return pt_error(PT_ERR_OOM, "out of memory");
        n->key_lines = lines;
        keys[n->n] = key;
        lines[n->n] = key_line;
    }
    items[n->n++] = item;
    return PT_OK;
}

static pt_status next_event(reader *r, yaml_event_t *ev) {
    if (yaml_parser_parse(&r->p, ev)) return PT_OK;
    return pt_error(PT_ERR_FORMAT, "%s:%zu: %s", r->label, r->p.problem_mark.line + 1, r->p.problem ? r->p.problem : "YAML syntax error");
}

/* Builds the node that starts with `ev` (consumed: the caller deletes it). */
static pt_status read_node(reader *r, yaml_event_t *ev, pt_yaml_node **out) {
    *out = NULL;
    int line = (int)ev->start_mark.line + 1;
    switch (ev->type) {
    case YAML_SCALAR_EVENT: {
        pt_yaml_node *n = node_new(PT_YAML_SCALAR, line);
        if (!n || !(n->value = strdup((const char *)ev->data.scalar.value))) {
            pt_yaml_node_free(n);
            return pt_error(PT_ERR_OOM, "out of memory");
        }
        *out = n;
        return PT_OK;
    }
    case YAML_ALIAS_EVENT: return pt_error(PT_ERR_FORMAT, "%s:%d: aliases are not supported in recipes", r->label, line);
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: break;
    default: return pt_error(PT_ERR_FORMAT, "%s:%d: unexpected YAML event", r->label, line);
    }
    if (r->depth >= MAX_DEPTH) return pt_error(PT_ERR_FORMAT, "%s:%d: nested more than %d levels deep", r->label, line, MAX_DEPTH);
    bool map = ev->type == YAML_MAPPING_START_EVENT;
    pt_yaml_node *n = node_new(map ? PT_YAML_MAP : PT_YAML_SEQ, line);
    if (!n) return pt_error(PT_ERR_OOM, "out of memory");
    r->depth++;
    pt_status st = PT_OK;
    for (;;) {
        yaml_event_t e;
        if ((st = next_event(r, &e))) break;
        if (e.type == YAML_MAPPING_END_EVENT || e.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&e);
            break;
        }
        char *key = NULL;
        int key_line = (int)e.start_mark.line + 1;
        if (map) {
            if (e.type != YAML_SCALAR_EVENT) {
                st = pt_error(PT_ERR_FORMAT, "%s:%d: a mapping key must be a plain word", r->label, key_line);
                yaml_event_delete(&e);
                break;
            }
            key = strdup((const char *)e.data.scalar.value);
            yaml_event_delete(&e);
            if (!key) { st = pt_error(PT_ERR_OOM, "out of memory"); break; }
            for (int i = 0; i < n->n; i++)
                if (!strcmp(n->keys[i], key)) st = pt_error(PT_ERR_FORMAT, "%s:%d: key '%s' given twice (first on line %d)", r->label, key_line, key, n->key_lines[i]);
            if (!st) st = next_event(r, &e);
            if (st) { free(key); break; }
        }
        pt_yaml_node *child = NULL;
        st = read_node(r, &e, &child);
        yaml_event_delete(&e);
        if (!st) st = push(n, key, key_line, child);
        if (st) { free(key); pt_yaml_node_free(child); break; }
    }
    r->depth--;
    if (st) { pt_yaml_node_free(n); return st; }
    *out = n;
    return PT_OK;
}

static pt_status read_stream(reader *r, pt_yaml_node **out) {
    *out = NULL;
    pt_yaml_node *root = NULL;
    pt_status st = PT_OK;
    for (bool done = false; !done && !st;) {
        yaml_event_t ev;
        if ((st = next_event(r, &ev))) break;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT: done = true; break;
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_START_EVENT:
        case YAML_DOCUMENT_END_EVENT: break;
        default:
            if (root) st = pt_error(PT_ERR_FORMAT, "%s:%zu: a recipe is one YAML document", r->label, ev.start_mark.line + 1);
            else st = read_node(r, &ev, &root);
            break;
        }
        yaml_event_delete(&ev);
    }
    if (!st && !root) root = node_new(PT_YAML_MAP, 1);
    if (!st && !root) st = pt_error(PT_ERR_OOM, "out of memory");
    if (!st && root->kind == PT_YAML_SCALAR && !root->value[0]) {
        pt_yaml_node_free(root);
        if (!(root = node_new(PT_YAML_MAP, 1))) st = pt_error(PT_ERR_OOM, "out of memory");
    }
    if (!st && root->kind != PT_YAML_MAP) st = pt_error(PT_ERR_FORMAT, "%s:%d: a recipe is a mapping of keys to values", r->label, root->line);
    if (st) { pt_yaml_node_free(root); return st; }
    *out = root;
    return PT_OK;
}

pt_status pt_yaml_load(const char *path, const char *label, pt_yaml_node **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return pt_error(PT_ERR_IO, "%s: cannot open the recipe", label);
    reader r = {.label = label};
    if (!yaml_parser_initialize(&r.p)) { fclose(f); return pt_error(PT_ERR_OOM, "out of memory"); }
    yaml_parser_set_input_file(&r.p, f);
    pt_status st = read_stream(&r, out);
    yaml_parser_delete(&r.p);
    fclose(f);
    return st;
}

pt_status pt_yaml_parse(const char *text, const char *label, pt_yaml_node **out) {
    *out = NULL;
    reader r = {.label = label};
    if (!yaml_parser_initialize(&r.p)) return pt_error(PT_ERR_OOM, "out of memory");
    yaml_parser_set_input_string(&r.p, (const unsigned char *)text, strlen(text));
    pt_status st = read_stream(&r, out);
    yaml_parser_delete(&r.p);
    return st;
}

pt_yaml_node *pt_yaml_get(const pt_yaml_node *map, const char *key) {
    if (!map || map->kind != PT_YAML_MAP) return NULL;
    for (int i = 0; i < map->n; i++)
        if (!strcmp(map->keys[i], key)) return map->items[i];
    return NULL;
}

static void zero_lines(pt_yaml_node *n) {
    n->line = 0;
    for (int i = 0; i < n->n; i++) {
        if (n->key_lines) n->key_lines[i] = 0;
        zero_lines(n->items[i]);
    }
}

/* YAML text as a value: parsed as the value of a one-key document. */
static pt_status parse_value(const char *text, pt_yaml_node **out) {
    *out = NULL;
    size_t n = strlen(text) + 8;
    char *doc = malloc(n);
    if (!doc) return pt_error(PT_ERR_OOM, "out of memory");
    snprintf(doc, n, "v: %s\n", text);
    pt_yaml_node *root = NULL;
    pt_status st = pt_yaml_parse(doc, "--set", &root);
    free(doc);
    if (st) return st;
    if (root->n != 1) {
        pt_yaml_node_free(root);
        return pt_error(PT_ERR_ARG, "--set: '%s' is not one YAML value", text);
    }
    *out = root->items[0];
    root->items[0] = NULL;
    pt_yaml_node_free(root);
    if (!*out && !(*out = node_new(PT_YAML_SCALAR, 0))) return pt_error(PT_ERR_OOM, "out of memory");
    zero_lines(*out);
    return PT_OK;
}

pt_status pt_yaml_set(pt_yaml_node *root, const char *dotted, const char *value) {
    pt_yaml_node *val = NULL;
    PT_TRY(parse_value(value, &val));
    char *path = strdup(dotted);
    if (!path) { pt_yaml_node_free(val); return pt_error(PT_ERR_OOM, "out of memory"); }
    pt_status st = PT_OK;
    pt_yaml_node *cur = root;
    char *save = NULL;
    for (char *k = strtok_r(path, ".", &save); k && !st; k = strtok_r(NULL, ".", &save)) {
        bool last = !save || !*save;
        int at = -1;
        for (int i = 0; i < cur->n; i++)
            if (!strcmp(cur->keys[i], k)) at = i;
        if (!last && at >= 0 && cur->items[at]->kind == PT_YAML_MAP) {
            cur = cur->items[at];
            continue;
        }
        pt_yaml_node *fresh = last ? val : node_new(PT_YAML_MAP, 0);
        if (!fresh) { st = pt_error(PT_ERR_OOM, "out of memory"); break; }
        if (last) val = NULL;
        if (at >= 0) {
            pt_yaml_node_free(cur->items[at]);
            cur->items[at] = fresh;
            cur->key_lines[at] = 0;
        } else {
            char *kk = strdup(k);
            if (!kk || (st = push(cur, kk, 0, fresh))) {
                free(kk);
                pt_yaml_node_free(fresh);
                if (!st) st = pt_error(PT_ERR_OOM, "out of memory");
                break;
            }
        }
        cur = fresh;
    }
    pt_yaml_node_free(val);
    free(path);
    return st;
}
