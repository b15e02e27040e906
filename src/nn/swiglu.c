/* The gated MLP's activation: silu(gate) * up, and its backward.
 * Compiled for float32 and float64 (real.h). */
#include <math.h>

#include "nn/fastexp.h"
#include "nn/nn.h"

void PT_RN(pt_swiglu_forward)(pt_real *h, const pt_real *gate, const pt_real *up, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        pt_real g = gate[i];
        h[i] = g / (1 + pt_real_exp(-g)) * up[i];
    }
}

/* d silu(g)/dg = s (1 + g (1 - s)) with s = sigmoid(g). */
void PT_RN(pt_swiglu_backward)(pt_real *dgate, pt_real *dup, const pt_real *dh, const pt_real *gate, const pt_real *up, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        pt_real g = gate[i], u = up[i], d = dh[i];
        pt_real s = 1 / (1 + pt_real_fast_exp(-g));
        dup[i] = d * g * s;
        dgate[i] = d * u * s * (1 + g * (1 - s));
    }
}
