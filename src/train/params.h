/* The trainable side of a LoRA adapter seen as a list of tensors: every A and B of the
 * adapter with its PEFT key, and one flat block each for gradients and the two AdamW
 * moments, laid out in the same tensor order, allocated once. */
#ifndef PT_TRAIN_PARAMS_H
#define PT_TRAIN_PARAMS_H

#include <stdint.h>

#include "model/adapter.h"

typedef struct {
    int n;               /* tensors */
    float **p;           /* (n) the adapter's own arrays */
    float **g;           /* (n) views into grad */
    int64_t *numel;      /* (n) */
    char (*key)[160];    /* (n) PEFT keys */
    int64_t total;       /* elements over all tensors */
    float *grad, *m, *v; /* (total) gradients and AdamW first / second moments */
    /* gradient of each pair, indexed like adapter->pairs, the head last; NULL if untargeted */
    float **dA, **dB;    /* (n_layers * (PT_LT_COUNT - 1) + 1) */
} pt_lora_params;

pt_status pt_lora_params_init(pt_lora_params *ps, pt_adapter *a);
void pt_lora_params_free(pt_lora_params *ps);
void pt_lora_params_zero_grad(pt_lora_params *ps);
/* sqrt(sum g^2) over every gradient, accumulated in double in a fixed order. */
double pt_lora_params_grad_norm(const pt_lora_params *ps);
/* Index of a tensor by PEFT key, -1 if absent. */
int pt_lora_params_find(const pt_lora_params *ps, const char *key);

#endif
