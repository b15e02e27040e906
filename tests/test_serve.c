/* politune serve on loopback with stories260K: real requests (non-streaming and streaming),
 * the key, the size limit, malformed requests, concurrent clients and the queue limit, a
 * client that goes away, and the judge client against it — retrying, backing off, and failing
 * clearly against a stopped or failing server. Servers listen on 127.0.0.1, on a port the
 * kernel picks, and are always stopped. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "data/judge.h"
#include "data/prompts.h"
#include "internal.h"
#include "serve/server.h"
#include "test.h"
#include "util/clock.h"

/* ---- an HTTP client for the tests ---------------------------------------------------------- */

typedef struct {
    long status;
    char *body;
    size_t len;
    char retry_after[16];
    size_t abort_after; /* > 0: abort the transfer once this many bytes arrived */
} http_res;

static size_t on_body(char *p, size_t size, size_t n, void *u) {
    http_res *r = u;
    size_t k = size * n;
    char *b = realloc(r->body, r->len + k + 1);
    if (!b) return 0;
    memcpy(b + r->len, p, k);
    r->body = b;
    r->len += k;
    b[r->len] = 0;
    if (r->abort_after && r->len >= r->abort_after) return 0;
    return k;
}

static size_t on_hdr(char *p, size_t size, size_t n, void *u) {
    http_res *r = u;
    if (size * n > 12 && !strncasecmp(p, "retry-after:", 12)) snprintf(r->retry_after, sizeof r->retry_after, "%d", atoi(p + 12));
    return size * n;
}

/* method NULL: GET, or POST when there is a body. chunked: send the body without a length. */
static void http(http_res *r, const char *method, const char *url, const char *body, const char *key, bool chunked) {
    CURL *h = curl_easy_init();
    struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
    char auth[256];
    if (key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
        hd = curl_slist_append(hd, auth);
    }
    if (chunked) hd = curl_slist_append(hd, "Transfer-Encoding: chunked");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_hdr);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (body) curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    if (method) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    r->status = 0;
    if (curl_easy_perform(h) == CURLE_OK || r->abort_after) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
}

static void res_free(http_res *r) {
    free(r->body);
    memset(r, 0, sizeof *r);
}

static json_t *res_json(const http_res *r) { return r->body ? json_loads(r->body, 0, NULL) : NULL; }

/* An OpenAI error body: {"error": {"message": ..., "type": ...}} mentioning `needle`. */
static bool is_error(const http_res *r, long status, const char *needle) {
    json_t *o = res_json(r);
    const char *m = json_string_value(json_object_get(json_object_get(o, "error"), "message"));
    bool ok = r->status == status && m && (!needle || strstr(m, needle));
    if (!ok) fprintf(stdout, "    (status %ld, body %.300s)\n", r->status, r->body ? r->body : "");
    json_decref(o);
    return ok;
}

static char *chat_content(const http_res *r, long *completion_tokens) {
    json_t *o = res_json(r);
    const char *c = json_string_value(json_object_get(json_object_get(json_array_get(json_object_get(o, "choices"), 0), "message"), "content"));
    if (completion_tokens) *completion_tokens = json_integer_value(json_object_get(json_object_get(o, "usage"), "completion_tokens"));
    char *s = c ? strdup(c) : NULL;
    json_decref(o);
    return s;
}

/* ---- an in-process server ------------------------------------------------------------------ */

typedef struct {
    pt_model *m;
    pt_engine *e;
    pt_server *s;
    char base[64];
} fixture;

static bool fx_start(fixture *f, int slots, const pt_server_opts *o) {
    memset(f, 0, sizeof *f);
    pt_backend_set_threads(1);
    if (pt_model_load(&f->m, pt_test_shared("assets/models/stories260K/stories260K.gguf")) != PT_OK) return false;
    if (pt_engine_new(&f->e, f->m, slots, 512) != PT_OK) return false;
    if (pt_server_start(&f->s, f->m, f->e, o) != PT_OK) return false;
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", pt_server_port(f->s));
    return true;
}

static void fx_stop(fixture *f) {
    if (f->s) pt_server_stop(f->s, 1, NULL);
    pt_engine_free(f->e);
    pt_model_free(f->m);
    memset(f, 0, sizeof *f);
}

static char *url(const fixture *f, const char *path) {
    static char buf[4][160];
    static int k;
    char *b = buf[k++ % 4];
    snprintf(b, sizeof buf[0], "%s%s", f->base, path);
    return b;
}

#define CHAT(prompt, extra) "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"" prompt "\"}],\"temperature\":0" extra "}"

PT_TEST(test_serve_requests) {
    pt_server_opts o = pt_server_opts_default();
    fixture f;
    if (!fx_start(&f, 4, &o)) { CHECK_MSG(0, "server: %s", pt_errmsg()); fx_stop(&f); return; }
    http_res r = {0};
    http(&r, NULL, url(&f, "/health"), NULL, NULL, false);
    CHECK(r.status == 200 && r.body && strstr(r.body, "\"ok\""));
    res_free(&r);
    http(&r, NULL, url(&f, "/v1/models"), NULL, NULL, false);
    json_t *o2 = res_json(&r);
    CHECK(r.status == 200 && !strcmp(json_string_value(json_object_get(json_array_get(json_object_get(o2, "data"), 0), "id")) ?: "", "stories260K.gguf"));
    json_decref(o2);
    res_free(&r);

    /* chat, non-streaming */
    http(&r, NULL, url(&f, "/v1/chat/completions"), CHAT("Tell me a story.", ",\"max_tokens\":20"), NULL, false);
    long ntok = 0;
    char *text = chat_content(&r, &ntok);
    CHECK_MSG(r.status == 200 && text && *text && ntok > 0 && ntok <= 20, "chat: %ld %s", r.status, r.body ? r.body : "");
    res_free(&r);

    /* the same streamed: the deltas add up to the same text */
    http(&r, NULL, url(&f, "/v1/chat/completions"), CHAT("Tell me a story.", ",\"max_tokens\":20,\"stream\":true,\"stream_options\":{\"include_usage\":true}"),
         NULL, false);
    CHECK(r.status == 200);
    char joined[4096] = "";
    int events = 0;
    bool done = false, usage = false;
    for (char *p = r.body; p && (p = strstr(p, "data: ")); p += 6) {
        events++;
        if (!strncmp(p + 6, "[DONE]", 6)) { done = true; break; }
        char *end = strstr(p, "\n\n");
        json_t *ev = end ? json_loadb(p + 6, (size_t)(end - p - 6), 0, NULL) : NULL;
        CHECK_MSG(ev != NULL, "bad SSE event: %.80s", p);
        const char *d = json_string_value(json_object_get(json_object_get(json_array_get(json_object_get(ev, "choices"), 0), "delta"), "content"));
        if (d) strncat(joined, d, sizeof joined - strlen(joined) - 1);
        if (json_object_get(ev, "usage")) usage = true;
        json_decref(ev);
    }
    CHECK_MSG(done && usage && events > 3, "stream: %d events, done %d, usage %d", events, done, usage);
    CHECK_MSG(text && !strcmp(joined, text), "streamed '%s' != '%s'", joined, text ? text : "");
    free(text);
    res_free(&r);

    /* completions, a token-id prompt, a stop string, logprobs, guided choice */
    http(&r, NULL, url(&f, "/v1/completions"), "{\"prompt\":\"Once upon a time\",\"max_tokens\":8,\"temperature\":0,\"logprobs\":2}", NULL, false);
    json_t *c = res_json(&r);
    json_t *ch = json_array_get(json_object_get(c, "choices"), 0);
    CHECK(r.status == 200 && json_string_length(json_object_get(ch, "text")) > 0);
    CHECK(json_array_size(json_object_get(json_object_get(ch, "logprobs"), "token_logprobs")) == 8);
    json_decref(c);
    res_free(&r);
    /* BOS, " Once", " upon": greedy continues the text the fixture's greedy decode from BOS holds */
    http(&r, NULL, url(&f, "/v1/completions"), "{\"prompt\":[1,403,407],\"max_tokens\":4,\"temperature\":0}", NULL, false);
    CHECK(r.status == 200);
    c = res_json(&r);
    const char *tid = json_string_value(json_object_get(json_array_get(json_object_get(c, "choices"), 0), "text"));
    char *cases = pt_test_read(pt_test_shared("fixtures/reference/stories260K-hf"), "cases.json");
    json_t *cj = cases ? json_loads(cases, 0, NULL) : NULL;
    const char *greedy = json_string_value(json_object_get(cj, "greedy_text"));
    const char *after = greedy && !strncmp(greedy, " Once upon", 10) ? greedy + 10 : NULL;
    CHECK_MSG(after && tid && strlen(tid) >= 4 && !strncmp(after, tid, strlen(tid)), "token-id prompt: '%s', the fixture goes on '%.40s'", tid ? tid : "(none)",
              after ? after : "(no fixture)");
    json_decref(cj);
    free(cases);
    json_decref(c);
    res_free(&r);
    http(&r, NULL, url(&f, "/v1/completions"), "{\"prompt\":\"Once upon a time\",\"max_tokens\":40,\"temperature\":0,\"stop\":[\" was\"]}", NULL, false);
    c = res_json(&r);
    ch = json_array_get(json_object_get(c, "choices"), 0);
    const char *t = json_string_value(json_object_get(ch, "text"));
    CHECK_MSG(t && !strstr(t, " was") && !strcmp(json_string_value(json_object_get(ch, "finish_reason")), "stop"), "stop: %s", r.body);
    json_decref(c);
    res_free(&r);
    http(&r, NULL, url(&f, "/v1/chat/completions"), CHAT("Pick one.", ",\"guided_choice\":[\"red\",\"green\",\"blue sky\"]"), NULL, false);
    text = chat_content(&r, NULL);
    CHECK_MSG(text && (!strcmp(text, "red") || !strcmp(text, "green") || !strcmp(text, "blue sky")), "choice: %s", r.body);
    free(text);
    res_free(&r);
    http(&r, NULL, url(&f, "/v1/chat/completions"), CHAT("Hi", ",\"max_tokens\":3,\"logprobs\":true,\"top_logprobs\":3"), NULL, false);
    c = res_json(&r);
    json_t *lp = json_object_get(json_object_get(json_array_get(json_object_get(c, "choices"), 0), "logprobs"), "content");
    CHECK(json_array_size(lp) == 3 && json_array_size(json_object_get(json_array_get(lp, 0), "top_logprobs")) == 3);
    json_decref(c);
    res_free(&r);
    fx_stop(&f);
}

PT_TEST(test_serve_key_limits_and_bad_requests) {
    pt_server_opts o = pt_server_opts_default();
    o.api_key = "sekrit";
    o.max_body = 2048;
    fixture f;
    if (!fx_start(&f, 2, &o)) { CHECK_MSG(0, "server: %s", pt_errmsg()); fx_stop(&f); return; }
    char chat[160];
    snprintf(chat, sizeof chat, "%s", url(&f, "/v1/chat/completions"));
    const char *ok = CHAT("Hi", ",\"max_tokens\":2");
    http_res r = {0};
    http(&r, NULL, chat, ok, NULL, false);
    CHECK(is_error(&r, 401, "API key"));
    res_free(&r);
    http(&r, NULL, chat, ok, "wrong", false);
    CHECK(is_error(&r, 401, NULL));
    res_free(&r);
    http(&r, NULL, url(&f, "/v1/models"), NULL, NULL, false);
    CHECK(is_error(&r, 401, NULL));
    res_free(&r);
    http(&r, NULL, url(&f, "/health"), NULL, NULL, false); /* no key needed */
    CHECK(r.status == 200);
    res_free(&r);
    http(&r, NULL, chat, ok, "sekrit", false);
    CHECK(r.status == 200);
    res_free(&r);

    /* the size limit, with and without a Content-Length */
    char *big = malloc(8192);
    memset(big, ' ', 8191);
    big[8191] = 0;
    memcpy(big, "{\"messages\":", 12);
    http(&r, NULL, chat, big, "sekrit", false);
    CHECK(is_error(&r, 413, "limit"));
    res_free(&r);
    http(&r, NULL, chat, big, "sekrit", true);
    CHECK(is_error(&r, 413, "limit"));
    res_free(&r);
    free(big);

    /* malformed requests: a JSON error with a 4xx status, naming the parameter */
    struct { const char *body, *needle, *param; } bad[] = {
        {"{not json", "not valid JSON", NULL},
        {"", "no body", NULL},
        {"[1,2]", "JSON object", NULL},
        {"{\"messages\":\"hi\"}", "non-empty array", "messages"},
        {"{\"messages\":[]}", "non-empty array", "messages"},
        {"{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", "wizard", "messages"},
        {"{\"messages\":[{\"role\":\"user\"}]}", NULL, NULL},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":\"hot\"}", "number", "temperature"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":-3}", "between", "max_tokens"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":2}", "n = 1", "n"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[1]}", "strings", "stop"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":\"yes\"}", "true or false", "stream"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\"}]}", "not valid JSON", NULL},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"messages\":[]}", "not valid JSON", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        http(&r, NULL, chat, bad[i].body, "sekrit", false);
        json_t *e = res_json(&r);
        json_t *err = json_object_get(e, "error");
        const char *m = json_string_value(json_object_get(err, "message")), *p = json_string_value(json_object_get(err, "param"));
        CHECK_MSG(r.status == 400 && m && (!bad[i].needle || strstr(m, bad[i].needle)) && (!bad[i].param || (p && !strcmp(p, bad[i].param))),
                  "bad request %zu (%s): %ld %s", i, bad[i].body, r.status, r.body ? r.body : "");
        json_decref(e);
        res_free(&r);
    }
    /* a prompt longer than the context (512 tokens) */
    char longp[2048] = "{\"prompt\":[1";
    for (int i = 0; i < 600; i++) strcat(longp, ",9");
    strcat(longp, "]}");
    http(&r, NULL, url(&f, "/v1/completions"), longp, "sekrit", false);
    CHECK(is_error(&r, 400, "context"));
    res_free(&r);
    http(&r, NULL, url(&f, "/v1/completions"), "{\"prompt\":[1,99999]}", "sekrit", false);
    CHECK(is_error(&r, 400, "vocabulary"));
    res_free(&r);
    http(&r, NULL, url(&f, "/v1/nothing"), NULL, "sekrit", false);
    CHECK(is_error(&r, 404, "no route"));
    res_free(&r);
    http(&r, "DELETE", chat, NULL, "sekrit", false);
    CHECK(is_error(&r, 405, "DELETE"));
    res_free(&r);
    http(&r, NULL, chat, NULL, "sekrit", false); /* GET on a POST route */
    CHECK(is_error(&r, 405, NULL));
    res_free(&r);

    /* an unknown method, and bytes that are not HTTP at all: an error reply (libmicrohttpd
     * answers the latter itself, before a request exists), never a crash */
    http(&r, "BREW", chat, NULL, "sekrit", false);
    CHECK(is_error(&r, 405, "BREW"));
    res_free(&r);
    const char *junk[] = {"\x01\x02 GARBAGE\r\n\r\n", "GET / HTTP/9.9\r\n\r\n", "POST /v1/completions HTTP/1.1\r\nContent-Length: zz\r\n\r\n"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)pt_server_port(f.s))};
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        struct timeval tv = {2, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
            CHECK(write(fd, junk[i], strlen(junk[i])) > 0);
            char buf[512];
            ssize_t n = read(fd, buf, sizeof buf - 1);
            if (n > 0) buf[n] = 0;
            CHECK_MSG(n <= 0 || !strncmp(buf, "HTTP/1.1 4", 10) || !strncmp(buf, "HTTP/1.1 5", 10), "reply to junk %zu: %s", i, n > 0 ? buf : "");
        }
        close(fd);
    }
    http(&r, NULL, chat, ok, "sekrit", false);
    CHECK_MSG(r.status == 200, "after the junk: %ld %s", r.status, r.body ? r.body : "");
    res_free(&r);
    fx_stop(&f);
}

typedef struct {
    const fixture *f;
    const char *body;
    http_res r;
} client_arg;

static void *client(void *arg) {
    client_arg *c = arg;
    http(&c->r, NULL, url(c->f, "/v1/chat/completions"), c->body, NULL, false);
    return NULL;
}

PT_TEST(test_serve_concurrent_clients) {
    pt_server_opts o = pt_server_opts_default();
    fixture f;
    if (!fx_start(&f, 4, &o)) { CHECK_MSG(0, "server: %s", pt_errmsg()); fx_stop(&f); return; }
    /* each prompt alone first, then all eight at once: same texts, fewer forward passes than tokens */
    static const char *bodies[8] = {
        CHAT("Tell me a story.", ",\"max_tokens\":24"), CHAT("Tell me about a dog.", ",\"max_tokens\":24"),
        CHAT("Once there was a cat.", ",\"max_tokens\":24"), CHAT("Lily went to the park.", ",\"max_tokens\":24"),
        CHAT("Tell me a story.", ",\"max_tokens\":24"), CHAT("The sun was hot.", ",\"max_tokens\":24"),
        CHAT("Tom had a red ball.", ",\"max_tokens\":24"), CHAT("A bird sang.", ",\"max_tokens\":24")};
    char *solo[8];
    for (int i = 0; i < 8; i++) {
        http_res r = {0};
        http(&r, NULL, url(&f, "/v1/chat/completions"), bodies[i], NULL, false);
        solo[i] = chat_content(&r, NULL);
        res_free(&r);
    }
    pt_server_stats s0, s1;
    pt_server_get_stats(f.s, &s0);
    client_arg args[8];
    pthread_t th[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (client_arg){&f, bodies[i], {0}};
        pthread_create(&th[i], NULL, client, &args[i]);
    }
    for (int i = 0; i < 8; i++) pthread_join(th[i], NULL);
    pt_server_get_stats(f.s, &s1);
    long tokens = s1.tokens_generated - s0.tokens_generated, steps = s1.steps - s0.steps;
    for (int i = 0; i < 8; i++) {
        char *t = chat_content(&args[i].r, NULL);
        CHECK_MSG(args[i].r.status == 200 && t && solo[i] && !strcmp(t, solo[i]), "client %d: %ld '%s' vs alone '%s'", i, args[i].r.status,
                  t ? t : "", solo[i] ? solo[i] : "");
        free(t);
        free(solo[i]);
        res_free(&args[i].r);
    }
    CHECK_MSG(steps < tokens, "no batching: %ld forward passes for %ld tokens", steps, tokens);
    fx_stop(&f);

    /* one slot and a queue of one: the rest are turned away with 503 and Retry-After */
    o.max_queue = 1;
    if (!fx_start(&f, 1, &o)) { CHECK_MSG(0, "server: %s", pt_errmsg()); fx_stop(&f); return; }
    int n200 = 0, n503 = 0;
    for (int i = 0; i < 6; i++) {
        args[i] = (client_arg){&f, CHAT("Tell me a long story.", ",\"max_tokens\":400,\"ignore\":1"), {0}};
        pthread_create(&th[i], NULL, client, &args[i]);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        if (args[i].r.status != 200 && args[i].r.status != 503) fprintf(stdout, "    status %ld: %s\n", args[i].r.status, args[i].r.body ? args[i].r.body : "");
        if (args[i].r.status == 200) n200++;
        if (args[i].r.status == 503 && is_error(&args[i].r, 503, "retry") && !strcmp(args[i].r.retry_after, "1")) n503++;
        res_free(&args[i].r);
    }
    CHECK_MSG(n200 >= 2 && n503 >= 1 && n200 + n503 == 6, "%d ok, %d turned away", n200, n503);
    fx_stop(&f);
}

PT_TEST(test_serve_client_gone) {
    pt_server_opts o = pt_server_opts_default();
    fixture f;
    if (!fx_start(&f, 2, &o)) { CHECK_MSG(0, "server: %s", pt_errmsg()); fx_stop(&f); return; }
    /* a stream whose client hangs up after the first event: the job is cancelled */
    http_res r = {.abort_after = 1};
    http(&r, NULL, url(&f, "/v1/completions"), "{\"prompt\":\"Once\",\"max_tokens\":500,\"stream\":true}", NULL, false);
    res_free(&r);
    bool idle = false;
    for (double t0 = pt_now_s(); pt_now_s() - t0 < 10 && !idle;) {
        http(&r, NULL, url(&f, "/health"), NULL, NULL, false);
        idle = r.body && strstr(r.body, "\"active\":0");
        res_free(&r);
        if (!idle) usleep(20000);
    }
    CHECK(idle);
    pt_server_stats s;
    pt_server_get_stats(f.s, &s);
    CHECK_MSG(s.tokens_generated < 500, "generated %ld tokens for a client that left", s.tokens_generated);
    fx_stop(&f);
}

/* ---- the judge client ---------------------------------------------------------------------- */

PT_TEST(test_judge_http_against_server) {
    pt_server_opts o = pt_server_opts_default();
    o.api_key = "k1";
    fixture f;
    if (!fx_start(&f, 4, &o)) { CHECK_MSG(0, "server: %s", pt_errmsg()); fx_stop(&f); return; }
    pt_judge_opts jo = pt_judge_opts_default();
    jo.url = f.base; /* without /v1: added */
    jo.api_key = "k1";
    jo.concurrency = 3;
    jo.max_tokens = 12;
    const pt_judge_mode modes[] = {PT_JUDGE_CHOICE, PT_JUDGE_LOGPROBS, PT_JUDGE_TEXT};
    for (int m = 0; m < 3; m++) {
        jo.mode = modes[m];
        pt_judge *j;
        REQUIRE_OK(pt_judge_http_new(&j, &jo));
        pt_judge_req q[6];
        pt_judge_reply rp[6];
        for (int i = 0; i < 6; i++)
            q[i] = (pt_judge_req){.prompt = i % 2 ? "Rate 1 to 9." : "Tell me a story.", .labels = i % 2 ? pt_scale_labels : NULL,
                                  .n_labels = i % 2 ? 9 : 0, .seed = (uint64_t)i, .what = "test"};
        pt_status st = pt_judge_run(j, 6, q, rp);
        CHECK_MSG(st == PT_OK, "mode %d: %s", m, pt_errmsg());
        for (int i = 0; !st && i < 6; i++) {
            CHECK(rp[i].text && rp[i].attempts == 1);
            if (i % 2 == 0) CHECK(rp[i].label == -1 && strlen(rp[i].text) > 0);
            if (i % 2 && modes[m] == PT_JUDGE_CHOICE) CHECK_MSG(rp[i].label >= 0 && !strcmp(rp[i].text, pt_scale_labels[rp[i].label]), "choice reply '%s'", rp[i].text);
            pt_judge_reply_free(&rp[i]);
        }
        CHECK(pt_judge_requests(j) == (st ? 0 : 6) && pt_judge_retries(j) == 0);
        pt_judge_free(j);
    }
    /* a wrong key is final: no retries, the server's message */
    jo.api_key = "nope";
    pt_judge *j;
    REQUIRE_OK(pt_judge_http_new(&j, &jo));
    pt_judge_req q = {.prompt = "Hi", .what = "record 7"};
    pt_judge_reply rp;
    CHECK(pt_judge_run(j, 1, &q, &rp) == PT_ERR_NET && strstr(pt_errmsg(), "HTTP 401") && strstr(pt_errmsg(), "record 7") &&
          strstr(pt_errmsg(), "API key"));
    CHECK(pt_judge_retries(j) == 0);
    pt_judge_free(j);
    fx_stop(&f);
}

/* A port nothing listens on: bound by us, then closed. */
static int dead_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    socklen_t n = sizeof a;
    int port = bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &n) == 0 ? ntohs(a.sin_port) : 9;
    close(fd);
    return port;
}

PT_TEST(test_judge_http_retries_stopped_server) {
    pt_judge_opts jo = pt_judge_opts_default();
    char u[64];
    snprintf(u, sizeof u, "http://127.0.0.1:%d/v1", dead_port());
    jo.url = u;
    jo.retries = 3;
    jo.backoff_s = 0.05;
    pt_judge *j;
    REQUIRE_OK(pt_judge_http_new(&j, &jo));
    pt_judge_req q[2] = {{.prompt = "a", .what = "record x1"}, {.prompt = "b", .what = "record x2"}};
    pt_judge_reply rp[2];
    double t0 = pt_now_s();
    pt_status st = pt_judge_run(j, 2, q, rp);
    double dt = pt_now_s() - t0;
    CHECK_MSG(st == PT_ERR_NET && strstr(pt_errmsg(), "failed after 4 attempts") && strstr(pt_errmsg(), u) && strstr(pt_errmsg(), "record x"),
              "%s", pt_errmsg());
    /* waits 0.05, 0.1, 0.2 (each within 0.8x-1.2x) */
    CHECK_MSG(dt > 0.8 * 0.35 && dt < 5, "%.3f s", dt);
    CHECK(pt_judge_retries(j) >= 3);
    pt_judge_free(j);
}

/* A server that fails: 503 (or 429 with Retry-After) for the first `fail` requests, then a
 * chat completion. */
typedef struct {
    int fail, seen;
    unsigned code;
    useconds_t delay_us; /* answer this late */
    pthread_mutex_t mu;
} flaky;

static enum MHD_Result flaky_handler(void *cls, struct MHD_Connection *c, const char *url, const char *method, const char *version,
                                     const char *upload, size_t *upload_size, void **ctx) {
    (void)url, (void)method, (void)version, (void)upload;
    flaky *f = cls;
    if (!*ctx) { *ctx = f; return MHD_YES; }
    if (*upload_size) { *upload_size = 0; return MHD_YES; }
    pthread_mutex_lock(&f->mu);
    bool fail = f->seen++ < f->fail;
    pthread_mutex_unlock(&f->mu);
    if (f->delay_us) usleep(f->delay_us);
    const char *body = fail ? "{\"error\":{\"message\":\"busy\",\"type\":\"x\"}}"
                            : "{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"7\"},\"finish_reason\":\"stop\"}]}";
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    if (fail && f->code == 429) MHD_add_response_header(r, "Retry-After", "0");
    enum MHD_Result ok = MHD_queue_response(c, fail ? f->code : 200, r);
    MHD_destroy_response(r);
    return ok;
}

static struct MHD_Daemon *flaky_start(flaky *f, int *port) {
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, flaky_handler, f, MHD_OPTION_SOCK_ADDR,
                                            (struct sockaddr *)&a, MHD_OPTION_END);
    const union MHD_DaemonInfo *di = d ? MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    *port = di ? di->port : 0;
    return d;
}

PT_TEST(test_judge_http_retries_failing_server) {
    flaky f = {.fail = 3, .code = 503};
    pthread_mutex_init(&f.mu, NULL);
    int port;
    struct MHD_Daemon *d = flaky_start(&f, &port);
    REQUIRE(d);
    char u[64];
    snprintf(u, sizeof u, "http://127.0.0.1:%d/v1/", port);
    pt_judge_opts jo = pt_judge_opts_default();
    jo.url = u;
    jo.retries = 4;
    jo.backoff_s = 0.01;
    jo.concurrency = 1;
    pt_judge *j;
    REQUIRE_OK(pt_judge_http_new(&j, &jo));
    pt_judge_req q = {.prompt = "rate", .labels = pt_scale_labels, .n_labels = 9, .what = "record r"};
    pt_judge_reply rp;
    CHECK_OK(pt_judge_run(j, 1, &q, &rp));
    CHECK(rp.attempts == 4 && rp.label == 6 && pt_judge_retries(j) == 3);
    pt_judge_reply_free(&rp);
    /* 429 with Retry-After: 0, failing more often than the retries allow */
    f.seen = 0;
    f.fail = 100;
    f.code = 429;
    jo.retries = 2;
    pt_judge_free(j);
    REQUIRE_OK(pt_judge_http_new(&j, &jo));
    CHECK(pt_judge_run(j, 1, &q, &rp) == PT_ERR_NET && strstr(pt_errmsg(), "failed after 3 attempts: HTTP 429: busy"));
    CHECK(f.seen == 3);
    pt_judge_free(j);
    /* a server slower than the timeout: each attempt is cut off, then the run fails */
    f.seen = 0;
    f.fail = 0;
    f.delay_us = 400000;
    jo.timeout_s = 0.15;
    jo.retries = 1;
    REQUIRE_OK(pt_judge_http_new(&j, &jo));
    double t0 = pt_now_s();
    CHECK(pt_judge_run(j, 1, &q, &rp) == PT_ERR_NET && strstr(pt_errmsg(), "failed after 2 attempts") && strstr(pt_errmsg(), "Timeout"));
    CHECK_MSG(pt_now_s() - t0 < 3, "%.2f s", pt_now_s() - t0);
    pt_judge_free(j);
    MHD_stop_daemon(d);
    pthread_mutex_destroy(&f.mu);
}
