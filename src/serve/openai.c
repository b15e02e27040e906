/* Parsing and checking OpenAI-compatible request bodies (see openai.h). */
#include "serve/openai.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BAD(p, ...) (*param = (p), pt_error(PT_ERR_ARG, __VA_ARGS__))

/* Text content: a string, or a list of {type: "text", text} parts joined. */
static pt_status read_content(json_t *c, int i, char **out, const char **param) {
    if (json_is_string(c)) {
        *out = strdup(json_string_value(c));
        return *out ? PT_OK : pt_error(PT_ERR_OOM, "out of memory");
    }
    if (json_is_null(c)) {
        *out = strdup("");
        return *out ? PT_OK : pt_error(PT_ERR_OOM, "out of memory");
    }
    if (!json_is_array(c)) return BAD("messages", "messages[%d].content must be a string or a list of text parts", i);
    size_t total = 1;
    for (size_t k = 0; k < json_array_size(c); k++) {
        json_t *part = json_array_get(c, k);
        const char *type = json_string_value(json_object_get(part, "type"));
        json_t *t = json_object_get(part, "text");
        if (!type || strcmp(type, "text") || !json_is_string(t))
            return BAD("messages", "messages[%d].content[%zu]: only {\"type\": \"text\", \"text\": ...} parts are supported", i, k);
        total += json_string_length(t);
    }
    char *s = malloc(total);
    if (!s) return pt_error(PT_ERR_OOM, "out of memory");
    size_t n = 0;
    for (size_t k = 0; k < json_array_size(c); k++) {
        json_t *t = json_object_get(json_array_get(c, k), "text");
        memcpy(s + n, json_string_value(t), json_string_length(t));
        n += json_string_length(t);
    }
    s[n] = 0;
    *out = s;
    return PT_OK;
}

static pt_status read_messages(json_t *m, pt_oai_request *r, const char **param) {
    if (!json_is_array(m) || json_array_size(m) == 0) return BAD("messages", "'messages' must be a non-empty array of messages");
    size_t n = json_array_size(m);
    if (!(r->msgs = calloc(n, sizeof *r->msgs))) return pt_error(PT_ERR_OOM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(m, i);
        if (!json_is_object(o)) return BAD("messages", "messages[%zu] must be an object with 'role' and 'content'", i);
        const char *role = json_string_value(json_object_get(o, "role"));
        if (!role) return BAD("messages", "messages[%zu] has no string 'role'", i);
        if (!strcmp(role, "developer")) role = "system";
        if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant"))
            return BAD("messages", "messages[%zu]: role '%.40s' is not supported (system, developer, user, assistant)", i, role);
        if (!(r->msgs[i].role = strdup(role))) return pt_error(PT_ERR_OOM, "out of memory");
        r->n_msgs = (int)i + 1;
        PT_TRY(read_content(json_object_get(o, "content"), (int)i, &r->msgs[i].content, param));
    }
    return PT_OK;
}

static pt_status read_ids(json_t *a, pt_oai_request *r, const char **param) {
    size_t n = json_array_size(a);
    if (!n) return BAD("prompt", "'prompt' is an empty list");
    if (!(r->prompt_ids = malloc(sizeof(int32_t) * n))) return pt_error(PT_ERR_OOM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(a, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
            return BAD("prompt", "'prompt' token %zu is not a non-negative integer", i);
        r->prompt_ids[i] = (int32_t)json_integer_value(v);
    }
    r->n_prompt_ids = (int)n;
    return PT_OK;
}

static pt_status read_prompt(json_t *p, pt_oai_request *r, const char **param) {
    if (json_is_string(p)) {
        r->prompt = strdup(json_string_value(p));
        return r->prompt ? PT_OK : pt_error(PT_ERR_OOM, "out of memory");
    }
    if (!json_is_array(p)) return BAD("prompt", "'prompt' must be a string, a list of token ids, or a list with one of those");
    json_t *first = json_array_get(p, 0);
    if (json_is_string(first) || json_is_array(first)) {
        if (json_array_size(p) != 1) return BAD("prompt", "only one prompt per request is supported");
        if (json_is_string(first)) return read_prompt(first, r, param);
        return read_ids(first, r, param);
    }
    return read_ids(p, r, param);
}

static pt_status read_strings(json_t *v, const char *name, int max, char ***out, int *n, const char **param) {
    if (!v || json_is_null(v)) return PT_OK;
    json_t *one = json_is_string(v) ? v : NULL;
    size_t cnt = one ? 1 : json_array_size(v);
    if (!one && !json_is_array(v)) return BAD(name, "'%s' must be a string or a list of strings", name);
    if ((int)cnt > max) return BAD(name, "'%s' has %zu entries; at most %d are supported", name, cnt, max);
    if (!cnt) return PT_OK;
    if (!(*out = calloc(cnt, sizeof(char *)))) return pt_error(PT_ERR_OOM, "out of memory");
    for (size_t i = 0; i < cnt; i++) {
        json_t *s = one ? one : json_array_get(v, i);
        if (!json_is_string(s) || json_string_length(s) == 0) return BAD(name, "'%s' entries must be non-empty strings", name);
        if (!((*out)[i] = strdup(json_string_value(s)))) return pt_error(PT_ERR_OOM, "out of memory");
        *n = (int)i + 1;
    }
    return PT_OK;
}

static pt_status read_number(json_t *o, const char *key, double lo, double hi, double *out, const char **param) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return PT_OK;
    if (!json_is_number(v)) return BAD(key, "'%s' must be a number", key);
    double x = json_number_value(v);
    if (!isfinite(x) || x < lo || x > hi) return BAD(key, "'%s' must be between %g and %g", key, lo, hi);
    *out = x;
    return PT_OK;
}

static pt_status read_int(json_t *o, const char *key, long lo, long hi, int *out, const char **param) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return PT_OK;
    if (!json_is_integer(v)) return BAD(key, "'%s' must be an integer", key);
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi) return BAD(key, "'%s' must be between %ld and %ld", key, lo, hi);
    *out = (int)x;
    return PT_OK;
}

static pt_status read_bool(json_t *o, const char *key, bool *out, const char **param) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return PT_OK;
    if (!json_is_boolean(v)) return BAD(key, "'%s' must be true or false", key);
    *out = json_is_true(v);
    return PT_OK;
}

pt_status pt_oai_parse_adapters(json_t *list, const char *key, pt_oai_adapter **out, int *n, const char **param) {
    *out = NULL;
    *n = 0;
    if (!json_is_array(list)) return BAD(key, "'%s' must be a list of {\"name\" (or \"id\"), \"scale\"}", key);
    size_t k = json_array_size(list);
    if (k > 64) return BAD(key, "'%s' has %zu entries; at most 64", key, k);
    pt_oai_adapter *a = calloc(k ? k : 1, sizeof *a);
    if (!a) return pt_error(PT_ERR_OOM, "out of memory");
    for (size_t i = 0; i < k; i++) {
        json_t *e = json_array_get(list, i), *nm = json_object_get(e, "name"), *id = json_object_get(e, "id"), *sc = json_object_get(e, "scale");
        pt_status st = PT_OK;
        if (!json_is_object(e)) st = BAD(key, "%s[%zu] must be an object {\"name\", \"scale\"}", key, i);
        else if (!nm == !id) st = BAD(key, "%s[%zu] needs exactly one of \"name\" (a string) and \"id\" (an integer)", key, i);
        else if (nm && !json_is_string(nm)) st = BAD(key, "%s[%zu].name must be a string", key, i);
        else if (id && (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) > 1000000))
            st = BAD(key, "%s[%zu].id must be a non-negative integer", key, i);
        else if (!json_is_number(sc) || !isfinite(json_number_value(sc)) || fabs(json_number_value(sc)) > 1e6)
            st = BAD(key, "%s[%zu].scale must be a finite number (|scale| <= 1e6)", key, i);
        if (!st && nm && !(a[i].name = strdup(json_string_value(nm)))) st = pt_error(PT_ERR_OOM, "out of memory");
        if (st) { pt_oai_adapters_free(a, (int)k); return st; }
        a[i].id = id ? (int)json_integer_value(id) : -1;
        a[i].scale = json_number_value(sc);
    }
    *out = a;
    *n = (int)k;
    return PT_OK;
}

void pt_oai_adapters_free(pt_oai_adapter *a, int n) {
    for (int i = 0; a && i < n; i++) free(a[i].name);
    free(a);
}

static pt_status parse(pt_oai_kind kind, json_t *o, pt_oai_request *r, const char **param) {
    if (!json_is_object(o)) return BAD(NULL, "the request body must be a JSON object");
    json_t *model = json_object_get(o, "model");
    if (model && !json_is_null(model)) {
        if (!json_is_string(model)) return BAD("model", "'model' must be a string");
        if (!(r->model = strdup(json_string_value(model)))) return pt_error(PT_ERR_OOM, "out of memory");
    }
    json_t *ad = json_object_get(o, "adapters");
    const char *ad_key = "adapters";
    if (!ad || json_is_null(ad)) ad = json_object_get(o, "lora"), ad_key = "lora";
    if (ad && !json_is_null(ad)) {
        r->has_adapters = true;
        PT_TRY(pt_oai_parse_adapters(ad, ad_key, &r->adapters, &r->n_adapters, param));
    }
    if (kind == PT_OAI_CHAT) {
        if (!json_object_get(o, "messages")) return BAD("messages", "'messages' is required");
        PT_TRY(read_messages(json_object_get(o, "messages"), r, param));
    } else {
        json_t *p = json_object_get(o, "prompt");
        if (!p) return BAD("prompt", "'prompt' is required");
        PT_TRY(read_prompt(p, r, param));
    }
    const long max_tok = 1 << 20;
    PT_TRY(read_int(o, "max_tokens", 0, max_tok, &r->max_tokens, param));
    PT_TRY(read_int(o, "max_completion_tokens", 0, max_tok, &r->max_tokens, param));
    PT_TRY(read_number(o, "temperature", 0, 2, &r->temperature, param));
    PT_TRY(read_number(o, "top_p", 0, 1, &r->top_p, param));
    if (r->top_p <= 0) return BAD("top_p", "'top_p' must be greater than 0");
    PT_TRY(read_int(o, "top_k", -1, 1 << 30, &r->top_k, param));
    if (r->top_k < 0) r->top_k = 0;
    json_t *seed = json_object_get(o, "seed");
    if (seed && !json_is_null(seed)) {
        if (!json_is_integer(seed)) return BAD("seed", "'seed' must be an integer");
        r->has_seed = true;
        r->seed = (uint64_t)json_integer_value(seed);
    }
    int n = 1;
    PT_TRY(read_int(o, "n", 1, 1 << 20, &n, param));
    if (n != 1) return BAD("n", "only n = 1 is supported");
    PT_TRY(read_strings(json_object_get(o, "stop"), "stop", PT_OAI_MAX_STOP, &r->stop, &r->n_stop, param));
    PT_TRY(read_bool(o, "stream", &r->stream, param));
    PT_TRY(read_bool(o, "ignore_eos", &r->ignore_eos, param));
    json_t *so = json_object_get(o, "stream_options");
    if (so && !json_is_null(so)) {
        if (!json_is_object(so)) return BAD("stream_options", "'stream_options' must be an object");
        PT_TRY(read_bool(so, "include_usage", &r->include_usage, param));
    }
    if (kind == PT_OAI_CHAT) {
        PT_TRY(read_bool(o, "logprobs", &r->logprobs, param));
        PT_TRY(read_int(o, "top_logprobs", 0, 20, &r->top_logprobs, param));
        if (r->top_logprobs > 0 && !r->logprobs) return BAD("top_logprobs", "'top_logprobs' needs 'logprobs': true");
    } else {
        int k = -1;
        PT_TRY(read_int(o, "logprobs", 0, 20, &k, param));
        if (k >= 0) r->logprobs = true, r->top_logprobs = k;
    }
    json_t *gc = json_object_get(o, "guided_choice");
    if (gc && !json_is_null(gc)) {
        if (!json_is_array(gc) || json_array_size(gc) == 0) return BAD("guided_choice", "'guided_choice' must be a non-empty list of strings");
        PT_TRY(read_strings(gc, "guided_choice", PT_OAI_MAX_CHOICES, &r->choices, &r->n_choices, param));
    }
    return PT_OK;
}

pt_status pt_oai_parse(pt_oai_kind kind, const char *body, size_t len, pt_oai_request *r, const char **param) {
    memset(r, 0, sizeof *r);
    *param = NULL;
    r->kind = kind;
    r->max_tokens = -1;
    r->temperature = 1;
    r->top_p = 1;
    if (!len) return pt_error(PT_ERR_FORMAT, "the request has no body; send a JSON object");
    json_error_t e;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
    if (!o) return pt_error(PT_ERR_FORMAT, "the body is not valid JSON: %s (line %d, column %d)", e.text, e.line, e.column);
    pt_status st = parse(kind, o, r, param);
    json_decref(o);
    if (st) {
        const char *p = *param;
        pt_oai_request_free(r);
        *param = p;
    }
    return st;
}

void pt_oai_request_free(pt_oai_request *r) {
    free(r->model);
    pt_oai_adapters_free(r->adapters, r->n_adapters);
    for (int i = 0; i < r->n_msgs; i++) {
        free(r->msgs[i].role);
        free(r->msgs[i].content);
    }
    free(r->msgs);
    free(r->prompt);
    free(r->prompt_ids);
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    free(r->stop);
    for (int i = 0; i < r->n_choices; i++) free(r->choices[i]);
    free(r->choices);
    memset(r, 0, sizeof *r);
}

char *pt_oai_error_json(const char *message, const char *type, const char *param, const char *code) {
    json_t *err = json_object();
    json_object_set_new(err, "message", json_string(message ? message : "error"));
    if (!json_object_get(err, "message")) json_object_set_new(err, "message", json_string("error (message not valid UTF-8)"));
    json_object_set_new(err, "type", json_string(type ? type : "invalid_request_error"));
    json_object_set_new(err, "param", param ? json_string(param) : json_null());
    json_object_set_new(err, "code", code ? json_string(code) : json_null());
    json_t *o = json_pack("{s:o}", "error", err);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}
