/* YAML recipes (libyaml's event parser): a flat mapping of training keys to scalars or to
 * lists of scalars (joined with commas, as adam_betas and lora_targets read them). Each
 * key is applied through pt_train_config_set, so a recipe knows exactly the keys the CLI
 * knows; errors carry the file and line. */
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "train/config.h"

pt_status pt_train_recipe_load(pt_train_config *c, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return pt_error(PT_ERR_IO, "%s: cannot open the recipe", path);
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        fclose(f);
        return pt_error(PT_ERR_OOM, "out of memory");
    }
    yaml_parser_set_input_file(&p, f);
    pt_status rc = PT_OK;
    int depth = 0;              /* 1 inside the top mapping, 2 inside a list value */
    char key[128] = "", value[4096] = "";
    size_t key_line = 0;
    bool have_key = false, done = false;
    while (!rc && !done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = pt_error(PT_ERR_FORMAT, "%s:%zu: %s", path, p.problem_mark.line + 1, p.problem ? p.problem : "YAML syntax error");
            break;
        }
        size_t line = ev.start_mark.line + 1;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT: done = true; break;
        case YAML_MAPPING_START_EVENT:
            if (depth != 0) rc = pt_error(PT_ERR_FORMAT, "%s:%zu: key '%s': nested mappings are not recipe values", path, line, key);
            else depth = 1;
            break;
        case YAML_MAPPING_END_EVENT: depth = 0; break;
        case YAML_SEQUENCE_START_EVENT:
            if (depth != 1 || !have_key) rc = pt_error(PT_ERR_FORMAT, "%s:%zu: a recipe is a mapping of keys to values", path, line);
            else depth = 2, value[0] = 0;
            break;
        case YAML_SEQUENCE_END_EVENT:
            depth = 1;
            rc = pt_train_config_set(c, key, value);
            if (rc) rc = pt_error_wrap(rc, "%s:%zu: ", path, key_line);
            have_key = false;
            break;
        case YAML_SCALAR_EVENT: {
            const char *s = (const char *)ev.data.scalar.value;
            if (depth == 0) {
                /* an empty document, or a document that is a bare scalar */
                if (*s) rc = pt_error(PT_ERR_FORMAT, "%s:%zu: a recipe is a mapping of keys to values", path, line);
            } else if (depth == 2) {
                size_t n = strlen(value);
                if (n + strlen(s) + 2 > sizeof value) rc = pt_error(PT_ERR_FORMAT, "%s:%zu: list too long", path, line);
                else snprintf(value + n, sizeof value - n, "%s%s", n ? "," : "", s);
            } else if (!have_key) {
                if (strlen(s) >= sizeof key) rc = pt_error(PT_ERR_ARG, "%s:%zu: unknown key '%.60s...'", path, line, s);
                else if (pt_train_config_is_bool(s) < 0)
                    rc = pt_error(PT_ERR_ARG, "%s:%zu: unknown key '%s' (see politune train --help for the keys)", path, line, s);
                else snprintf(key, sizeof key, "%s", s), have_key = true, key_line = line;
            } else {
                rc = pt_train_config_set(c, key, s);
                if (rc) rc = pt_error_wrap(rc, "%s:%zu: ", path, key_line);
                have_key = false;
            }
            break;
        }
        case YAML_ALIAS_EVENT: rc = pt_error(PT_ERR_FORMAT, "%s:%zu: aliases are not supported in recipes", path, line); break;
        default: break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    fclose(f);
    return rc;
}
