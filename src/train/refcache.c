/* Reference log-prob cache files: "PTREFLP1", u64 key, u64 count, count doubles. */
#include "train/refcache.h"

#include <stdlib.h>
#include <string.h>

#include "format/tensor.h"
#include "util/file.h"

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t fnv_int(uint64_t h, long v) { return fnv(h, &v, sizeof v); }

/* 64 evenly spaced 8-byte samples of a weight, plus its type and shape. */
static uint64_t weight_digest(uint64_t h, const pt_weight *w) {
    h = fnv_int(fnv_int(fnv_int(h, w->dtype), w->rows), w->cols);
    size_t bytes = pt_dtype_nbytes(w->dtype, (int64_t)w->rows * w->cols);
    if (bytes < 8) return h;
    for (int i = 0; i < 64; i++) h = fnv(h, (const uint8_t *)w->data + (bytes - 8) / 63 * i, 8);
    return h;
}

uint64_t pt_model_fingerprint(const pt_model *m) {
    const pt_config *c = &m->cfg;
    uint64_t h = 0xcbf29ce484222325ull;
    long ints[] = {c->arch, c->dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->ffn_dim, c->vocab_size,
                   c->tied_embeddings, c->qkv_bias};
    h = fnv(h, ints, sizeof ints);
    h = fnv(h, &c->norm_eps, sizeof c->norm_eps);
    h = fnv(h, m->inv_freq, sizeof(double) * c->head_dim / 2);
    h = weight_digest(h, &m->tok_emb);
    h = weight_digest(h, &m->output);
    h = fnv(h, m->out_norm, sizeof(float) * c->dim);
    for (int l = 0; l < c->n_layers; l++) {
        const pt_layer *L = &m->layers[l];
        const pt_weight *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int i = 0; i < 7; i++) h = weight_digest(h, ws[i]);
        h = fnv(h, L->attn_norm, sizeof(float) * c->dim);
        h = fnv(h, L->ffn_norm, sizeof(float) * c->dim);
        if (L->bq) h = fnv(h, L->bq, sizeof(float) * L->wq.rows);
    }
    return h;
}

char *pt_refcache_path(const char *dir, uint64_t key) {
    char name[64];
    snprintf(name, sizeof name, "ref_logps-%016llx.bin", (unsigned long long)key);
    return pt_path_join(dir, name);
}

pt_status pt_refcache_load(const char *path, uint64_t key, long n, double *v, bool *found) {
    *found = false;
    if (!pt_file_exists(path)) return PT_OK;
    char *buf = NULL;
    size_t len = 0;
    PT_TRY(pt_file_read_all(path, &buf, &len));
    uint64_t k = 0, cnt = 0;
    if (len == 24 + sizeof(double) * (size_t)n && !memcmp(buf, "PTREFLP1", 8)) {
        memcpy(&k, buf + 8, 8);
        memcpy(&cnt, buf + 16, 8);
        if (k == key && cnt == (uint64_t)n) {
            memcpy(v, buf + 24, sizeof(double) * n);
            *found = true;
        }
    }
    free(buf);
    return PT_OK;
}

pt_status pt_refcache_save(const char *path, uint64_t key, long n, const double *v) {
    size_t len = 24 + sizeof(double) * (size_t)n;
    char *buf = malloc(len);
    if (!buf) return pt_error(PT_ERR_OOM, "out of memory");
    uint64_t cnt = (uint64_t)n;
    memcpy(buf, "PTREFLP1", 8);
    memcpy(buf + 8, &key, 8);
    memcpy(buf + 16, &cnt, 8);
    memcpy(buf + 24, v, sizeof(double) * n);
    pt_status st = pt_file_write_atomic(path, buf, len);
    free(buf);
    return st;
}
