/* Direct Preference Optimization losses (sigmoid with label smoothing, IPO, hinge) and their
 * derivatives with respect to the policy's log-probabilities, in double precision. */
#include <math.h>
#include <string.h>

#include "train/loss.h"

static const char *names[] = {"sigmoid", "ipo", "hinge"};

pt_status pt_dpo_loss_from_name(const char *name, pt_dpo_loss_type *out) {
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, names[i])) { *out = (pt_dpo_loss_type)i; return PT_OK; }
    return pt_error(PT_ERR_ARG, "unknown DPO loss '%s' (sigmoid, ipo, hinge)", name);
}

const char *pt_dpo_loss_name(pt_dpo_loss_type t) { return (unsigned)t < 3 ? names[t] : "?"; }

double pt_logsigmoid(double x) { return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)); }

static double sigmoid(double x) { return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }

double pt_dpo_loss(pt_dpo_loss_type type, double beta, double ls, double pc, double pr, double rc, double rr, double *d_pc,
                   double *d_pr) {
    const double h = (pc - rc) - (pr - rr), z = beta * h;
    double loss, dh; /* d loss / d h */
    switch (type) {
    case PT_DPO_IPO: {
        const double e = h - 1.0 / (2.0 * beta);
        loss = e * e;
        dh = 2.0 * e;
        break;
    }
    case PT_DPO_HINGE:
        loss = z < 1.0 ? 1.0 - z : 0.0;
        dh = z < 1.0 ? -beta : 0.0;
        break;
    default:
        loss = -(1.0 - ls) * pt_logsigmoid(z) - ls * pt_logsigmoid(-z);
        dh = beta * (-(1.0 - ls) * sigmoid(-z) + ls * sigmoid(z));
        break;
    }
    *d_pc = dh;
    *d_pr = -dh;
    return loss;
}
