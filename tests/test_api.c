/* The library as others see it: the public header's usage example compiles against
 * include/ alone and generates the text the fixture holds; `make install` lays out a prefix
 * that `pkg-config --cflags --libs politune` builds a program against; the static library
 * exports only pt_-prefixed symbols; and the include graph follows the pipeline
 * (tools/check_includes.py), which the check itself is shown to enforce on a planted edge. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "internal.h"
#include "test.h"

/* The example of include/politune.h: the comment lines after "Usage" that start with " *   ",
 * with that prefix cut, up to the end of the comment. */
static char *header_example(void) {
    char *h = pt_test_read(NULL, "include/politune.h");
    if (!h) return NULL;
    const char *p = strstr(h, " * Usage");
    const char *end = p ? strstr(p, " */") : NULL;
    char *out = p && end ? calloc(1, (size_t)(end - p) + 1) : NULL;
    size_t n = 0;
    for (const char *line = p ? strchr(p, '\n') : NULL; out && line && line < end; line = strchr(line + 1, '\n')) {
        const char *l = line + 1;
        const char *eol = strchr(l, '\n');
        if (!eol || l >= end) break;
        if (!strncmp(l, " *   ", 5)) {
            memcpy(out + n, l + 5, (size_t)(eol - l - 5));
            n += (size_t)(eol - l - 5);
        }
        out[n++] = '\n';
    }
    free(h);
    return out;
}

PT_TEST(test_api_header_example) {
    const char *lib = getenv("POLITUNE_LIB"), *libs = getenv("POLITUNE_LDLIBS");
    if (!lib || !libs) SKIP("POLITUNE_LIB / POLITUNE_LDLIBS not set (run through `make test`)");
    char *src = header_example();
    CHECK(src && strstr(src, "int main("));
    if (!src) return;
    const char *dir = pt_test_tmpdir();
    pt_test_write(dir, "example.c", src);
    free(src);
    char *out = NULL, *err = NULL;
    /* include/ only: the public header must not need -Isrc */
    int rc = pt_test_run(&out, &err, "cc -std=c11 -Wall -Wextra -Werror -Iinclude '%s/example.c' -o '%s/example' '%s' %s", dir, dir, lib, libs);
    CHECK_MSG(rc == 0, "the header's example does not compile: %s", err ? err : "");
    free(out), free(err), out = err = NULL;
    if (rc) return;
    rc = pt_test_run(&out, &err, "'%s/example' '%s'", dir, pt_test_shared("assets/models/stories260K/stories260K.gguf"));
    CHECK_MSG(rc == 0, "the example failed: %s", err ? err : "");
    /* greedy from "Once upon a time" follows the text llama2.c documents for stories260K,
     * which the fixture's greedy decode from BOS holds (with its leading space) */
    char *cases = pt_test_read(pt_test_shared("fixtures/reference/stories260K-hf"), "cases.json");
    json_t *j = cases ? json_loads(cases, 0, NULL) : NULL;
    const char *want = json_string_value(json_object_get(j, "greedy_text"));
    CHECK(want != NULL);
    if (want && out) {
        while (*want == ' ') want++;
        size_t n = strlen(out);
        while (n && out[n - 1] == '\n') out[--n] = 0;
        CHECK_MSG(n > strlen("Once upon a time") + 20, "too little text: '%s'", out);
        CHECK_MSG(!strncmp(out, want, n), "the example printed '%s', the fixture's greedy text is '%s'", out, want);
    }
    json_decref(j);
    free(cases);
    free(out);
    free(err);
}

static const char tiny_program[] =
    "#include <politune.h>\n"
    "#include <stdio.h>\n"
    "int main(int argc, char **argv) {\n"
    "    pt_model *m = NULL;\n"
    "    if (pt_model_load(&m, argv[1]) != PT_OK) { fprintf(stderr, \"%s\\n\", pt_errmsg()); return 1; }\n"
    "    printf(\"politune %s (%s) %zu %d\\n\", pt_version(), pt_build_features(), pt_model_n_params(m), pt_model_vocab_size(m));\n"
    "    pt_model_free(m);\n"
    "    return argc > 2;\n"
    "}\n";

PT_TEST(test_api_install_pkgconfig) {
    const char *lib = getenv("POLITUNE_LIB");
    if (!lib) SKIP("POLITUNE_LIB not set (run through `make test`)");
    char build[4096];
    snprintf(build, sizeof build, "%s", lib);
    char *slash = strrchr(build, '/');
    if (slash) *slash = 0;
    const char *dir = pt_test_tmpdir();
    char *out = NULL, *err = NULL;
    /* a make of its own: the jobserver of the `make test` this runs under is not ours */
    /* LDFLAGS: a sanitizer build's library needs the sanitizers' runtime, and its .pc says so */
    const char *ldflags = getenv("POLITUNE_LDFLAGS");
    int rc = pt_test_run(&out, &err, "env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make -s install BUILD='%s' PREFIX='%s/prefix' LDFLAGS='%s'", build, dir,
                         ldflags ? ldflags : "");
    CHECK_MSG(rc == 0, "make install failed: %s", err ? err : "");
    free(out), free(err), out = err = NULL;
    if (rc) return;
    pt_test_write(dir, "tiny.c", tiny_program);
    rc = pt_test_run(&out, &err,
                     "cd '%s' && export PKG_CONFIG_PATH='%s/prefix/lib/pkgconfig' && "
                     "cc -std=c11 -Wall -Werror tiny.c -o tiny $(pkg-config --cflags --libs politune)",
                     dir, dir);
    CHECK_MSG(rc == 0, "building against the installed library failed: %s", err ? err : "");
    free(out), free(err), out = err = NULL;
    if (rc) return;
    rc = pt_test_run(&out, &err, "'%s/tiny' '%s'", dir, pt_test_shared("assets/models/stories260K/stories260K.gguf"));
    CHECK_MSG(rc == 0, "the program failed: %s", err ? err : "");
    char *ver = NULL;
    CHECK(pt_test_run(&ver, NULL, "'%s/prefix/bin/politune' --version", dir) == 0);
    if (out && ver) {
        /* the installed CLI and the program agree on the version and the build's features */
        size_t n = strlen(ver);
        while (n && ver[n - 1] == '\n') ver[--n] = 0;
        CHECK_MSG(!strncmp(out, ver, n) && out[n] == ' ', "program: '%s', installed politune --version: '%s'", out, ver);
        CHECK(strstr(ver, "politune " PT_VERSION " (blas=") == ver);
        /* stories260K: vocabulary 512 (shared/README.md) */
        CHECK_MSG(strstr(out, " 512\n") != NULL, "'%s'", out);
    }
    free(ver);
    free(out);
    free(err);
}

PT_TEST(test_api_exports_prefixed) {
    const char *lib = getenv("POLITUNE_LIB");
    if (!lib) SKIP("POLITUNE_LIB not set (run through `make test`)");
    char *out = NULL, *err = NULL;
    /* __odr_asan.*: AddressSanitizer's one-definition-rule markers of our globals (make asan) */
    int rc = pt_test_run(&out, &err, "nm -g --defined-only '%s' | awk 'NF == 3 {print $3}' | grep -v '^pt_' | grep -v '^__odr_asan[.]pt_' | sort -u",
                         lib);
    CHECK_MSG(rc == 0 || rc == 1, "nm failed: %s", err ? err : "");
    CHECK_MSG(out && !out[0], "symbols exported without the pt_ prefix:\n%s", out ? out : "");
    free(out);
    free(err);
}

PT_TEST(test_include_order) {
    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err, "python3 tools/check_includes.py .");
    CHECK_MSG(rc == 0, "includes against the pipeline order:\n%s%s", out ? out : "", err ? err : "");
    free(out), free(err), out = err = NULL;
    /* the check fails on an edge against the order: format/ including model/, planted in a copy */
    const char *dir = pt_test_tmpdir();
    rc = pt_test_run(&out, &err,
                     "cp -r src include '%s'/ && mkdir -p '%s/tools' && cp -r tools/politune '%s/tools/' && "
                     "printf '#include \"model/model.h\"\\n' >> '%s/src/format/tensor.c' && python3 tools/check_includes.py '%s'",
                     dir, dir, dir, dir, dir);
    CHECK_MSG(rc == 1, "the planted include was not caught (exit %d)", rc);
    CHECK_MSG(out && strstr(out, "src/format/tensor.c:") && strstr(out, "\"model/model.h\"") && strstr(out, "upward"), "%s", out ? out : "");
    free(out);
    free(err);
}
