/* Shared by the fuzz targets that take two files in one input: the bytes before the first
 * "\n#--\n" are the first file, the rest the second (no separator: all of it is the second),
 * and a per-process scratch directory to write them into, since the loaders take paths. */
#ifndef PT_FUZZ_SPLIT_H
#define PT_FUZZ_SPLIT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void fuzz_split(const uint8_t *data, size_t size, const uint8_t **a, size_t *na, const uint8_t **b, size_t *nb) {
    const uint8_t *sep = memmem(data, size, "\n#--\n", 5);
    if (!sep) { *a = data, *na = 0, *b = data, *nb = size; return; }
    *a = data, *na = (size_t)(sep - data);
    *b = sep + 5, *nb = size - *na - 5;
}

/* The scratch directory, created on first use and never removed while the fuzzer runs: under
 * $TMPDIR when set, else /tmp. The loaders' writes (adapter export) sync to disk, so a
 * campaign on a disk-backed /tmp waits on I/O: TMPDIR=/dev/shm keeps it on the CPU. */
static const char *fuzz_dir(void) {
    static char dir[512];
    if (!dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/politune-fuzz-XXXXXX", tmp && *tmp && strlen(tmp) < 400 ? tmp : "/tmp");
        if (!mkdtemp(dir)) abort();
    }
    return dir;
}

static void fuzz_write(const char *dir, const char *name, const uint8_t *p, size_t n) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n && fwrite(p, 1, n, f) != n) abort();
    fclose(f);
}

#endif
