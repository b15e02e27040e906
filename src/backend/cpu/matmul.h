/* The one place where weights meet activations: y = x W^T for a batch of rows, whatever
 * the weight's storage type. F32 batches go to BLAS sgemm; single rows (decode) use
 * threaded dot-product kernels that read each weight byte once; quantised weights are
 * dequantised tile by tile for batches and dotted block by block for single rows. */
#ifndef PT_BACKEND_CPU_MATMUL_H
#define PT_BACKEND_CPU_MATMUL_H

#include "format/tensor.h"

/* out (n, W.rows) = in (n, W.cols) @ W^T, plus bias (W.rows) when non-NULL.
 * With accumulate, adds into out instead of overwriting it. */
void pt_matmul(float *out, const float *in, const pt_weight *W, const float *bias, int n, int accumulate);

/* The same with float32 activations whatever n: pt_matmul's single rows of the block types
 * past Q8_0 / Q4_0 use an int8 copy of the activations (as llama.cpp does), fine for decode
 * but not for training, whose backward pass must differentiate the very function the forward
 * computed. */
void pt_matmul_float(float *out, const float *in, const pt_weight *W, const float *bias, int n, int accumulate);

/* W (rows, cols) as float32: its own data for F32, else W dequantised into a buffer of the
 * calling thread (valid until its next product), or NULL when W has more than 4M elements.
 * A frozen layer's products over it are then those of a float32 W, bit for bit. */
const float *pt_matmul_weight_f32(const pt_weight *W);

/* dx (n, W.cols) (+)= dy (n, W.rows) @ W: the input gradient of a frozen linear layer, float32
 * activations, for a W too large for pt_matmul_weight_f32. Columns of dx go to the threads in
 * slabs of whole quantisation blocks; each slab's columns of W are dequantised once (in
 * chunks of rows for a vocabulary-sized W) and multiplied in one sgemm over all rows, so dx
 * is written once rather than once per tile of rows. */
void pt_matmul_input_grad(float *dx, const float *dy, const pt_weight *W, int n, int accumulate);

/* Dense float32 helper: C (m, n) (+)= A (m, k) @ B^T, B given as (n, k), row-major. */
void pt_sgemm_nt(float *C, const float *A, const float *B, int m, int n, int k, int accumulate);

/* Sets the thread count for BLAS and the OpenMP kernels (<= 0: all cores). */
void pt_backend_set_threads(int n);
int pt_backend_threads(void);

#endif
