/* Log-softmax of one row at one index, the building block of sequence log-probabilities. */
#include <math.h>

#include "nn/nn.h"

double pt_log_softmax_at(const float *logits, int vocab, int target) {
    float mx = logits[0];
    for (int i = 1; i < vocab; i++) mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0;
    for (int i = 0; i < vocab; i++) sum += exp((double)logits[i] - mx);
    return (double)logits[target] - mx - log(sum);
}
