/* Internal to src/assets: where files live (the mirror, the cache), the verification stamp
 * that lets a cached file be trusted without re-hashing it, and the download of one file. */
#ifndef PT_ASSETS_IMPL_H
#define PT_ASSETS_IMPL_H

#include <stdbool.h>

#include "assets/assets.h"

/* The registered file with this relative path, and the asset it belongs to (NULL if none). */
const pt_asset_file *pt_assets_find_file(const char *rel, const pt_asset **owner);

/* $POLITUNE_ASSETS when set and non-empty, else NULL. */
const char *pt_assets_mirror(void);


typedef enum {
    PT_CHECK_SIZE,    /* the size only: cheap, for listings */
    PT_CHECK_STAMPED, /* the size, and the SHA-256 unless a stamp vouches for it; stamps it */
    PT_CHECK_HASH     /* the size and the SHA-256, never stamping (a read-only mirror) */
} pt_check_mode;

/* Checks `path` against f. *ok is false (with PT_OK returned) when the file is absent or has
 * the wrong size or hash, and then *why says which ("missing", "size", "sha256") and, for
 * a wrong hash, got_hex holds what it hashed to. A failure status is only for a file that
 * cannot be read. */
pt_status pt_assets_check(const char *path, const pt_asset_file *f, pt_check_mode mode, bool *ok,
                          const char **why, char got_hex[65]);
/* Records that `path` was verified against f (best effort: a missing stamp only costs a
 * re-hash next time). */
void pt_assets_stamp(const char *path, const pt_asset_file *f);
/* Removes the stamp (when the file it vouches for is replaced or removed). */
void pt_assets_unstamp(const char *path);

/* Downloads f from `url` into `dest` (via dest.part, resumed when possible), verifies its
 * size and SHA-256, and renames it into place. On a checksum mismatch nothing is left
 * behind. */
pt_status pt_assets_download(const pt_asset_file *f, const char *url, const char *dest,
                             const pt_pull_hooks *h);

#endif
