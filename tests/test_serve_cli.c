/* End to end through the politune command: `serve` started and stopped with SIGTERM (in the
 * middle of a stream), then with stories260K served as the judge, select -> synth -> train
 * --method dpo on a slice of the senator tweets; select and synth killed mid-run and rerun
 * give the same files as uninterrupted runs; a stopped judge makes select fail clearly with
 * its output intact; judge-answers on a real compass run, annotate-eval on labelled corpora.
 * Servers listen on 127.0.0.1 on a port the kernel picks and are always stopped. */
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include "util/file.h"

#define BIN "\"$POLITUNE_BIN\""

static const char *stories(void) { return pt_test_shared("assets/models/stories260K/stories260K.gguf"); }
static const char *senators(void) { return pt_test_shared("assets/data/corpus/senators.csv"); }

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int count_lines(const char *path) {
    char *s = pt_test_read(NULL, path);
    int n = 0;
    for (char *p = s; p && *p; p++) n += *p == '\n';
    free(s);
    return n;
}

/* Runs `cmdline` in the background (sh -c, output to files); returns the pid. */
static pid_t spawn(const char *cmdline, const char *out, const char *err) {
    pid_t p = fork();
    if (p == 0) {
        if (!freopen("/dev/null", "r", stdin) || !freopen(out, "w", stdout) || !freopen(err, "w", stderr)) _exit(126);
        execl("/bin/sh", "sh", "-c", cmdline, (char *)NULL);
        _exit(127);
    }
    return p;
}

/* Waits up to `secs` for the process; its exit status, or -1 if it is still running. */
static int wait_for(pid_t pid, double secs) {
    double t0 = now_s();
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
        if (r < 0 || now_s() - t0 > secs) return -1;
        usleep(5000);
    }
}

typedef struct {
    pid_t pid;
    int port;
    char dir[512], url[64], err[600];
} server;

/* `politune serve` on stories260K with a free port; false if it did not come up. */
static bool server_start(server *s, const char *extra) {
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "%s", pt_test_tmpdir());
    snprintf(s->err, sizeof s->err, "%s/serve.err", s->dir);
    char cmd[2048], out[600], pf[600];
    snprintf(out, sizeof out, "%s/serve.out", s->dir);
    snprintf(pf, sizeof pf, "%s/port", s->dir);
    snprintf(cmd, sizeof cmd, "exec " BIN " serve --model '%s' --port 0 --port-file '%s' --threads 1 --parallel 4 --ctx 1024 %s", stories(), pf,
             extra ? extra : "");
    s->pid = spawn(cmd, out, s->err);
    for (double t0 = now_s(); now_s() - t0 < 30;) {
        char *p = pt_test_read(NULL, pf);
        if (p) {
            s->port = atoi(p);
            free(p);
            snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d/v1", s->port);
            return s->port > 0;
        }
        if (wait_for(s->pid, 0) >= 0) { s->pid = 0; return false; }
        usleep(10000);
    }
    return false;
}

/* SIGTERM, then the exit status (SIGKILL and -1 if it does not stop within 20 s). */
static int server_stop(server *s) {
    if (s->pid <= 0) return -1;
    kill(s->pid, SIGTERM);
    int rc = wait_for(s->pid, 20);
    if (rc < 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
    }
    s->pid = 0;
    return rc;
}

/* Short templates keep stories260K's prompts (a character-level vocabulary) small. */
static const char *short_prompts(void) {
    static char dir[600];
    snprintf(dir, sizeof dir, "%s/prompts", pt_test_tmpdir());
    static const char *files[][2] = {{"select_ideology.txt", "Rate 1-9: {text}"},
                                     {"select_quality.txt", "Quality 1-5: {text}"},
                                     {"synth_instruction.txt", "Ask about: {text}"},
                                     {"synth_chosen.txt", "As a {leaning} person: {instruction}"},
                                     {"synth_rejected.txt", "As a {opposite} person: {instruction}"},
                                     {"answer_ideology.txt", "Rate 1-9: {answer}"},
                                     {"answer_rationale.txt", "Why? {answer}"}};
    char cmd[700];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    if (system(cmd) != 0) return dir;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *p = pt_path_join(dir, files[i][0]);
        pt_file_write_atomic(p, files[i][1], strlen(files[i][1]));
        free(p);
    }
    return dir;
}

typedef struct {
    const char *url;
    int bytes;
    long status;
    char *body;
} stream_arg;

static size_t on_sse_keep(char *p, size_t size, size_t n, void *u) {
    stream_arg *a = u;
    size_t k = size * n;
    char *b = realloc(a->body, (size_t)a->bytes + k + 1);
    if (!b) return 0;
    memcpy(b + a->bytes, p, k);
    a->body = b;
    a->bytes += (int)k;
    b[a->bytes] = 0;
    return k;
}

static void *stream_client(void *arg) {
    stream_arg *a = arg;
    CURL *h = curl_easy_init();
    char u[128];
    snprintf(u, sizeof u, "%s/completions", a->url);
    curl_easy_setopt(h, CURLOPT_URL, u);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, "{\"prompt\":\"Once\",\"max_tokens\":900,\"stream\":true,\"temperature\":0.8}");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_sse_keep);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
    curl_easy_cleanup(h);
    return NULL;
}

PT_TEST(test_serve_cli_shutdown) {
    server s;
    REQUIRE(server_start(&s, "--grace 0.2"));
    /* a request to the server process */
    CURL *h = curl_easy_init();
    char u[128];
    snprintf(u, sizeof u, "%s/completions", s.url);
    stream_arg one = {0};
    curl_easy_setopt(h, CURLOPT_URL, u);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, "{\"prompt\":\"Once\",\"max_tokens\":5}");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_sse_keep);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &one);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    CHECK(curl_easy_perform(h) == CURLE_OK);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &one.status);
    curl_easy_cleanup(h);
    CHECK_MSG(one.status == 200 && one.body && strstr(one.body, "\"text_completion\""), "request: %ld %s", one.status, one.body ? one.body : "");
    free(one.body);
    /* SIGTERM in the middle of a stream: the stream is ended, the server exits 0 */
    stream_arg a = {.url = s.url};
    pthread_t th;
    pthread_create(&th, NULL, stream_client, &a);
    for (double t0 = now_s(); a.bytes < 200 && now_s() - t0 < 20;) usleep(2000);
    CHECK(a.bytes >= 200);
    int rc = server_stop(&s);
    pthread_join(th, NULL);
    CHECK_MSG(rc == 0, "serve exited %d", rc);
    CHECK_MSG(a.status == 200 && a.body && strstr(a.body, "data: [DONE]"), "stream ended without [DONE]: %.200s", a.body ? a.body + (a.bytes > 200 ? a.bytes - 200 : 0) : "");
    free(a.body);
    char *log = pt_test_read(NULL, s.err);
    CHECK_MSG(log && strstr(log, "listening on http://127.0.0.1:") && strstr(log, "SIGTERM: shutting down") && strstr(log, "stopped after 2 requests"),
              "serve log: %s", log ? log : "");
    free(log);
}

/* select -> synth -> train --method dpo, with kill-and-rerun checks on the way. */
PT_TEST(test_data_pipeline_e2e) {
    server s;
    /* one sequence per forward pass: the judge's replies then repeat exactly across runs */
    REQUIRE(server_start(&s, "--batch-invariant --quiet"));
    const char *d = pt_test_tmpdir(), *pr = short_prompts();
    char *out = NULL, *err = NULL;
    char judge[256];
    snprintf(judge, sizeof judge, "--judge %s --judge-concurrency 3 --prompts '%s' --quiet", s.url, pr);

    /* select: guided-choice scores; thresholds wide open so that the nonsense judge keeps some */
    int rc = pt_test_run(&out, &err,
                         BIN " select --in '%s' --text-field text --target left --limit 10 --judge-mode choice --margin 0 --min-quality 1 "
                             "--out %s/sel.jsonl %s",
                         senators(), d, judge);
    CHECK_MSG(rc == 0 && err && strstr(err, "select: 10 in, 10 to do, 10 judged now (0 resumed)") && strstr(err, "0 failed"), "select: %d %s", rc,
              err ? err : "");
    free(out);
    free(err);
    char p[700];
    snprintf(p, sizeof p, "%s/sel.jsonl", d);
    CHECK(count_lines(p) == 10);
    char *sel = pt_test_read(NULL, p);
    json_t *first = sel ? json_loadb(sel, strchr(sel, '\n') - sel, 0, NULL) : NULL;
    CHECK(json_is_integer(json_object_get(first, "ideology_label")) && json_is_number(json_object_get(first, "quality")) &&
          json_is_string(json_object_get(first, "decision")) && json_string_value(json_object_get(json_object_get(first, "fields"), "party")));
    json_decref(first);

    /* free-text scores from a story model are not scores: counted and named, not fatal */
    rc = pt_test_run(&out, &err,
                     BIN " select --in '%s' --text-field text --target left --limit 2 --judge-mode text --out %s/text.jsonl %s", senators(), d,
                     judge);
    CHECK_MSG(rc == 0 && err && strstr(err, "senators.csv:2 (id ") && strstr(err, "judge reply for ideology is not a score from 1 to 9") &&
                  strstr(err, "2 invalid"),
              "text mode: %d %s", rc, err ? err : "");
    free(out);
    free(err);
    snprintf(p, sizeof p, "%s/text.jsonl", d);
    char *tj = pt_test_read(NULL, p);
    CHECK(tj && strstr(tj, "\"decision\":\"invalid\"") && strstr(tj, "\"error\":"));
    free(tj);

    /* synth: seeded sampling, so chosen and rejected differ */
    rc = pt_test_run(&out, &err,
                     BIN " synth --in %s/sel.jsonl --out %s/prefs.jsonl --chat-json %s/prefs.json --judge-temperature 0.9 --judge-max-tokens 16 %s", d,
                     d, d, judge);
    CHECK_MSG(rc == 0 && err && strstr(err, "synth: 10 in, 10 to do, 10 judged now"), "synth: %d %s", rc, err ? err : "");
    free(out);
    free(err);
    snprintf(p, sizeof p, "%s/prefs.jsonl", d);
    char *prefs = pt_test_read(NULL, p);
    int n_pairs = count_lines(p);
    CHECK_MSG(n_pairs >= 5, "%d pairs", n_pairs);
    json_t *pair = prefs ? json_loadb(prefs, strchr(prefs, '\n') - prefs, 0, NULL) : NULL;
    const char *keys[] = {"id", "prompt", "chosen", "rejected", "source_id"};
    for (int k = 0; k < 5; k++) CHECK_MSG(json_string_length(json_object_get(pair, keys[k])) > 0, "pair lacks '%s'", keys[k]);
    json_decref(pair);
    snprintf(p, sizeof p, "%s/prefs.json", d);
    json_t *chat = json_load_file(p, 0, NULL);
    CHECK((int)json_array_size(chat) == n_pairs &&
          !strcmp(json_string_value(json_object_get(json_array_get(json_object_get(json_array_get(chat, 0), "chosen"), 1), "role")) ?: "", "assistant"));
    json_decref(chat);

    /* train reads the pairs as they are */
    rc = pt_test_run(&out, &err,
                     "OMP_NUM_THREADS=1 " BIN " train --method dpo --model '%s' --data %s/prefs.jsonl --out %s/adapter --max-steps 2 --batch-size 2 "
                     "--grad-accum 1 --warmup-steps 0 --lora-rank 4 --save-every 0 --threads 1",
                     stories(), d, d);
    CHECK_MSG(rc == 0, "train: %d %s", rc, err ? err : "");
    free(out);
    free(err);
    snprintf(p, sizeof p, "%s/adapter/adapter_model.safetensors", d);
    CHECK(pt_file_exists(p));
    snprintf(p, sizeof p, "%s/adapter/metrics.jsonl", d);
    CHECK(count_lines(p) == 2);

    /* kill select and synth mid-run (one record per round, one request in flight), rerun: the
     * same files as the uninterrupted runs */
    const char *stage[2] = {"select", "synth"};
    for (int k = 0; k < 2; k++) {
        char cmd[2048], o[700], e[700], kout[700];
        snprintf(kout, sizeof kout, "%s/kill-%s.jsonl", d, stage[k]);
        snprintf(o, sizeof o, "%s/kill-%s.out", d, stage[k]);
        snprintf(e, sizeof e, "%s/kill-%s.err", d, stage[k]);
        if (k == 0)
            snprintf(cmd, sizeof cmd,
                     "exec " BIN " select --in '%s' --text-field text --target left --limit 10 --judge-mode choice --margin 0 --min-quality 1 "
                     "--out %s --window 1 --judge %s --judge-concurrency 1 --prompts '%s' --quiet",
                     senators(), kout, s.url, pr);
        else
            snprintf(cmd, sizeof cmd,
                     "exec " BIN " synth --in %s/sel.jsonl --out %s --judge-temperature 0.9 --judge-max-tokens 16 --window 1 --judge %s "
                     "--judge-concurrency 1 --prompts '%s' --quiet",
                     d, kout, s.url, pr);
        pid_t pid = spawn(cmd, o, e);
        int lines = 0;
        for (double t0 = now_s(); now_s() - t0 < 30 && (lines = count_lines(kout)) < 2 && wait_for(pid, 0) < 0;) usleep(2000);
        kill(pid, SIGKILL);
        int krc = wait_for(pid, 10);
        int at_kill = count_lines(kout);
        CHECK_MSG(krc == 128 + SIGKILL && at_kill >= 2 && at_kill < 10, "%s: exit %d with %d lines at the kill", stage[k], krc, at_kill);
        /* rerun the same command to the end */
        char rerun[2100];
        snprintf(rerun, sizeof rerun, "%s", cmd + 5);
        rc = pt_test_run(&out, &err, "%s", rerun);
        CHECK_MSG(rc == 0 && err && strstr(err, "resumed"), "%s rerun: %d %s", stage[k], rc, err ? err : "");
        free(out);
        free(err);
        char ref[700];
        snprintf(ref, sizeof ref, "%s/%s", d, k == 0 ? "sel.jsonl" : "prefs.jsonl");
        char *a = pt_test_read(NULL, ref), *b = pt_test_read(NULL, kout);
        CHECK_MSG(a && b && !strcmp(a, b), "%s: the interrupted-and-resumed output differs from the uninterrupted one", stage[k]);
        free(a);
        free(b);
    }

    /* the judge goes away: select with more records retries, then fails clearly; what was
     * written stays as it was */
    CHECK(server_stop(&s) == 0);
    rc = pt_test_run(&out, &err,
                     BIN " select --in '%s' --text-field text --target left --limit 14 --judge-mode choice --margin 0 --min-quality 1 "
                         "--out %s/sel.jsonl --judge %s --judge-retries 2 --judge-backoff 0.05 --prompts '%s' --quiet",
                     senators(), d, s.url, pr);
    CHECK_MSG(rc == 1 && err && strstr(err, "failed after 3 attempts") && strstr(err, "Couldn't connect") && strstr(err, "4 failed") &&
                  strstr(err, "10 resumed"),
              "select against a stopped judge: %d %s", rc, err ? err : "");
    free(out);
    free(err);
    snprintf(p, sizeof p, "%s/sel.jsonl", d);
    char *after = pt_test_read(NULL, p);
    CHECK(sel && after && !strcmp(sel, after));
    free(after);
    free(sel);
    free(prefs);
}

PT_TEST(test_judge_answers_compass) {
    const char *d = pt_test_tmpdir(), *pr = short_prompts();
    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err, "OMP_NUM_THREADS=1 " BIN " compass --model '%s' --out %s/run --threads 1 --templates t1-fwd --max-new-tokens 16",
                         stories(), d);
    CHECK_MSG(rc == 0, "compass: %s", err ? err : "");
    free(out);
    free(err);
    /* the in-process judge: exact label probabilities */
    rc = pt_test_run(&out, &err, BIN " judge-answers --in %s/run --out %s/judged.jsonl --judge-model '%s' --judge-threads 1 --prompts '%s' --quiet", d,
                     d, stories(), pr);
    CHECK_MSG(rc == 0 && err && strstr(err, "mean ideology") && strstr(err, "\"open_judge\""), "judge-answers: %d %s", rc, err ? err : "");
    json_t *sum = out ? json_loads(out, 0, NULL) : NULL;
    json_t *e0 = json_array_get(sum, 0);
    int n_open = (int)json_array_size(json_object_get(e0, "by_prompt"));
    CHECK_MSG(json_array_size(sum) == 1 && n_open >= 5 && json_is_number(json_object_get(e0, "mean")), "summary: %s", out ? out : "");
    double mean = json_number_value(json_object_get(e0, "mean"));
    CHECK(mean >= 1 && mean <= 9);
    json_decref(sum);
    free(out);
    free(err);
    char p[700];
    snprintf(p, sizeof p, "%s/judged.jsonl", d);
    CHECK(count_lines(p) == n_open);
    snprintf(p, sizeof p, "%s/run/compass.json", d);
    json_t *doc = json_load_file(p, 0, NULL);
    json_t *oj = json_object_get(json_array_get(json_object_get(doc, "evaluations"), 0), "open_judge");
    CHECK(json_is_number(json_object_get(oj, "mean")) && (int)json_array_size(json_object_get(oj, "by_prompt")) == n_open &&
          json_is_string(json_object_get(json_array_get(json_object_get(oj, "by_prompt"), 0), "rationale")));
    json_decref(doc);
    /* a second compass evaluation appended to the file keeps the first one's judged scores, and
     * the report reads the file */
    rc = pt_test_run(&out, &err,
                     "OMP_NUM_THREADS=1 " BIN " compass --model '%s' --out %s/run --threads 1 --templates t1-fwd --max-new-tokens 16 --label again "
                     "--step 64",
                     stories(), d);
    CHECK(rc == 0);
    free(out);
    free(err);
    doc = json_load_file(p, 0, NULL);
    CHECK(json_object_get(json_array_get(json_object_get(doc, "evaluations"), 0), "open_judge") != NULL);
    json_decref(doc);
    rc = pt_test_run(&out, &err, BIN " report %s/run --out %s/report.html", d, d);
    CHECK_MSG(rc == 0, "report: %s", err ? err : "");
    free(out);
    free(err);
    /* the report shows the judge's ratings beside the answers */
    rc = pt_test_run(&out, NULL, "grep -c 'Open answers judged for ideology' %s/report.html", d);
    CHECK_MSG(rc == 0 && out && atoi(out) == 1, "report.html lacks the judged-answers table");
    free(out);
    /* JSONL of prompt/answer pairs; a line without an answer is counted and named */
    snprintf(p, sizeof p, "%s/pairs.jsonl", d);
    const char *pairs = "{\"prompt\":\"Taxes?\",\"answer\":\"Lower them.\"}\n{\"prompt\":\"Guns?\"}\n{\"prompt\":\"Health care?\",\"response\":\"For all.\"}\n";
    pt_file_write_atomic(p, pairs, strlen(pairs));
    rc = pt_test_run(&out, &err, BIN " judge-answers --in %s --out %s/pj.jsonl --judge-model '%s' --judge-threads 1 --no-rationale --prompts '%s' --quiet", p,
                     d, stories(), pr);
    CHECK_MSG(rc == 0 && err && strstr(err, "pairs.jsonl:2: a record needs string 'prompt' and 'answer'") && strstr(err, "1 bad input"),
              "judge-answers on pairs: %d %s", rc, err ? err : "");
    free(out);
    free(err);
    snprintf(p, sizeof p, "%s/pj.jsonl", d);
    CHECK(count_lines(p) == 2);
}

PT_TEST(test_data_annotate_eval_cli) {
    const char *d = pt_test_tmpdir(), *pr = short_prompts();
    /* scores given: the hand-computed case of test_data_agreement_hand_case, through the CLI */
    char p[700];
    snprintf(p, sizeof p, "%s/scored.jsonl", d);
    const char *rows = "{\"text\":\"a\",\"party\":\"D\",\"s\":2}\n{\"text\":\"b\",\"party\":\"D\",\"s\":4}\n{\"text\":\"c\",\"party\":\"D\",\"s\":5}\n"
                       "{\"text\":\"d\",\"party\":\"R\",\"s\":5}\n{\"text\":\"e\",\"party\":\"R\",\"s\":8}\n{\"text\":\"f\",\"party\":\"R\",\"s\":3}\n"
                       "{\"text\":\"g\",\"party\":\"I\",\"s\":5}\n{\"text\":\"h\",\"party\":\"?\",\"s\":7}\n";
    pt_file_write_atomic(p, rows, strlen(rows));
    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err, BIN " annotate-eval --in %s --label-field party --score-field s --metrics %s/m.json --quiet", p, d);
    json_t *m = out ? json_loads(out, 0, NULL) : NULL;
    CHECK_MSG(rc == 0 && m, "annotate-eval: %d %s", rc, err ? err : "");
    CHECK_NEAR(json_number_value(json_object_get(m, "accuracy")), 4.0 / 7, 1e-6);
    CHECK_NEAR(json_number_value(json_object_get(m, "roc_auc")), 6.5 / 9, 1e-6);
    CHECK(json_integer_value(json_object_get(m, "unlabelled")) == 1 && json_integer_value(json_object_get(m, "n")) == 7);
    CHECK(json_integer_value(json_object_get(json_object_get(json_object_get(m, "confusion"), "right"), "left")) == 1);
    json_decref(m);
    free(out);
    free(err);
    snprintf(p, sizeof p, "%s/m.json", d);
    CHECK(pt_file_exists(p));
    /* the judge scoring BABE sentences (';'-separated, outlet leaning in 'type') in-process */
    rc = pt_test_run(&out, &err,
                     BIN " annotate-eval --in '%s' --label-field type --limit 6 --judge-model '%s' --judge-threads 1 --out %s/babe.jsonl --prompts '%s' "
                         "--quiet",
                     pt_test_shared("assets/data/corpus/babe_sg1.csv"), stories(), d, pr);
    m = out ? json_loads(out, 0, NULL) : NULL;
    CHECK_MSG(rc == 0 && m && json_integer_value(json_object_get(m, "n")) + json_integer_value(json_object_get(m, "unlabelled")) == 6,
              "annotate-eval babe: %d %s %s", rc, out ? out : "", err ? err : "");
    json_decref(m);
    free(out);
    free(err);
    /* bad input: an empty file, a missing text column */
    snprintf(p, sizeof p, "%s/empty.csv", d);
    pt_file_write_atomic(p, "", 0);
    rc = pt_test_run(&out, &err, BIN " annotate-eval --in %s --label-field party --judge-model '%s' --out %s/x.jsonl", p, stories(), d);
    CHECK_MSG(rc == 1 && err && strstr(err, "empty.csv: the file is empty"), "empty: %d %s", rc, err ? err : "");
    free(out);
    free(err);
    rc = pt_test_run(&out, &err, BIN " select --in '%s' --text-field tweet --target left --judge-model '%s' --out %s/x.jsonl", senators(), stories(), d);
    CHECK_MSG(rc == 1 && err && strstr(err, "senators.csv:1: no column 'tweet'"), "missing column: %d %s", rc, err ? err : "");
    free(out);
    free(err);
}
