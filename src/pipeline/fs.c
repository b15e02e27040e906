/* Stage folders: creation, emptying, checkpoint lookup (see run_fs.h). */
#include "pipeline/fs.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/file.h"

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    if (ftw->level == 0) return 0; /* the folder itself stays */
    return remove(path) ? -1 : 0;
}

pt_status pt_run_clear_dir(const char *dir) {
    if (!pt_dir_exists(dir)) return pt_mkdir_p(dir);
    if (nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS)) return pt_error(PT_ERR_IO, "%s: cannot empty the stage folder: %s", dir, strerror(errno));
    return PT_OK;
}

bool pt_run_has_checkpoint(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return false;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        const char *n = e->d_name;
        if (strncmp(n, "checkpoint-", 11) || !n[11]) continue;
        found = strspn(n + 11, "0123456789") == strlen(n + 11);
    }
    closedir(d);
    return found;
}

char *pt_run_abs(const char *dir, const char *rel) {
    if (rel[0] == '/') return strdup(rel);
    return pt_path_join(dir, rel);
}
