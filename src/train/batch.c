/* Packing prompt + response sequences into a micro-batch and listing its loss rows. */
#include "train/batch.h"

#include <stdlib.h>
#include <string.h>

pt_status pt_tbatch_init(pt_tbatch *b, int cap_seq, int cap_tok) {
    memset(b, 0, sizeof *b);
    b->cap_seq = cap_seq;
    b->cap_tok = cap_tok;
    b->ids = malloc(sizeof(int32_t) * cap_tok);
    b->pos = malloc(sizeof(int) * cap_tok);
    b->seq_start = malloc(sizeof(int) * cap_seq);
    b->seq_len = malloc(sizeof(int) * cap_seq);
    b->seq_nresp = malloc(sizeof(int) * cap_seq);
    b->loss_row = malloc(sizeof(int) * cap_tok);
    b->loss_tgt = malloc(sizeof(int32_t) * cap_tok);
    b->loss_seq = malloc(sizeof(int) * cap_tok);
    if (!b->ids || !b->pos || !b->seq_start || !b->seq_len || !b->seq_nresp || !b->loss_row || !b->loss_tgt || !b->loss_seq) {
        pt_tbatch_free(b);
        return pt_error(PT_ERR_OOM, "out of memory for a batch of %d tokens", cap_tok);
    }
    return PT_OK;
}

void pt_tbatch_free(pt_tbatch *b) {
    free(b->ids), free(b->pos), free(b->seq_start), free(b->seq_len), free(b->seq_nresp);
    free(b->loss_row), free(b->loss_tgt), free(b->loss_seq);
    memset(b, 0, sizeof *b);
}

void pt_tbatch_clear(pt_tbatch *b) { b->n_seq = b->n_tok = b->n_loss = b->max_len = b->drop_row0 = b->drop_loss0 = 0; }

int pt_tbatch_add(pt_tbatch *b, const int32_t *prompt, int np, const int32_t *resp, int nr) {
    const int len = np + nr, s = b->n_seq, t0 = b->n_tok;
    PT_ASSERT(np >= 1 && nr >= 1 && s < b->cap_seq && t0 + len <= b->cap_tok);
    memcpy(b->ids + t0, prompt, sizeof(int32_t) * np);
    memcpy(b->ids + t0 + np, resp, sizeof(int32_t) * nr);
    for (int j = 0; j < len; j++) b->pos[t0 + j] = j;
    for (int j = 0; j < nr; j++) {
        b->loss_row[b->n_loss] = t0 + np - 1 + j;
        b->loss_tgt[b->n_loss] = resp[j];
        b->loss_seq[b->n_loss++] = s;
    }
    b->seq_start[s] = t0;
    b->seq_len[s] = len;
    b->seq_nresp[s] = nr;
    b->n_seq++;
    b->n_tok += len;
    if (len > b->max_len) b->max_len = len;
    return s;
}
