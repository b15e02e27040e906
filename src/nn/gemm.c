/* Threaded general products by blocks of the output (see gemm.h). */
#include "nn/gemm.h"

#include <cblas.h>
#include <omp.h>
#include <stddef.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/matmul.h"

void PT_RN(pt_nn_gemm)(bool ta, bool tb, int m, int n, int k, pt_real alpha, const pt_real *A, int lda, const pt_real *B,
                      int ldb, pt_real beta, pt_real *C, int ldc) {
    pt_kern_blas_init();
    const enum CBLAS_TRANSPOSE TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
    const int nt = omp_in_parallel() || (double)m * n * k < (1 << 18) ? 1 : pt_backend_threads();
    if (nt == 1 || (m < 64 && n < 64)) {
        pt_real_gemm(CblasRowMajor, TA, TB, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    const bool split_rows = m >= n;
    const int ext = split_rows ? m : n;
    int bs = (ext + nt * 3 - 1) / (nt * 3);
    bs = (bs + 15) / 16 * 16;
    if (bs < 32) bs = 32;
    const int nb = (ext + bs - 1) / bs;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int b = 0; b < nb; b++) {
        const int o = b * bs, len = ext - o < bs ? ext - o : bs;
        if (split_rows) /* rows o.. of C need rows o.. of op(A) */
            pt_real_gemm(CblasRowMajor, TA, TB, len, n, k, alpha, ta ? A + o : A + (size_t)o * lda, lda, B, ldb, beta, C + (size_t)o * ldc, ldc);
        else /* columns o.. of C need columns o.. of op(B) */
            pt_real_gemm(CblasRowMajor, TA, TB, m, len, k, alpha, A, lda, tb ? B + (size_t)o * ldb : B + o, ldb, beta, C + o, ldc);
    }
}
