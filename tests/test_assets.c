/* Managed assets against a mirror served on 127.0.0.1 (libmicrohttpd, a port the kernel
 * picks) from ../shared/assets: download once and reuse without the network, checksum
 * failures that leave nothing behind, interrupted transfers resumed with Range requests or
 * restarted, the POLITUNE_ASSETS mirror that never touches network or cache, and unknown
 * names through the library and the CLI. Each test sets the variables it needs and puts
 * the old values back. Only small assets (pct, stories260K) are transferred. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../tools/politune/assets_env.h"
#include "assets/assets.h"
#include "test.h"
#include "util/file.h"
#include "util/status.h"

/* ---- the mirror server ------------------------------------------------------------------ */

typedef struct {
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t mu;
    int requests, range_requests;
    char corrupt[256];   /* this path is served with one byte changed */
    char cut[256];       /* this path's next `cut_times` full responses stop halfway */
    int cut_times;
    bool ignore_ranges;  /* answer every request with the whole file (200) */
} mirror;

typedef struct {
    char *data;
    size_t len, stop; /* the reader ends the connection at `stop` */
} cut_body;

static ssize_t cut_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    cut_body *b = cls;
    if (pos >= b->stop) return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = b->stop - pos < max ? b->stop - pos : max;
    memcpy(buf, b->data + pos, n);
    return (ssize_t)n;
}

static void cut_free(void *cls) {
    cut_body *b = cls;
    free(b->data);
    free(b);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_len, void **state) {
    mirror *m = cls;
    const char *range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range");
    pthread_mutex_lock(&m->mu);
    m->requests++;
    if (range) m->range_requests++;
    bool corrupt = !strcmp(url + 1, m->corrupt), cut = false;
    bool ranges = !m->ignore_ranges;
    if (!range && m->cut_times > 0 && !strcmp(url + 1, m->cut)) {
        cut = true;
        m->cut_times--;
    }
    pthread_mutex_unlock(&m->mu);

    char rel[600];
    snprintf(rel, sizeof rel, "assets%s", url);
    char *data = NULL;
    size_t len = 0;
    struct MHD_Response *r;
    unsigned status = 200;
    if (strstr(url, "..") || pt_file_read_all(pt_test_shared(rel), &data, &len) != PT_OK) {
        free(data);
        static char nf[] = "not found";
        r = MHD_create_response_from_buffer(strlen(nf), nf, MHD_RESPMEM_PERSISTENT);
        enum MHD_Result ok = MHD_queue_response(c, 404, r);
        MHD_destroy_response(r);
        return ok;
    }
    if (corrupt) data[len / 2] ^= 0x55;
    size_t from = 0;
    long long a;
    if (range && ranges && sscanf(range, "bytes=%lld-", &a) == 1) {
        if ((size_t)a >= len) {
            free(data);
            r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
            enum MHD_Result ok = MHD_queue_response(c, 416, r);
            MHD_destroy_response(r);
            return ok;
        }
        from = (size_t)a;
        status = 206;
    }
    if (cut) {
        cut_body *b = malloc(sizeof *b);
        b->data = data;
        b->len = len;
        b->stop = len / 2;
        r = MHD_create_response_from_callback(len, 16384, cut_reader, b, cut_free);
    } else {
        memmove(data, data + from, len - from);
        r = MHD_create_response_from_buffer(len - from, data, MHD_RESPMEM_MUST_FREE);
        if (status == 206) {
            char cr[96];
            snprintf(cr, sizeof cr, "bytes %zu-%zu/%zu", from, len - 1, len);
            MHD_add_response_header(r, "Content-Range", cr);
        }
    }
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

static bool mirror_start(mirror *m) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    m->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL, NULL,
                            on_request, m, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_END);
    if (!m->d) return false;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_BIND_PORT);
    m->port = di ? di->port : 0;
    return m->port > 0;
}

static void mirror_stop(mirror *m) {
    if (m->d) MHD_stop_daemon(m->d);
    m->d = NULL;
    pthread_mutex_destroy(&m->mu);
}

static int mirror_count(mirror *m, bool ranges) {
    pthread_mutex_lock(&m->mu);
    int n = ranges ? m->range_requests : m->requests;
    pthread_mutex_unlock(&m->mu);
    return n;
}

/* ---- the environment ---------------------------------------------------------------------- */

static const char *const env_names[] = {"POLITUNE_ASSETS", "POLITUNE_CACHE", "POLITUNE_ASSETS_URL", "POLITUNE_ASSETS_NO_LOCAL", "NO_PROXY",
                                        "no_proxy"};
#define N_ENV (int)(sizeof env_names / sizeof env_names[0])

typedef struct {
    char *saved[N_ENV];
    bool had[N_ENV];
    char cache[512];
} env_guard;

/* Saves the variables, then points the cache at a fresh directory, the URL at the server
 * (or nowhere when port is 0), unsets the mirror and turns off the reference tree beside
 * the checkout (../shared/assets would otherwise answer before the cache). */
static void env_enter(env_guard *g, int port) {
    for (int i = 0; i < N_ENV; i++) {
        const char *v = getenv(env_names[i]);
        g->had[i] = v != NULL;
        g->saved[i] = v ? strdup(v) : NULL;
    }
    snprintf(g->cache, sizeof g->cache, "%s/cache", pt_test_tmpdir());
    setenv("POLITUNE_CACHE", g->cache, 1);
    unsetenv("POLITUNE_ASSETS");
    setenv("POLITUNE_ASSETS_NO_LOCAL", "1", 1);
    /* A proxy configured for the machine must not swallow the loopback requests. */
    setenv("NO_PROXY", "127.0.0.1,localhost", 1);
    setenv("no_proxy", "127.0.0.1,localhost", 1);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port ? port : 9);
    setenv("POLITUNE_ASSETS_URL", url, 1);
    cli_assets_from_env();
}

static void env_leave(env_guard *g) {
    for (int i = 0; i < N_ENV; i++) {
        if (g->had[i]) setenv(env_names[i], g->saved[i], 1);
        else unsetenv(env_names[i]);
        free(g->saved[i]);
    }
    cli_assets_from_env();
}

static char *cache_path(const env_guard *g, const char *rel, const char *suffix) {
    size_t n = strlen(g->cache) + strlen(rel) + strlen(suffix) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s%s", g->cache, rel, suffix);
    return p;
}

static bool same_bytes(const char *a, const char *b) {
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    bool same = pt_file_read_all(a, &x, &nx) == PT_OK && pt_file_read_all(b, &y, &ny) == PT_OK && nx == ny &&
                !memcmp(x, y, nx);
    free(x);
    free(y);
    return same;
}

static const char *shared_asset(const char *rel) {
    static char buf[4][600];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, 600, "assets/%s", rel);
    return pt_test_shared(b);
}

/* Writes the first `len` bytes of the mirror's copy of rel (or `len` bytes of garbage) as
 * rel's .part in the cache. */
static void put_part(const env_guard *g, const char *rel, size_t len, bool garbage) {
    char *data = NULL;
    size_t n = 0;
    if (pt_file_read_all(shared_asset(rel), &data, &n) != PT_OK) return;
    if (garbage) memset(data, 'x', n);
    char *p = cache_path(g, rel, ".part");
    char *dir = strdup(p);
    *strrchr(dir, '/') = 0;
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    if (system(cmd) != 0) {}
    FILE *f = fopen(p, "wb");
    if (f) {
        fwrite(data, 1, len < n ? len : n, f);
        fclose(f);
    }
    free(dir);
    free(p);
    free(data);
}

typedef struct {
    int downloaded, reused;
    char partial[256]; /* the file that reported done < total last */
} hook_log;

/* Follows the hooks' protocol: done == total once per verified file, preceded by smaller
 * counts only when the file was downloaded. */
static void log_progress(void *u, const char *path, int64_t done, int64_t total) {
    hook_log *l = u;
    if (done < total) {
        snprintf(l->partial, sizeof l->partial, "%s", path);
        return;
    }
    if (!strcmp(l->partial, path)) l->downloaded++;
    else l->reused++;
    l->partial[0] = 0;
}

/* ---- tests -------------------------------------------------------------------------------- */

PT_TEST(test_assets_pull_downloads_once_then_reuses_cache) {
    mirror m;
    REQUIRE(mirror_start(&m));
    env_guard g;
    env_enter(&g, m.port);
    const pt_asset *a = pt_assets_find("pct");
    REQUIRE(a && a->n_files == 3);

    hook_log log = {0};
    pt_pull_hooks h = {.progress = log_progress, .user = &log};
    CHECK_OK(pt_assets_pull("pct", &h));
    CHECK_MSG(mirror_count(&m, false) == 3, "first pull made %d requests, expected 3", mirror_count(&m, false));
    CHECK(log.downloaded == 3 && log.reused == 0);
    for (int i = 0; i < a->n_files; i++) {
        char *p = cache_path(&g, a->files[i].path, "");
        char *part = cache_path(&g, a->files[i].path, ".part");
        CHECK_MSG(same_bytes(p, shared_asset(a->files[i].path)), "%s differs from the mirror", p);
        CHECK_MSG(!pt_file_exists(part), "%s left behind", part);
        free(p);
        free(part);
    }

    /* Second pull and path lookups: all from the cache, no request. */
    log = (hook_log){0};
    CHECK_OK(pt_assets_pull("pct", &h));
    CHECK(log.reused == 3 && log.downloaded == 0);
    char *p = NULL;
    CHECK_OK(pt_assets_path("data/pct/pct_scoring.json", true, NULL, &p));
    char *want = cache_path(&g, "data/pct/pct_scoring.json", "");
    CHECK_MSG(p && !strcmp(p, want), "path %s, expected %s", p ? p : "(null)", want);
    free(p);
    CHECK_MSG(mirror_count(&m, false) == 3, "cached pulls made %d requests in all, expected 3", mirror_count(&m, false));

    /* A cached file changed in place (same size) loses its stamp's trust, is re-hashed,
     * found wrong, and fetched again. */
    usleep(20000); /* past the file system's timestamp granularity, so the mtime moves */
    int fd = open(want, O_WRONLY);
    REQUIRE(fd >= 0);
    CHECK(pwrite(fd, "#", 1, 10) == 1);
    close(fd);
    p = NULL;
    CHECK(pt_assets_path("data/pct/pct_scoring.json", false, NULL, &p) != PT_OK && p == NULL);
    CHECK_MSG(strstr(pt_errmsg(), "politune pull pct"), "message: %s", pt_errmsg());
    p = NULL;
    CHECK_OK(pt_assets_path("data/pct/pct_scoring.json", true, NULL, &p));
    free(p);
    CHECK(same_bytes(want, shared_asset("data/pct/pct_scoring.json")));
    CHECK_MSG(mirror_count(&m, false) == 4, "re-fetch after a local change: %d requests, expected 4", mirror_count(&m, false));
    free(want);

    env_leave(&g);
    mirror_stop(&m);
}

PT_TEST(test_assets_pull_rejects_corrupt_download_and_leaves_nothing) {
    mirror m;
    REQUIRE(mirror_start(&m));
    env_guard g;
    env_enter(&g, m.port);
    const char *bad = "data/pct/pct_scoring.json";
    snprintf(m.corrupt, sizeof m.corrupt, "%s", bad);

    pt_status st = pt_assets_pull("pct", NULL);
    CHECK(st == PT_ERR_FORMAT);
    const char *msg = pt_errmsg();
    CHECK_MSG(strstr(msg, bad) && strstr(msg, "SHA-256") &&
                  strstr(msg, "a722d719df04ea0c586e9b7fb5fd0f4c355457920d603e9a31ffb36b45d9499f"),
              "message: %s", msg);
    char *p = cache_path(&g, bad, ""), *part = cache_path(&g, bad, ".part"), *stamp = cache_path(&g, bad, ".verified");
    CHECK_MSG(!pt_file_exists(p) && !pt_file_exists(part) && !pt_file_exists(stamp), "something of %s is left in the cache", bad);

    /* The server is fixed: the same pull now succeeds. */
    m.corrupt[0] = 0;
    CHECK_OK(pt_assets_pull("pct", NULL));
    CHECK(same_bytes(p, shared_asset(bad)));
    free(p);
    free(part);
    free(stamp);

    /* An HTTP error names the URL and the status, and leaves no empty .part. */
    env_guard g2;
    env_enter(&g2, m.port);
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/nothing-here", m.port);
    setenv("POLITUNE_ASSETS_URL", url, 1);
    cli_assets_from_env();
    st = pt_assets_pull("8values", NULL);
    CHECK(st == PT_ERR_NET);
    CHECK_MSG(strstr(pt_errmsg(), "HTTP 404") && strstr(pt_errmsg(), "/nothing-here/data/8values/questions.json"),
              "message: %s", pt_errmsg());
    part = cache_path(&g2, "data/8values/questions.json", ".part");
    CHECK(!pt_file_exists(part));
    free(part);
    env_leave(&g2);

    env_leave(&g);
    mirror_stop(&m);
}

PT_TEST(test_assets_pull_resumes_or_restarts_interrupted_downloads) {
    mirror m;
    REQUIRE(mirror_start(&m));
    env_guard g;
    env_enter(&g, m.port);

    /* The connection drops halfway through the GGUF: the retry asks for the rest. */
    const char *gguf = "models/stories260K/stories260K.gguf";
    snprintf(m.cut, sizeof m.cut, "%s", gguf);
    m.cut_times = 1;
    char *p = NULL;
    CHECK_OK(pt_assets_path(gguf, true, NULL, &p));
    CHECK(p && same_bytes(p, shared_asset(gguf)));
    free(p);
    CHECK_MSG(mirror_count(&m, true) == 1, "%d range requests, expected 1", mirror_count(&m, true));

    /* A half .part from an earlier run is resumed. */
    const char *csv = "data/pct/pct_propositions.csv";
    put_part(&g, csv, 3000, false);
    int before = mirror_count(&m, true);
    CHECK_OK(pt_assets_pull("pct", NULL));
    CHECK_MSG(mirror_count(&m, true) == before + 1, "no range request for the .part");
    p = cache_path(&g, csv, "");
    CHECK(same_bytes(p, shared_asset(csv)));
    free(p);

    /* A server without range support answers 200: the download starts over cleanly. */
    env_guard g2;
    env_enter(&g2, m.port);
    m.ignore_ranges = true;
    put_part(&g2, csv, 3000, false);
    CHECK_OK(pt_assets_pull("pct", NULL));
    p = cache_path(&g2, csv, "");
    CHECK(same_bytes(p, shared_asset(csv)));
    free(p);
    m.ignore_ranges = false;
    env_leave(&g2);

    /* A .part longer than the file is discarded without asking for a range. */
    env_guard g3;
    env_enter(&g3, m.port);
    put_part(&g3, csv, 100000, false);
    char *part = cache_path(&g3, csv, ".part");
    FILE *f = fopen(part, "ab");
    if (f) { fputs("trailing bytes beyond the registered size", f); fclose(f); }
    before = mirror_count(&m, true);
    CHECK_OK(pt_assets_pull("pct", NULL));
    CHECK(mirror_count(&m, true) == before);
    p = cache_path(&g3, csv, "");
    CHECK(same_bytes(p, shared_asset(csv)) && !pt_file_exists(part));
    free(p);
    free(part);
    env_leave(&g3);

    /* A .part whose bytes are stale: the resumed file fails its hash, and one more
     * download from zero repairs it. */
    env_guard g4;
    env_enter(&g4, m.port);
    put_part(&g4, csv, 3000, true);
    CHECK_OK(pt_assets_pull("pct", NULL));
    p = cache_path(&g4, csv, "");
    CHECK(same_bytes(p, shared_asset(csv)));
    free(p);
    env_leave(&g4);

    env_leave(&g);
    mirror_stop(&m);
}

PT_TEST(test_assets_mirror_dir_takes_precedence_and_stays_offline) {
    mirror m;
    REQUIRE(mirror_start(&m));
    env_guard g;
    env_enter(&g, m.port);
    const char *root = pt_test_shared("assets");
    setenv("POLITUNE_ASSETS", root, 1);
    cli_assets_from_env();

    char *p = NULL;
    CHECK_OK(pt_assets_path("models/stories260K/stories260K.gguf", true, NULL, &p));
    char want[1024];
    snprintf(want, sizeof want, "%s/models/stories260K/stories260K.gguf", root);
    CHECK_MSG(p && !strcmp(p, want), "path %s, expected %s", p ? p : "(null)", want);
    free(p);
    CHECK_OK(pt_assets_pull("pct", NULL)); /* verifies the mirror's files in place */
    CHECK(pt_assets_present(&pt_assets_find("stories260K")->files[0]));
    CHECK_MSG(mirror_count(&m, false) == 0, "%d HTTP requests with POLITUNE_ASSETS set", mirror_count(&m, false));
    CHECK_MSG(!pt_dir_exists(g.cache), "the cache %s was created", g.cache);

    /* A mirror without the file: an error naming the path and the variable. */
    char empty[600];
    snprintf(empty, sizeof empty, "%s/empty-mirror", pt_test_tmpdir());
    setenv("POLITUNE_ASSETS", empty, 1);
    cli_assets_from_env();
    p = NULL;
    pt_status st = pt_assets_path("data/pct/pct_scoring.json", true, NULL, &p);
    CHECK(st != PT_OK && p == NULL);
    CHECK_MSG(strstr(pt_errmsg(), "POLITUNE_ASSETS") && strstr(pt_errmsg(), "empty-mirror/data/pct/pct_scoring.json"),
              "message: %s", pt_errmsg());
    CHECK(mirror_count(&m, false) == 0 && !pt_dir_exists(g.cache));

    /* No POLITUNE_ASSETS: a reference tree beside the checkout ($POLITUNE_SHARED/assets here)
     * answers before the cache, offline too. */
    unsetenv("POLITUNE_ASSETS");
    unsetenv("POLITUNE_ASSETS_NO_LOCAL");
    cli_assets_from_env();
    p = NULL;
    CHECK_OK(pt_assets_path("models/stories260K/stories260K.gguf", true, NULL, &p));
    CHECK_MSG(p && strstr(p, "/assets/models/stories260K/stories260K.gguf") && !strstr(p, g.cache), "path %s", p ? p : "(null)");
    free(p);
    CHECK(mirror_count(&m, false) == 0 && !pt_dir_exists(g.cache));

    env_leave(&g);
    mirror_stop(&m);
}

PT_TEST(test_assets_unknown_names_and_cli) {
    mirror m;
    REQUIRE(mirror_start(&m));
    env_guard g;
    env_enter(&g, m.port);

    CHECK(pt_assets_pull("nosuch", NULL) == PT_ERR_ARG);
    CHECK_MSG(strstr(pt_errmsg(), "nosuch") && strstr(pt_errmsg(), "stories260K") && strstr(pt_errmsg(), "pct"),
              "message: %s", pt_errmsg());
    char *p = NULL;
    CHECK(pt_assets_path("models/nosuch.gguf", true, NULL, &p) == PT_ERR_ARG && p == NULL);

    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err, "\"$POLITUNE_BIN\" pull nosuch");
    CHECK(rc != 0);
    CHECK_MSG(err && strstr(err, "politune pull: unknown asset 'nosuch'") && strstr(err, "stories260K") &&
                  strchr(err, '\n') == err + strlen(err) - 1,
              "stderr: %s", err ? err : "(null)");
    free(out);
    free(err);

    out = err = NULL;
    rc = pt_test_run(&out, &err, "\"$POLITUNE_BIN\" pull --list");
    CHECK(rc == 0);
    CHECK_MSG(out && strstr(out, "stories260K") && strstr(out, "corpus-babe") && strstr(out, "0/3"), "stdout: %s",
              out ? out : "(null)");
    free(out);
    free(err);

    /* Through the CLI against the local mirror: one path per file on stdout. */
    out = err = NULL;
    rc = pt_test_run(&out, &err, "\"$POLITUNE_BIN\" pull pct");
    CHECK_MSG(rc == 0, "rc %d, stderr: %s", rc, err ? err : "");
    char *want = cache_path(&g, "data/pct/pct_propositions.csv", "\n");
    CHECK_MSG(out && strstr(out, want), "stdout: %s", out ? out : "(null)");
    CHECK_MSG(err && strstr(err, "downloaded and verified"), "stderr: %s", err ? err : "(null)");
    free(want);
    free(out);
    free(err);
    out = err = NULL;
    rc = pt_test_run(&out, &err, "\"$POLITUNE_BIN\" pull --list");
    CHECK_MSG(out && strstr(out, "3/3"), "stdout: %s", out ? out : "(null)");
    free(out);
    free(err);

    out = err = NULL;
    rc = pt_test_run(&out, &err, "\"$POLITUNE_BIN\" pull --help");
    CHECK(rc == 0 && out && strstr(out, "POLITUNE_ASSETS_URL") && strstr(out, "POLITUNE_CACHE"));
    free(out);
    free(err);
    out = err = NULL;
    rc = pt_test_run(&out, &err, "\"$POLITUNE_BIN\" pull");
    CHECK(rc == 2);
    free(out);
    free(err);

    env_leave(&g);
    mirror_stop(&m);
}
