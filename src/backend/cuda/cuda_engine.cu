/* The GPU-resident engine: the inference engine's whole forward step on the GPU, behind the
 * backend's engine_open / engine_set_adapters / forward_step hooks (backend.h), so that
 * generation, scoring, the compass and the server pay no copies per operation.
 *
 * What stays on the GPU, per engine: every weight matrix at the precision's element type T
 * (bf16, or f32 to reproduce the CPU), norms and biases in f32, the key/value cache
 * (n_layers, n_slots, n_ctx, KV) in T, the adapters' A and B in f32, and one workspace of
 * f32 activations for the largest step seen (plan.h: pt_cuda_step_layout). A step uploads
 * its token ids, positions, slots and RoPE tables (computed on the host in double, as the
 * CPU does, so both use the same numbers) and downloads only the logits rows asked for, in
 * chunks of PT_CUDA_LOGIT_ROWS rows.
 *
 * Each layer follows src/engine/engine.c's pt_engine_forward operation for operation:
 * RMSNorm, Q/K/V products (+ bias, + LoRA), per-head Q/K norms (qwen3), RoPE, the rows' keys
 * and values stored at (slot, position), causal GQA attention of each row over its slot's
 * positions 0..pos, the output product added to the residual, RMSNorm, gate and up, SwiGLU,
 * the down product added to the residual. Products run on cuBLAS (cublasGemmEx, fp32
 * accumulation; bf16 or f32 inputs; LoRA in f32). */
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <new>
#include <vector>

extern "C" {
#include "backend/cuda/cuda_backend.h"
#include "model/adapter.h"
}
#include "backend/cuda/cuda_kernels.cuh"

extern "C" void pt_rope_tables(float *cos_t, float *sin_t, const int *pos, int n, const double *inv_freq, int half);

namespace {

/* ---- kernels ---------------------------------------------------------------------------- */

__device__ __forceinline__ float load_f(const float *p, size_t i) { return p[i]; }
__device__ __forceinline__ float load_f(const __nv_bfloat16 *p, size_t i) { return __bfloat162float(p[i]); }

/* x (n, D) = rows ids[t] of the embedding (V, D), widened to f32 (engine.c: embed_row) */
template <typename T>
__global__ void k_embed(float *x, const T *emb, const int *ids, int n, int D) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (int64_t)n * D) return;
    int64_t t = i / D;
    int d = (int)(i % D);
    x[i] = load_f(emb, (size_t)ids[t] * D + d);
}

/* Row t's key and value (k, v: (n, kvd)) into this layer's caches (n_slots, n_ctx, kvd) at
 * (slot[t], pos[t]) (engine.c: the memcpy into kc + start * KV). */
template <typename T>
__global__ void k_cache_store(T *kc, T *vc, const float *k, const float *v, const int *slot, const int *pos, int n, int n_ctx,
                              int kvd) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (int64_t)n * kvd) return;
    int64_t t = i / kvd;
    int d = (int)(i % kvd);
    size_t o = ((size_t)slot[t] * n_ctx + pos[t]) * kvd + d;
    store<T>(kc, (int64_t)o, k[i]);
    store<T>(vc, (int64_t)o, v[i]);
}

/* The block's maximum / sum of v (every thread gets it). red: 33 floats of shared memory;
 * red[32] carries the result, so the next reduction's writes to red[0..31] cannot clobber a
 * value a slower thread has yet to read. */
__device__ float block_max(float v, float *red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    if (lane == 0) red[warp] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
        float m = red[0];
        for (int w = 1; w < nw; w++) m = fmaxf(m, red[w]);
        red[32] = m;
    }
    __syncthreads();
    return red[32];
}
__device__ float block_sum(float v, float *red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == 0) red[warp] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
        float s = 0;
        for (int w = 0; w < nw; w++) s += red[w];
        red[32] = s;
    }
    __syncthreads();
    return red[32];
}

/* Causal GQA attention over the cache (nn/attention.c: pt_attention_forward, with the cache
 * of each row's own slot). One block per (row t, query head h), a multiple of 32 threads:
 * the query row and the scores of keys 0..pos[t] in shared memory ((hd + max len) floats);
 * each warp scores one key at a time, its lanes over the head's dimensions; a max-subtracted
 * softmax; then each thread sums one output dimension over the keys. Query head h reads
 * key/value head h / (n_heads / n_kv_heads). q, out (n, n_heads * hd); caches of one layer
 * (n_slots, n_ctx, n_kv_heads * hd). */
template <typename T>
__global__ void k_attention_cached(float *out, const float *q, const T *kc, const T *vc, const int *pos, const int *slot, int n_heads,
                                   int n_kv_heads, int hd, int n_ctx, float scale) {
    extern __shared__ float sm[];
    __shared__ float red[33];
    float *qs = sm, *sc = sm + hd;
    const int t = blockIdx.x, h = blockIdx.y, kvh = h / (n_heads / n_kv_heads), len = pos[t] + 1;
    const int qd = n_heads * hd, kvd = n_kv_heads * hd;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    const size_t base = (size_t)slot[t] * n_ctx * kvd + (size_t)kvh * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) qs[d] = q[(size_t)t * qd + (size_t)h * hd + d];
    __syncthreads();
    for (int j = warp; j < len; j += nw) {
        const T *kr = kc + base + (size_t)j * kvd;
        float s = 0;
        for (int d = lane; d < hd; d += 32) s += qs[d] * load_f(kr, d);
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (lane == 0) sc[j] = s * scale;
    }
    __syncthreads();
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < len; j += blockDim.x) mx = fmaxf(mx, sc[j]);
    mx = block_max(mx, red);
    float sum = 0;
    for (int j = threadIdx.x; j < len; j += blockDim.x) {
        float e = expf(sc[j] - mx);
        sc[j] = e;
        sum += e;
    }
    sum = block_sum(sum, red); /* its barriers also publish the sc[] just written */
    const float inv = 1.0f / sum;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        const T *vr = vc + base + d;
        float acc = 0;
        for (int j = 0; j < len; j++) acc += sc[j] * load_f(vr, (size_t)j * kvd);
        out[(size_t)t * qd + (size_t)h * hd + d] = acc * inv;
    }
}

/* dst (n, D) = src rows rows[i] (the rows whose logits are wanted) */
__global__ void k_gather_rows(float *dst, const float *src, const int *rows, int n, int D) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (int64_t)n * D) return;
    dst[i] = src[(size_t)rows[i / D] * D + i % D];
}

/* ---- the engine's device state ----------------------------------------------------------- */

struct dlayer {
    void *wq = nullptr, *wk = nullptr, *wv = nullptr, *wo = nullptr, *wg = nullptr, *wu = nullptr, *wd = nullptr;
    float *attn_norm = nullptr, *ffn_norm = nullptr, *q_norm = nullptr, *k_norm = nullptr, *bq = nullptr, *bk = nullptr,
          *bv = nullptr;
};

/* One adapter's (A, B) for one (layer, target), f32 on the GPU; A null when not targeted. */
struct dpair {
    float *A = nullptr, *B = nullptr;
};
struct dadapter {
    int r = 0;
    float scale = 0; /* the adapter's alpha / r times the weight it was given */
    std::vector<dpair> pairs; /* (n_layers * PT_LT_HEAD) then the head's */
};

struct engine {
    const pt_model *m = nullptr;
    pt_config c;
    pt_cuda_precision prec = PT_CUDA_BF16;
    cudaStream_t stream = nullptr;
    cublasHandle_t blas = nullptr;
    std::vector<void *> owned; /* weights, norms, biases */
    void *tok_emb = nullptr, *output = nullptr; /* (V, D) of T; the same when tied */
    float *out_norm = nullptr;
    std::vector<dlayer> layers;
    void *k_cache = nullptr, *v_cache = nullptr; /* (n_layers, n_slots, n_ctx, KV) of T */
    int n_slots = 0, n_ctx = 0;
    void *stage = nullptr; /* STAGE_BYTES for weight uploads, freed after open */
    unsigned char *arena = nullptr;
    pt_cuda_step_layout lay;
    std::vector<dadapter> adapters;
    int max_r = 0;
    int smem_optin = 48 * 1024; /* the GPU's largest shared memory per block */
    size_t weight_bytes = 0, cache_bytes = 0, adapter_bytes = 0;
    std::vector<float> rope_host; /* (2, rows, hd / 2) */
};

#define STAGE_BYTES ((size_t)64 << 20)

pt_status cuda_fail(cudaError_t e, const char *what) {
    cudaGetLastError(); /* clears a non-sticky error so the next call does not report it again */
    return pt_error(PT_ERR_IO, "CUDA error in %s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}
pt_status blas_fail(cublasStatus_t s, const char *what) {
    return pt_error(PT_ERR_IO, "cuBLAS error in %s: %s", what, cublasGetStatusString(s));
}
#define CU(call, what)                                              \
    do {                                                            \
        cudaError_t e_ = (call);                                    \
        if (e_ != cudaSuccess) return cuda_fail(e_, (what));        \
    } while (0)
#define LAUNCHED(what) CU(cudaGetLastError(), (what))

double gib(size_t b) { return b / 1073741824.0; }

pt_status dmalloc(void **p, size_t bytes, const char *what) {
    *p = nullptr;
    cudaError_t e = cudaMalloc(p, bytes ? bytes : 1);
    if (e == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        size_t free_b = 0, total_b = 0;
        cudaMemGetInfo(&free_b, &total_b);
        return pt_error(PT_ERR_OOM, "CUDA: out of GPU memory allocating %.3f GiB for %s (%.2f GiB free of %.2f)", gib(bytes), what,
                        gib(free_b), gib(total_b));
    }
    if (e != cudaSuccess) {
        *p = nullptr;
        return cuda_fail(e, what);
    }
    return PT_OK;
}

template <typename T>
T *at(const engine *E, size_t off) {
    return (T *)(E->arena + off);
}

/* A weight matrix (rows, cols) as the precision's element type on the GPU. F32 goes as it is;
 * Q8_0/Q4_0 blocks go raw and a kernel dequantises them; any other type is dequantised to
 * f32 on the host (pt_dtype_to_f32). Slices of rows pass through E->stage. */
pt_status upload_matrix(engine *E, const pt_weight *W, void **out, const char *what) {
    const int64_t n = (int64_t)W->rows * W->cols;
    const size_t elem = pt_cuda_elem_bytes(E->prec), row_bytes = pt_dtype_nbytes(W->dtype, W->cols);
    void *dev = nullptr;
    PT_TRY(dmalloc(&dev, (size_t)n * elem, what));
    E->owned.push_back(dev);
    E->weight_bytes += (size_t)n * elem;
    *out = dev;
    const bool raw = W->dtype == PT_Q8_0 || W->dtype == PT_Q4_0;
    if (W->dtype == PT_F32 && E->prec == PT_CUDA_F32) {
        CU(cudaMemcpyAsync(dev, W->data, (size_t)n * 4, cudaMemcpyHostToDevice, E->stream), what);
        CU(cudaStreamSynchronize(E->stream), what);
        return PT_OK;
    }
    const size_t per_row = raw ? row_bytes : (size_t)W->cols * sizeof(float);
    int slice = (int)(STAGE_BYTES / per_row);
    if (slice < 1) return pt_error(PT_ERR_ARG, "%s: a row of %d columns exceeds the upload buffer", what, W->cols);
    float *host = nullptr;
    if (!raw && W->dtype != PT_F32) {
        host = (float *)malloc(sizeof(float) * (size_t)(slice < W->rows ? slice : W->rows) * W->cols);
        if (!host) return pt_error(PT_ERR_OOM, "out of host memory staging %s for the GPU", what);
    }
    pt_status st = PT_OK;
    for (int r0 = 0; r0 < W->rows && !st; r0 += slice) {
        const int nr = W->rows - r0 < slice ? W->rows - r0 : slice;
        const int64_t ne = (int64_t)nr * W->cols;
        const uint8_t *src = (const uint8_t *)W->data + row_bytes * r0;
        const void *slice_src = src;
        if (host) {
            pt_dtype_to_f32(host, src, W->dtype, ne);
            slice_src = host;
        }
        cudaError_t e = cudaMemcpyAsync(E->stage, slice_src, raw ? row_bytes * nr : sizeof(float) * ne, cudaMemcpyHostToDevice, E->stream);
        if (e != cudaSuccess) { st = cuda_fail(e, what); break; }
        const unsigned blocks = blocks_for(ne, 256);
        if (raw && E->prec == PT_CUDA_F32) {
            float *d = (float *)dev + (size_t)r0 * W->cols;
            if (W->dtype == PT_Q8_0) k_dequant_q8_0<float><<<blocks, 256, 0, E->stream>>>(d, (const uint8_t *)E->stage, row_bytes, nr, W->cols);
            else k_dequant_q4_0<float><<<blocks, 256, 0, E->stream>>>(d, (const uint8_t *)E->stage, row_bytes, nr, W->cols);
        } else if (raw) {
            __nv_bfloat16 *d = (__nv_bfloat16 *)dev + (size_t)r0 * W->cols;
            if (W->dtype == PT_Q8_0)
                k_dequant_q8_0<__nv_bfloat16><<<blocks, 256, 0, E->stream>>>(d, (const uint8_t *)E->stage, row_bytes, nr, W->cols);
            else k_dequant_q4_0<__nv_bfloat16><<<blocks, 256, 0, E->stream>>>(d, (const uint8_t *)E->stage, row_bytes, nr, W->cols);
        } else if (E->prec == PT_CUDA_F32) {
            e = cudaMemcpyAsync((float *)dev + (size_t)r0 * W->cols, E->stage, sizeof(float) * ne, cudaMemcpyDeviceToDevice, E->stream);
        } else {
            k_f32_to_bf16<<<blocks, 256, 0, E->stream>>>((__nv_bfloat16 *)dev + (size_t)r0 * W->cols, (const float *)E->stage, ne);
        }
        if (e == cudaSuccess) e = cudaGetLastError();
        /* the stage is reused by the next slice */
        if (e == cudaSuccess) e = cudaStreamSynchronize(E->stream);
        if (e != cudaSuccess) st = cuda_fail(e, what);
    }
    free(host);
    return st;
}

pt_status upload_vector(engine *E, const float *src, int n, float **out, const char *what) {
    *out = nullptr;
    if (!src) return PT_OK;
    void *dev = nullptr;
    PT_TRY(dmalloc(&dev, sizeof(float) * n, what));
    E->owned.push_back(dev);
    E->weight_bytes += sizeof(float) * n;
    *out = (float *)dev;
    CU(cudaMemcpyAsync(dev, src, sizeof(float) * n, cudaMemcpyHostToDevice, E->stream), what);
    CU(cudaStreamSynchronize(E->stream), what);
    return PT_OK;
}

/* The step workspace for at least `rows` rows and LoRA rank `r`. */
pt_status ensure_arena(engine *E, int rows, int r) {
    if (E->arena && rows <= E->lay.rows && (r < 1 ? 1 : r) <= E->lay.lora_r) return PT_OK;
    if (E->arena && rows < E->lay.rows) rows = E->lay.rows;
    if (E->arena) {
        CU(cudaStreamSynchronize(E->stream), "growing the step workspace");
        cudaFree(E->arena);
        E->arena = nullptr;
    }
    pt_cuda_step_layout lay;
    pt_cuda_step_layout_make(&lay, &E->c, E->prec, rows, r);
    void *p = nullptr;
    char what[96];
    snprintf(what, sizeof what, "the workspace of %d-row steps", rows);
    PT_TRY(dmalloc(&p, lay.total, what));
    E->arena = (unsigned char *)p;
    E->lay = lay;
    return PT_OK;
}

void free_adapters(engine *E) {
    for (auto &a : E->adapters)
        for (auto &p : a.pairs) {
            cudaFree(p.A);
            cudaFree(p.B);
        }
    E->adapters.clear();
    E->max_r = 0;
    E->adapter_bytes = 0;
}

void free_engine(engine *E) {
    if (!E) return;
    if (E->stream) cudaStreamSynchronize(E->stream);
    free_adapters(E);
    for (void *p : E->owned) cudaFree(p);
    cudaFree(E->k_cache);
    cudaFree(E->v_cache);
    cudaFree(E->arena);
    cudaFree(E->stage);
    if (E->blas) cublasDestroy(E->blas);
    if (E->stream) cudaStreamDestroy(E->stream);
    delete E;
}

size_t pair_index(const engine *E, int layer, int t) {
    return t == PT_LT_HEAD ? (size_t)E->c.n_layers * PT_LT_HEAD : (size_t)layer * PT_LT_HEAD + t;
}

/* ---- the step ---------------------------------------------------------------------------- */

/* Row-major y (n, out) = alpha x (n, in) W^T + beta y, W stored (out, in) row-major. Seen
 * column-major, y is (out, n) with ld out, W is (in, out) with ld in, so y = op_T(W) x. */
pt_status gemm_xwt(engine *E, float *y, const void *x, const void *W, cudaDataType_t type, int n, int out, int in, float alpha,
                   float beta, const char *what) {
    cublasStatus_t s = cublasGemmEx(E->blas, CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &alpha, W, type, in, x, type, in, &beta, y, CUDA_R_32F,
                                    out, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    return s == CUBLAS_STATUS_SUCCESS ? PT_OK : blas_fail(s, what);
}

/* y (n, out) (+)= x (n, in) W^T + bias, plus for each adapter targeting (layer, t)
 * scale (x A^T) B^T (engine.c: linear). x is f32; in bf16 it is rounded into gemm_in for the
 * frozen product, the LoRA products stay f32. */
pt_status linear(engine *E, float *y, const float *x, const void *W, const float *bias, int n, int in, int out, bool accumulate,
                 int layer, int t, const char *what) {
    const void *xin = x;
    cudaDataType_t type = CUDA_R_32F;
    if (E->prec == PT_CUDA_BF16) {
        __nv_bfloat16 *xh = at<__nv_bfloat16>(E, E->lay.gemm_in);
        k_f32_to_bf16<<<blocks_for((int64_t)n * in, 256), 256, 0, E->stream>>>(xh, x, (int64_t)n * in);
        LAUNCHED(what);
        xin = xh;
        type = CUDA_R_16BF;
    }
    PT_TRY(gemm_xwt(E, y, xin, W, type, n, out, in, 1.0f, accumulate ? 1.0f : 0.0f, what));
    if (bias) {
        k_add_bias<<<blocks_for((int64_t)n * out, 256), 256, 0, E->stream>>>(y, bias, n, out);
        LAUNCHED(what);
    }
    for (const dadapter &a : E->adapters) {
        const dpair &p = a.pairs[pair_index(E, layer, t)];
        if (!p.A) continue;
        float *u = at<float>(E, E->lay.lora); /* (n, r) */
        PT_TRY(gemm_xwt(E, u, x, p.A, CUDA_R_32F, n, a.r, in, a.scale, 0.0f, "a LoRA A product"));
        PT_TRY(gemm_xwt(E, y, u, p.B, CUDA_R_32F, n, out, a.r, 1.0f, 1.0f, "a LoRA B product"));
    }
    return PT_OK;
}

pt_status rmsnorm(engine *E, float *out, const float *in, const float *w, int rows, int dim, const char *what) {
    k_rmsnorm<<<rows, 256, 0, E->stream>>>(out, nullptr, in, w, dim, E->c.norm_eps);
    LAUNCHED(what);
    return PT_OK;
}

template <typename T>
pt_status step(engine *E, const pt_step *s, float *logits) {
    const pt_config *c = &E->c;
    const int N = s->n_rows, D = c->dim, H = c->n_heads, KVH = c->n_kv_heads, hd = c->head_dim, half = hd / 2, Q = H * hd,
              KV = KVH * hd, F = c->ffn_dim, V = c->vocab_size;
    PT_TRY(ensure_arena(E, N, E->max_r));
    const pt_cuda_step_layout &L = E->lay;
    float *x = at<float>(E, L.x), *xb = at<float>(E, L.xb), *q = at<float>(E, L.q), *k = at<float>(E, L.k), *v = at<float>(E, L.v),
          *hb = at<float>(E, L.hb), *hb2 = at<float>(E, L.hb2), *cos_t = at<float>(E, L.cos), *sin_t = at<float>(E, L.sin);
    int *ids = at<int>(E, L.ids), *pos = at<int>(E, L.pos), *slot = at<int>(E, L.slot), *out_rows = at<int>(E, L.out_rows);

    /* the step's inputs; the RoPE tables in double on the host, as the CPU makes them */
    int max_len = 1;
    for (int t = 0; t < N; t++) max_len = s->pos[t] + 1 > max_len ? s->pos[t] + 1 : max_len;
    const size_t smem = sizeof(float) * ((size_t)hd + max_len);
    if (smem > (size_t)E->smem_optin)
        return pt_error(PT_ERR_ARG, "CUDA attention: %d cached tokens need %zu bytes of shared memory, more than this GPU's %d", max_len, smem,
                        E->smem_optin);
    E->rope_host.resize((size_t)2 * N * half);
    float *cos_h = E->rope_host.data(), *sin_h = cos_h + (size_t)N * half;
    pt_rope_tables(cos_h, sin_h, s->pos, N, E->m->inv_freq, half);
    const char *in_op = "uploading a step's inputs";
    CU(cudaMemcpyAsync(cos_t, cos_h, sizeof(float) * N * half, cudaMemcpyHostToDevice, E->stream), in_op);
    CU(cudaMemcpyAsync(sin_t, sin_h, sizeof(float) * N * half, cudaMemcpyHostToDevice, E->stream), in_op);
    CU(cudaMemcpyAsync(ids, s->ids, sizeof(int) * N, cudaMemcpyHostToDevice, E->stream), in_op);
    CU(cudaMemcpyAsync(pos, s->pos, sizeof(int) * N, cudaMemcpyHostToDevice, E->stream), in_op);
    CU(cudaMemcpyAsync(slot, s->slot, sizeof(int) * N, cudaMemcpyHostToDevice, E->stream), in_op);
    if (s->n_out > 0) CU(cudaMemcpyAsync(out_rows, s->out_rows, sizeof(int) * s->n_out, cudaMemcpyHostToDevice, E->stream), in_op);

    k_embed<T><<<blocks_for((int64_t)N * D, 256), 256, 0, E->stream>>>(x, (const T *)E->tok_emb, ids, N, D);
    LAUNCHED("the embedding lookup");
    const size_t layer_cache = (size_t)E->n_slots * E->n_ctx * KV;
    const float scale = 1.0f / sqrtf((float)hd);
    for (int l = 0; l < c->n_layers; l++) {
        const dlayer &W = E->layers[l];
        PT_TRY(rmsnorm(E, xb, x, W.attn_norm, N, D, "attention RMSNorm"));
        PT_TRY(linear(E, q, xb, W.wq, W.bq, N, D, Q, false, l, PT_LT_Q, "the Q product"));
        PT_TRY(linear(E, k, xb, W.wk, W.bk, N, D, KV, false, l, PT_LT_K, "the K product"));
        PT_TRY(linear(E, v, xb, W.wv, W.bv, N, D, KV, false, l, PT_LT_V, "the V product"));
        if (W.q_norm) { /* qwen3: each head of Q and K normalised on its own, before RoPE */
            PT_TRY(rmsnorm(E, q, q, W.q_norm, N * H, hd, "the Q heads' RMSNorm"));
            PT_TRY(rmsnorm(E, k, k, W.k_norm, N * KVH, hd, "the K heads' RMSNorm"));
        }
        k_rope<<<blocks_for((int64_t)N * H * half, 256), 256, 0, E->stream>>>(q, cos_t, sin_t, N, H, hd);
        LAUNCHED("RoPE of Q");
        k_rope<<<blocks_for((int64_t)N * KVH * half, 256), 256, 0, E->stream>>>(k, cos_t, sin_t, N, KVH, hd);
        LAUNCHED("RoPE of K");
        T *kc = (T *)E->k_cache + (size_t)l * layer_cache, *vc = (T *)E->v_cache + (size_t)l * layer_cache;
        k_cache_store<T><<<blocks_for((int64_t)N * KV, 256), 256, 0, E->stream>>>(kc, vc, k, v, slot, pos, N, E->n_ctx, KV);
        LAUNCHED("the key/value cache store");
        k_attention_cached<T><<<dim3(N, H), 128, smem, E->stream>>>(xb, q, kc, vc, pos, slot, H, KVH, hd, E->n_ctx, scale);
        LAUNCHED("attention");
        PT_TRY(linear(E, x, xb, W.wo, nullptr, N, Q, D, true, l, PT_LT_O, "the output product")); /* residual add */
        PT_TRY(rmsnorm(E, xb, x, W.ffn_norm, N, D, "MLP RMSNorm"));
        PT_TRY(linear(E, hb, xb, W.wg, nullptr, N, D, F, false, l, PT_LT_GATE, "the gate product"));
        PT_TRY(linear(E, hb2, xb, W.wu, nullptr, N, D, F, false, l, PT_LT_UP, "the up product"));
        k_swiglu<<<blocks_for((int64_t)N * F, 256), 256, 0, E->stream>>>(hb, hb, hb2, (int64_t)N * F);
        LAUNCHED("SwiGLU");
        PT_TRY(linear(E, x, hb, W.wd, nullptr, N, F, D, true, l, PT_LT_DOWN, "the down product")); /* residual add */
    }
    /* the rows asked for, gathered, normalised and projected to the vocabulary a chunk at a time */
    float *hx = at<float>(E, L.head_x), *hxb = at<float>(E, L.head_xb), *lg = at<float>(E, L.logits);
    for (int o0 = 0; o0 < s->n_out; o0 += L.logit_rows) {
        const int nr = s->n_out - o0 < L.logit_rows ? s->n_out - o0 : L.logit_rows;
        k_gather_rows<<<blocks_for((int64_t)nr * D, 256), 256, 0, E->stream>>>(hx, x, out_rows + o0, nr, D);
        LAUNCHED("gathering the rows for the head");
        PT_TRY(rmsnorm(E, hxb, hx, E->out_norm, nr, D, "the final RMSNorm"));
        PT_TRY(linear(E, lg, hxb, E->output, nullptr, nr, D, V, false, 0, PT_LT_HEAD, "the LM head product"));
        CU(cudaMemcpyAsync(logits + (size_t)o0 * V, lg, sizeof(float) * nr * V, cudaMemcpyDeviceToHost, E->stream), "downloading logits");
        /* the next chunk overwrites the device buffer: wait for this copy */
        CU(cudaStreamSynchronize(E->stream), "downloading logits");
    }
    CU(cudaStreamSynchronize(E->stream), "the forward step");
    return PT_OK;
}

template <typename T>
pt_status zero_cache(engine *E) {
    CU(cudaMemsetAsync(E->k_cache, 0, E->cache_bytes / 2, E->stream), "clearing the key/value cache");
    CU(cudaMemsetAsync(E->v_cache, 0, E->cache_bytes / 2, E->stream), "clearing the key/value cache");
    return PT_OK;
}

pt_status open_engine(engine *E, const pt_model *m, int n_slots, int n_ctx, int max_rows) {
    const pt_config *c = &m->cfg;
    E->m = m;
    E->c = *c;
    E->prec = pt_cuda_get_precision();
    E->n_slots = n_slots;
    E->n_ctx = n_ctx;
    if (max_rows < 1) max_rows = 1;
    const char *what = m->path ? m->path : "the model";

    /* the memory check before anything is allocated: the step workspace as it will be laid out */
    size_t free_b = 0, total_b = 0;
    CU(cudaMemGetInfo(&free_b, &total_b), "reading the GPU's free memory");
    pt_cuda_plan p;
    pt_cuda_plan_engine(&p, c, E->prec, n_slots, n_ctx, max_rows, 0, 0);
    pt_cuda_step_layout lay;
    pt_cuda_step_layout_make(&lay, c, E->prec, max_rows, 0);
    p.logits = (size_t)lay.logit_rows * c->vocab_size * sizeof(float);
    p.workspace = lay.total - p.logits + STAGE_BYTES;
    p.total = p.weights + p.kv_cache + p.workspace + p.logits + p.lora;
    PT_TRY(pt_cuda_plan_check(&p, free_b, what));

    CU(cudaStreamCreateWithFlags(&E->stream, cudaStreamNonBlocking), "creating a stream");
    cublasStatus_t bs = cublasCreate(&E->blas);
    if (bs != CUBLAS_STATUS_SUCCESS) {
        E->blas = nullptr;
        return blas_fail(bs, "creating a cuBLAS handle");
    }
    bs = cublasSetStream(E->blas, E->stream);
    /* f32 reproduces the CPU: no TF32 or other reduced-precision shortcut inside cuBLAS */
    if (bs == CUBLAS_STATUS_SUCCESS) bs = cublasSetMathMode(E->blas, E->prec == PT_CUDA_F32 ? CUBLAS_PEDANTIC_MATH : CUBLAS_DEFAULT_MATH);
    if (bs != CUBLAS_STATUS_SUCCESS) return blas_fail(bs, "setting up cuBLAS");
    int dev = 0;
    CU(cudaGetDevice(&dev), "querying the GPU");
    CU(cudaDeviceGetAttribute(&E->smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev), "querying the GPU");
    /* the attention kernel keeps (head_dim + context) floats of scores in shared memory */
    const size_t smem_max = sizeof(float) * ((size_t)c->head_dim + n_ctx);
    if (smem_max > (size_t)E->smem_optin)
        return pt_error(PT_ERR_ARG, "CUDA attention: a context of %d tokens needs %zu bytes of shared memory per block, more than this GPU's %d; "
                        "use a smaller --ctx", n_ctx, smem_max, E->smem_optin);
    if (smem_max > 48 * 1024) {
        int bytes = (int)smem_max;
        if (E->prec == PT_CUDA_F32) CU(cudaFuncSetAttribute(k_attention_cached<float>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes), "attention setup");
        else CU(cudaFuncSetAttribute(k_attention_cached<__nv_bfloat16>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes), "attention setup");
    }

    PT_TRY(dmalloc(&E->stage, STAGE_BYTES, "the weight upload buffer"));
    PT_TRY(upload_matrix(E, &m->tok_emb, &E->tok_emb, "token_embd"));
    if (m->output.data == m->tok_emb.data && m->output.dtype == m->tok_emb.dtype) E->output = E->tok_emb;
    else PT_TRY(upload_matrix(E, &m->output, &E->output, "output"));
    PT_TRY(upload_vector(E, m->out_norm, c->dim, &E->out_norm, "output_norm"));
    E->layers.resize(c->n_layers);
    const int Q = c->n_heads * c->head_dim, KV = c->n_kv_heads * c->head_dim;
    for (int l = 0; l < c->n_layers; l++) {
        const pt_layer *L = &m->layers[l];
        dlayer &d = E->layers[l];
        char name[64];
        snprintf(name, sizeof name, "layer %d's weights", l);
        PT_TRY(upload_matrix(E, &L->wq, &d.wq, name));
        PT_TRY(upload_matrix(E, &L->wk, &d.wk, name));
        PT_TRY(upload_matrix(E, &L->wv, &d.wv, name));
        PT_TRY(upload_matrix(E, &L->wo, &d.wo, name));
        PT_TRY(upload_matrix(E, &L->w_gate, &d.wg, name));
        PT_TRY(upload_matrix(E, &L->w_up, &d.wu, name));
        PT_TRY(upload_matrix(E, &L->w_down, &d.wd, name));
        PT_TRY(upload_vector(E, L->attn_norm, c->dim, &d.attn_norm, name));
        PT_TRY(upload_vector(E, L->ffn_norm, c->dim, &d.ffn_norm, name));
        PT_TRY(upload_vector(E, L->q_norm, c->head_dim, &d.q_norm, name));
        PT_TRY(upload_vector(E, L->k_norm, c->head_dim, &d.k_norm, name));
        PT_TRY(upload_vector(E, L->bq, Q, &d.bq, name));
        PT_TRY(upload_vector(E, L->bk, KV, &d.bk, name));
        PT_TRY(upload_vector(E, L->bv, KV, &d.bv, name));
    }
    cudaFree(E->stage);
    E->stage = nullptr;
    E->cache_bytes = 2 * (size_t)c->n_layers * n_slots * n_ctx * KV * pt_cuda_elem_bytes(E->prec);
    PT_TRY(dmalloc(&E->k_cache, E->cache_bytes / 2, "the key cache"));
    PT_TRY(dmalloc(&E->v_cache, E->cache_bytes / 2, "the value cache"));
    PT_TRY(E->prec == PT_CUDA_F32 ? zero_cache<float>(E) : zero_cache<__nv_bfloat16>(E));
    PT_TRY(ensure_arena(E, max_rows, 0));
    CU(cudaStreamSynchronize(E->stream), "opening the engine");
    return PT_OK;
}

pt_status set_adapters(engine *E, const pt_adapter *const *ads, const float *weights, int n) {
    CU(cudaStreamSynchronize(E->stream), "replacing the adapters");
    free_adapters(E);
    const int L = E->c.n_layers;
    for (int i = 0; i < n; i++) {
        const pt_adapter *a = ads[i];
        if (!a) continue;
        E->adapters.emplace_back();
        dadapter &d = E->adapters.back();
        d.r = a->r;
        d.scale = a->scale * (weights ? weights[i] : 1.0f);
        d.pairs.resize((size_t)L * PT_LT_HEAD + 1);
        for (int l = 0; l <= L; l++)
            for (int t = 0; t < PT_LT_HEAD; t++) {
                const int target = l == L ? PT_LT_HEAD : t;
                if (l == L && t > 0) break; /* the head has one pair */
                const pt_lora_pair *p = pt_adapter_pair(a, l == L ? 0 : l, (pt_lora_target)target);
                if (!p || !p->A) continue;
                dpair &dp = d.pairs[pair_index(E, l, target)];
                const size_t a_bytes = sizeof(float) * (size_t)a->r * p->in, b_bytes = sizeof(float) * (size_t)p->out * a->r;
                void *A = nullptr, *B = nullptr;
                PT_TRY(dmalloc(&A, a_bytes, "a LoRA adapter"));
                dp.A = (float *)A;
                PT_TRY(dmalloc(&B, b_bytes, "a LoRA adapter"));
                dp.B = (float *)B;
                E->adapter_bytes += a_bytes + b_bytes;
                CU(cudaMemcpyAsync(A, p->A, a_bytes, cudaMemcpyHostToDevice, E->stream), "uploading a LoRA adapter");
                CU(cudaMemcpyAsync(B, p->B, b_bytes, cudaMemcpyHostToDevice, E->stream), "uploading a LoRA adapter");
            }
        if (d.r > E->max_r) E->max_r = d.r;
    }
    /* the host's matrices may change once this returns */
    CU(cudaStreamSynchronize(E->stream), "uploading a LoRA adapter");
    return PT_OK;
}

} // namespace

extern "C" {

pt_status pt_cuda_engine_open(void **dev, const pt_model *m, int n_slots, int n_ctx, int max_rows) {
    *dev = nullptr;
    engine *E = new (std::nothrow) engine;
    if (!E) return pt_error(PT_ERR_OOM, "out of memory");
    pt_status st = open_engine(E, m, n_slots, n_ctx, max_rows);
    if (st) {
        free_engine(E);
        return st;
    }
    *dev = E;
    return PT_OK;
}

void pt_cuda_engine_close(void *dev) { free_engine((engine *)dev); }

pt_status pt_cuda_engine_set_adapters(void *dev, const struct pt_adapter *const *adapters, const float *weights, int n) {
    engine *E = (engine *)dev;
    pt_status st = set_adapters(E, adapters, weights, n);
    if (st) free_adapters(E); /* none rather than some */
    return st;
}

pt_status pt_cuda_forward_step(void *dev, const pt_step *s, float *logits) {
    engine *E = (engine *)dev;
    if (pt_cuda_fault_due()) return pt_error(PT_ERR_IO, "CUDA error in the forward step: fault injected by the test hook");
    return E->prec == PT_CUDA_F32 ? step<float>(E, s, logits) : step<__nv_bfloat16>(E, s, logits);
}

size_t pt_cuda_engine_device_bytes(const void *dev) {
    const engine *E = (const engine *)dev;
    return E->weight_bytes + E->cache_bytes + E->adapter_bytes + (E->arena ? E->lay.total : 0);
}

} // extern "C"
