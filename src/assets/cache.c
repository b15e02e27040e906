/* Trusting what is already in the cache. A cached file's size is checked on every use (a
 * stat), but its SHA-256 only once: after a full check a stamp, <file>.verified, records
 * the hash together with the file's size, mtime and inode. Re-hashing on every use would be
 * simplest, but the assets this is meant for grow to multi-gigabyte checkpoints, where a
 * hash costs seconds per run; a file replaced or rewritten in place changes its mtime or
 * inode, which voids the stamp and brings back the full check. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "assets/assets_impl.h"
#include "util/sha256.h"

static char *stamp_path(const char *path) {
    size_t n = strlen(path) + sizeof ".verified";
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s.verified", path);
    return s;
}

/* The stamp's one line: hash, size, mtime (s, ns), inode. */
static void stamp_line(char *buf, size_t cap, const char *sha, const struct stat *sb) {
    snprintf(buf, cap, "%s %lld %lld.%09ld %llu\n", sha, (long long)sb->st_size, (long long)sb->st_mtim.tv_sec,
             (long)sb->st_mtim.tv_nsec, (unsigned long long)sb->st_ino);
}

static bool stamp_matches(const char *path, const pt_asset_file *f, const struct stat *sb) {
    char *sp = stamp_path(path);
    if (!sp) return false;
    FILE *fp = fopen(sp, "r");
    free(sp);
    if (!fp) return false;
    char have[256] = {0}, want[256];
    bool ok = fgets(have, sizeof have, fp) != NULL;
    fclose(fp);
    stamp_line(want, sizeof want, f->sha256, sb);
    return ok && !strcmp(have, want);
}

void pt_assets_stamp(const char *path, const pt_asset_file *f) {
    struct stat sb;
    char *sp = stamp_path(path);
    if (!sp || stat(path, &sb) != 0) {
        free(sp);
        return;
    }
    char line[256];
    stamp_line(line, sizeof line, f->sha256, &sb);
    FILE *fp = fopen(sp, "w");
    if (fp) {
        fputs(line, fp);
        /* A stamp cut short by a full disk must not stay behind half-written. */
        if (fclose(fp) != 0) unlink(sp);
    }
    free(sp);
}

void pt_assets_unstamp(const char *path) {
    char *sp = stamp_path(path);
    if (sp) unlink(sp);
    free(sp);
}

pt_status pt_assets_check(const char *path, const pt_asset_file *f, pt_check_mode mode, bool *ok,
                          const char **why, char got_hex[65]) {
    *ok = false;
    got_hex[0] = 0;
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        *why = "missing";
        return PT_OK;
    }
    if ((int64_t)sb.st_size != f->size) {
        *why = "size";
        return PT_OK;
    }
    if (mode == PT_CHECK_SIZE || (mode == PT_CHECK_STAMPED && stamp_matches(path, f, &sb))) {
        *ok = true;
        return PT_OK;
    }
    PT_TRY(pt_sha256_file(path, got_hex));
    if (strcmp(got_hex, f->sha256) != 0) {
        *why = "sha256";
        return PT_OK;
    }
    if (mode == PT_CHECK_STAMPED) pt_assets_stamp(path, f);
    *ok = true;
    return PT_OK;
}
