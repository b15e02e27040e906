/* The backend table of the CPU (src/backend/cpu and src/nn as they are), the process's
 * current backend, and --device's choice between CPU and CUDA. */
#include "backend/backend.h"

#include <stdio.h>
#include <string.h>

#include "backend/cpu/matmul.h"
#include "nn/nn.h"
#ifdef PT_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

/* The table's operations return nothing; the CPU attention's one failure (scratch that
 * cannot be allocated, PT_ERR_OOM with the size on this thread's pt_errmsg) waits here for
 * take_error, as the CUDA backend's failures do. */
static _Thread_local pt_status cpu_error;

static void cpu_attention(float *out, const float *q, const float *k_cache, const float *v_cache, const int *pos, int n_q, int n_heads,
                          int n_kv_heads, int hd) {
    pt_status st = pt_attention_forward(out, q, k_cache, v_cache, pos, n_q, n_heads, n_kv_heads, hd);
    if (st && !cpu_error) cpu_error = st;
}

static pt_status cpu_take_error(void) {
    pt_status st = cpu_error;
    cpu_error = PT_OK;
    return st;
}

static const pt_backend cpu_backend = {
    .name = "cpu",
    .device = PT_DEVICE_CPU,
    .matmul = pt_matmul,
    .sgemm_nt = pt_sgemm_nt,
    .rmsnorm_forward = pt_rmsnorm_forward,
    .rope_tables = pt_rope_tables,
    .rope_forward = pt_rope_forward,
    .swiglu_forward = pt_swiglu_forward,
    .attention_forward = cpu_attention,
    .take_error = cpu_take_error,
};

static const pt_backend *current = &cpu_backend;
static int chosen_by_auto = 1;

const pt_backend *pt_backend_cpu(void) { return &cpu_backend; }
const pt_backend *pt_backend_current(void) { return current; }
void pt_backend_set_current_for_test(const pt_backend *be) {
    current = be;
    chosen_by_auto = 0;
}
int pt_backend_is_auto(void) { return chosen_by_auto; }

pt_status pt_device_parse(const char *name, pt_device *out) {
    if (!strcmp(name, "cpu")) *out = PT_DEVICE_CPU;
    else if (!strcmp(name, "cuda")) *out = PT_DEVICE_CUDA;
    else if (!strcmp(name, "auto")) *out = PT_DEVICE_AUTO;
    else return pt_error(PT_ERR_ARG, "--device: unknown device '%s' (cpu, cuda or auto)", name);
    return PT_OK;
}

const char *pt_device_name(pt_device d) { return d == PT_DEVICE_CPU ? "cpu" : d == PT_DEVICE_CUDA ? "cuda" : "auto"; }

int pt_backend_has_cuda(void) {
#ifdef PT_HAVE_CUDA
    return 1;
#else
    return 0;
#endif
}

int pt_backend_cuda_usable(char *why, size_t why_size) {
#ifdef PT_HAVE_CUDA
    return pt_cuda_usable(why, why_size);
#else
    if (why_size) snprintf(why, why_size, "this build of politune has no CUDA backend (rebuild with `make CUDA=1` where nvcc is installed)");
    return 0;
#endif
}

pt_status pt_backend_select(pt_device d) {
    char why[256] = "";
    chosen_by_auto = d == PT_DEVICE_AUTO;
    if (d == PT_DEVICE_CPU) { current = &cpu_backend; return PT_OK; }
    int usable = pt_backend_cuda_usable(why, sizeof why);
    if (d == PT_DEVICE_AUTO) {
        current = &cpu_backend;
#ifdef PT_HAVE_CUDA
        if (usable) current = pt_cuda_backend();
#endif
        return PT_OK;
    }
    if (!usable) return pt_error(PT_ERR_ARG, "--device cuda: %s", why);
#ifdef PT_HAVE_CUDA
    current = pt_cuda_backend();
#endif
    return PT_OK;
}

pt_status pt_backend_configure(const pt_backend_options *o) {
    PT_TRY(pt_backend_select(o->device));
#ifdef PT_HAVE_CUDA
    if (current->device == PT_DEVICE_CUDA) pt_cuda_set_precision(o->precision);
#endif
    return PT_OK;
}
