/* Stage manifests and input hashing (see run_manifest.h). */
#include "pipeline/manifest.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "politune.h"
#include "pipeline/fs.h"
#include "util/file.h"
#include "util/sha256.h"

/* Hashes already computed in this process, by path and fingerprint: a model read by every
 * train and compass stage is hashed once. */
typedef struct memo {
    char *path, *fp;
    char sha[PT_SHA256_HEX];
    struct memo *next;
} memo;
static memo *memos;

static const char *memo_get(const char *path, const char *fp) {
    for (memo *m = memos; m; m = m->next)
        if (!strcmp(m->path, path) && !strcmp(m->fp, fp)) return m->sha;
    return NULL;
}

static void memo_put(const char *path, const char *fp, const char *sha) {
    memo *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path)) || !(m->fp = strdup(fp))) {
        if (m) free(m->path);
        free(m);
        return; /* only a cache */
    }
    memcpy(m->sha, sha, PT_SHA256_HEX);
    m->next = memos;
    memos = m;
}

static void file_fp(const struct stat *st, char *fp, size_t n) {
    snprintf(fp, n, "%lld:%lld.%09ld:%llu", (long long)st->st_size, (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec,
             (unsigned long long)st->st_ino);
}

static pt_status file_sha(const char *path, const char *fp, char sha[PT_SHA256_HEX]) {
    const char *m = memo_get(path, fp);
    if (m) {
        memcpy(sha, m, PT_SHA256_HEX);
        return PT_OK;
    }
    PT_TRY(pt_sha256_file(path, sha));
    memo_put(path, fp, sha);
    return PT_OK;
}

/* A directory's files, recursively, sorted, hidden ones left out: "rel\tvalue\n" lines, the
 * value being each file's fingerprint (want_sha false) or hash. */
static pt_status dir_lines(const char *root, const char *rel, bool want_sha, pt_sha256 *h, int depth) {
    char *dir = *rel ? pt_path_join(root, rel) : strdup(root);
    if (!dir) return pt_error(PT_ERR_OOM, "out of memory");
    struct dirent **ents = NULL;
    int n = scandir(dir, &ents, NULL, alphasort);
    if (n < 0) {
        pt_status st = pt_error(PT_ERR_IO, "%s: cannot list the directory", dir);
        free(dir);
        return st;
    }
    pt_status st = PT_OK;
    for (int i = 0; i < n; i++) {
        const char *nm = ents[i]->d_name;
        if (!st && nm[0] != '.') {
            char r[4096], *p = pt_path_join(dir, nm);
            snprintf(r, sizeof r, "%s%s%s", rel, *rel ? "/" : "", nm);
            struct stat sb;
            if (!p) st = pt_error(PT_ERR_OOM, "out of memory");
            else if (stat(p, &sb)) st = pt_error(PT_ERR_IO, "%s: cannot read", p);
            else if (S_ISDIR(sb.st_mode) && depth < 8) st = dir_lines(root, r, want_sha, h, depth + 1);
            else if (S_ISREG(sb.st_mode)) {
                char fp[96], sha[PT_SHA256_HEX];
                file_fp(&sb, fp, sizeof fp);
                if (want_sha) st = file_sha(p, fp, sha);
                const char *v = want_sha ? sha : fp;
                pt_sha256_update(h, r, strlen(r));
                pt_sha256_update(h, "\t", 1);
                pt_sha256_update(h, v, strlen(v));
                pt_sha256_update(h, "\n", 1);
            }
            free(p);
        }
        free(ents[i]);
    }
    free(ents);
    free(dir);
    return st;
}

static pt_status dir_digest(const char *path, bool want_sha, char out[PT_SHA256_HEX]) {
    pt_sha256 *h;
    PT_TRY(pt_sha256_begin(&h));
    pt_status st = dir_lines(path, "", want_sha, h, 0);
    pt_sha256_end(h, out);
    return st;
}

/* Hash and fingerprint of a file or directory, reusing prev's hash when its path and
 * fingerprint match. */
static pt_status digest(const char *path, json_t *prev, char sha[PT_SHA256_HEX], char fp[96]) {
    struct stat sb;
    if (stat(path, &sb)) return pt_error(PT_ERR_IO, "%s: not found", path);
    if (S_ISDIR(sb.st_mode)) {
        char d[PT_SHA256_HEX];
        PT_TRY(dir_digest(path, false, d));
        snprintf(fp, 96, "dir:%s", d);
    } else {
        file_fp(&sb, fp, 96);
    }
    const char *pp = json_string_value(json_object_get(prev, "path")), *pf = json_string_value(json_object_get(prev, "fingerprint")),
               *ps = json_string_value(json_object_get(prev, "sha256"));
    if (pp && pf && ps && !strcmp(pp, path) && !strcmp(pf, fp) && strlen(ps) == PT_SHA256_HEX - 1) {
        memcpy(sha, ps, PT_SHA256_HEX);
        return PT_OK;
    }
    if (S_ISDIR(sb.st_mode)) return dir_digest(path, true, sha);
    return file_sha(path, fp, sha);
}

pt_status pt_run_manifest_inputs(const pt_run_stage *s, const char *run_dir, json_t *prev, bool *present, json_t **inputs) {
    *inputs = json_object();
    if (!*inputs) return pt_error(PT_ERR_OOM, "out of memory");
    json_t *pin = json_object_get(prev, "inputs");
    pt_status st = PT_OK;
    for (int i = 0; i < s->n_in && !st; i++) {
        const pt_run_stage_input *in = &s->in[i];
        char *abs = pt_run_abs(run_dir, in->file);
        if (!abs) { st = pt_error(PT_ERR_OOM, "out of memory"); break; }
        present[i] = pt_file_exists(abs) || pt_dir_exists(abs);
        if (!present[i]) {
            if (!in->optional) st = pt_error(PT_ERR_IO, "stage %s: its input %s (%s) is missing", s->title, in->role, abs);
            free(abs);
            continue;
        }
        char sha[PT_SHA256_HEX], fp[96];
        st = digest(abs, json_object_get(pin, in->role), sha, fp);
        if (!st) {
            json_t *e = json_pack("{s:s, s:s, s:s}", "path", abs, "sha256", sha, "fingerprint", fp);
            if (!e || json_object_set_new(*inputs, in->role, e)) st = pt_error(PT_ERR_OOM, "out of memory");
        }
        free(abs);
    }
    if (st) {
        json_decref(*inputs);
        *inputs = NULL;
    }
    return st;
}

json_t *pt_run_manifest_load(const char *dir) {
    char *p = pt_path_join(dir, "manifest.json");
    json_t *m = p && pt_file_exists(p) ? json_load_file(p, 0, NULL) : NULL;
    free(p);
    if (m && (!json_is_object(m) || !json_is_string(json_object_get(m, "format")) ||
              strcmp(json_string_value(json_object_get(m, "format")), PT_RUN_MANIFEST_FORMAT))) {
        json_decref(m);
        m = NULL;
    }
    return m;
}

/* Same roles with the same hashes. */
static bool same_inputs(json_t *a, json_t *b) {
    if (!json_is_object(a) || !json_is_object(b) || json_object_size(a) != json_object_size(b)) return false;
    const char *k;
    json_t *v;
    json_object_foreach(a, k, v) {
        const char *x = json_string_value(json_object_get(v, "sha256")), *y = json_string_value(json_object_get(json_object_get(b, k), "sha256"));
        if (!x || !y || strcmp(x, y)) return false;
    }
    return true;
}

bool pt_run_manifest_same_work(json_t *m, const pt_run_stage *s, json_t *inputs) {
    const char *v = json_string_value(json_object_get(m, "version"));
    return m && v && !strcmp(v, PT_VERSION) && json_equal(json_object_get(m, "parameters"), s->params) &&
           same_inputs(json_object_get(m, "inputs"), inputs);
}

bool pt_run_manifest_current(json_t *m, const pt_run_stage *s, json_t *inputs, const char *run_dir, const char **why) {
    if (!m) { *why = "not run yet"; return false; }
    if (!json_is_true(json_object_get(m, "completed"))) { *why = "interrupted"; return false; }
    const char *v = json_string_value(json_object_get(m, "version"));
    if (!v || strcmp(v, PT_VERSION)) { *why = "another politune version made it"; return false; }
    if (!json_equal(json_object_get(m, "parameters"), s->params)) { *why = "parameters changed"; return false; }
    if (!same_inputs(json_object_get(m, "inputs"), inputs)) { *why = "inputs changed"; return false; }
    for (int i = 0; i < s->n_out; i++) {
        if (s->out[i].optional) continue;
        char *p = pt_run_abs(run_dir, s->out[i].path);
        bool ok = p && pt_file_exists(p);
        free(p);
        if (!ok) { *why = "outputs missing"; return false; }
    }
    return true;
}

static void now_iso(char *buf, size_t n) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

json_t *pt_run_manifest_start(const pt_run_stage *s, json_t *inputs, const pt_run_args *cmd, const char *run_dir, bool resumed) {
    char *line = pt_run_args_shell(cmd), when[32];
    now_iso(when, sizeof when);
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    json_t *argv = json_array();
    for (int i = 0; argv && i < cmd->n; i++) json_array_append_new(argv, json_string(cmd->v[i]));
    json_t *m = line && argv ? json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:O, s:O, s:b, s:s, s:b}", "format", PT_RUN_MANIFEST_FORMAT,
                                         "stage", pt_run_kind_names[s->kind], "instance", s->instance, "title", s->title, "tool", "politune",
                                         "version", PT_VERSION, "binary", exe, "cwd", run_dir, "argv", argv, "parameters", s->params,
                                         "inputs", inputs, "resumed", resumed, "started", when, "completed", 0)
                             : NULL;
    if (m) json_object_set_new(m, "command", json_string(line));
    else json_decref(argv);
    free(line);
    return m;
}

pt_status pt_run_manifest_finish(json_t *m, const pt_run_stage *s, const char *run_dir, double seconds, const char *summary) {
    json_t *outs = json_object();
    if (!outs) return pt_error(PT_ERR_OOM, "out of memory");
    pt_status st = PT_OK;
    for (int i = 0; i < s->n_out && !st; i++) {
        char *p = pt_run_abs(run_dir, s->out[i].path);
        if (!p) { st = pt_error(PT_ERR_OOM, "out of memory"); break; }
        if (!pt_file_exists(p)) {
            if (!s->out[i].optional) st = pt_error(PT_ERR_IO, "stage %s finished without writing %s", s->title, p);
            free(p);
            continue;
        }
        char sha[PT_SHA256_HEX];
        struct stat sb;
        st = pt_sha256_file(p, sha);
        if (!st && !stat(p, &sb)) json_object_set_new(outs, s->out[i].path, json_pack("{s:s, s:I}", "sha256", sha, "bytes", (json_int_t)sb.st_size));
        free(p);
    }
    if (st) { json_decref(outs); return st; }
    char when[32];
    now_iso(when, sizeof when);
    json_object_set_new(m, "outputs", outs);
    json_object_set_new(m, "finished", json_string(when));
    json_object_set_new(m, "seconds", json_real(seconds));
    json_object_set_new(m, "completed", json_true());
    json_t *sum = summary ? json_loads(summary, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
    if (sum) json_object_set_new(m, "summary", sum);
    return PT_OK;
}

pt_status pt_run_manifest_save(const char *dir, json_t *m) {
    char *s = json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    char *p = pt_path_join(dir, "manifest.json");
    pt_status st = s && p ? PT_OK : pt_error(PT_ERR_OOM, "out of memory");
    if (!st) {
        size_t n = strlen(s);
        char *t = realloc(s, n + 2);
        if (t) {
            s = t;
            s[n] = '\n';
            s[n + 1] = 0;
        }
        st = pt_file_write_atomic(p, s, strlen(s));
    }
    free(s);
    free(p);
    return st;
}
