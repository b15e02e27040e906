/* Held-out DPO evaluation (see heldout.h): the pairs in file order, `batch` pairs per pass,
 * a reference pass the first time and a policy pass every time, and the metrics' means. */
#include "train/heldout.h"

#include <stdlib.h>
#include <string.h>

static long pair_tokens(const pt_example *e) { return 2L * e->np + e->nr[0] + e->nr[1]; }

pt_status pt_heldout_load(pt_heldout *h, const char *path, const pt_data_opts *o, int batch) {
    memset(h, 0, sizeof *h);
    PT_ASSERT(o->pairs && batch >= 1);
    PT_TRY(pt_dataset_load(&h->data, path, o));
    const int n = h->data.n;
    h->batch = batch < n ? batch : n;
    /* passes take consecutive pairs, so the largest one is known exactly */
    long max_tok = 0;
    for (int s = 0; s < n; s += h->batch) {
        long tok = 0;
        for (int k = s; k < n && k < s + h->batch; k++) {
            const pt_example *e = &h->data.ex[k];
            tok += pair_tokens(e);
            for (int j = 0; j < 2; j++)
                if (e->np + e->nr[j] > h->max_len) h->max_len = e->np + e->nr[j];
        }
        if (tok > max_tok) max_tok = tok;
    }
    if (max_tok > (1L << 30)) {
        pt_heldout_free(h);
        return pt_error(PT_ERR_ARG, "%s: a pass of %ld tokens is too large; lower batch_size or max_seq_len", path, max_tok);
    }
    h->max_tok = (int)max_tok;
    h->ref = malloc(sizeof(double) * 2 * n);
    h->logp = malloc(sizeof(double) * h->max_tok);
    h->seq = malloc(sizeof(double) * 2 * h->batch);
    if (!h->ref || !h->logp || !h->seq) {
        pt_heldout_free(h);
        return pt_error(PT_ERR_OOM, "out of memory");
    }
    return PT_OK;
}

void pt_heldout_free(pt_heldout *h) {
    pt_dataset_free(&h->data);
    free(h->ref), free(h->logp), free(h->seq);
    memset(h, 0, sizeof *h);
}

void pt_heldout_shape(const pt_heldout *h, int *max_seq, int *max_tok, int *max_len) {
    *max_seq = 2 * h->batch;
    *max_tok = h->max_tok;
    *max_len = h->max_len;
}

/* One pass (adapter on or off) over the packed batch: per-sequence summed log-probs. */
static pt_status pass(pt_heldout *h, pt_tmodel *tm, const pt_tbatch *b, bool lora) {
    PT_TRY(pt_tmodel_forward(tm, b, lora, false, 0, h->logp));
    for (int s = 0; s < b->n_seq; s++) h->seq[s] = 0;
    for (int i = 0; i < b->n_loss; i++) h->seq[b->loss_seq[i]] += h->logp[i];
    return PT_OK;
}

pt_status pt_heldout_evaluate(pt_heldout *h, pt_tmodel *tm, pt_tbatch *b, pt_dpo_loss_type type, double beta, double label_smoothing,
                              pt_eval_metrics *out) {
    memset(out, 0, sizeof *out);
    const int n = h->data.n;
    const bool ipo = type == PT_DPO_IPO;
    double loss = 0, rc = 0, rr = 0, acc = 0, margin = 0, lc = 0, lr = 0;
    for (int s = 0; s < n; s += h->batch) {
        const int cnt = n - s < h->batch ? n - s : h->batch;
        pt_tbatch_clear(b);
        for (int k = s; k < s + cnt; k++) {
            const pt_example *e = &h->data.ex[k];
            for (int j = 0; j < 2; j++) pt_tbatch_add(b, e->prompt, e->np, e->resp[j], e->nr[j]);
        }
        if (!h->have_ref) {
            PT_TRY(pass(h, tm, b, false));
            memcpy(h->ref + 2 * s, h->seq, sizeof(double) * 2 * cnt);
        }
        PT_TRY(pass(h, tm, b, true));
        for (int k = 0; k < cnt; k++) {
            /* IPO compares length-averaged log-probabilities, as training does (TRL) */
            const double nc = ipo ? b->seq_nresp[2 * k] : 1, nr = ipo ? b->seq_nresp[2 * k + 1] : 1;
            const double pc = h->seq[2 * k] / nc, pr = h->seq[2 * k + 1] / nr;
            const double fc = h->ref[2 * (s + k)] / nc, fr = h->ref[2 * (s + k) + 1] / nr;
            double d1, d2;
            loss += pt_dpo_loss(type, beta, label_smoothing, pc, pr, fc, fr, &d1, &d2);
            const double wc = beta * (pc - fc), wr = beta * (pr - fr);
            rc += wc, rr += wr, acc += wc > wr, margin += wc - wr, lc += pc, lr += pr;
        }
    }
    h->have_ref = true;
    out->pairs = n;
    out->loss = loss / n;
    out->rewards_chosen = rc / n, out->rewards_rejected = rr / n, out->rewards_accuracies = acc / n;
    out->rewards_margins = margin / n, out->logps_chosen = lc / n, out->logps_rejected = lr / n;
    return PT_OK;
}
