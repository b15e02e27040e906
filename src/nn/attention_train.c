/* Causal grouped-query self-attention for training, forward and backward, over sequences
 * packed end to end. Work items are (sequence, head) pairs in the forward pass and (sequence,
 * key/value head) pairs in the backward pass, which owns the gradients of its key/value head;
 * items go to OpenMP threads, each with its own (T, T) scratch and single-threaded BLAS
 * products. The forward pass keeps only the log-sum-exp of each query row; the backward pass
 * recomputes the probabilities from it, so memory grows with N * H, not with T^2 per layer.
 *
 * Per sequence of length T and head h (kv head g = h / (H / KV)), with s = 1/sqrt(hd):
 *   S = s q_h k_g^T (T, T), P = softmax(S + causal mask), out_h = P v_g
 *   dP = dout_h v_g^T, dS = P * (dP - rowsum(dout_h * out_h)),
 *   dq_h = s dS k_g, dk_g = sum_h s dS^T q_h, dv_g = sum_h P^T dout_h.
 * Compiled for float32 and float64 (real.h). */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/matmul.h"
#include "nn/fastexp.h"
#include "nn/nn.h"

#ifndef PT_F64 /* a count of elements, the same for both */
size_t pt_attention_scratch_elems(int max_seq_len, int n_heads) {
    return 2 * (size_t)n_heads * max_seq_len * max_seq_len;
}
#endif

/* Threads for `items` work items, at most `cap` (the scratch holds that many slots). */
static int threads_for(int items, int cap) {
    int nt = omp_in_parallel() ? 1 : pt_backend_threads();
    if (nt > items) nt = items;
    if (nt > cap) nt = cap;
    return nt < 1 ? 1 : nt;
}

void PT_RN(pt_attention_train_forward)(pt_real *out, pt_real *lse, const pt_real *q, const pt_real *k, const pt_real *v,
                                const int *seq_start, const int *seq_len, int n_seq, int n_heads, int n_kv_heads, int hd,
                                pt_real *scratch) {
    pt_kern_blas_init();
    const int H = n_heads, group = n_heads / n_kv_heads, qd = H * hd, kd = n_kv_heads * hd, items = n_seq * H;
    int max_len = 0;
    for (int s = 0; s < n_seq; s++) max_len = seq_len[s] > max_len ? seq_len[s] : max_len;
    const pt_real scale = 1 / pt_real_sqrt((pt_real)hd);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads_for(items, 2 * H))
    for (int it = 0; it < items; it++) {
        const int s = it / H, h = it % H, T = seq_len[s], t0 = seq_start[s], g = h / group;
        pt_real *S = scratch + (size_t)omp_get_thread_num() * max_len * max_len; /* (T, T) */
        const pt_real *qh = q + (size_t)t0 * qd + h * hd, *kg = k + (size_t)t0 * kd + g * hd, *vg = v + (size_t)t0 * kd + g * hd;
        pt_real_gemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, scale, qh, qd, kg, kd, 0, S, T);
        for (int i = 0; i < T; i++) {
            pt_real *row = S + (size_t)i * T;
            pt_real mx = row[0];
#pragma omp simd reduction(max : mx)
            for (int j = 1; j <= i; j++) mx = row[j] > mx ? row[j] : mx;
            double sum = 0;
#pragma omp simd reduction(+ : sum)
            for (int j = 0; j <= i; j++) {
                row[j] = pt_real_fast_exp(row[j] - mx);
                sum += row[j];
            }
            const pt_real inv = (pt_real)(1.0 / sum);
#pragma omp simd
            for (int j = 0; j <= i; j++) row[j] *= inv;
            for (int j = i + 1; j < T; j++) row[j] = 0;
            lse[(size_t)(t0 + i) * H + h] = mx + (pt_real)log(sum);
        }
        pt_real_gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1, S, T, vg, kd, 0, out + (size_t)t0 * qd + h * hd, qd);
    }
}

void PT_RN(pt_attention_backward)(pt_real *dq, pt_real *dk, pt_real *dv, const pt_real *dout, const pt_real *out, const pt_real *lse,
                           const pt_real *q, const pt_real *k, const pt_real *v, const int *seq_start, const int *seq_len,
                           int n_seq, int n_heads, int n_kv_heads, int hd, pt_real *scratch) {
    pt_kern_blas_init();
    const int H = n_heads, KV = n_kv_heads, group = n_heads / n_kv_heads, qd = H * hd, kd = KV * hd, items = n_seq * KV;
    int max_len = 0;
    for (int s = 0; s < n_seq; s++) max_len = seq_len[s] > max_len ? seq_len[s] : max_len;
    const pt_real scale = 1 / pt_real_sqrt((pt_real)hd);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads_for(items, H))
    for (int it = 0; it < items; it++) {
        const int s = it / KV, g = it % KV, T = seq_len[s], t0 = seq_start[s];
        pt_real *P = scratch + (size_t)omp_get_thread_num() * 2 * max_len * max_len, *dS = P + (size_t)max_len * max_len; /* (T, T) */
        const pt_real *kg = k + (size_t)t0 * kd + g * hd, *vg = v + (size_t)t0 * kd + g * hd;
        pt_real *dkg = dk + (size_t)t0 * kd + g * hd, *dvg = dv + (size_t)t0 * kd + g * hd;
        for (int h = g * group; h < (g + 1) * group; h++) {
            const pt_real *qh = q + (size_t)t0 * qd + h * hd, *doh = dout + (size_t)t0 * qd + h * hd, *oh = out + (size_t)t0 * qd + h * hd;
            pt_real_gemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, scale, qh, qd, kg, kd, 0, P, T);
            pt_real_gemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, 1, doh, qd, vg, kd, 0, dS, T); /* dP */
            for (int i = 0; i < T; i++) {
                pt_real *p = P + (size_t)i * T, *d = dS + (size_t)i * T;
                const pt_real *o = oh + (size_t)i * qd, *go = doh + (size_t)i * qd;
                const pt_real l = lse[(size_t)(t0 + i) * H + h];
                pt_real D = 0;
                for (int c = 0; c < hd; c++) D += o[c] * go[c];
#pragma omp simd
                for (int j = 0; j <= i; j++) {
                    p[j] = pt_real_fast_exp(p[j] - l);
                    d[j] = p[j] * (d[j] - D);
                }
                for (int j = i + 1; j < T; j++) p[j] = d[j] = 0;
            }
            /* the group's first head writes dk_g and dv_g, the others add */
            const pt_real beta = h == g * group ? 0 : 1;
            pt_real_gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, scale, dS, T, kg, kd, 0, dq + (size_t)t0 * qd + h * hd, qd);
            pt_real_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, scale, dS, T, qh, qd, beta, dkg, kd);
            pt_real_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, 1, P, T, doh, qd, beta, dvg, kd);
        }
    }
}
