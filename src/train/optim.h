/* The optimiser and the learning-rate schedule.
 *
 * AdamW with PyTorch's semantics (torch.optim.AdamW, single-tensor path): decoupled weight
 * decay p -= lr * wd * p, then bias-corrected moments, eps added outside the square root:
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * computed per element in double, moments stored as float32.
 *
 * Schedules as transformers / torchtune define them, as a multiplier of the base rate at
 * optimiser step s (0-based; the first step uses s = 0, so warm-up starts from 0): linear
 * warm-up s / warmup for s < warmup, then constant 1, cosine 0.5 (1 + cos(pi p)) or linear
 * 1 - p, with p = (s - warmup) / (total - warmup). */
#ifndef PT_TRAIN_OPTIM_H
#define PT_TRAIN_OPTIM_H

#include <stdint.h>

#include "util/status.h"

typedef struct {
    double beta1, beta2, eps, weight_decay;
} pt_adamw;

/* One AdamW step (t >= 1 counts steps taken, this one included) over n elements. */
void pt_adamw_step(const pt_adamw *o, double lr, int64_t t, float *p, const float *g, float *m, float *v, int64_t n);

typedef enum { PT_SCHED_CONSTANT = 0, PT_SCHED_COSINE, PT_SCHED_LINEAR } pt_schedule;

pt_status pt_schedule_from_name(const char *name, pt_schedule *out);
const char *pt_schedule_name(pt_schedule s);
/* Learning-rate multiplier at optimiser step `step` (0-based) of `total`. */
double pt_schedule_factor(pt_schedule s, long step, long warmup, long total);

#endif
