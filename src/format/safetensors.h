/* safetensors: a u64 header length, a JSON header, raw row-major little-endian data.
 * The reader validates every offset, shape and dtype against the file before handing out
 * views into the mapping; the writer produces files PyTorch / PEFT read back. */
#ifndef PT_FORMAT_SAFETENSORS_H
#define PT_FORMAT_SAFETENSORS_H

#include "format/tensor.h"
#include "util/file.h"

typedef struct {
    pt_mapped_file file;    /* unused (zero) when parsed from a caller's buffer */
    const char *label;      /* file path used in messages */
    pt_tensor_view *tensors;
    int n_tensors;
    char **names;           /* owned storage behind tensors[i].name */
} pt_safetensors;

pt_status pt_safetensors_open(pt_safetensors *st, const char *path);
/* Parses an in-memory image (the fuzz target's entry point); `label` names it in messages. */
pt_status pt_safetensors_parse(pt_safetensors *st, const uint8_t *data, size_t size, const char *label);
void pt_safetensors_close(pt_safetensors *st);
const pt_tensor_view *pt_safetensors_find(const pt_safetensors *st, const char *name);

/* One tensor to write: float32 data converted to `dtype` (F32, F16 or BF16) on the way out. */
typedef struct {
    const char *name;
    pt_dtype dtype;
    int n_dims;
    int64_t shape[PT_MAX_DIMS];
    const float *data;
} pt_safetensors_entry;

/* Writes atomically. `metadata` may be NULL or a flat list of key/value string pairs ending
 * with NULL. */
pt_status pt_safetensors_write(const char *path, const pt_safetensors_entry *entries, int n,
                               const char *const *metadata);

#endif
