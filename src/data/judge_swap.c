/* The swap check's arithmetic (pipeline.h): a reading on the mirrored scale mapped back, the
 * disagreement test, and the combined value. */
#include <math.h>
#include <string.h>

#include "data/pipeline.h"

pt_swap_reading pt_swap_combine(double forward, double mirrored_raw, int max) {
    pt_swap_reading r;
    r.forward = forward;
    r.mirrored = isfinite(mirrored_raw) ? (double)(max + 1) - mirrored_raw : NAN;
    bool both = isfinite(r.forward) && isfinite(r.mirrored);
    r.disagree = both && fabs(r.forward - r.mirrored) > PT_SWAP_TOLERANCE;
    r.value = both ? (r.forward + r.mirrored) / 2 : NAN;
    return r;
}

static json_t *num6(double v) { return isfinite(v) ? json_real(round(v * 1e6) / 1e6) : json_null(); }

json_t *pt_swap_json(const pt_swap_reading *r) {
    return json_pack("{s:o,s:o,s:b}", "forward", num6(r->forward), "mirrored", num6(r->mirrored), "disagree", r->disagree);
}

int pt_swap_mode_parse(const char *s) {
    if (!s || !strcmp(s, "flag")) return PT_SWAP_FLAG; /* a bare --swap-check flags */
    if (!strcmp(s, "off")) return PT_SWAP_OFF;
    if (!strcmp(s, "drop")) return PT_SWAP_DROP;
    return -1;
}
