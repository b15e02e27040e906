/* Thread-local error message storage behind pt_error() / pt_errmsg(). */
#include "util/status.h"

#include <stdarg.h>
#include <string.h>

static _Thread_local char err_buf[2048];

pt_status pt_error(pt_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    return st;
}

pt_status pt_error_wrap(pt_status st, const char *fmt, ...) {
    char prefix[1024], old[sizeof err_buf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err_buf, sizeof old);
    size_t n = strlen(prefix);
    if (n >= sizeof err_buf) n = sizeof err_buf - 1;
    memcpy(err_buf, prefix, n);
    size_t m = strlen(old);
    if (m > sizeof err_buf - 1 - n) m = sizeof err_buf - 1 - n;
    memcpy(err_buf + n, old, m);
    err_buf[n + m] = 0;
    return st;
}

static pt_warn_sink warn_sink;

void pt_warn_set_sink(pt_warn_sink sink) { warn_sink = sink; }

void pt_warn(const char *fmt, ...) {
    if (!warn_sink) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    warn_sink(msg);
}

const char *pt_errmsg(void) { return err_buf; }

void pt_error_clear(void) { err_buf[0] = 0; }

const char *pt_status_name(pt_status st) {
    switch (st) {
    case PT_OK: return "ok";
    case PT_ERR_IO: return "I/O error";
    case PT_ERR_FORMAT: return "format error";
    case PT_ERR_OOM: return "out of memory";
    case PT_ERR_ARG: return "invalid argument";
    case PT_ERR_UNSUPPORTED: return "unsupported";
    case PT_ERR_NUMERIC: return "numeric error";
    case PT_ERR_NET: return "network error";
    case PT_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}
