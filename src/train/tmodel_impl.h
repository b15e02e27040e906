/* Private to src/train/forward_train.c and backward.c: the training model's buffers. */
#ifndef PT_TRAIN_TMODEL_IMPL_H
#define PT_TRAIN_TMODEL_IMPL_H

#include "nn/linear.h"
#include "train/tmodel.h"

#define PT_N_LINEAR (PT_LT_COUNT - 1) /* per-layer LoRA targets: q k v o gate up down */

/* What one layer's forward pass keeps for its backward pass. */
typedef struct {
    float *xn1, *rstd1;        /* (N, D), (N) attention norm output and 1/rms */
    float *q, *k, *v;          /* (N, Q), (N, KV), (N, KV); q and k rotated */
    float *att, *lse;          /* (N, Q) attention output, (N, H) log-sum-exp */
    float *x_mid;              /* (N, D) residual stream after attention */
    float *xn2, *rstd2;        /* (N, D), (N) MLP norm output and 1/rms */
    float *gate, *up, *h;      /* (N, F) each; h = silu(gate) * up */
    float *lu[PT_N_LINEAR];    /* (N, r) LoRA A drop(x) of each targeted linear, else NULL */
} pt_layer_acts;

struct pt_tmodel {
    const pt_model *m;
    const pt_adapter *a;
    const pt_lora_params *ps;
    pt_tmodel_shape shape;
    int N, D, Q, KV, F, V, H, KVH, hd, L, r;
    int n_acts;                /* L, or 1 with recompute */
    float **xs;                /* (L + 1) x (N, D): the residual stream entering layer l; xs[L] the final norm */
    pt_layer_acts *acts;       /* (n_acts) */
    float *cos_t, *sin_t;      /* (N, hd/2) */
    float *xnf, *rstdf;        /* (N, D), (N) final norm */
    float *xg;                 /* (N, D) final-norm rows of the loss rows, gathered */
    float *uh;                 /* (N, r) head LoRA u of the gathered rows */
    int chunk;                 /* loss rows per logits chunk */
    float *logits;             /* (chunk, V) */
    double *chunk_logp;        /* (chunk) */
    bool logits_kept;          /* the last train forward's probabilities are still in `logits` */
    uint64_t drop_seed;        /* dropout stream of the last train forward */
    /* backward scratch */
    float *dx, *dxn;           /* (N, D) */
    float *dq, *datt;          /* (N, Q) */
    float *dk, *dv;            /* (N, KV) */
    float *df1, *df2;          /* (N, F) */
    float *du;                 /* (N, r) */
    float *xd;                 /* (N, max in) dropout scratch, NULL without dropout */
    float *wtile;              /* (PT_LINEAR_TILE, max in) */
    float *att_scratch;        /* pt_attention_scratch_floats(max_len, H) */
    float *dxg;                /* (chunk, D) */
    void *arena;
    size_t bytes;
};

/* The LoRA call for (layer, target); layer L with PT_LT_HEAD is the head, `salt` separates
 * the head's chunks. */
pt_lora_call pt_tmodel_lora_call(const pt_tmodel *t, int layer, int target, bool lora, bool train, uint64_t salt);

/* One decoder layer: x_out = layer(x_in), keeping activations in `a`. */
void pt_tmodel_layer_forward(pt_tmodel *t, const pt_tbatch *b, int l, pt_layer_acts *a, const float *x_in, float *x_out,
                             bool lora, bool train);

/* Logits of gathered rows c0 .. c0 + n - 1 into t->logits, then their log-probabilities. */
void pt_tmodel_head_chunk(pt_tmodel *t, const pt_tbatch *b, int c0, int n, bool lora, bool train, double *logp);

#endif
