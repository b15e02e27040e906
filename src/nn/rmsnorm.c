/* RMSNorm: x * rsqrt(mean(x^2) + eps) * w, the mean accumulated in double; and its backward.
 * Compiled for float32 and float64 (real.h). */
#include <math.h>

#include "nn/nn.h"

void PT_RN(pt_rmsnorm_forward)(pt_real *out, pt_real *rstd, const pt_real *in, const float *weight, int n, int dim, float eps) {
#pragma omp parallel for schedule(static) if (n > 8)
    for (int t = 0; t < n; t++) {
        const pt_real *x = in + (int64_t)t * dim;
        pt_real *o = out + (int64_t)t * dim;
        double ss = 0;
        for (int i = 0; i < dim; i++) ss += (double)x[i] * x[i];
        pt_real r = (pt_real)(1.0 / sqrt(ss / dim + eps));
        if (rstd) rstd[t] = r;
        for (int i = 0; i < dim; i++) o[i] = x[i] * r * weight[i];
    }
}

/* y = x r w with r = (mean(x^2) + eps)^-1/2, so with g = dy w:
 * dx = r g - x r^3 mean(g x). The mean is accumulated in double like the forward's. */
void PT_RN(pt_rmsnorm_backward)(pt_real *din, pt_real *dweight, const pt_real *dout, const pt_real *in, const float *weight,
                                const pt_real *rstd, int n, int dim) {
#pragma omp parallel for schedule(static) if (n > 8)
    for (int t = 0; t < n; t++) {
        const pt_real *x = in + (int64_t)t * dim, *dy = dout + (int64_t)t * dim;
        pt_real *dx = din + (int64_t)t * dim;
        const pt_real r = rstd[t];
        double gx = 0;
        for (int i = 0; i < dim; i++) gx += (double)dy[i] * weight[i] * x[i];
        const pt_real c = (pt_real)(gx / dim) * r * r * r;
        for (int i = 0; i < dim; i++) dx[i] += r * dy[i] * weight[i] - c * x[i];
    }
    if (dweight) /* a separate loop over columns keeps each thread's writes its own */
#pragma omp parallel for schedule(static) if (n > 8)
        for (int i = 0; i < dim; i++) {
            double s = 0;
            for (int t = 0; t < n; t++) s += (double)dout[(int64_t)t * dim + i] * in[(int64_t)t * dim + i] * rstd[t];
            dweight[i] += (pt_real)s;
        }
}
