/* Test helpers that find real models among the registered assets. The suite runs with a
 * POLITUNE_ASSETS mirror (../shared/assets) that does not hold the models fetched by
 * `politune pull` into the download cache, so the cache is looked at too; a model that is in
 * neither makes the test that needs it skip with a printed reason. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "assets/assets.h"
#include "test.h"
#include "util/file.h"

#define SMOLLM2_PATH "models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"

static const char *find_asset(const char *asset, const char *rel, char *buf, size_t cap, const char **why) {
    static char reason[512];
    const pt_asset *a = pt_assets_find(asset);
    const pt_asset_file *f = NULL;
    for (int i = 0; a && i < a->n_files; i++)
        if (!strcmp(a->files[i].path, rel)) f = &a->files[i];
    if (!f) {
        *why = "not a registered asset file";
        return NULL;
    }
    char *p = NULL;
    if (pt_assets_path(rel, false, NULL, &p) == PT_OK) {
        snprintf(buf, cap, "%s", p);
        free(p);
        return buf;
    }
    char *cache = NULL;
    if (pt_assets_cache_dir(&cache) == PT_OK) {
        p = pt_path_join(cache, rel);
        struct stat sb;
        bool ok = p && stat(p, &sb) == 0 && (int64_t)sb.st_size == f->size;
        if (ok) snprintf(buf, cap, "%s", p);
        snprintf(reason, sizeof reason, "%s not in the asset mirror nor at %s; run 'politune pull %s'", rel,
                 p ? p : cache, asset);
        free(p);
        free(cache);
        if (ok) return buf;
    } else {
        snprintf(reason, sizeof reason, "%s not found and no cache directory; run 'politune pull %s'", rel, asset);
    }
    *why = reason;
    return NULL;
}

const char *pt_test_smollm2(const char **why) {
    static char path[4096];
    return find_asset("smollm2-135m-instruct", SMOLLM2_PATH, path, sizeof path, why);
}
