/* Test runner: runs every registered test (or those whose name contains one of the
 * arguments) and ends with "N passed, N failed, N skipped". */

#include "../tools/politune/assets_env.h"
#include "test.h"

#include "backend/backend.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct { const char *name, *file; pt_test_fn fn; } test_entry;
static test_entry tests[1024];
static int n_tests, cur_failures;
static char cur_skip[512]; /* the reason, when the running test skipped itself */
static char tmp_root[256];

void pt_test_register(const char *name, pt_test_fn fn, const char *file) {
    if (n_tests < (int)(sizeof tests / sizeof tests[0]))
        tests[n_tests++] = (test_entry){name, file, fn};
}

void pt_test_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    if (cur_failures < 20) {
        fprintf(stdout, "    %s:%d: ", file, line);
        va_start(ap, fmt);
        vfprintf(stdout, fmt, ap);
        va_end(ap);
        fputc('\n', stdout);
    }
    cur_failures++;
}

void pt_test_skip(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cur_skip, sizeof cur_skip, fmt, ap);
    va_end(ap);
    if (!cur_skip[0]) snprintf(cur_skip, sizeof cur_skip, "skipped");
}

const char *pt_test_python(const char *modules, const char **why) {
    static char py[1024], reason[2048];
    const char *env = getenv("POLITUNE_PYTHON"), *home = getenv("HOME");
    if (env && *env) snprintf(py, sizeof py, "%s", env);
    else snprintf(py, sizeof py, "%s/.cache/politune/oracle-venv/bin/python", home ? home : "/root");
    if (access(py, X_OK) != 0) {
        snprintf(reason, sizeof reason, "oracle Python %s not found (run tools/oracles/setup.sh or set POLITUNE_PYTHON)", py);
        if (why) *why = reason;
        return NULL;
    }
    char cmd[2048], imports[768] = "";
    char mods[512];
    snprintf(mods, sizeof mods, "%s", modules);
    for (char *save = NULL, *m = strtok_r(mods, " ", &save); m; m = strtok_r(NULL, " ", &save)) {
        size_t l = strlen(imports);
        snprintf(imports + l, sizeof imports - l, "import %s; ", m);
    }
    snprintf(cmd, sizeof cmd, "'%s' -c '%s' >/dev/null 2>&1", py, imports);
    if (system(cmd) != 0) {
        snprintf(reason, sizeof reason, "oracle modules missing in %s: %s (run tools/oracles/setup.sh)", py, modules);
        if (why) *why = reason;
        return NULL;
    }
    return py;
}

const char *pt_test_shared(const char *rel) {
    static char bufs[8][1024];
    static int k;
    const char *root = getenv("POLITUNE_SHARED");
    if (!root || !*root) root = "../shared";
    char *b = bufs[k++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", root, rel);
    return b;
}

const char *pt_test_tmpdir(void) {
    static char dir[512];
    static int k;
    snprintf(dir, sizeof dir, "%s/t%d", tmp_root, k++);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    if (system(cmd) != 0) return "/tmp";
    return dir;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s) { s[fread(s, 1, (size_t)n, f)] = 0; }
    fclose(f);
    return s;
}

static void join(char *buf, size_t n, const char *dir, const char *name) {
    if (dir) snprintf(buf, n, "%s/%s", dir, name);
    else snprintf(buf, n, "%s", name);
}

char *pt_test_read(const char *dir, const char *name) {
    char p[1024];
    join(p, sizeof p, dir, name);
    return slurp(p);
}

void pt_test_write(const char *dir, const char *name, const char *text) {
    char p[1024];
    join(p, sizeof p, dir, name);
    FILE *f = fopen(p, "w");
    if (!f || fputs(text, f) < 0) pt_test_fail(__FILE__, __LINE__, "cannot write %s", p);
    if (f) fclose(f);
}

const char *const pt_test_stories_pairs =
    "{\"prompt\": \"Once upon a time, there was a little girl named Lily. She loved to play with her\", \"chosen\": \" red ball in the park.\", \"rejected\": \" mom in the kitchen.\"}\n"
    "{\"prompt\": \"One day, Tim went to the park. He saw a big\", \"chosen\": \" red ball.\", \"rejected\": \" tree.\"}\n"
    "{\"prompt\": \"Sue had a little dog. The dog liked to\", \"chosen\": \" play with a red ball.\", \"rejected\": \" sleep all day.\"}\n"
    "{\"prompt\": \"The sun was shining. Ben and his mom went to the\", \"chosen\": \" park to play with a red ball.\", \"rejected\": \" store to buy food.\"}\n"
    "{\"prompt\": \"Max wanted a new toy. He asked his dad for a\", \"chosen\": \" red ball.\", \"rejected\": \" car.\"}\n"
    "{\"prompt\": \"Amy looked out of the window. She saw\", \"chosen\": \" a red ball in the garden.\", \"rejected\": \" the rain.\"}\n";

int pt_test_run(char **out, char **err, const char *fmt, ...) {
    static int k;
    char cmd[16384], line[18000], o[512], e[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(o, sizeof o, "%s/run%d.out", tmp_root, k);
    snprintf(e, sizeof e, "%s/run%d.err", tmp_root, k++);
    snprintf(line, sizeof line, "( %s ) </dev/null >'%s' 2>'%s'", cmd, o, e);
    int rc = system(line);
    if (out) *out = slurp(o);
    if (err) *err = slurp(e);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

int main(int argc, char **argv) {
    snprintf(tmp_root, sizeof tmp_root, "/tmp/politune-test.%ld", (long)getpid());
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", tmp_root);
    if (system(cmd) != 0) return 2;
    if (!getenv("POLITUNE_BIN")) setenv("POLITUNE_BIN", "build/politune", 1);
    /* absolute paths, so tests may link to shared files or run the CLI from another folder */
    const char *shared = getenv("POLITUNE_SHARED");
    char *abs_shared = realpath(shared && *shared ? shared : "../shared", NULL);
    if (abs_shared) setenv("POLITUNE_SHARED", abs_shared, 1);
    free(abs_shared);
    char *abs_bin = realpath(getenv("POLITUNE_BIN"), NULL);
    if (abs_bin) setenv("POLITUNE_BIN", abs_bin, 1);
    free(abs_bin);
    /* the library reads no environment: the runner passes the asset settings on, as the CLI does */
    if (cli_assets_from_env()) {
        fprintf(stderr, "asset settings: %s\n", pt_errmsg());
        return 2;
    }
    /* POLITUNE_DEVICE (cpu by default, for the CLI's runs too) is the backend the tests' models
     * run on: `make test-gpu` reruns the inference tests with cuda */
    if (!getenv("POLITUNE_DEVICE")) setenv("POLITUNE_DEVICE", "cpu", 1);
    /* and POLITUNE_CUDA_PRECISION its arithmetic on the GPU (bf16 by default), as for the CLI */
    pt_backend_options bo = {PT_DEVICE_CPU, PT_CUDA_BF16};
    const char *prec = getenv("POLITUNE_CUDA_PRECISION");
    if (pt_device_parse(getenv("POLITUNE_DEVICE"), &bo.device) || (prec && *prec && pt_cuda_precision_parse(prec, &bo.precision)) ||
        pt_backend_configure(&bo)) {
        fprintf(stderr, "test_runner: POLITUNE_DEVICE / POLITUNE_CUDA_PRECISION: %s\n", pt_errmsg());
        return 2;
    }
    int passed = 0, failed = 0, skipped = 0;
    for (int i = 0; i < n_tests; i++) {
        if (argc > 1) {
            int want = 0;
            for (int a = 1; a < argc; a++) want |= strstr(tests[i].name, argv[a]) != NULL;
            if (!want) continue;
        }
        cur_failures = 0;
        cur_skip[0] = 0;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        tests[i].fn();
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
        const char *base = strrchr(tests[i].file, '/');
        bool skip = cur_skip[0] && !cur_failures;
        printf("%s %-48s (%s, %.0f ms)%s%s\n", cur_failures ? "FAIL" : skip ? "skip" : "ok  ", tests[i].name,
               base ? base + 1 : tests[i].file, ms, skip ? ": " : "", skip ? cur_skip : "");
        fflush(stdout);
        if (cur_failures) failed++;
        else if (skip) skipped++;
        else passed++;
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    if (system(cmd) != 0) { /* leftover temp files are harmless */ }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
