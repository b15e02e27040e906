/* Slow-loris against politune serve (issue #13, item 4), on loopback with bounded time and
 * connection counts: 300 clients from 127.0.0.1 open a request and trickle one header byte
 * per second. /health (from 127.0.0.3) must still answer within 1 s and a chat request from
 * 127.0.0.2 must complete; a request still arriving after --request-timeout is cut. Linux
 * routes all of 127.0.0.0/8 to loopback, so binding a client socket to 127.0.0.2 before
 * connecting gives the server a second client address. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "serve/server.h"
#include "test.h"
#include "util/clock.h"

#define N_SLOW 300

typedef struct {
    pt_model *m;
    pt_engine *e;
    pt_server *s;
    int port;
} server;

static bool start(server *v, const pt_server_opts *o) {
    memset(v, 0, sizeof *v);
    pt_backend_set_threads(1);
    if (pt_model_load(&v->m, pt_test_shared("assets/models/stories260K/stories260K.gguf")) != PT_OK) return false;
    if (pt_engine_new(&v->e, v->m, 2, 256) != PT_OK) return false;
    if (pt_server_start(&v->s, v->m, v->e, o) != PT_OK) return false;
    v->port = pt_server_port(v->s);
    return true;
}

static void stop(server *v) {
    if (v->s) pt_server_stop(v->s, 1, NULL);
    pt_engine_free(v->e);
    pt_model_free(v->m);
}

/* A client socket from `from`, connected to the server, the request's first line sent. */
static int slow_client(const char *from, int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, from, &a.sin_addr);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    static const char head[] = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || connect(fd, (struct sockaddr *)&to, sizeof to) != 0 ||
        send(fd, head, sizeof head - 1, MSG_NOSIGNAL) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

typedef struct {
    int *fds, n;
    volatile bool stop;
} trickle_ctx;

/* One byte per client per second, as the attack does: each byte restarts the idle timeout. */
static void *trickle(void *arg) {
    trickle_ctx *t = arg;
    while (!t->stop) {
        for (int i = 0; i < t->n; i++)
            if (t->fds[i] >= 0) send(t->fds[i], "a", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        for (int k = 0; k < 10 && !t->stop; k++) usleep(100000);
    }
    return NULL;
}

static size_t sink(char *p, size_t size, size_t n, void *u) {
    (void)p;
    (void)u;
    return size * n;
}

/* GET or POST from a given source address; returns the HTTP status (0: no answer). */
static long request_from(const char *from, int port, const char *path, const char *body, double *seconds) {
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *h = curl_easy_init();
    struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_INTERFACE, from);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (body) curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    long status = 0;
    double t0 = pt_now_s();
    if (curl_easy_perform(h) == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (seconds) *seconds = pt_now_s() - t0;
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    return status;
}

PT_TEST(test_harden_serve_slow_loris) {
    if (access(pt_test_shared("assets/models/stories260K/stories260K.gguf"), R_OK) != 0) SKIP("no stories260K.gguf under the shared assets");
    server v;
    pt_server_opts o = pt_server_opts_default();
    REQUIRE(start(&v, &o));
    int fds[N_SLOW];
    int opened = 0;
    for (int i = 0; i < N_SLOW; i++) opened += (fds[i] = slow_client("127.0.0.1", v.port)) >= 0;
    CHECK_MSG(opened > N_SLOW / 2, "only %d slow clients could connect", opened);
    trickle_ctx t = {fds, N_SLOW, false};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, trickle, &t) == 0);
    usleep(1500000); /* the listener has taken (or refused) every one of them */
    double dt = 0;
    long st = request_from("127.0.0.3", v.port, "/health", NULL, &dt);
    CHECK_MSG(st == 200 && dt < 1.0, "/health from another address during the attack: status %ld after %.2f s", st, dt);
    st = request_from("127.0.0.2", v.port, "/v1/chat/completions",
                      "{\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}],\"max_tokens\":8}", &dt);
    CHECK_MSG(st == 200, "chat from 127.0.0.2 during the attack: status %ld after %.2f s", st, dt);
    t.stop = true;
    pthread_join(th, NULL);
    for (int i = 0; i < N_SLOW; i++)
        if (fds[i] >= 0) close(fds[i]);
    stop(&v);
}

/* Trickling keeps the idle timeout from firing; the whole-request deadline still does. */
PT_TEST(test_harden_serve_request_deadline) {
    if (access(pt_test_shared("assets/models/stories260K/stories260K.gguf"), R_OK) != 0) SKIP("no stories260K.gguf under the shared assets");
    server v;
    pt_server_opts o = pt_server_opts_default();
    o.request_timeout_s = 1;
    REQUIRE(start(&v, &o));
    int fd = slow_client("127.0.0.4", v.port);
    REQUIRE(fd >= 0);
    bool closed = false;
    double t0 = pt_now_s();
    while (!closed && pt_now_s() - t0 < 5) {
        send(fd, "a", 1, MSG_NOSIGNAL);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 300) > 0) {
            char b[256];
            ssize_t n = recv(fd, b, sizeof b, MSG_DONTWAIT);
            closed = n == 0 || (n < 0 && errno != EAGAIN);
        }
    }
    double took = pt_now_s() - t0;
    CHECK_MSG(closed && took > 0.9 && took < 3, "a trickling request was %s after %.2f s (deadline 1 s)", closed ? "cut" : "still open", took);
    close(fd);
    /* an ordinary request is unaffected */
    CHECK(request_from("127.0.0.4", v.port, "/health", NULL, NULL) == 200);
    stop(&v);
}
