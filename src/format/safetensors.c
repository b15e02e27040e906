/* safetensors reader (bounds-checked, zero-copy) and writer. */
#include "format/safetensors.h"

#include <jansson.h>
#include <string.h>

#define MAX_HEADER (100u << 20) /* the reference implementation's own limit */

static int parse_dtype(const char *s, pt_dtype *t) {
    if (!strcmp(s, "F32")) *t = PT_F32;
    else if (!strcmp(s, "F16")) *t = PT_F16;
    else if (!strcmp(s, "BF16")) *t = PT_BF16;
    else if (!strcmp(s, "I32")) *t = PT_I32;
    else if (!strcmp(s, "I64")) *t = PT_I64;
    else return 0;
    return 1;
}

static int cmp_begin(const void *a, const void *b) {
    const pt_tensor_view *x = a, *y = b;
    return x->data < y->data ? -1 : x->data > y->data;
}

pt_status pt_safetensors_parse(pt_safetensors *st, const uint8_t *data, size_t size, const char *label) {
    st->label = label;
    if (size < 8) return pt_error(PT_ERR_FORMAT, "%s: file too short for a safetensors header (%zu bytes)", label, size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | data[i];
    if (hlen > MAX_HEADER || hlen > size - 8)
        return pt_error(PT_ERR_FORMAT, "%s: header length %llu exceeds the file (%zu bytes): truncated or not safetensors",
                        label, (unsigned long long)hlen, size);
    json_error_t jerr;
    /* a repeated tensor name would leave one of the two silently unused */
    json_t *root = json_loadb((const char *)data + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return pt_error(PT_ERR_FORMAT, "%s: header is not a JSON object (%s at column %d)", label,
                        root ? "wrong type" : jerr.text, jerr.column);
    }
    const uint8_t *base = data + 8 + hlen;
    size_t data_size = size - 8 - (size_t)hlen;
    size_t cap = json_object_size(root);
    st->tensors = calloc(cap ? cap : 1, sizeof *st->tensors);
    st->names = calloc(cap ? cap : 1, sizeof *st->names);
    if (!st->tensors || !st->names) { json_decref(root); return pt_error(PT_ERR_OOM, "%s: out of memory", label); }
    const char *key;
    json_t *val;
    pt_status rc = PT_OK;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) continue;
        json_t *jd = json_object_get(val, "dtype"), *js = json_object_get(val, "shape"),
               *jo = json_object_get(val, "data_offsets");
        if (!json_is_object(val) || !json_is_string(jd) || !json_is_array(js) || !json_is_array(jo) ||
            json_array_size(jo) != 2) {
            rc = pt_error(PT_ERR_FORMAT, "%s: tensor '%s': entry needs dtype, shape and data_offsets [begin, end]", label, key);
            break;
        }
        pt_tensor_view *t = &st->tensors[st->n_tensors];
        if (!parse_dtype(json_string_value(jd), &t->dtype)) {
            rc = pt_error(PT_ERR_UNSUPPORTED, "%s: tensor '%s': dtype %s not supported (F32, F16, BF16, I32, I64)", label,
                          key, json_string_value(jd));
            break;
        }
        size_t nd = json_array_size(js);
        if (nd > PT_MAX_DIMS) { rc = pt_error(PT_ERR_FORMAT, "%s: tensor '%s': %zu dimensions (max %d)", label, key, nd, PT_MAX_DIMS); break; }
        t->n_dims = (int)nd;
        for (size_t i = 0; i < nd; i++) {
            json_t *d = json_array_get(js, i);
            if (!json_is_integer(d) || json_integer_value(d) < 0) {
                rc = pt_error(PT_ERR_FORMAT, "%s: tensor '%s': shape[%zu] is not a non-negative integer", label, key, i);
                break;
            }
            t->shape[i] = json_integer_value(d);
        }
        if (rc) break;
        json_t *jb = json_array_get(jo, 0), *je = json_array_get(jo, 1);
        if (!json_is_integer(jb) || !json_is_integer(je)) { rc = pt_error(PT_ERR_FORMAT, "%s: tensor '%s': data_offsets must be integers", label, key); break; }
        json_int_t b = json_integer_value(jb), e = json_integer_value(je);
        int64_t numel = pt_shape_numel(t->shape, t->n_dims);
        if (numel < 0) { rc = pt_error(PT_ERR_FORMAT, "%s: tensor '%s': shape overflows", label, key); break; }
        size_t need = pt_dtype_nbytes(t->dtype, numel);
        if (b < 0 || e < b || (uint64_t)e > data_size) {
            rc = pt_error(PT_ERR_FORMAT, "%s: tensor '%s': data_offsets [%lld, %lld] lie outside the data section (%zu bytes): file truncated?",
                          label, key, (long long)b, (long long)e, data_size);
            break;
        }
        if ((size_t)(e - b) != need) {
            rc = pt_error(PT_ERR_FORMAT, "%s: tensor '%s': %lld bytes for %lld elements of %s (expected %zu)", label, key,
                          (long long)(e - b), (long long)numel, pt_dtype_name(t->dtype), need);
            break;
        }
        t->data = base + b;
        t->nbytes = need;
        st->names[st->n_tensors] = strdup(key);
        t->name = st->names[st->n_tensors];
        st->n_tensors++;
    }
    json_decref(root);
    if (rc) return rc;
    /* Overlapping tensors would alias each other's data. */
    pt_tensor_view *sorted = malloc(sizeof *sorted * (st->n_tensors ? st->n_tensors : 1));
    if (!sorted) return pt_error(PT_ERR_OOM, "%s: out of memory", label);
    memcpy(sorted, st->tensors, sizeof *sorted * st->n_tensors);
    qsort(sorted, st->n_tensors, sizeof *sorted, cmp_begin);
    for (int i = 1; i < st->n_tensors; i++)
        if (sorted[i - 1].nbytes && sorted[i].data < sorted[i - 1].data + sorted[i - 1].nbytes) {
            rc = pt_error(PT_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap", label, sorted[i - 1].name, sorted[i].name);
            break;
        }
    free(sorted);
    return rc;
}

pt_status pt_safetensors_open(pt_safetensors *st, const char *path) {
    memset(st, 0, sizeof *st);
    PT_TRY(pt_file_map(&st->file, path));
    pt_status rc = pt_safetensors_parse(st, st->file.data, st->file.size, st->file.path);
    if (rc) pt_safetensors_close(st);
    return rc;
}

void pt_safetensors_close(pt_safetensors *st) {
    for (int i = 0; i < st->n_tensors; i++) free(st->names[i]);
    free(st->names);
    free(st->tensors);
    pt_file_unmap(&st->file);
    memset(st, 0, sizeof *st);
}

const pt_tensor_view *pt_safetensors_find(const pt_safetensors *st, const char *name) {
    for (int i = 0; i < st->n_tensors; i++)
        if (!strcmp(st->tensors[i].name, name)) return &st->tensors[i];
    return NULL;
}

pt_status pt_safetensors_write(const char *path, const pt_safetensors_entry *entries, int n,
                               const char *const *metadata) {
    json_t *hdr = json_object();
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        const pt_safetensors_entry *e = &entries[i];
        if (e->dtype != PT_F32 && e->dtype != PT_F16 && e->dtype != PT_BF16) {
            json_decref(hdr);
            return pt_error(PT_ERR_ARG, "%s: tensor '%s': can only write F32, F16 or BF16", path, e->name);
        }
        json_t *shape = json_array();
        for (int d = 0; d < e->n_dims; d++) json_array_append_new(shape, json_integer(e->shape[d]));
        size_t nb = pt_dtype_nbytes(e->dtype, pt_shape_numel(e->shape, e->n_dims));
        json_object_set_new(hdr, e->name, json_pack("{s:s,s:o,s:[I,I]}", "dtype", pt_dtype_name(e->dtype), "shape", shape,
                                                    "data_offsets", (json_int_t)off, (json_int_t)(off + nb)));
        off += nb;
    }
    if (metadata) {
        json_t *md = json_object();
        for (int i = 0; metadata[i] && metadata[i + 1]; i += 2) json_object_set_new(md, metadata[i], json_string(metadata[i + 1]));
        json_object_set_new(hdr, "__metadata__", md);
    }
    char *hs = json_dumps(hdr, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(hdr);
    if (!hs) return pt_error(PT_ERR_OOM, "%s: out of memory", path);
    size_t hl = strlen(hs), padded = (hl + 7) / 8 * 8;
    uint8_t *buf = malloc(8 + padded + off);
    if (!buf) { free(hs); return pt_error(PT_ERR_OOM, "%s: out of memory (%zu bytes)", path, off); }
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    memcpy(buf + 8, hs, hl);
    memset(buf + 8 + hl, ' ', padded - hl);
    free(hs);
    uint8_t *p = buf + 8 + padded;
    for (int i = 0; i < n; i++) {
        const pt_safetensors_entry *e = &entries[i];
        int64_t numel = pt_shape_numel(e->shape, e->n_dims);
        if (e->dtype == PT_F32) memcpy(p, e->data, (size_t)numel * 4), p += numel * 4;
        else
            for (int64_t j = 0; j < numel; j++, p += 2) {
                uint16_t h = e->dtype == PT_F16 ? pt_f32_to_f16(e->data[j]) : pt_f32_to_bf16(e->data[j]);
                memcpy(p, &h, 2);
            }
    }
    pt_status rc = pt_file_write_atomic(path, buf, 8 + padded + off);
    free(buf);
    return rc;
}
