/* The backend seam on the CPU: --device's parsing and its one-line refusals where CUDA cannot
 * run, and the CUDA backend's host-side memory plan (src/backend/cuda/plan.h) against sizes
 * known from outside politune (Llama-3-8B's published parameter count, its key/value cache
 * per token, the LoRA parameter count of the paper's recipe worked out by hand). */
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/plan.h"
#include "model/adapter.h"
#include "internal.h"
#include "test.h"

#define BIN "\"$POLITUNE_BIN\""

static int count_lines(const char *s) {
    int n = 0;
    for (; s && *s; s++) n += *s == '\n';
    return n;
}

/* Meta-Llama-3-8B's config.json */
static pt_config llama3_8b(void) {
    pt_config c = {0};
    c.arch = PT_ARCH_LLAMA, c.dim = 4096, c.n_layers = 32, c.n_heads = 32, c.n_kv_heads = 8, c.head_dim = 128, c.ffn_dim = 14336;
    c.vocab_size = 128256, c.max_ctx = 8192, c.norm_eps = 1e-5f, c.rope_theta = 500000;
    return c;
}

PT_TEST(test_backend_device_names) {
    pt_device d;
    CHECK_OK(pt_device_parse("cpu", &d));
    CHECK(d == PT_DEVICE_CPU);
    CHECK_OK(pt_device_parse("cuda", &d));
    CHECK(d == PT_DEVICE_CUDA);
    CHECK_OK(pt_device_parse("auto", &d));
    CHECK(d == PT_DEVICE_AUTO);
    CHECK(pt_device_parse("gpu", &d) == PT_ERR_ARG);
    CHECK(strstr(pt_errmsg(), "'gpu'") != NULL);
}

/* Where CUDA cannot run, asking for it is one clear error and nothing changes; auto and cpu
 * both give the CPU backend. */
PT_TEST(test_backend_select_without_gpu) {
    char why[256];
    if (pt_backend_cuda_usable(why, sizeof why)) SKIP("a CUDA GPU is usable here: the refusal cannot be tested");
    const pt_backend *before = pt_backend_current();
    CHECK(pt_backend_select(PT_DEVICE_CUDA) == PT_ERR_ARG);
    CHECK(strstr(pt_errmsg(), "--device cuda:") != NULL);
    CHECK(strstr(pt_errmsg(), pt_backend_has_cuda() ? "CUDA GPU" : "no CUDA backend") != NULL);
    CHECK(pt_backend_current() == before);
    CHECK_OK(pt_backend_select(PT_DEVICE_AUTO));
    CHECK(pt_backend_current() == pt_backend_cpu());
    CHECK_OK(pt_backend_select(PT_DEVICE_CPU));
    CHECK(pt_backend_current() == pt_backend_cpu());
    CHECK(!strcmp(pt_backend_current()->name, "cpu"));
}

/* Every model-running command: --device cuda without a GPU (or without the CUDA build) is
 * one line on stderr, exit 2, nothing on stdout; a bad name likewise. */
PT_TEST(test_backend_cli_device_refused) {
    char why[256];
    if (pt_backend_cuda_usable(why, sizeof why)) SKIP("a CUDA GPU is usable here: the refusal cannot be tested");
    const char *m = pt_test_shared("assets/models/stories260K/stories260K.gguf");
    const char *tmp = pt_test_tmpdir();
    pt_test_write(tmp, "pairs.jsonl", pt_test_stories_pairs);
    char lines[8][1024];
    snprintf(lines[0], sizeof lines[0], BIN " generate --device cuda --model '%s' --prompt Once --max-new-tokens 2", m);
    snprintf(lines[1], sizeof lines[1], BIN " score --device cuda --model '%s' --prompt Once --continuation ' upon'", m);
    snprintf(lines[2], sizeof lines[2], BIN " logits --device cuda --model '%s' --ids 1,2", m);
    snprintf(lines[3], sizeof lines[3], BIN " train --device cuda --method dpo --model '%s' --data '%s/pairs.jsonl' --out '%s/a'", m, tmp, tmp);
    snprintf(lines[4], sizeof lines[4], BIN " compass --device cuda --model '%s' --out '%s/c'", m, tmp);
    snprintf(lines[5], sizeof lines[5], BIN " serve --device cuda --model '%s' --port 1", m);
    snprintf(lines[6], sizeof lines[6], BIN " generate --device tpu --model '%s' --prompt Once", m);
    for (int i = 0; i < 7; i++) {
        char *out = NULL, *err = NULL;
        int rc = pt_test_run(&out, &err, "%s", lines[i]);
        const char *needle = i == 6 ? "unknown device 'tpu'" : "--device cuda:";
        CHECK_MSG(rc == 2, "'%s' exited %d", lines[i], rc);
        CHECK_MSG(err && strstr(err, needle), "'%s': stderr '%s' lacks '%s'", lines[i], err ? err : "", needle);
        CHECK_MSG(count_lines(err) == 1, "'%s': %d lines on stderr: %s", lines[i], count_lines(err), err ? err : "");
        CHECK_MSG(!out || !*out, "'%s': unexpected stdout '%s'", lines[i], out);
        free(out);
        free(err);
    }
}

/* --device cpu is today's computation: the same greedy text as without the flag. */
PT_TEST(test_backend_cli_device_cpu_same_text) {
    const char *m = pt_test_shared("assets/models/stories260K/stories260K.gguf");
    char *a = NULL, *b = NULL;
    int ra = pt_test_run(&a, NULL, BIN " generate --model '%s' --prompt 'Once upon' --max-new-tokens 24", m);
    int rb = pt_test_run(&b, NULL, BIN " generate --device cpu --model '%s' --prompt 'Once upon' --max-new-tokens 24", m);
    CHECK(ra == 0 && rb == 0);
    CHECK_MSG(a && b && !strcmp(a, b) && strlen(a) > 20, "'%s' vs '%s'", a ? a : "", b ? b : "");
    free(a);
    free(b);
}

PT_TEST(test_backend_plan_llama3_8b_weights) {
    pt_config c = llama3_8b();
    pt_cuda_plan p;
    pt_cuda_plan_engine(&p, &c, PT_CUDA_BF16, 1, 8192, 256, 0, 0);
    /* 8,030,261,248 parameters (Hugging Face's count for Meta-Llama-3-8B), of which the 65
     * norm vectors of 4096 stay f32 and every matrix is bf16 */
    const size_t params = 8030261248ull, norms = 65ull * 4096;
    CHECK(p.weights == (params - norms) * 2 + norms * 4);
    /* 128 KiB of bf16 keys and values per token (32 layers x 2 x 8 heads x 128): 1 GiB for 8192 */
    CHECK(p.kv_cache == (size_t)1 << 30);
    CHECK(p.total == p.weights + p.kv_cache + p.workspace + p.logits + p.lora);
    pt_cuda_plan f;
    pt_cuda_plan_engine(&f, &c, PT_CUDA_F32, 1, 8192, 256, 0, 0);
    CHECK(f.weights == (params - norms) * 4 + norms * 4);
    CHECK(f.kv_cache == 2 * p.kv_cache);
    /* tied embeddings hold one (V, D) matrix instead of two */
    c.tied_embeddings = true;
    pt_cuda_plan t;
    pt_cuda_plan_engine(&t, &c, PT_CUDA_BF16, 1, 8192, 256, 0, 0);
    CHECK(p.weights - t.weights == 128256ull * 4096 * 2);
}

PT_TEST(test_backend_plan_lora_paper_recipe) {
    pt_config c = llama3_8b();
    unsigned targets = (1u << PT_LT_Q) | (1u << PT_LT_V) | (1u << PT_LT_GATE) | (1u << PT_LT_UP) | (1u << PT_LT_DOWN) | (1u << PT_LT_HEAD);
    /* r16 on q (4096->4096), v (4096->1024), gate/up (4096->14336), down (14336->4096) of 32
     * layers and lm_head (4096->128256): 16 x (8192 + 5120 + 3 x 18432) x 32 + 16 x 132352 */
    CHECK(pt_cuda_lora_params(&c, 16, targets) == 37244928ull);
    pt_cuda_plan a, b;
    pt_cuda_plan_train(&a, &c, PT_CUDA_BF16, 16, targets, 8192, false, 0);
    pt_cuda_plan_train(&b, &c, PT_CUDA_BF16, 16, targets, 8192, true, 0);
    CHECK(a.lora == 37244928ull * (2 + 16));
    CHECK(b.workspace < a.workspace / 8); /* recompute keeps one layer's set of 32 */
    CHECK(a.weights == b.weights);
    /* the logits chunk respects its 1 GiB budget */
    CHECK(a.logits <= (size_t)1 << 30 && a.logits >= (size_t)1 << 29);
}

PT_TEST(test_backend_plan_check_message) {
    pt_config c = llama3_8b();
    pt_cuda_plan p;
    pt_cuda_plan_engine(&p, &c, PT_CUDA_BF16, 1, 8192, 256, 0, 0);
    CHECK_OK(pt_cuda_plan_check(&p, p.total, "llama3-8b"));
    CHECK(pt_cuda_plan_check(&p, (size_t)8 << 30, "llama3-8b") == PT_ERR_OOM);
    const char *msg = pt_errmsg();
    CHECK_MSG(strstr(msg, "llama3-8b needs 1") && strstr(msg, "GiB of GPU memory") && strstr(msg, "8.00 GiB free") &&
                  strstr(msg, "weights 14.96"),
              "%s", msg);
    CHECK(!strchr(msg, '\n'));
}

PT_TEST(test_backend_precision_names) {
    pt_cuda_precision p;
    CHECK_OK(pt_cuda_precision_parse("f32", &p));
    CHECK(p == PT_CUDA_F32 && pt_cuda_elem_bytes(p) == 4);
    CHECK_OK(pt_cuda_precision_parse("bf16", &p));
    CHECK(p == PT_CUDA_BF16 && pt_cuda_elem_bytes(p) == 2);
    CHECK(pt_cuda_precision_parse("fp8", &p) == PT_ERR_ARG);
}

/* The resident engine's step workspace (plan.h): every buffer 256-byte aligned, in the order
 * declared, none overlapping the next, each at least as large as its shape says (sizes from
 * Llama-3-8B's widths: D 4096, Q 4096, KV 1024, F 14336, hd 128), the logits limited to
 * PT_CUDA_LOGIT_ROWS rows and the bf16 product inputs absent in f32. */
PT_TEST(test_backend_step_layout) {
    pt_config c = llama3_8b();
    for (int pi = 0; pi < 2; pi++) {
        const pt_cuda_precision prec = pi ? PT_CUDA_F32 : PT_CUDA_BF16;
        const int rows = 300;
        pt_cuda_step_layout l;
        pt_cuda_step_layout_make(&l, &c, prec, rows, 16);
        CHECK(l.rows == 300 && l.logit_rows == PT_CUDA_LOGIT_ROWS && l.lora_r == 16);
        const size_t offs[] = {l.x, l.xb, l.q, l.k, l.v, l.hb, l.hb2, l.lora, l.gemm_in, l.cos, l.sin, l.ids, l.pos, l.slot, l.out_rows,
                               l.head_x, l.head_xb, l.logits, l.total};
        const size_t f = 4, need[] = {rows * 4096 * f, rows * 4096 * f, rows * 4096 * f, rows * 1024 * f, rows * 1024 * f,
                                      rows * 14336 * f, rows * 14336 * f, rows * 16 * f, pi ? 0 : rows * 14336 * 2, rows * 64 * f,
                                      rows * 64 * f, rows * 4, rows * 4, rows * 4, rows * 4, 256 * 4096 * f, 256 * 4096 * f,
                                      256 * 128256 * f};
        const int n = sizeof need / sizeof need[0];
        for (int i = 0; i < n; i++) {
            CHECK_MSG(offs[i] % 256 == 0, "buffer %d at %zu is not aligned", i, offs[i]);
            CHECK_MSG(offs[i + 1] >= offs[i] + need[i], "buffer %d: %zu bytes from %zu overlap the next at %zu", i, need[i], offs[i],
                      offs[i + 1]);
            CHECK_MSG(offs[i + 1] - offs[i] < need[i] + 256, "buffer %d holds %zu bytes for %zu", i, offs[i + 1] - offs[i], need[i]);
        }
    }
    /* a one-row decode step: one logits row, rank 0 counted as 1 */
    pt_cuda_step_layout d;
    pt_cuda_step_layout_make(&d, &c, PT_CUDA_BF16, 1, 0);
    CHECK(d.rows == 1 && d.logit_rows == 1 && d.lora_r == 1);
    CHECK(d.total - d.logits >= 128256 * 4 && d.total - d.logits < 128256 * 4 + 256);
}

/* The cache layout (n_layers, n_slots, n_ctx, kv_dim) the resident engine shares with the
 * host engine: Llama-3-8B's kv_dim of 1024, 4 slots of 100 positions. */
PT_TEST(test_backend_kv_offset) {
    pt_config c = llama3_8b();
    CHECK(pt_cuda_kv_offset(&c, 4, 100, 0, 0, 0) == 0);
    CHECK(pt_cuda_kv_offset(&c, 4, 100, 0, 0, 1) == 1024);
    CHECK(pt_cuda_kv_offset(&c, 4, 100, 0, 1, 0) == 100 * 1024);
    CHECK(pt_cuda_kv_offset(&c, 4, 100, 1, 0, 0) == 4 * 100 * 1024);
    CHECK(pt_cuda_kv_offset(&c, 4, 100, 31, 3, 99) + 1024 == 32ull * 4 * 100 * 1024); /* the last row ends the cache */
}

/* --precision is part of --device's group: a bad value is one line and exit 2; on the CPU it
 * changes nothing (the logits are the same bytes with and without it). */
PT_TEST(test_backend_cli_precision_option) {
    const char *m = pt_test_shared("assets/models/stories260K/stories260K.gguf");
    char *out = NULL, *err = NULL;
    int rc = pt_test_run(&out, &err, BIN " logits --device cpu --precision fp8 --model '%s' --ids 1,2", m);
    CHECK_MSG(rc == 2 && count_lines(err) == 1 && strstr(err, "--precision") && (!out || !*out), "rc %d: %s", rc, err ? err : "");
    free(out), free(err);
    char *plain = NULL, *with = NULL;
    CHECK(pt_test_run(&plain, NULL, BIN " logits --device cpu --model '%s' --ids 1,2,3", m) == 0);
    CHECK(pt_test_run(&with, NULL, BIN " logits --device cpu --precision f32 --model '%s' --ids 1,2,3", m) == 0);
    CHECK(plain && with && *plain && !strcmp(plain, with));
    free(plain), free(with);
    /* the in-process judge of the data stages has the same option */
    rc = pt_test_run(&out, &err, BIN " select --judge-model '%s' --judge-precision fp8 --in x.jsonl --text-field t --target left --out y.jsonl", m);
    CHECK_MSG(rc == 2 && count_lines(err) == 1 && strstr(err, "--judge-precision wants bf16 or f32") && (!out || !*out), "rc %d: %s", rc,
              err ? err : "");
    free(out), free(err);
}
