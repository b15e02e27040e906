/* Building the trainable tensor list of an adapter, and the gradient reductions over it. */
#include "train/params.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

pt_status pt_lora_params_init(pt_lora_params *ps, pt_adapter *a) {
    memset(ps, 0, sizeof *ps);
    const int n_pairs = a->n_layers * (PT_LT_COUNT - 1) + 1, cap = 2 * n_pairs;
    ps->p = calloc((size_t)cap, sizeof *ps->p);
    ps->g = calloc((size_t)cap, sizeof *ps->g);
    ps->numel = calloc((size_t)cap, sizeof *ps->numel);
    ps->key = calloc((size_t)cap, sizeof *ps->key);
    ps->dA = calloc((size_t)n_pairs, sizeof *ps->dA);
    ps->dB = calloc((size_t)n_pairs, sizeof *ps->dB);
    if (!ps->p || !ps->g || !ps->numel || !ps->key || !ps->dA || !ps->dB) goto oom;
    for (int l = 0; l < a->n_layers; l++)
        for (int t = 0; t < PT_LT_COUNT; t++) {
            if (t == PT_LT_HEAD && l > 0) continue;
            const pt_lora_pair *pr = pt_adapter_pair(a, l, t);
            if (!pr) continue;
            for (int b = 0; b < 2; b++) {
                pt_adapter_key(ps->key[ps->n], sizeof ps->key[0], l, t, b);
                ps->p[ps->n] = b ? pr->B : pr->A;
                ps->numel[ps->n] = (int64_t)a->r * (b ? pr->out : pr->in);
                ps->total += ps->numel[ps->n];
                ps->n++;
            }
        }
    if (ps->n == 0) {
        pt_lora_params_free(ps);
        return pt_error(PT_ERR_ARG, "the adapter has no LoRA pairs to train");
    }
    ps->grad = calloc((size_t)ps->total, sizeof(float));
    ps->m = calloc((size_t)ps->total, sizeof(float));
    ps->v = calloc((size_t)ps->total, sizeof(float));
    if (!ps->grad || !ps->m || !ps->v) goto oom;
    int64_t off = 0;
    for (int i = 0; i < ps->n; i++) {
        ps->g[i] = ps->grad + off;
        off += ps->numel[i];
    }
    /* pair index of each tensor, in the order they were listed */
    int i = 0;
    for (int l = 0; l < a->n_layers; l++)
        for (int t = 0; t < PT_LT_COUNT; t++) {
            if (t == PT_LT_HEAD && l > 0) continue;
            if (!pt_adapter_pair(a, l, t)) continue;
            int slot = t == PT_LT_HEAD ? a->n_layers * (PT_LT_COUNT - 1) : l * (PT_LT_COUNT - 1) + t;
            ps->dA[slot] = ps->g[i++];
            ps->dB[slot] = ps->g[i++];
        }
    return PT_OK;
oom:
    pt_lora_params_free(ps);
    return pt_error(PT_ERR_OOM, "out of memory for LoRA gradients and optimiser state");
}

void pt_lora_params_free(pt_lora_params *ps) {
    free(ps->p), free(ps->g), free(ps->numel), free(ps->key), free(ps->dA), free(ps->dB);
    free(ps->grad), free(ps->m), free(ps->v);
    memset(ps, 0, sizeof *ps);
}

void pt_lora_params_zero_grad(pt_lora_params *ps) { memset(ps->grad, 0, sizeof(float) * ps->total); }

double pt_lora_params_grad_norm(const pt_lora_params *ps) {
    double s = 0;
    for (int64_t i = 0; i < ps->total; i++) s += (double)ps->grad[i] * ps->grad[i];
    return sqrt(s);
}

int pt_lora_params_find(const pt_lora_params *ps, const char *key) {
    for (int i = 0; i < ps->n; i++)
        if (!strcmp(ps->key[i], key)) return i;
    return -1;
}
