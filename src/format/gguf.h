/* GGUF v2/v3 reader and writer.
 *
 * Every count, length, dimension and offset in a GGUF file is untrusted: the reader bounds
 * strings and arrays by the file size, checks element types before exposing arrays,
 * multiplies dimensions with overflow checks, bounds the alignment, and checks that each
 * tensor lies inside the data section. Tensor views use PyTorch dimension order (GGUF's ne[]
 * reversed), so a weight reads as (out, in) as it does from safetensors. */
#ifndef PT_FORMAT_GGUF_H
#define PT_FORMAT_GGUF_H

#include <stdbool.h>

#include "format/tensor.h"
#include "util/file.h"

enum {
    PT_GGUF_U8 = 0, PT_GGUF_I8, PT_GGUF_U16, PT_GGUF_I16, PT_GGUF_U32, PT_GGUF_I32, PT_GGUF_F32,
    PT_GGUF_BOOL, PT_GGUF_STRING, PT_GGUF_ARRAY, PT_GGUF_U64, PT_GGUF_I64, PT_GGUF_F64, PT_GGUF_NTYPES
};

typedef struct {
    const char *ptr; /* not NUL-terminated: points into the file */
    uint64_t len;
} pt_gguf_str;

typedef struct {
    char *key;
    uint32_t type;
    union {
        uint64_t u;     /* unsigned integer types and bool */
        int64_t i;      /* signed integer types */
        double f;       /* F32, F64 */
        pt_gguf_str s;  /* STRING */
    } v;
    /* ARRAY: element type, count, and either the raw elements or (strings) one entry each */
    uint32_t arr_type;
    uint64_t arr_n;
    const uint8_t *arr_data;
    pt_gguf_str *arr_str;
} pt_gguf_kv;

typedef struct pt_gguf {
    pt_mapped_file file;
    const char *label;
    uint32_t version;
    pt_gguf_kv *kv;
    uint64_t n_kv;
    pt_tensor_view *tensors;
    char **names;
    uint64_t n_tensors;
    uint64_t alignment;
} pt_gguf;

pt_status pt_gguf_open(pt_gguf *g, const char *path);
pt_status pt_gguf_parse(pt_gguf *g, const uint8_t *data, size_t size, const char *label);
void pt_gguf_close(pt_gguf *g);

const pt_gguf_kv *pt_gguf_find(const pt_gguf *g, const char *key);
const pt_tensor_view *pt_gguf_find_tensor(const pt_gguf *g, const char *name);

/* Typed getters. Missing keys: return PT_ERR_FORMAT naming the key when `required`,
 * otherwise leave *out untouched and return PT_OK. A present key of the wrong type is
 * always an error. */
pt_status pt_gguf_get_int(const pt_gguf *g, const char *key, int64_t *out, bool required);
pt_status pt_gguf_get_float(const pt_gguf *g, const char *key, double *out, bool required);
pt_status pt_gguf_get_bool(const pt_gguf *g, const char *key, bool *out, bool required);
/* Returns a malloc'd NUL-terminated copy (NULL when absent and not required). */
pt_status pt_gguf_get_string(const pt_gguf *g, const char *key, char **out, bool required);
/* Numeric array element `i` as double (array of any integer or float type). */
double pt_gguf_arr_num(const pt_gguf_kv *kv, uint64_t i);

/* ---- writer ------------------------------------------------------------------------- */

typedef struct pt_gguf_writer pt_gguf_writer;

pt_gguf_writer *pt_gguf_writer_new(void);
void pt_gguf_writer_free(pt_gguf_writer *w);
void pt_gguf_set_u32(pt_gguf_writer *w, const char *key, uint32_t v);
void pt_gguf_set_f32(pt_gguf_writer *w, const char *key, float v);
void pt_gguf_set_bool(pt_gguf_writer *w, const char *key, bool v);
void pt_gguf_set_str(pt_gguf_writer *w, const char *key, const char *v);
void pt_gguf_set_arr_str(pt_gguf_writer *w, const char *key, const char *const *v, uint64_t n);
void pt_gguf_set_arr_f32(pt_gguf_writer *w, const char *key, const float *v, uint64_t n);
void pt_gguf_set_arr_i32(pt_gguf_writer *w, const char *key, const int32_t *v, uint64_t n);
/* Adds a tensor from float32 data (PyTorch order shape), stored as `dtype`
 * (F32, F16, BF16, Q8_0, Q4_0). The data is converted immediately. */
pt_status pt_gguf_add_tensor(pt_gguf_writer *w, const char *name, pt_dtype dtype, const int64_t *shape, int n_dims,
                             const float *data);
/* Writes the file atomically (GGUF v3, alignment 32). */
pt_status pt_gguf_writer_write(pt_gguf_writer *w, const char *path);

#endif
