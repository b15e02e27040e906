/* The CUDA backend's per-operation table (cuda_backend.h): causal GQA attention against a
 * cache prefix here, the other kernels in cuda_kernels.cuh, products on cuBLASLt (fp32
 * accumulation, bf16 or f32 inputs), weights uploaded once per matrix, and the memory check
 * a training model makes when it is created (plan.h). Host pointers in, host results out: the
 * correctness reference; the engine's fast path is cuda_engine.cu. Also the backend's shared
 * state: the precision and the test-only fault injection. */
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mutex>
#include <unordered_map>

extern "C" {
#include "backend/cuda/cuda_backend.h"
}
#include "backend/cuda/cuda_kernels.cuh"

extern "C" void pt_rope_tables(float *cos_t, float *sin_t, const int *pos, int n, const double *inv_freq, int half);

namespace {

/* A device buffer that grows to the largest request and is kept. */
struct dbuf {
    void *p = nullptr;
    size_t cap = 0;
};

struct weight_entry {
    void *dev;          /* (rows, cols) bf16 or f32 */
    int rows, cols;
    pt_dtype dtype;
    pt_cuda_precision prec;
};

struct state {
    std::mutex mu;
    bool ready = false;
    cudaStream_t stream = nullptr;
    cublasLtHandle_t lt = nullptr;
    dbuf lt_work;
    /* staging buffers of one operation: inputs a, b, c; output o; converted inputs ca; misc */
    dbuf a, b, c, o, ca, misc;
    std::unordered_map<const void *, weight_entry> weights;
    size_t weight_bytes = 0;
    int engines = 0;
    long ops = 0, fault_after = -1; /* pt_cuda_test_fault_after: fail that operation, for tests */
    pt_cuda_precision prec = PT_CUDA_BF16;
    char err[512] = "";
};

state S;

#define LT_WORKSPACE ((size_t)32 << 20)

/* Records the first failure; the operation then stops. */
bool failed(cudaError_t e, const char *op) {
    if (e == cudaSuccess) return false;
    if (!S.err[0]) snprintf(S.err, sizeof S.err, "CUDA error in %s: %s (%s)", op, cudaGetErrorString(e), cudaGetErrorName(e));
    return true;
}
bool failed_lt(cublasStatus_t e, const char *op) {
    if (e == CUBLAS_STATUS_SUCCESS) return false;
    if (!S.err[0]) snprintf(S.err, sizeof S.err, "cuBLASLt error in %s: status %d", op, (int)e);
    return true;
}

bool grow(dbuf &b, size_t bytes, const char *op) {
    if (bytes <= b.cap) return true;
    if (b.p) cudaFree(b.p);
    b.p = nullptr;
    b.cap = 0;
    if (failed(cudaMalloc(&b.p, bytes), op)) return false;
    b.cap = bytes;
    return true;
}

bool init(const char *op) {
    if (S.ready) return true;
    if (failed(cudaStreamCreateWithFlags(&S.stream, cudaStreamNonBlocking), op)) return false;
    if (failed_lt(cublasLtCreate(&S.lt), op)) return false;
    if (!grow(S.lt_work, LT_WORKSPACE, op)) return false;
    S.ready = true;
    return true;
}

/* Counts one operation (a per-operation call or a resident engine step); true when the
 * test hook's fault is due now. Caller holds S.mu. */
bool fault_due() { return S.fault_after >= 0 && S.ops++ == S.fault_after; }

/* The start of every operation: false when it must not run (an earlier failure, no GPU, or
 * the injected fault, which stands for a CUDA error in the middle of a run). */
bool begin(const char *op) {
    if (S.err[0] || !init(op)) return false;
    if (fault_due()) {
        snprintf(S.err, sizeof S.err, "CUDA error in %s: fault injected by the test hook after %ld operations", op, S.fault_after);
        return false;
    }
    return true;
}

bool upload(dbuf &b, const void *src, size_t bytes, const char *op) {
    if (!grow(b, bytes, op)) return false;
    return !failed(cudaMemcpyAsync(b.p, src, bytes, cudaMemcpyHostToDevice, S.stream), op);
}

bool download(void *dst, const dbuf &b, size_t bytes, const char *op) {
    if (failed(cudaMemcpyAsync(dst, b.p, bytes, cudaMemcpyDeviceToHost, S.stream), op)) return false;
    return !failed(cudaStreamSynchronize(S.stream), op);
}


/* ---- kernels ---------------------------------------------------------------------------- */
/* One block per (query row, head): scores against keys 0..pos[t] in shared memory (len
 * floats), a max-subtracted softmax, then the weighted sum of values. q (n_q, H*hd), k, v
 * (len_max, KV*hd), out (n_q, H*hd). */
__global__ void k_attention(float *out, const float *q, const float *k, const float *v, const int *pos, int n_heads, int n_kv_heads,
                            int hd, float scale) {
    extern __shared__ float sc[];
    __shared__ float red[32];
    const int t = blockIdx.x, h = blockIdx.y, kvh = h / (n_heads / n_kv_heads), len = pos[t] + 1;
    const int qd = n_heads * hd, kvd = n_kv_heads * hd;
    const float *qr = q + (size_t)t * qd + (size_t)h * hd;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < len; j += blockDim.x) {
        const float *kr = k + (size_t)j * kvd + (size_t)kvh * hd;
        float s = 0;
        for (int d = 0; d < hd; d++) s += qr[d] * kr[d];
        s *= scale;
        sc[j] = s;
        mx = fmaxf(mx, s);
    }
    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = mx;
    __syncthreads();
    if (threadIdx.x == 0) {
        float m = red[0];
        for (int w = 1; w < (int)(blockDim.x + 31) / 32; w++) m = fmaxf(m, red[w]);
        red[0] = m;
    }
    __syncthreads();
    mx = red[0];
    __syncthreads();
    float sum = 0;
    for (int j = threadIdx.x; j < len; j += blockDim.x) {
        float e = expf(sc[j] - mx);
        sc[j] = e;
        sum += e;
    }
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = sum;
    __syncthreads();
    if (threadIdx.x == 0) {
        float s = 0;
        for (int w = 0; w < (int)(blockDim.x + 31) / 32; w++) s += red[w];
        red[0] = s;
    }
    __syncthreads();
    float inv = 1.0f / red[0];
    float *o = out + (size_t)t * qd + (size_t)h * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float acc = 0;
        for (int j = 0; j < len; j++) acc += sc[j] * v[(size_t)j * kvd + (size_t)kvh * hd + d];
        o[d] = acc * inv;
    }
}

/* ---- products ---------------------------------------------------------------------------- */

/* Column-major C (M, N) = op(A) op(B) + beta C as BLAS defines it (op(A) M x K, op(B)
 * K x N), on cuBLASLt with fp32 accumulation; A and B bf16 or f32 (`type`), C f32. */
bool lt_gemm(bool trans_a, bool trans_b, int M, int N, int K, const void *A, int lda, const void *B, int ldb, float beta, float *C,
             int ldc, cudaDataType_t type, const char *op) {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
    bool ok = false;
    cublasOperation_t ta = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, tb = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    float alpha = 1.0f;
    do {
        if (failed_lt(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), op)) break;
        if (failed_lt(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta), op)) break;
        if (failed_lt(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb), op)) break;
        /* the layouts describe the matrices as stored, before op() */
        if (failed_lt(cublasLtMatrixLayoutCreate(&la, type, trans_a ? K : M, trans_a ? M : K, lda), op)) break;
        if (failed_lt(cublasLtMatrixLayoutCreate(&lb, type, trans_b ? N : K, trans_b ? K : N, ldb), op)) break;
        if (failed_lt(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, M, N, ldc), op)) break;
        cublasLtMatmulPreference_t pref = nullptr;
        cublasLtMatmulHeuristicResult_t heur;
        int found = 0;
        size_t ws = LT_WORKSPACE;
        if (failed_lt(cublasLtMatmulPreferenceCreate(&pref), op)) break;
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
        cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(S.lt, desc, la, lb, lc, lc, pref, 1, &heur, &found);
        cublasLtMatmulPreferenceDestroy(pref);
        if (failed_lt(hs, op)) break;
        if (!found) { failed_lt(CUBLAS_STATUS_NOT_SUPPORTED, op); break; }
        if (failed_lt(cublasLtMatmul(S.lt, desc, &alpha, A, la, B, lb, &beta, C, lc, C, lc, &heur.algo, S.lt_work.p, LT_WORKSPACE,
                                     S.stream),
                      op))
            break;
        ok = true;
    } while (0);
    if (lc) cublasLtMatrixLayoutDestroy(lc);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (desc) cublasLtMatmulDescDestroy(desc);
    return ok;
}

/* Row-major C (m, n) = A (m, k) B^T + beta C, B stored (n, k). Seen column-major, C is
 * (n, m) = B^T-as-stored transposed times A-as-stored: M = n, N = m, A = B (k x n, ld k,
 * transposed), B = A (k x m, ld k). */
bool lt_gemm_nt(float *C, const void *A, const void *B, int m, int n, int k, float beta, cudaDataType_t type, const char *op) {
    return lt_gemm(true, false, n, m, k, B, k, A, k, beta, C, n, type, op);
}

/* Row-major C (m, n) = A (m, k) B + beta C, B stored (k, n): column-major C (n, m) =
 * B-as-stored (n x k, ld n) times A-as-stored (k x m, ld k), no transposes. */
bool lt_gemm_nn(float *C, const void *A, const void *B, int m, int n, int k, float beta, cudaDataType_t type, const char *op) {
    return lt_gemm(false, false, n, m, k, B, n, A, k, beta, C, n, type, op);
}

/* The weight on the GPU at the current precision, uploaded at first use. */
const weight_entry *device_weight(const pt_weight *W) {
    const char *op = "weight upload";
    auto it = S.weights.find(W->data);
    if (it != S.weights.end() && it->second.prec == S.prec && it->second.rows == W->rows && it->second.cols == W->cols &&
        it->second.dtype == W->dtype)
        return &it->second;
    if (it != S.weights.end()) {
        cudaFree(it->second.dev);
        S.weight_bytes -= (size_t)it->second.rows * it->second.cols * pt_cuda_elem_bytes(it->second.prec);
        S.weights.erase(it);
    }
    const int64_t n = (int64_t)W->rows * W->cols;
    const size_t elem = pt_cuda_elem_bytes(S.prec);
    weight_entry e = {nullptr, W->rows, W->cols, W->dtype, S.prec};
    if (failed(cudaMalloc(&e.dev, (size_t)n * elem), op)) return nullptr;
    const size_t row_bytes = pt_dtype_nbytes(W->dtype, W->cols);
    bool ok = true;
    if (W->dtype == PT_Q8_0 || W->dtype == PT_Q4_0) {
        ok = upload(S.misc, W->data, row_bytes * W->rows, op);
        const uint8_t *raw = (const uint8_t *)S.misc.p;
        if (ok && S.prec == PT_CUDA_F32) {
            if (W->dtype == PT_Q8_0) k_dequant_q8_0<float><<<blocks_for(n, 256), 256, 0, S.stream>>>((float *)e.dev, raw, row_bytes, W->rows, W->cols);
            else k_dequant_q4_0<float><<<blocks_for(n, 256), 256, 0, S.stream>>>((float *)e.dev, raw, row_bytes, W->rows, W->cols);
        } else if (ok) {
            __nv_bfloat16 *d = (__nv_bfloat16 *)e.dev;
            if (W->dtype == PT_Q8_0) k_dequant_q8_0<__nv_bfloat16><<<blocks_for(n, 256), 256, 0, S.stream>>>(d, raw, row_bytes, W->rows, W->cols);
            else k_dequant_q4_0<__nv_bfloat16><<<blocks_for(n, 256), 256, 0, S.stream>>>(d, raw, row_bytes, W->rows, W->cols);
        }
    } else {
        /* F32 as stored; any other type through the host's dequantiser, in slices of rows */
        const float *src = W->dtype == PT_F32 ? (const float *)W->data : nullptr;
        const int slice = 256;
        float *host = src ? nullptr : (float *)malloc(sizeof(float) * (size_t)slice * W->cols);
        if (!src && !host) ok = false, snprintf(S.err, sizeof S.err, "out of host memory staging a weight");
        for (int r0 = 0; ok && r0 < W->rows; r0 += slice) {
            int nr = W->rows - r0 < slice ? W->rows - r0 : slice;
            const float *rows = src ? src + (size_t)r0 * W->cols : host;
            if (!src) pt_dtype_to_f32(host, (const uint8_t *)W->data + row_bytes * r0, W->dtype, (int64_t)nr * W->cols);
            size_t bytes = sizeof(float) * (size_t)nr * W->cols;
            if (S.prec == PT_CUDA_F32) {
                ok = !failed(cudaMemcpyAsync((float *)e.dev + (size_t)r0 * W->cols, rows, bytes, cudaMemcpyHostToDevice, S.stream), op);
            } else {
                ok = upload(S.misc, rows, bytes, op);
                if (ok)
                    k_f32_to_bf16<<<blocks_for((int64_t)nr * W->cols, 256), 256, 0, S.stream>>>(
                        (__nv_bfloat16 *)e.dev + (size_t)r0 * W->cols, (const float *)S.misc.p, (int64_t)nr * W->cols);
            }
            /* the slice buffers are reused: finish this slice first */
            if (ok) ok = !failed(cudaStreamSynchronize(S.stream), op);
        }
        free(host);
    }
    if (ok) ok = !failed(cudaGetLastError(), op) && !failed(cudaStreamSynchronize(S.stream), op);
    if (!ok) { cudaFree(e.dev); return nullptr; }
    S.weight_bytes += (size_t)n * elem;
    return &(S.weights[W->data] = e);
}

/* ---- operations (backend.h) -------------------------------------------------------------- */

void op_matmul(float *out, const float *in, const pt_weight *W, const float *bias, int n, int accumulate) {
    std::lock_guard<std::mutex> g(S.mu);
    const char *op = "matmul";
    if (!begin(op)) return;
    const weight_entry *w = device_weight(W);
    if (!w) return;
    const size_t in_bytes = sizeof(float) * (size_t)n * W->cols, out_bytes = sizeof(float) * (size_t)n * W->rows;
    if (!upload(S.a, in, in_bytes, op) || !grow(S.o, out_bytes, op)) return;
    if (accumulate && failed(cudaMemcpyAsync(S.o.p, out, out_bytes, cudaMemcpyHostToDevice, S.stream), op)) return;
    const void *A = S.a.p;
    cudaDataType_t type = CUDA_R_32F;
    if (S.prec == PT_CUDA_BF16) {
        if (!grow(S.ca, sizeof(__nv_bfloat16) * (size_t)n * W->cols, op)) return;
        k_f32_to_bf16<<<blocks_for((int64_t)n * W->cols, 256), 256, 0, S.stream>>>((__nv_bfloat16 *)S.ca.p, (const float *)S.a.p,
                                                                                  (int64_t)n * W->cols);
        A = S.ca.p;
        type = CUDA_R_16BF;
    }
    if (!lt_gemm_nt((float *)S.o.p, A, w->dev, n, W->rows, W->cols, accumulate ? 1.0f : 0.0f, type, op)) return;
    if (bias) {
        if (!upload(S.b, bias, sizeof(float) * W->rows, op)) return;
        k_add_bias<<<blocks_for((int64_t)n * W->rows, 256), 256, 0, S.stream>>>((float *)S.o.p, (const float *)S.b.p, n, W->rows);
    }
    if (failed(cudaGetLastError(), op)) return;
    download(out, S.o, out_bytes, op);
}

/* dx (n, W.cols) (+)= dy (n, W.rows) W: the input gradient of a frozen product, for training. */
void op_matmul_dx(float *dx, const float *dy, const pt_weight *W, int n, int accumulate) {
    std::lock_guard<std::mutex> g(S.mu);
    const char *op = "matmul_dx";
    if (!begin(op)) return;
    const weight_entry *w = device_weight(W);
    if (!w) return;
    const size_t dy_bytes = sizeof(float) * (size_t)n * W->rows, dx_bytes = sizeof(float) * (size_t)n * W->cols;
    if (!upload(S.a, dy, dy_bytes, op) || !grow(S.o, dx_bytes, op)) return;
    if (accumulate && failed(cudaMemcpyAsync(S.o.p, dx, dx_bytes, cudaMemcpyHostToDevice, S.stream), op)) return;
    const void *A = S.a.p;
    cudaDataType_t type = CUDA_R_32F;
    if (S.prec == PT_CUDA_BF16) {
        if (!grow(S.ca, sizeof(__nv_bfloat16) * (size_t)n * W->rows, op)) return;
        k_f32_to_bf16<<<blocks_for((int64_t)n * W->rows, 256), 256, 0, S.stream>>>((__nv_bfloat16 *)S.ca.p, (const float *)S.a.p,
                                                                                  (int64_t)n * W->rows);
        A = S.ca.p;
        type = CUDA_R_16BF;
    }
    if (!lt_gemm_nn((float *)S.o.p, A, w->dev, n, W->cols, W->rows, accumulate ? 1.0f : 0.0f, type, op)) return;
    if (failed(cudaGetLastError(), op)) return;
    download(dx, S.o, dx_bytes, op);
}

/* LoRA products: small, always f32 (the adapter's own precision). */
void op_sgemm_nt(float *C, const float *A, const float *B, int m, int n, int k, int accumulate) {
    std::lock_guard<std::mutex> g(S.mu);
    const char *op = "sgemm_nt";
    if (!begin(op)) return;
    const size_t cb = sizeof(float) * (size_t)m * n;
    if (!upload(S.a, A, sizeof(float) * (size_t)m * k, op) || !upload(S.b, B, sizeof(float) * (size_t)n * k, op) ||
        !grow(S.o, cb, op))
        return;
    if (accumulate && failed(cudaMemcpyAsync(S.o.p, C, cb, cudaMemcpyHostToDevice, S.stream), op)) return;
    if (!lt_gemm_nt((float *)S.o.p, S.a.p, S.b.p, m, n, k, accumulate ? 1.0f : 0.0f, CUDA_R_32F, op)) return;
    download(C, S.o, cb, op);
}

void op_rmsnorm(float *out, float *rstd, const float *in, const float *weight, int n, int dim, float eps) {
    std::lock_guard<std::mutex> g(S.mu);
    const char *op = "rmsnorm";
    if (!begin(op)) return;
    const size_t bytes = sizeof(float) * (size_t)n * dim;
    if (!upload(S.a, in, bytes, op) || !upload(S.b, weight, sizeof(float) * dim, op) || !grow(S.o, bytes, op) ||
        !grow(S.c, sizeof(float) * n, op))
        return;
    k_rmsnorm<<<n, 256, 0, S.stream>>>((float *)S.o.p, (float *)S.c.p, (const float *)S.a.p, (const float *)S.b.p, dim, eps);
    if (failed(cudaGetLastError(), op) || !download(out, S.o, bytes, op)) return;
    if (rstd) download(rstd, S.c, sizeof(float) * n, op);
}

/* The tables are host arrays computed in double like the CPU's: the same numbers. */
void op_rope_tables(float *cos_t, float *sin_t, const int *pos, int n, const double *inv_freq, int half) {
    pt_rope_tables(cos_t, sin_t, pos, n, inv_freq, half);
}

void op_rope(float *x, const float *cos_t, const float *sin_t, int n, int n_heads, int hd) {
    std::lock_guard<std::mutex> g(S.mu);
    const char *op = "rope";
    if (!begin(op)) return;
    const size_t bytes = sizeof(float) * (size_t)n * n_heads * hd, tb = sizeof(float) * (size_t)n * (hd / 2);
    if (!upload(S.a, x, bytes, op) || !upload(S.b, cos_t, tb, op) || !upload(S.c, sin_t, tb, op)) return;
    k_rope<<<blocks_for((int64_t)n * n_heads * (hd / 2), 256), 256, 0, S.stream>>>((float *)S.a.p, (const float *)S.b.p,
                                                                                   (const float *)S.c.p, n, n_heads, hd);
    if (failed(cudaGetLastError(), op)) return;
    download(x, S.a, bytes, op);
}

void op_swiglu(float *h, const float *gate, const float *up, int64_t n) {
    std::lock_guard<std::mutex> g(S.mu);
    const char *op = "swiglu";
    if (!begin(op)) return;
    const size_t bytes = sizeof(float) * (size_t)n;
    if (!upload(S.a, gate, bytes, op) || !upload(S.b, up, bytes, op) || !grow(S.o, bytes, op)) return;
    k_swiglu<<<blocks_for(n, 256), 256, 0, S.stream>>>((float *)S.o.p, (const float *)S.a.p, (const float *)S.b.p, n);
    if (failed(cudaGetLastError(), op)) return;
    download(h, S.o, bytes, op);
}

void op_attention(float *out, const float *q, const float *k_cache, const float *v_cache, const int *pos, int n_q, int n_heads,
                  int n_kv_heads, int hd) {
    std::lock_guard<std::mutex> g(S.mu);
    const char *op = "attention";
    if (!begin(op)) return;
    int len = 1;
    for (int t = 0; t < n_q; t++) len = pos[t] + 1 > len ? pos[t] + 1 : len;
    const size_t kv = sizeof(float) * (size_t)len * n_kv_heads * hd, qb = sizeof(float) * (size_t)n_q * n_heads * hd;
    const size_t smem = sizeof(float) * (size_t)len;
    if (smem > 200 * 1024) {
        /* the straightforward kernel keeps one row of scores in shared memory */
        if (!S.err[0]) snprintf(S.err, sizeof S.err, "CUDA attention: %d cached tokens exceed this kernel's limit of %d", len, 200 * 256);
        return;
    }
    if (!upload(S.a, q, qb, op) || !upload(S.b, k_cache, kv, op) || !upload(S.c, v_cache, kv, op) ||
        !upload(S.misc, pos, sizeof(int) * n_q, op) || !grow(S.o, qb, op))
        return;
    if (smem > 48 * 1024 && failed(cudaFuncSetAttribute(k_attention, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem), op)) return;
    dim3 grid(n_q, n_heads);
    k_attention<<<grid, 128, smem, S.stream>>>((float *)S.o.p, (const float *)S.a.p, (const float *)S.b.p, (const float *)S.c.p,
                                               (const int *)S.misc.p, n_heads, n_kv_heads, hd, 1.0f / sqrtf((float)hd));
    if (failed(cudaGetLastError(), op)) return;
    download(out, S.o, qb, op);
}

pt_status op_attach(const pt_model *m, int n_slots, int n_ctx) {
    std::lock_guard<std::mutex> g(S.mu);
    if (!init("attach")) {
        pt_status st = pt_error(PT_ERR_IO, "%s", S.err);
        S.err[0] = 0;
        return st;
    }
    size_t free_b = 0, total_b = 0;
    cudaError_t e = cudaMemGetInfo(&free_b, &total_b);
    if (e != cudaSuccess) return pt_error(PT_ERR_IO, "CUDA: cannot read the GPU's free memory: %s", cudaGetErrorString(e));
    pt_cuda_plan p;
    pt_cuda_plan_engine(&p, &m->cfg, S.prec, n_slots, n_ctx, 256, 0, 0);
    /* weights already uploaded for another engine are free to share */
    pt_status st = pt_cuda_plan_check(&p, free_b + S.weight_bytes, m->path ? m->path : "the model");
    if (st) return st;
    S.engines++;
    return PT_OK;
}

void release_weights_locked() {
    for (auto &kv : S.weights) cudaFree(kv.second.dev);
    S.weights.clear();
    S.weight_bytes = 0;
}

void forget_weight(const pt_weight *W) {
    auto it = S.weights.find(W->data);
    if (it == S.weights.end()) return;
    cudaFree(it->second.dev);
    S.weight_bytes -= (size_t)it->second.rows * it->second.cols * pt_cuda_elem_bytes(it->second.prec);
    S.weights.erase(it);
}

/* Weights are keyed by their host address, which a model loaded later may reuse: the
 * model's own weights go with the engine or training model that used them (another user of
 * the same model uploads them again). */
void op_detach(const pt_model *m) {
    std::lock_guard<std::mutex> g(S.mu);
    if (S.engines > 0) S.engines--;
    forget_weight(&m->tok_emb);
    forget_weight(&m->output);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const pt_layer *L = &m->layers[l];
        const pt_weight *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (const pt_weight *w : ws) forget_weight(w);
    }
    if (S.engines == 0) release_weights_locked();
}

pt_status op_take_error() {
    std::lock_guard<std::mutex> g(S.mu);
    if (!S.err[0]) return PT_OK;
    pt_status st = pt_error(PT_ERR_IO, "%s", S.err);
    S.err[0] = 0;
    return st;
}

pt_backend make_backend() {
    pt_backend b;
    memset(&b, 0, sizeof b);
    b.name = "cuda";
    b.device = PT_DEVICE_CUDA;
    b.matmul = op_matmul;
    b.sgemm_nt = op_sgemm_nt;
    b.rmsnorm_forward = op_rmsnorm;
    b.rope_tables = op_rope_tables;
    b.rope_forward = op_rope;
    b.swiglu_forward = op_swiglu;
    b.attention_forward = op_attention;
    b.attach = op_attach;
    b.detach = op_detach;
    b.take_error = op_take_error;
    b.engine_open = pt_cuda_engine_open;
    b.engine_close = pt_cuda_engine_close;
    b.engine_set_adapters = pt_cuda_engine_set_adapters;
    b.forward_step = pt_cuda_forward_step;
    return b;
}

const pt_backend cuda_backend = make_backend();

} // namespace

extern "C" {

const pt_backend *pt_cuda_backend(void) { return &cuda_backend; }

void pt_cuda_matmul_dx(float *dx, const float *dy, const pt_weight *W, int n, int accumulate) { op_matmul_dx(dx, dy, W, n, accumulate); }

int pt_cuda_usable(char *why, size_t why_size) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        if (why_size) snprintf(why, why_size, "no usable CUDA GPU (%s)", cudaGetErrorString(e));
        return 0;
    }
    if (n == 0) {
        if (why_size) snprintf(why, why_size, "no CUDA GPU found");
        return 0;
    }
    return 1;
}

pt_status pt_cuda_device_info(char *name, size_t name_size, size_t *total_bytes, size_t *free_bytes) {
    cudaDeviceProp prop;
    cudaError_t e = cudaGetDeviceProperties(&prop, 0);
    if (e == cudaSuccess) e = cudaMemGetInfo(free_bytes, total_bytes);
    if (e != cudaSuccess) return pt_error(PT_ERR_IO, "CUDA: %s", cudaGetErrorString(e));
    snprintf(name, name_size, "%s (sm_%d%d)", prop.name, prop.major, prop.minor);
    return PT_OK;
}

void pt_cuda_set_precision(pt_cuda_precision p) {
    std::lock_guard<std::mutex> g(S.mu);
    if (S.prec != p) release_weights_locked();
    S.prec = p;
}

void pt_cuda_test_fault_after(long n_ops) {
    std::lock_guard<std::mutex> g(S.mu);
    S.fault_after = n_ops;
    S.ops = 0;
}

int pt_cuda_fault_due(void) {
    std::lock_guard<std::mutex> g(S.mu);
    return fault_due();
}

pt_cuda_precision pt_cuda_get_precision(void) { return S.prec; }

void pt_cuda_release_weights(void) {
    std::lock_guard<std::mutex> g(S.mu);
    release_weights_locked();
}

size_t pt_cuda_weight_bytes(void) { return S.weight_bytes; }

} // extern "C"
