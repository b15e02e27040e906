/* The HTTP judge: OpenAI chat completions over libcurl's multi interface, N transfers in
 * flight, per-request timeouts, and exponential backoff on 429 / 5xx / connection errors
 * (see judge.h). */
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "data/judge_impl.h"
#include "util/clock.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

pt_status pt_judge_http_new(pt_judge **out, const pt_judge_opts *o) {
    *out = NULL;
    if (!o->url || (strncmp(o->url, "http://", 7) && strncmp(o->url, "https://", 8)))
        return pt_error(PT_ERR_ARG, "judge URL '%s' must start with http:// or https://", o->url ? o->url : "");
    pthread_once(&curl_once, curl_init_once);
    pt_judge *j = calloc(1, sizeof *j);
    if (!j) return pt_error(PT_ERR_OOM, "out of memory");
    j->kind = JUDGE_HTTP;
    j->o = *o;
    if (j->o.concurrency < 1) j->o.concurrency = 1;
    size_t L = strlen(o->url);
    while (L && o->url[L - 1] == '/') L--;
    bool has_v1 = L >= 3 && !strncmp(o->url + L - 3, "/v1", 3);
    j->url = malloc(L + 32);
    j->model_name = strdup(o->model_name ? o->model_name : "default");
    j->system = o->system ? strdup(o->system) : NULL;
    j->multi = curl_multi_init();
    if (!j->url || !j->model_name || !j->multi) {
        pt_judge_free(j);
        return pt_error(PT_ERR_OOM, "out of memory");
    }
    snprintf(j->url, L + 32, "%.*s%s/chat/completions", (int)L, o->url, has_v1 ? "" : "/v1");
    if (o->api_key && *o->api_key && asprintf(&j->auth, "Authorization: Bearer %s", o->api_key) < 0) j->auth = NULL;
    static const char *modes[] = {"text", "choice", "logprobs"};
    snprintf(j->desc, sizeof j->desc, "%s model %s (%s mode, %d in flight, %d retries)", j->url, j->model_name, modes[o->mode],
             j->o.concurrency, o->retries);
    *out = j;
    return PT_OK;
}

void pt_judge_http_close(pt_judge *j) {
    if (j->multi) curl_multi_cleanup(j->multi);
    free(j->url);
    free(j->auth);
    free(j->model_name);
}

typedef struct {
    CURL *h;
    struct curl_slist *hdrs;
    char *body;          /* request JSON */
    char *resp;
    size_t resp_len;
    int attempts;
    double due;          /* when it may (re)start */
    double retry_after;
    bool active, done;
    char errbuf[CURL_ERROR_SIZE];
    char last_error[512];
} xfer;

static size_t on_data(char *p, size_t size, size_t n, void *user) {
    xfer *x = user;
    size_t k = size * n;
    if (x->resp_len + k > (64u << 20)) return 0; /* a runaway reply */
    char *r = realloc(x->resp, x->resp_len + k + 1);
    if (!r) return 0;
    memcpy(r + x->resp_len, p, k);
    x->resp = r;
    x->resp_len += k;
    r[x->resp_len] = 0;
    return k;
}

static size_t on_header(char *p, size_t size, size_t n, void *user) {
    xfer *x = user;
    size_t k = size * n;
    if (k > 12 && !strncasecmp(p, "retry-after:", 12)) {
        double v = strtod(p + 12, NULL);
        if (v > 0 && v < 3600) x->retry_after = v;
    }
    return k;
}

static char *request_body(const pt_judge *j, const pt_judge_req *r) {
    json_t *msgs = json_array();
    if (j->system) json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "system", "content", j->system));
    json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "user", "content", r->prompt));
    int max_tokens = r->max_tokens > 0 ? r->max_tokens : r->labels ? j->o.label_max_tokens : j->o.max_tokens;
    json_t *o = json_pack("{s:s,s:o,s:f,s:i,s:I,s:b}", "model", j->model_name, "messages", msgs, "temperature",
                          r->labels ? 0.0 : (double)j->o.temperature, "max_tokens", max_tokens, "seed", (json_int_t)(r->seed & 0x7fffffffffffffffULL),
                          "stream", 0);
    if (o && r->labels && j->o.mode == PT_JUDGE_CHOICE) {
        json_t *gc = json_array();
        for (int k = 0; k < r->n_labels; k++) json_array_append_new(gc, json_string(r->labels[k]));
        json_object_set_new(o, "guided_choice", gc);
    }
    if (o && r->labels && j->o.mode == PT_JUDGE_LOGPROBS) {
        json_object_set_new(o, "logprobs", json_true());
        json_object_set_new(o, "top_logprobs", json_integer(20));
    }
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

static bool start(pt_judge *j, xfer *x) {
    x->h = curl_easy_init();
    if (!x->h) return false;
    free(x->resp);
    x->resp = NULL;
    x->resp_len = 0;
    x->retry_after = 0;
    x->errbuf[0] = 0;
    if (!x->hdrs) {
        x->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
        if (j->auth) x->hdrs = curl_slist_append(x->hdrs, j->auth);
    }
    CURL *h = x->h;
    curl_easy_setopt(h, CURLOPT_URL, j->url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, x->body);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(h, CURLOPT_PRIVATE, x);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(j->o.timeout_s * 1000));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(j->o.connect_timeout_s * 1000));
    curl_easy_setopt(h, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1");
    curl_easy_setopt(h, CURLOPT_USERAGENT, "politune-judge");
    if (curl_multi_add_handle(j->multi, h) != CURLM_OK) {
        curl_easy_cleanup(h);
        x->h = NULL;
        return false;
    }
    x->active = true;
    x->attempts++;
    return true;
}

/* The server's error message, if its body is an OpenAI error object. */
static void server_message(const xfer *x, char *out, size_t n) {
    out[0] = 0;
    json_t *o = x->resp ? json_loadb(x->resp, x->resp_len, 0, NULL) : NULL;
    const char *m = json_string_value(json_object_get(json_object_get(o, "error"), "message"));
    if (m) snprintf(out, n, ": %s", m);
    else if (x->resp_len) snprintf(out, n, ": %.120s", x->resp);
    json_decref(o);
}

/* A 200 reply: its text, and the label it picks (by the label probabilities in logprobs
 * mode when the server gave them, else parsed from the text). */
static pt_status take_reply(const pt_judge *j, const pt_judge_req *r, const xfer *x, pt_judge_reply *rp) {
    double *probs = r->labels ? calloc((size_t)r->n_labels, sizeof(double)) : NULL;
    if (r->labels && !probs) return pt_error(PT_ERR_OOM, "out of memory (%zu bytes of label probabilities)", sizeof(double) * (size_t)r->n_labels);
    bool has_probs = false;
    pt_status st = pt_judge_parse_response(x->resp ? x->resp : "", x->resp_len, r->labels, r->n_labels, &rp->text, probs, &has_probs);
    if (st) {
        free(probs);
        return st;
    }
    rp->attempts = x->attempts;
    rp->label = -1;
    if (r->labels) {
        if (has_probs && j->o.mode == PT_JUDGE_LOGPROBS) {
            rp->probs = probs;
            probs = NULL;
            int best = 0;
            for (int k = 1; k < r->n_labels; k++)
                if (rp->probs[k] > rp->probs[best]) best = k;
            rp->label = best;
        } else
            rp->label = pt_judge_parse_label(rp->text, r->labels, r->n_labels);
    }
    free(probs);
    return PT_OK;
}

/* The next attempt's time: exponential back-off with +-20% jitter, capped, and no sooner than
 * the server's Retry-After. */
static void schedule_retry(pt_judge *j, xfer *x, uint64_t *jitter) {
    *jitter = *jitter * 6364136223846793005ULL + 1442695040888963407ULL;
    double wait = j->o.backoff_s * pow(2, x->attempts - 1);
    if (wait > j->o.backoff_max_s) wait = j->o.backoff_max_s;
    wait *= 0.8 + 0.4 * (double)(*jitter >> 11) / 9007199254740992.0;
    if (x->retry_after > wait) wait = fmin(x->retry_after, fmax(j->o.backoff_max_s, wait));
    x->due = pt_now_s() + wait;
    j->retries++;
}

pt_status pt_judge_http_run(pt_judge *j, int n, const pt_judge_req *reqs, pt_judge_reply *replies) {
    xfer *xs = calloc((size_t)n, sizeof *xs);
    if (!xs) return pt_error(PT_ERR_OOM, "out of memory");
    pt_status st = PT_OK;
    for (int i = 0; i < n && !st; i++)
        if (!(xs[i].body = request_body(j, &reqs[i]))) st = pt_error(PT_ERR_ARG, "judge %s: the prompt is not valid UTF-8", reqs[i].what ? reqs[i].what : "request");
    int n_done = 0, n_active = 0;
    uint64_t jitter = 0x9E3779B97F4A7C15ULL ^ (uint64_t)n;
    while (!st && n_done < n) {
        double t = pt_now_s(), next_due = INFINITY;
        for (int i = 0; i < n && n_active < j->o.concurrency; i++) {
            xfer *x = &xs[i];
            if (x->active || x->done) continue;
            if (x->due > t) { next_due = fmin(next_due, x->due); continue; }
            if (!start(j, x)) { st = pt_error(PT_ERR_OOM, "cannot start an HTTP transfer"); break; }
            n_active++;
        }
        if (st) break;
        int running = 0;
        curl_multi_perform(j->multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(j->multi, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            CURL *h = msg->easy_handle;
            CURLcode cc = msg->data.result;
            xfer *x = NULL;
            curl_easy_getinfo(h, CURLINFO_PRIVATE, (char **)&x);
            long code = 0;
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
            curl_multi_remove_handle(j->multi, h);
            curl_easy_cleanup(h);
            x->h = NULL;
            x->active = false;
            n_active--;
            int i = (int)(x - xs);
            const pt_judge_req *r = &reqs[i];
            const char *what = r->what ? r->what : "request";
            bool retry = false;
            if (cc != CURLE_OK) {
                snprintf(x->last_error, sizeof x->last_error, "%s (%s)", curl_easy_strerror(cc), x->errbuf[0] ? x->errbuf : "no detail");
                retry = cc != CURLE_URL_MALFORMAT && cc != CURLE_UNSUPPORTED_PROTOCOL && cc != CURLE_COULDNT_RESOLVE_HOST;
                if (!retry) { st = pt_error(PT_ERR_NET, "judge %s: %s: %s", j->url, what, x->last_error); break; }
            } else if (code == 200) {
                if ((st = take_reply(j, r, x, &replies[i]))) {
                    pt_error_wrap(st, "judge %s: %s: ", j->url, what);
                    break;
                }
                x->done = true;
                n_done++;
                j->requests++;
                continue;
            } else {
                char sm[300];
                server_message(x, sm, sizeof sm);
                snprintf(x->last_error, sizeof x->last_error, "HTTP %ld%s", code, sm);
                retry = code == 429 || code >= 500;
                if (!retry) {
                    st = pt_error(PT_ERR_NET, "judge %s: %s: %s%s", j->url, what, x->last_error,
                                  code == 401 ? " (set the API key, see --judge-key-env)" : "");
                    break;
                }
            }
            if (x->attempts > j->o.retries) {
                st = pt_error(PT_ERR_NET, "judge %s: %s failed after %d attempt%s: %s", j->url, what, x->attempts, x->attempts > 1 ? "s" : "",
                              x->last_error);
                break;
            }
            schedule_retry(j, x, &jitter);
        }
        if (st || n_done == n) break;
        double wait_ms = n_active ? 100 : (isfinite(next_due) ? (next_due - pt_now_s()) * 1e3 : 10);
        for (int i = 0; i < n; i++)
            if (!xs[i].active && !xs[i].done && isfinite(xs[i].due)) wait_ms = fmin(wait_ms, (xs[i].due - pt_now_s()) * 1e3);
        if (wait_ms < 0) wait_ms = 0;
        curl_multi_poll(j->multi, NULL, 0, (int)wait_ms, NULL);
    }
    for (int i = 0; i < n; i++) {
        if (xs[i].h) {
            curl_multi_remove_handle(j->multi, xs[i].h);
            curl_easy_cleanup(xs[i].h);
        }
        curl_slist_free_all(xs[i].hdrs);
        free(xs[i].body);
        free(xs[i].resp);
    }
    free(xs);
    return st;
}
