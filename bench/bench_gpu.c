/* GPU inference benchmark (issue #12), the counterpart of the generation part of
 * shared/tools/peer_peft_gpu.py: a Llama-3-8B-shaped model (D 4096, 32 heads, 8 KV heads, FFN
 * 14336, vocab 128256, rope theta 5e5; --layers of them) with random weights, a prompt of 96
 * random ids per sequence, then 128 greedy new tokens (one prefill pass whose logits give the
 * first, 127 decode passes), for batches of 1 and 16 sequences, as transformers' generate
 * does in the peer. Prints one JSON line per batch size with the median of --runs runs:
 * prefill seconds, decode tokens/s and the peer's figure, generated tokens / total seconds.
 * One engine with as many slots as the largest batch serves every batch size, so the weights
 * are uploaded once (engine_open_s); on the GPU the engine's whole forward step runs there
 * (src/backend/cuda/cuda_engine.cu).
 *
 * --compass N (0: off) then times a compass-shaped workload in log-prob mode the way
 * src/eval/compass_logprob.c runs it: N prompts of --compass-prompt random ids in batches of
 * 32 slots, one prefill step per batch with the last row's logits, then for each of 4 answer
 * options one step of 2 more tokens per prompt with every row's logits, the slots truncated
 * back to the prompt after each. 744 = 62 items x 12 variants. The model has no tokenizer, so
 * this is the engine's share of a compass run, not the command end to end.
 *
 * The model is built in memory, not read from a file (a 16 GB file would cost the device
 * call minutes): Q8_0 matrices of random int8 with scales giving the peer's magnitudes
 * (N(0,1)/sqrt(in) matrices, 0.02 embedding), which the CUDA backend dequantises to bf16 on
 * the GPU, so what runs there is a bf16 model like the peer's.
 *
 * usage: bench_gpu [--layers L] [--runs R] [--batch 1,16] [--prompt P] [--new G]
 *                  [--device cuda|cpu] [--precision bf16|f32] [--dim D --heads H --kv KV --ffn F --vocab V]
 *                  [--compass N] [--compass-prompt P]
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "engine/engine.h"
#include "model/model.h"
#ifdef PT_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double median(double *v, int n) {
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* (rows, cols) Q8_0 of random int8 in [-127, 127] (sd ~73) scaled to sd `sd` */
static void *random_q8_0(int rows, int cols, float sd, uint64_t seed) {
    const int64_t nb = (int64_t)rows * cols / 32;
    uint8_t *buf = malloc((size_t)nb * 34);
    if (!buf) return NULL;
    const uint16_t d = pt_f32_to_f16(sd / 73.3f);
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *blk = buf + b * 34;
        memcpy(blk, &d, 2);
        for (int j = 0; j < 32; j += 8) {
            uint64_t r = mix64(seed * 0x9e3779b97f4a7c15ull + (uint64_t)b * 4 + j / 8);
            for (int k = 0; k < 8; k++) {
                int8_t q = (int8_t)((r >> (8 * k)) & 0xff);
                blk[2 + j + k] = (uint8_t)(q == -128 ? -127 : q);
            }
        }
    }
    return buf;
}

typedef struct {
    int dim, layers, heads, kv, ffn, vocab;
} shape;

static pt_status build_model(pt_model *m, const shape *s) {
    memset(m, 0, sizeof *m);
    pt_config *c = &m->cfg;
    c->arch = PT_ARCH_LLAMA, c->dim = s->dim, c->n_layers = s->layers, c->n_heads = s->heads, c->n_kv_heads = s->kv;
    c->head_dim = s->dim / s->heads, c->ffn_dim = s->ffn, c->vocab_size = s->vocab, c->max_ctx = 8192;
    c->norm_eps = 1e-5f, c->rope_theta = 500000.0f, c->bos_id = -1, c->eos_id = -1;
    const int D = s->dim, Q = s->heads * c->head_dim, KV = s->kv * c->head_dim, F = s->ffn;
    m->layers = calloc((size_t)s->layers, sizeof *m->layers);
    float *ones = malloc(sizeof(float) * (D > F ? D : F));
    m->inv_freq = malloc(sizeof(double) * (c->head_dim / 2));
    if (!m->layers || !ones || !m->inv_freq) return pt_error(PT_ERR_OOM, "out of memory");
    for (int i = 0; i < (D > F ? D : F); i++) ones[i] = 1.0f;
    pt_rope_inv_freq(m->inv_freq, c);
    m->out_norm = ones;
    uint64_t seed = 1;
#define MAT(W, r, k, sd)                                                                     \
    do {                                                                                   \
        void *p_ = random_q8_0((r), (k), (sd), seed++);                                   \
        if (!p_) return pt_error(PT_ERR_OOM, "out of memory for a %d x %d matrix", (r), (k)); \
        (W) = (pt_weight){PT_Q8_0, (r), (k), p_};                                          \
        m->weight_bytes += (size_t)(r) * (k) / 32 * 34;                                    \
    } while (0)
    MAT(m->tok_emb, s->vocab, D, 0.02f);
    MAT(m->output, s->vocab, D, 1.0f / sqrtf((float)D));
    for (int l = 0; l < s->layers; l++) {
        pt_layer *L = &m->layers[l];
        L->attn_norm = ones, L->ffn_norm = ones;
        MAT(L->wq, Q, D, 1.0f / sqrtf((float)D));
        MAT(L->wk, KV, D, 1.0f / sqrtf((float)D));
        MAT(L->wv, KV, D, 1.0f / sqrtf((float)D));
        MAT(L->wo, D, Q, 1.0f / sqrtf((float)Q));
        MAT(L->w_gate, F, D, 1.0f / sqrtf((float)D));
        MAT(L->w_up, F, D, 1.0f / sqrtf((float)D));
        MAT(L->w_down, D, F, 1.0f / sqrtf((float)F));
    }
#undef MAT
    return PT_OK;
}

/* One generation of `gen` new tokens after `prompt` random ids in each of B slots; returns
 * the prefill and total seconds. */
static pt_status generate(pt_engine *e, int B, int prompt, int gen, uint64_t seed, double *t_prefill, double *t_total) {
    const pt_model *m = pt_engine_model(e);
    const int V = m->cfg.vocab_size;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)B * prompt), *next = malloc(sizeof(int32_t) * B);
    int *slots = malloc(sizeof(int) * B), *lens = malloc(sizeof(int) * B);
    const int32_t **rows = malloc(sizeof(int32_t *) * B);
    pt_status st = ids && next && slots && lens && rows ? PT_OK : pt_error(PT_ERR_OOM, "out of memory");
    for (int i = 0; !st && i < B * prompt; i++) ids[i] = (int32_t)(mix64(seed + i) % (uint64_t)V);
    for (int s = 0; !st && s < B; s++) {
        slots[s] = s, lens[s] = prompt, rows[s] = ids + (size_t)s * prompt;
        st = pt_engine_truncate(e, s, 0);
    }
    double t0 = now();
    const float *lg = NULL;
    pt_batch b = {B, slots, rows, lens};
    if (!st) st = pt_engine_forward(e, &b, PT_LOGITS_LAST, &lg);
    *t_prefill = now() - t0;
    for (int g = 0; !st && g < gen; g++) {
        for (int s = 0; s < B; s++) {
            const float *row = lg + (size_t)s * V;
            int best = 0;
            for (int i = 1; i < V; i++) best = row[i] > row[best] ? i : best;
            next[s] = best, lens[s] = 1, rows[s] = &next[s];
        }
        if (g == gen - 1) break; /* the last token needs no forward pass */
        st = pt_engine_forward(e, &b, PT_LOGITS_LAST, &lg);
    }
    *t_total = now() - t0;
    free(ids), free(next), free(slots), free(lens), free(rows);
    return st;
}

/* The compass-shaped workload (see the top): seconds for n prompts of `prompt` ids. */
static pt_status compass_shaped(pt_engine *e, int n, int prompt, double *seconds) {
    enum { BC = 32, OPTIONS = 4, OPTION_TOKENS = 2 };
    const int V = pt_engine_model(e)->cfg.vocab_size;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)BC * prompt), opt[BC][OPTION_TOKENS];
    if (!ids) return pt_error(PT_ERR_OOM, "out of memory");
    int slots[BC], lens[BC];
    const int32_t *rows[BC];
    pt_status st = PT_OK;
    double t0 = now(), sink = 0;
    for (int start = 0; start < n && !st; start += BC) {
        const int nb = n - start < BC ? n - start : BC;
        for (int i = 0; i < nb * prompt; i++) ids[i] = (int32_t)(mix64(77 + (uint64_t)start * prompt + i) % (uint64_t)V);
        for (int b = 0; b < nb && !st; b++) {
            slots[b] = b, lens[b] = prompt, rows[b] = ids + (size_t)b * prompt;
            st = pt_engine_truncate(e, b, 0);
        }
        const float *lg = NULL;
        pt_batch batch = {nb, slots, rows, lens};
        if (!st) st = pt_engine_forward(e, &batch, PT_LOGITS_LAST, &lg);
        if (!st) sink += lg[0];
        for (int k = 0; k < OPTIONS && !st; k++) {
            for (int b = 0; b < nb; b++) {
                for (int j = 0; j < OPTION_TOKENS; j++) opt[b][j] = (int32_t)(mix64(1000 + k * 7 + j) % (uint64_t)V);
                lens[b] = OPTION_TOKENS, rows[b] = opt[b];
            }
            st = pt_engine_forward(e, &batch, PT_LOGITS_ALL, &lg);
            if (!st) sink += lg[0];
            for (int b = 0; b < nb && !st; b++) st = pt_engine_truncate(e, b, prompt);
        }
    }
    *seconds = now() - t0;
    free(ids);
    return isfinite(sink) || st ? st : pt_error(PT_ERR_NUMERIC, "non-finite logits");
}

int main(int argc, char **argv) {
    shape s = {4096, 32, 32, 8, 14336, 128256};
    int runs = 3, prompt = 96, gen = 128, batches[8] = {1, 16}, n_batches = 2;
    const char *device = "cuda", *precision = "bf16";
    int compass = 0, compass_prompt = 80;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) { fprintf(stderr, "bench_gpu: %s needs a value\n", a); return 2; }
        if (!strcmp(a, "--layers")) s.layers = atoi(v);
        else if (!strcmp(a, "--dim")) s.dim = atoi(v);
        else if (!strcmp(a, "--heads")) s.heads = atoi(v);
        else if (!strcmp(a, "--kv")) s.kv = atoi(v);
        else if (!strcmp(a, "--ffn")) s.ffn = atoi(v);
        else if (!strcmp(a, "--vocab")) s.vocab = atoi(v);
        else if (!strcmp(a, "--runs")) runs = atoi(v);
        else if (!strcmp(a, "--prompt")) prompt = atoi(v);
        else if (!strcmp(a, "--new")) gen = atoi(v);
        else if (!strcmp(a, "--device")) device = v;
        else if (!strcmp(a, "--precision")) precision = v;
        else if (!strcmp(a, "--compass")) compass = atoi(v);
        else if (!strcmp(a, "--compass-prompt")) compass_prompt = atoi(v);
        else if (!strcmp(a, "--batch")) {
            n_batches = 0;
            for (char *p = (char *)v; *p && n_batches < 8; p++) {
                batches[n_batches++] = (int)strtol(p, &p, 10);
                if (!*p) break;
            }
        } else { fprintf(stderr, "bench_gpu: unknown option %s\n", a); return 2; }
        i++;
    }
    if (s.layers < 1 || runs < 1 || prompt < 1 || gen < 1 || s.dim % s.heads || s.heads % s.kv || s.dim % 32 || s.ffn % 32) {
        fprintf(stderr, "bench_gpu: bad sizes\n");
        return 2;
    }
    pt_backend_options bo = {PT_DEVICE_CUDA, PT_CUDA_BF16};
    if (pt_device_parse(device, &bo.device) || pt_cuda_precision_parse(precision, &bo.precision)) {
        fprintf(stderr, "bench_gpu: %s\n", pt_errmsg());
        return 2;
    }
    if (pt_backend_configure(&bo)) { fprintf(stderr, "bench_gpu: %s\n", pt_errmsg()); return 1; }
    const pt_device dev = pt_backend_current()->device;
    (void)dev; /* used in CUDA builds only */
    size_t total_b = 0, free_b = 0;
    (void)total_b;
#ifdef PT_HAVE_CUDA
    char gpu_name[256] = "";
    if (dev != PT_DEVICE_CPU) pt_cuda_device_info(gpu_name, sizeof gpu_name, &total_b, &free_b);
#else
    const char *gpu_name = "";
#endif
    double t0 = now();
    pt_model m;
    if (build_model(&m, &s)) { fprintf(stderr, "bench_gpu: %s\n", pt_errmsg()); return 1; }
    double t_build = now() - t0;
    printf("{\"bench\":\"politune_gpu_setup\",\"backend\":\"%s\",\"precision\":\"%s\",\"gpu\":\"%s\",\"layers\":%d,\"params_b\":%.3f,"
           "\"build_model_s\":%.2f}\n",
           pt_backend_current()->name, precision, gpu_name, s.layers, pt_model_n_params(&m) / 1e9, t_build);
    fflush(stdout);
    int rc = 0, slots = compass > 0 ? 32 : 1, ctx = prompt + gen;
    for (int bi = 0; bi < n_batches; bi++) slots = batches[bi] > slots ? batches[bi] : slots;
    if (compass > 0 && compass_prompt + 2 > ctx) ctx = compass_prompt + 2;
    pt_engine *e = NULL;
    t0 = now();
    if (pt_engine_new(&e, &m, slots, ctx)) { fprintf(stderr, "bench_gpu: %s\n", pt_errmsg()); return 1; }
    double t_open = now() - t0;
    size_t free_after = free_b;
#ifdef PT_HAVE_CUDA
    if (dev != PT_DEVICE_CPU) pt_cuda_device_info(gpu_name, sizeof gpu_name, &total_b, &free_after);
#endif
    printf("{\"bench\":\"politune_engine_open\",\"slots\":%d,\"ctx\":%d,\"engine_open_s\":%.2f,\"gpu_used_by_engine_gib\":%.2f}\n", slots, ctx,
           t_open, (double)(free_b - free_after) / 1073741824.0);
    fflush(stdout);
    for (int bi = 0; bi < n_batches && !rc; bi++) {
        const int B = batches[bi];
        double tp, tt, warm0 = now();
        if (generate(e, B, prompt, 8 < gen ? 8 : gen, 7, &tp, &tt)) { fprintf(stderr, "bench_gpu: %s\n", pt_errmsg()); rc = 1; }
        double warm = now() - warm0;
        double pre[32], tot[32], dec[32];
        int n = 0;
        for (int r = 0; r < runs && r < 32 && !rc; r++, n++) {
            if (generate(e, B, prompt, gen, 1000 + r, &pre[r], &tot[r])) { fprintf(stderr, "bench_gpu: %s\n", pt_errmsg()); rc = 1; break; }
            dec[r] = B * (gen - 1) / (tot[r] - pre[r]);
        }
        if (n == runs) {
            double tot_runs[32];
            memcpy(tot_runs, tot, sizeof tot_runs);
            printf("{\"bench\":\"politune_generate\",\"batch\":%d,\"prompt\":%d,\"new_tokens\":%d,\"runs\":%d,\"warmup_s\":%.2f,"
                   "\"prefill_s_median\":%.4f,\"prefill_tokens_per_s\":%.1f,\"decode_tokens_per_s_median\":%.1f,\"s_median\":%.3f,"
                   "\"tokens_per_s\":%.1f,\"s_all\":[",
                   B, prompt, gen, runs, warm, median(pre, n), B * prompt / median(pre, n), median(dec, n), median(tot, n),
                   B * gen / median(tot, n));
            for (int r = 0; r < n; r++) printf("%s%.3f", r ? "," : "", tot_runs[r]);
            printf("]}\n");
            fflush(stdout);
        }
    }
    if (compass > 0 && !rc) {
        double warm, t[32];
        int n = 0;
        if (compass_shaped(e, 32, compass_prompt, &warm)) { fprintf(stderr, "bench_gpu: %s\n", pt_errmsg()); rc = 1; }
        for (int r = 0; r < runs && r < 32 && !rc; r++, n++)
            if (compass_shaped(e, compass, compass_prompt, &t[r])) { fprintf(stderr, "bench_gpu: %s\n", pt_errmsg()); rc = 1; }
        if (!rc)
            printf("{\"bench\":\"politune_compass_shaped\",\"prompts\":%d,\"prompt_tokens\":%d,\"options\":4,\"option_tokens\":2,"
                   "\"batch\":32,\"runs\":%d,\"s_median\":%.3f,\"prompts_per_s\":%.1f}\n",
                   compass, compass_prompt, n, median(t, n), compass / median(t, n));
        fflush(stdout);
    }
    pt_engine_free(e);
    return rc;
}
