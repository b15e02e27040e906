/* Downloading one asset file with libcurl into <dest>.part, then verifying and renaming it.
 *
 * A .part left by an interrupted run is resumed with a Range request; a server that answers
 * the range with 200 (no range support), a Content-Range that starts elsewhere, or a 416
 * makes the download restart cleanly from zero. Redirects are followed (Hugging Face and
 * GitHub both redirect to CDNs); connection and low-speed timeouts keep a dead server from
 * hanging the pull; transient failures (network errors, 5xx, 429) are retried a few times,
 * at once when the attempt made progress, after a short back-off when it did not. The .part
 * is locked (flock) so that two pulls of the same file do not interleave their writes. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "assets/assets_impl.h"
#include "util/sha256.h"

#define MAX_ATTEMPTS 4
#define CONNECT_TIMEOUT_S 30L
/* Slower than this many bytes/s for LOW_SPEED_TIME_S seconds counts as a stalled transfer. */
#define LOW_SPEED_BPS 1024L
#define LOW_SPEED_TIME_S 30L

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

typedef enum {
    XFER_DONE,      /* the server sent its whole body */
    XFER_RETRY,     /* transient: try again, resuming from what is on disk */
    XFER_RESTART,   /* the range was refused or misplaced: try again from zero */
    XFER_FATAL      /* pt_error() holds the message */
} xfer_result;

typedef struct {
    CURL *curl;
    int fd;
    const pt_asset_file *f;
    const pt_pull_hooks *h;
    const char *url;
    int64_t from;          /* the range asked for (0: the whole file) */
    int64_t written;       /* bytes now in the .part */
    int64_t received;      /* body bytes this attempt received */
    int64_t range_start;   /* start of the final response's Content-Range, -1 if none */
    bool started;          /* the first body byte arrived and the response was judged */
    xfer_result abort_why; /* why the write callback stopped the transfer */
    pt_status fatal;       /* the status of an XFER_FATAL (its message is set) */
} xfer;

static size_t on_header(char *buf, size_t size, size_t n, void *user) {
    xfer *x = user;
    size_t len = size * n;
    /* Every response of a redirect chain passes through here; only the last one counts. */
    if (len >= 5 && !strncmp(buf, "HTTP/", 5)) x->range_start = -1;
    if (len > 14 && !strncasecmp(buf, "Content-Range:", 14)) {
        long long a;
        if (sscanf(buf + 14, " bytes %lld-", &a) == 1) x->range_start = a;
    }
    return len;
}

/* Decides, on the first byte of the final response, what the body is relative to the
 * .part: a continuation (206 at the right offset), a fresh copy (200), or neither. */
static bool judge_response(xfer *x) {
    long code = 0;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code == 206 && x->from > 0 && x->range_start == x->from) return true;
    if (code == 200) {
        if (x->written > 0 && (ftruncate(x->fd, 0) != 0 || lseek(x->fd, 0, SEEK_SET) != 0)) {
            x->fatal = pt_error(PT_ERR_IO, "%s.part: cannot truncate: %s", x->f->path, strerror(errno));
            x->abort_why = XFER_FATAL;
            return false;
        }
        x->written = 0;
        return true;
    }
    /* A 206 we did not ask for or at the wrong offset: start again without a range. */
    x->fatal = pt_error(PT_ERR_NET, "GET %s: unexpected HTTP %ld%s", x->url, code,
                        code == 206 ? " (a range that was not asked for)" : "");
    x->abort_why = code == 206 ? XFER_RESTART : XFER_RETRY;
    return false;
}

static size_t on_body(char *buf, size_t size, size_t n, void *user) {
    xfer *x = user;
    size_t len = size * n;
    if (!x->started) {
        if (!judge_response(x)) return 0;
        x->started = true;
    }
    if (x->written + (int64_t)len > x->f->size) {
        x->fatal = pt_error(PT_ERR_FORMAT, "%s: the server sends more than the expected %" PRId64 " bytes",
                            x->f->path, x->f->size);
        x->abort_why = XFER_FATAL;
        return 0;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = write(x->fd, buf + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            x->fatal = pt_error(PT_ERR_IO, "%s.part: write failed: %s", x->f->path, strerror(errno));
            x->abort_why = XFER_FATAL;
            return 0;
        }
        off += (size_t)w;
    }
    x->written += (int64_t)len;
    x->received += (int64_t)len;
    /* done == total is reserved for the verified file (see pt_pull_hooks). */
    if (x->h && x->h->progress && x->written < x->f->size)
        x->h->progress(x->h->user, x->f->path, x->written, x->f->size);
    return len;
}

static bool retryable_http(long code) { return code == 408 || code == 429 || code >= 500; }

/* One GET of `url` from offset x->from, appending to the .part. */
static xfer_result transfer(xfer *x, const char *url) {
    CURL *c = x->curl;
    char errbuf[CURL_ERROR_SIZE] = {0}, range[32];
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_USERAGENT, "politune");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, LOW_SPEED_BPS);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, LOW_SPEED_TIME_S);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    /* A plain Range header rather than CURLOPT_RESUME_FROM: libcurl fails a resumed
     * transfer that gets a 200, and a 200 is simply a fresh copy to start over with. */
    if (x->from > 0) {
        snprintf(range, sizeof range, "%" PRId64 "-", x->from);
        curl_easy_setopt(c, CURLOPT_RANGE, range);
    }
    x->url = url;
    x->started = false;
    x->received = 0;
    x->range_start = -1;
    x->abort_why = XFER_RETRY;
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);

    if (rc == CURLE_WRITE_ERROR && x->abort_why == XFER_FATAL) return XFER_FATAL;
    if (code == 416) {
        x->fatal = pt_error(PT_ERR_NET, "GET %s: HTTP 416 (range not satisfiable)", url);
        return XFER_RESTART;
    }
    if (code >= 400 || (rc == CURLE_WRITE_ERROR && x->abort_why == XFER_RETRY && code >= 300)) {
        x->fatal = pt_error(PT_ERR_NET, "GET %s: HTTP %ld", url, code);
        return retryable_http(code) ? XFER_RETRY : XFER_FATAL;
    }
    if (rc == CURLE_WRITE_ERROR) return x->abort_why;
    if (rc != CURLE_OK) {
        pt_error(PT_ERR_NET, "GET %s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
        return XFER_RETRY;
    }
    /* An empty body never reached on_body, so the response was never judged. */
    if (!x->started && !(code == 200 || (code == 206 && x->from > 0))) {
        pt_error(PT_ERR_NET, "GET %s: unexpected HTTP %ld", url, code);
        return XFER_RETRY;
    }
    return XFER_DONE;
}

static void sleep_s(double s) {
    struct timespec t = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {}
}

/* Opens and locks <dest>.part, making sure the lock is on the file the name still refers
 * to: another pull may have renamed or removed it while this one waited. */
static pt_status open_part(const char *part, int *out) {
    for (;;) {
        int fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) return pt_error(PT_ERR_IO, "%s: cannot create: %s", part, strerror(errno));
        if (flock(fd, LOCK_EX) != 0) {
            close(fd);
            return pt_error(PT_ERR_IO, "%s: cannot lock: %s", part, strerror(errno));
        }
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(part, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
            *out = fd;
            return PT_OK;
        }
        close(fd);
    }
}

/* Downloads into the locked .part until the server has sent a whole body or attempts run
 * out. *resumed tells whether any of the bytes came from a range request. */
static pt_status fetch(xfer *x, const char *url, bool *resumed) {
    double backoff = 1.0;
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        struct stat sb;
        if (fstat(x->fd, &sb) != 0) return pt_error(PT_ERR_IO, "%s.part: %s", x->f->path, strerror(errno));
        x->written = sb.st_size;
        if (x->written > x->f->size && ftruncate(x->fd, 0) != 0)
            return pt_error(PT_ERR_IO, "%s.part: cannot truncate: %s", x->f->path, strerror(errno));
        if (x->written > x->f->size) x->written = 0;
        if (x->written == x->f->size) return PT_OK; /* complete; the hash decides */
        if (lseek(x->fd, x->written, SEEK_SET) < 0)
            return pt_error(PT_ERR_IO, "%s.part: %s", x->f->path, strerror(errno));
        x->from = x->written;
        if (x->from > 0) *resumed = true;
        if (x->h && x->h->progress) x->h->progress(x->h->user, x->f->path, x->written, x->f->size);

        xfer_result r = transfer(x, url);
        if (r == XFER_DONE) return PT_OK;
        if (r == XFER_FATAL) return x->fatal;
        if (r == XFER_RESTART) {
            if (ftruncate(x->fd, 0) != 0)
                return pt_error(PT_ERR_IO, "%s.part: cannot truncate: %s", x->f->path, strerror(errno));
            *resumed = false;
            continue;
        }
        /* Bytes arrived before the connection broke: resume at once. Nothing arrived: give
         * the server (or the network) a moment. */
        if (x->received == 0 && attempt + 1 < MAX_ATTEMPTS) {
            sleep_s(backoff);
            backoff *= 2;
        }
    }
    return pt_error_wrap(PT_ERR_NET, "after %d attempts: ", MAX_ATTEMPTS);
}

pt_status pt_assets_download(const pt_asset_file *f, const char *url, const char *dest,
                             const pt_pull_hooks *h) {
    pthread_once(&curl_once, curl_init_once);
    size_t n = strlen(dest) + sizeof ".part";
    char *part = malloc(n);
    if (!part) return pt_error(PT_ERR_OOM, "out of memory");
    snprintf(part, n, "%s.part", dest);
    xfer x = {.f = f, .h = h, .fd = -1};
    pt_status st = open_part(part, &x.fd);
    if (st) {
        free(part);
        return st;
    }
    bool ok = false;
    const char *why;
    char got[PT_SHA256_HEX];
    /* While this pull waited for the lock, another may have finished the file. */
    st = pt_assets_check(dest, f, PT_CHECK_STAMPED, &ok, &why, got);
    if (!st && ok) {
        struct stat sb;
        if (fstat(x.fd, &sb) == 0 && sb.st_size == 0) unlink(part);
        if (h && h->progress) h->progress(h->user, f->path, f->size, f->size);
        goto done;
    }
    x.curl = curl_easy_init();
    if (!x.curl) {
        st = pt_error(PT_ERR_INTERNAL, "libcurl could not start a transfer");
        goto done;
    }
    /* A mismatch after a resumed download may come from a stale prefix (the .part of an
     * older upstream version): one more try from zero settles it. */
    for (int pass = 0; pass < 2; pass++) {
        bool resumed = false;
        st = fetch(&x, url, &resumed);
        if (st) break;
        st = pt_assets_check(part, f, PT_CHECK_HASH, &ok, &why, got);
        if (st || ok) break;
        if (resumed && pass == 0 && ftruncate(x.fd, 0) == 0) continue;
        if (!strcmp(why, "size")) {
            struct stat sb;
            long long have = fstat(x.fd, &sb) == 0 ? (long long)sb.st_size : -1;
            st = pt_error(PT_ERR_FORMAT, "%s: downloaded %lld bytes from %s, expected %" PRId64 "; removed the download",
                          f->path, have, url, f->size);
        } else {
            st = pt_error(PT_ERR_FORMAT, "%s: SHA-256 mismatch: expected %s, got %s (from %s); removed the download",
                          f->path, f->sha256, got, url);
        }
        unlink(part);
        break;
    }
    if (!st && ok) {
        /* The data must be on disk before the name says it is complete. */
        if (fsync(x.fd) != 0 || rename(part, dest) != 0) {
            st = pt_error(PT_ERR_IO, "%s: cannot move the verified download into place: %s", dest, strerror(errno));
        } else {
            pt_assets_stamp(dest, f);
            if (h && h->progress) h->progress(h->user, f->path, f->size, f->size);
        }
    }
done:
    /* A failed transfer keeps its bytes for the next pull to resume; anything else (a bad
     * file, a refusal) leaves nothing behind. */
    if (st) {
        struct stat sb;
        if (st != PT_ERR_NET || (fstat(x.fd, &sb) == 0 && sb.st_size == 0)) unlink(part);
    }
    if (x.curl) curl_easy_cleanup(x.curl);
    close(x.fd);
    free(part);
    return st;
}
