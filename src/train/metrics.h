/* Per optimiser step metrics, written as one JSONL row and one CSV row each to
 * OUT/metrics.jsonl and OUT/metrics.csv (flushed as they are written). A resumed run keeps
 * the rows up to the step it resumes from and continues after them. */
#ifndef PT_TRAIN_METRICS_H
#define PT_TRAIN_METRICS_H

#include <stdbool.h>
#include <stdio.h>

#include "util/status.h"

typedef struct {
    long step, total_steps;
    double epoch;                /* epochs completed, fractional (as transformers logs it) */
    double loss, lr, grad_norm, tokens_per_s;
    long tokens;                 /* policy tokens of the step */
    /* DPO only (means over the step's pairs) */
    double rewards_chosen, rewards_rejected, rewards_accuracies, rewards_margins, logps_chosen, logps_rejected;
    double elapsed_s, peak_mem_mib;
} pt_train_metrics;

typedef struct {
    FILE *jsonl, *csv;
    bool dpo;
} pt_metrics_log;

/* resume_step < 0: a fresh log. */
pt_status pt_metrics_open(pt_metrics_log *l, const char *out_dir, bool dpo, long resume_step);
pt_status pt_metrics_write(pt_metrics_log *l, const pt_train_metrics *m);
void pt_metrics_close(pt_metrics_log *l);

/* Peak resident memory of the process so far, MiB. */
double pt_peak_rss_mib(void);

#endif
