/* GGUF reader (bounds-checked, zero-copy tensor views) and writer. */
#include "format/gguf.h"

#include <math.h>
#include <string.h>

#define MAX_DIMS_GGUF 4
#define MAX_ALIGNMENT (1u << 16)

typedef struct {
    const uint8_t *p, *end;
    const char *label;
} reader;

static const uint64_t type_size[PT_GGUF_NTYPES] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

static pt_status need(reader *r, uint64_t n, const char *what) {
    if ((uint64_t)(r->end - r->p) < n)
        return pt_error(PT_ERR_FORMAT, "%s: truncated: %s needs %llu bytes, %llu left", r->label, what,
                        (unsigned long long)n, (unsigned long long)(r->end - r->p));
    return PT_OK;
}

static pt_status rd(reader *r, void *dst, uint64_t n, const char *what) {
    PT_TRY(need(r, n, what));
    memcpy(dst, r->p, n);
    r->p += n;
    return PT_OK;
}

static pt_status rd_str(reader *r, pt_gguf_str *s, const char *what) {
    PT_TRY(rd(r, &s->len, 8, what));
    PT_TRY(need(r, s->len, what));
    s->ptr = (const char *)r->p;
    r->p += s->len;
    return PT_OK;
}

static pt_status read_value(reader *r, pt_gguf_kv *kv, const char *key) {
    switch (kv->type) {
    case PT_GGUF_U8: case PT_GGUF_U16: case PT_GGUF_U32: case PT_GGUF_U64: case PT_GGUF_BOOL: {
        uint64_t v = 0;
        PT_TRY(rd(r, &v, type_size[kv->type], key));
        kv->v.u = v;
        return PT_OK;
    }
    case PT_GGUF_I8: { int8_t v; PT_TRY(rd(r, &v, 1, key)); kv->v.i = v; return PT_OK; }
    case PT_GGUF_I16: { int16_t v; PT_TRY(rd(r, &v, 2, key)); kv->v.i = v; return PT_OK; }
    case PT_GGUF_I32: { int32_t v; PT_TRY(rd(r, &v, 4, key)); kv->v.i = v; return PT_OK; }
    case PT_GGUF_I64: { int64_t v; PT_TRY(rd(r, &v, 8, key)); kv->v.i = v; return PT_OK; }
    case PT_GGUF_F32: { float v; PT_TRY(rd(r, &v, 4, key)); kv->v.f = v; return PT_OK; }
    case PT_GGUF_F64: { double v; PT_TRY(rd(r, &v, 8, key)); kv->v.f = v; return PT_OK; }
    case PT_GGUF_STRING: return rd_str(r, &kv->v.s, key);
    case PT_GGUF_ARRAY: {
        PT_TRY(rd(r, &kv->arr_type, 4, key));
        PT_TRY(rd(r, &kv->arr_n, 8, key));
        if (kv->arr_type >= PT_GGUF_NTYPES || kv->arr_type == PT_GGUF_ARRAY)
            return pt_error(PT_ERR_FORMAT, "%s: key '%s': unsupported array element type %u", r->label, key, kv->arr_type);
        kv->arr_data = r->p;
        if (kv->arr_type == PT_GGUF_STRING) {
            /* each string needs at least its 8-byte length: bound the count before allocating */
            if (kv->arr_n > (uint64_t)(r->end - r->p) / 8)
                return pt_error(PT_ERR_FORMAT, "%s: key '%s': array of %llu strings cannot fit in the file", r->label, key,
                                (unsigned long long)kv->arr_n);
            kv->arr_str = malloc(sizeof *kv->arr_str * (kv->arr_n ? kv->arr_n : 1));
            if (!kv->arr_str) return pt_error(PT_ERR_OOM, "%s: out of memory", r->label);
            for (uint64_t i = 0; i < kv->arr_n; i++) PT_TRY(rd_str(r, &kv->arr_str[i], key));
        } else {
            uint64_t es = type_size[kv->arr_type];
            if (kv->arr_n > (uint64_t)(r->end - r->p) / es)
                return pt_error(PT_ERR_FORMAT, "%s: key '%s': array of %llu elements runs past the end of the file", r->label,
                                key, (unsigned long long)kv->arr_n);
            r->p += kv->arr_n * es;
        }
        return PT_OK;
    }
    default:
        return pt_error(PT_ERR_FORMAT, "%s: key '%s': unknown value type %u", r->label, key, kv->type);
    }
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const pt_tensor_view *)a)->name, ((const pt_tensor_view *)b)->name);
}
static int cmp_key(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static int cmp_data(const void *a, const void *b) {
    const pt_tensor_view *x = a, *y = b;
    return x->data < y->data ? -1 : x->data > y->data;
}

/* A repeated key or tensor name would let the first (or last) one win unnoticed, and tensors
 * sharing bytes alias each other: the file is refused instead. Sorted copies keep this
 * O(n log n) for files with many tensors. */
static pt_status check_unique(const pt_gguf *g) {
    size_t nk = g->n_kv, nt = g->n_tensors;
    char **keys = malloc(sizeof *keys * (nk ? nk : 1));
    pt_tensor_view *ts = malloc(sizeof *ts * (nt ? nt : 1));
    if (!keys || !ts) { free(keys); free(ts); return pt_error(PT_ERR_OOM, "%s: out of memory", g->label); }
    pt_status rc = PT_OK;
    for (size_t i = 0; i < nk; i++) keys[i] = g->kv[i].key;
    qsort(keys, nk, sizeof *keys, cmp_key);
    for (size_t i = 1; i < nk && !rc; i++)
        if (!strcmp(keys[i - 1], keys[i])) rc = pt_error(PT_ERR_FORMAT, "%s: metadata key '%s' appears twice", g->label, keys[i]);
    memcpy(ts, g->tensors, sizeof *ts * nt);
    qsort(ts, nt, sizeof *ts, cmp_name);
    for (size_t i = 1; i < nt && !rc; i++)
        if (!strcmp(ts[i - 1].name, ts[i].name)) rc = pt_error(PT_ERR_FORMAT, "%s: tensor '%s' appears twice", g->label, ts[i].name);
    qsort(ts, nt, sizeof *ts, cmp_data);
    for (size_t i = 1; i < nt && !rc; i++)
        if (ts[i - 1].nbytes && ts[i].data < ts[i - 1].data + ts[i - 1].nbytes)
            rc = pt_error(PT_ERR_FORMAT, "%s: the data of tensors '%s' and '%s' overlap", g->label, ts[i - 1].name, ts[i].name);
    free(keys);
    free(ts);
    return rc;
}

pt_status pt_gguf_parse(pt_gguf *g, const uint8_t *data, size_t size, const char *label) {
    g->label = label;
    reader r = {data, data + size, label};
    char magic[4];
    if (size < 4 || memcmp(data, "GGUF", 4) != 0) return pt_error(PT_ERR_FORMAT, "%s: not a GGUF file (bad magic)", label);
    PT_TRY(rd(&r, magic, 4, "magic"));
    PT_TRY(rd(&r, &g->version, 4, "version"));
    if (g->version != 2 && g->version != 3)
        return pt_error(PT_ERR_UNSUPPORTED, "%s: GGUF version %u (supported: 2, 3)", label, g->version);
    uint64_t n_tensors, n_kv;
    PT_TRY(rd(&r, &n_tensors, 8, "tensor count"));
    PT_TRY(rd(&r, &n_kv, 8, "metadata count"));
    /* a key needs >= 12 bytes, a tensor entry >= 24: bound the counts by the file size */
    if (n_kv > size / 12 || n_tensors > size / 24)
        return pt_error(PT_ERR_FORMAT, "%s: header claims %llu keys and %llu tensors, more than the file can hold", label,
                        (unsigned long long)n_kv, (unsigned long long)n_tensors);
    g->kv = calloc(n_kv ? n_kv : 1, sizeof *g->kv);
    if (!g->kv) return pt_error(PT_ERR_OOM, "%s: out of memory", label);
    for (uint64_t i = 0; i < n_kv; i++) {
        pt_gguf_kv *kv = &g->kv[i];
        pt_gguf_str k;
        PT_TRY(rd_str(&r, &k, "metadata key"));
        kv->key = strndup(k.ptr, k.len);
        if (!kv->key) return pt_error(PT_ERR_OOM, "%s: out of memory", label);
        g->n_kv = i + 1;
        PT_TRY(rd(&r, &kv->type, 4, kv->key));
        PT_TRY(read_value(&r, kv, kv->key));
    }
    g->alignment = 32;
    const pt_gguf_kv *al = pt_gguf_find(g, "general.alignment");
    if (al) {
        if (al->type != PT_GGUF_U32 || al->v.u == 0 || al->v.u > MAX_ALIGNMENT || (al->v.u & (al->v.u - 1)))
            return pt_error(PT_ERR_FORMAT, "%s: general.alignment must be a power of two up to %u", label, MAX_ALIGNMENT);
        g->alignment = al->v.u;
    }
    g->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *g->tensors);
    g->names = calloc(n_tensors ? n_tensors : 1, sizeof *g->names);
    uint64_t *offsets = calloc(n_tensors ? n_tensors : 1, sizeof *offsets);
    if (!g->tensors || !g->names || !offsets) { free(offsets); return pt_error(PT_ERR_OOM, "%s: out of memory", label); }
    pt_status rc = PT_OK;
    for (uint64_t i = 0; i < n_tensors && !rc; i++) {
        pt_tensor_view *t = &g->tensors[i];
        pt_gguf_str nm;
        uint32_t nd, gtype;
        if ((rc = rd_str(&r, &nm, "tensor name"))) break;
        g->names[i] = strndup(nm.ptr, nm.len);
        if (!g->names[i]) { rc = pt_error(PT_ERR_OOM, "%s: out of memory", label); break; }
        t->name = g->names[i];
        g->n_tensors = i + 1;
        if ((rc = rd(&r, &nd, 4, t->name))) break;
        if (nd == 0 || nd > MAX_DIMS_GGUF) { rc = pt_error(PT_ERR_FORMAT, "%s: tensor '%s': %u dimensions (1..4 allowed)", label, t->name, nd); break; }
        uint64_t ne[MAX_DIMS_GGUF];
        if ((rc = rd(&r, ne, 8ull * nd, t->name))) break;
        t->n_dims = (int)nd;
        for (uint32_t d = 0; d < nd; d++) {
            if (ne[d] > (1ull << 40)) { rc = pt_error(PT_ERR_FORMAT, "%s: tensor '%s': dimension %llu is absurd", label, t->name, (unsigned long long)ne[d]); break; }
            t->shape[nd - 1 - d] = (int64_t)ne[d];
        }
        if (rc) break;
        if ((rc = rd(&r, &gtype, 4, t->name))) break;
        if (!pt_dtype_from_ggml(gtype, &t->dtype)) {
            rc = pt_error(PT_ERR_UNSUPPORTED, "%s: tensor '%s': ggml type %u (%s) not supported (supported: %s)", label, t->name,
                          gtype, pt_dtype_ggml_name(gtype), pt_dtype_ggml_supported());
            break;
        }
        if ((rc = rd(&r, &offsets[i], 8, t->name))) break;
        int64_t numel = pt_shape_numel(t->shape, t->n_dims);
        if (numel < 0) { rc = pt_error(PT_ERR_FORMAT, "%s: tensor '%s': shape overflows", label, t->name); break; }
        if (ne[0] % (uint64_t)pt_dtype_block(t->dtype)) {
            rc = pt_error(PT_ERR_FORMAT, "%s: tensor '%s': row length %llu is not a multiple of the %s block (%d)", label, t->name,
                          (unsigned long long)ne[0], pt_dtype_name(t->dtype), pt_dtype_block(t->dtype));
            break;
        }
        t->nbytes = pt_dtype_nbytes(t->dtype, numel);
    }
    if (!rc) {
        size_t header_end = (size_t)(r.p - data);
        size_t data_start = (header_end + g->alignment - 1) / g->alignment * g->alignment;
        for (uint64_t i = 0; i < g->n_tensors && !rc; i++) {
            pt_tensor_view *t = &g->tensors[i];
            if (offsets[i] % g->alignment)
                rc = pt_error(PT_ERR_FORMAT, "%s: tensor '%s': offset %llu is not aligned to %llu", label, t->name,
                              (unsigned long long)offsets[i], (unsigned long long)g->alignment);
            else if (data_start > size || offsets[i] > size - data_start || t->nbytes > size - data_start - offsets[i])
                rc = pt_error(PT_ERR_FORMAT, "%s: tensor '%s': %s data of %zu bytes at offset %llu lie outside the file (%zu bytes): truncated?",
                              label, t->name, pt_dtype_name(t->dtype), t->nbytes, (unsigned long long)offsets[i], size);
            else
                t->data = data + data_start + offsets[i];
        }
    }
    free(offsets);
    if (!rc) rc = check_unique(g);
    return rc;
}

pt_status pt_gguf_open(pt_gguf *g, const char *path) {
    memset(g, 0, sizeof *g);
    PT_TRY(pt_file_map(&g->file, path));
    pt_status rc = pt_gguf_parse(g, g->file.data, g->file.size, g->file.path);
    if (rc) pt_gguf_close(g);
    return rc;
}

void pt_gguf_close(pt_gguf *g) {
    for (uint64_t i = 0; i < g->n_kv; i++) { free(g->kv[i].key); free(g->kv[i].arr_str); }
    free(g->kv);
    for (uint64_t i = 0; i < g->n_tensors; i++) free(g->names[i]);
    free(g->names);
    free(g->tensors);
    pt_file_unmap(&g->file);
    memset(g, 0, sizeof *g);
}

const pt_gguf_kv *pt_gguf_find(const pt_gguf *g, const char *key) {
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (!strcmp(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

const pt_tensor_view *pt_gguf_find_tensor(const pt_gguf *g, const char *name) {
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (!strcmp(g->tensors[i].name, name)) return &g->tensors[i];
    return NULL;
}

static pt_status missing(const pt_gguf *g, const char *key, bool required) {
    return required ? pt_error(PT_ERR_FORMAT, "%s: missing metadata key '%s'", g->label, key) : PT_OK;
}

pt_status pt_gguf_get_int(const pt_gguf *g, const char *key, int64_t *out, bool required) {
    const pt_gguf_kv *kv = pt_gguf_find(g, key);
    if (!kv) return missing(g, key, required);
    switch (kv->type) {
    case PT_GGUF_U8: case PT_GGUF_U16: case PT_GGUF_U32: case PT_GGUF_U64:
        if (kv->v.u > INT64_MAX) break;
        *out = (int64_t)kv->v.u;
        return PT_OK;
    case PT_GGUF_I8: case PT_GGUF_I16: case PT_GGUF_I32: case PT_GGUF_I64: *out = kv->v.i; return PT_OK;
    }
    return pt_error(PT_ERR_FORMAT, "%s: metadata key '%s' is not an integer (type %u)", g->label, key, kv->type);
}

pt_status pt_gguf_get_float(const pt_gguf *g, const char *key, double *out, bool required) {
    const pt_gguf_kv *kv = pt_gguf_find(g, key);
    if (!kv) return missing(g, key, required);
    if (kv->type == PT_GGUF_F32 || kv->type == PT_GGUF_F64) { *out = kv->v.f; return PT_OK; }
    int64_t i;
    if (pt_gguf_get_int(g, key, &i, true) == PT_OK) { *out = (double)i; return PT_OK; }
    return pt_error(PT_ERR_FORMAT, "%s: metadata key '%s' is not a number", g->label, key);
}

pt_status pt_gguf_get_bool(const pt_gguf *g, const char *key, bool *out, bool required) {
    const pt_gguf_kv *kv = pt_gguf_find(g, key);
    if (!kv) return missing(g, key, required);
    if (kv->type != PT_GGUF_BOOL) return pt_error(PT_ERR_FORMAT, "%s: metadata key '%s' is not a bool", g->label, key);
    *out = kv->v.u != 0;
    return PT_OK;
}

pt_status pt_gguf_get_string(const pt_gguf *g, const char *key, char **out, bool required) {
    const pt_gguf_kv *kv = pt_gguf_find(g, key);
    *out = NULL;
    if (!kv) return missing(g, key, required);
    if (kv->type != PT_GGUF_STRING) return pt_error(PT_ERR_FORMAT, "%s: metadata key '%s' is not a string", g->label, key);
    *out = strndup(kv->v.s.ptr, kv->v.s.len);
    return *out ? PT_OK : pt_error(PT_ERR_OOM, "out of memory");
}

double pt_gguf_arr_num(const pt_gguf_kv *kv, uint64_t i) {
    const uint8_t *p = kv->arr_data + i * type_size[kv->arr_type];
    switch (kv->arr_type) {
    case PT_GGUF_U8: case PT_GGUF_BOOL: return *p;
    case PT_GGUF_I8: return (int8_t)*p;
    case PT_GGUF_U16: { uint16_t v; memcpy(&v, p, 2); return v; }
    case PT_GGUF_I16: { int16_t v; memcpy(&v, p, 2); return v; }
    case PT_GGUF_U32: { uint32_t v; memcpy(&v, p, 4); return v; }
    case PT_GGUF_I32: { int32_t v; memcpy(&v, p, 4); return v; }
    case PT_GGUF_U64: { uint64_t v; memcpy(&v, p, 8); return (double)v; }
    case PT_GGUF_I64: { int64_t v; memcpy(&v, p, 8); return (double)v; }
    case PT_GGUF_F32: { float v; memcpy(&v, p, 4); return v; }
    case PT_GGUF_F64: { double v; memcpy(&v, p, 8); return v; }
    }
    return 0;
}

/* ---- writer: builds the header in a growing buffer, tensors in another ---------------- */

typedef struct { uint8_t *p; size_t len, cap; } buf;

static void put(buf *b, const void *src, size_t n) {
    if (b->len + n > b->cap) {
        size_t c = b->cap ? b->cap : 4096;
        while (c < b->len + n) c *= 2;
        uint8_t *np = realloc(b->p, c);
        PT_ASSERT(np);
        b->p = np;
        b->cap = c;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}
static void put_u32(buf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(buf *b, uint64_t v) { put(b, &v, 8); }
static void put_str(buf *b, const char *s) { put_u64(b, strlen(s)); put(b, s, strlen(s)); }

typedef struct { char *name; pt_dtype dtype; int n_dims; int64_t shape[4]; uint8_t *data; size_t nbytes; } wtensor;

struct pt_gguf_writer {
    buf kv;
    uint64_t n_kv;
    wtensor *t;
    size_t n_t, cap_t;
};

pt_gguf_writer *pt_gguf_writer_new(void) { return calloc(1, sizeof(pt_gguf_writer)); }

void pt_gguf_writer_free(pt_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_t; i++) { free(w->t[i].name); free(w->t[i].data); }
    free(w->t);
    free(w->kv.p);
    free(w);
}

static void key(pt_gguf_writer *w, const char *k, uint32_t type) { put_str(&w->kv, k); put_u32(&w->kv, type); w->n_kv++; }
void pt_gguf_set_u32(pt_gguf_writer *w, const char *k, uint32_t v) { key(w, k, PT_GGUF_U32); put_u32(&w->kv, v); }
void pt_gguf_set_f32(pt_gguf_writer *w, const char *k, float v) { key(w, k, PT_GGUF_F32); put(&w->kv, &v, 4); }
void pt_gguf_set_bool(pt_gguf_writer *w, const char *k, bool v) { uint8_t b = v; key(w, k, PT_GGUF_BOOL); put(&w->kv, &b, 1); }
void pt_gguf_set_str(pt_gguf_writer *w, const char *k, const char *v) { key(w, k, PT_GGUF_STRING); put_str(&w->kv, v); }

void pt_gguf_set_arr_str(pt_gguf_writer *w, const char *k, const char *const *v, uint64_t n) {
    key(w, k, PT_GGUF_ARRAY);
    put_u32(&w->kv, PT_GGUF_STRING);
    put_u64(&w->kv, n);
    for (uint64_t i = 0; i < n; i++) put_str(&w->kv, v[i]);
}
void pt_gguf_set_arr_f32(pt_gguf_writer *w, const char *k, const float *v, uint64_t n) {
    key(w, k, PT_GGUF_ARRAY);
    put_u32(&w->kv, PT_GGUF_F32);
    put_u64(&w->kv, n);
    put(&w->kv, v, n * 4);
}
void pt_gguf_set_arr_i32(pt_gguf_writer *w, const char *k, const int32_t *v, uint64_t n) {
    key(w, k, PT_GGUF_ARRAY);
    put_u32(&w->kv, PT_GGUF_I32);
    put_u64(&w->kv, n);
    put(&w->kv, v, n * 4);
}

pt_status pt_gguf_add_tensor(pt_gguf_writer *w, const char *name, pt_dtype dtype, const int64_t *shape, int n_dims,
                             const float *data) {
    if (n_dims < 1 || n_dims > 4) return pt_error(PT_ERR_ARG, "tensor '%s': %d dimensions", name, n_dims);
    int64_t numel = pt_shape_numel(shape, n_dims);
    if ((dtype == PT_Q8_0 || dtype == PT_Q4_0) && shape[n_dims - 1] % pt_dtype_block(dtype))
        return pt_error(PT_ERR_ARG, "tensor '%s': row length %lld is not a multiple of the %s block (%d)", name,
                        (long long)shape[n_dims - 1], pt_dtype_name(dtype), pt_dtype_block(dtype));
    if (dtype == PT_Q8_0 || dtype == PT_Q4_0)
        for (int64_t i = 0; i < numel; i++)
            if (!isfinite(data[i])) /* a block scale cannot carry it: the value would become a number */
                return pt_error(PT_ERR_NUMERIC, "tensor '%s': element %lld is %g: cannot quantise to %s", name, (long long)i, data[i],
                                pt_dtype_name(dtype));
    if (w->n_t == w->cap_t) {
        w->cap_t = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *nt = realloc(w->t, w->cap_t * sizeof *nt);
        if (!nt) return pt_error(PT_ERR_OOM, "out of memory");
        w->t = nt;
    }
    wtensor *t = &w->t[w->n_t];
    t->nbytes = pt_dtype_nbytes(dtype, numel);
    t->data = malloc(t->nbytes ? t->nbytes : 1);
    if (!t->data) return pt_error(PT_ERR_OOM, "tensor '%s': out of memory", name);
    t->name = strdup(name);
    t->dtype = dtype;
    t->n_dims = n_dims;
    memcpy(t->shape, shape, sizeof(int64_t) * n_dims);
    switch (dtype) {
    case PT_F32: memcpy(t->data, data, t->nbytes); break;
    case PT_F16: for (int64_t i = 0; i < numel; i++) ((uint16_t *)t->data)[i] = pt_f32_to_f16(data[i]); break;
    case PT_BF16: for (int64_t i = 0; i < numel; i++) ((uint16_t *)t->data)[i] = pt_f32_to_bf16(data[i]); break;
    case PT_Q8_0: pt_quantize_q8_0(t->data, data, numel); break;
    case PT_Q4_0: pt_quantize_q4_0(t->data, data, numel); break;
    default: free(t->data); free(t->name); return pt_error(PT_ERR_ARG, "tensor '%s': cannot write %s", name, pt_dtype_name(dtype));
    }
    w->n_t++;
    return PT_OK;
}

pt_status pt_gguf_writer_write(pt_gguf_writer *w, const char *path) {
    static const uint32_t ggml_type[] = {[PT_F32] = 0, [PT_F16] = 1, [PT_Q4_0] = 2, [PT_Q8_0] = 8, [PT_BF16] = 30};
    const size_t align = 32;
    buf b = {0};
    put(&b, "GGUF", 4);
    put_u32(&b, 3);
    put_u64(&b, w->n_t);
    put_u64(&b, w->n_kv);
    put(&b, w->kv.p, w->kv.len);
    size_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        wtensor *t = &w->t[i];
        put_str(&b, t->name);
        put_u32(&b, (uint32_t)t->n_dims);
        for (int d = t->n_dims - 1; d >= 0; d--) put_u64(&b, (uint64_t)t->shape[d]);
        put_u32(&b, ggml_type[t->dtype]);
        put_u64(&b, off);
        off += (t->nbytes + align - 1) / align * align;
    }
    static const uint8_t zeros[32];
    put(&b, zeros, (align - b.len % align) % align);
    for (size_t i = 0; i < w->n_t; i++) {
        put(&b, w->t[i].data, w->t[i].nbytes);
        put(&b, zeros, (align - w->t[i].nbytes % align) % align);
    }
    pt_status rc = pt_file_write_atomic(path, b.p, b.len);
    free(b.p);
    return rc;
}
