/* Sequence log-probabilities: the Political Compass evaluation and DPO both rank answers by
 * sum_t log softmax(logits[t-1])[token_t] over the answer's tokens. */
#include <stdlib.h>
#include <string.h>

#include "engine/generate.h"
#include "nn/nn.h"

pt_status pt_score(pt_engine *e, int n, const int32_t *const *prompt, const int *n_prompt, const int32_t *const *cont,
                   const int *n_cont, double *sum_logp, double *per_token) {
    const int V = pt_engine_model(e)->cfg.vocab_size, slots = pt_engine_n_slots(e);
    int out_off = 0;
    for (int i0 = 0; i0 < n; i0 += slots) {
        int nb = n - i0 < slots ? n - i0 : slots;
        int32_t **seq = calloc((size_t)nb, sizeof *seq);
        int *len = calloc((size_t)nb, sizeof *len), *slot = calloc((size_t)nb, sizeof *slot);
        pt_status rc = seq && len && slot ? PT_OK : pt_error(PT_ERR_OOM, "out of memory");
        for (int j = 0; j < nb && !rc; j++) {
            int i = i0 + j;
            if (n_prompt[i] < 1) { rc = pt_error(PT_ERR_ARG, "score: item %d has an empty prompt (at least a BOS token is needed)", i); break; }
            if (n_cont[i] < 0) { rc = pt_error(PT_ERR_ARG, "score: item %d has a negative continuation length", i); break; }
            len[j] = n_prompt[i] + n_cont[i];
            seq[j] = malloc(sizeof(int32_t) * len[j]);
            if (!seq[j]) { rc = pt_error(PT_ERR_OOM, "out of memory"); break; }
            memcpy(seq[j], prompt[i], sizeof(int32_t) * n_prompt[i]);
            if (n_cont[i]) memcpy(seq[j] + n_prompt[i], cont[i], sizeof(int32_t) * n_cont[i]);
            slot[j] = j;
            if (!rc) rc = pt_engine_truncate(e, j, 0);
        }
        const float *logits = NULL;
        if (!rc) {
            pt_batch b = {nb, slot, (const int32_t *const *)seq, len};
            rc = pt_engine_forward(e, &b, PT_LOGITS_ALL, &logits);
        }
        for (int j = 0, row = 0; j < nb && !rc; row += len[j], j++) {
            int i = i0 + j;
            double s = 0;
            for (int t = 0; t < n_cont[i]; t++) {
                int pos = n_prompt[i] + t; /* predicted from the row before it */
                double lp = pt_log_softmax_at(logits + (size_t)(row + pos - 1) * V, V, seq[j][pos]);
                s += lp;
                if (per_token) per_token[out_off++] = lp;
            }
            sum_logp[i] = s;
        }
        for (int j = 0; j < nb; j++) {
            if (seq && seq[j]) free(seq[j]);
            pt_engine_truncate(e, j, 0);
        }
        free(seq);
        free(len);
        free(slot);
        if (rc) return rc;
    }
    return PT_OK;
}
