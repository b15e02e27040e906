/* The gated MLP's activation: silu(gate) * up, and its backward. */
#include <math.h>

#include "nn/fastexp.h"
#include "nn/nn.h"

void pt_swiglu_forward(float *h, const float *gate, const float *up, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i];
        h[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

/* d silu(g)/dg = s (1 + g (1 - s)) with s = sigmoid(g). */
void pt_swiglu_backward(float *dgate, float *dup, const float *dh, const float *gate, const float *up, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i], u = up[i], d = dh[i];
        float s = 1.0f / (1.0f + pt_fast_expf(-g));
        dup[i] = d * g * s;
        dgate[i] = d * u * s * (1.0f + g * (1.0f - s));
    }
}
