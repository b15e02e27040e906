/* The training model's side of the backend seam (backend.h): the layer operations of the
 * training forward and backward passes, over pt_real, so the table exists in float32 (these
 * names) and in float64 (suffix _f64; nn/real.h). The CPU backend's table is the functions of
 * src/nn as they are. A backend that cannot train in a precision has no table for it
 * (pt_backend_train_ops returns NULL) and the training model says so. */
#ifndef PT_BACKEND_BACKEND_TRAIN_H
#define PT_BACKEND_BACKEND_TRAIN_H

#include "backend/backend.h"
#include "nn/linear.h"
#include "nn/nn.h"

typedef struct {
    void (*rmsnorm_forward)(pt_real *out, pt_real *rstd, const pt_real *in, const float *weight, int n, int dim, float eps);
    void (*rmsnorm_backward)(pt_real *din, pt_real *dweight, const pt_real *dout, const pt_real *in, const float *weight,
                             const pt_real *rstd, int n, int dim);
    void (*rope_tables)(pt_real *cos_t, pt_real *sin_t, const int *pos, int n, const double *inv_freq, int half);
    void (*rope_forward)(pt_real *x, const pt_real *cos_t, const pt_real *sin_t, int n, int n_heads, int hd);
    void (*rope_backward)(pt_real *dx, const pt_real *cos_t, const pt_real *sin_t, int n, int n_heads, int hd);
    void (*swiglu_forward)(pt_real *h, const pt_real *gate, const pt_real *up, int64_t n);
    void (*swiglu_backward)(pt_real *dgate, pt_real *dup, const pt_real *dh, const pt_real *gate, const pt_real *up, int64_t n);
    void (*linear_forward)(pt_real *y, pt_real *u, pt_real *xd, pt_real *wtile, const pt_real *x, const pt_weight *W,
                           const float *bias, const PT_RN(pt_lora_call) *lora, int n, int accumulate);
    void (*linear_backward)(pt_real *dx, pt_real *du, pt_real *xd, pt_real *wtile, const pt_real *dy, const pt_real *x,
                            const pt_real *u, const pt_weight *W, const PT_RN(pt_lora_call) *lora, int n, int accumulate);
    void (*attention_forward)(pt_real *out, pt_real *lse, const pt_real *q, const pt_real *k, const pt_real *v, const int *seq_start,
                              const int *seq_len, int n_seq, int n_heads, int n_kv_heads, int hd, pt_real *scratch);
    void (*attention_backward)(pt_real *dq, pt_real *dk, pt_real *dv, const pt_real *dout, const pt_real *out, const pt_real *lse,
                               const pt_real *q, const pt_real *k, const pt_real *v, const int *seq_start, const int *seq_len,
                               int n_seq, int n_heads, int n_kv_heads, int hd, pt_real *scratch);
    void (*logsoftmax_forward)(double *logp, pt_real *rows, const int32_t *target, int m, int vocab);
    void (*logsoftmax_backward)(pt_real *rows, const int32_t *target, const double *coef, int m, int vocab);
} PT_RN(pt_train_ops);

/* The training operations of `be` in this compilation's precision, NULL when it has none. */
const PT_RN(pt_train_ops) *PT_RN(pt_backend_train_ops)(const pt_backend *be);

#if defined(PT_HAVE_CUDA) && !defined(PT_F64)
/* src/backend/cuda/cuda_train.c: float32 only */
const pt_train_ops *pt_cuda_train_ops(void);
#endif

#endif
