/* The OpenAI-compatible request bodies `politune serve` accepts, parsed and checked into a
 * plain struct (no server, engine or tokenizer involved, so the fuzz target can drive it):
 *
 *   POST /v1/chat/completions  model, messages [{role: system|developer|user|assistant,
 *                              content: text or [{type: "text", text}]}], max_tokens /
 *                              max_completion_tokens, temperature, top_p, top_k, seed, stop,
 *                              stream, stream_options.include_usage, logprobs, top_logprobs, n (1)
 *   POST /v1/completions       the same with prompt (a string, or token ids) instead of messages,
 *                              and logprobs as a number of alternatives
 *   both: guided_choice        (vLLM's extension) the reply is one of these strings, picked by
 *                              log-probability
 *         ignore_eos           (vLLM's extension) generate past end-of-sequence tokens
 *         adapters             [{name or id, scale}]: the LoRA adapters loaded with
 *                              `serve --adapter NAME=DIR` and their scales for this request
 *                              (those not listed: 0); "lora" (llama-server's name) is the same
 *
 * Unknown keys are ignored, as OpenAI-compatible servers do; a known key with a wrong type or
 * an out-of-range value is an error naming the parameter. */
#ifndef PT_SERVE_OPENAI_H
#define PT_SERVE_OPENAI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "util/status.h"

typedef enum { PT_OAI_CHAT = 0, PT_OAI_COMPLETION } pt_oai_kind;

typedef struct {
    char *role;     /* "system", "user" or "assistant" ("developer" is read as "system") */
    char *content;
} pt_oai_msg;

/* One entry of "adapters" / POST /v1/adapters: a name, or an id (index) when name is NULL. */
typedef struct {
    char *name;
    int id;
    double scale;
} pt_oai_adapter;

/* Parses [{"name": "left" | "id": 0, "scale": 0.7}, ...] (at most 64 entries); `key` names
 * the list in messages. *out is malloc'd (free with pt_oai_adapters_free). */
pt_status pt_oai_parse_adapters(json_t *list, const char *key, pt_oai_adapter **out, int *n, const char **param);
void pt_oai_adapters_free(pt_oai_adapter *a, int n);

#define PT_OAI_MAX_STOP 16
#define PT_OAI_MAX_CHOICES 256

typedef struct {
    pt_oai_kind kind;
    char *model;             /* NULL when absent */
    pt_oai_msg *msgs;        /* chat */
    int n_msgs;
    char *prompt;            /* completions: a text prompt, or NULL with prompt_ids */
    int32_t *prompt_ids;
    int n_prompt_ids;
    int max_tokens;          /* -1 when absent */
    double temperature;      /* default 1 */
    double top_p;            /* default 1 */
    int top_k;               /* default 0 (no limit) */
    bool has_seed;
    uint64_t seed;
    char **stop;
    int n_stop;
    bool stream, include_usage;
    bool ignore_eos;
    bool logprobs;
    int top_logprobs;        /* 0..20 */
    char **choices;          /* guided_choice */
    int n_choices;
    bool has_adapters;       /* "adapters" (or "lora") given, possibly empty */
    int n_adapters;
    pt_oai_adapter *adapters; /* (n_adapters) */
} pt_oai_request;

/* Parses a request body. On failure returns PT_ERR_FORMAT (not JSON) or PT_ERR_ARG (a bad
 * parameter) with the message, and *param names the parameter (or NULL). */
pt_status pt_oai_parse(pt_oai_kind kind, const char *body, size_t len, pt_oai_request *r, const char **param);
void pt_oai_request_free(pt_oai_request *r);

/* {"error": {"message", "type", "param", "code"}} as a malloc'd string. */
char *pt_oai_error_json(const char *message, const char *type, const char *param, const char *code);

#endif
