/* JSON Lines reading and resumable appending (see jsonl.h). */
#include "data/jsonl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/file.h"

void pt_jsonl_reader_init(pt_jsonl_reader *r, const char *text, size_t len, const char *label) {
    memset(r, 0, sizeof *r);
    r->text = text;
    r->len = len;
    r->line = 1;
    r->label = label ? label : "jsonl";
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) r->pos = 3;
}

static bool blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return false;
    return true;
}

pt_status pt_jsonl_next(pt_jsonl_reader *r, json_t **obj, int *line, bool *got) {
    *got = false;
    *obj = NULL;
    while (r->pos < r->len) {
        const char *s = r->text + r->pos;
        const char *nl = memchr(s, '\n', r->len - r->pos);
        size_t n = nl ? (size_t)(nl - s) : r->len - r->pos;
        int here = r->line;
        r->pos += n + (nl != NULL);
        r->line++;
        if (blank(s, n)) continue;
        *line = here;
        json_error_t e;
        json_t *o = json_loadb(s, n, JSON_REJECT_DUPLICATES, &e);
        if (!o) return pt_error(PT_ERR_FORMAT, "%s:%d: not valid JSON: %s (column %d)", r->label, here, e.text, e.column);
        if (!json_is_object(o)) {
            json_decref(o);
            return pt_error(PT_ERR_FORMAT, "%s:%d: a record must be a JSON object", r->label, here);
        }
        *obj = o;
        *got = true;
        return PT_OK;
    }
    return PT_OK;
}

pt_status pt_jsonl_read_all(const char *path, json_t **records) {
    *records = NULL;
    char *text = NULL;
    size_t len = 0;
    PT_TRY(pt_file_read_all(path, &text, &len));
    pt_jsonl_reader r;
    pt_jsonl_reader_init(&r, text, len, path);
    json_t *arr = json_array();
    pt_status st = arr ? PT_OK : pt_error(PT_ERR_OOM, "out of memory");
    for (;;) {
        json_t *o;
        int line;
        bool got;
        if (st || (st = pt_jsonl_next(&r, &o, &line, &got)) || !got) break;
        json_array_append_new(arr, o);
    }
    free(text);
    if (st) {
        json_decref(arr);
        return st;
    }
    *records = arr;
    return PT_OK;
}

pt_status pt_jsonl_index(const char *path, const char *key, json_t **by_key) {
    json_t *all;
    *by_key = NULL;
    PT_TRY(pt_jsonl_read_all(path, &all));
    json_t *idx = json_object();
    for (size_t i = 0; idx && i < json_array_size(all); i++) {
        json_t *rec = json_array_get(all, i);
        const char *k = json_string_value(json_object_get(rec, key));
        if (k) json_object_set(idx, k, rec);
    }
    json_decref(all);
    if (!idx) return pt_error(PT_ERR_OOM, "out of memory");
    *by_key = idx;
    return PT_OK;
}

char *pt_jsonl_dump(const json_t *rec) { return json_dumps(rec, JSON_COMPACT | JSON_REAL_PRECISION(10)); }

pt_status pt_jsonl_out_open(pt_jsonl_out *o, const char *path, const char *key, bool restart) {
    memset(o, 0, sizeof *o);
    pt_idset_init(&o->done);
    if (!(o->path = strdup(path))) return pt_error(PT_ERR_OOM, "out of memory");
    if (!restart && pt_file_exists(path)) {
        char *text = NULL;
        size_t len = 0;
        pt_status st = pt_file_read_all(path, &text, &len);
        if (st) { pt_jsonl_out_close(o); return st; }
        size_t keep = len;
        while (keep > 0 && text[keep - 1] != '\n') keep--;
        o->dropped_partial = (long)(len - keep);
        pt_jsonl_reader rd;
        pt_jsonl_reader_init(&rd, text, keep, path);
        for (;;) {
            json_t *rec;
            int line;
            bool got;
            st = pt_jsonl_next(&rd, &rec, &line, &got);
            if (st || !got) break;
            const char *k = json_string_value(json_object_get(rec, key));
            if (!k) st = pt_error(PT_ERR_FORMAT, "%s:%d: existing output record has no string '%s'", path, line, key);
            else if (pt_idset_add(&o->done, k) < 0) st = pt_error(PT_ERR_OOM, "out of memory");
            json_decref(rec);
            if (st) break;
            o->n_existing++;
        }
        free(text);
        if (st) {
            pt_error_wrap(st, "cannot resume (move the file away or start over with --restart): ");
            pt_jsonl_out_close(o);
            return st;
        }
        if (o->dropped_partial && truncate(path, (off_t)keep) != 0) {
            st = pt_error(PT_ERR_IO, "%s: cannot drop the unfinished last line: %s", path, strerror(errno));
            pt_jsonl_out_close(o);
            return st;
        }
        o->f = fopen(path, "ab");
    } else {
        o->f = fopen(path, "wb");
    }
    if (!o->f) {
        pt_status st = pt_error(PT_ERR_IO, "%s: cannot open for writing: %s", path, strerror(errno));
        pt_jsonl_out_close(o);
        return st;
    }
    return PT_OK;
}

pt_status pt_jsonl_out_write(pt_jsonl_out *o, const json_t *rec) {
    char *s = pt_jsonl_dump(rec);
    if (!s) return pt_error(PT_ERR_OOM, "out of memory");
    size_t n = strlen(s);
    char *line = malloc(n + 1);
    if (!line) { free(s); return pt_error(PT_ERR_OOM, "out of memory"); }
    memcpy(line, s, n);
    line[n] = '\n';
    free(s);
    bool ok = fwrite(line, 1, n + 1, o->f) == n + 1 && fflush(o->f) == 0;
    free(line);
    if (!ok) return pt_error(PT_ERR_IO, "%s: write failed: %s", o->path, strerror(errno));
    return PT_OK;
}

pt_status pt_jsonl_out_sync(pt_jsonl_out *o) {
    if (!o->f) return PT_OK;
    if (fflush(o->f) != 0 || fsync(fileno(o->f)) != 0) return pt_error(PT_ERR_IO, "%s: flush failed: %s", o->path, strerror(errno));
    return PT_OK;
}

pt_status pt_jsonl_out_close(pt_jsonl_out *o) {
    pt_status st = PT_OK;
    if (o->f) {
        st = pt_jsonl_out_sync(o);
        if (fclose(o->f) != 0 && !st) st = pt_error(PT_ERR_IO, "%s: close failed: %s", o->path, strerror(errno));
    }
    pt_idset_free(&o->done);
    free(o->path);
    memset(o, 0, sizeof *o);
    return st;
}
