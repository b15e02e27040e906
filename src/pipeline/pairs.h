/* The pairs stage of a recipe: a seeded sample of preference pairs from one or more files,
 * mixed in given proportions, written as JSONL that `politune train` reads, with an optional
 * held-out set drawn apart (pairs.c). The CLI's `politune run --make-pairs` calls it. */
#ifndef PT_PIPELINE_PAIRS_H
#define PT_PIPELINE_PAIRS_H

#include <stddef.h>
#include <stdint.h>

#include "util/status.h"

#define PT_PAIRS_MAX_FILES 16

typedef struct {
    const char *const *files; /* (n_files) JSON arrays (PoliTune chat JSON) or JSONL */
    int n_files;
    const double *weights;    /* (n_files) positive shares, normalised here; NULL: equal */
    long count;               /* pairs to sample; 0: as many as the proportions allow */
    long heldout;             /* pairs to hold out besides (0: none) */
    const char *out, *heldout_out;
    uint64_t seed;
    /* A line of information (a sample scaled down, a held-out set cut short). May be NULL. */
    void (*note)(void *user, const char *msg);
    void *user;
} pt_pairs_request;

typedef struct {
    size_t total, n_held;                     /* pairs written to out / heldout_out */
    size_t available[PT_PAIRS_MAX_FILES];     /* records in each file */
    long taken[PT_PAIRS_MAX_FILES];           /* of which sampled */
} pt_pairs_result;

/* Writes q->out (and q->heldout_out), each atomically. */
pt_status pt_pairs_sample(const pt_pairs_request *q, pt_pairs_result *res);

#endif
