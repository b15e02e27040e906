/* Learning-rate schedules with linear warm-up (see optim.h). */
#include <math.h>
#include <string.h>

#include "train/optim.h"

static const char *names[] = {"constant", "cosine", "linear"};

pt_status pt_schedule_from_name(const char *name, pt_schedule *out) {
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, names[i])) { *out = (pt_schedule)i; return PT_OK; }
    return pt_error(PT_ERR_ARG, "unknown schedule '%s' (constant, cosine, linear)", name);
}

const char *pt_schedule_name(pt_schedule s) { return (unsigned)s < 3 ? names[s] : "?"; }

double pt_schedule_factor(pt_schedule s, long step, long warmup, long total) {
    if (step < warmup) return (double)step / (double)(warmup > 1 ? warmup : 1);
    if (s == PT_SCHED_CONSTANT) return 1.0;
    long span = total - warmup;
    double p = (double)(step - warmup) / (double)(span > 1 ? span : 1);
    if (s == PT_SCHED_LINEAR) return p < 1.0 ? 1.0 - p : 0.0;
    double f = 0.5 * (1.0 + cos(M_PI * p));
    return f > 0.0 ? f : 0.0;
}
