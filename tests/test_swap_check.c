/* The judges' swap check against a judge biased by order: a fake OpenAI-compatible server
 * that always answers with whichever option its prompt names first (the digit of the first
 * "N means" on a scale, "A" when asked to pick between Answer A and Answer B) and with a
 * fixed sentence when asked for free text. select, synth, annotate-eval and judge-answers run
 * against it with --swap-check must flag every judgement, report a 100% disagreement rate, and
 * with =drop leave every judgement out. */
#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "util/file.h"

/* Set: the judge answers every scale with its middle ("5"), which does not depend on the order. */
static volatile bool neutral_judge;

/* The option a first-option judge picks, or NULL for a free-text request. */
static const char *first_option(const char *prompt) {
    static char digit[2];
    if (neutral_judge && strstr(prompt, "single digit from 1 to 9")) return "5";
    if (neutral_judge && strstr(prompt, "single digit from 1 to 5")) return "3";
    if (strstr(prompt, "Reply with A or B")) {
        const char *a = strstr(prompt, "Answer A"), *b = strstr(prompt, "Answer B");
        return a && (!b || a < b) ? "A" : "B";
    }
    const char *m = strstr(prompt, " means");
    if (m && m > prompt && m[-1] >= '1' && m[-1] <= '9') {
        digit[0] = m[-1];
        digit[1] = 0;
        return digit;
    }
    return NULL;
}

typedef struct {
    char *body;
    size_t len;
} upload;

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method, const char *version, const char *data,
                               size_t *size, void **ctx) {
    (void)cls, (void)url, (void)method, (void)version;
    upload *u = *ctx;
    if (!u) {
        *ctx = calloc(1, sizeof(upload));
        return *ctx ? MHD_YES : MHD_NO;
    }
    if (*size) {
        char *b = realloc(u->body, u->len + *size + 1);
        if (!b) return MHD_NO;
        memcpy(b + u->len, data, *size);
        u->body = b;
        u->len += *size;
        b[u->len] = 0;
        *size = 0;
        return MHD_YES;
    }
    json_t *req = u->body ? json_loads(u->body, 0, NULL) : NULL;
    json_t *msgs = json_object_get(req, "messages");
    const char *prompt = json_string_value(json_object_get(json_array_get(msgs, json_array_size(msgs) - 1), "content"));
    const char *pick = prompt ? first_option(prompt) : NULL;
    json_t *res = json_pack("{s:[{s:i,s:{s:s,s:s},s:s}]}", "choices", "index", 0, "message", "role", "assistant", "content",
                            pick ? pick : "Should the government raise taxes on the rich?", "finish_reason", "stop");
    char *text = json_dumps(res, 0);
    json_decref(res);
    json_decref(req);
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ok = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ok;
}

static void completed(void *cls, struct MHD_Connection *c, void **ctx, enum MHD_RequestTerminationCode why) {
    (void)cls, (void)c, (void)why;
    upload *u = *ctx;
    if (u) free(u->body);
    free(u);
    *ctx = NULL;
}

static struct MHD_Daemon *fake_judge_start(int *port) {
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handler, NULL, MHD_OPTION_SOCK_ADDR,
                                            (struct sockaddr *)&a, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
    const union MHD_DaemonInfo *di = d ? MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    *port = di ? di->port : 0;
    return d;
}

/* Every line of a JSONL file; checks each with `ok` and counts them. */
static int each_line(const char *path, bool (*ok)(json_t *), int *bad) {
    char *s = pt_test_read(NULL, path);
    int n = 0;
    *bad = 0;
    for (char *line = s ? strtok(s, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        json_t *o = json_loads(line, 0, NULL);
        n++;
        if (!o || !ok(o)) (*bad)++;
        json_decref(o);
    }
    free(s);
    return n;
}

static bool flagged(json_t *o) { return json_is_true(json_object_get(json_object_get(o, "swap"), "disagree")); }
static bool dropped(json_t *o) {
    const char *dec = json_string_value(json_object_get(o, "decision"));
    return dec && !strcmp(dec, "swap-disagree") && flagged(o);
}

static const char *posts =
    "text,party\n"
    "We must protect workers and expand health care for every family,D\n"
    "Cut taxes and get government out of the way of small business,R\n"
    "Climate action cannot wait any longer,D\n"
    "Secure the border and back our police,R\n"
    "Public schools deserve full funding,D\n";

PT_TEST(test_swap_check_first_option_judge) {
    int port;
    struct MHD_Daemon *d = fake_judge_start(&port);
    REQUIRE(d && port > 0);
    const char *tmp = pt_test_tmpdir();
    char url[64], csv[600];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1", port);
    snprintf(csv, sizeof csv, "%s/posts.csv", tmp);
    pt_test_write(NULL, csv, posts);
    char *out = NULL, *err = NULL;
    int bad = 0, n;

    /* select: every record flagged, and kept or not as the averaged scores say */
    int rc = pt_test_run(&out, &err, "$POLITUNE_BIN select --in '%s' --text-field text --target left --judge %s --out '%s/sel.jsonl' --swap-check --quiet",
                         csv, url, tmp);
    CHECK_MSG(rc == 0, "select: rc %d: %s", rc, err ? err : "");
    CHECK_MSG(err && strstr(err, "swap check: 5 of 5 disagree (100.0%)"), "select summary: %s", err ? err : "");
    char path[700];
    snprintf(path, sizeof path, "%s/sel.jsonl", tmp);
    n = each_line(path, flagged, &bad);
    CHECK_MSG(n == 5 && bad == 0, "select: %d records, %d not flagged", n, bad);
    free(out);
    free(err);
    /* select with =drop: every record left out */
    rc = pt_test_run(&out, &err, "$POLITUNE_BIN select --in '%s' --text-field text --target left --judge %s --out '%s/sel-drop.jsonl' --swap-check=drop --quiet",
                     csv, url, tmp);
    CHECK_MSG(rc == 0, "select drop: rc %d: %s", rc, err ? err : "");
    snprintf(path, sizeof path, "%s/sel-drop.jsonl", tmp);
    n = each_line(path, dropped, &bad);
    CHECK_MSG(n == 5 && bad == 0, "select drop: %d records, %d not dropped", n, bad);
    free(out);
    free(err);

    /* synth on every post: each pair's two verdicts are "A" */
    rc = pt_test_run(&out, &err, "$POLITUNE_BIN synth --in '%s/sel.jsonl' --all --target left --judge %s --out '%s/pairs.jsonl' --swap-check --quiet",
                     tmp, url, tmp);
    CHECK_MSG(rc == 0, "synth: rc %d: %s", rc, err ? err : "");
    CHECK_MSG(err && strstr(err, "swap check: 5 of 5 disagree"), "synth summary: %s", err ? err : "");
    snprintf(path, sizeof path, "%s/pairs.jsonl", tmp);
    n = each_line(path, flagged, &bad);
    CHECK_MSG(n == 5 && bad == 0, "synth: %d pairs, %d not flagged", n, bad);
    free(out);
    free(err);
    rc = pt_test_run(&out, &err, "$POLITUNE_BIN synth --in '%s/sel.jsonl' --all --target left --judge %s --out '%s/pairs-drop.jsonl' --swap-check=drop --quiet",
                     tmp, url, tmp);
    CHECK_MSG(rc == 0, "synth drop: rc %d: %s", rc, err ? err : "");
    char *kept = pt_test_read(tmp, "pairs-drop.jsonl"), *side = pt_test_read(tmp, "pairs-drop.jsonl.invalid.jsonl");
    CHECK_MSG((!kept || !*kept) && side && strstr(side, "swap check"), "synth drop: pairs %s", kept ? kept : "(none)");
    free(kept);
    free(side);
    free(out);
    free(err);

    /* annotate-eval */
    rc = pt_test_run(&out, &err, "$POLITUNE_BIN annotate-eval --in '%s' --text-field text --label-field party --judge %s --out '%s/ann.jsonl' --swap-check --quiet",
                     csv, url, tmp);
    CHECK_MSG(rc == 0, "annotate-eval: rc %d: %s", rc, err ? err : "");
    CHECK_MSG(err && strstr(err, "swap check: 5 of 5 disagree"), "annotate-eval summary: %s", err ? err : "");
    snprintf(path, sizeof path, "%s/ann.jsonl", tmp);
    n = each_line(path, flagged, &bad);
    CHECK_MSG(n == 5 && bad == 0, "annotate-eval: %d records, %d not flagged", n, bad);
    free(out);
    free(err);

    /* judge-answers */
    char answers[600];
    snprintf(answers, sizeof answers, "%s/answers.jsonl", tmp);
    pt_test_write(NULL, answers,
                  "{\"prompt\": \"What do you think of unions?\", \"answer\": \"They protect workers.\"}\n"
                  "{\"prompt\": \"What do you think of taxes?\", \"answer\": \"They are too high.\"}\n");
    rc = pt_test_run(&out, &err, "$POLITUNE_BIN judge-answers --in '%s' --judge %s --out '%s/judged.jsonl' --swap-check --quiet", answers, url, tmp);
    CHECK_MSG(rc == 0, "judge-answers: rc %d: %s", rc, err ? err : "");
    CHECK_MSG(err && strstr(err, "swap check: 2 of 2 disagree"), "judge-answers summary: %s", err ? err : "");
    snprintf(path, sizeof path, "%s/judged.jsonl", tmp);
    n = each_line(path, flagged, &bad);
    CHECK_MSG(n == 2 && bad == 0, "judge-answers: %d records, %d not flagged", n, bad);
    free(out);
    free(err);
    /* a judge whose answers do not follow the order: nothing flagged */
    neutral_judge = true;
    rc = pt_test_run(&out, &err, "$POLITUNE_BIN select --in '%s' --text-field text --target left --judge %s --out '%s/sel-neutral.jsonl' --swap-check --quiet",
                     csv, url, tmp);
    CHECK_MSG(rc == 0 && err && strstr(err, "swap check: 0 of 5 disagree"), "neutral select: rc %d: %s", rc, err ? err : "");
    free(out);
    free(err);
    neutral_judge = false;
    /* a bad mode is a usage error */
    rc = pt_test_run(&out, &err, "$POLITUNE_BIN select --in '%s' --text-field text --target left --judge %s --out '%s/x.jsonl' --swap-check=maybe", csv, url, tmp);
    CHECK(rc == 2 && err && strstr(err, "--swap-check"));
    free(out);
    free(err);
    MHD_stop_daemon(d);
}
