/* The CUDA kernels both halves of the backend use: the per-operation table of
 * cuda_backend.cu and the GPU-resident engine of cuda_engine.cu (RMSNorm, RoPE, SwiGLU, bias,
 * conversions and dequantisation of weight blocks), each the arithmetic of its src/nn or
 * src/format counterpart on the CPU. They live in an anonymous namespace so that each .cu
 * file has its own copy and no device linking is needed. */
#ifndef PT_BACKEND_CUDA_CUDA_KERNELS_CUH
#define PT_BACKEND_CUDA_CUDA_KERNELS_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

namespace {

inline unsigned blocks_for(int64_t n, int threads) { return (unsigned)((n + threads - 1) / threads); }

__global__ void k_f32_to_bf16(__nv_bfloat16 *dst, const float *src, int64_t n) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = __float2bfloat16_rn(src[i]);
}

/* GGML blocks of 32: an f16 scale, then 32 int8 (Q8_0) or 16 bytes of nibbles, element j in
 * the low nibble of byte j and element j + 16 in its high nibble (Q4_0). dst (rows, cols). */
template <typename T>
__device__ void store(T *dst, int64_t i, float v);
template <>
__device__ void store<float>(float *dst, int64_t i, float v) { dst[i] = v; }
template <>
__device__ void store<__nv_bfloat16>(__nv_bfloat16 *dst, int64_t i, float v) { dst[i] = __float2bfloat16_rn(v); }

template <typename T>
__global__ void k_dequant_q8_0(T *dst, const uint8_t *src, size_t row_bytes, int rows, int cols) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (int64_t)rows * cols) return;
    int64_t r = i / cols;
    int c = (int)(i % cols), b = c / 32, j = c % 32;
    const uint8_t *blk = src + r * row_bytes + (size_t)b * 34;
    float d = __half2float(*(const __half *)blk);
    store<T>(dst, i, d * (float)(int8_t)blk[2 + j]);
}

template <typename T>
__global__ void k_dequant_q4_0(T *dst, const uint8_t *src, size_t row_bytes, int rows, int cols) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (int64_t)rows * cols) return;
    int64_t r = i / cols;
    int c = (int)(i % cols), b = c / 32, j = c % 32;
    const uint8_t *blk = src + r * row_bytes + (size_t)b * 18;
    float d = __half2float(*(const __half *)blk);
    int q = j < 16 ? (blk[2 + j] & 0x0f) : (blk[2 + j - 16] >> 4);
    store<T>(dst, i, d * (float)(q - 8));
}

/* one block per row: out = in * rsqrt(mean(in^2) + eps) * w */
__global__ void k_rmsnorm(float *out, float *rstd, const float *in, const float *w, int dim, float eps) {
    const float *x = in + (size_t)blockIdx.x * dim;
    float s = 0;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) s += x[i] * x[i];
    __shared__ float part[32];
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = s;
    __syncthreads();
    if (threadIdx.x < 32) {
        s = threadIdx.x < (blockDim.x + 31) / 32 ? part[threadIdx.x] : 0;
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (threadIdx.x == 0) part[0] = s;
    }
    __syncthreads();
    float r = rsqrtf(part[0] / dim + eps);
    if (rstd && threadIdx.x == 0) rstd[blockIdx.x] = r;
    float *y = out + (size_t)blockIdx.x * dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) y[i] = x[i] * r * w[i];
}

/* x (n, heads, hd) in place, Hugging Face half rotation; cos/sin (n, hd/2) */
__global__ void k_rope(float *x, const float *cos_t, const float *sin_t, int n, int heads, int hd) {
    int half = hd / 2;
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (int64_t)n * heads * half) return;
    int j = (int)(i % half);
    int64_t th = i / half;
    int64_t t = th / heads;
    float *v = x + th * hd;
    float c = cos_t[t * half + j], s = sin_t[t * half + j];
    float a = v[j], b = v[j + half];
    v[j] = a * c - b * s;
    v[j + half] = b * c + a * s;
}

__global__ void k_swiglu(float *h, const float *gate, const float *up, int64_t n) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float g = gate[i];
    h[i] = g / (1.0f + expf(-g)) * up[i];
}

/* y (n, out) += bias (out) */
__global__ void k_add_bias(float *y, const float *bias, int n, int out) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < (int64_t)n * out) y[i] += bias[i % out];
}

} // namespace

#endif
