/* Files: read-only memory maps (model weights are never copied when they need no
 * conversion), whole-file reads, and atomic writes (temporary file, fsync, rename) so that
 * an interrupted or failed write never damages what was there before. */
#ifndef PT_UTIL_FILE_H
#define PT_UTIL_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "util/status.h"

typedef struct {
    const uint8_t *data; /* NULL for an empty file */
    size_t size;
    char *path;          /* owned copy, for error messages */
} pt_mapped_file;

pt_status pt_file_map(pt_mapped_file *m, const char *path);
void pt_file_unmap(pt_mapped_file *m);

/* Reads a whole file into a NUL-terminated malloc'd buffer. */
pt_status pt_file_read_all(const char *path, char **out, size_t *out_len);

/* Writes `len` bytes to `path` atomically: path.tmp.<pid>, fsync, rename, fsync dir. */
pt_status pt_file_write_atomic(const char *path, const void *data, size_t len);

/* Creates a directory and its missing parents (mkdir -p). */
pt_status pt_mkdir_p(const char *dir);

int pt_file_exists(const char *path);
int pt_dir_exists(const char *path);

/* Joins a directory and a file name into a malloc'd string. */
char *pt_path_join(const char *dir, const char *name);

#endif
