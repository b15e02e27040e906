/* Adapters chosen per request in politune serve (issue 15), on stories260K with two adapters
 * of random B: eight concurrent clients asking for different adapters and scales each get the
 * text they get alone (--batch-invariant); "model" names select base or one adapter; GET and
 * POST /v1/adapters round-trip and the defaults they set are what a plain request gets; an
 * unknown adapter is a 400 listing the known ones; and the official `openai` Python client
 * drives the CLI server (skipped when the oracle venv lacks it). */
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "serve/server.h"
#include "test.h"
#include "util/rng.h"

#define BIN "\"$POLITUNE_BIN\""

typedef struct {
    long status;
    char *body;
    size_t len;
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
    return k;
}

/* GET, or POST when there is a body. */
static void http(http_res *r, const char *url, const char *body) {
    memset(r, 0, sizeof *r);
    CURL *h = curl_easy_init();
    struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (body) curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    if (curl_easy_perform(h) == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
}

static char *content_of(const http_res *r) {
    json_t *o = r->body ? json_loads(r->body, 0, NULL) : NULL;
    const char *c = json_string_value(json_object_get(json_object_get(json_array_get(json_object_get(o, "choices"), 0), "message"), "content"));
    char *s = c ? strdup(c) : NULL;
    json_decref(o);
    return s;
}

static const char *stories(void) { return pt_test_shared("assets/models/stories260K/stories260K.gguf"); }

/* An adapter on q, v, down and the head with B drawn too, strong enough to change the text. */
static pt_adapter *random_adapter(const pt_model *m, uint64_t seed) {
    pt_adapter *a = NULL;
    unsigned targets = (1u << PT_LT_Q) | (1u << PT_LT_V) | (1u << PT_LT_DOWN) | (1u << PT_LT_HEAD);
    if (pt_adapter_new(&a, m, 4, 8.0f, targets, false, 0, seed)) return NULL;
    pt_rng rng;
    pt_rng_seed(&rng, seed * 31 + 7);
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int t = 0; t < PT_LT_COUNT; t++) {
            if (t == PT_LT_HEAD && l > 0) continue;
            pt_lora_pair *p = (pt_lora_pair *)pt_adapter_pair(a, l, (pt_lora_target)t);
            for (int64_t i = 0; p && i < (int64_t)p->out * a->r; i++) p->B[i] = (float)(0.5 * (2.0 * pt_rng_double(&rng) - 1.0));
        }
    return a;
}

typedef struct {
    pt_model *m;
    pt_adapter *a[2];
    pt_engine *e;
    pt_server *s;
    char base[64];
} fixture;

static bool fx_start(fixture *f) {
    memset(f, 0, sizeof *f);
    pt_backend_set_threads(1);
    if (pt_model_load(&f->m, stories()) || !(f->a[0] = random_adapter(f->m, 1)) || !(f->a[1] = random_adapter(f->m, 2))) return false;
    const float defaults[2] = {1, 0};
    if (pt_engine_new(&f->e, f->m, 4, 512) || pt_engine_set_adapters(f->e, (const pt_adapter *const *)f->a, defaults, 2)) return false;
    static const char *names[2] = {"left", "right"}, *paths[2] = {"/adapters/left", "/adapters/right"};
    pt_server_opts o = pt_server_opts_default();
    o.batch_invariant = true;
    o.n_adapters = 2;
    o.adapter_names = names;
    o.adapter_paths = paths;
    o.adapter_scales = defaults;
    if (pt_server_start(&f->s, f->m, f->e, &o)) return false;
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d/v1", pt_server_port(f->s));
    return true;
}

static void fx_stop(fixture *f) {
    if (f->s) pt_server_stop(f->s, 1, NULL);
    pt_engine_free(f->e);
    pt_adapter_free(f->a[0]);
    pt_adapter_free(f->a[1]);
    pt_model_free(f->m);
}

#define CHAT(model, extra) \
    "{\"model\":\"" model "\",\"messages\":[{\"role\":\"user\",\"content\":\"Tom had a red ball.\"}],\"temperature\":0,\"max_tokens\":24" extra "}"

typedef struct {
    char url[128];
    const char *body;
    http_res r;
} client_arg;

static void *client(void *arg) {
    client_arg *c = arg;
    http(&c->r, c->url, c->body);
    return NULL;
}

PT_TEST(test_serve_adapters_per_request) {
    fixture f;
    if (!fx_start(&f)) { CHECK_MSG(0, "server: %s", pt_errmsg()); fx_stop(&f); return; }
    static const char *bodies[8] = {
        CHAT("base", ""),
        CHAT("left", ""),
        CHAT("right", ""),
        CHAT("x", ",\"adapters\":[{\"name\":\"left\",\"scale\":0.7}]"),
        CHAT("x", ",\"adapters\":[{\"name\":\"right\",\"scale\":0.5},{\"name\":\"left\",\"scale\":-0.5}]"),
        CHAT("x", ",\"adapters\":[{\"name\":\"left\",\"scale\":1},{\"name\":\"right\",\"scale\":1}]"),
        CHAT("x", ",\"lora\":[{\"id\":1,\"scale\":0.3}]"),
        CHAT("x", ""), /* the defaults: left at 1 */
    };
    char chat_url[128];
    snprintf(chat_url, sizeof chat_url, "%s/chat/completions", f.base);
    char *solo[8];
    for (int i = 0; i < 8; i++) {
        http_res r;
        http(&r, chat_url, bodies[i]);
        solo[i] = content_of(&r);
        CHECK_MSG(r.status == 200 && solo[i], "alone %d: %ld %s", i, r.status, r.body ? r.body : "");
        free(r.body);
    }
    /* the adapters change the text (else this test would prove nothing), "left" is the default */
    CHECK_MSG(solo[0] && solo[1] && solo[2] && strcmp(solo[0], solo[1]) && strcmp(solo[0], solo[2]) && strcmp(solo[1], solo[2]),
              "base '%s', left '%s', right '%s' should differ", solo[0], solo[1], solo[2]);
    CHECK_MSG(solo[7] && solo[1] && !strcmp(solo[7], solo[1]), "defaults '%s' vs left '%s'", solo[7], solo[1]);
    client_arg args[8];
    pthread_t th[8];
    for (int i = 0; i < 8; i++) {
        memset(&args[i], 0, sizeof args[i]);
        snprintf(args[i].url, sizeof args[i].url, "%s", chat_url);
        args[i].body = bodies[i];
        pthread_create(&th[i], NULL, client, &args[i]);
    }
    for (int i = 0; i < 8; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 8; i++) {
        char *t = content_of(&args[i].r);
        CHECK_MSG(args[i].r.status == 200 && t && solo[i] && !strcmp(t, solo[i]), "client %d together: '%s', alone: '%s'", i, t ? t : "",
                  solo[i] ? solo[i] : "");
        free(t);
        free(args[i].r.body);
    }

    /* /v1/adapters: the list, new defaults (those not named: 0), and a plain request follows them */
    char ad_url[128];
    snprintf(ad_url, sizeof ad_url, "%s/adapters", f.base);
    http_res r;
    http(&r, ad_url, NULL);
    json_t *list = r.body ? json_loads(r.body, 0, NULL) : NULL;
    CHECK_MSG(r.status == 200 && json_array_size(list) == 2 && !strcmp(json_string_value(json_object_get(json_array_get(list, 1), "name")), "right") &&
                  json_number_value(json_object_get(json_array_get(list, 0), "scale")) == 1.0 &&
                  !strcmp(json_string_value(json_object_get(json_array_get(list, 0), "path")), "/adapters/left"),
              "GET /v1/adapters: %s", r.body ? r.body : "");
    json_decref(list);
    free(r.body);
    http(&r, ad_url, "[{\"name\":\"right\",\"scale\":0.3}]");
    free(r.body);
    http(&r, ad_url, NULL);
    list = r.body ? json_loads(r.body, 0, NULL) : NULL;
    CHECK_MSG(r.status == 200 && json_number_value(json_object_get(json_array_get(list, 0), "scale")) == 0.0 &&
                  fabs(json_number_value(json_object_get(json_array_get(list, 1), "scale")) - 0.3) < 1e-6,
              "after POST: %s", r.body ? r.body : "");
    json_decref(list);
    free(r.body);
    http(&r, chat_url, CHAT("x", ""));
    char *t = content_of(&r);
    CHECK_MSG(t && solo[6] && !strcmp(t, solo[6]), "new defaults give '%s', right at 0.3 gave '%s'", t ? t : "", solo[6] ? solo[6] : "");
    free(t);
    free(r.body);

    /* bad input: one JSON error each */
    http(&r, chat_url, CHAT("x", ",\"adapters\":[{\"name\":\"centre\",\"scale\":1}]"));
    CHECK_MSG(r.status == 400 && r.body && strstr(r.body, "unknown adapter 'centre' (known: left, right)") && strstr(r.body, "\"param\":\"adapters\""),
              "unknown name: %ld %s", r.status, r.body ? r.body : "");
    free(r.body);
    http(&r, chat_url, CHAT("x", ",\"adapters\":[{\"name\":\"left\",\"scale\":\"high\"}]"));
    CHECK_MSG(r.status == 400 && r.body && strstr(r.body, "scale must be a finite number"), "bad scale: %ld %s", r.status, r.body ? r.body : "");
    free(r.body);
    http(&r, ad_url, "[{\"id\":7,\"scale\":1}]");
    CHECK_MSG(r.status == 400 && r.body && strstr(r.body, "unknown adapter id 7"), "bad id: %ld %s", r.status, r.body ? r.body : "");
    free(r.body);
    char models_url[128];
    snprintf(models_url, sizeof models_url, "%s/models", f.base);
    http(&r, models_url, NULL);
    CHECK_MSG(r.status == 200 && r.body && strstr(r.body, "\"base\"") && strstr(r.body, "\"left\"") && strstr(r.body, "\"right\""), "models: %s",
              r.body ? r.body : "");
    free(r.body);
    for (int i = 0; i < 8; i++) free(solo[i]);
    fx_stop(&f);
}

/* The official openai client against `politune serve --adapter left=DIR --adapter right=DIR`. */
PT_TEST(test_serve_adapters_openai_client) {
    const char *why = NULL, *py = pt_test_python("openai", &why);
    if (!py) SKIP("%s", why);
    const char *d = pt_test_tmpdir();
    pt_model *m = NULL;
    REQUIRE_OK(pt_model_load(&m, stories()));
    for (int k = 0; k < 2; k++) {
        pt_adapter *a = random_adapter(m, (uint64_t)k + 1);
        REQUIRE(a);
        char dir[600];
        snprintf(dir, sizeof dir, "%s/%s", d, k ? "right" : "left");
        CHECK_OK(pt_adapter_save(a, dir));
        pt_adapter_free(a);
    }
    pt_model_free(m);
    static const char *script =
        "import json, sys\n"
        "from openai import OpenAI\n"
        "c = OpenAI(base_url=sys.argv[1], api_key='none')\n"
        "msgs = [{'role': 'user', 'content': 'Tom had a red ball.'}]\n"
        "def say(model, extra=None):\n"
        "    r = c.chat.completions.create(model=model, messages=msgs, temperature=0, max_tokens=24, extra_body=extra)\n"
        "    return r.choices[0].message.content\n"
        "out = {'models': sorted(x.id for x in c.models.list().data),\n"
        "       'base': say('base'), 'left': say('left'), 'right': say('right'),\n"
        "       'left_by_list': say('whatever', {'adapters': [{'name': 'left', 'scale': 1}]})}\n"
        "try:\n"
        "    say('x', {'adapters': [{'name': 'centre', 'scale': 1}]})\n"
        "    out['unknown'] = 'accepted'\n"
        "except Exception as e:\n"
        "    out['unknown'] = '%s %s' % (getattr(e, 'status_code', '?'), e)\n"
        "print(json.dumps(out))\n";
    pt_test_write(d, "client.py", script);
    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err,
                         "cd '%s' && { " BIN " serve --model '%s' --adapter left=left --adapter right=right:0 --batch-invariant --quiet --port 0 "
                         "--port-file port --threads 1 2>serve.err & pid=$!; "
                         "for i in $(seq 300); do [ -s port ] && break; sleep 0.1; done; "
                         "'%s' client.py \"http://127.0.0.1:$(cat port)/v1\"; rc=$?; kill $pid; wait $pid; exit $rc; }",
                         d, stories(), py);
    CHECK_MSG(rc == 0, "client: rc %d, stderr: %s", rc, err ? err : "");
    json_t *o = out ? json_loads(out, 0, NULL) : NULL;
    const char *base = json_string_value(json_object_get(o, "base")), *left = json_string_value(json_object_get(o, "left")),
               *right = json_string_value(json_object_get(o, "right")), *by_list = json_string_value(json_object_get(o, "left_by_list")),
               *unknown = json_string_value(json_object_get(o, "unknown"));
    CHECK_MSG(base && left && right && strcmp(base, left) && strcmp(base, right) && strcmp(left, right), "sides do not differ: %s", out ? out : "");
    CHECK_MSG(left && by_list && !strcmp(left, by_list), "model 'left' and adapters [left 1] differ: %s", out ? out : "");
    CHECK_MSG(unknown && !strncmp(unknown, "400", 3) && strstr(unknown, "known: left, right"), "unknown adapter: %s", unknown ? unknown : "");
    json_t *models = json_object_get(o, "models");
    CHECK_MSG(json_array_size(models) == 4, "models: %s", out ? out : "");
    json_decref(o);
    free(out);
    free(err);
}
