/* The gated MLP's activation: silu(gate) * up. */
#include <math.h>

#include "nn/nn.h"

void pt_swiglu_forward(float *h, const float *gate, const float *up, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i];
        h[i] = g / (1.0f + expf(-g)) * up[i];
    }
}
