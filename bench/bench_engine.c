/* Engine throughput benchmark (issue #2): prefill tokens/s on a 512-token prompt of random
 * ids (a fresh cache each run) and decode tokens/s for 64 greedy tokens after a 128-token
 * prompt, the same shapes the PyTorch peer (shared/tools/peer_torch_llama.py) measures.
 * Prints one JSON line with the medians of R runs, every run's figure, peak resident memory
 * and the model's weight and engine bytes, plus which OpenBLAS kernel this process got.
 *
 * Peak RSS (and the current anonymous / file-backed split: mapped weights count as file pages)
 * is read before the optional sgemm probe (--sgemm), which allocates 48 MiB of its own.
 *
 * usage: bench_engine MODEL [--threads N] [--runs R] [--prefill T] [--prompt P] [--decode G]
 *                           [--sgemm] [--seed S]
 *        bench_engine --blas-only [--threads N]    (OpenBLAS kernel and sgemm GFLOP/s only)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/matmul.h"
#include "engine/engine.h"
#include "model/model.h"
#include "util/rng.h"

char *openblas_get_corename(void);
char *openblas_get_config(void);

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n) {
    double *s = malloc(sizeof(double) * n);
    memcpy(s, v, sizeof(double) * n);
    qsort(s, n, sizeof(double), cmp_double);
    double m = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    free(s);
    return m;
}

static int argmax(const float *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

static void check(pt_status rc, const char *what) {
    if (rc == PT_OK) return;
    fprintf(stderr, "bench_engine: %s: %s\n", what, pt_errmsg());
    exit(1);
}

static void print_runs(const char *key, const double *v, int n) {
    printf(",\"%s\":[", key);
    for (int i = 0; i < n; i++) printf(i ? ",%.1f" : "%.1f", v[i]);
    printf("]");
}

/* Current RssAnon / RssFile from /proc (kB; 0 when unavailable). */
static void rss_parts(long *anon_kb, long *file_kb) {
    *anon_kb = *file_kb = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "RssAnon:", 8)) *anon_kb = atol(line + 8);
        else if (!strncmp(line, "RssFile:", 8)) *file_kb = atol(line + 8);
    }
    fclose(f);
}

static void json_str(const char *key, const char *v) {
    printf(",\"%s\":\"", key);
    for (const char *p = v ? v : ""; *p; p++) {
        if (*p == '"' || *p == '\\') putchar('\\');
        putchar((unsigned char)*p >= 0x20 ? *p : ' ');
    }
    putchar('"');
}

/* GFLOP/s of a 2048^3 sgemm through politune's threading (pt_sgemm_nt). */
static double sgemm_probe(pt_rng *rng) {
    const int S = 2048;
    float *A = malloc(sizeof(float) * S * S), *B = malloc(sizeof(float) * S * S), *C = malloc(sizeof(float) * S * S);
    if (!A || !B || !C) { fprintf(stderr, "bench_engine: out of memory\n"); exit(1); }
    for (size_t i = 0; i < (size_t)S * S; i++) A[i] = B[i] = pt_rng_float(rng) - 0.5f;
    for (int i = 0; i < 2; i++) pt_sgemm_nt(C, A, B, S, S, S, 0);
    double t = now();
    for (int i = 0; i < 5; i++) pt_sgemm_nt(C, A, B, S, S, S, 0);
    double gf = 5 * 2.0 * S * S * (double)S / (now() - t) / 1e9;
    free(A);
    free(B);
    free(C);
    return gf;
}

int main(int argc, char **argv) {
    const char *path = NULL;
    int threads = 2, runs = 5, n_prefill = 512, n_prompt = 128, n_decode = 64, sgemm = 0, blas_only = 0;
    uint64_t seed = 7;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "--threads") && has) threads = atoi(argv[++i]);
        else if (!strcmp(a, "--runs") && has) runs = atoi(argv[++i]);
        else if (!strcmp(a, "--prefill") && has) n_prefill = atoi(argv[++i]);
        else if (!strcmp(a, "--prompt") && has) n_prompt = atoi(argv[++i]);
        else if (!strcmp(a, "--decode") && has) n_decode = atoi(argv[++i]);
        else if (!strcmp(a, "--seed") && has) seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--sgemm")) sgemm = 1;
        else if (!strcmp(a, "--blas-only")) blas_only = 1;
        else if (a[0] != '-' && !path) path = a;
        else {
            fprintf(stderr, "usage: %s MODEL [--threads N] [--runs R] [--prefill T] [--prompt P] [--decode G] "
                            "[--sgemm] [--seed S]\n       %s --blas-only [--threads N]\n", argv[0], argv[0]);
            return 2;
        }
    }
    if (blas_only) {
        /* which OpenBLAS kernel this environment gives the process, and what it delivers */
        pt_backend_set_threads(threads);
        pt_rng rng;
        pt_rng_seed(&rng, seed);
        double gf = sgemm_probe(&rng);
        printf("{\"engine\":\"politune\",\"threads\":%d", threads);
        json_str("openblas_core", openblas_get_corename());
        json_str("env_OPENBLAS_CORETYPE", getenv("OPENBLAS_CORETYPE"));
        printf(",\"sgemm2048_gflops\":%.1f}\n", gf);
        return 0;
    }
    if (!path || runs < 1 || n_prefill < 1 || n_prompt < 1 || n_decode < 1) {
        fprintf(stderr, "bench_engine: need a model path and positive sizes\n");
        return 2;
    }
    pt_backend_set_threads(threads);

    double t0 = now();
    pt_model *m;
    check(pt_model_load(&m, path), path);
    double load_s = now() - t0;
    const pt_config *c = &m->cfg;
    int n_ctx = n_prefill > n_prompt + n_decode ? n_prefill : n_prompt + n_decode;
    pt_engine *e;
    check(pt_engine_new(&e, m, 1, n_ctx), "engine");

    int n_ids = n_prefill > n_prompt ? n_prefill : n_prompt;
    int32_t *ids = malloc(sizeof(int32_t) * n_ids);
    pt_rng rng;
    pt_rng_seed(&rng, seed);
    for (int i = 0; i < n_ids; i++) ids[i] = (int32_t)(pt_rng_next(&rng) % (uint64_t)c->vocab_size);

    const float *logits;
    /* warm-up: faults in the weights and the workspace for the largest batch */
    check(pt_engine_forward_one(e, 0, ids, n_prefill, PT_LOGITS_LAST, &logits), "warm-up");
    check(pt_engine_truncate(e, 0, 0), "truncate");

    double *pre = malloc(sizeof(double) * runs), *dec = malloc(sizeof(double) * runs);
    for (int r = 0; r < runs; r++) {
        check(pt_engine_truncate(e, 0, 0), "truncate");
        double t = now();
        check(pt_engine_forward_one(e, 0, ids, n_prefill, PT_LOGITS_LAST, &logits), "prefill");
        pre[r] = n_prefill / (now() - t);
    }
    int last = 0;
    for (int r = 0; r < runs; r++) {
        check(pt_engine_truncate(e, 0, 0), "truncate");
        check(pt_engine_forward_one(e, 0, ids, n_prompt, PT_LOGITS_LAST, &logits), "prompt");
        int32_t next = argmax(logits, c->vocab_size);
        double t = now();
        for (int i = 0; i < n_decode; i++) {
            check(pt_engine_forward_one(e, 0, &next, 1, PT_LOGITS_LAST, &logits), "decode");
            next = argmax(logits, c->vocab_size);
        }
        dec[r] = n_decode / (now() - t);
        last = next;
    }

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss_mib = ru.ru_maxrss / 1024.0;
    long anon_kb, file_kb;
    rss_parts(&anon_kb, &file_kb);
    size_t kv_bytes = 2 * sizeof(float) * (size_t)c->n_layers * n_ctx * c->n_kv_heads * c->head_dim;

    double sgemm_gflops = sgemm ? sgemm_probe(&rng) : 0;

    const char *dt = pt_dtype_name(m->layers[0].w_gate.dtype);
    const char *ct = getenv("OPENBLAS_CORETYPE"), *l2 = getenv("OPENBLAS_L2_SIZE");
    printf("{\"engine\":\"politune\"");
    json_str("model", path);
    json_str("dtype", dt);
    printf(",\"dim\":%d,\"layers\":%d,\"heads\":%d,\"kv_heads\":%d,\"ffn\":%d,\"vocab\":%d", c->dim, c->n_layers,
           c->n_heads, c->n_kv_heads, c->ffn_dim, c->vocab_size);
    printf(",\"params_m\":%.2f,\"threads\":%d,\"runs\":%d,\"prefill_tokens\":%d,\"prompt_tokens\":%d,\"decode_tokens\":%d",
           pt_model_n_params(m) / 1e6, threads, runs, n_prefill, n_prompt, n_decode);
    printf(",\"prefill_tok_s\":%.1f,\"decode_tok_s\":%.2f", median(pre, runs), median(dec, runs));
    print_runs("prefill_runs", pre, runs);
    print_runs("decode_runs", dec, runs);
    printf(",\"load_s\":%.3f,\"peak_rss_mib\":%.1f,\"weight_mib\":%.1f,\"converted_mib\":%.1f,\"kv_mib\":%.1f,\"engine_mib\":%.1f",
           load_s, rss_mib, m->weight_bytes / 1048576.0, m->converted_bytes / 1048576.0, kv_bytes / 1048576.0,
           pt_engine_bytes(e) / 1048576.0);
    printf(",\"rss_anon_mib\":%.1f,\"rss_file_mib\":%.1f", anon_kb / 1024.0, file_kb / 1024.0);
    json_str("kernels", pt_kern_name());
    json_str("openblas_core", openblas_get_corename());
    json_str("openblas_config", openblas_get_config());
    json_str("env_OPENBLAS_CORETYPE", ct);
    json_str("env_OPENBLAS_L2_SIZE", l2);
    if (sgemm) printf(",\"sgemm2048_gflops\":%.1f", sgemm_gflops);
    printf(",\"last_token\":%d}\n", last);

    free(pre);
    free(dec);
    free(ids);
    pt_engine_free(e);
    pt_model_free(m);
    return 0;
}
