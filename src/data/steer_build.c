/* Steering vectors from preference pairs (steer_build.h). Each response runs after its prompt
 * in one cache slot; the residual stream at every layer's output is summed over the
 * response's tokens only (pt_engine_set_capture), so the prompt, shared by both sides,
 * contributes nothing but context. */
#include "data/steer_build.h"

#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"

/* mean (n_layers, D) of the residual stream over the response tokens of ids = prompt + resp */
static pt_status response_mean(pt_engine *e, const pt_example *x, int side, double *sums, double *mean, size_t LD) {
    PT_TRY(pt_engine_truncate(e, 0, 0));
    pt_engine_set_capture(e, NULL, 0);
    PT_TRY(pt_engine_forward_one(e, 0, x->prompt, x->np, PT_LOGITS_NONE, NULL));
    memset(sums, 0, sizeof(double) * LD);
    pt_engine_set_capture(e, sums, 0);
    pt_status st = pt_engine_forward_one(e, 0, x->resp[side], x->nr[side], PT_LOGITS_NONE, NULL);
    pt_engine_set_capture(e, NULL, 0);
    PT_TRY(st);
    for (size_t i = 0; i < LD; i++) mean[i] = sums[i] / x->nr[side];
    return PT_OK;
}

pt_status pt_steer_build(pt_steer **out, const pt_model *m, const pt_dataset *d, int max_pairs, void (*progress)(void *user, int done, int n),
                         void *user) {
    *out = NULL;
    if (!d->pairs) return pt_error(PT_ERR_ARG, "steering vectors need preference pairs (chosen and rejected)");
    int n = max_pairs > 0 && max_pairs < d->n ? max_pairs : d->n;
    if (n <= 0) return pt_error(PT_ERR_ARG, "no pairs to build a steering vector from");
    const int L = m->cfg.n_layers, D = m->cfg.dim;
    const size_t LD = (size_t)L * D;
    int longest = 1;
    for (int k = 0; k < n; k++) {
        const pt_example *x = &d->ex[k];
        if (x->nr[0] < 1 || x->nr[1] < 1) return pt_error(PT_ERR_ARG, "pair at line %d has an empty response", x->line);
        int len = x->np + (x->nr[0] > x->nr[1] ? x->nr[0] : x->nr[1]);
        if (len > longest) longest = len;
    }
    pt_engine *e = NULL;
    PT_TRY(pt_engine_new(&e, m, 1, longest));
    double *buf = calloc(LD * 4, sizeof(double)); /* sums, chosen mean, rejected mean, total */
    pt_steer *s = NULL;
    pt_status st = buf ? pt_steer_new(&s, L, D) : pt_error(PT_ERR_OOM, "out of memory");
    double *sums = buf, *mc = buf + LD, *mr = buf + 2 * LD, *total = buf + 3 * LD;
    for (int k = 0; k < n && !st; k++) {
        const pt_example *x = &d->ex[k];
        st = response_mean(e, x, 0, sums, mc, LD);
        if (!st) st = response_mean(e, x, 1, sums, mr, LD);
        for (size_t i = 0; !st && i < LD; i++) total[i] += mc[i] - mr[i];
        if (!st && progress) progress(user, k + 1, n);
    }
    if (!st) {
        for (size_t i = 0; i < LD; i++) s->v[i] = (float)(total[i] / n);
        for (int l = 0; l < L; l++) s->has[l] = true;
    }
    pt_engine_free(e);
    free(buf);
    if (st) { pt_steer_free(s); return st; }
    *out = s;
    return PT_OK;
}
