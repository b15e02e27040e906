/* The architecture table: where each weight of a Llama-family decoder lives under Hugging
 * Face names and under GGUF names, and the one routine that binds them to a pt_model. */
#ifndef PT_MODEL_ARCH_H
#define PT_MODEL_ARCH_H

#include "model/storage.h"

typedef const pt_tensor_view *(*pt_tensor_finder)(void *user, const char *name);

/* Binds every weight of m->cfg's architecture, naming tensors as HF (gguf = false) or GGUF
 * does. GGUF `llama` Q/K rows are permuted back to half-rotation order. */
pt_status pt_arch_bind_weights(pt_model *m, pt_tensor_finder find, void *user, const char *label, bool gguf);

/* Checks a file's tensor list against m->cfg before anything is bound or allocated: a tensor
 * of a layer past the configured count is an error (the configuration would silently drop
 * it); tensors no weight slot uses are named in one warning and counted in *n_unused. */
pt_status pt_arch_check_tensors(const pt_model *m, const pt_tensor_view *tensors, int n, const char *label, bool gguf,
                                 int *n_unused);

/* HF name <-> GGUF name for one tensor ("model.layers.3.mlp.up_proj.weight" <->
 * "blk.3.ffn_up.weight"); returns 0 when the name is not a known weight. */
int pt_arch_hf_to_gguf(const char *hf, char *out, size_t n);

#endif
