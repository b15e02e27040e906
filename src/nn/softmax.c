/* Log-softmax of one row at one index, the building block of sequence log-probabilities, and
 * the row-wise log-softmax / cross-entropy pair the training losses differentiate through
 * (compiled for float32 and float64, real.h). */
#include <math.h>

#include "nn/fastexp.h"
#include "nn/nn.h"

#ifndef PT_F64 /* the engine's, float32 only */
double pt_log_softmax_at(const float *logits, int vocab, int target) {
    float mx = logits[0];
    for (int i = 1; i < vocab; i++) mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0;
    for (int i = 0; i < vocab; i++) sum += exp((double)logits[i] - mx);
    return (double)logits[target] - mx - log(sum);
}
#endif

void PT_RN(pt_logsoftmax_forward)(double *logp, pt_real *rows, const int32_t *target, int m, int vocab) {
#pragma omp parallel for schedule(static) if (m > 1)
    for (int i = 0; i < m; i++) {
        pt_real *x = rows + (int64_t)i * vocab;
        pt_real mx = x[0];
#pragma omp simd reduction(max : mx)
        for (int j = 1; j < vocab; j++) mx = x[j] > mx ? x[j] : mx;
        const pt_real xt = x[target[i]];
        double sum = 0;
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < vocab; j++) {
            x[j] = pt_real_fast_exp(x[j] - mx);
            sum += x[j];
        }
        logp[i] = (double)xt - mx - log(sum);
        const pt_real inv = (pt_real)(1.0 / sum);
#pragma omp simd
        for (int j = 0; j < vocab; j++) x[j] *= inv;
    }
}

void PT_RN(pt_logsoftmax_backward)(pt_real *rows, const int32_t *target, const double *coef, int m, int vocab) {
#pragma omp parallel for schedule(static) if (m > 1)
    for (int i = 0; i < m; i++) {
        pt_real *p = rows + (int64_t)i * vocab, c = (pt_real)coef[i];
        for (int j = 0; j < vocab; j++) p[j] *= -c;
        p[target[i]] += c;
    }
}
