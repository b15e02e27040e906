/* A compass run split among the ranks of a job (dist/dist.h): each rank puts a contiguous
 * block of the items to the model under every template, the cells travel to every rank in
 * one sum (each cell comes from one rank, zeros elsewhere, so the sum is exact), and the
 * aggregation runs on the whole, as in one process. A cell depends only on its item and
 * template, so the files rank 0 writes are the files one process writes. Logprob mode only:
 * generate mode's samples are seeded by item index and carry texts (one process runs it).
 * The open prompts run on rank 0 alone and are in its result only. */
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"
#include "eval/compass_impl.h"

/* What one cell carries between ranks: answer, expected, mass, the option scores (probs,
 * logprobs) and the answers under every option scoring. */
static size_t cell_width(int A) { return 3 + 2 * (size_t)A + PT_OPTION_COUNT; }

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

pt_status pt_compass_run_ranks(const pt_model *m, const pt_adapter *a, const pt_questionnaire *q, const pt_scoring *s,
                               const pt_compass_config *cfg, pt_compass_result **out) {
    *out = NULL;
    const int rank = pt_dist_rank(), size = pt_dist_size();
    const int NI = s->n_items, A = s->n_answers, X = s->n_axes;
    pt_template_variant *vars = NULL;
    int nv = 0;
    pt_compass_result *whole = NULL, *part = NULL;
    pt_status st = pt_templates_select(cfg->templates, &vars, &nv);
    /* The engine's passes take `batch` (item, template) jobs in order, and a job's numbers
     * depend (in the last bits) on the jobs beside it; so a block starts on a pass boundary
     * of the whole run: at a multiple of batch / gcd(templates, batch) items. */
    const int B = cfg->batch <= 0 ? 8 : cfg->batch > 64 ? 64 : cfg->batch;
    int g = B, h = nv > 0 ? nv : 1;
    while (h) { int t = g % h; g = h; h = t; }
    const int unit = B / g;
    const int lo = (int)((long)NI * rank / size) / unit * unit, hi = rank + 1 == size ? NI : (int)((long)NI * (rank + 1) / size) / unit * unit;
    if (!st) st = pt_compass_result_new(q, s, cfg->mode, cfg->samples, vars, nv, &whole);
    free(vars);
    /* this rank's items as a questionnaire and scoring of their own: views, nothing copied */
    pt_questionnaire sub_q = *q;
    sub_q.items = q->items + lo, sub_q.n_items = hi - lo;
    pt_scoring sub_s = *s;
    sub_s.n_items = hi - lo;
    sub_s.ids = s->ids ? s->ids + lo : NULL;
    pt_axis *axes = malloc(sizeof *axes * (size_t)(X ? X : 1));
    if (!st && !axes) st = pt_error(PT_ERR_OOM, "out of memory");
    for (int x = 0; !st && x < X; x++) axes[x] = s->axes[x], axes[x].w = s->axes[x].w + (size_t)lo * A;
    sub_s.axes = axes;
    pt_compass_config sub_cfg = *cfg;
    if (rank != 0) sub_cfg.n_open_prompts = 0;
    if (!st && hi > lo) st = pt_compass_run_local(m, a, &sub_q, &sub_s, &sub_cfg, &part);
    st = pt_dist_agree(st);

    /* (NI, NV, width) cells, then the work counters */
    const size_t W = cell_width(A), NV = whole ? (size_t)whole->n_variants : 0, n_cells = (size_t)NI * NV;
    double *buf = st ? NULL : calloc(n_cells * W + 5, sizeof(double));
    if (!st && !buf) st = pt_error(PT_ERR_OOM, "out of memory");
    if (!st && part) {
        for (size_t i = 0; i < (size_t)(hi - lo) * NV; i++) pack_cell(buf + ((size_t)lo * NV + i) * W, &part->cells[i], A);
        double *work = buf + n_cells * W;
        work[0] = part->n_prefills, work[1] = part->prefill_tokens, work[2] = part->option_tokens, work[3] = part->option_forwards;
        work[4] = part->generated_tokens;
    }
    if (!st) st = pt_dist_agree(pt_dist_allreduce_sum_f64(buf, (int64_t)(n_cells * W + 5)));
    if (!st) {
        for (size_t i = 0; i < n_cells; i++) unpack_cell(&whole->cells[i], buf + i * W, A);
        const double *work = buf + n_cells * W;
        whole->n_prefills = (long)work[0], whole->prefill_tokens = (long)work[1], whole->option_tokens = (long)work[2];
        whole->option_forwards = (long)work[3], whole->generated_tokens = (long)work[4];
        /* the settings every rank used alike, as pt_compass_run records them */
        whole->gen = cfg->gen;
        whole->gen.stop_ids = NULL, whole->gen.n_stop_ids = 0, whole->gen.stop_strings = NULL, whole->gen.n_stop_strings = 0;
        snprintf(whole->chat_template, sizeof whole->chat_template, "%s", pt_chat_template_name(pt_eval_chat_for(m, cfg->chat)));
        whole->option_scoring = cfg->option_scoring;
        whole->scorings_compared = cfg->compare_scorings;
        if (part && rank == 0) { /* the open prompts' answers move over */
            whole->n_open = part->n_open, whole->open_ids = part->open_ids, whole->open_prompts = part->open_prompts;
            whole->open_responses = part->open_responses;
            part->n_open = 0, part->open_ids = part->open_prompts = part->open_responses = NULL;
        }
        st = pt_compass_aggregate(whole);
    }
    free(buf);
    free(axes);
    pt_compass_result_free(part);
    if (st) { pt_compass_result_free(whole); return st; }
    *out = whole;
    return PT_OK;
}
