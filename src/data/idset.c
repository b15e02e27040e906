/* String sets and stable record ids (see idset.h). */
#include "data/idset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t pt_data_hash(const void *data, size_t len, uint64_t seed) {
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

void pt_data_id(char *buf, const char *text, size_t len) {
    snprintf(buf, 17, "%016llx", (unsigned long long)pt_data_hash(text, len, 0));
}

void pt_idset_init(pt_idset *s) { memset(s, 0, sizeof *s); }

void pt_idset_free(pt_idset *s) {
    for (size_t i = 0; i < s->cap; i++) free(s->keys[i]);
    free(s->keys);
    memset(s, 0, sizeof *s);
}

static size_t slot_of(char *const *keys, size_t cap, const char *key) {
    size_t i = pt_data_hash(key, strlen(key), 1) & (cap - 1);
    while (keys[i] && strcmp(keys[i], key)) i = (i + 1) & (cap - 1);
    return i;
}

bool pt_idset_has(const pt_idset *s, const char *key) {
    return s->cap && s->keys[slot_of(s->keys, s->cap, key)] != NULL;
}

int pt_idset_add(pt_idset *s, const char *key) {
    if ((s->n + 1) * 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        char **k = calloc(cap, sizeof *k);
        if (!k) return -1;
        for (size_t i = 0; i < s->cap; i++)
            if (s->keys[i]) k[slot_of(k, cap, s->keys[i])] = s->keys[i];
        free(s->keys);
        s->keys = k;
        s->cap = cap;
    }
    size_t i = slot_of(s->keys, s->cap, key);
    if (s->keys[i]) return 0;
    if (!(s->keys[i] = strdup(key))) return -1;
    s->n++;
    return 1;
}
