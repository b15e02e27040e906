/* A small test harness: PT_TEST(name) registers a test; CHECK* record failures with file and
 * line and let the test go on, so one run reports every broken expectation. The runner
 * (tests/main.c) prints one line per test and ends with "N passed, N failed". */
#ifndef PT_TESTS_TEST_H
#define PT_TESTS_TEST_H

#include <math.h>
#include <stdio.h>

typedef void (*pt_test_fn)(void);
void pt_test_register(const char *name, pt_test_fn fn, const char *file);
void pt_test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Path under the shared reference folder (POLITUNE_SHARED, default ../shared); static buffer
 * rotation, so a few may be used in one expression. */
const char *pt_test_shared(const char *rel);
/* A fresh temporary directory for this test (removed by the runner at exit). */
const char *pt_test_tmpdir(void);
/* dir/name (or name alone when dir is NULL) as a malloc'd NUL-terminated string; NULL when it
 * cannot be read. */
char *pt_test_read(const char *dir, const char *name);
/* Writes text to dir/name (name alone when dir is NULL), reporting a failure. */
void pt_test_write(const char *dir, const char *name, const char *text);
/* Six short stories260K preference pairs (JSONL prompt/chosen/rejected) whose chosen
 * continuation is always about a red ball: a preference a few DPO steps learn. */
extern const char *const pt_test_stories_pairs;

/* Marks the running test as skipped, with the reason printed on its line; a skipped test
 * counts neither as passed nor as failed ("N passed, N failed, N skipped"). Use it only
 * when an oracle or an optional input is missing, never to hide a failure. */
void pt_test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define SKIP(...) do { pt_test_skip(__VA_ARGS__); return; } while (0)

/* The Python of the test oracles (torch, transformers, peft, trl, gguf, llama-cpp-python),
 * set up by tools/oracles/setup.sh: $POLITUNE_PYTHON, else
 * $HOME/.cache/politune/oracle-venv/bin/python. Returns it when every module in the
 * space-separated list imports, else NULL with the reason in *why (static text). */
const char *pt_test_python(const char *modules, const char **why);

/* The SmolLM2-135M-Instruct GGUF (asset smollm2-135m-instruct) found through the asset lookup
 * (mirror, reference tree, cache), else in the download cache even when a POLITUNE_ASSETS
 * mirror without it is set; NULL with the reason in *why when absent (tests/model_assets.c). */
const char *pt_test_smollm2(const char **why);

/* Runs a shell command line with the politune binary at $POLITUNE_BIN; captures stdout and
 * stderr (malloc'd, may be NULL) and returns the exit status. */
int pt_test_run(char **out, char **err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define PT_TEST(name)                                                               \
    static void name(void);                                                         \
    __attribute__((constructor)) static void pt_register_##name(void) {             \
        pt_test_register(#name, name, __FILE__);                                    \
    }                                                                               \
    static void name(void)

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) pt_test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);          \
    } while (0)

#define CHECK_MSG(cond, ...)                                                        \
    do {                                                                            \
        if (!(cond)) pt_test_fail(__FILE__, __LINE__, __VA_ARGS__);                 \
    } while (0)

/* Checks a pt_status call and reports the library's message when it fails. */
#define CHECK_OK(expr)                                                              \
    do {                                                                            \
        pt_status st_ = (expr);                                                     \
        if (st_ != PT_OK)                                                           \
            pt_test_fail(__FILE__, __LINE__, "%s -> %s: %s", #expr,                 \
                         pt_status_name(st_), pt_errmsg());                         \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                       \
    do {                                                                            \
        double a_ = (a), b_ = (b), t_ = (tol);                                      \
        if (!(fabs(a_ - b_) <= t_))                                                 \
            pt_test_fail(__FILE__, __LINE__, "%s = %.9g, expected %s = %.9g (tol %.3g)", \
                         #a, a_, #b, b_, t_);                                       \
    } while (0)

#define REQUIRE(cond)                                                               \
    do {                                                                            \
        if (!(cond)) { pt_test_fail(__FILE__, __LINE__, "REQUIRE(%s)", #cond); return; } \
    } while (0)

#define REQUIRE_OK(expr)                                                            \
    do {                                                                            \
        pt_status st_ = (expr);                                                     \
        if (st_ != PT_OK) {                                                         \
            pt_test_fail(__FILE__, __LINE__, "%s -> %s: %s", #expr,                 \
                         pt_status_name(st_), pt_errmsg());                         \
            return;                                                                 \
        }                                                                           \
    } while (0)

#endif
