/* Rotary position embedding in the Hugging Face layout: element i of a head pairs with
 * element i + hd/2 (rotate_half), frequencies inv_freq[i] shared by both halves. The backward
 * pass rotates gradients back by the same angles.
 * Compiled for float32 and float64 (real.h). */
#include <math.h>

#include "nn/nn.h"

void PT_RN(pt_rope_tables)(pt_real *cos_t, pt_real *sin_t, const int *pos, int n, const double *inv_freq, int half) {
    for (int t = 0; t < n; t++)
        for (int i = 0; i < half; i++) {
            double a = (double)pos[t] * inv_freq[i];
            cos_t[(int64_t)t * half + i] = (pt_real)cos(a);
            sin_t[(int64_t)t * half + i] = (pt_real)sin(a);
        }
}

void PT_RN(pt_rope_forward)(pt_real *x, const pt_real *cos_t, const pt_real *sin_t, int n, int n_heads, int hd) {
    int half = hd / 2;
#pragma omp parallel for schedule(static) if (n > 8)
    for (int t = 0; t < n; t++) {
        const pt_real *c = cos_t + (int64_t)t * half, *s = sin_t + (int64_t)t * half;
        for (int h = 0; h < n_heads; h++) {
            pt_real *v = x + ((int64_t)t * n_heads + h) * hd;
            for (int i = 0; i < half; i++) {
                pt_real a = v[i], b = v[i + half];
                v[i] = a * c[i] - b * s[i];
                v[i + half] = b * c[i] + a * s[i];
            }
        }
    }
}

/* The rotation is orthogonal: its transpose rotates by -angle. */
void PT_RN(pt_rope_backward)(pt_real *dx, const pt_real *cos_t, const pt_real *sin_t, int n, int n_heads, int hd) {
    int half = hd / 2;
#pragma omp parallel for schedule(static) if (n > 8)
    for (int t = 0; t < n; t++) {
        const pt_real *c = cos_t + (int64_t)t * half, *s = sin_t + (int64_t)t * half;
        for (int h = 0; h < n_heads; h++) {
            pt_real *v = dx + ((int64_t)t * n_heads + h) * hd;
            for (int i = 0; i < half; i++) {
                pt_real a = v[i], b = v[i + half];
                v[i] = a * c[i] + b * s[i];
                v[i + half] = b * c[i] - a * s[i];
            }
        }
    }
}
