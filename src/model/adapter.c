/* PEFT LoRA adapters: adapter_config.json gives rank, alpha and targets;
 * adapter_model.safetensors holds base_model.model.<module>.lora_{A,B}.weight. Loading checks
 * every shape against the base model; creation follows PEFT's initialisation; saving writes
 * both files atomically. */
#include "model/adapter.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "format/safetensors.h"
#include "util/file.h"
#include "util/rng.h"

static const char *target_names[PT_LT_COUNT] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head"};
static const char *short_names[PT_LT_COUNT] = {"q", "k", "v", "o", "gate", "up", "down", "head"};
static const char *module_of[PT_LT_COUNT] = {"self_attn", "self_attn", "self_attn", "self_attn", "mlp", "mlp", "mlp", NULL};

const char *pt_lora_target_name(pt_lora_target t) { return (unsigned)t < PT_LT_COUNT ? target_names[t] : NULL; }

static int target_from_name(const char *s, size_t n) {
    for (int t = 0; t < PT_LT_COUNT; t++)
        if ((strlen(target_names[t]) == n && !strncmp(s, target_names[t], n)) ||
            (strlen(short_names[t]) == n && !strncmp(s, short_names[t], n)))
            return t;
    if (n == 6 && !strncmp(s, "output", 6)) return PT_LT_HEAD;
    return -1;
}

pt_status pt_lora_parse_targets(const char *list, unsigned *mask) {
    *mask = 0;
    if (!strcmp(list, "all")) { *mask = (1u << PT_LT_COUNT) - 1; return PT_OK; }
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        int t = target_from_name(p, n);
        if (t < 0)
            return pt_error(PT_ERR_ARG, "unknown LoRA target '%.*s' (known: q_proj k_proj v_proj o_proj gate_proj up_proj down_proj lm_head, or all)",
                            (int)n, p);
        *mask |= 1u << t;
        p += n + (p[n] == ',');
    }
    return PT_OK;
}

const pt_lora_pair *pt_adapter_pair(const pt_adapter *a, int layer, pt_lora_target t) {
    const pt_lora_pair *p = t == PT_LT_HEAD ? &a->head : &a->pairs[(size_t)layer * (PT_LT_COUNT - 1) + t];
    return p->A ? p : NULL;
}

static void dims_of(const pt_model *m, pt_lora_target t, int *in, int *out) {
    const pt_config *c = &m->cfg;
    int D = c->dim, Q = c->n_heads * c->head_dim, KV = c->n_kv_heads * c->head_dim, F = c->ffn_dim;
    switch (t) {
    case PT_LT_Q: *in = D, *out = Q; break;
    case PT_LT_K: case PT_LT_V: *in = D, *out = KV; break;
    case PT_LT_O: *in = Q, *out = D; break;
    case PT_LT_GATE: case PT_LT_UP: *in = D, *out = F; break;
    case PT_LT_DOWN: *in = F, *out = D; break;
    default: *in = D, *out = c->vocab_size; break;
    }
}

/* Copies a (rows, cols) tensor to float32, checking its shape. */
static pt_status take(float **dst, const pt_safetensors *st, const char *key, int rows, int cols) {
    const pt_tensor_view *t = pt_safetensors_find(st, key);
    if (!t) return pt_error(PT_ERR_FORMAT, "%s: missing tensor '%s'", st->label, key);
    if (t->n_dims != 2 || t->shape[0] != rows || t->shape[1] != cols)
        return pt_error(PT_ERR_FORMAT, "%s: tensor '%s' has shape (%lld, %lld), the base model needs (%d, %d): the adapter was made for another base model", st->label, key,
                        (long long)t->shape[0], (long long)(t->n_dims > 1 ? t->shape[1] : 0), rows, cols);
    if (t->dtype != PT_F32 && t->dtype != PT_F16 && t->dtype != PT_BF16)
        return pt_error(PT_ERR_FORMAT, "%s: tensor '%s': dtype %s (F32, F16, BF16 expected)", st->label, key, pt_dtype_name(t->dtype));
    *dst = malloc(sizeof(float) * rows * cols);
    if (!*dst) return pt_error(PT_ERR_OOM, "out of memory");
    pt_dtype_to_f32(*dst, t->data, t->dtype, (int64_t)rows * cols);
    for (int64_t i = 0; i < (int64_t)rows * cols; i++)
        if (!isfinite((*dst)[i]))
            return pt_error(PT_ERR_NUMERIC, "%s: tensor '%s': element %lld is %g; adapter weights must be finite", st->label, key,
                            (long long)i, (*dst)[i]);
    return PT_OK;
}

static bool present(json_t *v) {
    return v && !json_is_null(v) && !json_is_false(v) && !(json_is_object(v) && !json_object_size(v)) &&
           !(json_is_array(v) && !json_array_size(v));
}

/* PEFT options that change what the adapter computes but that politune does not implement:
 * ignoring one would give results that are quietly wrong, so each is refused by name. */
static pt_status check_unsupported(json_t *o, const char *path) {
    static const char *const unsupported[] = {"use_dora", "alpha_pattern", "rank_pattern", "layers_to_transform",
                                              "layers_pattern", "modules_to_save"};
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
        if (present(json_object_get(o, unsupported[i])))
            return pt_error(PT_ERR_UNSUPPORTED, "%s: key '%s' is set, but politune supports only plain LoRA with one rank and alpha "
                            "for every targeted layer (use_dora false, no patterns, no modules_to_save)", path, unsupported[i]);
    json_t *bias = json_object_get(o, "bias"), *rs = json_object_get(o, "use_rslora"), *dr = json_object_get(o, "lora_dropout"),
           *al = json_object_get(o, "lora_alpha");
    if (bias && !json_is_null(bias) && !(json_is_string(bias) && !strcmp(json_string_value(bias), "none")))
        return pt_error(PT_ERR_UNSUPPORTED, "%s: key 'bias' must be \"none\" (politune trains no biases)", path);
    if (rs && !json_is_null(rs) && !json_is_boolean(rs))
        return pt_error(PT_ERR_FORMAT, "%s: key 'use_rslora' must be true or false", path);
    if (dr && !json_is_null(dr) && !(json_is_number(dr) && json_number_value(dr) >= 0 && json_number_value(dr) < 1))
        return pt_error(PT_ERR_FORMAT, "%s: key 'lora_dropout' must be a number in [0, 1)", path);
    if (json_is_number(al) && !(json_number_value(al) > 0 && isfinite(json_number_value(al))))
        return pt_error(PT_ERR_FORMAT, "%s: key 'lora_alpha' must be positive", path);
    return PT_OK;
}

static pt_status read_config(pt_adapter *a, const char *path) {
    json_error_t err;
    json_t *o = json_load_file(path, 0, &err);
    if (!o) return pt_error(PT_ERR_FORMAT, "%s: line %d: %s", path, err.line, err.text);
    pt_status rc = PT_OK;
    json_t *pt = json_object_get(o, "peft_type"), *r = json_object_get(o, "r"), *al = json_object_get(o, "lora_alpha"),
           *tm = json_object_get(o, "target_modules"), *dr = json_object_get(o, "lora_dropout"),
           *rs = json_object_get(o, "use_rslora"), *bm = json_object_get(o, "base_model_name_or_path"),
           *fifo = json_object_get(o, "fan_in_fan_out");
    if (pt && (!json_is_string(pt) || strcmp(json_string_value(pt), "LORA")))
        rc = pt_error(PT_ERR_UNSUPPORTED, "%s: peft_type must be \"LORA\"", path);
    else if (!json_is_integer(r) || json_integer_value(r) <= 0 || json_integer_value(r) > 65536)
        rc = pt_error(PT_ERR_FORMAT, "%s: key 'r' must be a positive integer", path);
    else if (!json_is_number(al)) rc = pt_error(PT_ERR_FORMAT, "%s: key 'lora_alpha' must be a number", path);
    else if (!json_is_array(tm) && !json_is_string(tm)) rc = pt_error(PT_ERR_FORMAT, "%s: key 'target_modules' must be a list", path);
    else if (json_is_true(fifo)) rc = pt_error(PT_ERR_UNSUPPORTED, "%s: fan_in_fan_out adapters (GPT-2 style) are not supported", path);
    else rc = check_unsupported(o, path);
    if (!rc) {
        a->r = (int)json_integer_value(r);
        a->alpha = (float)json_number_value(al);
        a->dropout = json_is_number(dr) ? (float)json_number_value(dr) : 0.0f;
        a->rslora = json_is_true(rs);
        a->scale = a->rslora ? a->alpha / sqrtf((float)a->r) : a->alpha / (float)a->r;
        if (json_is_string(bm)) a->base_model = strdup(json_string_value(bm));
        size_t i;
        json_t *v;
        if (json_is_string(tm)) rc = pt_lora_parse_targets(json_string_value(tm), &a->targets);
        else
            json_array_foreach(tm, i, v) {
                int t = json_is_string(v) ? target_from_name(json_string_value(v), strlen(json_string_value(v))) : -1;
                if (t < 0) { rc = pt_error(PT_ERR_UNSUPPORTED, "%s: target_modules[%zu] is not a Llama-family linear layer", path, i); break; }
                a->targets |= 1u << t;
            }
    }
    json_decref(o);
    return rc;
}

/* Loading reads the layers the model has; an adapter trained on a deeper model would
 * otherwise load with its extra layers quietly dropped. */
static pt_status check_layers(const pt_safetensors *st, const char *dir, const pt_model *m) {
    for (int i = 0; i < st->n_tensors; i++) {
        const char *k = strstr(st->tensors[i].name, ".layers.");
        long l = k ? strtol(k + 8, NULL, 10) : -1;
        if (l >= m->cfg.n_layers)
            return pt_error(PT_ERR_FORMAT, "adapter %s was made for another base model: it holds layer %ld ('%s'), %s has %d layers", dir, l,
                            st->tensors[i].name, m->path ? m->path : "the model", m->cfg.n_layers);
    }
    return PT_OK;
}

pt_status pt_adapter_load(pt_adapter **out, const char *dir, const pt_model *m) {
    *out = NULL;
    pt_adapter *a = calloc(1, sizeof *a);
    if (!a) return pt_error(PT_ERR_OOM, "out of memory");
    a->n_layers = m->cfg.n_layers;
    a->pairs = calloc((size_t)a->n_layers * (PT_LT_COUNT - 1), sizeof *a->pairs);
    char *cfg = pt_path_join(dir, "adapter_config.json"), *wts = pt_path_join(dir, "adapter_model.safetensors");
    pt_safetensors st = {0};
    pt_status rc = a->pairs ? read_config(a, cfg) : pt_error(PT_ERR_OOM, "out of memory");
    if (!rc) rc = pt_safetensors_open(&st, wts);
    char key[256];
    for (int t = 0; t < PT_LT_COUNT && !rc; t++) {
        if (!(a->targets & (1u << t))) continue;
        int in, outd;
        dims_of(m, t, &in, &outd);
        for (int l = 0; l < (t == PT_LT_HEAD ? 1 : a->n_layers) && !rc; l++) {
            pt_lora_pair *p = t == PT_LT_HEAD ? &a->head : &a->pairs[(size_t)l * (PT_LT_COUNT - 1) + t];
            p->in = in;
            p->out = outd;
            pt_adapter_key(key, sizeof key, l, t, false);
            rc = take(&p->A, &st, key, a->r, in);
            if (!rc) {
                pt_adapter_key(key, sizeof key, l, t, true);
                rc = take(&p->B, &st, key, outd, a->r);
            }
        }
    }
    if (!rc) rc = check_layers(&st, dir, m); /* after the shapes, whose message is the more telling */
    pt_safetensors_close(&st);
    free(cfg);
    free(wts);
    if (rc) { pt_adapter_free(a); return rc; }
    *out = a;
    return PT_OK;
}

void pt_adapter_free(pt_adapter *a) {
    if (!a) return;
    for (int i = 0; a->pairs && i < a->n_layers * (PT_LT_COUNT - 1); i++) { free(a->pairs[i].A); free(a->pairs[i].B); }
    free(a->pairs);
    free(a->head.A);
    free(a->head.B);
    free(a->base_model);
    free(a);
}

void pt_adapter_key(char *buf, size_t size, int layer, pt_lora_target t, bool B) {
    if (t == PT_LT_HEAD) snprintf(buf, size, "base_model.model.lm_head.lora_%c.weight", B ? 'B' : 'A');
    else snprintf(buf, size, "base_model.model.model.layers.%d.%s.%s.lora_%c.weight", layer, module_of[t], target_names[t], B ? 'B' : 'A');
}

pt_status pt_adapter_new(pt_adapter **out, const pt_model *m, int r, float alpha, unsigned targets, bool rslora,
                         float dropout, uint64_t seed) {
    *out = NULL;
    if (r <= 0 || r > 65536) return pt_error(PT_ERR_ARG, "LoRA rank must be in 1..65536, got %d", r);
    if (!(alpha > 0)) return pt_error(PT_ERR_ARG, "LoRA alpha must be positive");
    if (!(dropout >= 0 && dropout < 1)) return pt_error(PT_ERR_ARG, "LoRA dropout must be in [0, 1)");
    targets &= (1u << PT_LT_COUNT) - 1;
    if (!targets) return pt_error(PT_ERR_ARG, "no LoRA targets");
    pt_adapter *a = calloc(1, sizeof *a);
    if (!a) return pt_error(PT_ERR_OOM, "out of memory");
    a->r = r;
    a->alpha = alpha;
    a->rslora = rslora;
    a->scale = rslora ? alpha / sqrtf((float)r) : alpha / (float)r;
    a->dropout = dropout;
    a->targets = targets;
    a->n_layers = m->cfg.n_layers;
    a->pairs = calloc((size_t)a->n_layers * (PT_LT_COUNT - 1), sizeof *a->pairs);
    if (!a->pairs) { free(a); return pt_error(PT_ERR_OOM, "out of memory"); }
    pt_rng rng;
    pt_rng_seed(&rng, seed);
    for (int l = 0; l < a->n_layers; l++)
        for (int t = 0; t < PT_LT_COUNT; t++) {
            if (!(targets & (1u << t)) || (t == PT_LT_HEAD && l > 0)) continue;
            pt_lora_pair *p = t == PT_LT_HEAD ? &a->head : &a->pairs[(size_t)l * (PT_LT_COUNT - 1) + t];
            dims_of(m, t, &p->in, &p->out);
            p->A = malloc(sizeof(float) * r * p->in);
            p->B = calloc((size_t)p->out * r, sizeof(float));
            if (!p->A || !p->B) { pt_adapter_free(a); return pt_error(PT_ERR_OOM, "out of memory for LoRA rank %d", r); }
            const double bound = 1.0 / sqrt((double)p->in);
            for (int64_t i = 0; i < (int64_t)r * p->in; i++) p->A[i] = (float)((2.0 * pt_rng_double(&rng) - 1.0) * bound);
        }
    *out = a;
    return PT_OK;
}

static pt_status make_dir(const char *dir) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return pt_error(PT_ERR_IO, "%s: cannot create directory: %s", dir, strerror(errno));
    return pt_dir_exists(dir) ? PT_OK : pt_error(PT_ERR_IO, "%s: exists and is not a directory", dir);
}

pt_status pt_adapter_save(const pt_adapter *a, const char *dir) {
    PT_TRY(make_dir(dir));
    int n = 0, cap = 2 * (a->n_layers * (PT_LT_COUNT - 1) + 1);
    pt_safetensors_entry *e = calloc((size_t)cap, sizeof *e);
    char (*keys)[160] = calloc((size_t)cap, sizeof *keys);
    pt_status rc = e && keys ? PT_OK : pt_error(PT_ERR_OOM, "out of memory");
    for (int l = 0; l < a->n_layers && !rc; l++)
        for (int t = 0; t < PT_LT_COUNT; t++) {
            if (t == PT_LT_HEAD && l > 0) continue;
            const pt_lora_pair *p = pt_adapter_pair(a, l, t);
            if (!p) continue;
            for (int b = 0; b < 2; b++, n++) {
                pt_adapter_key(keys[n], sizeof keys[n], l, t, b);
                e[n] = (pt_safetensors_entry){.name = keys[n], .dtype = PT_F32, .n_dims = 2,
                                              .shape = {b ? p->out : a->r, b ? a->r : p->in}, .data = b ? p->B : p->A};
            }
        }
    static const char *const md[] = {"format", "pt", NULL};
    char *path = pt_path_join(dir, "adapter_model.safetensors");
    if (!rc) rc = path ? pt_safetensors_write(path, e, n, md) : pt_error(PT_ERR_OOM, "out of memory");
    free(path);
    free(e);
    free(keys);
    if (rc) return rc;

    json_t *o = json_object(), *tm = json_array();
    for (int t = 0; t < PT_LT_COUNT; t++)
        if (a->targets & (1u << t)) json_array_append_new(tm, json_string(target_names[t]));
    json_object_set_new(o, "peft_type", json_string("LORA"));
    json_object_set_new(o, "task_type", json_string("CAUSAL_LM"));
    json_object_set_new(o, "r", json_integer(a->r));
    json_object_set_new(o, "lora_alpha", a->alpha == floorf(a->alpha) && a->alpha < 1e9f ? json_integer((json_int_t)a->alpha)
                                                                                          : json_real(a->alpha));
    json_object_set_new(o, "lora_dropout", json_real(a->dropout));
    json_object_set_new(o, "target_modules", tm);
    json_object_set_new(o, "bias", json_string("none"));
    json_object_set_new(o, "fan_in_fan_out", json_false());
    json_object_set_new(o, "use_rslora", json_boolean(a->rslora));
    json_object_set_new(o, "use_dora", json_false());
    json_object_set_new(o, "modules_to_save", json_null());
    json_object_set_new(o, "base_model_name_or_path", a->base_model ? json_string(a->base_model) : json_null());
    json_object_set_new(o, "inference_mode", json_true());
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(o);
    path = pt_path_join(dir, "adapter_config.json");
    rc = text && path ? pt_file_write_atomic(path, text, strlen(text)) : pt_error(PT_ERR_OOM, "out of memory");
    free(text);
    free(path);
    return rc;
}

pt_status pt_adapter_parse_spec(const char *arg, char **dir, float *scale) {
    *dir = NULL;
    *scale = 1.0f;
    size_t n = strlen(arg);
    const char *colon = strrchr(arg, ':');
    if (colon && colon[1]) {
        /* a path may hold ':' itself: the suffix is a scale only when it reads as a number */
        char *end;
        errno = 0;
        double v = strtod(colon + 1, &end);
        bool numeric = end != colon + 1 && !*end && !errno;
        bool looks_numeric = (strspn(colon + 1, "+-.0123456789eE") == strlen(colon + 1) && strpbrk(colon + 1, "0123456789")) ||
                             !strcasecmp(colon + 1, "nan") || !strcasecmp(colon + 1, "inf") || !strcasecmp(colon + 1, "-inf");
        if (numeric && !isfinite(v)) return pt_error(PT_ERR_ARG, "adapter '%s': scale '%s' is not a finite number", arg, colon + 1);
        if (!numeric && looks_numeric) return pt_error(PT_ERR_ARG, "adapter '%s': scale '%s' is not a number", arg, colon + 1);
        if (!numeric && !pt_dir_exists(arg)) {
            /* "left:abc" where "left" is a directory: a scale mistyped, not a path */
            char *prefix = strndup(arg, (size_t)(colon - arg));
            bool dir_before = prefix && pt_dir_exists(prefix);
            free(prefix);
            if (dir_before) return pt_error(PT_ERR_ARG, "adapter '%s': scale '%s' is not a number", arg, colon + 1);
        }
        if (numeric) {
            if (fabs(v) > 1e6) return pt_error(PT_ERR_ARG, "adapter '%s': scale %g is out of range (|scale| <= 1e6)", arg, v);
            *scale = (float)v;
            n = (size_t)(colon - arg);
        }
    }
    if (n == 0) return pt_error(PT_ERR_ARG, "adapter '%s': no directory before the scale", arg);
    *dir = strndup(arg, n);
    return *dir ? PT_OK : pt_error(PT_ERR_OOM, "out of memory");
}

pt_status pt_adapter_combine(pt_adapter **out, const pt_adapter *const *list, const float *scales, int n) {
    *out = NULL;
    if (n <= 0) return pt_error(PT_ERR_ARG, "no adapters to combine");
    int r = 0;
    unsigned targets = 0;
    for (int i = 0; i < n; i++) {
        if (list[i]->n_layers != list[0]->n_layers)
            return pt_error(PT_ERR_ARG, "adapters 1 and %d have %d and %d layers: they were made for different base models", i + 1,
                            list[0]->n_layers, list[i]->n_layers);
        if (!isfinite(scales[i])) return pt_error(PT_ERR_ARG, "adapter %d: scale is not a finite number", i + 1);
        r += list[i]->r;
        targets |= list[i]->targets;
    }
    pt_adapter *a = calloc(1, sizeof *a);
    if (!a) return pt_error(PT_ERR_OOM, "out of memory");
    a->r = r;
    a->alpha = (float)r; /* alpha / r = 1: each B block carries its own adapter's scale */
    a->scale = 1.0f;
    a->targets = targets;
    a->n_layers = list[0]->n_layers;
    a->pairs = calloc((size_t)a->n_layers * (PT_LT_COUNT - 1), sizeof *a->pairs);
    if (!a->pairs) { free(a); return pt_error(PT_ERR_OOM, "out of memory"); }
    for (int l = 0; l < a->n_layers; l++)
        for (int t = 0; t < PT_LT_COUNT; t++) {
            if (!(targets & (1u << t)) || (t == PT_LT_HEAD && l > 0)) continue;
            pt_lora_pair *p = t == PT_LT_HEAD ? &a->head : &a->pairs[(size_t)l * (PT_LT_COUNT - 1) + t];
            int in = 0, outd = 0;
            for (int i = 0; i < n; i++) {
                const pt_lora_pair *q = pt_adapter_pair(list[i], l, t);
                if (!q) continue;
                if ((in && (q->in != in || q->out != outd)))
                    { pt_adapter_free(a); return pt_error(PT_ERR_ARG, "adapter %d: %s of layer %d is (%d, %d), another adapter's (%d, %d): different base models", i + 1, target_names[t], l, q->out, q->in, outd, in); }
                in = q->in, outd = q->out;
            }
            if (!in) continue; /* targeted by none at this layer */
            p->in = in;
            p->out = outd;
            /* A (r, in) = the adapters' A stacked; B (out, r) = their B side by side, each
             * times its scale: B A = sum_i scale_i * B_i A_i */
            p->A = calloc((size_t)r * in, sizeof(float));
            p->B = calloc((size_t)outd * r, sizeof(float));
            if (!p->A || !p->B) { pt_adapter_free(a); return pt_error(PT_ERR_OOM, "out of memory for a rank-%d adapter", r); }
            for (int i = 0, off = 0; i < n; off += list[i]->r, i++) {
                const pt_lora_pair *q = pt_adapter_pair(list[i], l, t);
                if (!q) continue;
                int ri = list[i]->r;
                float s = scales[i] * list[i]->scale;
                memcpy(p->A + (size_t)off * in, q->A, sizeof(float) * ri * in);
                for (int o = 0; o < outd; o++)
                    for (int j = 0; j < ri; j++) p->B[(size_t)o * r + off + j] = s * q->B[(size_t)o * ri + j];
            }
        }
    const char *bm = list[0]->base_model;
    if (bm && !(a->base_model = strdup(bm))) { pt_adapter_free(a); return pt_error(PT_ERR_OOM, "out of memory"); }
    *out = a;
    return PT_OK;
}
