/* The HTTP side of `politune serve`: routing, authentication, body limits, OpenAI JSON
 * responses and server-sent events over libmicrohttpd (see server.h). */
#include "serve/server.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "engine/batcher.h"
#include "serve/openai.h"
#include "tokenizer/tokenizer.h"
#include "util/clock.h"

struct pt_server {
    struct MHD_Daemon *d;
    const pt_model *m;
    pt_engine *e;
    pt_batcher *b;
    pt_server_opts o;
    char *model_id, *api_key;
    int n_adapters;
    char **adapter_names, **adapter_paths;       /* (n_adapters) */
    float default_scales[PT_ENGINE_MAX_ADAPTERS]; /* under mu: POST /v1/adapters sets them */
    pt_chat_template chat;
    int port;
    int32_t stop_ids[16];
    int n_stop_ids;
    pthread_mutex_t mu;
    /* Slow-loris defence: each connection is tracked from accept to close so that one address
     * cannot hold more than its share (max_per_client, and never the reserve once it holds
     * one), and a request still arriving after request_timeout_s is cut by the reaper thread.
     * libmicrohttpd's own timeout is reset by every byte, so it cannot do the latter. */
    pthread_mutex_t conn_mu;
    struct conn_track *conns;
    int n_conns;
    pthread_t reaper;
    bool reaper_started, reaper_stop;
    bool closing;        /* no new jobs; the batcher may be gone */
    int n_streams;       /* streamed responses not yet finished */
    long next_id;
    pt_server_stats stats;
};

typedef struct conn_track {
    struct conn_track *next, *prev;
    struct sockaddr_storage addr; /* client address, compared without the port */
    int fd;
    double phase_start;           /* when the request now arriving may have started */
    bool receiving;               /* a request is not yet complete */
    bool cut;                     /* the reaper has shut the socket down */
} conn_track;

static void set_receiving(pt_server *s, struct MHD_Connection *c, bool receiving);

enum { R_NONE, R_HEALTH, R_MODELS, R_CHAT, R_COMPLETIONS, R_ADAPTERS };

typedef struct {
    pt_server *s;
    int route;
    char *body;
    size_t len, cap;
    bool too_big;
    bool responded;
    bool post;       /* R_ADAPTERS: POST sets, GET lists */
    double t0;
} conn_ctx;

pt_server_opts pt_server_opts_default(void) {
    pt_server_opts o = {0};
    o.host = "127.0.0.1";
    o.max_body = 1 << 20;
    o.max_queue = 64;
    o.max_connections = 256;
    o.default_max_tokens = 512;
    o.idle_timeout_s = 120;
    o.max_per_client = 32;
    o.reserve = 16;
    o.request_timeout_s = 30;
    return o;
}

static void logf_(pt_server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(pt_server *s, const char *fmt, ...) {
    if (!s->o.log) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    s->o.log(s->o.log_user, line);
}

/* A JSON string of generated text. The tokenizer decodes lossily (ill-formed UTF-8 becomes
 * U+FFFD), so text is always valid; the fallback only keeps a broken invariant from taking the
 * response down. */
static json_t *jtext(const char *s, size_t n) {
    json_t *v = json_stringn(s, n);
    return v ? v : json_string("\xEF\xBF\xBD");
}

/* ---- responses ----------------------------------------------------------------------------- */

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *type, char *body, const char *retry_after) {
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!r) { free(body); return MHD_NO; }
    MHD_add_response_header(r, "Content-Type", type);
    if (retry_after) MHD_add_response_header(r, "Retry-After", retry_after);
    if (status == 405) MHD_add_response_header(r, "Allow", "GET, POST");
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *o) {
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s) return MHD_NO;
    return send_text(c, status, "application/json", s, NULL);
}

static enum MHD_Result send_error(conn_ctx *x, struct MHD_Connection *c, unsigned status, const char *type, const char *param,
                                  const char *code, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static enum MHD_Result send_error(conn_ctx *x, struct MHD_Connection *c, unsigned status, const char *type, const char *param,
                                  const char *code, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    x->responded = true;
    pthread_mutex_lock(&x->s->mu);
    x->s->stats.errors++;
    pthread_mutex_unlock(&x->s->mu);
    char *body = pt_oai_error_json(msg, type, param, code);
    if (!body) return MHD_NO;
    return send_text(c, status, "application/json", body, status == 503 || status == 429 ? "1" : NULL);
}

/* ---- generation requests ------------------------------------------------------------------- */

typedef struct {
    pt_server *s;
    pt_job *job;
    pt_oai_kind kind;
    char id[48];
    long created;
    bool include_usage, role_sent, final_sent, done_sent;
    size_t have;          /* bytes of the job's text already sent */
    char *pending;        /* SSE bytes not yet handed to MHD */
    size_t pend_len, pend_off;
    double t0;
} stream_ctx;

static json_t *usage_json(const pt_job_result *r) {
    return json_pack("{s:i,s:i,s:i}", "prompt_tokens", r->n_prompt, "completion_tokens", r->n_generated, "total_tokens",
                     r->n_prompt + r->n_generated);
}

static json_t *token_str(const pt_model *m, int32_t id) {
    char *t = NULL;
    if (!m->tok || pt_tokenizer_decode(m->tok, &id, 1, false, &t)) return json_string("");
    json_t *v = jtext(t, strlen(t));
    free(t);
    return v;
}

static json_t *bytes_json(json_t *str) {
    json_t *a = json_array();
    const unsigned char *p = (const unsigned char *)json_string_value(str);
    for (size_t i = 0; p && i < json_string_length(str); i++) json_array_append_new(a, json_integer(p[i]));
    return a;
}

static json_t *chat_logprobs_json(const pt_model *m, const pt_job_result *r) {
    json_t *content = json_array();
    for (int i = 0; i < r->n_generated; i++) {
        const pt_token_logprob *lp = &r->logprobs[i];
        json_t *tok = token_str(m, lp->token), *top = json_array();
        for (int k = 0; k < lp->n_top; k++) {
            json_t *t = token_str(m, lp->top_id[k]);
            json_array_append_new(top, json_pack("{s:o,s:f,s:o}", "token", t, "logprob", (double)lp->top_logprob[k], "bytes", bytes_json(t)));
        }
        json_array_append_new(content, json_pack("{s:o,s:f,s:o,s:o}", "token", tok, "logprob", (double)lp->logprob, "bytes",
                                                 bytes_json(tok), "top_logprobs", top));
    }
    return json_pack("{s:o}", "content", content);
}

static json_t *completion_logprobs_json(const pt_model *m, const pt_job_result *r) {
    json_t *toks = json_array(), *lps = json_array(), *tops = json_array();
    for (int i = 0; i < r->n_generated; i++) {
        const pt_token_logprob *lp = &r->logprobs[i];
        json_array_append_new(toks, token_str(m, lp->token));
        json_array_append_new(lps, json_real(lp->logprob));
        json_t *top = json_object();
        for (int k = 0; k < lp->n_top; k++) {
            json_t *t = token_str(m, lp->top_id[k]);
            json_object_set_new(top, json_string_value(t), json_real(lp->top_logprob[k]));
            json_decref(t);
        }
        json_array_append_new(tops, top);
    }
    return json_pack("{s:o,s:o,s:o}", "tokens", toks, "token_logprobs", lps, "top_logprobs", tops);
}

static const char *finish_reason(const pt_job_result *r) { return !strcmp(r->finish, "length") ? "length" : "stop"; }

static json_t *full_response(pt_server *s, pt_oai_kind kind, const char *id, long created, const pt_job_result *r, bool logprobs) {
    json_t *choice;
    json_t *text = jtext(r->text, strlen(r->text));
    json_t *lp = logprobs && r->logprobs ? (kind == PT_OAI_CHAT ? chat_logprobs_json(s->m, r) : completion_logprobs_json(s->m, r)) : json_null();
    if (kind == PT_OAI_CHAT)
        choice = json_pack("{s:i,s:{s:s,s:o},s:o,s:s}", "index", 0, "message", "role", "assistant", "content", text, "logprobs", lp,
                           "finish_reason", finish_reason(r));
    else
        choice = json_pack("{s:o,s:i,s:o,s:s}", "text", text, "index", 0, "logprobs", lp, "finish_reason", finish_reason(r));
    return json_pack("{s:s,s:s,s:I,s:s,s:[o],s:o}", "id", id, "object", kind == PT_OAI_CHAT ? "chat.completion" : "text_completion",
                     "created", (json_int_t)created, "model", s->model_id, "choices", choice, "usage", usage_json(r));
}

static bool pend_add(stream_ctx *sc, json_t *o) {
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s) return false;
    size_t n = strlen(s), need = sc->pend_len + n + 16; /* "data: " ... "\n\n" and the NUL */
    char *p = realloc(sc->pending, need);
    if (!p) { free(s); return false; }
    sc->pending = p;
    sc->pend_len += (size_t)sprintf(p + sc->pend_len, "data: %s\n\n", s);
    free(s);
    return true;
}

static json_t *chunk(stream_ctx *sc, json_t *choice) {
    return json_pack("{s:s,s:s,s:I,s:s,s:[o]}", "id", sc->id, "object", sc->kind == PT_OAI_CHAT ? "chat.completion.chunk" : "text_completion",
                     "created", (json_int_t)sc->created, "model", sc->s->model_id, "choices", choice);
}

static json_t *delta_choice(stream_ctx *sc, const char *text, size_t n, const char *finish) {
    json_t *fin = finish ? json_string(finish) : json_null();
    if (sc->kind == PT_OAI_CHAT) {
        json_t *delta = json_object();
        if (!sc->role_sent) { json_object_set_new(delta, "role", json_string("assistant")); sc->role_sent = true; }
        if (text) json_object_set_new(delta, "content", jtext(text, n));
        return json_pack("{s:i,s:o,s:n,s:o}", "index", 0, "delta", delta, "logprobs", "finish_reason", fin);
    }
    return json_pack("{s:o,s:i,s:n,s:o}", "text", jtext(text ? text : "", text ? n : 0), "index", 0, "logprobs", "finish_reason", fin);
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    stream_ctx *sc = cls;
    (void)pos;
    while (sc->pend_off == sc->pend_len) {
        sc->pend_len = sc->pend_off = 0;
        if (sc->done_sent) return MHD_CONTENT_READER_END_OF_STREAM;
        if (sc->final_sent) {
            static const char done[] = "data: [DONE]\n\n";
            char *p = realloc(sc->pending, sizeof done);
            if (!p) return MHD_CONTENT_READER_END_WITH_ERROR;
            sc->pending = p;
            memcpy(p, done, sizeof done - 1);
            sc->pend_len = sizeof done - 1;
            sc->done_sent = true;
            break;
        }
        size_t n = 0;
        bool done = false;
        char *t = pt_job_poll(sc->job, sc->have, 1000, &n, &done);
        if (t) {
            sc->have += n;
            bool ok = pend_add(sc, chunk(sc, delta_choice(sc, t, n, NULL)));
            free(t);
            if (!ok) return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (done) {
            const pt_job_result *r = pt_job_result_get(sc->job);
            if (!strcmp(r->finish, "error") || !strcmp(r->finish, "cancelled")) {
                char *e = pt_oai_error_json(!strcmp(r->finish, "error") ? r->error : "the request was cancelled (server shutting down)",
                                            !strcmp(r->finish, "error") ? "server_error" : "service_unavailable", NULL, NULL);
                json_t *o = e ? json_loads(e, 0, NULL) : NULL;
                free(e);
                if (!pend_add(sc, o)) return MHD_CONTENT_READER_END_WITH_ERROR;
            } else {
                if (!pend_add(sc, chunk(sc, delta_choice(sc, NULL, 0, finish_reason(r))))) return MHD_CONTENT_READER_END_WITH_ERROR;
                if (sc->include_usage) {
                    json_t *u = json_pack("{s:s,s:s,s:I,s:s,s:[],s:o}", "id", sc->id, "object",
                                          sc->kind == PT_OAI_CHAT ? "chat.completion.chunk" : "text_completion", "created",
                                          (json_int_t)sc->created, "model", sc->s->model_id, "choices", "usage", usage_json(r));
                    if (!pend_add(sc, u)) return MHD_CONTENT_READER_END_WITH_ERROR;
                }
            }
            sc->final_sent = true;
        }
    }
    size_t n = sc->pend_len - sc->pend_off;
    if (n > max) n = max;
    memcpy(buf, sc->pending + sc->pend_off, n);
    sc->pend_off += n;
    return (ssize_t)n;
}

static void stream_free(void *cls) {
    stream_ctx *sc = cls;
    pt_server *s = sc->s;
    const pt_job_result *r = NULL;
    if (!pt_job_wait(sc->job, 0)) pt_job_cancel(sc->job); /* the client went away */
    else r = pt_job_result_get(sc->job);
    pthread_mutex_lock(&s->mu);
    if (r) s->stats.tokens_generated += r->n_generated, s->stats.tokens_prompt += r->n_prompt;
    s->n_streams--;
    pthread_mutex_unlock(&s->mu);
    logf_(s, "%s stream %s %d+%d tokens %.3f s", sc->id, r ? r->finish : "disconnected", r ? r->n_prompt : 0, r ? r->n_generated : 0,
          pt_now_s() - sc->t0);
    pt_job_release(sc->job);
    free(sc->pending);
    free(sc);
}

/* Whether the client closed its side (checked while a non-streaming request waits). */
static bool client_gone(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return false;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* Renders and tokenises the prompt; *text gets the prompt text (for choices). */
static pt_status build_prompt(pt_server *s, const pt_oai_request *q, int32_t **ids, int *n, char **text, bool *add_special) {
    const pt_tokenizer *tok = s->m->tok;
    size_t nn = 0;
    *text = NULL;
    *add_special = true;
    if (q->kind == PT_OAI_COMPLETION && q->prompt_ids) {
        for (int i = 0; i < q->n_prompt_ids; i++)
            if (q->prompt_ids[i] >= s->m->cfg.vocab_size)
                return pt_error(PT_ERR_ARG, "prompt token %d is %d, outside the vocabulary of %d", i, q->prompt_ids[i], s->m->cfg.vocab_size);
        *ids = malloc(sizeof(int32_t) * q->n_prompt_ids);
        if (!*ids) return pt_error(PT_ERR_OOM, "out of memory");
        memcpy(*ids, q->prompt_ids, sizeof(int32_t) * q->n_prompt_ids);
        *n = q->n_prompt_ids;
        return PT_OK;
    }
    if (q->kind == PT_OAI_COMPLETION) {
        if (!(*text = strdup(q->prompt))) return pt_error(PT_ERR_OOM, "out of memory");
    } else {
        pt_chat_msg *msgs = malloc(sizeof *msgs * q->n_msgs);
        if (!msgs) return pt_error(PT_ERR_OOM, "out of memory");
        for (int i = 0; i < q->n_msgs; i++) msgs[i] = (pt_chat_msg){q->msgs[i].role, q->msgs[i].content};
        pt_status st = pt_batcher_encode_chat(tok, s->chat, msgs, q->n_msgs, text, ids, n, add_special);
        free(msgs);
        return st;
    }
    pt_status st = pt_tokenizer_encode(tok, *text, strlen(*text), *add_special, ids, &nn);
    *n = (int)nn;
    return st;
}

/* ---- adapters ------------------------------------------------------------------------------ */

static int adapter_index(const pt_server *s, const pt_oai_adapter *a) {
    if (!a->name) return a->id < s->n_adapters ? a->id : -1;
    for (int i = 0; i < s->n_adapters; i++)
        if (!strcmp(s->adapter_names[i], a->name)) return i;
    return -1;
}

/* "unknown adapter 'x' (known: left, right)" */
static pt_status unknown_adapter(const pt_server *s, const pt_oai_adapter *a, const char *key, const char **param) {
    char known[512] = "";
    for (int i = 0; i < s->n_adapters; i++) {
        size_t n = strlen(known);
        snprintf(known + n, sizeof known - n, "%s%s", i ? ", " : "", s->adapter_names[i]);
    }
    *param = key;
    if (a->name) return pt_error(PT_ERR_ARG, "unknown adapter '%.100s' (known: %s)", a->name, s->n_adapters ? known : "none; start the server with --adapter NAME=DIR");
    return pt_error(PT_ERR_ARG, "unknown adapter id %d (known: 0..%d: %s)", a->id, s->n_adapters - 1, s->n_adapters ? known : "none");
}

/* Each adapter's scale from a list of {name or id, scale}: the listed ones, the others 0. */
static pt_status scales_from_list(const pt_server *s, const pt_oai_adapter *list, int n, const char *key, float *out, const char **param) {
    for (int i = 0; i < s->n_adapters; i++) out[i] = 0.0f;
    for (int k = 0; k < n; k++) {
        int i = adapter_index(s, &list[k]);
        if (i < 0) return unknown_adapter(s, &list[k], key, param);
        out[i] = (float)list[k].scale;
    }
    return PT_OK;
}

/* A request's scales: its "adapters" list, else what its model name selects ("base": none;
 * an adapter's name: that one at 1), else the defaults. */
static pt_status request_scales(pt_server *s, const pt_oai_request *q, float *out, const char **param) {
    if (q->has_adapters) return scales_from_list(s, q->adapters, q->n_adapters, "adapters", out, param);
    if (q->model && !strcmp(q->model, "base")) {
        for (int i = 0; i < s->n_adapters; i++) out[i] = 0.0f;
        return PT_OK;
    }
    for (int i = 0; q->model && i < s->n_adapters; i++)
        if (!strcmp(q->model, s->adapter_names[i])) {
            for (int k = 0; k < s->n_adapters; k++) out[k] = k == i ? 1.0f : 0.0f;
            return PT_OK;
        }
    pthread_mutex_lock(&s->mu);
    memcpy(out, s->default_scales, sizeof(float) * s->n_adapters);
    pthread_mutex_unlock(&s->mu);
    return PT_OK;
}

static json_t *adapters_json(pt_server *s) {
    json_t *a = json_array();
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n_adapters; i++)
        json_array_append_new(a, json_pack("{s:i,s:s,s:s?,s:f}", "id", i, "name", s->adapter_names[i], "path", s->adapter_paths[i], "scale",
                                           (double)s->default_scales[i]));
    pthread_mutex_unlock(&s->mu);
    return a;
}

static enum MHD_Result handle_adapters(conn_ctx *x, struct MHD_Connection *c, bool post) {
    pt_server *s = x->s;
    if (post) {
        json_error_t err;
        json_t *body = json_loadb(x->body ? x->body : "", x->len, 0, &err);
        if (!body) return send_error(x, c, 400, "invalid_request_error", NULL, NULL, "the body is not JSON: %s", err.text);
        pt_oai_adapter *list = NULL;
        int n = 0;
        const char *param = NULL;
        float scales[PT_ENGINE_MAX_ADAPTERS];
        pt_status st = pt_oai_parse_adapters(body, "adapters", &list, &n, &param);
        if (!st) st = scales_from_list(s, list, n, "adapters", scales, &param);
        json_decref(body);
        pt_oai_adapters_free(list, n);
        if (st == PT_ERR_OOM) return send_error(x, c, 500, "server_error", NULL, NULL, "out of memory");
        if (st) return send_error(x, c, 400, "invalid_request_error", param, NULL, "%s", pt_errmsg());
        pthread_mutex_lock(&s->mu);
        memcpy(s->default_scales, scales, sizeof(float) * s->n_adapters);
        pthread_mutex_unlock(&s->mu);
        logf_(s, "default adapter scales set (%d adapters)", s->n_adapters);
    }
    x->responded = true;
    return send_json(c, 200, adapters_json(s));
}

static enum MHD_Result handle_generate(conn_ctx *x, struct MHD_Connection *c, pt_oai_kind kind) {
    pt_server *s = x->s;
    pt_oai_request q;
    const char *param = NULL;
    pt_status st = pt_oai_parse(kind, x->body, x->len, &q, &param);
    if (st == PT_ERR_OOM) return send_error(x, c, 500, "server_error", NULL, NULL, "out of memory");
    if (st) return send_error(x, c, 400, "invalid_request_error", param, NULL, "%s", pt_errmsg());
    int32_t *ids = NULL, *prefix = NULL, **cids = NULL;
    int n = 0, n_prefix = 0, *ncids = NULL;
    char *text = NULL;
    bool add_special = true;
    enum MHD_Result ret;
    float scales[PT_ENGINE_MAX_ADAPTERS];
    if ((st = request_scales(s, &q, scales, &param))) {
        ret = send_error(x, c, 400, "invalid_request_error", param, "unknown_adapter", "%s", pt_errmsg());
        goto out;
    }
    st = build_prompt(s, &q, &ids, &n, &text, &add_special);
    if (!st && q.n_choices) {
        if (!text) st = pt_error(PT_ERR_ARG, "guided_choice needs a text prompt");
        else st = pt_batcher_choice_tokens(s->m->tok, text, add_special, (const char *const *)q.choices, q.n_choices, &prefix, &n_prefix, &cids,
                                           &ncids);
    }
    if (st) {
        ret = st == PT_ERR_OOM ? send_error(x, c, 500, "server_error", NULL, NULL, "out of memory")
                               : send_error(x, c, 400, "invalid_request_error", q.n_choices ? "guided_choice" : kind == PT_OAI_CHAT ? "messages" : "prompt",
                                            NULL, "%s", pt_errmsg());
        goto out;
    }
    pt_job_spec spec = {0};
    spec.prompt = prefix ? prefix : ids;
    spec.n_prompt = prefix ? n_prefix : n;
    spec.sampling = pt_sampling_default();
    spec.sampling.temperature = (float)q.temperature;
    spec.sampling.top_p = (float)q.top_p;
    spec.sampling.top_k = q.top_k;
    pthread_mutex_lock(&s->mu);
    long rid = ++s->next_id;
    pthread_mutex_unlock(&s->mu);
    spec.sampling.seed = q.has_seed ? q.seed : (uint64_t)time(NULL) * 1000003u + (uint64_t)rid;
    spec.max_new_tokens = q.max_tokens >= 0 ? q.max_tokens : kind == PT_OAI_CHAT ? s->o.default_max_tokens : 16;
    spec.stop_ids = s->n_stop_ids && !q.ignore_eos ? s->stop_ids : NULL;
    spec.n_stop_ids = q.ignore_eos ? 0 : s->n_stop_ids;
    spec.stop_strings = (const char *const *)q.stop;
    spec.n_stop_strings = q.n_stop;
    spec.top_logprobs = q.logprobs ? q.top_logprobs : -1;
    spec.n_choices = q.n_choices;
    spec.choice_ids = (const int32_t *const *)cids;
    spec.n_choice = ncids;
    spec.choice_text = (const char *const *)q.choices;
    spec.adapter_scales = s->n_adapters ? scales : NULL;
    spec.n_adapter_scales = s->n_adapters;
    pt_job *job = NULL;
    bool busy = false;
    pthread_mutex_lock(&s->mu);
    if (s->closing) busy = true;
    else st = pt_batcher_submit(s->b, &spec, &job, &busy);
    if (!st && !busy) s->stats.requests++;
    pthread_mutex_unlock(&s->mu);
    if (st) {
        ret = send_error(x, c, 400, "invalid_request_error", kind == PT_OAI_CHAT ? "messages" : "prompt", "context_length_exceeded", "%s",
                         pt_errmsg());
        goto out;
    }
    if (busy) {
        ret = send_error(x, c, 503, "service_unavailable", NULL, "overloaded", "%s",
                         s->closing ? "the server is shutting down" : "too many requests waiting; retry later");
        goto out;
    }
    char id[48];
    snprintf(id, sizeof id, "%s-%ld", kind == PT_OAI_CHAT ? "chatcmpl" : "cmpl", rid);
    long created = (long)time(NULL);
    if (q.stream) {
        stream_ctx *sc = calloc(1, sizeof *sc);
        if (!sc) { pt_job_cancel(job); pt_job_release(job); ret = MHD_NO; goto out; }
        sc->s = s;
        sc->job = job;
        sc->kind = kind;
        memcpy(sc->id, id, sizeof id);
        sc->created = created;
        sc->include_usage = q.include_usage;
        sc->t0 = x->t0;
        pthread_mutex_lock(&s->mu);
        s->n_streams++;
        pthread_mutex_unlock(&s->mu);
        struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_reader, sc, stream_free);
        if (!r) { stream_free(sc); ret = MHD_NO; goto out; }
        MHD_add_response_header(r, "Content-Type", "text/event-stream");
        MHD_add_response_header(r, "Cache-Control", "no-cache");
        x->responded = true;
        ret = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        goto out;
    }
    while (!pt_job_wait(job, 200))
        if (client_gone(c)) pt_job_cancel(job);
    const pt_job_result *r = pt_job_result_get(job);
    pthread_mutex_lock(&s->mu);
    s->stats.tokens_generated += r->n_generated;
    s->stats.tokens_prompt += r->n_prompt;
    pthread_mutex_unlock(&s->mu);
    logf_(s, "%s %s %d+%d tokens %.3f s (queued %.3f s)", id, r->finish, r->n_prompt, r->n_generated, pt_now_s() - x->t0, r->queued_s);
    if (!strcmp(r->finish, "error")) ret = send_error(x, c, 500, "server_error", NULL, NULL, "generation failed: %s", r->error);
    else if (!strcmp(r->finish, "cancelled"))
        ret = send_error(x, c, 503, "service_unavailable", NULL, NULL, "the request was cancelled (server shutting down or client gone)");
    else {
        x->responded = true;
        ret = send_json(c, 200, full_response(s, kind, id, created, r, q.logprobs));
    }
    pt_job_release(job);
out:
    free(ids);
    free(prefix);
    free(text);
    for (int k = 0; cids && k < q.n_choices; k++) free(cids[k]);
    free(cids);
    free(ncids);
    pt_oai_request_free(&q);
    return ret;
}

/* ---- routing ------------------------------------------------------------------------------- */

static int route_of(const char *url) {
    if (!strncmp(url, "/v1/", 4)) url += 3;
    if (!strcmp(url, "/health")) return R_HEALTH;
    if (!strcmp(url, "/models")) return R_MODELS;
    if (!strcmp(url, "/chat/completions")) return R_CHAT;
    if (!strcmp(url, "/completions")) return R_COMPLETIONS;
    if (!strcmp(url, "/adapters") || !strcmp(url, "/lora-adapters")) return R_ADAPTERS;
    return R_NONE;
}

static bool key_ok(pt_server *s, struct MHD_Connection *c) {
    if (!s->api_key) return true;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7)) return false;
    h += 7;
    while (*h == ' ') h++;
    size_t a = strlen(h), b = strlen(s->api_key);
    unsigned diff = a != b;
    for (size_t i = 0; i < b; i++) diff |= (unsigned char)s->api_key[i] ^ (unsigned char)(i < a ? h[i] : 0);
    return diff == 0;
}

static void free_adapter_names(pt_server *s) {
    for (int i = 0; i < s->n_adapters; i++) {
        if (s->adapter_names) free(s->adapter_names[i]);
        if (s->adapter_paths) free(s->adapter_paths[i]);
    }
    free(s->adapter_names);
    free(s->adapter_paths);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    pt_server *s = cls;
    conn_ctx *x = *con_cls;
    if (!x) {
        if (!(x = calloc(1, sizeof *x))) return MHD_NO;
        x->s = s;
        x->t0 = pt_now_s();
        x->route = route_of(url);
        *con_cls = x;
        bool post = !strcmp(method, "POST"), get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
        if (x->route == R_NONE)
            return send_error(x, c, 404, "invalid_request_error", NULL, "not_found", "no route %s %.200s (try /v1/chat/completions, /v1/completions, /v1/models, /health)",
                              method, url);
        bool wants_post = x->route == R_CHAT || x->route == R_COMPLETIONS;
        if (x->route == R_ADAPTERS) x->post = post;
        if (x->route == R_ADAPTERS ? !post && !get : (wants_post && !post) || (!wants_post && !get))
            return send_error(x, c, 405, "invalid_request_error", NULL, "method_not_allowed", "%s is not allowed on %.200s (use %s)", method,
                              url, wants_post ? "POST" : "GET");
        if (x->route != R_HEALTH && !key_ok(s, c))
            return send_error(x, c, 401, "authentication_error", NULL, "invalid_api_key",
                              "invalid or missing API key: send the header 'Authorization: Bearer <key>'");
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > s->o.max_body)
            return send_error(x, c, 413, "invalid_request_error", NULL, "request_too_large", "the request body is %s bytes; the limit is %zu",
                              cl, s->o.max_body);
        return MHD_YES;
    }
    if (x->responded) { /* an early error response is queued; discard the body */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (x->too_big || x->len + n > s->o.max_body) {
            x->too_big = true;
            return MHD_YES;
        }
        if (x->len + n + 1 > x->cap) {
            size_t cap = x->cap ? x->cap : 4096;
            while (cap < x->len + n + 1) cap *= 2;
            char *b = realloc(x->body, cap);
            if (!b) return MHD_NO;
            x->body = b;
            x->cap = cap;
        }
        memcpy(x->body + x->len, upload, n);
        x->len += n;
        return MHD_YES;
    }
    set_receiving(s, c, false); /* headers and body are in: the deadline no longer applies */
    if (x->too_big)
        return send_error(x, c, 413, "invalid_request_error", NULL, "request_too_large", "the request body exceeds the limit of %zu bytes",
                          s->o.max_body);
    switch (x->route) {
    case R_HEALTH: {
        pt_batcher_stats bs = {0};
        pthread_mutex_lock(&s->mu);
        if (!s->closing) pt_batcher_get_stats(s->b, &bs);
        bool closing = s->closing;
        pthread_mutex_unlock(&s->mu);
        x->responded = true;
        return send_json(c, closing ? 503 : 200,
                         json_pack("{s:s,s:s,s:i,s:i,s:i}", "status", closing ? "shutting down" : "ok", "model", s->model_id, "slots",
                                   pt_engine_n_slots(s->e), "active", bs.active, "queued", bs.queued));
    }
    case R_MODELS: {
        x->responded = true;
        /* the model, and with adapters also "base" and each adapter's name: what "model" selects */
        json_t *data = json_array();
        for (int i = -2; i < s->n_adapters; i++) {
            if (i == -1 && !s->n_adapters) continue;
            const char *id = i == -2 ? s->model_id : i == -1 ? "base" : s->adapter_names[i];
            json_array_append_new(data, json_pack("{s:s,s:s,s:I,s:s,s:i}", "id", id, "object", "model", "created", (json_int_t)0, "owned_by",
                                                  "politune", "context_length", pt_engine_n_ctx(s->e)));
        }
        return send_json(c, 200, json_pack("{s:s,s:o}", "object", "list", "data", data));
    }
    case R_ADAPTERS: return handle_adapters(x, c, x->post);
    case R_CHAT: return handle_generate(x, c, PT_OAI_CHAT);
    case R_COMPLETIONS: return handle_generate(x, c, PT_OAI_COMPLETION);
    }
    return MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)toe;
    set_receiving(cls, c, true); /* a kept-alive connection waits for its next request */
    conn_ctx *x = *con_cls;
    if (!x) return;
    free(x->body);
    free(x);
    *con_cls = NULL;
}

/* ---- connection accounting and the request deadline ------------------------------------- */

static bool same_host(const struct sockaddr_storage *a, const struct sockaddr *b) {
    if (a->ss_family != b->sa_family) return false;
    if (b->sa_family == AF_INET) return ((const struct sockaddr_in *)a)->sin_addr.s_addr == ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (b->sa_family == AF_INET6)
        return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr, &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr));
    return true;
}

/* Called by the listening thread before a connection is set up. An address already holding a
 * connection may not take the last `reserve` places: those stay for new clients and /health. */
static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr, socklen_t addrlen) {
    (void)addrlen;
    pt_server *s = cls;
    pthread_mutex_lock(&s->conn_mu);
    int mine = 0;
    for (conn_track *t = s->conns; t; t = t->next) mine += same_host(&t->addr, addr);
    bool ok = s->n_conns < s->o.max_connections && mine < s->o.max_per_client &&
              (mine == 0 || s->n_conns < s->o.max_connections - s->o.reserve);
    pthread_mutex_unlock(&s->conn_mu);
    return ok ? MHD_YES : MHD_NO;
}

static void notify_connection(void *cls, struct MHD_Connection *c, void **socket_context, enum MHD_ConnectionNotificationCode toe) {
    pt_server *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_track *t = calloc(1, sizeof *t);
        if (!t) return; /* untracked: only its deadline is lost */
        const union MHD_ConnectionInfo *ai = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const union MHD_ConnectionInfo *fi = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ai && ai->client_addr) {
            size_t n = ai->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
            memcpy(&t->addr, ai->client_addr, n);
        }
        t->fd = fi ? fi->connect_fd : -1;
        t->phase_start = pt_now_s();
        t->receiving = true;
        pthread_mutex_lock(&s->conn_mu);
        t->next = s->conns;
        if (s->conns) s->conns->prev = t;
        s->conns = t;
        s->n_conns++;
        pthread_mutex_unlock(&s->conn_mu);
        *socket_context = t;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        conn_track *t = *socket_context;
        if (!t) return;
        pthread_mutex_lock(&s->conn_mu);
        if (t->prev) t->prev->next = t->next;
        else s->conns = t->next;
        if (t->next) t->next->prev = t->prev;
        s->n_conns--;
        pthread_mutex_unlock(&s->conn_mu);
        free(t);
        *socket_context = NULL;
    }
}

static void set_receiving(pt_server *s, struct MHD_Connection *c, bool receiving) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_track *t = ci ? ci->socket_context : NULL;
    if (!t) return;
    pthread_mutex_lock(&s->conn_mu);
    t->receiving = receiving;
    if (receiving) t->phase_start = pt_now_s();
    pthread_mutex_unlock(&s->conn_mu);
}

/* Shuts down (without closing: libmicrohttpd owns the descriptor and closes it) the socket of
 * every request that is still arriving after the deadline; the connection's thread then sees
 * the end of the stream and tears the connection down. */
static void *reaper_main(void *arg) {
    pt_server *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->conn_mu);
        bool stop = s->reaper_stop;
        double now = pt_now_s();
        int cut = 0;
        for (conn_track *t = s->conns; t && !stop; t = t->next)
            if (t->receiving && !t->cut && t->fd >= 0 && now - t->phase_start > s->o.request_timeout_s) {
                shutdown(t->fd, SHUT_RDWR);
                t->cut = true;
                cut++;
            }
        pthread_mutex_unlock(&s->conn_mu);
        if (stop) return NULL;
        if (cut) logf_(s, "closed %d connection(s) whose request did not arrive within %d s", cut, s->o.request_timeout_s);
        usleep(100000);
    }
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    pt_server *s = cls;
    if (!s->o.log) return;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
    s->o.log(s->o.log_user, line);
}

pt_status pt_server_start(pt_server **out, const pt_model *m, pt_engine *e, const pt_server_opts *o) {
    *out = NULL;
    if (!m->tok) return pt_error(PT_ERR_ARG, "%s: the model has no tokenizer; serving needs one", m->path);
    pt_server *s = calloc(1, sizeof *s);
    if (!s) return pt_error(PT_ERR_OOM, "out of memory");
    s->m = m;
    s->e = e;
    s->o = *o;
    if (!s->o.host) s->o.host = "127.0.0.1";
    if (!s->o.max_body) s->o.max_body = 1 << 20;
    if (s->o.max_connections <= 0) s->o.max_connections = 256;
    if (s->o.default_max_tokens <= 0) s->o.default_max_tokens = 512;
    if (s->o.idle_timeout_s <= 0) s->o.idle_timeout_s = 120;
    if (s->o.max_per_client <= 0) s->o.max_per_client = 32;
    if (s->o.reserve < 0 || s->o.reserve >= s->o.max_connections) s->o.reserve = s->o.max_connections / 16;
    if (s->o.request_timeout_s <= 0) s->o.request_timeout_s = 30;
    pthread_mutex_init(&s->conn_mu, NULL);
    s->chat = o->chat != PT_CHAT_NONE ? o->chat : PT_CHAT_ALPACA;
    const char *base = o->model_id ? o->model_id : strrchr(m->path, '/') ? strrchr(m->path, '/') + 1 : m->path;
    s->model_id = strdup(base && *base ? base : "model");
    s->api_key = o->api_key && *o->api_key ? strdup(o->api_key) : NULL;
    pthread_mutex_init(&s->mu, NULL);
    pt_tokenizer_stop_ids(m->tok, s->stop_ids, 16, &s->n_stop_ids);
    pt_status st = PT_OK;
    if (o->n_adapters != pt_engine_n_adapters(e) || o->n_adapters > PT_ENGINE_MAX_ADAPTERS)
        st = pt_error(PT_ERR_ARG, "the server names %d adapters; the engine has %d", o->n_adapters, pt_engine_n_adapters(e));
    if (!st && o->n_adapters > 0) {
        s->adapter_names = calloc((size_t)o->n_adapters, sizeof(char *));
        s->adapter_paths = calloc((size_t)o->n_adapters, sizeof(char *));
        if (!s->adapter_names || !s->adapter_paths) st = pt_error(PT_ERR_OOM, "out of memory");
    }
    for (int i = 0; !st && i < o->n_adapters; i++) {
        for (int k = 0; k < i; k++)
            if (!strcmp(o->adapter_names[k], o->adapter_names[i])) st = pt_error(PT_ERR_ARG, "two adapters are named '%s'", o->adapter_names[i]);
        if (!st && !strcmp(o->adapter_names[i], "base")) st = pt_error(PT_ERR_ARG, "'base' names the model without adapters; name the adapter otherwise");
        if (!st && (!(s->adapter_names[i] = strdup(o->adapter_names[i])) ||
                    (o->adapter_paths && o->adapter_paths[i] && !(s->adapter_paths[i] = strdup(o->adapter_paths[i])))))
            st = pt_error(PT_ERR_OOM, "out of memory");
        s->default_scales[i] = o->adapter_scales ? o->adapter_scales[i] : 1.0f;
    }
    s->n_adapters = o->n_adapters;
    if (!st) st = s->model_id ? pt_batcher_new(&s->b, e, o->max_queue, o->batch_invariant) : pt_error(PT_ERR_OOM, "out of memory");
    if (st) goto fail;
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)o->port);
    const char *host = !strcmp(s->o.host, "localhost") ? "127.0.0.1" : s->o.host;
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        st = pt_error(PT_ERR_ARG, "--host wants an IPv4 address, got '%s'", s->o.host);
        goto fail;
    }
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ITC | MHD_USE_POLL |
                                MHD_USE_ERROR_LOG,
                            0, accept_policy, s, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED,
                            on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, notify_connection, s,
                            /* one above ours, so that accept_policy is what refuses */
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->o.max_connections + 1, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)s->o.idle_timeout_s, MHD_OPTION_END);
    if (!s->d) {
        st = pt_error(PT_ERR_NET, "cannot listen on %s:%d (address in use, or not allowed)", s->o.host, o->port);
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : o->port;
    if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0) {
        MHD_stop_daemon(s->d);
        st = pt_error(PT_ERR_OOM, "cannot start the server's deadline thread");
        goto fail;
    }
    s->reaper_started = true;
    *out = s;
    return PT_OK;
fail:
    pt_batcher_free(s->b);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->conn_mu);
    free_adapter_names(s);
    free(s->model_id);
    free(s->api_key);
    free(s);
    return st;
}

int pt_server_port(const pt_server *s) { return s->port; }

void pt_server_get_stats(pt_server *s, pt_server_stats *st) {
    pthread_mutex_lock(&s->mu);
    *st = s->stats;
    if (!s->closing) {
        pt_batcher_stats bs;
        pt_batcher_get_stats(s->b, &bs);
        st->steps = bs.steps;
    }
    pthread_mutex_unlock(&s->mu);
}

void pt_server_stop(pt_server *s, double grace_s, pt_server_stats *final) {
    if (!s) return;
    MHD_socket lsock = MHD_quiesce_daemon(s->d);
    double end = pt_now_s() + grace_s;
    for (;;) {
        pt_batcher_stats bs;
        pt_batcher_get_stats(s->b, &bs);
        if ((bs.active == 0 && bs.queued == 0) || pt_now_s() >= end) break;
        usleep(20000);
    }
    pt_batcher_stats bs;
    pt_batcher_get_stats(s->b, &bs);
    pthread_mutex_lock(&s->mu);
    s->closing = true;
    s->stats.steps = bs.steps;
    pthread_mutex_unlock(&s->mu);
    pt_batcher_free(s->b); /* cancels what is left; waiting handlers and streams finish */
    s->b = NULL;
    /* let the streams send their last events before the connections are closed */
    for (double t0 = pt_now_s(); pt_now_s() - t0 < 2;) {
        pthread_mutex_lock(&s->mu);
        int n = s->n_streams;
        pthread_mutex_unlock(&s->mu);
        if (n == 0) break;
        usleep(5000);
    }
    MHD_stop_daemon(s->d);
    if (lsock != MHD_INVALID_SOCKET) close(lsock);
    if (s->reaper_started) {
        pthread_mutex_lock(&s->conn_mu);
        s->reaper_stop = true;
        pthread_mutex_unlock(&s->conn_mu);
        pthread_join(s->reaper, NULL);
    }
    if (final) *final = s->stats;
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->conn_mu);
    free_adapter_names(s);
    free(s->model_id);
    free(s->api_key);
    free(s);
}
