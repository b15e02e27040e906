/* AdamW with PyTorch semantics (see optim.h). */
#include <math.h>

#include "train/optim.h"

void pt_adamw_step(const pt_adamw *o, double lr, int64_t t, float *p, const float *g, float *m, float *v, int64_t n) {
    const double b1 = o->beta1, b2 = o->beta2, bc1 = 1.0 - pow(b1, (double)t), bc2_sqrt = sqrt(1.0 - pow(b2, (double)t));
    const double step = lr / bc1, decay = 1.0 - lr * o->weight_decay;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        const double gi = g[i];
        const double mi = m[i] + (1.0 - b1) * (gi - m[i]); /* torch's lerp */
        const double vi = b2 * v[i] + (1.0 - b2) * gi * gi;
        m[i] = (float)mi;
        v[i] = (float)vi;
        p[i] = (float)((double)p[i] * decay - step * mi / (sqrt(vi) / bc2_sqrt + o->eps));
    }
}
