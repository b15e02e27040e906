/* mmap-backed read-only file views, whole-file reads and atomic writes. */

#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

pt_status pt_file_map(pt_mapped_file *m, const char *path) {
    memset(m, 0, sizeof *m);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return pt_error(PT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return pt_error(PT_ERR_IO, "%s: not a regular file", path);
    }
    m->size = (size_t)st.st_size;
    if (m->size > 0) {
        void *p = mmap(NULL, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            return pt_error(PT_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
        }
        m->data = p;
    }
    close(fd);
    m->path = strdup(path);
    return PT_OK;
}

void pt_file_unmap(pt_mapped_file *m) {
    if (m->data) munmap((void *)m->data, m->size);
    free(m->path);
    memset(m, 0, sizeof *m);
}

pt_status pt_file_read_all(const char *path, char **out, size_t *out_len) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return pt_error(PT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    if (!buf) { fclose(f); return pt_error(PT_ERR_OOM, "%s: out of memory", path); }
    for (;;) {
        if (len + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) { free(buf); fclose(f); return pt_error(PT_ERR_OOM, "%s: out of memory", path); }
            buf = nb;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) { free(buf); return pt_error(PT_ERR_IO, "%s: read error", path); }
    buf[len] = 0;
    *out = buf;
    if (out_len) *out_len = len;
    return PT_OK;
}

pt_status pt_file_write_atomic(const char *path, const void *data, size_t len) {
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp) return pt_error(PT_ERR_OOM, "out of memory");
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        pt_status st = pt_error(PT_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    const uint8_t *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            pt_status st = pt_error(PT_ERR_IO, "%s: write failed: %s", path, strerror(errno));
            close(fd);
            unlink(tmp);
            free(tmp);
            return st;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        pt_status st = pt_error(PT_ERR_IO, "%s: fsync failed: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return st;
    }
    if (rename(tmp, path) != 0) {
        pt_status st = pt_error(PT_ERR_IO, "%s: rename failed: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return st;
    }
    free(tmp);
    /* Make the rename itself durable. */
    char *dcopy = strdup(path);
    if (dcopy) {
        int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) { fsync(dfd); close(dfd); }
        free(dcopy);
    }
    return PT_OK;
}

int pt_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int pt_dir_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *pt_path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *s = malloc(n);
    if (!s) return NULL;
    size_t dl = strlen(dir);
    snprintf(s, n, "%s%s%s", dir, (dl && dir[dl - 1] == '/') ? "" : "/", name);
    return s;
}

pt_status pt_mkdir_p(const char *dir) {
    char *p = strdup(dir);
    if (!p) return pt_error(PT_ERR_OOM, "out of memory");
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s) continue;
        char c = *s;
        *s = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            pt_status st = pt_error(PT_ERR_IO, "%s: cannot create directory: %s", p, strerror(errno));
            free(p);
            return st;
        }
        *s = c;
        if (!c) break;
    }
    free(p);
    if (!pt_dir_exists(dir)) return pt_error(PT_ERR_IO, "%s: exists and is not a directory", dir);
    return PT_OK;
}
