/* The one YAML reader, for pipeline recipes (`politune run`) and training recipes
 * (`politune train --recipe`). A YAML document as a small tree: mappings, sequences and
 * scalars, each node remembering the line it starts on, so that every complaint about a
 * recipe can name the file, the line and the key. libyaml does the parsing; this keeps only
 * what recipes need (no anchors, aliases or tags), refuses duplicate keys, and refuses
 * nesting deeper than 64 levels. */
#ifndef PT_CLI_RUN_YAML_H
#define PT_CLI_RUN_YAML_H

#include <stdbool.h>

#include "util/status.h"

typedef enum { PT_YAML_SCALAR, PT_YAML_MAP, PT_YAML_SEQ } pt_yaml_kind;

typedef struct pt_yaml_node pt_yaml_node;
struct pt_yaml_node {
    pt_yaml_kind kind;
    int line;          /* 1-based; 0 for a value given with --set */
    char *value;       /* scalars only */
    int n;             /* entries of a mapping / items of a sequence */
    char **keys;       /* mappings: the keys, in file order */
    int *key_lines;
    pt_yaml_node **items;  /* mapping values / sequence items */
};

/* Reads `path`; `label` names it in messages. An empty document is an empty mapping. */
pt_status pt_yaml_load(const char *path, const char *label, pt_yaml_node **out);
pt_status pt_yaml_parse(const char *text, const char *label, pt_yaml_node **out);
void pt_yaml_node_free(pt_yaml_node *n);

/* The value of `key` in a mapping (NULL when absent or when `map` is not a mapping). */
pt_yaml_node *pt_yaml_get(const pt_yaml_node *map, const char *key);

/* Sets a dotted path ("train.max_steps") to `value` (YAML text: "20", "[left, right]",
 * "{svg: false}"), creating mappings on the way; a non-mapping in the way is replaced. The
 * new nodes have line 0. For --set overrides and the demo's options. */
pt_status pt_yaml_set(pt_yaml_node *root, const char *dotted, const char *value);

#endif
