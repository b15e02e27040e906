/* Private to the training model (src/train/tmodel.c, forward_train.c, backward.c): the
 * buffers of one precision's implementation. forward_train.c and backward.c are compiled for
 * float32 and float64 (nn/real.h); tmodel.c picks one per run and calls it through the
 * declarations of tmodel_variants.h. */
#ifndef PT_TRAIN_TMODEL_IMPL_H
#define PT_TRAIN_TMODEL_IMPL_H

#include "backend/backend_train.h"
#include "nn/linear.h"
#include "nn/real.h"
#include "train/tmodel.h"
#include "train/tmodel_variants.h"

#define PT_N_LINEAR (PT_LT_COUNT - 1) /* per-layer LoRA targets: q k v o gate up down */

typedef PT_RN(pt_lora_call) lora_call;
typedef PT_RN(pt_train_ops) train_ops;

/* What one layer's forward pass keeps for its backward pass. */
typedef struct {
    pt_real *xn1, *rstd1;        /* (N, D), (N) attention norm output and 1/rms */
    pt_real *q, *k, *v;          /* (N, Q), (N, KV), (N, KV); q and k rotated */
    pt_real *att, *lse;          /* (N, Q) attention output, (N, H) log-sum-exp */
    pt_real *x_mid;              /* (N, D) residual stream after attention */
    pt_real *xn2, *rstd2;        /* (N, D), (N) MLP norm output and 1/rms */
    pt_real *gate, *up, *h;      /* (N, F) each; h = silu(gate) * up */
    pt_real *lu[PT_N_LINEAR];    /* (N, r) LoRA A drop(x) of each targeted linear, else NULL */
} layer_acts;

typedef struct {
    const pt_model *m;
    const pt_backend *be;        /* the backend current at creation (the CPU for an auto fallback) */
    const train_ops *ops;        /* its layer operations */
    const pt_adapter *a;
    const pt_lora_params *ps;
    pt_tmodel_shape shape;
    int N, D, Q, KV, F, V, H, KVH, hd, L, r;
    int n_acts;                  /* L, or 1 with recompute */
    pt_real **xs;                /* (L + 1) x (N, D): the residual stream entering layer l; xs[L] the final norm */
    layer_acts *acts;            /* (n_acts) */
    pt_real *cos_t, *sin_t;      /* (N, hd/2) */
    pt_real *xnf, *rstdf;        /* (N, D), (N) final norm */
    pt_real *xg;                 /* (N, D) final-norm rows of the loss rows, gathered */
    pt_real *uh;                 /* (N, r) head LoRA u of the gathered rows */
    int chunk;                   /* loss rows per logits chunk */
    pt_real *logits;             /* (chunk, V) */
    double *chunk_logp;          /* (chunk) */
    bool logits_kept;            /* the last train forward's probabilities are still in `logits` */
    uint64_t drop_seed;          /* dropout stream of the last train forward */
    int drop_row0, drop_loss0;   /* its batch's offsets inside that stream (batch.h) */
    /* backward scratch */
    pt_real *dx, *dxn;           /* (N, D) */
    pt_real *dq, *datt;          /* (N, Q) */
    pt_real *dk, *dv;            /* (N, KV) */
    pt_real *df1, *df2;          /* (N, F) */
    pt_real *du;                 /* (N, r) */
    pt_real *xd;                 /* (N, max in) dropout scratch, NULL without dropout */
    pt_real *wtile;              /* (PT_LINEAR_TILE, max in) */
    pt_real *att_scratch;        /* pt_attention_scratch_elems(max_len, H) */
    pt_real *dxg;                /* (chunk, D) */
#ifdef PT_F64
    /* float64 copies of every pair's A and B (refreshed by each adapted forward pass) and
     * float64 gradients (added into the float32 ones at the end of a backward pass), indexed
     * like pt_lora_params.dA */
    int n_slots;
    double **A, **B, **dA, **dB;
#endif
    void *arena;
    size_t bytes;
} tmodel;

#ifdef PT_F64
/* The adapter pair of a gradient slot (indexed like pt_lora_params.dA), NULL if untargeted. */
static inline const pt_lora_pair *pt_tmodel_slot_pair(const tmodel *t, int slot) {
    return slot == t->L * PT_N_LINEAR ? pt_adapter_pair(t->a, 0, PT_LT_HEAD)
                                      : pt_adapter_pair(t->a, slot / PT_N_LINEAR, (pt_lora_target)(slot % PT_N_LINEAR));
}
#endif

/* The LoRA call for (layer, target); layer L with PT_LT_HEAD is the head, `salt` separates
 * the head's chunks. */
lora_call PT_RN(pt_tmodel_lora_call)(const tmodel *t, int layer, int target, bool lora, bool train, uint64_t salt);

/* One decoder layer: x_out = layer(x_in), keeping activations in `a`. */
void PT_RN(pt_tmodel_layer_forward)(tmodel *t, const pt_tbatch *b, int l, layer_acts *a, const pt_real *x_in, pt_real *x_out,
                                    bool lora, bool train);

/* Logits of gathered rows c0 .. c0 + n - 1 into t->logits, then their log-probabilities. */
void PT_RN(pt_tmodel_head_chunk)(tmodel *t, const pt_tbatch *b, int c0, int n, bool lora, bool train, double *logp);

#endif
