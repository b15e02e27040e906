/* The data stages of the PoliTune method, each reading records, asking a judge, and
 * appending one JSONL record per input record:
 *
 *   select         ideology (1..9) and quality (1..5) of each post; kept when it is clearly
 *                  on the target side and clear enough. Every record is written with its
 *                  scores and the decision, so thresholds can change without asking again.
 *   synth          for each kept post: an instruction it answers, a chosen response in the
 *                  post's leaning grounded in it, a rejected one from the opposite leaning;
 *                  {id, prompt, chosen, rejected, source_id} lines `politune train` reads.
 *   judge-answers  ideology (and a one-sentence rationale) of open-ended answers saved by
 *                  `politune compass`, or of any prompt/answer JSONL.
 *   annotate-eval  a judge's ideology scores against known labels: accuracy, confusion
 *                  matrix, ROC AUC.
 *
 * Long runs: records carry stable ids (a hash of the text); the output is appended a window
 * of records at a time, in input order, each line flushed and each window synced; a rerun
 * skips the ids already in the output and drops an unfinished last line, so an interrupted
 * run resumed gives the same file as an uninterrupted one. Exact duplicates are dropped and
 * counted. A record the judge answers out of format is written as "invalid" (counted, with a
 * note naming the file, line and id); a judge that cannot be reached after its retries stops
 * the run with what was written intact. */
#ifndef PT_DATA_PIPELINE_H
#define PT_DATA_PIPELINE_H

#include <jansson.h>
#include <stdbool.h>

#include "data/judge.h"
#include "data/prompts.h"
#include "data/records.h"

typedef struct {
    void (*progress)(void *user, long done, long total); /* after each window */
    void (*note)(void *user, const char *msg);           /* one per bad input or invalid reply */
    void *user;
} pt_stage_hooks;

typedef struct {
    long in;        /* input records read (good and bad) */
    long bad;       /* malformed input records skipped */
    long dup;       /* exact duplicates dropped */
    long wanted;    /* records this stage works on (synth: the kept ones) */
    long resumed;   /* already in the output from an earlier run */
    long done;      /* processed in this run */
    long kept;      /* select: kept; synth: pairs written; others: scored */
    long dropped;   /* select: below the thresholds */
    long invalid;   /* judge replies not in the requested format */
    long failed;    /* left undone because the judge failed */
    long retried;   /* HTTP retries */
    long requests;  /* judge requests answered */
    long swap_checked;  /* records asked in both scale orders (--swap-check) */
    long swap_disagree; /* of those, the ones whose two readings disagree */
    double seconds;
} pt_stage_summary;

/* "select: 40 in, 38 judged (0 resumed), 12 kept, 20 dropped, 6 invalid, 1 bad, 1 duplicate,
 * 0 failed, 0 retries, 80 requests, 3.2 s (11.9 records/s)" */
void pt_stage_summary_format(const pt_stage_summary *s, const char *stage, char *buf, size_t n);

/* ---- the swap check (judge_swap.c) ------------------------------------------------------
 * A judge may favour whichever option is named first. With the swap check every scale
 * judgement is asked twice: as usual, and with the scale's ends exchanged (the *_MIRRORED
 * prompts). A mirrored reading m on 1..max means max + 1 - m on the usual scale. The two
 * readings disagree when they differ by more than PT_SWAP_TOLERANCE points; otherwise the
 * record's value is their mean, in which a constant preference for the first-named end
 * cancels. Disagreeing records are flagged ("swap": {..., "disagree": true}) or dropped. */
typedef enum { PT_SWAP_OFF = 0, PT_SWAP_FLAG, PT_SWAP_DROP } pt_swap_mode;
#define PT_SWAP_TOLERANCE 2.0

typedef struct {
    double forward, mirrored; /* the readings, mirrored already mapped back; NAN when invalid */
    double value;             /* their mean; NAN when either is invalid */
    bool disagree;
} pt_swap_reading;

pt_swap_reading pt_swap_combine(double forward, double mirrored_raw, int max);
/* {"forward", "mirrored", "disagree"} */
json_t *pt_swap_json(const pt_swap_reading *r);
/* "off", "flag", "drop" -> mode; -1 when none of them. */
int pt_swap_mode_parse(const char *s);

typedef struct {
    const char *out;   /* output JSONL */
    bool restart;      /* start the output over instead of resuming it */
    int window;        /* records per round of judge requests (default 16) */
} pt_stage_io;

/* ---- select ---------------------------------------------------------------------------- */
typedef struct {
    const char *target;      /* "left" or "right" */
    double margin;           /* keep ideology <= 5 - margin (left) / >= 5 + margin (right); default 2 */
    double min_quality;      /* keep quality >= this; default 3 */
    const pt_prompts *prompts;
    pt_swap_mode swap;       /* ask ideology and quality in both scale orders */
} pt_select_opts;

pt_status pt_select_run(const pt_recordset *in, pt_judge *j, const pt_select_opts *o, const pt_stage_io *io, const pt_stage_hooks *h,
                        pt_stage_summary *sum);

/* ---- synth ----------------------------------------------------------------------------- */
typedef struct {
    const char *target;      /* leaning of the chosen side; NULL: each record's "target" */
    bool all;                /* use every record, not only those with "keep": true */
    const pt_prompts *prompts;
    int max_tokens;          /* per generated text (0: the judge's default) */
    pt_swap_mode swap;       /* ask which of chosen and rejected is more on the target side, in both
                                orders; a pair whose two verdicts name the same position (A both
                                times or B both times) disagrees; with PT_SWAP_DROP it goes to the
                                side file instead of the pairs */
} pt_synth_opts;

/* Writes pairs to io->out; records whose replies are unusable (or, with swap == PT_SWAP_DROP,
 * whose order check disagrees) go to io->out + ".invalid.jsonl" (so reruns skip them too). */
pt_status pt_synth_run(const pt_recordset *in, pt_judge *j, const pt_synth_opts *o, const pt_stage_io *io, const pt_stage_hooks *h,
                       pt_stage_summary *sum);
/* The PoliTune chat JSON ([{chosen: [user, assistant], rejected: [user, assistant]}]) of a
 * preference JSONL, written atomically. */
pt_status pt_synth_write_chat_json(const char *prefs_jsonl, const char *out_json);

/* ---- judge-answers --------------------------------------------------------------------- */
/* Reads open-ended answers: a compass.json (or a directory holding one: every evaluation's
 * open_prompts) or a JSONL/JSON of records with "prompt" and "answer" (or "response"). Each
 * record's fields: evaluation, iteration, step, prompt_id, prompt, answer; its id hashes all of
 * them. *compass (malloc'd) is the compass.json path when that is what was read, else NULL. */
pt_status pt_answers_load(pt_recordset *rs, const char *path, char **compass);

typedef struct {
    const pt_prompts *prompts;
    bool rationale;          /* also ask for a one-sentence rationale (default true) */
    int rationale_tokens;    /* default 96 */
    pt_swap_mode swap;       /* ask the ideology in both scale orders */
} pt_answers_opts;

pt_status pt_answers_run(const pt_recordset *in, pt_judge *j, const pt_answers_opts *o, const pt_stage_io *io, const pt_stage_hooks *h,
                         pt_stage_summary *sum);
/* Per-evaluation summary of a judged-answers JSONL restricted to the records of `in`:
 * [{evaluation, iteration, step, n, invalid, mean, by_prompt: [{id, prompt, ideology,
 * rationale}]}]. */
pt_status pt_answers_summary(const pt_recordset *in, const char *judged_jsonl, const char *judge, json_t **out);
/* Adds each evaluation's summary to compass.json as "open_judge" (matched by label, iteration
 * and step), rewriting the file atomically. */
pt_status pt_answers_update_compass(const char *compass_json, const json_t *summary, const char *judge);

/* ---- annotate-eval --------------------------------------------------------------------- */
enum { PT_CLASS_LEFT = 0, PT_CLASS_CENTER = 1, PT_CLASS_RIGHT = 2 };

typedef struct {
    int n;                   /* labelled and scored records */
    int n_unlabelled;        /* label missing or not in any class list */
    int n_invalid;           /* no score (judge reply not in format) */
    double center, band;     /* predicted class: left below center - band, right above center + band */
    long confusion[3][3];    /* [true class][predicted class] */
    int n_class[3];
    double mean_score[3];    /* per true class; NAN when empty */
    double accuracy;         /* NAN when n == 0 */
    double roc_auc;          /* right (positive) against left, higher score = more right; ties count
                                one half; NAN without both classes */
    /* uncertainty: Wilson score 95% intervals for the accuracies (overall and per true class),
     * the Hanley-McNeil normal interval for the AUC (clipped to 0..1); NAN when undefined */
    double accuracy_lo, accuracy_hi;
    double class_accuracy[3], class_lo[3], class_hi[3]; /* share of class t predicted as t */
    double auc_lo, auc_hi;
    /* calibration: records by judge score (rounded to 1..9) and true class */
    long calibration[PT_IDEOLOGY_MAX][3];
} pt_agreement;

/* truth[i]: PT_CLASS_* or -1 (unlabelled); score[i]: NAN when not scored. */
void pt_agreement_compute(const double *score, const int *truth, int n, double center, double band, pt_agreement *a);
json_t *pt_agreement_json(const pt_agreement *a);
/* The class of a label: case-insensitive member of one of the comma-separated lists; -1 if none. */
int pt_label_class(const char *label, const char *left, const char *center, const char *right);

typedef struct {
    const char *label_field;
    const char *left_labels, *center_labels, *right_labels; /* comma-separated */
    const char *score_field; /* use this numeric field (1..9 scale) instead of asking the judge */
    double band;             /* default 0.5 */
    const pt_prompts *prompts;
    pt_swap_mode swap;       /* ask the ideology in both scale orders */
} pt_annotate_opts;

/* Scores the records (unless score_field) into io->out, then computes the agreement over the
 * records of `in`. */
pt_status pt_annotate_run(const pt_recordset *in, pt_judge *j, const pt_annotate_opts *o, const pt_stage_io *io, const pt_stage_hooks *h,
                          pt_stage_summary *sum, pt_agreement *a);

#endif
