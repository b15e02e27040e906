/* Element types and read-only tensor views shared by the safetensors and GGUF readers.
 *
 * A view points into a memory-mapped file; shapes are in PyTorch order (slowest dimension
 * first), so a linear weight is (out, in) whichever file it came from. */
#ifndef PT_FORMAT_TENSOR_H
#define PT_FORMAT_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "util/status.h"

typedef enum {
    PT_F32 = 0,
    PT_F16,
    PT_BF16,
    PT_Q8_0, /* blocks of 32: f16 scale + 32 x i8 */
    PT_Q4_0, /* blocks of 32: f16 scale + 16 bytes of nibbles */
    PT_I32,
    PT_I64,
    PT_DTYPE_COUNT
} pt_dtype;

#define PT_MAX_DIMS 8
#define PT_QBLOCK 32

typedef struct {
    const char *name;
    pt_dtype dtype;
    int n_dims;
    int64_t shape[PT_MAX_DIMS]; /* PyTorch order: shape[0] slowest */
    const uint8_t *data;
    size_t nbytes;
} pt_tensor_view;

/* A weight matrix (rows, cols) = (out, in), row-major, or a vector when rows == 1. */
typedef struct {
    pt_dtype dtype;    /* PT_F32, PT_Q8_0 or PT_Q4_0 after loading */
    int rows, cols;
    const void *data;
} pt_weight;

const char *pt_dtype_name(pt_dtype t);
/* Bytes needed for `n` elements (n must be a multiple of 32 for block types); 0 on misuse. */
size_t pt_dtype_nbytes(pt_dtype t, int64_t n);
int64_t pt_tensor_numel(const pt_tensor_view *t);

/* Multiplies dimensions with overflow checks; returns -1 on overflow or a negative dim. */
int64_t pt_shape_numel(const int64_t *shape, int n_dims);

/* Converts `n` elements of any supported type to float32. */
void pt_dtype_to_f32(float *dst, const void *src, pt_dtype t, int64_t n);
/* The same, widened to float64 (exact: every stored type fits in float32). */
void pt_dtype_to_f64(double *dst, const void *src, pt_dtype t, int64_t n);

float pt_f16_to_f32(uint16_t h);
uint16_t pt_f32_to_f16(float f);
static inline float pt_bf16_to_f32(uint16_t b) {
    union { uint32_t u; float f; } v = {.u = (uint32_t)b << 16};
    return v.f;
}
uint16_t pt_f32_to_bf16(float f); /* round to nearest even, as PyTorch does */

/* Quantises `n` floats (multiple of 32) into blocks. */
void pt_quantize_q8_0(void *dst, const float *src, int64_t n);
void pt_quantize_q4_0(void *dst, const float *src, int64_t n);

#endif
