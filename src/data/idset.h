/* A set of strings (record ids) with open addressing: what a resumed stage has already done,
 * and which texts were already seen (duplicates). */
#ifndef PT_DATA_IDSET_H
#define PT_DATA_IDSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char **keys;   /* (cap) owned copies, NULL for empty */
    size_t n, cap;
} pt_idset;

void pt_idset_init(pt_idset *s);
void pt_idset_free(pt_idset *s);
bool pt_idset_has(const pt_idset *s, const char *key);
/* Adds a copy of key; returns 1 if added, 0 if already there, -1 when out of memory. */
int pt_idset_add(pt_idset *s, const char *key);

/* 64-bit FNV-1a of bytes, then a SplitMix64 finaliser to spread it. */
uint64_t pt_data_hash(const void *data, size_t len, uint64_t seed);
/* The stable id of a text: 16 lowercase hex digits of its hash (buf needs 17 bytes). */
void pt_data_id(char *buf, const char *text, size_t len);

#endif
