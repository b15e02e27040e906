/* The asset settings from the environment, for the CLI (main.c) and the test runner: the
 * library reads no environment variables, so whoever starts it reads them and passes them on
 * (src/assets/assets.h). POLITUNE_ASSETS: a local mirror of the asset tree; POLITUNE_SHARED:
 * a reference folder; POLITUNE_ASSETS_NO_LOCAL (not "0"): no reference trees; POLITUNE_CACHE,
 * else $XDG_CACHE_HOME/politune, else $HOME/.cache/politune: the cache; POLITUNE_ASSETS_URL:
 * an HTTP mirror. */
#ifndef PT_CLI_ASSETS_ENV_H
#define PT_CLI_ASSETS_ENV_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assets/assets.h"

static inline pt_status cli_assets_from_env(void) {
    const char *off = getenv("POLITUNE_ASSETS_NO_LOCAL"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char cache[4096] = "";
    const char *c = getenv("POLITUNE_CACHE");
    if (c && *c) snprintf(cache, sizeof cache, "%s", c);
    else if (xdg && *xdg) snprintf(cache, sizeof cache, "%s/politune", xdg);
    else if (home && *home) snprintf(cache, sizeof cache, "%s/.cache/politune", home);
    pt_assets_settings s = {
        .mirror = getenv("POLITUNE_ASSETS"),
        .shared = getenv("POLITUNE_SHARED"),
        .no_local = off && *off && strcmp(off, "0"),
        .cache = cache[0] ? cache : NULL,
        .url = getenv("POLITUNE_ASSETS_URL"),
    };
    return pt_assets_configure(&s);
}

#endif
