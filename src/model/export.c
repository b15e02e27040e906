/* Writing checkpoints: a loaded model (optionally with a LoRA adapter merged) as GGUF or as
 * a Hugging Face directory. Weights are materialised one tensor at a time in float32. */
#include <jansson.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "format/gguf.h"
#include "format/safetensors.h"
#include "model/adapter.h"
#include "model/arch.h"
#include "model/storage.h"
#include "util/file.h"

typedef struct {
    char hf[128];
    const pt_weight *w;       /* or */
    const float *vec;         /* a vector of n floats */
    int n;
    int layer;
    int target;               /* pt_lora_target or -1 */
    bool is_qk;               /* rows re-interleaved for GGUF llama */
} item;

/* The GGUF architecture name: mistral checkpoints are `llama` files in GGUF. */
static const char *gguf_arch(const pt_config *c) {
    return c->arch == PT_ARCH_QWEN2 ? "qwen2" : c->arch == PT_ARCH_QWEN3 ? "qwen3" : "llama";
}

/* Qwen GGUF files keep Q/K rows in the half-rotation order (llama.cpp's NEOX rope). */
static bool qwen_rope(const pt_config *c) { return c->arch == PT_ARCH_QWEN2 || c->arch == PT_ARCH_QWEN3; }

/* Whether the written checkpoint ties lm_head to the embedding: not when the adapter adapts
 * lm_head, whose merged delta belongs to the output projection alone. */
static bool tied_output(const pt_model *m, const pt_adapter *a) {
    return m->cfg.tied_embeddings && !(a && pt_adapter_pair(a, 0, PT_LT_HEAD));
}

/* Lists every tensor of the model in HF naming. Returns the count (items may be NULL). */
static int list_items(const pt_model *m, const pt_adapter *a, item *it) {
    const pt_config *c = &m->cfg;
    int k = 0;
#define ADD_W(name, weight, lay, tgt, qk) do { if (it) { item *x = &it[k]; memset(x, 0, sizeof *x); snprintf(x->hf, sizeof x->hf, "%s", name); \
        x->w = weight; x->layer = lay; x->target = tgt; x->is_qk = qk; } k++; } while (0)
#define ADD_V(name, v, len) do { if (it) { item *x = &it[k]; memset(x, 0, sizeof *x); snprintf(x->hf, sizeof x->hf, "%s", name); \
        x->vec = v; x->n = len; x->target = -1; } k++; } while (0)
    ADD_W("model.embed_tokens.weight", &m->tok_emb, 0, -1, false);
    ADD_V("model.norm.weight", m->out_norm, c->dim);
    if (!tied_output(m, a)) ADD_W("lm_head.weight", &m->output, 0, PT_LT_HEAD, false);
    char nm[128];
    for (int l = 0; l < c->n_layers; l++) {
        const pt_layer *L = &m->layers[l];
        static const char *mods[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                     "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};
        const pt_weight *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        snprintf(nm, sizeof nm, "model.layers.%d.input_layernorm.weight", l);
        ADD_V(nm, L->attn_norm, c->dim);
        snprintf(nm, sizeof nm, "model.layers.%d.post_attention_layernorm.weight", l);
        ADD_V(nm, L->ffn_norm, c->dim);
        for (int t = 0; t < 7; t++) {
            snprintf(nm, sizeof nm, "model.layers.%d.%s.weight", l, mods[t]);
            ADD_W(nm, ws[t], l, t, t < 2);
        }
        if (L->q_norm) {
            snprintf(nm, sizeof nm, "model.layers.%d.self_attn.q_norm.weight", l);
            ADD_V(nm, L->q_norm, c->head_dim);
            snprintf(nm, sizeof nm, "model.layers.%d.self_attn.k_norm.weight", l);
            ADD_V(nm, L->k_norm, c->head_dim);
        }
        if (c->qkv_bias) {
            snprintf(nm, sizeof nm, "model.layers.%d.self_attn.q_proj.bias", l);
            ADD_V(nm, L->bq, c->n_heads * c->head_dim);
            snprintf(nm, sizeof nm, "model.layers.%d.self_attn.k_proj.bias", l);
            ADD_V(nm, L->bk, c->n_kv_heads * c->head_dim);
            snprintf(nm, sizeof nm, "model.layers.%d.self_attn.v_proj.bias", l);
            ADD_V(nm, L->bv, c->n_kv_heads * c->head_dim);
        }
    }
#undef ADD_W
#undef ADD_V
    return k;
}

/* The item as float32 (rows, cols), adapter merged; malloc'd. */
static float *materialise(const pt_model *m, const pt_adapter *a, const item *x, int *rows, int *cols) {
    if (x->vec) {
        *rows = x->n, *cols = 0;
        float *v = malloc(sizeof(float) * x->n);
        if (v) memcpy(v, x->vec, sizeof(float) * x->n);
        return v;
    }
    *rows = x->w->rows, *cols = x->w->cols;
    float *w = malloc(sizeof(float) * (size_t)*rows * *cols);
    if (!w) return NULL;
    pt_dtype_to_f32(w, x->w->data, x->w->dtype, (int64_t)*rows * *cols);
    const pt_lora_pair *p = a && x->target >= 0 ? pt_adapter_pair(a, x->layer, x->target) : NULL;
    if (p) /* W' = W + scale * B A, accumulated in double per element */
        for (int i = 0; i < *rows; i++)
            for (int j = 0; j < *cols; j++) {
                double s = 0;
                for (int r = 0; r < a->r; r++) s += (double)p->B[(size_t)i * a->r + r] * p->A[(size_t)r * *cols + j];
                w[(size_t)i * *cols + j] += (float)(a->scale * s);
            }
    (void)m;
    return w;
}

static char *str_dup(const pt_gguf_str *s) {
    char *p = malloc(s->len + 1);
    if (p) memcpy(p, s->ptr, s->len), p[s->len] = 0;
    return p;
}

/* Copies one metadata entry of the source GGUF through the writer's typed setters: strings,
 * bools, integers (as u32, which is how llama.cpp's converters write ids and counts), floats,
 * and arrays of strings, floats and integers (i32: token types). */
static pt_status copy_kv(pt_gguf_writer *w, const pt_gguf_kv *kv) {
    switch (kv->type) {
    case PT_GGUF_STRING: {
        char *v = str_dup(&kv->v.s);
        if (!v) return pt_error(PT_ERR_OOM, "out of memory");
        pt_gguf_set_str(w, kv->key, v);
        free(v);
        return PT_OK;
    }
    case PT_GGUF_BOOL: pt_gguf_set_bool(w, kv->key, kv->v.u != 0); return PT_OK;
    case PT_GGUF_U8: case PT_GGUF_U16: case PT_GGUF_U32: case PT_GGUF_U64:
        if (kv->v.u <= UINT32_MAX) pt_gguf_set_u32(w, kv->key, (uint32_t)kv->v.u);
        return PT_OK;
    case PT_GGUF_I8: case PT_GGUF_I16: case PT_GGUF_I32: case PT_GGUF_I64:
        if (kv->v.i >= 0 && kv->v.i <= UINT32_MAX) pt_gguf_set_u32(w, kv->key, (uint32_t)kv->v.i);
        return PT_OK;
    case PT_GGUF_F32: case PT_GGUF_F64: pt_gguf_set_f32(w, kv->key, (float)kv->v.f); return PT_OK;
    case PT_GGUF_ARRAY: break;
    default: return PT_OK;
    }
    uint64_t n = kv->arr_n;
    if (kv->arr_type == PT_GGUF_STRING) {
        char **v = calloc(n ? n : 1, sizeof *v);
        pt_status st = v ? PT_OK : pt_error(PT_ERR_OOM, "out of memory");
        for (uint64_t i = 0; i < n && !st; i++)
            if (!(v[i] = str_dup(&kv->arr_str[i]))) st = pt_error(PT_ERR_OOM, "out of memory");
        if (!st) pt_gguf_set_arr_str(w, kv->key, (const char *const *)v, n);
        for (uint64_t i = 0; v && i < n; i++) free(v[i]);
        free(v);
        return st;
    }
    bool is_float = kv->arr_type == PT_GGUF_F32 || kv->arr_type == PT_GGUF_F64;
    void *v = malloc((n ? n : 1) * 4);
    if (!v) return pt_error(PT_ERR_OOM, "out of memory");
    for (uint64_t i = 0; i < n; i++) {
        double x = pt_gguf_arr_num(kv, i);
        if (is_float) ((float *)v)[i] = (float)x;
        else ((int32_t *)v)[i] = (int32_t)x;
    }
    if (is_float) pt_gguf_set_arr_f32(w, kv->key, v, n);
    else if (kv->arr_type != PT_GGUF_BOOL) pt_gguf_set_arr_i32(w, kv->key, v, n);
    free(v);
    return PT_OK;
}

/* The tokenizer (tokens, scores or merges, token types, special ids, add_bos/add_eos, the
 * pre-tokenizer name) and the general.* description of a GGUF-loaded model, copied verbatim
 * so that the written file tokenizes exactly like its source in llama.cpp and in politune.
 * Keys the export writes itself are left out. */
static pt_status copy_source_metadata(pt_gguf_writer *w, const pt_model *m) {
    if (!m->storage || !m->storage->has_gguf) return PT_OK;
    const pt_gguf *g = &m->storage->gguf;
    static const char *const own[] = {"general.architecture", "general.file_type", "general.quantization_version",
                                      "general.alignment", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                      "tokenizer.chat_template"};
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const pt_gguf_kv *kv = &g->kv[i];
        if (strncmp(kv->key, "tokenizer.", 10) != 0 && strncmp(kv->key, "general.", 8) != 0) continue;
        bool skip = false;
        for (size_t k = 0; k < sizeof own / sizeof own[0]; k++) skip |= !strcmp(kv->key, own[k]);
        if (!skip) PT_TRY(copy_kv(w, kv));
    }
    return PT_OK;
}

pt_status pt_model_save_gguf(const pt_model *m, const pt_adapter *a, const char *path, pt_dtype type) {
    const pt_config *c = &m->cfg;
    const char *arch = gguf_arch(c);
    char key[128];
    pt_gguf_writer *w = pt_gguf_writer_new();
    if (!w) return pt_error(PT_ERR_OOM, "out of memory");
    pt_gguf_set_str(w, "general.architecture", arch);
#define K(s) (snprintf(key, sizeof key, "%s.%s", arch, s), key)
    pt_gguf_set_u32(w, K("block_count"), (uint32_t)c->n_layers);
    pt_gguf_set_u32(w, K("context_length"), (uint32_t)c->max_ctx);
    pt_gguf_set_u32(w, K("embedding_length"), (uint32_t)c->dim);
    pt_gguf_set_u32(w, K("feed_forward_length"), (uint32_t)c->ffn_dim);
    pt_gguf_set_u32(w, K("attention.head_count"), (uint32_t)c->n_heads);
    pt_gguf_set_u32(w, K("attention.head_count_kv"), (uint32_t)c->n_kv_heads);
    pt_gguf_set_u32(w, K("attention.key_length"), (uint32_t)c->head_dim);
    pt_gguf_set_u32(w, K("vocab_size"), (uint32_t)c->vocab_size);
    pt_gguf_set_f32(w, K("attention.layer_norm_rms_epsilon"), c->norm_eps);
    pt_gguf_set_f32(w, K("rope.freq_base"), c->rope_theta);
    pt_gguf_set_u32(w, K("rope.dimension_count"), (uint32_t)c->head_dim);
#undef K
    if (c->bos_id >= 0) pt_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)c->bos_id);
    if (c->eos_id >= 0) pt_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)c->eos_id);
    if (m->chat_source) pt_gguf_set_str(w, "tokenizer.chat_template", m->chat_source);
    pt_status rc = copy_source_metadata(w, m);
    if (!rc && !(m->storage && m->storage->has_gguf) && m->tok)
        /* a Hugging Face source: its tokenizer.json is not converted to GGUF metadata yet */
        rc = pt_error(PT_ERR_UNSUPPORTED, "%s: GGUF export of a Hugging Face checkpoint's tokenizer is not supported; "
                      "write a Hugging Face directory (--format hf) or convert with llama.cpp's convert_hf_to_gguf.py",
                      m->path ? m->path : "model");
    if (!rc && c->rope_llama3) {
        /* llama.cpp's convention: per-frequency divisors relative to the unscaled base */
        int half = c->head_dim / 2;
        float *div = malloc(sizeof(float) * half);
        for (int i = 0; i < half; i++) div[i] = (float)((1.0 / pow(c->rope_theta, 2.0 * i / c->head_dim)) / m->inv_freq[i]);
        int64_t sh[] = {half};
        rc = pt_gguf_add_tensor(w, "rope_freqs.weight", PT_F32, sh, 1, div);
        free(div);
    }
    int n = list_items(m, a, NULL);
    item *items = calloc((size_t)n, sizeof *items);
    list_items(m, a, items);
    for (int i = 0; i < n && !rc; i++) {
        int rows, cols;
        float *data = materialise(m, a, &items[i], &rows, &cols);
        if (!data) { rc = pt_error(PT_ERR_OOM, "out of memory"); break; }
        if (items[i].is_qk && !qwen_rope(c)) {
            /* back to Meta's interleaved rotary order, as GGUF llama files store Q and K */
            float *p = malloc(sizeof(float) * (size_t)rows * cols);
            int d = c->head_dim;
            for (int r = 0; r < rows; r++) {
                int h = r / d, j = r % d, src = h * d + (j % 2 == 0 ? j / 2 : j / 2 + d / 2);
                memcpy(p + (size_t)r * cols, data + (size_t)src * cols, sizeof(float) * cols);
            }
            free(data);
            data = p;
        }
        char gname[160];
        PT_ASSERT(pt_arch_hf_to_gguf(items[i].hf, gname, sizeof gname));
        int64_t shape[2] = {rows, cols};
        pt_dtype t = cols == 0 ? PT_F32 : type;
        if ((t == PT_Q8_0 || t == PT_Q4_0) && cols % 32) t = PT_F16; /* rows that do not fill blocks */
        rc = pt_gguf_add_tensor(w, gname, t, shape, cols ? 2 : 1, data);
        free(data);
    }
    free(items);
    if (!rc) rc = pt_gguf_writer_write(w, path);
    pt_gguf_writer_free(w);
    return rc;
}

/* Rows of a (rows, cols) matrix from the half-rotation order back to Meta's interleaved
 * order per head of `d` rows, as GGUF llama files store Q and K (malloc'd). */
static float *interleave_rows(const float *data, int rows, int cols, int d) {
    float *p = malloc(sizeof(float) * (size_t)rows * cols);
    if (!p) return NULL;
    for (int r = 0; r < rows; r++) {
        int h = r / d, j = r % d, src = h * d + (j % 2 == 0 ? j / 2 : j / 2 + d / 2);
        memcpy(p + (size_t)r * cols, data + (size_t)src * cols, sizeof(float) * cols);
    }
    return p;
}

pt_status pt_adapter_save_gguf(const pt_adapter *a, const pt_model *m, const char *path) {
    const pt_config *c = &m->cfg;
    const char *arch = gguf_arch(c);
    if (a->targets & (1u << PT_LT_HEAD) && c->tied_embeddings)
        return pt_error(PT_ERR_UNSUPPORTED, "%s: the adapter targets lm_head, but the model ties it to the embedding: "
                        "llama.cpp has no output.weight to apply it to", path);
    pt_gguf_writer *w = pt_gguf_writer_new();
    if (!w) return pt_error(PT_ERR_OOM, "out of memory");
    pt_gguf_set_str(w, "general.architecture", arch);
    pt_gguf_set_str(w, "general.type", "adapter");
    pt_gguf_set_str(w, "adapter.type", "lora");
    pt_gguf_set_f32(w, "adapter.lora.alpha", a->scale * (float)a->r);
    pt_status rc = PT_OK;
    bool interleave = !qwen_rope(c);
    for (int l = -1; l < c->n_layers && !rc; l++)
        for (int t = 0; t < PT_LT_COUNT && !rc; t++) {
            if ((l < 0) != (t == PT_LT_HEAD)) continue;
            const pt_lora_pair *p = pt_adapter_pair(a, l < 0 ? 0 : l, (pt_lora_target)t);
            if (!p || !p->A) continue;
            char hf[160], gname[160], key[200];
            if (t == PT_LT_HEAD) snprintf(hf, sizeof hf, "lm_head.weight");
            else {
                static const char *mods[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                             "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};
                snprintf(hf, sizeof hf, "model.layers.%d.%s.weight", l, mods[t]);
            }
            PT_ASSERT(pt_arch_hf_to_gguf(hf, gname, sizeof gname));
            int64_t sa[2] = {a->r, p->in}, sb[2] = {p->out, a->r};
            snprintf(key, sizeof key, "%s.lora_a", gname);
            rc = pt_gguf_add_tensor(w, key, PT_F32, sa, 2, p->A);
            if (rc) break;
            /* B's rows are the output rows of W: reorder them as the base file's Q/K rows are */
            float *B = interleave && (t == PT_LT_Q || t == PT_LT_K) ? interleave_rows(p->B, p->out, a->r, c->head_dim) : NULL;
            if (interleave && (t == PT_LT_Q || t == PT_LT_K) && !B) rc = pt_error(PT_ERR_OOM, "out of memory");
            snprintf(key, sizeof key, "%s.lora_b", gname);
            if (!rc) rc = pt_gguf_add_tensor(w, key, PT_F32, sb, 2, B ? B : p->B);
            free(B);
        }
    if (!rc) rc = pt_gguf_writer_write(w, path);
    pt_gguf_writer_free(w);
    return rc;
}

static pt_status write_config(const pt_model *m, const pt_adapter *a, const char *dir, pt_dtype type) {
    const pt_config *c = &m->cfg;
    static const char *arch_cls[] = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"};
    json_t *o = json_pack("{s:[s],s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:f,s:f,s:b,s:s,s:s}", "architectures", arch_cls[c->arch],
                          "model_type", pt_arch_name(c->arch), "vocab_size", c->vocab_size, "hidden_size", c->dim,
                          "intermediate_size", c->ffn_dim, "num_hidden_layers", c->n_layers, "num_attention_heads", c->n_heads,
                          "num_key_value_heads", c->n_kv_heads, "head_dim", c->head_dim, "max_position_embeddings", c->max_ctx,
                          "rms_norm_eps", (double)c->norm_eps, "rope_theta", (double)c->rope_theta, "tie_word_embeddings",
                          tied_output(m, a), "hidden_act", "silu", "torch_dtype",
                          type == PT_BF16 ? "bfloat16" : type == PT_F16 ? "float16" : "float32");
    if (c->bos_id >= 0) json_object_set_new(o, "bos_token_id", json_integer(c->bos_id));
    if (c->eos_id >= 0) json_object_set_new(o, "eos_token_id", json_integer(c->eos_id));
    if (c->rope_llama3)
        json_object_set_new(o, "rope_scaling", json_pack("{s:s,s:f,s:f,s:f,s:i}", "rope_type", "llama3", "factor", (double)c->rope_factor,
                                                         "low_freq_factor", (double)c->rope_low_freq_factor, "high_freq_factor",
                                                         (double)c->rope_high_freq_factor, "original_max_position_embeddings", c->rope_orig_ctx));
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    char *p = pt_path_join(dir, "config.json");
    pt_status rc = pt_file_write_atomic(p, s, strlen(s));
    free(p);
    free(s);
    return rc;
}

/* The tokenizer and generation files of a Hugging Face source directory, copied as they are
 * so that transformers loads the written directory with the same tokenizer and template. */
static pt_status copy_tokenizer_files(const pt_model *m, const char *dir) {
    if (m->from_gguf || !m->path || !pt_dir_exists(m->path)) return PT_OK;
    static const char *const files[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                        "generation_config.json", "tokenizer.model", "vocab.json", "merges.txt",
                                        "added_tokens.json", "chat_template.jinja"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *src = pt_path_join(m->path, files[i]), *dst = pt_path_join(dir, files[i]);
        pt_status st = src && dst ? PT_OK : pt_error(PT_ERR_OOM, "out of memory");
        if (!st && pt_file_exists(src)) {
            char *data = NULL;
            size_t len = 0;
            st = pt_file_read_all(src, &data, &len);
            if (!st) st = pt_file_write_atomic(dst, data, len);
            free(data);
        }
        free(src);
        free(dst);
        PT_TRY(st);
    }
    return PT_OK;
}

pt_status pt_model_save_hf(const pt_model *m, const pt_adapter *a, const char *dir, pt_dtype type, size_t shard_bytes) {
    if (type != PT_F32 && type != PT_F16 && type != PT_BF16)
        return pt_error(PT_ERR_ARG, "Hugging Face export supports F32, F16 and BF16, not %s", pt_dtype_name(type));
    mkdir(dir, 0755);
    if (!pt_dir_exists(dir)) return pt_error(PT_ERR_IO, "%s: cannot create directory", dir);
    PT_TRY(write_config(m, a, dir, type));
    PT_TRY(copy_tokenizer_files(m, dir));
    int n = list_items(m, a, NULL);
    item *items = calloc((size_t)n, sizeof *items);
    float **data = calloc((size_t)n, sizeof *data);
    pt_safetensors_entry *e = calloc((size_t)n, sizeof *e);
    if (!items || !data || !e) { free(items); free(data); free(e); return pt_error(PT_ERR_OOM, "out of memory"); }
    list_items(m, a, items);
    pt_status rc = PT_OK;
    for (int i = 0; i < n && !rc; i++) {
        int rows, cols;
        data[i] = materialise(m, a, &items[i], &rows, &cols);
        if (!data[i]) { rc = pt_error(PT_ERR_OOM, "out of memory"); break; }
        pt_dtype t = cols ? type : (type == PT_F32 ? PT_F32 : type);
        e[i] = (pt_safetensors_entry){items[i].hf, t, cols ? 2 : 1, {rows, cols}, data[i]};
    }
    /* group consecutive tensors into shards */
    int n_shards = 0, *shard_of = calloc((size_t)n, sizeof(int));
    size_t acc = 0;
    for (int i = 0; i < n && !rc; i++) {
        size_t b = pt_dtype_nbytes(e[i].dtype, pt_shape_numel(e[i].shape, e[i].n_dims));
        if (shard_bytes && acc > 0 && acc + b > shard_bytes) n_shards++, acc = 0;
        shard_of[i] = n_shards;
        acc += b;
    }
    n_shards++;
    json_t *wm = json_object();
    for (int s = 0; s < n_shards && !rc; s++) {
        char name[64];
        if (n_shards == 1) snprintf(name, sizeof name, "model.safetensors");
        else snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", s + 1, n_shards);
        int first = -1, cnt = 0;
        for (int i = 0; i < n; i++)
            if (shard_of[i] == s) {
                if (first < 0) first = i;
                cnt++;
                json_object_set_new(wm, e[i].name, json_string(name));
            }
        char *p = pt_path_join(dir, name);
        const char *md[] = {"format", "pt", NULL};
        rc = pt_safetensors_write(p, e + first, cnt, md);
        free(p);
    }
    if (!rc && n_shards > 1) {
        json_t *idx = json_pack("{s:{},s:O}", "metadata", "weight_map", wm);
        char *s = json_dumps(idx, JSON_INDENT(2) | JSON_SORT_KEYS);
        json_decref(idx);
        char *p = pt_path_join(dir, "model.safetensors.index.json");
        rc = pt_file_write_atomic(p, s, strlen(s));
        free(p);
        free(s);
    }
    json_decref(wm);
    for (int i = 0; i < n; i++) free(data[i]);
    free(data);
    free(e);
    free(items);
    free(shard_of);
    return rc;
}
