/* Rotary position embedding in the Hugging Face layout: element i of a head pairs with
 * element i + hd/2 (rotate_half), frequencies inv_freq[i] shared by both halves. The backward
 * pass rotates gradients back by the same angles. */
#include <math.h>

#include "nn/nn.h"

void pt_rope_tables(float *cos_t, float *sin_t, const int *pos, int n, const double *inv_freq, int half) {
    for (int t = 0; t < n; t++)
        for (int i = 0; i < half; i++) {
            double a = (double)pos[t] * inv_freq[i];
            cos_t[(int64_t)t * half + i] = (float)cos(a);
            sin_t[(int64_t)t * half + i] = (float)sin(a);
        }
}

void pt_rope_forward(float *x, const float *cos_t, const float *sin_t, int n, int n_heads, int hd) {
    int half = hd / 2;
#pragma omp parallel for schedule(static) if (n > 8)
    for (int t = 0; t < n; t++) {
        const float *c = cos_t + (int64_t)t * half, *s = sin_t + (int64_t)t * half;
        for (int h = 0; h < n_heads; h++) {
            float *v = x + ((int64_t)t * n_heads + h) * hd;
            for (int i = 0; i < half; i++) {
                float a = v[i], b = v[i + half];
                v[i] = a * c[i] - b * s[i];
                v[i + half] = b * c[i] + a * s[i];
            }
        }
    }
}

/* The rotation is orthogonal: its transpose rotates by -angle. */
void pt_rope_backward(float *dx, const float *cos_t, const float *sin_t, int n, int n_heads, int hd) {
    int half = hd / 2;
#pragma omp parallel for schedule(static) if (n > 8)
    for (int t = 0; t < n; t++) {
        const float *c = cos_t + (int64_t)t * half, *s = sin_t + (int64_t)t * half;
        for (int h = 0; h < n_heads; h++) {
            float *v = dx + ((int64_t)t * n_heads + h) * hd;
            for (int i = 0; i < half; i++) {
                float a = v[i], b = v[i + half];
                v[i] = a * c[i] + b * s[i];
                v[i + half] = b * c[i] - a * s[i];
            }
        }
    }
}
