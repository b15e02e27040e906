/* Private to the stages: the shared run loop (resume, windows, ordered output, counters,
 * progress) and small helpers for building judge requests. */
#ifndef PT_DATA_STAGE_IMPL_H
#define PT_DATA_STAGE_IMPL_H

#include "data/pipeline.h"

enum { OUT_KEPT = 0, OUT_DROPPED, OUT_INVALID };

typedef struct {
    json_t *rec;   /* the output line (must hold the key field = the record's id), or NULL */
    json_t *side;  /* a line for the side file instead (synth's invalid records), or NULL */
    int outcome;   /* OUT_* */
    char *note;    /* a message for the hooks (malloc'd), or NULL */
    int swap;      /* 0: not swap-checked, 1: both orders agree, 2: they disagree */
} pt_stage_out;

/* Processes a window of records, in order: fills outs[0..n). A failure stops the run before
 * anything of the window is written. */
typedef pt_status (*pt_stage_window_fn)(void *ctx, pt_judge *j, const pt_record *const *recs, int n, pt_stage_out *outs);

typedef struct {
    const char *key;        /* key field of output lines ("id", "source_id") */
    const char *side_path;  /* NULL: no side file */
    bool (*wanted)(void *ctx, const pt_record *r); /* NULL: every record */
    pt_stage_window_fn fn;
    void *ctx;
} pt_stage_def;

pt_status pt_stage_run(const pt_stage_def *d, const pt_recordset *in, pt_judge *j, const pt_stage_io *io, const pt_stage_hooks *h,
                    pt_stage_summary *sum);

/* The judge requests of one window: each request's prompt text and the label naming it in
 * messages are owned here, with the replies. */
typedef struct {
    int n;
    pt_judge_req *reqs;
    pt_judge_reply *rep;
    char **texts, **whats;
} pt_stage_batch;

/* Room for n requests (all zeroed); on failure the batch is empty and still freeable. */
pt_status pt_stage_batch_init(pt_stage_batch *b, int n);
void pt_stage_batch_free(pt_stage_batch *b);

/* A request's seed: stable per record and purpose, so reruns repeat themselves. */
uint64_t pt_stage_seed(const char *id, const char *purpose);
/* "file:line (id X)" naming a record in notes. */
void pt_stage_where(char *buf, size_t n, const char *label, const pt_record *r);
/* A note for a reply out of format: "<where>: judge reply for <what> is not <expected>: '<start of reply>'" */
char *pt_stage_invalid_note(const char *where, const char *what, const char *expected, const char *reply);
/* The value of a label reply on a 1-based integer scale: the expectation under the label
 * probabilities when there are some, else the label's own value. */
double pt_stage_label_value(const pt_judge_reply *r, int n_labels);
/* JSON array of probabilities rounded to 6 digits, or null. */
json_t *pt_stage_probs_json(const pt_judge_reply *r, int n_labels);
/* Number rounded to 6 decimals (stable text across runs). */
json_t *pt_stage_real(double v);

#endif
