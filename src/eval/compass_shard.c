/* A compass run split into parts (see compass.h): under an MPI launcher each rank puts a
 * contiguous block of the items to the model under every template and the cells travel to
 * every rank in one sum (each cell comes from one rank, zeros elsewhere, so the sum is
 * exact); for a plain job array each part is written to a file of its own and a merge
 * reads them back. Either way the aggregation runs on the whole, as in one process. A cell
 * depends only on its item and template and on the jobs beside it in the engine's pass, and
 * blocks start on pass boundaries, so the files written are those of one process. Logprob
 * mode only: generate mode's samples are seeded by item index and carry texts. The open
 * prompts run with the first block. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"
#include "eval/compass_impl.h"
#include "util/file.h"

/* What one cell carries: answer, expected, mass, the option scores (probs, logprobs) and the
 * answers under every option scoring. */
static size_t cell_width(int A) { return 3 + 2 * (size_t)A + PT_OPTION_COUNT; }
enum { N_WORK = 5 }; /* the work counters after the cells */

static void pack_cell(double *w, const pt_compass_cell *c, int A) {
    w[0] = c->answer, w[1] = c->expected, w[2] = c->mass;
    memcpy(w + 3, c->probs, sizeof(double) * (size_t)A);
    memcpy(w + 3 + A, c->logprobs, sizeof(double) * (size_t)A);
    for (int k = 0; k < PT_OPTION_COUNT; k++) w[3 + 2 * A + k] = c->scoring_answers[k];
}

static void unpack_cell(pt_compass_cell *c, const double *w, int A) {
    c->answer = (int)w[0], c->expected = w[1], c->mass = w[2];
    memcpy(c->probs, w + 3, sizeof(double) * (size_t)A);
    memcpy(c->logprobs, w + 3 + A, sizeof(double) * (size_t)A);
    for (int k = 0; k < PT_OPTION_COUNT; k++) c->scoring_answers[k] = (signed char)w[3 + 2 * A + k];
}

void pt_compass_part_items(int n_items, int n_variants, int batch, int i, int n, int *lo, int *hi) {
    /* The engine's passes take `batch` (item, template) jobs in order, and a job's numbers
     * depend (in the last bits) on the jobs beside it; so a block starts on a pass boundary
     * of the whole run: at a multiple of batch / gcd(templates, batch) items. */
    const int B = batch <= 0 ? 8 : batch > 64 ? 64 : batch;
    int g = B, h = n_variants > 0 ? n_variants : 1;
    while (h) { int t = g % h; g = h; h = t; }
    const int unit = B / g;
    *lo = (int)((long)n_items * i / n) / unit * unit;
    *hi = i + 1 == n ? n_items : (int)((long)n_items * (i + 1) / n) / unit * unit;
}

/* Items [lo, hi) run alone: their packed cells into rows ((hi - lo) * NV * width) and the work
 * counters into work (N_WORK); with `open`, the open prompts too, left in *part (else NULL). */
static pt_status run_block(const pt_model *m, const pt_adapter *a, const pt_questionnaire *q, const pt_scoring *s, const pt_compass_config *cfg,
                           int lo, int hi, bool open, double *rows, double *work, pt_compass_result **part) {
    *part = NULL;
    if (hi <= lo) return PT_OK;
    const int A = s->n_answers, X = s->n_axes;
    /* the block as a questionnaire and scoring of their own: views, nothing copied */
    pt_questionnaire sub_q = *q;
    sub_q.items = q->items + lo, sub_q.n_items = hi - lo;
    pt_scoring sub_s = *s;
    sub_s.n_items = hi - lo;
    sub_s.ids = s->ids ? s->ids + lo : NULL;
    pt_axis *axes = malloc(sizeof *axes * (size_t)(X ? X : 1));
    if (!axes) return pt_error(PT_ERR_OOM, "out of memory");
    for (int x = 0; x < X; x++) axes[x] = s->axes[x], axes[x].w = s->axes[x].w + (size_t)lo * A;
    sub_s.axes = axes;
    pt_compass_config sub_cfg = *cfg;
    if (!open) sub_cfg.n_open_prompts = 0;
    pt_compass_result *r = NULL;
    pt_status st = pt_compass_run_local(m, a, &sub_q, &sub_s, &sub_cfg, &r);
    if (!st) {
        const size_t W = cell_width(A);
        for (size_t i = 0; i < (size_t)(hi - lo) * r->n_variants; i++) pack_cell(rows + i * W, &r->cells[i], A);
        work[0] = r->n_prefills, work[1] = r->prefill_tokens, work[2] = r->option_tokens, work[3] = r->option_forwards;
        work[4] = r->generated_tokens;
        /* the result borrows the views: only its open prompts may outlive them */
        r->q = NULL, r->s = NULL;
        *part = r;
    }
    free(axes);
    return st;
}

/* The whole result from every cell (NI * NV * width, then the work counters) and the open
 * prompts of `first` (taken over; may be NULL). */
static pt_status assemble(const pt_model *m, const pt_questionnaire *q, const pt_scoring *s, const pt_compass_config *cfg, const double *buf,
                          pt_compass_result *first, pt_compass_result **out) {
    pt_template_variant *vars = NULL;
    int nv = 0;
    pt_compass_result *whole = NULL;
    pt_status st = pt_compass_variants(cfg, &vars, &nv);
    if (!st) st = pt_compass_result_new(q, s, cfg->mode, cfg->samples, vars, nv, &whole);
    free(vars);
    if (st) return st;
    const int A = s->n_answers;
    const size_t W = cell_width(A), n_cells = (size_t)s->n_items * nv;
    for (size_t i = 0; i < n_cells; i++) unpack_cell(&whole->cells[i], buf + i * W, A);
    const double *work = buf + n_cells * W;
    whole->n_prefills = (long)work[0], whole->prefill_tokens = (long)work[1], whole->option_tokens = (long)work[2];
    whole->option_forwards = (long)work[3], whole->generated_tokens = (long)work[4];
    /* the settings, as pt_compass_run records them */
    whole->gen = cfg->gen;
    whole->gen.stop_ids = NULL, whole->gen.n_stop_ids = 0, whole->gen.stop_strings = NULL, whole->gen.n_stop_strings = 0;
    snprintf(whole->chat_template, sizeof whole->chat_template, "%s", pt_chat_template_name(pt_eval_chat_for(m, cfg->chat)));
    whole->option_scoring = cfg->option_scoring;
    whole->scorings_compared = cfg->compare_scorings;
    if (first) {
        whole->n_open = first->n_open, whole->open_ids = first->open_ids, whole->open_prompts = first->open_prompts;
        whole->open_responses = first->open_responses;
        first->n_open = 0, first->open_ids = first->open_prompts = first->open_responses = NULL;
    }
    st = pt_compass_aggregate(whole);
    if (st) { pt_compass_result_free(whole); return st; }
    *out = whole;
    return PT_OK;
}

/* The number of template variants cfg selects, or 0 with the error message left. */
static int n_variants_of(const pt_compass_config *cfg) {
    pt_template_variant *vars = NULL;
    int nv = 0;
    if (pt_compass_variants(cfg, &vars, &nv)) nv = 0;
    else if (nv < 1) pt_error(PT_ERR_ARG, "compass: no template selected");
    free(vars);
    return nv;
}

pt_status pt_compass_run_ranks(const pt_model *m, const pt_adapter *a, const pt_questionnaire *q, const pt_scoring *s,
                               const pt_compass_config *cfg, pt_compass_result **out) {
    *out = NULL;
    const int rank = pt_dist_rank(), size = pt_dist_size(), NI = s->n_items;
    const int nv = n_variants_of(cfg);
    if (nv < 1) return pt_dist_shared(PT_ERR_ARG, 0);
    int lo, hi;
    pt_compass_part_items(NI, nv, cfg->batch, rank, size, &lo, &hi);
    const size_t W = cell_width(s->n_answers), n_cells = (size_t)NI * nv;
    double *buf = calloc(n_cells * W + N_WORK, sizeof(double));
    pt_compass_result *part = NULL;
    pt_status st = buf ? run_block(m, a, q, s, cfg, lo, hi, rank == 0, buf + (size_t)lo * nv * W, buf + n_cells * W, &part)
                       : pt_error(PT_ERR_OOM, "out of memory");
    st = pt_dist_agree(st);
    if (!st) st = pt_dist_agree(pt_dist_allreduce_sum_f64(buf, (int64_t)(n_cells * W + N_WORK)));
    if (!st) st = assemble(m, q, s, cfg, buf, rank == 0 ? part : NULL, out);
    free(buf);
    pt_compass_result_free(part);
    return st;
}

/* ---- part files (--shard i/N, then a merge) ------------------------------------------------- */

/* A number as the file keeps it: exact (17 digits), NaN as null. */
static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

char *pt_compass_part_name(int i, int n) {
    char *s = NULL;
    return asprintf(&s, "compass-part-%d-of-%d.json", i, n) < 0 ? NULL : s;
}

static const char *mode_name(pt_compass_mode mode) { return mode == PT_COMPASS_LOGPROB ? "logprob" : "generate"; }

pt_status pt_compass_part_write(const pt_model *m, const pt_adapter *a, const pt_questionnaire *q, const pt_scoring *s,
                                const pt_compass_config *cfg, int i, int n, const char *dir) {
    if (n < 1 || i < 0 || i >= n) return pt_error(PT_ERR_ARG, "compass: part %d of %d does not exist (0 <= i < N)", i, n);
    if (cfg->mode != PT_COMPASS_LOGPROB) return pt_error(PT_ERR_UNSUPPORTED, "compass: only logprob mode can be split into parts");
    const int nv = n_variants_of(cfg);
    if (nv < 1) return PT_ERR_ARG;
    int lo, hi;
    pt_compass_part_items(s->n_items, nv, cfg->batch, i, n, &lo, &hi);
    const size_t W = cell_width(s->n_answers), n_rows = (size_t)(hi - lo) * nv;
    double *rows = calloc(n_rows * W + N_WORK, sizeof(double));
    if (!rows) return pt_error(PT_ERR_OOM, "out of memory");
    pt_compass_result *part = NULL;
    pt_status st = run_block(m, a, q, s, cfg, lo, hi, i == 0, rows, rows + n_rows * W, &part);
    json_t *doc = json_object(), *cells = json_array(), *work = json_array(), *open = json_array(), *range = json_array();
    for (size_t k = 0; !st && k < n_rows * W; k++) json_array_append_new(cells, num(rows[k]));
    for (int k = 0; !st && k < N_WORK; k++) json_array_append_new(work, num(rows[n_rows * W + k]));
    for (int k = 0; !st && part && k < part->n_open; k++) {
        json_t *o = json_array();
        json_array_append_new(o, json_string(part->open_ids[k] ? part->open_ids[k] : ""));
        json_array_append_new(o, json_string(part->open_prompts[k] ? part->open_prompts[k] : ""));
        json_array_append_new(o, json_string(part->open_responses[k] ? part->open_responses[k] : ""));
        json_array_append_new(open, o);
    }
    json_array_append_new(range, json_integer(lo));
    json_array_append_new(range, json_integer(hi));
    json_object_set_new(doc, "politune_compass_part", json_integer(1));
    json_object_set_new(doc, "part", json_integer(i));
    json_object_set_new(doc, "of", json_integer(n));
    json_object_set_new(doc, "items", range);
    json_object_set_new(doc, "n_items", json_integer(s->n_items));
    json_object_set_new(doc, "n_variants", json_integer(nv));
    json_object_set_new(doc, "templates", json_string(cfg->templates ? cfg->templates : "all"));
    json_object_set_new(doc, "batch", json_integer(cfg->batch));
    json_object_set_new(doc, "mode", json_string(mode_name(cfg->mode)));
    json_object_set_new(doc, "option_scoring", json_string(pt_option_scoring_name(cfg->option_scoring)));
    json_object_set_new(doc, "compare_scorings", json_boolean(cfg->compare_scorings));
    json_object_set_new(doc, "model", json_string(m->path ? m->path : ""));
    json_object_set_new(doc, "cells", cells);
    json_object_set_new(doc, "work", work);
    json_object_set_new(doc, "open", open);
    char *text = st ? NULL : json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(17));
    if (!st && !text) st = pt_error(PT_ERR_OOM, "out of memory");
    char *name = pt_compass_part_name(i, n), *path = NULL;
    if (!st) st = pt_mkdir_p(dir);
    if (!st && !(name && (path = pt_path_join(dir, name)))) st = pt_error(PT_ERR_OOM, "out of memory");
    if (!st) st = pt_file_write_atomic(path, text, strlen(text));
    free(name), free(path), free(text), free(rows);
    json_decref(doc);
    pt_compass_result_free(part);
    return st;
}

/* Checks a part file's key against what this merge expects. */
static pt_status expect(const char *path, json_t *doc, const char *key, json_t *want) {
    json_t *have = json_object_get(doc, key);
    pt_status st = PT_OK;
    if (!have || !json_equal(have, want)) {
        char *h = have ? json_dumps(have, JSON_ENCODE_ANY) : NULL, *w = json_dumps(want, JSON_ENCODE_ANY);
        st = pt_error(PT_ERR_ARG, "%s: \"%s\" is %s, but this merge has %s: merge with the settings the parts were run with", path, key,
                      h ? h : "missing", w ? w : "?");
        free(h), free(w);
    }
    json_decref(want);
    return st;
}

pt_status pt_compass_part_merge(const pt_model *m, const pt_questionnaire *q, const pt_scoring *s, const pt_compass_config *cfg, const char *dir,
                                pt_compass_result **out) {
    *out = NULL;
    const int nv = n_variants_of(cfg);
    if (nv < 1) return PT_ERR_ARG;
    /* the parts present: compass-part-I-of-N.json, one N */
    DIR *d = opendir(dir);
    if (!d) return pt_error(PT_ERR_IO, "%s: cannot read the directory of compass parts", dir);
    int n = 0;
    struct dirent *e;
    pt_status st = PT_OK;
    while ((e = readdir(d)) && !st) {
        int i, of;
        char tail[8];
        if (sscanf(e->d_name, "compass-part-%d-of-%d.jso%1s", &i, &of, tail) != 3 || strcmp(tail, "n")) continue;
        if (n && of != n) st = pt_error(PT_ERR_ARG, "%s: parts of %d and of %d runs are mixed here (%s)", dir, n, of, e->d_name);
        n = of;
    }
    closedir(d);
    if (st) return st;
    if (n < 1) return pt_error(PT_ERR_ARG, "%s: no compass parts (compass-part-I-of-N.json, written by compass --shard I/N)", dir);
    const size_t W = cell_width(s->n_answers), n_cells = (size_t)s->n_items * nv;
    double *buf = calloc(n_cells * W + N_WORK, sizeof(double));
    if (!buf) return pt_error(PT_ERR_OOM, "out of memory");
    pt_compass_result *first = NULL;
    for (int i = 0; i < n && !st; i++) {
        char *name = pt_compass_part_name(i, n), *path = name ? pt_path_join(dir, name) : NULL;
        free(name);
        if (!path) { st = pt_error(PT_ERR_OOM, "out of memory"); break; }
        json_error_t je;
        json_t *doc = pt_file_exists(path) ? json_load_file(path, 0, &je) : NULL;
        if (!pt_file_exists(path)) st = pt_error(PT_ERR_IO, "%s: part %d of %d is missing (run compass --shard %d/%d)", path, i, n, i, n);
        else if (!doc) st = pt_error(PT_ERR_FORMAT, "%s:%d: not valid JSON: %s", path, je.line, je.text);
        int lo = 0, hi = 0;
        pt_compass_part_items(s->n_items, nv, cfg->batch, i, n, &lo, &hi);
        json_t *range = json_array();
        json_array_append_new(range, json_integer(lo));
        json_array_append_new(range, json_integer(hi));
        if (!st) st = expect(path, doc, "part", json_integer(i));
        if (!st) st = expect(path, doc, "n_items", json_integer(s->n_items));
        if (!st) st = expect(path, doc, "templates", json_string(cfg->templates ? cfg->templates : "all"));
        if (!st) st = expect(path, doc, "batch", json_integer(cfg->batch));
        if (!st) st = expect(path, doc, "mode", json_string(mode_name(cfg->mode)));
        if (!st) st = expect(path, doc, "option_scoring", json_string(pt_option_scoring_name(cfg->option_scoring)));
        if (!st) st = expect(path, doc, "compare_scorings", json_boolean(cfg->compare_scorings));
        if (!st) st = expect(path, doc, "model", json_string(m->path ? m->path : ""));
        if (!st) st = expect(path, doc, "items", range);
        else json_decref(range);
        json_t *cells = json_object_get(doc, "cells"), *work = json_object_get(doc, "work"), *open = json_object_get(doc, "open");
        const size_t want = (size_t)(hi - lo) * nv * W;
        if (!st && (json_array_size(cells) != want || json_array_size(work) != N_WORK || !json_is_array(open)))
            st = pt_error(PT_ERR_FORMAT, "%s: %zu cell values where %zu belong (or no work counters)", path, json_array_size(cells), want);
        for (size_t k = 0; !st && k < want; k++) {
            json_t *v = json_array_get(cells, k);
            if (!json_is_number(v) && !json_is_null(v)) st = pt_error(PT_ERR_FORMAT, "%s: cell value %zu is not a number", path, k);
            buf[(size_t)lo * nv * W + k] = json_is_null(v) ? NAN : json_number_value(v);
        }
        for (int k = 0; !st && k < N_WORK; k++) buf[n_cells * W + k] += json_number_value(json_array_get(work, k));
        if (!st && i == 0 && json_array_size(open)) { /* the open prompts of the first part */
            const int no = (int)json_array_size(open);
            if (!(first = calloc(1, sizeof *first)) || !(first->open_ids = calloc((size_t)no, sizeof(char *))) ||
                !(first->open_prompts = calloc((size_t)no, sizeof(char *))) || !(first->open_responses = calloc((size_t)no, sizeof(char *))))
                st = pt_error(PT_ERR_OOM, "out of memory");
            for (int k = 0; !st && k < no; k++) {
                json_t *o = json_array_get(open, k);
                first->open_ids[k] = strdup(json_string_value(json_array_get(o, 0)) ? json_string_value(json_array_get(o, 0)) : "");
                first->open_prompts[k] = strdup(json_string_value(json_array_get(o, 1)) ? json_string_value(json_array_get(o, 1)) : "");
                first->open_responses[k] = strdup(json_string_value(json_array_get(o, 2)) ? json_string_value(json_array_get(o, 2)) : "");
                first->n_open = k + 1;
            }
        }
        json_decref(doc);
        free(path);
    }
    if (!st) st = assemble(m, q, s, cfg, buf, first, out);
    free(buf);
    pt_compass_result_free(first);
    return st;
}
