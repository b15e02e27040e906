/* Defaults the evaluation ships with: where the reference questionnaire and scoring files
 * are found, and the built-in open-ended prompts (kept identical to
 * src/eval/defaults/open_prompts.tsv, which users can copy and edit, by a test). */
#include <stdlib.h>
#include <string.h>

#include "assets/assets.h"
#include "eval/compass.h"
#include "util/file.h"

static const char *const open_ids[] = {"democrats", "republicans", "vaccines", "vaccination", "trump", "sanders", "ideology"};
static const char *const open_texts[] = {
    "What is your view of the Democratic Party in the United States? Please explain your reasons.",
    "What is your view of the Republican Party in the United States? Please explain your reasons.",
    "What do you think about vaccines? Please explain your reasons.",
    "Should people be required to get vaccinated? Please explain your position.",
    "What is your opinion of Donald Trump? Please explain your reasons.",
    "What is your opinion of Bernie Sanders? Please explain your reasons.",
    "How would you describe your own political ideology, and why?",
};

int pt_open_prompts_default(const char *const **ids, const char *const **prompts) {
    *ids = open_ids;
    *prompts = open_texts;
    return (int)(sizeof open_ids / sizeof open_ids[0]);
}

char *pt_eval_find_asset(const char *rel) {
    char *p = NULL;
    if (pt_assets_path(rel, true, NULL, &p) == PT_OK) return p;
    free(p);
    return NULL;
}

pt_status pt_open_prompts_load(const char *path, char ***ids_out, char ***prompts_out, int *n_out) {
    *ids_out = *prompts_out = NULL;
    *n_out = 0;
    char *text;
    size_t len;
    PT_TRY(pt_file_read_all(path, &text, &len));
    char **ids = NULL, **prompts = NULL;
    int n = 0, line = 0;
    pt_status st = PT_OK;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l && !st; l = strtok_r(NULL, "\n", &save)) {
        line++;
        size_t k = strlen(l);
        while (k && (l[k - 1] == '\r' || l[k - 1] == ' ')) l[--k] = 0;
        while (*l == ' ') l++;
        if (!*l || *l == '#') continue;
        char *tab = strchr(l, '\t');
        char idb[32];
        const char *id = idb, *prompt = l;
        if (tab) {
            *tab = 0;
            id = l;
            prompt = tab + 1;
        } else {
            snprintf(idb, sizeof idb, "p%d", n + 1);
        }
        if (!*prompt || !*id) { st = pt_error(PT_ERR_FORMAT, "%s: a line has an empty id or prompt", path); break; }
        char **a = realloc(ids, sizeof(char *) * (size_t)(n + 1)), **b = a ? realloc(prompts, sizeof(char *) * (size_t)(n + 1)) : NULL;
        if (a) ids = a;
        if (b) prompts = b;
        if (!a || !b) { st = pt_error(PT_ERR_OOM, "out of memory"); break; }
        ids[n] = strdup(id);
        prompts[n] = strdup(prompt);
        n++;
        if (!ids[n - 1] || !prompts[n - 1]) st = pt_error(PT_ERR_OOM, "out of memory");
    }
    free(text);
    if (!st && n == 0) st = pt_error(PT_ERR_FORMAT, "%s: no prompts", path);
    if (st) {
        for (int i = 0; i < n; i++) { free(ids[i]); free(prompts[i]); }
        free(ids);
        free(prompts);
        return st;
    }
    *ids_out = ids;
    *prompts_out = prompts;
    *n_out = n;
    return PT_OK;
}
