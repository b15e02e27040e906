/* fork + exec of a stage command with its stdout captured (see pt_run_spawn.h). */
#include "pipeline/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

pt_status pt_run_spawn(const pt_run_args *argv, bool launcher, const char *cwd, const char *err_path, char **out, int *status) {
    *out = NULL;
    *status = -1;
    int fd[2];
    if (pipe(fd)) return pt_error(PT_ERR_IO, "cannot create a pipe: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return pt_error(PT_ERR_IO, "cannot start a process: %s", strerror(errno));
    }
    if (pid == 0) {
        /* the child: only async-signal-safe calls until exec */
        close(fd[0]);
        if (dup2(fd[1], 1) < 0) _exit(127);
        close(fd[1]);
        if (err_path) {
            int e = open(err_path, O_WRONLY | O_CREAT | O_APPEND, 0666);
            if (e < 0 || dup2(e, 2) < 0) _exit(127);
            close(e);
        }
        if (chdir(cwd)) _exit(127);
        if (launcher) execvp(argv->v[0], argv->v);
        else execv("/proc/self/exe", argv->v);
        _exit(127);
    }
    close(fd[1]);
    size_t n = 0, cap = 4096;
    char *buf = malloc(cap);
    pt_status st = buf ? PT_OK : pt_error(PT_ERR_OOM, "out of memory");
    for (;;) {
        if (!st && n + 1024 > cap) {
            char *b = realloc(buf, cap * 2);
            if (!b) st = pt_error(PT_ERR_OOM, "out of memory");
            else buf = b, cap *= 2;
        }
        char sink[1024];
        ssize_t k = st ? read(fd[0], sink, sizeof sink) : read(fd[0], buf + n, cap - n - 1);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        if (!st) n += (size_t)k;
    }
    close(fd[0]);
    int ws;
    while (waitpid(pid, &ws, 0) < 0)
        if (errno != EINTR) {
            free(buf);
            return pt_error(PT_ERR_IO, "waiting for the stage process: %s", strerror(errno));
        }
    if (st) { free(buf); return st; }
    buf[n] = 0;
    *out = buf;
    *status = WIFEXITED(ws) ? WEXITSTATUS(ws) : WIFSIGNALED(ws) ? 128 + WTERMSIG(ws) : 1;
    return PT_OK;
}
