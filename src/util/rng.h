/* A small, seedable, portable random number generator (SplitMix64 seeding a xoshiro256**
 * state) whose full state can be saved and restored, so seeded runs are repeatable and
 * resumable across machines. */
#ifndef PT_UTIL_RNG_H
#define PT_UTIL_RNG_H

#include <stdint.h>

typedef struct { uint64_t s[4]; } pt_rng;

void pt_rng_seed(pt_rng *r, uint64_t seed);
uint64_t pt_rng_next(pt_rng *r);
/* Uniform in [0, 1) with 24 bits (float) / 53 bits (double). */
float pt_rng_float(pt_rng *r);
double pt_rng_double(pt_rng *r);

#endif
