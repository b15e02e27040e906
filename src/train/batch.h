/* A training micro-batch: token sequences packed end to end as the rows of one matrix (no
 * pad token is ever computed; each sequence's extent is its mask), each made of a prompt
 * and a response. Loss rows are the rows whose next token is a response token: row
 * start + j predicts token j + 1, so a response of n tokens after a prompt of p tokens
 * contributes rows p - 1 .. p + n - 2. Buffers are allocated once for a capacity. */
#ifndef PT_TRAIN_BATCH_H
#define PT_TRAIN_BATCH_H

#include <stdint.h>

#include "util/status.h"

typedef struct {
    int cap_seq, cap_tok;
    int n_seq, n_tok, n_loss;
    int max_len;        /* longest sequence in the batch */
    int32_t *ids;       /* (N) token ids */
    int *pos;           /* (N) position inside its sequence */
    int *seq_start;     /* (S) first row */
    int *seq_len;       /* (S) prompt + response tokens */
    int *seq_nresp;     /* (S) response tokens */
    int *loss_row;      /* (M) row whose logits predict loss_tgt */
    int32_t *loss_tgt;  /* (M) the response token */
    int *loss_seq;      /* (M) sequence of the row */
    /* Where this batch starts inside the micro-batch whose dropout stream it uses: a rank
     * of a data-parallel job packs a piece of a micro-batch, and its dropout masks continue
     * those of the rows before it (0 and 0 for a whole micro-batch). */
    int drop_row0;      /* token rows before it */
    int drop_loss0;     /* loss rows before it */
} pt_tbatch;

pt_status pt_tbatch_init(pt_tbatch *b, int cap_seq, int cap_tok);
void pt_tbatch_free(pt_tbatch *b);
void pt_tbatch_clear(pt_tbatch *b);
/* Appends prompt (np >= 1) + response (nr >= 1); returns the sequence index. The caller
 * sized the batch: exceeding its capacity is a bug. */
int pt_tbatch_add(pt_tbatch *b, const int32_t *prompt, int np, const int32_t *resp, int nr);

#endif
