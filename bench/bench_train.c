/* LoRA DPO training step benchmark (issue #3): the step the PyTorch peer
 * (shared/tools/peer_torch_llama.py) times, on the same ~125M Llama-shaped model: `pairs`
 * chosen/rejected pairs of `seq` random tokens each, the first seq/4 the prompt, LoRA rank 16,
 * alpha 32 on q, v, gate, up, down and the output head; per step a reference pass (adapter
 * off), the policy pass, the sigmoid DPO loss (beta 0.1), the backward pass and AdamW
 * (lr 5e-4, weight decay 0.05). One warm-up step, then the median of `steps`.
 *
 * Prints one JSON object: tokens/s, seconds per step and per phase, the estimated GFLOP/s of
 * the step, activation bytes, peak RSS, and the 2048^2 sgemm GFLOP/s of this process's
 * threaded products (the best of samples before and after the steps: on a shared machine a
 * single sample is often taken at a busy moment).
 *
 * usage: bench_train [--model DIR] [--pairs 4] [--seq 256] [--rank 16] [--alpha 32]
 *                    [--targets q,v,gate,up,down,head] [--steps 3] [--threads 2] [--recompute]
 *                    [--json FILE]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../tests/internal.h"
#include "train/batch.h"
#include "train/loss.h"
#include "train/metrics.h"
#include "train/optim.h"
#include "train/params.h"
#include "train/tmodel.h"
#include "util/rng.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void die(const char *what) {
    fprintf(stderr, "bench_train: %s: %s\n", what, pt_errmsg());
    exit(1);
}

/* GFLOP/s of a 2048^2 product through the backend's threaded GEMM (BLAS runs single-threaded
 * under it), the figure the peer prints for its own BLAS; best of three. */
static double sgemm_gflops(void) {
    const int S = 2048;
    float *a = malloc(sizeof(float) * S * S), *b = malloc(sizeof(float) * S * S), *c = malloc(sizeof(float) * S * S);
    for (int i = 0; i < S * S; i++) a[i] = (float)(i % 7) - 3, b[i] = (float)(i % 5) - 2;
    pt_sgemm_nt(c, a, b, S, S, S, 0);
    double best = 0;
    for (int k = 0; k < 3; k++) {
        double t0 = now_s();
        pt_sgemm_nt(c, a, b, S, S, S, 0);
        double g = 2.0 * S * S * (double)S / (now_s() - t0) / 1e9;
        best = g > best ? g : best;
    }
    free(a), free(b), free(c);
    return best;
}

/* FLOPs of one linear (n rows, in -> out), with the LoRA path when r > 0. */
static double lin_flops(double n, double in, double out, double r) { return 2 * n * in * out + (r > 0 ? 2 * n * r * (in + out) : 0); }

int main(int argc, char **argv) {
    const char *model = "bench/out/hf-f32", *targets = "q,v,gate,up,down,head", *json = NULL;
    int pairs = 4, seq = 256, rank = 16, steps = 3, threads = 2, recompute = 0;
    double alpha = 32;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--recompute")) { recompute = 1; continue; }
        if (!v) { fprintf(stderr, "bench_train: %s needs a value\n", a); return 2; }
        if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--pairs")) pairs = atoi(v);
        else if (!strcmp(a, "--seq")) seq = atoi(v);
        else if (!strcmp(a, "--rank")) rank = atoi(v);
        else if (!strcmp(a, "--alpha")) alpha = atof(v);
        else if (!strcmp(a, "--targets")) targets = v;
        else if (!strcmp(a, "--steps")) steps = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--json")) json = v;
        else { fprintf(stderr, "bench_train: unknown option %s\n", a); return 2; }
        i++;
    }
    if (pairs < 1 || seq < 8 || steps < 1) { fprintf(stderr, "bench_train: bad sizes\n"); return 2; }
    pt_backend_set_threads(threads);

    const double sgemm_start = sgemm_gflops();
    pt_model *m = NULL;
    if (pt_model_load(&m, model)) die(model);
    unsigned mask;
    if (pt_lora_parse_targets(targets, &mask)) die("targets");
    pt_adapter *a = NULL;
    if (pt_adapter_new(&a, m, rank, (float)alpha, mask, false, 0.0f, 1)) die("adapter");
    pt_lora_params ps;
    if (pt_lora_params_init(&ps, a)) die("params");
    const int n_seq = 2 * pairs, N = n_seq * seq, np = seq / 4;
    pt_tmodel_shape shape = {.max_seq = n_seq, .max_tok = N, .max_len = seq, .recompute = recompute != 0};
    pt_tmodel *t = NULL;
    if (pt_tmodel_new(&t, m, a, &ps, &shape)) die("training buffers");
    pt_tbatch b;
    if (pt_tbatch_init(&b, n_seq, N)) die("batch");
    double *ref = malloc(sizeof(double) * N), *pol = malloc(sizeof(double) * N), sref[64], spol[64];
    double *coef = malloc(sizeof(double) * N);
    int32_t *ids = malloc(sizeof(int32_t) * seq);
    pt_rng rng;
    pt_rng_seed(&rng, 42);
    const pt_adamw opt = {0.9, 0.999, 1e-8, 0.05};
    double *tstep = malloc(sizeof(double) * steps), *tref = malloc(sizeof(double) * steps), *tpol = malloc(sizeof(double) * steps),
           *tbwd = malloc(sizeof(double) * steps), *topt = malloc(sizeof(double) * steps);
    double loss = 0;
    for (int s = -1; s < steps; s++) {
        /* fresh random pairs every step, as the peer draws them */
        pt_tbatch_clear(&b);
        for (int q = 0; q < n_seq; q++) {
            for (int j = 0; j < seq; j++) ids[j] = (int32_t)(pt_rng_next(&rng) % (uint64_t)m->cfg.vocab_size);
            pt_tbatch_add(&b, ids, np, ids + np, seq - np);
        }
        double c0 = now_s();
        if (pt_tmodel_forward(t, &b, false, false, 0, ref)) die("reference pass");
        double c1 = now_s();
        if (pt_tmodel_forward(t, &b, true, true, (uint64_t)s, pol)) die("policy pass");
        double c2 = now_s();
        for (int q = 0; q < n_seq; q++) sref[q] = spol[q] = 0;
        for (int i = 0; i < b.n_loss; i++) sref[b.loss_seq[i]] += ref[i], spol[b.loss_seq[i]] += pol[i];
        double dq[64];
        loss = 0;
        for (int p = 0; p < pairs; p++) {
            double d_pc, d_pr;
            loss += pt_dpo_loss(PT_DPO_SIGMOID, 0.1, 0, spol[p], spol[pairs + p], sref[p], sref[pairs + p], &d_pc, &d_pr) / pairs;
            dq[p] = d_pc / pairs, dq[pairs + p] = d_pr / pairs; /* chosen first, then rejected, like the peer */
        }
        for (int i = 0; i < b.n_loss; i++) coef[i] = dq[b.loss_seq[i]];
        pt_tmodel_backward(t, &b, coef);
        double c3 = now_s();
        int64_t off = 0;
        for (int i = 0; i < ps.n; off += ps.numel[i], i++) pt_adamw_step(&opt, 5e-4, s + 2, ps.p[i], ps.g[i], ps.m + off, ps.v + off, ps.numel[i]);
        pt_lora_params_zero_grad(&ps);
        double c4 = now_s();
        if (s >= 0) tstep[s] = c4 - c0, tref[s] = c1 - c0, tpol[s] = c2 - c1, tbwd[s] = c3 - c2, topt[s] = c4 - c3;
        fprintf(stderr, "bench_train: step %d: %.2f s (reference %.2f, policy %.2f, backward %.2f, adamw %.3f), loss %.4f\n", s + 1,
                c4 - c0, c1 - c0, c2 - c1, c3 - c2, c4 - c3, loss);
    }

    /* FLOPs of the step: reference and policy forward passes, and the backward pass's input
     * gradients (frozen weights: no weight gradients) plus LoRA gradients; attention counts
     * whole (T, T) products as computed. */
    const pt_config *c = &m->cfg;
    const double D = c->dim, Q = c->n_heads * c->head_dim, KV = c->n_kv_heads * c->head_dim, F = c->ffn_dim, V = c->vocab_size;
    const double M = (double)pairs * 2 * (seq - np), T = seq;
    double r = rank;
    bool on[8];
    for (int k = 0; k < 8; k++) on[k] = mask & (1u << k);
    double fwd_base = c->n_layers * (lin_flops(N, D, Q, 0) + 2 * lin_flops(N, D, KV, 0) + lin_flops(N, Q, D, 0) + 2 * lin_flops(N, D, F, 0) +
                                     lin_flops(N, F, D, 0) + n_seq * c->n_heads * 4.0 * T * T * c->head_dim) +
                      lin_flops(M, D, V, 0);
    double lora = c->n_layers * ((on[0] ? 2 * N * r * (D + Q) : 0) + (on[1] ? 2 * N * r * (D + KV) : 0) + (on[2] ? 2 * N * r * (D + KV) : 0) +
                                 (on[3] ? 2 * N * r * (Q + D) : 0) + (on[4] ? 2 * N * r * (D + F) : 0) + (on[5] ? 2 * N * r * (D + F) : 0) +
                                 (on[6] ? 2 * N * r * (F + D) : 0)) +
                  (on[7] ? 2 * M * r * (D + V) : 0);
    double bwd = fwd_base + c->n_layers * n_seq * c->n_heads * 6.0 * T * T * c->head_dim + 2 * lora;
    double flops = 2 * fwd_base + lora + bwd;
    const double step_s = median(tstep, steps), sgemm_end = sgemm_gflops();
    const double sgemm_best = sgemm_end > sgemm_start ? sgemm_end : sgemm_start;
    char out[2048];
    snprintf(out, sizeof out,
             "{\"impl\":\"politune\",\"threads\":%d,\"pairs\":%d,\"seq\":%d,\"rank\":%d,\"alpha\":%g,\"targets\":\"%s\",\"recompute\":%s,"
             "\"params_m\":%.1f,\"trainable_m\":%.3f,\"dpo_step_s\":%.3f,\"dpo_tok_s\":%.1f,\"reference_s\":%.3f,\"policy_s\":%.3f,"
             "\"backward_s\":%.3f,\"adamw_s\":%.4f,\"step_tflop\":%.3f,\"gflops\":%.1f,\"activation_mib\":%.1f,\"peak_rss_mib\":%.1f,"
             "\"sgemm2048_gflops\":%.1f,\"loss\":%.6f}",
             threads, pairs, seq, rank, alpha, targets, recompute ? "true" : "false", pt_model_n_params(m) / 1e6, ps.total / 1e6, step_s,
             n_seq * seq / step_s, median(tref, steps), median(tpol, steps), median(tbwd, steps), median(topt, steps), flops / 1e12,
             flops / step_s / 1e9, pt_tmodel_bytes(t) / 1048576.0, pt_peak_rss_mib(), sgemm_best, loss);
    puts(out);
    if (json) {
        FILE *f = fopen(json, "w");
        if (f) fprintf(f, "%s\n", out), fclose(f);
    }
    free(ids), free(ref), free(pol), free(coef), free(tstep), free(tref), free(tpol), free(tbwd), free(topt);
    pt_tbatch_free(&b);
    pt_tmodel_free(t);
    pt_lora_params_free(&ps);
    pt_adapter_free(a);
    pt_model_free(m);
    return 0;
}
