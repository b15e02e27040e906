/* Continuous batching over one engine: requests (jobs) from any number of threads are queued,
 * admitted into free cache slots as soon as one is free, and advanced together — every step is
 * one pt_engine_forward over all active sequences (new ones prefill their prompt in the same
 * pass in which the others decode one token). A job that finishes frees its slot for the next
 * queued one at once, so a long generation never holds up short ones.
 *
 * One worker thread owns the engine. Jobs are reference counted: the submitter holds one
 * reference and the worker another until the job is finished; text is published as it
 * becomes final (whole UTF-8 characters, never the start of a possible stop string), so a
 * streaming reader can poll it while the job runs.
 *
 * Besides free generation a job can score a fixed set of choices (the in-process log-prob
 * judge, and `guided_choice` requests to the server): the prompt is prefilled once, every
 * choice's log-probability is read off it (choices sharing leading tokens share them in the
 * prefix), and the reply is the most likely choice (or one drawn at the given temperature).
 * Choice jobs run one per forward pass, so their scores repeat bit for bit whatever else the
 * batcher is doing (a resumed annotation run must reproduce the interrupted one). */
#ifndef PT_ENGINE_BATCHER_H
#define PT_ENGINE_BATCHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/generate.h"
#include "tokenizer/chat.h"

#define PT_MAX_TOP_LOGPROBS 20

typedef struct {
    const int32_t *prompt;           /* (n_prompt) copied by submit */
    int n_prompt;
    pt_sampling sampling;
    int max_new_tokens;              /* capped at what the context leaves */
    const int32_t *stop_ids;         /* copied */
    int n_stop_ids;
    const char *const *stop_strings; /* copied */
    int n_stop_strings;
    int top_logprobs;                /* < 0: no log-probs; 0..PT_MAX_TOP_LOGPROBS: per generated token,
                                        its log-prob and that many alternatives */
    /* choice scoring instead of generation (n_choices > 0): the prompt is followed by
     * choice_ids[k] (n_choice[k] >= 1 tokens each, see pt_batcher_choice_tokens) */
    int n_choices;
    const int32_t *const *choice_ids;
    const int *n_choice;
    const char *const *choice_text;  /* the reply text of each choice (copied) */
    /* the scale of each of the engine's adapters for this job (pt_engine_set_adapters;
     * copied), or NULL for the engine's defaults: jobs with different adapter mixes share
     * the forward passes, each row with its own slot's scales */
    const float *adapter_scales;
    int n_adapter_scales;            /* = pt_engine_n_adapters when adapter_scales is set */
} pt_job_spec;

typedef struct {
    int32_t token;
    float logprob;
    int n_top;
    int32_t top_id[PT_MAX_TOP_LOGPROBS];
    float top_logprob[PT_MAX_TOP_LOGPROBS];
} pt_token_logprob;

typedef struct {
    const char *text;          /* the final text (cut at a stop string) */
    const char *finish;        /* "stop" (EOS or stop string), "length", "cancelled", "error" */
    const char *error;         /* message when finish is "error" */
    int n_prompt, n_generated;
    const pt_token_logprob *logprobs; /* (n_generated) when requested */
    int choice;                /* choice jobs: the index picked */
    const double *choice_logprob; /* (n_choices) summed log-probabilities */
    double queued_s, prefill_s, total_s;
} pt_job_result;

typedef struct pt_batcher pt_batcher;
typedef struct pt_job pt_job;

/* A batcher over `e` (not owned; nothing else may use it meanwhile). max_queue: jobs that may
 * wait for a slot beyond those running (<= 0: unlimited). With batch_invariant, every forward
 * pass holds one sequence (jobs still take turns step by step): slower, but a job's result no
 * longer depends on which others ran beside it, not even in the last bits of a float. */
pt_status pt_batcher_new(pt_batcher **out, pt_engine *e, int max_queue, bool batch_invariant);
/* Cancels every job, stops the worker and frees the batcher (jobs still referenced stay
 * valid until released). */
void pt_batcher_free(pt_batcher *b);

/* Queues a job. PT_ERR_ARG for a request that cannot run (empty prompt, longer than the
 * context); *busy is set (and PT_OK returned with *out NULL) when the queue is full. */
pt_status pt_batcher_submit(pt_batcher *b, const pt_job_spec *s, pt_job **out, bool *busy);

/* Waits up to timeout_ms (< 0: forever) for text past `have` bytes or for the end; returns
 * a malloc'd copy of the new text (NULL if none yet) and its length in *n; *done when the job
 * has finished (all its text delivered once the returned text is consumed). */
char *pt_job_poll(pt_job *j, size_t have, int timeout_ms, size_t *n, bool *done);
/* Waits for the end (timeout_ms < 0: forever); true when finished. */
bool pt_job_wait(pt_job *j, int timeout_ms);
/* The result; only valid once the job has finished. */
const pt_job_result *pt_job_result_get(const pt_job *j);
void pt_job_cancel(pt_job *j);
void pt_job_release(pt_job *j);

typedef struct {
    int active, queued;
    long jobs_done, tokens_generated, tokens_prefilled, steps;
} pt_batcher_stats;
void pt_batcher_get_stats(pt_batcher *b, pt_batcher_stats *s);

/* Tokenises the choices of a choice job: text_before is the prompt text (encoded with
 * add_special), and each choice is the continuation. Encoding prompt+choice jointly keeps the
 * tokens a tokenizer would really produce at the boundary; the shared prefix is the longest
 * run all of them agree on with the prompt (at most all but one token of each), and each
 * choice's ids are what follows it. Outputs are malloc'd: *prefix (n_prefix), ids[k] (n[k]). */
pt_status pt_batcher_choice_tokens(const struct pt_tokenizer *tok, const char *text_before, bool add_special,
                                   const char *const *choices, int n_choices, int32_t **prefix, int *n_prefix,
                                   int32_t ***ids, int **n);

/* Renders a conversation with template t (PT_CHAT_NONE: alpaca) and the generation prompt,
 * and tokenises it as the checkpoint expects: templates that begin with BOS write it as text,
 * alpaca is plain text and gets BOS from the tokenizer's own rule (*add_special says which).
 * *text (the rendered prompt) and *ids are malloc'd. */
pt_status pt_batcher_encode_chat(const struct pt_tokenizer *tok, pt_chat_template t, const pt_chat_msg *msgs, int n_msgs, char **text,
                                 int32_t **ids, int *n_ids, bool *add_special);

#endif
