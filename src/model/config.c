/* Model configuration from a Hugging Face config.json (legacy keys and the newer
 * `rope_parameters` form) or from GGUF metadata, plus the RoPE inverse frequencies with
 * Llama-3.1 scaling. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "model/model.h"
#include "util/file.h"

const char *pt_arch_name(pt_arch a) {
    switch (a) {
    case PT_ARCH_LLAMA: return "llama";
    case PT_ARCH_MISTRAL: return "mistral";
    case PT_ARCH_QWEN2: return "qwen2";
    case PT_ARCH_QWEN3: return "qwen3";
    }
    return "?";
}

static pt_status get_int(json_t *o, const char *key, int *out, bool required, const char *label) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return required ? pt_error(PT_ERR_FORMAT, "%s: missing key '%s'", label, key) : PT_OK;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > (1 << 30))
        return pt_error(PT_ERR_FORMAT, "%s: key '%s' must be a non-negative integer", label, key);
    *out = (int)json_integer_value(v);
    return PT_OK;
}

static pt_status get_num(json_t *o, const char *key, float *out, bool required, const char *label) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return required ? pt_error(PT_ERR_FORMAT, "%s: missing key '%s'", label, key) : PT_OK;
    if (!json_is_number(v)) return pt_error(PT_ERR_FORMAT, "%s: key '%s' must be a number", label, key);
    *out = (float)json_number_value(v);
    return PT_OK;
}

/* Reads rope_type / factor / ... from either `rope_scaling` (legacy) or `rope_parameters`. */
static pt_status read_rope(pt_config *c, json_t *rs, const char *label) {
    if (!rs || json_is_null(rs)) return PT_OK;
    if (!json_is_object(rs)) return pt_error(PT_ERR_FORMAT, "%s: rope scaling must be an object", label);
    PT_TRY(get_num(rs, "rope_theta", &c->rope_theta, false, label));
    json_t *t = json_object_get(rs, "rope_type");
    if (!t) t = json_object_get(rs, "type");
    const char *type = json_is_string(t) ? json_string_value(t) : "default";
    if (!strcmp(type, "default")) return PT_OK;
    if (strcmp(type, "llama3") != 0)
        return pt_error(PT_ERR_UNSUPPORTED, "%s: rope_type '%s' not supported (default, llama3)", label, type);
    c->rope_llama3 = true;
    PT_TRY(get_num(rs, "factor", &c->rope_factor, true, label));
    PT_TRY(get_num(rs, "low_freq_factor", &c->rope_low_freq_factor, true, label));
    PT_TRY(get_num(rs, "high_freq_factor", &c->rope_high_freq_factor, true, label));
    PT_TRY(get_int(rs, "original_max_position_embeddings", &c->rope_orig_ctx, true, label));
    return PT_OK;
}

pt_status pt_config_from_hf_json(pt_config *c, const char *path) {
    memset(c, 0, sizeof *c);
    json_error_t err;
    json_t *o = json_load_file(path, 0, &err);
    if (!o) return pt_error(PT_ERR_FORMAT, "%s: line %d: %s", path, err.line, err.text);
    pt_status rc = PT_OK;
    json_t *mt = json_object_get(o, "model_type");
    const char *type = json_is_string(mt) ? json_string_value(mt) : NULL;
    if (!type) rc = pt_error(PT_ERR_FORMAT, "%s: missing key 'model_type'", path);
    else if (!strcmp(type, "llama")) c->arch = PT_ARCH_LLAMA;
    else if (!strcmp(type, "mistral")) c->arch = PT_ARCH_MISTRAL;
    else if (!strcmp(type, "qwen2")) c->arch = PT_ARCH_QWEN2;
    else if (!strcmp(type, "qwen3")) c->arch = PT_ARCH_QWEN3;
    else rc = pt_error(PT_ERR_UNSUPPORTED, "%s: model_type '%s' is not supported (llama, mistral, qwen2, qwen3)", path, type);
    c->rope_theta = 10000.0f;
    c->norm_eps = 1e-5f;
    c->bos_id = c->eos_id = -1;
    c->max_ctx = 2048;
    c->qkv_bias = c->arch == PT_ARCH_QWEN2;
    if (!rc) rc = get_int(o, "hidden_size", &c->dim, true, path);
    if (!rc) rc = get_int(o, "num_hidden_layers", &c->n_layers, true, path);
    if (!rc) rc = get_int(o, "num_attention_heads", &c->n_heads, true, path);
    c->n_kv_heads = c->n_heads;
    if (!rc) rc = get_int(o, "num_key_value_heads", &c->n_kv_heads, false, path);
    if (!rc) rc = get_int(o, "intermediate_size", &c->ffn_dim, true, path);
    if (!rc) rc = get_int(o, "vocab_size", &c->vocab_size, true, path);
    if (!rc) rc = get_int(o, "max_position_embeddings", &c->max_ctx, false, path);
    if (!rc && c->n_heads) c->head_dim = c->dim / c->n_heads;
    if (!rc) rc = get_int(o, "head_dim", &c->head_dim, false, path);
    if (!rc) rc = get_num(o, "rms_norm_eps", &c->norm_eps, false, path);
    if (!rc) rc = get_num(o, "rope_theta", &c->rope_theta, false, path);
    if (!rc) rc = read_rope(c, json_object_get(o, "rope_scaling"), path);
    if (!rc) rc = read_rope(c, json_object_get(o, "rope_parameters"), path);
    json_t *prf = json_object_get(o, "partial_rotary_factor");
    if (!rc && prf && !json_is_null(prf)) {
        double f = json_is_number(prf) ? json_number_value(prf) : -1;
        if (!(f > 0 && f <= 1)) rc = pt_error(PT_ERR_FORMAT, "%s: key 'partial_rotary_factor' must be in (0, 1]", path);
        else c->rope_dim = (int)(f * c->head_dim);
        if (!rc && c->rope_dim == 0) rc = pt_error(PT_ERR_FORMAT, "%s: partial_rotary_factor %g leaves no rotary dimension", path, f);
    }
    json_t *tie = json_object_get(o, "tie_word_embeddings");
    c->tied_embeddings = tie ? json_is_true(tie) : c->arch == PT_ARCH_QWEN2 ? false : false;
    json_t *ab = json_object_get(o, "attention_bias");
    if (ab && json_is_boolean(ab)) c->qkv_bias = json_is_true(ab) || c->arch == PT_ARCH_QWEN2;
    if (!rc) rc = get_int(o, "bos_token_id", &c->bos_id, false, path);
    json_t *eos = json_object_get(o, "eos_token_id");
    if (!rc && json_is_array(eos) && json_array_size(eos) > 0) eos = json_array_get(eos, 0);
    if (!rc && json_is_integer(eos)) c->eos_id = (int)json_integer_value(eos);
    json_decref(o);
    if (!rc) rc = pt_config_validate(c, path);
    return rc;
}

pt_status pt_config_from_gguf(pt_config *c, const pt_gguf *g) {
    memset(c, 0, sizeof *c);
    char *arch = NULL;
    PT_TRY(pt_gguf_get_string(g, "general.architecture", &arch, true));
    if (!strcmp(arch, "llama")) c->arch = PT_ARCH_LLAMA;
    else if (!strcmp(arch, "qwen2")) c->arch = PT_ARCH_QWEN2;
    else if (!strcmp(arch, "qwen3")) c->arch = PT_ARCH_QWEN3;
    else {
        pt_status rc = pt_error(PT_ERR_UNSUPPORTED, "%s: general.architecture '%s' is not supported (llama, qwen2, qwen3)", g->label, arch);
        free(arch);
        return rc;
    }
    char key[128];
#define KEY(suffix) (snprintf(key, sizeof key, "%s.%s", arch, suffix), key)
    int64_t v;
    double f;
    pt_status rc = PT_OK;
#define INT_KEY(suffix, field, req)                                              \
    if (!rc) {                                                                   \
        v = c->field;                                                            \
        rc = pt_gguf_get_int(g, KEY(suffix), &v, req);                           \
        if (!rc && (v < 0 || v > (1 << 30)))                                     \
            rc = pt_error(PT_ERR_FORMAT, "%s: %s = %lld out of range", g->label, key, (long long)v); \
        c->field = (int)v;                                                       \
    }
    c->max_ctx = 2048;
    INT_KEY("embedding_length", dim, true);
    INT_KEY("block_count", n_layers, true);
    INT_KEY("attention.head_count", n_heads, true);
    c->n_kv_heads = c->n_heads;
    INT_KEY("attention.head_count_kv", n_kv_heads, false);
    INT_KEY("feed_forward_length", ffn_dim, true);
    INT_KEY("context_length", max_ctx, false);
    if (c->n_heads) c->head_dim = c->dim / c->n_heads;
    INT_KEY("attention.key_length", head_dim, false);
    INT_KEY("vocab_size", vocab_size, false);
    if (!rc && pt_gguf_find(g, KEY("rope.dimension_count"))) {
        INT_KEY("rope.dimension_count", rope_dim, true);
        if (!rc && c->rope_dim == 0) rc = pt_error(PT_ERR_FORMAT, "%s: %s = 0: the rope dimension must be positive", g->label, key);
    }
    f = 1e-5;
    if (!rc) rc = pt_gguf_get_float(g, KEY("attention.layer_norm_rms_epsilon"), &f, true);
    c->norm_eps = (float)f;
    f = 10000.0;
    if (!rc) rc = pt_gguf_get_float(g, KEY("rope.freq_base"), &f, false);
    c->rope_theta = (float)f;
#undef INT_KEY
#undef KEY
    c->qkv_bias = c->arch == PT_ARCH_QWEN2;
    c->bos_id = c->eos_id = -1;
    v = -1;
    if (!rc) rc = pt_gguf_get_int(g, "tokenizer.ggml.bos_token_id", &v, false);
    c->bos_id = (int)v;
    v = -1;
    if (!rc) rc = pt_gguf_get_int(g, "tokenizer.ggml.eos_token_id", &v, false);
    c->eos_id = (int)v;
    free(arch);
    return rc;
}

pt_status pt_config_validate(const pt_config *c, const char *label) {
    if (c->dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 || c->ffn_dim <= 0 || c->head_dim <= 0)
        return pt_error(PT_ERR_FORMAT, "%s: sizes must be positive (hidden %d, layers %d, heads %d, kv heads %d, ffn %d, head_dim %d)",
                        label, c->dim, c->n_layers, c->n_heads, c->n_kv_heads, c->ffn_dim, c->head_dim);
    if (c->n_layers > 1024) return pt_error(PT_ERR_FORMAT, "%s: %d layers is implausible", label, c->n_layers);
    if (c->n_heads % c->n_kv_heads)
        return pt_error(PT_ERR_FORMAT, "%s: %d attention heads is not a multiple of %d key/value heads", label, c->n_heads, c->n_kv_heads);
    if (c->head_dim % 2) return pt_error(PT_ERR_FORMAT, "%s: head_dim %d must be even for RoPE", label, c->head_dim);
    /* products used as int row counts all over the engine must not overflow */
    if ((int64_t)c->n_heads * c->head_dim > PT_CONFIG_MAX_WIDTH || c->dim > PT_CONFIG_MAX_WIDTH || c->ffn_dim > PT_CONFIG_MAX_WIDTH)
        return pt_error(PT_ERR_FORMAT, "%s: widths too large (hidden %d, ffn %d, heads x head_dim = %d x %d; at most %d)", label,
                        c->dim, c->ffn_dim, c->n_heads, c->head_dim, PT_CONFIG_MAX_WIDTH);
    if (c->vocab_size <= 0 || c->vocab_size > PT_CONFIG_MAX_WIDTH)
        return pt_error(PT_ERR_FORMAT, "%s: vocab_size %d must be in 1..%d", label, c->vocab_size, PT_CONFIG_MAX_WIDTH);
    if (c->max_ctx <= 0) return pt_error(PT_ERR_FORMAT, "%s: context length %d must be positive", label, c->max_ctx);
    /* NaN fails every comparison, so these reject it too */
    if (!(c->norm_eps > 0 && isfinite(c->norm_eps)))
        return pt_error(PT_ERR_FORMAT, "%s: rms_norm_eps %g must be a positive finite number", label, c->norm_eps);
    if (!(c->rope_theta > 0 && isfinite(c->rope_theta)))
        return pt_error(PT_ERR_FORMAT, "%s: rope_theta (rope.freq_base) %g must be a positive finite number", label, c->rope_theta);
    if (c->rope_dim && c->rope_dim != c->head_dim)
        return pt_error(c->rope_dim > 0 && c->rope_dim < c->head_dim ? PT_ERR_UNSUPPORTED : PT_ERR_FORMAT,
                        "%s: rope dimension %d: politune rotates the whole head (head_dim %d)", label, c->rope_dim, c->head_dim);
    if (c->rope_llama3 && (!(c->rope_factor > 0) || !isfinite(c->rope_factor) || c->rope_high_freq_factor <= c->rope_low_freq_factor || c->rope_orig_ctx <= 0))
        return pt_error(PT_ERR_FORMAT, "%s: llama3 rope scaling needs factor > 0, high_freq_factor > low_freq_factor, original context > 0", label);
    return PT_OK;
}

void pt_rope_inv_freq(double *inv_freq, const pt_config *c) {
    int half = c->head_dim / 2;
    for (int i = 0; i < half; i++) {
        double f = 1.0 / pow((double)c->rope_theta, (2.0 * i) / c->head_dim);
        if (c->rope_llama3) {
            /* Llama 3.1: long wavelengths are slowed by `factor`, short ones kept, and the band
             * in between interpolated smoothly (transformers' _compute_llama3_parameters). */
            double low_wl = c->rope_orig_ctx / c->rope_low_freq_factor;
            double high_wl = c->rope_orig_ctx / c->rope_high_freq_factor;
            double wl = 2.0 * M_PI / f;
            if (wl > low_wl) f = f / c->rope_factor;
            else if (wl >= high_wl) {
                double s = (c->rope_orig_ctx / wl - c->rope_low_freq_factor) / (c->rope_high_freq_factor - c->rope_low_freq_factor);
                f = (1 - s) * f / c->rope_factor + s * f;
            }
        }
        inv_freq[i] = f;
    }
}
