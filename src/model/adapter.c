/* PEFT LoRA adapter loading: adapter_config.json gives rank, alpha and targets;
 * adapter_model.safetensors holds base_model.model.<module>.lora_{A,B}.weight. */
#include "model/adapter.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

#include "format/safetensors.h"
#include "util/file.h"

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
        return pt_error(PT_ERR_FORMAT, "%s: tensor '%s' has shape (%lld, %lld), the base model needs (%d, %d)", st->label, key,
                        (long long)t->shape[0], (long long)(t->n_dims > 1 ? t->shape[1] : 0), rows, cols);
    if (t->dtype != PT_F32 && t->dtype != PT_F16 && t->dtype != PT_BF16)
        return pt_error(PT_ERR_FORMAT, "%s: tensor '%s': dtype %s (F32, F16, BF16 expected)", st->label, key, pt_dtype_name(t->dtype));
    *dst = malloc(sizeof(float) * rows * cols);
    if (!*dst) return pt_error(PT_ERR_OOM, "out of memory");
    pt_dtype_to_f32(*dst, t->data, t->dtype, (int64_t)rows * cols);
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
            const char *prefix = "base_model.model.";
            if (t == PT_LT_HEAD) snprintf(key, sizeof key, "%slm_head.lora_A.weight", prefix);
            else snprintf(key, sizeof key, "%smodel.layers.%d.%s.%s.lora_A.weight", prefix, l, module_of[t], target_names[t]);
            rc = take(&p->A, &st, key, a->r, in);
            if (!rc) {
                strcpy(strstr(key, "lora_A"), "lora_B.weight");
                rc = take(&p->B, &st, key, outd, a->r);
            }
        }
    }
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
