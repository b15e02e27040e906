/* `politune serve`: an OpenAI-compatible HTTP server (libmicrohttpd) in front of the
 * continuous batcher.
 *
 *   GET  /health                  {"status": "ok", ...} (no key needed)
 *   GET  /v1/models               the one model served
 *   POST /v1/chat/completions     chat (rendered with the model's template; alpaca when the
 *                                 checkpoint has none), streaming with server-sent events
 *   POST /v1/completions          raw text or token-id prompts, streaming too
 *   GET  /v1/adapters             the LoRA adapters loaded: [{id, name, path, scale}] (scale:
 *                                 the default a request gets); /lora-adapters too (llama-server)
 *   POST /v1/adapters             sets the default scales: [{id or name, scale}], those not
 *                                 listed 0 (llama-server's rule); answers with the new list
 *
 * Adapters per request: "adapters": [{"name": "left", "scale": 0.7}] (those not listed: 0);
 * without it, "model": "base" runs no adapter and "model": "<adapter name>" that adapter at
 * scale 1, so an unmodified OpenAI client compares the sides; any other model name gets the
 * default scales. An unknown adapter name is a 400 listing the known ones. Requests with
 * different choices share the batch: each cache slot carries its own scales.
 * (the same paths without the /v1 prefix are accepted.)
 *
 * It listens on 127.0.0.1 unless told otherwise; with an API key every route but /health needs
 * "Authorization: Bearer KEY" (401 otherwise). A body larger than max_body is refused with 413
 * (before it is read when Content-Length says so). Requests beyond the engine's slots wait in
 * a queue of max_queue; past that they get 503 with Retry-After. Every error is a JSON body
 * {"error": {"message", "type", "param", "code"}} with a 4xx/5xx status, never a crash.
 *
 * Each connection has its own thread (libmicrohttpd's thread-per-connection mode), which
 * blocks on its job while the batcher's single worker thread runs all of them together.
 * Stopping stops accepting, lets the requests in flight finish for a grace period, cancels
 * the rest (their clients get a 503 or the end of their stream) and joins every thread. */
#ifndef PT_SERVE_SERVER_H
#define PT_SERVE_SERVER_H

#include <stddef.h>

#include "engine/engine.h"
#include "model/model.h"
#include "tokenizer/chat.h"

typedef struct {
    const char *host;          /* IPv4 address to bind; default "127.0.0.1" */
    int port;                  /* 0: any free port (see pt_server_port) */
    const char *api_key;       /* NULL or "": no key */
    size_t max_body;           /* bytes; default 1 MiB */
    int max_queue;             /* requests waiting for a slot; default 64 */
    int max_connections;       /* default 256 */
    int max_per_client;        /* open connections per client address; default 32 */
    int reserve;               /* of max_connections, kept for addresses holding none; default 16 */
    int request_timeout_s;     /* a request's headers and body must arrive within this from the
                                  connection's start or its previous response; default 30 */
    int default_max_tokens;    /* chat requests without max_tokens; default 512 (completions: 16, as OpenAI) */
    int idle_timeout_s;        /* idle keep-alive connections are closed after this; default 120 */
    const char *model_id;      /* the name /v1/models reports; default: the model file's name */
    pt_chat_template chat;     /* PT_CHAT_NONE: alpaca */
    bool batch_invariant;      /* one sequence per forward pass (see batcher.h) */
    int n_adapters;            /* the adapters set on the engine (pt_engine_set_adapters), in its order */
    const char *const *adapter_names;  /* (n_adapters) distinct; not "base" */
    const char *const *adapter_paths;  /* (n_adapters) shown by GET /v1/adapters; may be NULL */
    const float *adapter_scales;       /* (n_adapters) the initial default scales; NULL: all 1 */
    void (*log)(void *user, const char *line); /* one line per request (any thread); may be NULL */
    void *log_user;
} pt_server_opts;

pt_server_opts pt_server_opts_default(void);

typedef struct pt_server pt_server;

/* Starts serving `m` with engine `e` (whose slots bound the batch; both must outlive the
 * server). The model needs a tokenizer. */
pt_status pt_server_start(pt_server **out, const pt_model *m, pt_engine *e, const pt_server_opts *o);
int pt_server_port(const pt_server *s);
typedef struct {
    long requests, errors, tokens_generated, tokens_prompt;
    long steps;            /* engine forward passes (fewer than tokens when requests share them) */
} pt_server_stats;
void pt_server_get_stats(pt_server *s, pt_server_stats *st);

/* Stops and frees the server: no new connections, grace_s for requests in flight, then
 * cancellation of what is left; `final` (may be NULL) receives the closing statistics. */
void pt_server_stop(pt_server *s, double grace_s, pt_server_stats *final);

#endif
