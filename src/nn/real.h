/* The element type of the training numerics. The layer kernels and the training model are
 * written once over `pt_real` and compiled twice: as float32 (the default, names as
 * written) and, with PT_F64 defined, as float64 (names given the suffix _f64 by PT_RN).
 * Float64 is the precision of the reference implementations researchers compare against
 * (PyTorch autograd in float64): it reproduces their gradients, and so their optimiser steps,
 * digit for digit where float32 cannot (an Adam step g / (|g| + eps) of a gradient near eps
 * depends on digits float32 does not hold). The build compiles every source that includes
 * this header a second time with -DPT_F64. */
#ifndef PT_NN_REAL_H
#define PT_NN_REAL_H

#include <math.h>

#include "format/tensor.h"
#include "nn/fastexp.h"

#ifdef PT_F64
typedef double pt_real;
#define PT_RN(name) name##_f64
#define pt_real_gemm cblas_dgemm
#define pt_real_exp(x) exp(x)
#define pt_real_fast_exp(x) exp(x)
#define pt_real_sqrt(x) sqrt(x)
#define pt_dtype_to_real pt_dtype_to_f64
#else
typedef float pt_real;
#define PT_RN(name) name
#define pt_real_gemm cblas_sgemm
#define pt_real_exp(x) expf(x)
#define pt_real_fast_exp(x) pt_fast_expf(x)
#define pt_real_sqrt(x) sqrtf(x)
#define pt_dtype_to_real pt_dtype_to_f32
#endif

#endif
