/* xoshiro256** (Blackman & Vigna), seeded through SplitMix64 so any 64-bit seed gives a
 * well-mixed, never all-zero state. */
#include "util/rng.h"

static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void pt_rng_seed(pt_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t pt_rng_next(pt_rng *r) {
    uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

float pt_rng_float(pt_rng *r) { return (float)(pt_rng_next(r) >> 40) * (1.0f / 16777216.0f); }
double pt_rng_double(pt_rng *r) { return (double)(pt_rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }
