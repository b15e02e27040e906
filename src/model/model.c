/* Model lifetime and the weight conversions shared by both loaders. */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "model/storage.h"
#include "util/file.h"

void *pt_model_alloc(pt_model *m, size_t bytes) {
    struct pt_model_storage *s = m->storage;
    if (s->n_owned == s->cap_owned) {
        int cap = s->cap_owned ? 2 * s->cap_owned : 64;
        void **n = realloc(s->owned, sizeof *n * cap);
        if (!n) return NULL;
        s->owned = n;
        s->cap_owned = cap;
    }
    /* 64-byte alignment keeps the SIMD kernels and BLAS on their fast paths */
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) return NULL;
    s->owned[s->n_owned++] = p;
    m->converted_bytes += bytes;
    return p;
}

static const char *shape_str(const pt_tensor_view *t, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < t->n_dims && k < n; i++) k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (k < n) snprintf(buf + k, n - k, ")");
    return buf;
}

/* The mapped source of a converted or permuted weight is not read again: hand its whole pages
 * back so they stop counting as resident (the mapping is private and read-only, so the pages
 * would simply be re-read from the file if ever touched). */
static void release_pages(const uint8_t *p, size_t n) {
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), a = ((uintptr_t)p + page - 1) / page * page,
              b = ((uintptr_t)p + n) / page * page;
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

pt_status pt_model_weight(pt_model *m, pt_weight *w, const pt_tensor_view *t, const char *label, int rows, int cols,
                          int permute_head_dim) {
    char sb[96];
    bool is_vec = cols == 0;
    bool ok = is_vec ? (t->n_dims == 1 && t->shape[0] == rows)
                     : (t->n_dims == 2 && t->shape[0] == rows && t->shape[1] == cols);
    if (!ok) {
        if (is_vec) return pt_error(PT_ERR_FORMAT, "%s: tensor '%s': shape %s, expected (%d)", label, t->name, shape_str(t, sb, sizeof sb), rows);
        return pt_error(PT_ERR_FORMAT, "%s: tensor '%s': shape %s, expected (%d, %d)", label, t->name, shape_str(t, sb, sizeof sb), rows, cols);
    }
    if (t->dtype == PT_I32 || t->dtype == PT_I64)
        return pt_error(PT_ERR_UNSUPPORTED, "%s: tensor '%s': dtype %s cannot be a weight", label, t->name, pt_dtype_name(t->dtype));
    bool is_float = t->dtype == PT_F32 || t->dtype == PT_F16 || t->dtype == PT_BF16;
    /* norms and biases are read as plain floats by every kernel; a block type there would be
     * "converted" one element per row, i.e. not at all */
    if (is_vec && !is_float)
        return pt_error(PT_ERR_FORMAT, "%s: tensor '%s': a vector must be F32, F16 or BF16, not %s", label, t->name, pt_dtype_name(t->dtype));
    /* block types hold whole blocks per row, each type its own block size (32 for Q8_0, 256 for
     * the K-quants...) */
    if (!is_vec && cols % pt_dtype_block(t->dtype))
        return pt_error(PT_ERR_FORMAT, "%s: tensor '%s': row length %d is not a multiple of the %s block (%d)", label, t->name, cols,
                        pt_dtype_name(t->dtype), pt_dtype_block(t->dtype));
    if (is_vec) cols = 1;
    int64_t numel = (int64_t)rows * cols;
    w->rows = rows;
    w->cols = cols;
    bool quant = pt_dtype_is_quant(t->dtype);
    bool keep = (t->dtype == PT_F32 && ((uintptr_t)t->data % 4) == 0) || (quant && !is_vec);
    size_t row_bytes = pt_dtype_nbytes(keep ? t->dtype : PT_F32, cols);
    if (keep && !permute_head_dim) {
        w->dtype = t->dtype;
        w->data = t->data;
        m->weight_bytes += t->nbytes;
        return PT_OK;
    }
    pt_dtype out_type = keep ? t->dtype : PT_F32;
    uint8_t *dst = pt_model_alloc(m, row_bytes * rows);
    if (!dst) return pt_error(PT_ERR_OOM, "%s: tensor '%s': out of memory converting %lld elements", label, t->name, (long long)numel);
    size_t src_row = pt_dtype_nbytes(t->dtype, cols);
    for (int r = 0; r < rows; r++) {
        int src = r;
        if (permute_head_dim) {
            /* GGUF llama keeps Meta's interleaved pairs (2i, 2i+1); HF order puts pair i at
             * rows i and i + d/2 of each head. */
            int d = permute_head_dim, h = r / d, i = r % d;
            src = h * d + (i < d / 2 ? 2 * i : 2 * (i - d / 2) + 1);
        }
        if (out_type == t->dtype) memcpy(dst + (size_t)r * row_bytes, t->data + (size_t)src * src_row, row_bytes);
        else pt_dtype_to_f32((float *)(dst + (size_t)r * row_bytes), t->data + (size_t)src * src_row, t->dtype, cols);
    }
    w->dtype = out_type;
    w->data = dst;
    m->weight_bytes += row_bytes * rows;
    release_pages(t->data, t->nbytes);
    return PT_OK;
}

pt_status pt_model_vector(pt_model *m, const float **out, const pt_tensor_view *t, const char *label, int n) {
    pt_weight w;
    PT_TRY(pt_model_weight(m, &w, t, label, n, 0, 0));
    *out = w.data;
    return PT_OK;
}

/* GGUF files converted from Llama-3.1 checkpoints carry the frequency scaling as a tensor of
 * per-frequency divisors instead of config keys. */
static pt_status apply_rope_freqs(pt_model *m) {
    const pt_tensor_view *t = pt_gguf_find_tensor(&m->storage->gguf, "rope_freqs.weight");
    if (!t) return PT_OK;
    int half = m->cfg.head_dim / 2;
    if (t->n_dims != 1 || t->shape[0] != half || t->dtype != PT_F32)
        return pt_error(PT_ERR_FORMAT, "%s: tensor 'rope_freqs.weight': expected F32 (%d)", m->path, half);
    for (int i = 0; i < half; i++) {
        float d;
        memcpy(&d, t->data + 4 * i, 4);
        if (!(d > 0)) return pt_error(PT_ERR_FORMAT, "%s: tensor 'rope_freqs.weight'[%d] = %g must be positive", m->path, i, d);
        m->inv_freq[i] /= d;
    }
    return PT_OK;
}

pt_status pt_model_load(pt_model **out, const char *path) {
    *out = NULL;
    pt_model *m = calloc(1, sizeof *m);
    if (!m || !(m->storage = calloc(1, sizeof *m->storage))) {
        free(m);
        return pt_error(PT_ERR_OOM, "out of memory");
    }
    m->path = strdup(path);
    pt_status rc;
    if (pt_dir_exists(path)) rc = pt_model_load_hf(m, path);
    else if (pt_file_exists(path)) {
        FILE *f = fopen(path, "rb");
        char magic[4] = {0};
        size_t got = f ? fread(magic, 1, 4, f) : 0;
        if (f) fclose(f);
        if (got == 4 && !memcmp(magic, "GGUF", 4)) rc = pt_model_load_gguf(m, path);
        else rc = pt_error(PT_ERR_FORMAT, "%s: not a GGUF file (a Hugging Face checkpoint is given as its directory)", path);
    } else rc = pt_error(PT_ERR_IO, "%s: no such file or directory", path);
    if (!rc) {
        m->inv_freq = pt_model_alloc(m, sizeof(double) * (m->cfg.head_dim / 2));
        if (!m->inv_freq) rc = pt_error(PT_ERR_OOM, "out of memory");
        else {
            m->converted_bytes -= sizeof(double) * (m->cfg.head_dim / 2);
            pt_rope_inv_freq(m->inv_freq, &m->cfg);
            if (m->from_gguf) rc = apply_rope_freqs(m);
        }
    }
    if (rc) { pt_model_free(m); return rc; }
    *out = m;
    return PT_OK;
}

void pt_model_free(pt_model *m) {
    if (!m) return;
    struct pt_model_storage *s = m->storage;
    if (s) {
        for (int i = 0; i < s->n_shards; i++) pt_safetensors_close(&s->shards[i]);
        free(s->shards);
        if (s->has_gguf) pt_gguf_close(&s->gguf);
        for (int i = 0; i < s->n_owned; i++) free(s->owned[i]);
        free(s->owned);
        free(s);
    }
    pt_tokenizer_free(m->tok);
    free(m->chat_source);
    free(m->layers);
    free(m->path);
    free(m);
}

size_t pt_model_n_params(const pt_model *m) {
    const pt_config *c = &m->cfg;
    size_t D = c->dim, q = (size_t)c->n_heads * c->head_dim, kv = (size_t)c->n_kv_heads * c->head_dim;
    size_t per_layer = 2 * D + D * q + 2 * D * kv + q * D + 3 * D * c->ffn_dim + (c->qkv_bias ? q + 2 * kv : 0);
    return (size_t)c->n_layers * per_layer + D + (size_t)c->vocab_size * D * (c->tied_embeddings ? 1 : 2);
}
