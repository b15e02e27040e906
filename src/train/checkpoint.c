/* Writing, finding and reading training checkpoints (see checkpoint.h). */
#include "train/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/safetensors.h"
#include "util/file.h"

static void fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Removes a directory of plain files (what checkpoints are). */
static void remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *p = pt_path_join(dir, e->d_name);
        if (p) unlink(p);
        free(p);
    }
    closedir(d);
    rmdir(dir);
}

static pt_status save_moments(const char *dir, const pt_lora_params *ps) {
    pt_safetensors_entry *e = calloc((size_t)ps->n * 2, sizeof *e);
    char (*names)[192] = calloc((size_t)ps->n * 2, sizeof *names);
    pt_status rc = e && names ? PT_OK : pt_error(PT_ERR_OOM, "out of memory");
    int64_t off = 0;
    for (int i = 0; i < ps->n && !rc; off += ps->numel[i], i++)
        for (int k = 0; k < 2; k++) {
            int j = 2 * i + k;
            snprintf(names[j], sizeof names[j], "%s.%s", k ? "exp_avg_sq" : "exp_avg", ps->key[i]);
            e[j] = (pt_safetensors_entry){.name = names[j], .dtype = PT_F32, .n_dims = 1, .shape = {ps->numel[i]},
                                          .data = (k ? ps->v : ps->m) + off};
        }
    char *path = pt_path_join(dir, "optimizer.safetensors");
    if (!rc) rc = pt_safetensors_write(path, e, ps->n * 2, NULL);
    free(path);
    free(e);
    free(names);
    return rc;
}

static void put_config(void *user, const char *key) {
    json_t **pair = user; /* [object, (config)] */
    char v[512];
    pt_train_config_get((const pt_train_config *)pair[1], key, v, sizeof v);
    json_object_set_new(pair[0], key, json_string(v));
}

static pt_status save_state(const char *dir, const pt_train_state *s, const pt_train_config *cfg) {
    json_t *o = json_object(), *conf = json_object(), *rng = json_array();
    for (int i = 0; i < 4; i++) {
        char h[24];
        snprintf(h, sizeof h, "%016llx", (unsigned long long)s->rng_epoch.s[i]);
        json_array_append_new(rng, json_string(h));
    }
    char dh[24];
    snprintf(dh, sizeof dh, "%016llx", (unsigned long long)s->data_hash);
    json_object_set_new(o, "format", json_string("politune-trainer-state-1"));
    json_object_set_new(o, "step", json_integer(s->step));
    json_object_set_new(o, "epoch", json_integer(s->epoch));
    json_object_set_new(o, "cursor", json_integer(s->cursor));
    json_object_set_new(o, "rng_epoch", rng);
    json_object_set_new(o, "data_hash", json_string(dh));
    json_object_set_new(o, "tokens", json_integer(s->tokens));
    json_object_set_new(o, "elapsed_s", json_real(s->elapsed_s));
    json_t *pair[2] = {conf, (json_t *)cfg};
    pt_train_config_each_trajectory_key(put_config, pair);
    json_object_set_new(o, "config", conf);
    char *text = json_dumps(o, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(o);
    char *path = pt_path_join(dir, "trainer_state.json");
    pt_status rc = text && path ? pt_file_write_atomic(path, text, strlen(text)) : pt_error(PT_ERR_OOM, "out of memory");
    free(text);
    free(path);
    return rc;
}

/* checkpoint-<N> -> N, or -1 */
static long step_of(const char *name) {
    if (strncmp(name, "checkpoint-", 11) || !name[11]) return -1;
    char *end;
    long v = strtol(name + 11, &end, 10);
    return *end || v < 0 ? -1 : v;
}

static bool complete(const char *dir) {
    char *p = pt_path_join(dir, "trainer_state.json");
    bool ok = p && pt_file_exists(p);
    free(p);
    return ok;
}

/* Steps of the complete checkpoints in out_dir, ascending; returns the count. */
static int list_checkpoints(const char *out_dir, long *steps, int cap) {
    DIR *d = opendir(out_dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        long s = step_of(e->d_name);
        if (s < 0 || n == cap) continue;
        char *p = pt_path_join(out_dir, e->d_name);
        if (p && complete(p)) steps[n++] = s;
        free(p);
    }
    closedir(d);
    for (int i = 1; i < n; i++) /* insertion sort: a handful of entries */
        for (int j = i; j > 0 && steps[j - 1] > steps[j]; j--) {
            long t = steps[j];
            steps[j] = steps[j - 1];
            steps[j - 1] = t;
        }
    return n;
}

pt_status pt_checkpoint_save(const char *out_dir, const pt_adapter *a, const pt_lora_params *ps, const pt_train_state *s,
                             const pt_train_config *cfg, int keep, char *saved_dir, size_t saved_size) {
    char name[64], tmp_name[80];
    snprintf(name, sizeof name, "checkpoint-%ld", s->step);
    snprintf(tmp_name, sizeof tmp_name, ".%s.tmp", name);
    char *final = pt_path_join(out_dir, name), *tmp = pt_path_join(out_dir, tmp_name);
    char *old = NULL;
    pt_status rc = final && tmp ? PT_OK : pt_error(PT_ERR_OOM, "out of memory");
    if (!rc) {
        remove_dir(tmp); /* a leftover of an interrupted write */
        rc = pt_mkdir_p(tmp);
    }
    if (!rc) rc = pt_adapter_save(a, tmp);
    if (!rc) rc = save_moments(tmp, ps);
    if (!rc) rc = save_state(tmp, s, cfg);
    if (!rc) {
        fsync_dir(tmp);
        if (pt_dir_exists(final)) { /* the same step saved before (a resumed run): set it aside first */
            size_t n = strlen(final) + 8;
            old = malloc(n);
            if (old) snprintf(old, n, "%s.old", final);
            if (old) remove_dir(old);
            if (!old || rename(final, old) != 0) rc = pt_error(PT_ERR_IO, "%s: cannot replace: %s", final, strerror(errno));
        }
    }
    if (!rc && rename(tmp, final) != 0) rc = pt_error(PT_ERR_IO, "%s: cannot rename into place: %s", final, strerror(errno));
    if (rc) {
        if (tmp) remove_dir(tmp);
        if (old && !pt_dir_exists(final)) rename(old, final);
        free(final), free(tmp), free(old);
        return pt_error_wrap(rc, "writing checkpoint %s: ", name);
    }
    fsync_dir(out_dir);
    if (old) remove_dir(old);
    char *latest = pt_path_join(out_dir, "latest");
    rc = latest ? pt_file_write_atomic(latest, name, strlen(name)) : pt_error(PT_ERR_OOM, "out of memory");
    free(latest);
    if (saved_dir) snprintf(saved_dir, saved_size, "%s", final);
    free(final), free(tmp), free(old);
    if (rc) return pt_error_wrap(rc, "writing checkpoint %s: ", name);
    long steps[4096];
    int n = list_checkpoints(out_dir, steps, 4096);
    for (int i = 0; i < n - keep; i++) {
        if (steps[i] == s->step) continue;
        snprintf(name, sizeof name, "checkpoint-%ld", steps[i]);
        char *p = pt_path_join(out_dir, name);
        if (p) remove_dir(p);
        free(p);
    }
    return PT_OK;
}

pt_status pt_checkpoint_find(const char *dir, char **ckpt_dir) {
    *ckpt_dir = NULL;
    if (!pt_dir_exists(dir)) return pt_error(PT_ERR_IO, "%s: no such directory to resume from", dir);
    if (complete(dir)) {
        *ckpt_dir = strdup(dir);
        return *ckpt_dir ? PT_OK : pt_error(PT_ERR_OOM, "out of memory");
    }
    /* The newest complete checkpoint: a directory only gets its final name once complete, and
     * `latest` is updated just after, so a run killed in between has a newer one than `latest`
     * names. */
    long steps[4096];
    int n = list_checkpoints(dir, steps, 4096);
    if (n == 0) return pt_error(PT_ERR_IO, "%s: no checkpoint to resume from (neither a checkpoint directory nor an output directory holding one)", dir);
    char nm[64];
    snprintf(nm, sizeof nm, "checkpoint-%ld", steps[n - 1]);
    *ckpt_dir = pt_path_join(dir, nm);
    return *ckpt_dir ? PT_OK : pt_error(PT_ERR_OOM, "out of memory");
}

static bool hex64(json_t *v, uint64_t *out) {
    if (!json_is_string(v)) return false;
    char *end;
    const char *s = json_string_value(v);
    errno = 0;
    *out = strtoull(s, &end, 16);
    return !errno && end != s && !*end;
}

typedef struct { json_t *conf; const pt_train_config *cfg; const char *path; pt_status rc; } cmp_ctx;

static void compare_key(void *user, const char *key) {
    cmp_ctx *c = user;
    if (c->rc) return;
    char now[512];
    pt_train_config_get(c->cfg, key, now, sizeof now);
    json_t *then = json_object_get(c->conf, key);
    if (!json_is_string(then))
        c->rc = pt_error(PT_ERR_FORMAT, "%s: the saved configuration lacks '%s'", c->path, key);
    else if (strcmp(json_string_value(then), now))
        c->rc = pt_error(PT_ERR_ARG, "cannot resume: %s is %s now but the checkpoint was made with %s (give the original run's settings)",
                         key, now, json_string_value(then));
}

pt_status pt_checkpoint_load_state(const char *ckpt_dir, const pt_train_config *cfg, pt_train_state *s) {
    memset(s, 0, sizeof *s);
    char *path = pt_path_join(ckpt_dir, "trainer_state.json");
    if (!path) return pt_error(PT_ERR_OOM, "out of memory");
    json_error_t err;
    json_t *o = json_load_file(path, 0, &err);
    if (!o) {
        pt_status rc = pt_error(PT_ERR_FORMAT, "%s: line %d: %s", path, err.line, err.text);
        free(path);
        return rc;
    }
    pt_status rc = PT_OK;
    json_t *step = json_object_get(o, "step"), *epoch = json_object_get(o, "epoch"), *cursor = json_object_get(o, "cursor"),
           *rng = json_object_get(o, "rng_epoch"), *tokens = json_object_get(o, "tokens"), *el = json_object_get(o, "elapsed_s");
    if (!json_is_integer(step) || !json_is_integer(epoch) || !json_is_integer(cursor) || json_array_size(rng) != 4 ||
        json_integer_value(step) < 0 || json_integer_value(cursor) < 0 || json_integer_value(epoch) < 0 ||
        !hex64(json_object_get(o, "data_hash"), &s->data_hash))
        rc = pt_error(PT_ERR_FORMAT, "%s: not a politune trainer state (step, epoch, cursor, rng_epoch, data_hash)", path);
    for (int i = 0; i < 4 && !rc; i++)
        if (!hex64(json_array_get(rng, i), &s->rng_epoch.s[i])) rc = pt_error(PT_ERR_FORMAT, "%s: bad rng_epoch", path);
    if (!rc) {
        s->step = (long)json_integer_value(step);
        s->epoch = (int)json_integer_value(epoch);
        s->cursor = (long)json_integer_value(cursor);
        s->tokens = json_is_integer(tokens) ? (long)json_integer_value(tokens) : 0;
        s->elapsed_s = json_is_number(el) ? json_number_value(el) : 0;
        cmp_ctx c = {json_object_get(o, "config"), cfg, path, PT_OK};
        if (!json_is_object(c.conf)) rc = pt_error(PT_ERR_FORMAT, "%s: no saved configuration", path);
        else {
            pt_train_config_each_trajectory_key(compare_key, &c);
            rc = c.rc;
        }
    }
    json_decref(o);
    free(path);
    return rc;
}

pt_status pt_checkpoint_load_moments(const char *ckpt_dir, pt_lora_params *ps) {
    char *path = pt_path_join(ckpt_dir, "optimizer.safetensors");
    if (!path) return pt_error(PT_ERR_OOM, "out of memory");
    pt_safetensors st;
    pt_status rc = pt_safetensors_open(&st, path);
    int64_t off = 0;
    for (int i = 0; i < ps->n && !rc; off += ps->numel[i], i++)
        for (int k = 0; k < 2 && !rc; k++) {
            char name[192];
            snprintf(name, sizeof name, "%s.%s", k ? "exp_avg_sq" : "exp_avg", ps->key[i]);
            const pt_tensor_view *t = pt_safetensors_find(&st, name);
            if (!t || t->dtype != PT_F32 || pt_tensor_numel(t) != ps->numel[i])
                rc = pt_error(PT_ERR_FORMAT, "%s: tensor '%s' missing or not F32 of %lld elements", path, name, (long long)ps->numel[i]);
            else memcpy((k ? ps->v : ps->m) + off, t->data, sizeof(float) * ps->numel[i]);
        }
    pt_safetensors_close(&st);
    free(path);
    return rc;
}
