/* What a loaded model owns: the mapped files its weights point into and the buffers holding
 * converted or permuted copies. Private to src/model. */
#ifndef PT_MODEL_STORAGE_H
#define PT_MODEL_STORAGE_H

#include "format/gguf.h"
#include "format/safetensors.h"
#include "model/model.h"

struct pt_model_storage {
    pt_safetensors *shards;
    int n_shards;
    pt_gguf gguf;
    bool has_gguf;
    void **owned;
    int n_owned, cap_owned;
};

/* Allocates a buffer owned by the model (freed with it). */
void *pt_model_alloc(pt_model *m, size_t bytes);

/* Turns a tensor view into a kernel-ready weight of shape (rows, cols) — cols == 0 means a
 * vector of `rows` — checking shape and converting F16/BF16 to F32. With
 * permute_head_dim > 0 the rows are reordered per head from GGUF's interleaved rotary order
 * to the half-rotation order. `label` names the file in messages. */
pt_status pt_model_weight(pt_model *m, pt_weight *w, const pt_tensor_view *t, const char *label, int rows, int cols,
                          int permute_head_dim);
/* A vector (norm weight or bias) as float32. */
pt_status pt_model_vector(pt_model *m, const float **out, const pt_tensor_view *t, const char *label, int n);

pt_status pt_model_load_hf(pt_model *m, const char *dir);
pt_status pt_model_load_gguf(pt_model *m, const char *path);

#endif
