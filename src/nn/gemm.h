/* General row-major products for the training kernels (the backend's
 * pt_sgemm_nt covers only C = A B^T): C (m, n) = alpha op(A) op(B) + beta C with op a
 * transpose or not. Threaded the way the backend threads its products: BLAS runs
 * single-threaded and OpenMP hands out blocks of C's rows or columns, a few per thread,
 * dynamically. Inside a parallel region, or for small products, one BLAS call. Over pt_real:
 * single precision as pt_nn_gemm, double as pt_nn_gemm_f64 (real.h). */
#ifndef PT_NN_GEMM_H
#define PT_NN_GEMM_H

#include <stdbool.h>

#include "nn/real.h"

void PT_RN(pt_nn_gemm)(bool trans_a, bool trans_b, int m, int n, int k, pt_real alpha, const pt_real *A, int lda, const pt_real *B,
                      int ldb, pt_real beta, pt_real *C, int ldc);

#endif
