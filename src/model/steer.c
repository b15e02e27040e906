/* Steering vectors on disk and on the command line (steer.h). */
#include "model/steer.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/safetensors.h"

pt_status pt_steer_new(pt_steer **out, int n_layers, int dim) {
    *out = NULL;
    pt_steer *s = calloc(1, sizeof *s);
    if (!s) return pt_error(PT_ERR_OOM, "out of memory");
    s->n_layers = n_layers;
    s->dim = dim;
    s->v = calloc((size_t)n_layers * dim, sizeof(float));
    s->has = calloc((size_t)n_layers, sizeof(bool));
    if (!s->v || !s->has) { pt_steer_free(s); return pt_error(PT_ERR_OOM, "out of memory"); }
    *out = s;
    return PT_OK;
}

void pt_steer_free(pt_steer *s) {
    if (!s) return;
    free(s->v);
    free(s->has);
    free(s);
}

static const char *meta_get(const pt_safetensors *st, const char *key);

pt_status pt_steer_load(pt_steer **out, const char *path, const pt_model *m) {
    *out = NULL;
    pt_safetensors st = {0};
    PT_TRY(pt_safetensors_open(&st, path));
    const int L = m->cfg.n_layers, D = m->cfg.dim;
    pt_status rc = PT_OK;
    const char *nl = meta_get(&st, "n_layers");
    if (nl && atoi(nl) != L)
        rc = pt_error(PT_ERR_FORMAT, "%s: a steering vector for %s layers; %s has %d", path, nl, m->path ? m->path : "the model", L);
    pt_steer *s = NULL;
    if (!rc) rc = pt_steer_new(&s, L, D);
    int found = 0;
    for (int i = 0; !rc && i < st.n_tensors; i++) {
        const pt_tensor_view *t = &st.tensors[i];
        char *end;
        if (strncmp(t->name, "direction.", 10)) continue;
        long l = strtol(t->name + 10, &end, 10);
        if (end == t->name + 10 || *end || l < 0 || l >= L) {
            rc = pt_error(PT_ERR_FORMAT, "%s: tensor '%s' names a layer outside 0..%d of %s", path, t->name, L - 1, m->path ? m->path : "the model");
            break;
        }
        long width = t->n_dims == 1 ? (long)t->shape[0] : t->n_dims == 2 && t->shape[0] == 1 ? (long)t->shape[1] : -1;
        if (width != D) {
            rc = pt_error(PT_ERR_FORMAT, "%s: tensor '%s' has width %ld; the model's residual stream has %d", path, t->name, width, D);
            break;
        }
        if (t->dtype != PT_F32 && t->dtype != PT_F16 && t->dtype != PT_BF16) {
            rc = pt_error(PT_ERR_FORMAT, "%s: tensor '%s': dtype %s (F32, F16, BF16 expected)", path, t->name, pt_dtype_name(t->dtype));
            break;
        }
        pt_dtype_to_f32(s->v + (size_t)l * D, t->data, t->dtype, D);
        for (int k = 0; k < D; k++)
            if (!isfinite(s->v[(size_t)l * D + k])) { rc = pt_error(PT_ERR_NUMERIC, "%s: tensor '%s' holds a non-finite value", path, t->name); break; }
        s->has[l] = true;
        found++;
    }
    if (!rc && !found) rc = pt_error(PT_ERR_FORMAT, "%s: no steering directions (tensors 'direction.L')", path);
    pt_safetensors_close(&st);
    if (rc) { pt_steer_free(s); return rc; }
    *out = s;
    return PT_OK;
}

/* The safetensors header's __metadata__ value for key, or NULL (read through the raw file). */
static const char *meta_get(const pt_safetensors *st, const char *key) {
    /* the reader keeps no metadata: look for "key":"value" in the JSON header */
    static __thread char value[64];
    const uint8_t *base = st->file.data;
    if (!base || st->file.size < 8) return NULL;
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | base[i];
    if (hl > st->file.size - 8) return NULL;
    char pat[80];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *h = (const char *)base + 8, *p = memmem(h, hl, pat, strlen(pat));
    if (!p) return NULL;
    p += strlen(pat);
    size_t n = 0;
    while (p + n < h + hl && p[n] != '"' && n < sizeof value - 1) n++;
    memcpy(value, p, n);
    value[n] = 0;
    return value;
}

pt_status pt_steer_save(const pt_steer *s, const char *path, const char *model_path) {
    pt_safetensors_entry *e = calloc((size_t)s->n_layers, sizeof *e);
    char (*names)[32] = calloc((size_t)s->n_layers, sizeof *names);
    if (!e || !names) { free(e); free(names); return pt_error(PT_ERR_OOM, "out of memory"); }
    int n = 0;
    for (int l = 0; l < s->n_layers; l++) {
        if (!s->has[l]) continue;
        snprintf(names[n], sizeof names[n], "direction.%d", l);
        e[n] = (pt_safetensors_entry){.name = names[n], .dtype = PT_F32, .n_dims = 1, .shape = {s->dim}, .data = s->v + (size_t)l * s->dim};
        n++;
    }
    char nl[16], dim[16];
    snprintf(nl, sizeof nl, "%d", s->n_layers);
    snprintf(dim, sizeof dim, "%d", s->dim);
    const char *md[] = {"format", "politune-steering", "n_layers", nl, "dim", dim, "model", model_path ? model_path : "", NULL};
    pt_status st = pt_safetensors_write(path, e, n, md);
    free(e);
    free(names);
    return st;
}

pt_status pt_steer_parse_spec(const char *arg, char **path, float *scale, char **layers) {
    *path = *layers = NULL;
    *scale = 1.0f;
    const char *at = strrchr(arg, '@');
    size_t n = at ? (size_t)(at - arg) : strlen(arg);
    if (at) {
        if (!at[1]) return pt_error(PT_ERR_ARG, "--steer '%s': no layers after '@'", arg);
        if (!(*layers = strdup(at + 1))) return pt_error(PT_ERR_OOM, "out of memory");
    }
    const char *colon = memrchr(arg, ':', n);
    if (colon) {
        char buf[64];
        size_t k = n - (size_t)(colon + 1 - arg);
        char *end = NULL;
        double v = NAN;
        if (k > 0 && k < sizeof buf) {
            memcpy(buf, colon + 1, k);
            buf[k] = 0;
            errno = 0;
            v = strtod(buf, &end);
        }
        if (!end || end == buf || *end || errno || !isfinite(v) || fabs(v) > 1e6) {
            free(*layers);
            *layers = NULL;
            return pt_error(PT_ERR_ARG, "--steer '%s': scale '%.*s' is not a finite number", arg, (int)k, colon + 1);
        }
        *scale = (float)v;
        n = (size_t)(colon - arg);
    }
    if (n == 0 || !(*path = strndup(arg, n))) {
        free(*layers);
        *layers = NULL;
        return n ? pt_error(PT_ERR_OOM, "out of memory") : pt_error(PT_ERR_ARG, "--steer '%s': no file", arg);
    }
    return PT_OK;
}

pt_status pt_steer_layers(const pt_steer *s, const char *text, bool *mask) {
    for (int l = 0; l < s->n_layers; l++) mask[l] = !text || !strcmp(text, "all") ? s->has[l] : false;
    if (!text || !strcmp(text, "all")) return PT_OK;
    for (const char *p = text; *p;) {
        char *end;
        errno = 0;
        long a = strtol(p, &end, 10), b = a;
        if (end == p || errno) return pt_error(PT_ERR_ARG, "steering layers '%s': '%s' is not a layer number", text, p);
        if (*end == '-') {
            const char *q = end + 1;
            b = strtol(q, &end, 10);
            if (end == q) return pt_error(PT_ERR_ARG, "steering layers '%s': a range needs an end", text);
        }
        if (a < 0 || b >= s->n_layers || a > b) return pt_error(PT_ERR_ARG, "steering layers '%s': layers run 0..%d", text, s->n_layers - 1);
        for (long l = a; l <= b; l++) {
            if (!s->has[l]) return pt_error(PT_ERR_ARG, "steering layers '%s': the vector has no direction for layer %ld", text, l);
            mask[l] = true;
        }
        if (*end && *end != ',') return pt_error(PT_ERR_ARG, "steering layers '%s': unexpected '%c'", text, *end);
        p = *end ? end + 1 : end;
    }
    return PT_OK;
}
