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
    /* the other GGML block types (layouts in format/quant.c) */
    PT_Q4_1,   /* blocks of 32: f16 scale, f16 minimum, 16 bytes of nibbles */
    PT_Q5_0,   /* blocks of 32: f16 scale, 32 high bits, 16 bytes of nibbles */
    PT_Q5_1,   /* blocks of 32: f16 scale, f16 minimum, 32 high bits, 16 bytes of nibbles */
    PT_Q2_K,   /* super-blocks of 256 with 4-bit scales and minima per 16: 2-bit values */
    PT_Q3_K,   /* super-blocks of 256 with 6-bit scales per 16: 3-bit values */
    PT_Q4_K,   /* super-blocks of 256 with 6-bit scales and minima per 32: 4-bit values */
    PT_Q5_K,   /* the same with 5-bit values */
    PT_Q6_K,   /* super-blocks of 256 with 8-bit scales per 16: 6-bit values */
    PT_IQ4_NL, /* blocks of 32: f16 scale, 16 bytes of indices into a fixed 16-value table */
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
    pt_dtype dtype;    /* PT_F32 or a GGML block type (Q8_0, Q4_1, Q4_K, ...) after loading */
    int rows, cols;
    const void *data;
} pt_weight;

const char *pt_dtype_name(pt_dtype t);
/* Bytes needed for `n` elements (n must be a multiple of the type's block); 0 on misuse. */
size_t pt_dtype_nbytes(pt_dtype t, int64_t n);
/* Elements per block (1 for the plain types) and bytes per block. */
int pt_dtype_block(pt_dtype t);
size_t pt_dtype_block_bytes(pt_dtype t);
/* True for the GGML block-quantised types (Q8_0, Q4_0, Q4_1, ... IQ4_NL). */
int pt_dtype_is_quant(pt_dtype t);
/* GGML's tensor type number (the GGUF tensor-info field) for t, -1 when it has none. */
int pt_dtype_ggml_type(pt_dtype t);
/* The dtype of GGML type number `ggml`; returns 0 when politune does not read that type. */
int pt_dtype_from_ggml(uint32_t ggml, pt_dtype *out);
/* GGML's name for type number `ggml`, read or not ("Q8_K", "IQ2_XXS"...); "unknown" when it
 * has none. */
const char *pt_dtype_ggml_name(uint32_t ggml);
/* Comma-separated names of the GGML types politune reads, for error messages. */
const char *pt_dtype_ggml_supported(void);
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

/* Dequantises `n` elements (a multiple of the block) of a GGML block type other than Q8_0 /
 * Q4_0 (those are in pt_dtype_to_f32); equal, as float32, to gguf.quants.dequantize. */
void pt_quant_dequant(float *dst, const void *src, pt_dtype t, int64_t n);
/* IQ4_NL's code book: the value of each 4-bit index before scaling. */
extern const int8_t pt_iq4nl_values[16];

/* Quantises `n` floats (multiple of 32) into blocks. */
void pt_quantize_q8_0(void *dst, const float *src, int64_t n);
void pt_quantize_q4_0(void *dst, const float *src, int64_t n);

#endif
