/* exp(x) for float32 softmax loops, inlined so that loops over it vectorise (libm's expf is a
 * call per element). Range reduction x = k ln2 + r with |r| <= ln2/2, a degree-7 polynomial
 * for e^r (relative error < 1e-8 before rounding, so within about 1 ulp of expf), and 2^k
 * put into the exponent bits. Inputs below -87.3 give ~1e-38 instead of 0 (softmax rows
 * only ever pass x - max <= 0, where that difference is invisible). Private to src/nn. */
#ifndef PT_NN_FASTEXP_H
#define PT_NN_FASTEXP_H

#include <stdint.h>
#include <string.h>

static inline float pt_fast_expf(float x) {
    x = x < -87.3f ? -87.3f : x > 88.7f ? 88.7f : x;
    const float k = __builtin_rintf(x * 1.44269504088896341f);
    const float r = (x - k * 0.693145751953125f) - k * 1.428606765330187e-06f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits = ((int32_t)k + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

#endif
