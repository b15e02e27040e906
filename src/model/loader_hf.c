/* Hugging Face checkpoint directories: config.json, model.safetensors or shards listed in
 * model.safetensors.index.json, and tokenizer.json / tokenizer_config.json when present. */
#include <jansson.h>
#include <string.h>

#include "model/arch.h"
#include "util/file.h"

static const pt_tensor_view *find_in_shards(void *user, const char *name) {
    struct pt_model_storage *s = user;
    for (int i = 0; i < s->n_shards; i++) {
        const pt_tensor_view *t = pt_safetensors_find(&s->shards[i], name);
        if (t) return t;
    }
    return NULL;
}

static pt_status open_shard(struct pt_model_storage *s, const char *path) {
    PT_TRY(pt_safetensors_open(&s->shards[s->n_shards], path));
    s->n_shards++;
    return PT_OK;
}

/* Opens every distinct file named in the index's weight_map. */
static pt_status open_sharded(struct pt_model_storage *s, const char *dir, const char *index_path) {
    json_error_t err;
    json_t *idx = json_load_file(index_path, 0, &err);
    if (!idx) return pt_error(PT_ERR_FORMAT, "%s: line %d: %s", index_path, err.line, err.text);
    json_t *wm = json_object_get(idx, "weight_map");
    if (!json_is_object(wm)) {
        json_decref(idx);
        return pt_error(PT_ERR_FORMAT, "%s: missing object 'weight_map'", index_path);
    }
    const char **files = calloc(json_object_size(wm) + 1, sizeof *files);
    int n = 0;
    const char *key;
    json_t *val;
    pt_status rc = PT_OK;
    json_object_foreach(wm, key, val) {
        if (!json_is_string(val) || strchr(json_string_value(val), '/')) {
            rc = pt_error(PT_ERR_FORMAT, "%s: weight_map['%s'] must be a file name in the same directory", index_path, key);
            break;
        }
        int seen = 0;
        for (int i = 0; i < n && !seen; i++) seen = !strcmp(files[i], json_string_value(val));
        if (!seen) files[n++] = json_string_value(val);
    }
    if (!rc) {
        s->shards = calloc((size_t)n + 1, sizeof *s->shards);
        for (int i = 0; i < n && !rc; i++) {
            char *p = pt_path_join(dir, files[i]);
            rc = open_shard(s, p);
            free(p);
        }
    }
    free(files);
    json_decref(idx);
    return rc;
}

pt_status pt_model_load_hf(pt_model *m, const char *dir) {
    struct pt_model_storage *s = m->storage;
    char *cfg = pt_path_join(dir, "config.json");
    if (!pt_file_exists(cfg)) {
        pt_status rc = pt_error(PT_ERR_IO, "%s: no config.json: not a Hugging Face model directory", dir);
        free(cfg);
        return rc;
    }
    pt_status rc = pt_config_from_hf_json(&m->cfg, cfg);
    free(cfg);
    if (rc) return rc;
    char *single = pt_path_join(dir, "model.safetensors"), *index = pt_path_join(dir, "model.safetensors.index.json");
    if (pt_file_exists(single)) {
        s->shards = calloc(1, sizeof *s->shards);
        rc = open_shard(s, single);
    } else if (pt_file_exists(index)) rc = open_sharded(s, dir, index);
    else rc = pt_error(PT_ERR_IO, "%s: neither model.safetensors nor model.safetensors.index.json found", dir);
    const char *label = s->n_shards == 1 ? single : dir;
    int n_unused = 0;
    for (int i = 0; i < s->n_shards && !rc; i++)
        rc = pt_arch_check_tensors(m, s->shards[i].tensors, s->shards[i].n_tensors, s->shards[i].label, false, &n_unused);
    if (!rc) rc = pt_arch_bind_weights(m, find_in_shards, s, label, false);
    free(single);
    free(index);
    if (rc) return rc;
    char *tj = pt_path_join(dir, "tokenizer.json");
    if (pt_file_exists(tj)) rc = pt_tokenizer_load_json(&m->tok, tj);
    free(tj);
    if (rc) return rc;
    if (m->tok) {
        const char *src = pt_tokenizer_chat_template_source(m->tok);
        if (src) {
            m->chat_source = strdup(src);
            m->chat = pt_chat_template_detect(src);
        }
    }
    return PT_OK;
}
