/* Supervised fine-tuning loss: token cross-entropy averaged over every response token of the
 * accumulated batch (so micro-batches of different sizes weigh tokens equally). */
#include "train/loss.h"

double pt_sft_loss(double logp, long n_tokens_total, double *d_logp) {
    *d_logp = -1.0 / (double)n_tokens_total;
    return -logp / (double)n_tokens_total;
}
