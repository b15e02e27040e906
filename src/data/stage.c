/* The run loop every data stage shares (see stage_impl.h and pipeline.h). */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/jsonl.h"
#include "data/stage_impl.h"
#include "dist/dist.h"
#include "util/clock.h"

void pt_stage_summary_format(const pt_stage_summary *s, const char *stage, char *buf, size_t n) {
    double rate = s->seconds > 0 ? s->done / s->seconds : 0;
    snprintf(buf, n,
             "%s: %ld in, %ld to do, %ld judged now (%ld resumed), %ld kept, %ld dropped, %ld invalid, %ld bad input, %ld duplicate%s, "
             "%ld failed, %ld retries, %ld requests, %.1f s (%.2f records/s)",
             stage, s->in, s->wanted, s->done, s->resumed, s->kept, s->dropped, s->invalid, s->bad, s->dup, s->dup == 1 ? "" : "s", s->failed,
             s->retried, s->requests, s->seconds, rate);
    size_t len = strlen(buf);
    if (s->swap_checked > 0 && len < n)
        snprintf(buf + len, n - len, "; swap check: %ld of %ld disagree (%.1f%%)", s->swap_disagree, s->swap_checked,
                 100.0 * (double)s->swap_disagree / (double)s->swap_checked);
}

pt_status pt_stage_batch_init(pt_stage_batch *b, int n) {
    b->n = n;
    b->reqs = calloc((size_t)n, sizeof *b->reqs);
    b->rep = calloc((size_t)n, sizeof *b->rep);
    b->texts = calloc((size_t)n, sizeof *b->texts);
    b->whats = calloc((size_t)n, sizeof *b->whats);
    if (b->reqs && b->rep && b->texts && b->whats) return PT_OK;
    pt_stage_batch_free(b);
    return pt_error(PT_ERR_OOM, "out of memory");
}

void pt_stage_batch_free(pt_stage_batch *b) {
    for (int k = 0; k < b->n; k++) {
        if (b->rep) pt_judge_reply_free(&b->rep[k]);
        if (b->texts) free(b->texts[k]);
        if (b->whats) free(b->whats[k]);
    }
    free(b->reqs), free(b->rep), free(b->texts), free(b->whats);
    memset(b, 0, sizeof *b);
}

uint64_t pt_stage_seed(const char *id, const char *purpose) {
    uint64_t h = pt_data_hash(id, strlen(id), 7);
    return pt_data_hash(purpose, strlen(purpose), h);
}

void pt_stage_where(char *buf, size_t n, const char *label, const pt_record *r) {
    snprintf(buf, n, "%s:%d (id %s)", label, r->line, r->id);
}

char *pt_stage_invalid_note(const char *where, const char *what, const char *expected, const char *reply) {
    char snip[84];
    size_t k = 0;
    for (const char *p = reply ? reply : ""; *p && k < 80; p++) snip[k++] = *p == '\n' ? ' ' : *p;
    /* do not cut a UTF-8 character in half */
    while (k > 0 && ((unsigned char)snip[k - 1] & 0xC0) == 0x80) k--;
    if (k > 0 && ((unsigned char)snip[k - 1] & 0xC0) == 0xC0) k--;
    snip[k] = 0;
    char *s = NULL;
    if (asprintf(&s, "%s: judge reply for %s is not %s: '%s%s'", where, what, expected, snip, reply && strlen(reply) > k ? "..." : "") < 0)
        return NULL;
    return s;
}

double pt_stage_label_value(const pt_judge_reply *r, int n_labels) {
    if (r->probs) {
        double v = 0;
        for (int k = 0; k < n_labels; k++) v += r->probs[k] * (k + 1);
        return v;
    }
    return r->label >= 0 ? r->label + 1 : NAN;
}

json_t *pt_stage_real(double v) {
    if (!isfinite(v)) return json_null();
    return json_real(round(v * 1e6) / 1e6);
}

json_t *pt_stage_probs_json(const pt_judge_reply *r, int n_labels) {
    if (!r->probs) return json_null();
    json_t *a = json_array();
    for (int k = 0; k < n_labels; k++) json_array_append_new(a, pt_stage_real(r->probs[k]));
    return a;
}

static void note(const pt_stage_hooks *h, const char *msg) {
    if (h && h->note && msg && pt_dist_rank() == 0) h->note(h->user, msg);
}

/* ---- several ranks (dist/dist.h) ------------------------------------------------------------
 * Every rank judges a contiguous part of each window; rank 0 receives the others' outputs and
 * writes the window in order, as one process would. An output travels as text: outcome,
 * swap, then the record, the side line and the note, each a length (-1: none) and bytes. */

typedef struct { char *v; size_t n, cap; } blob;

static bool blob_put(blob *b, const void *p, size_t n) {
    if (n == 0) return true; /* an empty blob has no buffer, and memcpy takes none */
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) cap *= 2;
        char *v = realloc(b->v, cap);
        if (!v) return false;
        b->v = v, b->cap = cap;
    }
    memcpy(b->v + b->n, p, n);
    b->n += n;
    return true;
}

static bool blob_str(blob *b, const char *s) {
    int64_t n = s ? (int64_t)strlen(s) : -1;
    return blob_put(b, &n, sizeof n) && (!s || blob_put(b, s, (size_t)n));
}

static bool blob_json(blob *b, const json_t *j) {
    /* 17 digits: the numbers reach rank 0 exactly as they were */
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17)) : NULL;
    if (j && !s) return false;
    bool ok = blob_str(b, s);
    free(s);
    return ok;
}

static pt_status pack_outs(blob *b, const pt_stage_out *outs, int n) {
    b->n = 0;
    for (int i = 0; i < n; i++) {
        int32_t head[2] = {outs[i].outcome, outs[i].swap};
        if (!blob_put(b, head, sizeof head) || !blob_json(b, outs[i].rec) || !blob_json(b, outs[i].side) || !blob_str(b, outs[i].note))
            return pt_error(PT_ERR_OOM, "out of memory");
    }
    return PT_OK;
}

/* Reads one string of a packed output: *s malloc'd or NULL; false when the bytes run out. */
static bool take_str(const char **p, const char *end, char **s) {
    int64_t n;
    *s = NULL;
    if (end - *p < (ptrdiff_t)sizeof n) return false;
    memcpy(&n, *p, sizeof n);
    *p += sizeof n;
    if (n < 0) return true;
    if (end - *p < n || !(*s = malloc((size_t)n + 1))) return false;
    memcpy(*s, *p, (size_t)n);
    (*s)[n] = 0;
    *p += n;
    return true;
}

static pt_status unpack_outs(const char *p, size_t len, pt_stage_out *outs, int n) {
    const char *end = p + len;
    for (int i = 0; i < n; i++) {
        int32_t head[2];
        char *rec = NULL, *side = NULL;
        bool ok = end - p >= (ptrdiff_t)sizeof head;
        if (ok) memcpy(head, p, sizeof head), p += sizeof head;
        ok = ok && take_str(&p, end, &rec) && take_str(&p, end, &side) && take_str(&p, end, &outs[i].note);
        if (ok) {
            outs[i].outcome = head[0], outs[i].swap = head[1];
            outs[i].rec = rec ? json_loads(rec, JSON_DECODE_ANY, NULL) : NULL;
            outs[i].side = side ? json_loads(side, JSON_DECODE_ANY, NULL) : NULL;
            ok = (!rec || outs[i].rec) && (!side || outs[i].side);
        }
        free(rec);
        free(side);
        if (!ok) return pt_error(PT_ERR_INTERNAL, "a stage output from another rank did not unpack");
    }
    return PT_OK;
}

/* The window's outputs from ranks 1.. into rank 0's outs (part r covers [k r / N, k (r+1) / N)). */
static pt_status gather_outs(pt_stage_out *outs, int k, blob *b) {
    const int rank = pt_dist_rank(), size = pt_dist_size();
    pt_status st = PT_OK;
    for (int r = 1; r < size && !st; r++) {
        const int a = (int)((long)k * r / size), z = (int)((long)k * (r + 1) / size);
        if (rank == r) st = pack_outs(b, outs + a, z - a);
        st = pt_dist_agree(st);
        uint64_t n = b->n;
        if (!st) st = pt_dist_bcast(&n, sizeof n, r);
        if (!st && rank != r) { /* room for what r sends */
            b->n = 0;
            if (!blob_put(b, "", 0) || (n > b->cap && !(b->v = realloc(b->v, b->cap = (size_t)n)))) st = pt_error(PT_ERR_OOM, "out of memory");
        }
        st = pt_dist_agree(st);
        if (!st) st = pt_dist_bcast(b->v, (size_t)n, r);
        if (!st && rank == 0) st = unpack_outs(b->v, (size_t)n, outs + a, z - a);
        st = pt_dist_agree(st);
    }
    return st;
}

pt_status pt_stage_run(const pt_stage_def *d, const pt_recordset *in, pt_judge *j, const pt_stage_io *io, const pt_stage_hooks *h,
                    pt_stage_summary *sum) {
    double t0 = pt_now_s();
    memset(sum, 0, sizeof *sum);
    sum->in = in->n_read;
    sum->bad = in->n_bad;
    sum->dup = in->n_dup;
    for (int i = 0; i < in->n_issues; i++) note(h, in->issues[i]);
    long retries0 = j ? pt_judge_retries(j) : 0, requests0 = j ? pt_judge_requests(j) : 0;
    /* under mpirun rank 0 alone keeps the files; the others judge their parts of each window */
    const int rank = pt_dist_rank(), size = pt_dist_size();
    pt_jsonl_out out, side;
    memset(&out, 0, sizeof out);
    memset(&side, 0, sizeof side);
    if (rank == 0) PT_TRY(pt_dist_agree(pt_jsonl_out_open(&out, io->out, d->key, io->restart)));
    else PT_TRY(pt_dist_agree(PT_OK));
    pt_status st = PT_OK;
    if (d->side_path && rank == 0) st = pt_jsonl_out_open(&side, d->side_path, d->key, io->restart);
    if ((st = pt_dist_agree(st))) {
        if (rank == 0) pt_jsonl_out_close(&out);
        return st;
    }
    if (out.dropped_partial) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s: dropped an unfinished last line (%ld bytes) left by an interrupted run", io->out, out.dropped_partial);
        note(h, msg);
    }
    int *todo = malloc(sizeof(int) * (in->n > 0 ? in->n : 1));
    int n_todo = 0;
    if (!todo) st = pt_error(PT_ERR_OOM, "out of memory");
    for (int i = 0; i < in->n && !st; i++) {
        const pt_record *r = &in->rec[i];
        if (d->wanted && !d->wanted(d->ctx, r)) continue;
        sum->wanted++;
        if (rank == 0 && (pt_idset_has(&out.done, r->id) || (d->side_path && pt_idset_has(&side.done, r->id)))) sum->resumed++;
        else todo[n_todo++] = i;
    }
    if (size > 1) { /* what is left to do is what rank 0's files say */
        st = pt_dist_agree(st);
        int64_t counts[2] = {n_todo, sum->resumed};
        if (!st) st = pt_dist_bcast(counts, sizeof counts, 0);
        n_todo = (int)counts[0], sum->resumed = counts[1];
        if (!st) st = pt_dist_bcast(todo, sizeof(int) * (size_t)n_todo, 0);
    }
    if (!st && h && h->progress && rank == 0) h->progress(h->user, sum->resumed, sum->wanted);
    const int W = io->window > 0 ? io->window : 16;
    const pt_record **win = malloc(sizeof *win * W);
    pt_stage_out *outs = calloc((size_t)W, sizeof *outs);
    blob b = {0};
    if (!st && (!win || !outs)) st = pt_error(PT_ERR_OOM, "out of memory");
    for (int w0 = 0; w0 < n_todo && !st; w0 += W) {
        int k = n_todo - w0 < W ? n_todo - w0 : W;
        for (int i = 0; i < k; i++) win[i] = &in->rec[todo[w0 + i]];
        memset(outs, 0, sizeof *outs * k);
        const int a = (int)((long)k * rank / size), z = (int)((long)k * (rank + 1) / size);
        st = z > a ? d->fn(d->ctx, j, win + a, z - a, outs + a) : PT_OK;
        if (size > 1) {
            st = pt_dist_agree(st);
            if (!st) st = gather_outs(outs, k, &b);
        }
        if (st) sum->failed = n_todo - w0;
        for (int i = 0; i < k; i++) {
            pt_stage_out *o = &outs[i];
            if (!st && rank == 0) {
                if (o->rec) {
                    PT_ASSERT(!strcmp(json_string_value(json_object_get(o->rec, d->key)) ? json_string_value(json_object_get(o->rec, d->key)) : "",
                                      win[i]->id));
                    st = pt_jsonl_out_write(&out, o->rec);
                } else if (o->side && d->side_path)
                    st = pt_jsonl_out_write(&side, o->side);
                if (!st) {
                    sum->done++;
                    if (o->outcome == OUT_KEPT) sum->kept++;
                    else if (o->outcome == OUT_DROPPED) sum->dropped++;
                    else sum->invalid++;
                    sum->swap_checked += o->swap > 0;
                    sum->swap_disagree += o->swap == 2;
                    note(h, o->note);
                }
            }
            json_decref(o->rec);
            json_decref(o->side);
            free(o->note);
        }
        if (rank != 0) continue;
        if (!st) st = pt_jsonl_out_sync(&out);
        if (!st && d->side_path) st = pt_jsonl_out_sync(&side);
        if (!st && h && h->progress) h->progress(h->user, sum->resumed + sum->done, sum->wanted);
    }
    free(win);
    free(outs);
    free(todo);
    free(b.v);
    pt_status cs = PT_OK;
    if (rank == 0) {
        cs = pt_jsonl_out_close(&out);
        if (d->side_path) {
            pt_status c2 = pt_jsonl_out_close(&side);
            if (!cs) cs = c2;
        }
    }
    if (!st) st = cs;
    /* the others go on once rank 0's files are complete (annotate-eval reads its output back) */
    if (size > 1) st = pt_dist_agree(st);
    if (j) {
        sum->retried = pt_judge_retries(j) - retries0;
        sum->requests = pt_judge_requests(j) - requests0;
    }
    if (size > 1 && !st) { /* every rank's requests */
        double n[2] = {(double)sum->retried, (double)sum->requests};
        st = pt_dist_allreduce_sum_f64(n, 2);
        sum->retried = (long)n[0], sum->requests = (long)n[1];
    }
    sum->seconds = pt_now_s() - t0;
    return st;
}
