/* The training model's handle: the float32 or the float64 compilation of forward_train.c and
 * backward.c, chosen when it is created (shape.f64). */
#include <stdlib.h>

#include "train/tmodel.h"
#include "train/tmodel_variants.h"

struct pt_tmodel {
    bool f64;
    void *impl;
};

pt_status pt_tmodel_new(pt_tmodel **out, const pt_model *m, const pt_adapter *a, const pt_lora_params *ps,
                        const pt_tmodel_shape *shape) {
    *out = NULL;
    /* the per-head Q/K norms have no backward in the training model yet */
    if (m->cfg.arch == PT_ARCH_QWEN3)
        return pt_error(PT_ERR_UNSUPPORTED, "%s: qwen3 models run (generate, score, compass, merge) but cannot be trained "
                        "yet: the training model has no backward for their per-head Q/K RMSNorm", m->path ? m->path : "model");
    pt_tmodel *t = calloc(1, sizeof *t);
    if (!t) return pt_error(PT_ERR_OOM, "out of memory");
    t->f64 = shape->f64;
    pt_status st = t->f64 ? pt_tmodel_impl_new_f64(&t->impl, m, a, ps, shape) : pt_tmodel_impl_new(&t->impl, m, a, ps, shape);
    if (st) { free(t); return st; }
    *out = t;
    return PT_OK;
}

void pt_tmodel_free(pt_tmodel *t) {
    if (!t) return;
    if (t->f64) pt_tmodel_impl_free_f64(t->impl);
    else pt_tmodel_impl_free(t->impl);
    free(t);
}

size_t pt_tmodel_bytes(const pt_tmodel *t) { return t->f64 ? pt_tmodel_impl_bytes_f64(t->impl) : pt_tmodel_impl_bytes(t->impl); }

pt_status pt_tmodel_forward(pt_tmodel *t, const pt_tbatch *b, bool lora, bool train, uint64_t drop_seed, double *logp) {
    return t->f64 ? pt_tmodel_impl_forward_f64(t->impl, b, lora, train, drop_seed, logp)
                  : pt_tmodel_impl_forward(t->impl, b, lora, train, drop_seed, logp);
}

pt_status pt_tmodel_backward(pt_tmodel *t, const pt_tbatch *b, const double *coef) {
    return t->f64 ? pt_tmodel_impl_backward_f64(t->impl, b, coef) : pt_tmodel_impl_backward(t->impl, b, coef);
}
