/* General row-major single-precision products for the training kernels (the backend's
 * pt_sgemm_nt covers only C = A B^T): C (m, n) = alpha op(A) op(B) + beta C with op a
 * transpose or not. Threaded the way the backend threads its products: BLAS runs
 * single-threaded and OpenMP hands out blocks of C's rows or columns, a few per thread,
 * dynamically. Inside a parallel region, or for small products, one BLAS call. */
#ifndef PT_NN_GEMM_H
#define PT_NN_GEMM_H

#include <stdbool.h>

void pt_nn_sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc);

#endif
