/* RMSNorm: x * rsqrt(mean(x^2) + eps) * w, the mean accumulated in double; and its backward. */
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

/* y = x r w with r = (mean(x^2) + eps)^-1/2, so with g = dy w:
 * dx = r g - x r^3 mean(g x). The mean is accumulated in double like the forward's. */
void pt_rmsnorm_backward(float *din, float *dweight, const float *dout, const float *in, const float *weight,
                         const float *rstd, int n, int dim) {
#pragma omp parallel for schedule(static) if (n > 8)
    for (int t = 0; t < n; t++) {
        const float *x = in + (int64_t)t * dim, *dy = dout + (int64_t)t * dim;
        float *dx = din + (int64_t)t * dim;
        const float r = rstd[t];
        double gx = 0;
        for (int i = 0; i < dim; i++) gx += (double)dy[i] * weight[i] * x[i];
        const float c = (float)(gx / dim) * r * r * r;
        for (int i = 0; i < dim; i++) dx[i] += r * dy[i] * weight[i] - c * x[i];
    }
    if (dweight) /* a separate loop over columns keeps each thread's writes its own */
#pragma omp parallel for schedule(static) if (n > 8)
        for (int i = 0; i < dim; i++) {
            double s = 0;
            for (int t = 0; t < n; t++) s += (double)dout[(int64_t)t * dim + i] * in[(int64_t)t * dim + i] * rstd[t];
            dweight[i] += (float)s;
        }
}
