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
 * Every pointer the per-operation functions take is host memory: a backend that computes
 * elsewhere stages their inputs and results itself. That is a correctness reference, not a
 * fast path, so a backend may also run the engine's whole forward step itself (the engine_*
 * and forward_step hooks below, NULL on the CPU): weights, key/value cache and activations
 * stay where it computes, token ids go in and only the logits rows asked for come out. */
#ifndef PT_BACKEND_BACKEND_H
#define PT_BACKEND_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "backend/cuda/plan.h"
#include "model/model.h"
#include "util/status.h"

struct pt_adapter;

typedef enum { PT_DEVICE_AUTO = 0, PT_DEVICE_CPU, PT_DEVICE_CUDA } pt_device;

/* One forward step of the engine for a backend that runs it whole: n_rows token rows of one
 * or more sequences laid end to end (the batcher's continuous batching puts sequences at
 * different positions in one step). Row t is token ids[t] at position pos[t] of the sequence
 * held in cache slot slot[t]; its key and value go to that slot at that position, and it
 * attends to the slot's positions 0..pos[t]. Rows of one sequence are consecutive, at
 * consecutive positions, and distinct sequences use distinct slots. */
typedef struct {
    int n_rows;
    const int32_t *ids;  /* (n_rows) */
    const int *pos;      /* (n_rows) */
    const int *slot;     /* (n_rows) */
    int n_out;           /* rows whose vocabulary logits are wanted (0: none) */
    const int *out_rows; /* (n_out) indices into the rows, ascending */
} pt_step;

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
    /* Optional whole-step hooks (NULL on the CPU, whose engine runs the operations above).
     * engine_open: device state for an engine of `m` with n_slots x n_ctx cache positions and
     * steps of up to max_rows rows (weights uploaded, cache allocated, memory checked, naming
     * what it needs); engine_close frees it. engine_set_adapters: the LoRA adapters applied
     * from the next step on, adapter i with its own scale times weights[i] (n 0: none); the
     * adapters' matrices are copied, so they may change or go after the call. forward_step:
     * runs `s`, writing (s->n_out, vocab) logits to host memory `logits`; on failure the
     * cache positions the step wrote are undefined (the engine keeps its lengths). */
    pt_status (*engine_open)(void **dev, const pt_model *m, int n_slots, int n_ctx, int max_rows);
    void (*engine_close)(void *dev);
    pt_status (*engine_set_adapters)(void *dev, const struct pt_adapter *const *adapters, const float *weights, int n);
    pt_status (*forward_step)(void *dev, const pt_step *s, float *logits);
} pt_backend;

/* What --device and --precision choose (the CLI's option group fills it). precision: the GPU's
 * weight storage and product inputs, bf16 (the default) or f32 (reproduces the CPU's numbers
 * to float32 rounding; for tests); the CPU ignores it. */
typedef struct {
    pt_device device;
    pt_cuda_precision precision;
} pt_backend_options;

/* "cpu", "cuda" or "auto". */
pt_status pt_device_parse(const char *name, pt_device *out);
const char *pt_device_name(pt_device d);

/* Makes `d` the current backend. AUTO: cuda when this build has the CUDA backend and a GPU is
 * present, else cpu. CUDA where it cannot run: PT_ERR_ARG with one line saying why (a build
 * without CUDA, or no usable GPU and the driver's reason). */
pt_status pt_backend_select(pt_device d);
/* pt_backend_select(o->device), and the GPU's precision when the choice is CUDA. */
pt_status pt_backend_configure(const pt_backend_options *o);
/* The current backend (the CPU one until pt_backend_select chooses another). */
const pt_backend *pt_backend_current(void);
/* Test hook: makes `be` the current backend (a test's own table, e.g. one with whole-step
 * hooks written on the CPU). Never called by the library or the CLI. */
void pt_backend_set_current_for_test(const pt_backend *be);
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
