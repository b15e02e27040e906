/* The pairs stage of `politune run` (`politune run --make-pairs`, whose options the CLI
 * parses in tools/politune/run_pairs.c): a seeded sample of
 * preference pairs from one or more files, mixed in given proportions (left75 = 75% from the
 * left pairs, 25% from the right ones), written as JSONL that `politune train` reads. The
 * records are copied as they are: PoliTune chat JSON pairs or prompt/chosen/rejected lines.
 * With --heldout N it also draws N more pairs, in the same proportions, from the records the
 * sample left (and unequal to any it took): the held-out set `politune train --eval-data`
 * evaluates. They come from a generator of their own, so the training sample is the one a run
 * without them draws unless the files are too small for both.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/jsonl.h"
#include "pipeline/pairs.h"
#include "util/file.h"
#include "util/rng.h"

#define MAX_SRC PT_PAIRS_MAX_FILES

/* A JSON array file or JSONL, as an array of objects. */
static pt_status load_records(const char *path, json_t **out) {
    char *text = NULL;
    size_t len;
    PT_TRY(pt_file_read_all(path, &text, &len));
    size_t i = strspn(text, " \t\r\n");
    pt_status st = PT_OK;
    if (text[i] == '[') {
        json_error_t e;
        *out = json_loadb(text, len, 0, &e);
        if (!*out) st = pt_error(PT_ERR_FORMAT, "%s:%d: invalid JSON: %s", path, e.line, e.text);
    } else {
        st = pt_jsonl_read_all(path, out);
    }
    free(text);
    if (st) return st;
    for (size_t k = 0; k < json_array_size(*out); k++)
        if (!json_is_object(json_array_get(*out, k))) {
            json_decref(*out);
            *out = NULL;
            return pt_error(PT_ERR_FORMAT, "%s: record %zu is not a JSON object", path, k + 1);
        }
    return PT_OK;
}

/* Largest-remainder shares of n by weights w. */
static void shares(long n, const double *w, int k, long *out) {
    long given = 0;
    double rem[MAX_SRC];
    for (int i = 0; i < k; i++) {
        double x = n * w[i];
        out[i] = (long)x;
        rem[i] = x - out[i];
        given += out[i];
    }
    for (; given < n; given++) {
        int best = 0;
        for (int i = 1; i < k; i++)
            if (rem[i] > rem[best]) best = i;
        out[best]++;
        rem[best] = -1;
    }
}

static size_t pick(pt_rng *r, size_t n) {
    size_t x = (size_t)(pt_rng_double(r) * (double)n);
    return x < n ? x : n - 1;
}

/* Appends one compact line per record to a JSONL file written whole. */
static pt_status write_jsonl(const char *path, json_t *records) {
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    pt_status st = buf ? PT_OK : pt_error(PT_ERR_OOM, "out of memory");
    for (size_t j = 0; j < json_array_size(records) && !st; j++) {
        char *line = json_dumps(json_array_get(records, j), JSON_COMPACT | JSON_PRESERVE_ORDER);
        size_t ln = line ? strlen(line) : 0;
        if (line && len + ln + 2 > cap) {
            while (len + ln + 2 > cap) cap *= 2;
            char *b = realloc(buf, cap);
            if (b) buf = b;
            else { free(line); line = NULL; }
        }
        if (!line) { st = pt_error(PT_ERR_OOM, "out of memory"); break; }
        memcpy(buf + len, line, ln);
        len += ln;
        buf[len++] = '\n';
        free(line);
    }
    if (!st) st = pt_file_write_atomic(path, buf, len);
    free(buf);
    return st;
}

static bool contains(json_t *records, json_t *r) {
    for (size_t j = 0; j < json_array_size(records); j++)
        if (json_equal(json_array_get(records, j), r)) return true;
    return false;
}

/* A seeded shuffle of the whole array. */
static void shuffle(json_t *a, pt_rng *rng) {
    size_t total = json_array_size(a);
    for (size_t j = 0; j + 1 < total; j++) {
        size_t r = j + pick(rng, total - j);
        json_t *x = json_incref(json_array_get(a, j)), *y = json_incref(json_array_get(a, r));
        json_array_set_new(a, j, y);
        json_array_set_new(a, r, x);
    }
}

static void note(const pt_pairs_request *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(const pt_pairs_request *q, const char *fmt, ...) {
    if (!q->note) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    q->note(q->user, msg);
}

/* Sample sizes per file: the held-out shares set aside first, then the largest sample the
 * proportions allow (or `count`, when the files hold it). */
static pt_status plan_sizes(const pt_pairs_request *q, const double *w, json_t **src, long *take, long *hold) {
    const int k = q->n_files;
    if (q->heldout) shares(q->heldout, w, k, hold);
    for (int i = 0; i < k && q->heldout; i++)
        if (hold[i] >= (long)json_array_size(src[i]))
            return pt_error(PT_ERR_ARG, "%s holds %zu pairs: not enough for %ld held-out ones and a sample", q->files[i], json_array_size(src[i]),
                            hold[i]);
    long avail = -1;
    for (int i = 0; i < k; i++) {
        long a = (long)((double)((long)json_array_size(src[i]) - hold[i]) / w[i] + 1e-9);
        if (avail < 0 || a < avail) avail = a;
    }
    long n = q->count ? q->count : avail;
    if (n > avail) {
        note(q, "%ld pairs asked for, but the files hold enough for %ld in these proportions%s; taking %ld", n, avail,
             q->heldout ? " besides the held-out ones" : "", avail);
        n = avail;
    }
    shares(n, w, k, take);
    for (int i = 0; i < k; i++)
        if (take[i] > (long)json_array_size(src[i])) take[i] = (long)json_array_size(src[i]); /* rounding at the edge */
    return PT_OK;
}

/* A partial Fisher-Yates shuffle per file into `all`, then one over the mix; idx[i] keeps
 * each file's order for the held-out draw. */
static pt_status draw_sample(int k, json_t **src, const long *take, size_t **idx, pt_rng *rng, json_t *all) {
    for (int i = 0; i < k; i++) {
        size_t m = json_array_size(src[i]);
        if (!(idx[i] = malloc(sizeof *idx[i] * (m ? m : 1)))) return pt_error(PT_ERR_OOM, "out of memory (%zu bytes)", sizeof *idx[i] * (m ? m : 1));
        for (size_t j = 0; j < m; j++) idx[i][j] = j;
        for (long j = 0; j < take[i]; j++) {
            size_t r = (size_t)j + pick(rng, m - (size_t)j), t = idx[i][j];
            idx[i][j] = idx[i][r];
            idx[i][r] = t;
            json_array_append(all, json_array_get(src[i], idx[i][j]));
        }
    }
    if (k > 1) shuffle(all, rng);
    return PT_OK;
}

/* The held-out pairs continue each file's shuffle past the sample, from their own stream; a
 * record equal to one already taken (a duplicate in the file) is passed over. */
static void draw_heldout(const pt_pairs_request *q, json_t **src, const long *take, const long *hold, size_t **idx, json_t *all,
                         json_t *held) {
    const int k = q->n_files;
    pt_rng hrng;
    pt_rng_seed(&hrng, q->seed ^ 0x6865c64f7574ULL);
    for (int i = 0; i < k; i++) {
        size_t m = json_array_size(src[i]), j = (size_t)take[i];
        long got = 0;
        for (; got < hold[i] && j < m; j++) {
            size_t r = j + pick(&hrng, m - j), t = idx[i][j];
            idx[i][j] = idx[i][r];
            idx[i][r] = t;
            json_t *rec = json_array_get(src[i], idx[i][j]);
            if (contains(all, rec) || contains(held, rec)) continue;
            json_array_append(held, rec);
            got++;
        }
        if (got < hold[i]) note(q, "%s: only %ld pairs not in the sample for the %ld held-out ones asked for", q->files[i], got, hold[i]);
    }
    if (k > 1) shuffle(held, &hrng);
}

pt_status pt_pairs_sample(const pt_pairs_request *q, pt_pairs_result *res) {
    memset(res, 0, sizeof *res);
    const int k = q->n_files;
    if (k < 1 || k > MAX_SRC) return pt_error(PT_ERR_ARG, "%d files of pairs: give 1 to %d", k, MAX_SRC);
    double w[MAX_SRC], sum = 0;
    for (int i = 0; i < k; i++) sum += w[i] = q->weights ? q->weights[i] : 1;
    for (int i = 0; i < k; i++) w[i] /= sum;
    json_t *src[MAX_SRC] = {0};
    size_t *idx[MAX_SRC] = {0};
    long take[MAX_SRC] = {0}, hold[MAX_SRC] = {0};
    pt_status st = PT_OK;
    for (int i = 0; i < k && !st; i++) st = load_records(q->files[i], &src[i]);
    if (!st) st = plan_sizes(q, w, src, take, hold);
    pt_rng rng;
    pt_rng_seed(&rng, q->seed);
    json_t *all = json_array(), *held = json_array();
    if (!st && (!all || !held)) st = pt_error(PT_ERR_OOM, "out of memory");
    if (!st) st = draw_sample(k, src, take, idx, &rng, all);
    if (!st && q->heldout) draw_heldout(q, src, take, hold, idx, all, held);
    res->total = json_array_size(all);
    res->n_held = json_array_size(held);
    if (!st && res->total == 0) st = pt_error(PT_ERR_FORMAT, "no pairs to write: the files hold %s", k > 1 ? "too few pairs for these proportions" : "no records");
    if (!st && q->heldout && res->n_held == 0) st = pt_error(PT_ERR_FORMAT, "no held-out pairs: the sample took every distinct pair");
    if (!st) st = write_jsonl(q->out, all);
    if (!st && q->heldout) st = write_jsonl(q->heldout_out, held);
    for (int i = 0; i < k; i++) {
        res->available[i] = json_array_size(src[i]);
        res->taken[i] = take[i];
    }
    json_decref(all);
    json_decref(held);
    for (int i = 0; i < k; i++) json_decref(src[i]), free(idx[i]);
    return st;
}
