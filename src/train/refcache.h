/* The reference log-prob cache of --precompute-ref: the summed log-probabilities of every
 * chosen and rejected response under the base model (adapter off), computed once and kept
 * on disk in ref_logps-<key>.bin, where the key digests the model (configuration, norms and
 * a sample of every weight matrix) and the tokenized data. A file whose key, length or
 * header does not match is ignored and recomputed. */
#ifndef PT_TRAIN_REFCACHE_H
#define PT_TRAIN_REFCACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "model/model.h"

uint64_t pt_model_fingerprint(const pt_model *m);

/* Path of the cache file for `key` under dir (malloc'd). */
char *pt_refcache_path(const char *dir, uint64_t key);
/* Fills v (n) and sets *found when a valid cache exists. */
pt_status pt_refcache_load(const char *path, uint64_t key, long n, double *v, bool *found);
pt_status pt_refcache_save(const char *path, uint64_t key, long n, const double *v);

#endif
