/* The judge: the LLM that scores posts and writes preference pairs. Two kinds behind one
 * interface:
 *
 *  - HTTP: speaks the OpenAI chat-completions API to any compatible server (politune serve,
 *    llama.cpp, vLLM, a hosted one). N requests in flight (libcurl multi), a timeout per
 *    request, and retries with exponential backoff (honouring Retry-After) on 429, 5xx and
 *    connection errors; any other 4xx is final. After the last retry the batch fails with a
 *    message naming the URL, the request and the last error.
 *  - in-process: the engine, through the continuous batcher, with as many sequences in one
 *    batch as the engine has slots.
 *
 * A request either wants free text, or one label out of a fixed list (a score on a scale).
 * How a label is obtained is the mode:
 *   text      the reply is parsed: the first label appearing in it as a whole word
 *   choice    the server restricts the reply to the labels (vLLM's `guided_choice`, which
 *             politune serve implements by log-probability); in-process: the likeliest label
 *   logprobs  the distribution over labels: in-process exactly (every label's log-probability
 *             after the prompt, prefix-shared); over HTTP from the first token's top_logprobs
 *             (labels that are one token), falling back to parsing the text
 * With a distribution the reply also carries each label's probability, so a stage can report
 * an expected score instead of a hard label. */
#ifndef PT_DATA_JUDGE_H
#define PT_DATA_JUDGE_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/engine.h"
#include "tokenizer/chat.h"
#include "util/status.h"

typedef enum { PT_JUDGE_TEXT = 0, PT_JUDGE_CHOICE, PT_JUDGE_LOGPROBS } pt_judge_mode;

typedef struct {
    /* HTTP */
    const char *url;           /* base URL, with or without /v1 ("http://127.0.0.1:8080/v1") */
    const char *model_name;    /* the request's "model" (default "default") */
    const char *api_key;       /* sent as a bearer token; NULL: none */
    int concurrency;           /* requests in flight (default 4) */
    double timeout_s;          /* whole request (default 120) */
    double connect_timeout_s;  /* default 10 */
    int retries;               /* attempts after the first (default 4) */
    double backoff_s;          /* wait before the first retry (default 0.5), doubled each time */
    double backoff_max_s;      /* cap on one wait (default 30) */
    /* both */
    pt_judge_mode mode;
    const char *system;        /* optional system message for every request */
    float temperature;         /* default 0 */
    int max_tokens;            /* free-text replies (default 256) */
    int label_max_tokens;      /* text-mode label replies (default 16) */
    bool batch_invariant;      /* in-process: one sequence per forward pass, so generated text
                                  repeats exactly in a resumed run (see engine/batcher.h) */
} pt_judge_opts;

pt_judge_opts pt_judge_opts_default(void);

typedef struct {
    const char *prompt;              /* the user message */
    const char *const *labels;       /* NULL: free text */
    int n_labels;
    int max_tokens;                  /* 0: the judge's default */
    uint64_t seed;                   /* sampling seed (stable per record for repeatable runs) */
    const char *what;                /* names the request in messages ("record 3fa2... ideology") */
} pt_judge_req;

typedef struct {
    char *text;        /* the reply (malloc'd; "" when empty) */
    int label;         /* label requests: index of the label given, -1 when the reply has none */
    double *probs;     /* (n_labels) renormalised label probabilities, or NULL */
    int attempts;      /* HTTP attempts made */
} pt_judge_reply;

typedef struct pt_judge pt_judge;

pt_status pt_judge_http_new(pt_judge **out, const pt_judge_opts *o);
/* In-process judge on engine e (not owned; as many requests run together as it has slots).
 * chat: PT_CHAT_NONE means alpaca. */
pt_status pt_judge_local_new(pt_judge **out, pt_engine *e, pt_chat_template chat, const pt_judge_opts *o);
void pt_judge_free(pt_judge *j);

/* Runs n requests (concurrently, as the judge allows) and fills replies[0..n). Failing to get
 * a reply at all (network errors past the retries, a 4xx, a server error) fails the whole
 * call; a reply that is not in the requested format is not a failure (label -1). */
pt_status pt_judge_run(pt_judge *j, int n, const pt_judge_req *reqs, pt_judge_reply *replies);
void pt_judge_reply_free(pt_judge_reply *r);

/* A short description for summaries ("http://127.0.0.1:8080/v1 model default, text mode"). */
const char *pt_judge_describe(const pt_judge *j);
long pt_judge_retries(const pt_judge *j);   /* retried HTTP attempts so far */
long pt_judge_requests(const pt_judge *j);  /* requests answered so far */

/* Finds a label in free text: the first whole-word occurrence of any label (longest first at a
 * position; "7/9" and "Score: 7." give "7", "17" gives no "7"). -1 when none. */
int pt_judge_parse_label(const char *text, const char *const *labels, int n_labels);

/* Parses an OpenAI chat-completions response body: the reply text (malloc'd) and, when
 * labels are given and the body has logprobs, the label distribution from the first token's
 * top_logprobs (probs, n_labels, set only when some label has mass). The fuzz target drives it. */
pt_status pt_judge_parse_response(const char *body, size_t len, const char *const *labels, int n_labels, char **text, double *probs,
                                  bool *has_probs);

#endif
