/* libFuzzer target: arbitrary bytes as a `politune run` recipe, through the YAML tree reader
 * (libyaml underneath) and the dotted-path setter used by --set. Everything must be accepted
 * or rejected without reading outside the buffer; accepted trees are walked and freed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format/yaml.h"

static size_t walk(const pt_yaml_node *n, int depth) {
    if (!n || depth > 64) return 0;
    size_t s = (size_t)n->line;
    if (n->kind == PT_YAML_SCALAR) return s + strlen(n->value ? n->value : "");
    for (int i = 0; i < n->n; i++) s += walk(n->items[i], depth + 1) + (n->keys ? strlen(n->keys[i]) : 0);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* the first line, when there is one, is also tried as a --set value */
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    pt_yaml_node *root = NULL;
    if (pt_yaml_parse(text, "fuzz.yaml", &root) == PT_OK) {
        volatile size_t sink = walk(root, 0);
        char *nl = strchr(text, '\n');
        if (nl) {
            *nl = 0;
            if (pt_yaml_set(root, "a.b.c", text) == PT_OK) sink += walk(root, 0);
        }
        (void)sink;
        pt_yaml_node_free(root);
    }
    free(text);
    return 0;
}
