/* Recipe keys, generically: a table per recipe section says what each key is (text, number,
 * boolean, file, directory) and which flag of the stage's command takes it; these helpers
 * check a mapping against its table and turn it into flags, recorded parameters and input
 * files, with messages naming the recipe file, line and dotted key. */
#ifndef PT_CLI_RUN_KEYS_H
#define PT_CLI_RUN_KEYS_H

#include <stdbool.h>

#include "pipeline/recipe.h"

typedef enum {
    RK_STR,   /* text; `choices` ("a|b|c") limits it */
    RK_INT,   /* integer in lo..hi */
    RK_NUM,   /* number in lo..hi */
    RK_BOOL,  /* true/false (yes/no, on/off, 1/0); a true flag is passed bare */
    RK_FILE,  /* an existing file: relative to the recipe, absolute, or asset:PATH */
    RK_DIR,   /* an existing directory, likewise */
    RK_PATH,  /* a file or a directory (a model: GGUF file or Hugging Face directory) */
    RK_OTHER  /* handled by the section's own code (mappings, lists) */
} pt_run_key_kind;

typedef struct {
    const char *key;
    const char *flag; /* NULL: not passed on as a flag */
    pt_run_key_kind kind;
    double lo, hi;
    const char *choices;
} pt_run_keydef;

typedef struct {
    const char *label; /* the recipe file as the user named it */
    const char *dir;   /* absolute directory relative paths start from */
    const pt_pull_hooks *pull; /* progress of asset downloads (may be NULL) */
} pt_run_ctx;

/* Records "<file>:<line>: <key>: <message>" (line 0: a --set override). */
pt_status pt_run_err(const pt_run_ctx *c, int line, const char *key, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The line of `key` in `map` (its own line for a --set value). */
int pt_run_key_line(const pt_yaml_node *map, const char *key);

/* Every key of `map` (the mapping at dotted path `section`) must be in `defs`; `map` may be
 * NULL. A node that is not a mapping is an error too. */
pt_status pt_run_keys_check(const pt_run_ctx *c, const pt_yaml_node *map, int line, const char *section, const pt_run_keydef *defs);

/* A scalar's text, or an error when the node is a mapping or a list. */
pt_status pt_run_scalar(const pt_run_ctx *c, const pt_yaml_node *v, int line, const char *dotted, const char **out);
pt_status pt_run_get_bool(const pt_run_ctx *c, const pt_yaml_node *v, int line, const char *dotted, bool *out);
pt_status pt_run_get_int(const pt_run_ctx *c, const pt_yaml_node *v, int line, const char *dotted, long lo, long hi, long *out);

/* A path value resolved to an absolute path of an existing file / directory (malloc'd). */
pt_status pt_run_resolve_path(const pt_run_ctx *c, const pt_yaml_node *v, int line, const char *dotted, pt_run_key_kind kind, char **out);

/* Adds every key of `map` whose definition has a flag to `o`: flags and parameters, or an
 * input for paths (role = the key). */
pt_status pt_run_opts_add(pt_run_opts *o, const pt_run_ctx *c, const pt_yaml_node *map, const char *section, const pt_run_keydef *defs);
/* One flag and its parameter by hand (value NULL: a bare flag, parameter true). */
pt_status pt_run_opts_flag(pt_run_opts *o, const char *key, const char *flag, const char *value);
pt_status pt_run_opts_input(pt_run_opts *o, const char *role, const char *flag, const char *path);
void pt_run_opts_free(pt_run_opts *o);

#endif
