/* Per optimiser step metrics, written as one JSONL row and one CSV row each to
 * OUT/metrics.jsonl and OUT/metrics.csv (flushed as they are written). A resumed run keeps
 * the rows up to the step it resumes from and continues after them.
 *
 * Held-out evaluations (eval_data, train/heldout.h) go to OUT/eval_metrics.jsonl and .csv,
 * one row per evaluation. A resumed run keeps all of them and skips the steps they cover:
 * an evaluation after the checkpoint it resumes from was already made, with the same result
 * (training is deterministic), so repeating it would only duplicate the row. */
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
    char *jsonl_path, *csv_path; /* named in write errors */
    bool dpo;
} pt_metrics_log;

/* resume_step < 0: a fresh log. */
pt_status pt_metrics_open(pt_metrics_log *l, const char *out_dir, bool dpo, long resume_step);
pt_status pt_metrics_write(pt_metrics_log *l, const pt_train_metrics *m);
void pt_metrics_close(pt_metrics_log *l);

/* One held-out evaluation: TRL's eval_* metrics, means over the pairs. */
typedef struct {
    long step;                   /* optimiser steps done when it ran (0: before training) */
    int pairs;
    double loss, rewards_chosen, rewards_rejected, rewards_accuracies, rewards_margins, logps_chosen, logps_rejected;
} pt_eval_metrics;

typedef struct {
    FILE *jsonl, *csv;
    char *jsonl_path, *csv_path;
    long *steps;                 /* (n_steps) steps with a row */
    int n_steps, cap_steps;
} pt_metrics_eval_log;

/* resume: keep the rows there are (dropping a line cut short by a kill); else a fresh log. */
pt_status pt_metrics_eval_open(pt_metrics_eval_log *l, const char *out_dir, bool resume);
bool pt_metrics_eval_has(const pt_metrics_eval_log *l, long step);
pt_status pt_metrics_eval_write(pt_metrics_eval_log *l, const pt_eval_metrics *m);
void pt_metrics_eval_close(pt_metrics_eval_log *l);

/* Peak resident memory of the process so far, MiB. */
double pt_peak_rss_mib(void);

#endif
