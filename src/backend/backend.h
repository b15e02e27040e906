/* The backend seam: the inference engine calls its heavy operations (products with the
 * weights, RMSNorm, RoPE, SwiGLU, cached attention) through one table of function pointers,
 * so the model is described once and each backend supplies the arithmetic. The training
 * model's operations (over pt_real, both precisions) are in backend_train.h.
 *
 * The process has one current backend, chosen by the CLI's --device flag through
 * pt_backend_select; an engine or training model takes the current one when it is created
 * and keeps it. The CPU backend is the existing code of src/backend/cpu and src/nn, called
 * unchanged. The CUDA backend (src/backend/cuda, built with `make CUDA=1`) exists only in
 * builds that define PT_HAVE_CUDA; everywhere else selecting it is an error that says why.
 *
 * Every pointer the operations take is host memory: a backend that computes elsewhere stages
 * its inputs and results itself (see src/backend/cuda/cuda_backend.h). */
#ifndef PT_BACKEND_BACKEND_H
#define PT_BACKEND_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "util/status.h"

typedef enum { PT_DEVICE_AUTO = 0, PT_DEVICE_CPU, PT_DEVICE_CUDA } pt_device;

typedef struct pt_backend {
    const char *name; /* "cpu", "cuda" */
    pt_device device;
    /* out (n, W.rows) (+)= in (n, W.cols) W^T + bias */
    void (*matmul)(float *out, const float *in, const pt_weight *W, const float *bias, int n, int accumulate);
    /* C (m, n) (+)= A (m, k) B^T, B (n, k) */
    void (*sgemm_nt)(float *C, const float *A, const float *B, int m, int n, int k, int accumulate);
    /* out (n, dim), rstd (n) or NULL */
    void (*rmsnorm_forward)(float *out, float *rstd, const float *in, const float *weight, int n, int dim, float eps);
    /* cos_t, sin_t (n, half) */
    void (*rope_tables)(float *cos_t, float *sin_t, const int *pos, int n, const double *inv_freq, int half);
    /* in place on x (n, n_heads, hd), half-rotation layout */
    void (*rope_forward)(float *x, const float *cos_t, const float *sin_t, int n, int n_heads, int hd);
    /* h (n) = silu(gate) * up */
    void (*swiglu_forward)(float *h, const float *gate, const float *up, int64_t n);
    /* out (n_q, H*hd) from q (n_q, H*hd) against the cache k, v (n_ctx, KV*hd), row t seeing 0..pos[t] */
    void (*attention_forward)(float *out, const float *q, const float *k_cache, const float *v_cache, const int *pos, int n_q,
                              int n_heads, int n_kv_heads, int hd);
    /* Optional hooks (attach and detach NULL on the CPU). attach: an engine for `m` with n_slots x n_ctx tokens
     * (or a training model: 0 x 0) is being made (the backend checks that it fits, naming what
     * it needs); detach: that user of `m` is gone, and `m` may be freed after it. take_error: the first failure an operation met since the last call
     * (operations return nothing), PT_OK if none. */
    pt_status (*attach)(const pt_model *m, int n_slots, int n_ctx);
    void (*detach)(const pt_model *m);
    pt_status (*take_error)(void);
} pt_backend;

/* "cpu", "cuda" or "auto". */
pt_status pt_device_parse(const char *name, pt_device *out);
const char *pt_device_name(pt_device d);

/* Makes `d` the current backend. AUTO: cuda when this build has the CUDA backend and a GPU is
 * present, else cpu. CUDA where it cannot run: PT_ERR_ARG with one line saying why (a build
 * without CUDA, or no usable GPU and the driver's reason). */
pt_status pt_backend_select(pt_device d);
/* The current backend (the CPU one until pt_backend_select chooses another). */
const pt_backend *pt_backend_current(void);
const pt_backend *pt_backend_cpu(void);
/* Whether the current backend was picked by AUTO rather than asked for: a job the picked
 * backend cannot do (training on CUDA, for now) then runs on the CPU instead of failing. */
int pt_backend_is_auto(void);

/* Whether this build has the CUDA backend (PT_HAVE_CUDA), for --version. */
int pt_backend_has_cuda(void);
/* Whether a CUDA GPU can be used now; when not, why (one line) in `why`. Always 0 without
 * PT_HAVE_CUDA. */
int pt_backend_cuda_usable(char *why, size_t why_size);

#endif
