/* Training losses and what they hand the backward pass: the derivative of the loss with
 * respect to each sequence's log-probability (the backward pass spreads it over the
 * sequence's loss rows).
 *
 * DPO (TRL's definitions): z = beta * ((pi_c - ref_c) - (pi_r - ref_r));
 *   sigmoid: -(1 - ls) logsigmoid(z) - ls logsigmoid(-z)    (ls: label smoothing)
 *   ipo:     (z / beta - 1 / (2 beta))^2, on length-averaged log-probabilities
 *   hinge:   relu(1 - z)
 * SFT: the mean cross-entropy over every response token of the (accumulated) batch. */
#ifndef PT_TRAIN_LOSS_H
#define PT_TRAIN_LOSS_H

#include "util/status.h"

typedef enum { PT_DPO_SIGMOID = 0, PT_DPO_IPO, PT_DPO_HINGE } pt_dpo_loss_type;

pt_status pt_dpo_loss_from_name(const char *name, pt_dpo_loss_type *out);
const char *pt_dpo_loss_name(pt_dpo_loss_type t);

/* One pair's loss from policy (pc, pr) and reference (rc, rr) log-probabilities (already
 * length-averaged for IPO); d_pc, d_pr receive d loss / d pc and d loss / d pr. */
double pt_dpo_loss(pt_dpo_loss_type type, double beta, double label_smoothing, double pc, double pr, double rc, double rr,
                   double *d_pc, double *d_pr);

/* log(sigmoid(x)) without overflow. */
double pt_logsigmoid(double x);

/* SFT: a sequence with summed log-probability logp contributes -logp / n_tokens_total to the
 * loss; its derivative is -1 / n_tokens_total. */
double pt_sft_loss(double logp, long n_tokens_total, double *d_logp);

#endif
