/* Causal grouped-query attention over a key/value cache, one (query row, head) pair per
 * work item; softmax with the running max subtracted, in float with a double sum. */
#include <math.h>
#include <stdlib.h>

#include "nn/nn.h"

void pt_attention_forward(float *out, const float *q, const float *k_cache, const float *v_cache, const int *pos,
                          int n_q, int n_heads, int n_kv_heads, int hd) {
    const int group = n_heads / n_kv_heads, kv_dim = n_kv_heads * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    int max_len = 0;
    for (int t = 0; t < n_q; t++) max_len = pos[t] + 1 > max_len ? pos[t] + 1 : max_len;
#pragma omp parallel
    {
        float *scores = malloc(sizeof(float) * (max_len > 0 ? max_len : 1));
#pragma omp for collapse(2) schedule(dynamic, 4)
        for (int t = 0; t < n_q; t++)
            for (int h = 0; h < n_heads; h++) {
                const float *qv = q + ((int64_t)t * n_heads + h) * hd;
                const int kvh = h / group, len = pos[t] + 1;
                float mx = -INFINITY;
                for (int s = 0; s < len; s++) {
                    const float *kv = k_cache + (int64_t)s * kv_dim + kvh * hd;
                    float d = 0;
                    for (int i = 0; i < hd; i++) d += qv[i] * kv[i];
                    d *= scale;
                    scores[s] = d;
                    if (d > mx) mx = d;
                }
                double sum = 0;
                for (int s = 0; s < len; s++) {
                    scores[s] = expf(scores[s] - mx);
                    sum += scores[s];
                }
                float inv = (float)(1.0 / sum);
                float *o = out + ((int64_t)t * n_heads + h) * hd;
                for (int i = 0; i < hd; i++) o[i] = 0;
                for (int s = 0; s < len; s++) {
                    const float *vv = v_cache + (int64_t)s * kv_dim + kvh * hd;
                    float p = scores[s] * inv;
                    for (int i = 0; i < hd; i++) o[i] += p * vv[i];
                }
            }
        free(scores);
    }
}
