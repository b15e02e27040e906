/* The two compilations of the training model (float32, and float64 with the suffix _f64;
 * see nn/real.h) behind one set of declarations, so that tmodel.c can call either and each
 * compilation checks its definitions against them. The handle is the implementation's own
 * buffers (tmodel_impl.h), opaque here. */
#ifndef PT_TRAIN_TMODEL_VARIANTS_H
#define PT_TRAIN_TMODEL_VARIANTS_H

#include "train/tmodel.h"

#define PT_TMODEL_VARIANT(S)                                                                                           \
    pt_status pt_tmodel_impl_new##S(void **out, const pt_model *m, const pt_adapter *a, const pt_lora_params *ps,     \
                                    const pt_tmodel_shape *shape);                                                    \
    void pt_tmodel_impl_free##S(void *t);                                                                             \
    size_t pt_tmodel_impl_bytes##S(const void *t);                                                                    \
    pt_status pt_tmodel_impl_forward##S(void *t, const pt_tbatch *b, bool lora, bool train, uint64_t drop_seed,      \
                                        double *logp);                                                                \
    pt_status pt_tmodel_impl_backward##S(void *t, const pt_tbatch *b, const double *coef);

PT_TMODEL_VARIANT()
PT_TMODEL_VARIANT(_f64)

#undef PT_TMODEL_VARIANT

#endif
