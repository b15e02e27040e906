/* RMSNorm: x * rsqrt(mean(x^2) + eps) * w, the mean accumulated in double. */
#include <math.h>

#include "nn/nn.h"

void pt_rmsnorm_forward(float *out, float *rstd, const float *in, const float *weight, int n, int dim, float eps) {
#pragma omp parallel for schedule(static) if (n > 8)
    for (int t = 0; t < n; t++) {
        const float *x = in + (int64_t)t * dim;
        float *o = out + (int64_t)t * dim;
        double ss = 0;
        for (int i = 0; i < dim; i++) ss += (double)x[i] * x[i];
        float r = (float)(1.0 / sqrt(ss / dim + eps));
        if (rstd) rstd[t] = r;
        for (int i = 0; i < dim; i++) o[i] = x[i] * r * weight[i];
    }
}
