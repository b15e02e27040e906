/* YAML training recipes: a flat mapping of training keys to scalars or to lists of scalars
 * (joined with commas, as adam_betas and lora_targets read them), read with the one YAML
 * reader (format/yaml.h). Each key is applied through pt_train_config_set, so a recipe knows
 * exactly the keys the CLI knows; errors carry the file and line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/yaml.h"
#include "train/config.h"

/* A list value as the comma-joined text pt_train_config_set reads. */
static pt_status join_list(const char *path, const char *key, const pt_yaml_node *seq, char *value, size_t cap) {
    value[0] = 0;
    for (int i = 0; i < seq->n; i++) {
        const pt_yaml_node *it = seq->items[i];
        if (it->kind != PT_YAML_SCALAR)
            return pt_error(PT_ERR_FORMAT, "%s:%d: key '%s': nested mappings are not recipe values", path, it->line, key);
        size_t n = strlen(value);
        if (n + strlen(it->value) + 2 > cap) return pt_error(PT_ERR_FORMAT, "%s:%d: list too long", path, it->line);
        snprintf(value + n, cap - n, "%s%s", n ? "," : "", it->value);
    }
    return PT_OK;
}

pt_status pt_train_recipe_load(pt_train_config *c, const char *path) {
    pt_yaml_node *root = NULL;
    PT_TRY(pt_yaml_load(path, path, &root));
    pt_status rc = PT_OK;
    char value[4096];
    for (int i = 0; i < root->n && !rc; i++) {
        const char *key = root->keys[i];
        const int line = root->key_lines[i];
        const pt_yaml_node *v = root->items[i];
        if (pt_train_config_is_bool(key) < 0) {
            rc = pt_error(PT_ERR_ARG, "%s:%d: unknown key '%.127s' (see politune train --help for the keys)", path, line, key);
            break;
        }
        if (v->kind == PT_YAML_MAP) {
            rc = pt_error(PT_ERR_FORMAT, "%s:%d: key '%s': nested mappings are not recipe values", path, v->line, key);
            break;
        }
        if (v->kind == PT_YAML_SEQ && (rc = join_list(path, key, v, value, sizeof value))) break;
        rc = pt_train_config_set(c, key, v->kind == PT_YAML_SEQ ? value : v->value);
        if (rc) rc = pt_error_wrap(rc, "%s:%d: ", path, line);
    }
    pt_yaml_node_free(root);
    return rc;
}
