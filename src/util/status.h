/* Status codes and the error message that goes with them.
 *
 * Every library function that can fail returns a pt_status and, on failure, leaves a
 * human-readable message (what went wrong and where: file, line, key, tensor, expected vs
 * found) in a thread-local slot, the way SQLite keeps a message on its handle. The CLI prints
 * pt_errmsg() and exits non-zero; nothing below the CLI prints or exits. */
#ifndef PT_UTIL_STATUS_H
#define PT_UTIL_STATUS_H

#include <stdio.h>
#include <stdlib.h>

#include "politune.h"

/* pt_status and the functions that read the message are public: include/politune.h. */

/* Records a formatted message for `st` and returns `st`, so callers can write
 * `return pt_error(PT_ERR_FORMAT, "%s: ...", path);`. */
pt_status pt_error(pt_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefixes the current message with more context ("loading X: " + old message). */
pt_status pt_error_wrap(pt_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A warning about input that was accepted but may not mean what its author hoped (for example
 * tensors a checkpoint holds that politune does not use). The library never prints: the
 * warning goes to the sink the program installed, or is dropped when there is none. */
typedef void (*pt_warn_sink)(const char *message);
void pt_warn_set_sink(pt_warn_sink sink);
void pt_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));


/* Invariant check that stays on in release builds: a failure is a bug in politune. */
#define PT_ASSERT(cond)                                                                  \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "politune: internal error: %s:%d: assertion '%s' failed\n", \
                    __FILE__, __LINE__, #cond);                                          \
            abort();                                                                     \
        }                                                                                \
    } while (0)

/* Propagates a failure: `PT_TRY(pt_gguf_open(...));` */
#define PT_TRY(expr)                          \
    do {                                      \
        pt_status pt_try_st_ = (expr);        \
        if (pt_try_st_ != PT_OK) return pt_try_st_; \
    } while (0)

#endif
