/* Writes the random Llama-shaped benchmark model (issue #2: D 768, 12 layers, 12 heads,
 * 4 KV heads, FFN 2048, vocab 32000, ~125M parameters) in every form the engine benchmark
 * loads: a Hugging Face directory (config.json + model.safetensors, F32) and GGUF files in
 * F32, Q8_0 and Q4_0. Weights follow the PyTorch peer's recipe (matrices ~N(0,1)/sqrt(in),
 * the embedding ~N(0,1)*0.02, norms 1) so both sides run the same arithmetic on the same kind
 * of numbers; values are not bit-identical with the peer's (different generators), which
 * timing does not care about.
 *
 * Each tensor is drawn from its own seeded stream, so it can be regenerated on demand: the
 * GGUF files are written one tensor at a time without holding the float32 model twice.
 *
 * usage: make_model [--out DIR] [--seed N] [--dim D --layers L --heads H --kv KV --ffn F
 *                    --vocab V --ctx C] [--no-q4]
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "format/gguf.h"
#include "format/safetensors.h"
#include "util/rng.h"
#include "util/status.h"

typedef struct {
    int dim, layers, heads, kv, ffn, vocab, ctx;
    uint64_t seed;
} spec;

/* Tensor kinds, in the order they are generated (the index seeds each stream). */
enum { T_EMB, T_NORM, T_HEAD, T_ATTN_NORM, T_Q, T_K, T_V, T_O, T_FFN_NORM, T_GATE, T_UP, T_DOWN, T_PER_LAYER_FIRST = T_ATTN_NORM };

static const char *hf_layer[] = {
    [T_ATTN_NORM] = "input_layernorm.weight", [T_Q] = "self_attn.q_proj.weight", [T_K] = "self_attn.k_proj.weight",
    [T_V] = "self_attn.v_proj.weight", [T_O] = "self_attn.o_proj.weight",
    [T_FFN_NORM] = "post_attention_layernorm.weight", [T_GATE] = "mlp.gate_proj.weight",
    [T_UP] = "mlp.up_proj.weight", [T_DOWN] = "mlp.down_proj.weight",
};
static const char *gguf_layer[] = {
    [T_ATTN_NORM] = "attn_norm.weight", [T_Q] = "attn_q.weight", [T_K] = "attn_k.weight", [T_V] = "attn_v.weight",
    [T_O] = "attn_output.weight", [T_FFN_NORM] = "ffn_norm.weight", [T_GATE] = "ffn_gate.weight",
    [T_UP] = "ffn_up.weight", [T_DOWN] = "ffn_down.weight",
};

/* Shape (rows, cols) of a tensor kind; cols 0 for vectors. */
static void shape_of(const spec *s, int kind, int *rows, int *cols) {
    int hd = s->dim / s->heads;
    switch (kind) {
    case T_EMB: case T_HEAD: *rows = s->vocab; *cols = s->dim; break;
    case T_NORM: case T_ATTN_NORM: case T_FFN_NORM: *rows = s->dim; *cols = 0; break;
    case T_Q: *rows = s->heads * hd; *cols = s->dim; break;
    case T_K: case T_V: *rows = s->kv * hd; *cols = s->dim; break;
    case T_O: *rows = s->dim; *cols = s->heads * hd; break;
    case T_GATE: case T_UP: *rows = s->ffn; *cols = s->dim; break;
    default: *rows = s->dim; *cols = s->ffn; break; /* T_DOWN */
    }
}

/* Fills a freshly malloc'd tensor: norms are ones, the embedding N(0, 0.02^2), every other
 * matrix N(0, 1/in), drawn by Box-Muller from the stream of (seed, layer, kind). */
static float *make_tensor(const spec *s, int layer, int kind, size_t *numel) {
    int rows, cols;
    shape_of(s, kind, &rows, &cols);
    size_t n = (size_t)rows * (cols ? cols : 1);
    float *t = malloc(sizeof(float) * n);
    if (!t) { fprintf(stderr, "make_model: out of memory\n"); exit(1); }
    *numel = n;
    if (!cols) {
        for (size_t i = 0; i < n; i++) t[i] = 1.0f;
        return t;
    }
    pt_rng r;
    pt_rng_seed(&r, s->seed * 0x9E3779B97F4A7C15ull + (uint64_t)(layer + 1) * 64 + (uint64_t)kind);
    double sd = kind == T_EMB ? 0.02 : 1.0 / sqrt((double)cols);
    for (size_t i = 0; i < n; i += 2) {
        double u1 = 1.0 - pt_rng_double(&r), u2 = pt_rng_double(&r); /* u1 in (0, 1] */
        double rad = sqrt(-2.0 * log(u1)) * sd;
        t[i] = (float)(rad * cos(2 * M_PI * u2));
        if (i + 1 < n) t[i + 1] = (float)(rad * sin(2 * M_PI * u2));
    }
    return t;
}

/* GGUF llama files keep Q/K rows in Meta's interleaved rotary order: within each head of
 * dim d, GGUF row 2i is HF row i and GGUF row 2i+1 is HF row i + d/2. */
static float *permute_rows(const float *hf, int rows, int cols, int d) {
    float *g = malloc(sizeof(float) * (size_t)rows * cols);
    if (!g) { fprintf(stderr, "make_model: out of memory\n"); exit(1); }
    for (int r = 0; r < rows; r++) {
        int h = r / d, j = r % d;
        int src = h * d + (j % 2 == 0 ? j / 2 : j / 2 + d / 2);
        memcpy(g + (size_t)r * cols, hf + (size_t)src * cols, sizeof(float) * cols);
    }
    return g;
}

static void die_status(pt_status rc, const char *what) {
    if (rc == PT_OK) return;
    fprintf(stderr, "make_model: %s: %s\n", what, pt_errmsg());
    exit(1);
}

static void write_hf(const spec *s, const char *dir) {
    char path[1100];
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) { perror(dir); exit(1); }
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) { perror(path); exit(1); }
    fprintf(f,
            "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"model_type\": \"llama\",\n"
            "  \"hidden_size\": %d,\n  \"num_hidden_layers\": %d,\n  \"num_attention_heads\": %d,\n"
            "  \"num_key_value_heads\": %d,\n  \"intermediate_size\": %d,\n  \"vocab_size\": %d,\n"
            "  \"max_position_embeddings\": %d,\n  \"rms_norm_eps\": 1e-05,\n  \"rope_theta\": 10000.0,\n"
            "  \"tie_word_embeddings\": false,\n  \"attention_bias\": false,\n  \"hidden_act\": \"silu\",\n"
            "  \"torch_dtype\": \"float32\"\n}\n",
            s->dim, s->layers, s->heads, s->kv, s->ffn, s->vocab, s->ctx);
    fclose(f);

    /* safetensors are written in one call, so the whole float32 model is held here once */
    int n = 3 + 9 * s->layers;
    pt_safetensors_entry *e = calloc((size_t)n, sizeof *e);
    char (*names)[96] = calloc((size_t)n, sizeof *names);
    if (!e || !names) { fprintf(stderr, "make_model: out of memory\n"); exit(1); }
    for (int i = 0; i < n; i++) {
        int layer = i < 3 ? -1 : (i - 3) / 9;
        int kind = i < 3 ? (int[]){T_EMB, T_NORM, T_HEAD}[i] : T_PER_LAYER_FIRST + (i - 3) % 9;
        if (layer < 0) snprintf(names[i], sizeof names[i], "%s", kind == T_EMB ? "model.embed_tokens.weight" : kind == T_NORM ? "model.norm.weight" : "lm_head.weight");
        else snprintf(names[i], sizeof names[i], "model.layers.%d.%s", layer, hf_layer[kind]);
        int rows, cols;
        size_t numel;
        shape_of(s, kind, &rows, &cols);
        e[i] = (pt_safetensors_entry){.name = names[i], .dtype = PT_F32, .n_dims = cols ? 2 : 1,
                                      .shape = {rows, cols}, .data = make_tensor(s, layer, kind, &numel)};
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    die_status(pt_safetensors_write(path, e, n, (const char *const[]){"format", "pt", NULL}), path);
    for (int i = 0; i < n; i++) free((void *)e[i].data);
    free(names);
    free(e);
}

static void write_gguf(const spec *s, const char *path, pt_dtype dtype) {
    pt_gguf_writer *w = pt_gguf_writer_new();
    if (!w) { fprintf(stderr, "make_model: out of memory\n"); exit(1); }
    pt_gguf_set_str(w, "general.architecture", "llama");
    pt_gguf_set_str(w, "general.name", "politune-bench-125m");
    pt_gguf_set_u32(w, "llama.block_count", (uint32_t)s->layers);
    pt_gguf_set_u32(w, "llama.context_length", (uint32_t)s->ctx);
    pt_gguf_set_u32(w, "llama.embedding_length", (uint32_t)s->dim);
    pt_gguf_set_u32(w, "llama.feed_forward_length", (uint32_t)s->ffn);
    pt_gguf_set_u32(w, "llama.attention.head_count", (uint32_t)s->heads);
    pt_gguf_set_u32(w, "llama.attention.head_count_kv", (uint32_t)s->kv);
    pt_gguf_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    pt_gguf_set_f32(w, "llama.rope.freq_base", 10000.0f);
    pt_gguf_set_u32(w, "llama.vocab_size", (uint32_t)s->vocab);
    const int hd = s->dim / s->heads;
    char name[96];
    /* norms stay F32 (as llama.cpp's quantizer leaves 1-D tensors); matrices take `dtype` */
    for (int i = -3; i < 9 * s->layers; i++) {
        int layer = i < 0 ? -1 : i / 9;
        int kind = i < 0 ? (int[]){T_EMB, T_NORM, T_HEAD}[i + 3] : T_PER_LAYER_FIRST + i % 9;
        int rows, cols;
        shape_of(s, kind, &rows, &cols);
        size_t numel;
        float *t = make_tensor(s, layer, kind, &numel);
        if (kind == T_Q || kind == T_K) {
            float *p = permute_rows(t, rows, cols, hd);
            free(t);
            t = p;
        }
        if (layer < 0) snprintf(name, sizeof name, "%s", kind == T_EMB ? "token_embd.weight" : kind == T_NORM ? "output_norm.weight" : "output.weight");
        else snprintf(name, sizeof name, "blk.%d.%s", layer, gguf_layer[kind]);
        int64_t shape[2] = {rows, cols};
        die_status(pt_gguf_add_tensor(w, name, cols ? dtype : PT_F32, shape, cols ? 2 : 1, t), name);
        free(t);
    }
    die_status(pt_gguf_writer_write(w, path), path);
    pt_gguf_writer_free(w);
}

int main(int argc, char **argv) {
    spec s = {768, 12, 12, 4, 2048, 32000, 2048, 1234};
    const char *out = "bench/out";
    int q4 = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
#define INTARG(flag, field) else if (!strcmp(a, flag) && has) s.field = atoi(argv[++i]);
        if (!strcmp(a, "--out") && has) out = argv[++i];
        else if (!strcmp(a, "--seed") && has) s.seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--no-q4")) q4 = 0;
        INTARG("--dim", dim) INTARG("--layers", layers) INTARG("--heads", heads) INTARG("--kv", kv)
        INTARG("--ffn", ffn) INTARG("--vocab", vocab) INTARG("--ctx", ctx)
        else {
            fprintf(stderr, "usage: %s [--out DIR] [--seed N] [--dim D] [--layers L] [--heads H] [--kv KV] "
                            "[--ffn F] [--vocab V] [--ctx C] [--no-q4]\n", argv[0]);
            return 2;
        }
#undef INTARG
    }
    if (s.dim % s.heads || s.heads % s.kv || s.dim % 32 || s.ffn % 32 || (s.dim / s.heads) % 2) {
        fprintf(stderr, "make_model: dims must divide (dim %% heads, heads %% kv, dim and ffn multiples of 32)\n");
        return 2;
    }
    if (mkdir(out, 0755) != 0 && errno != EEXIST) { perror(out); return 1; }
    char path[1024];
    snprintf(path, sizeof path, "%s/hf-f32", out);
    write_hf(&s, path);
    printf("wrote %s\n", path);
    const struct { pt_dtype t; const char *file; } ggufs[] = {
        {PT_F32, "model-f32.gguf"}, {PT_Q8_0, "model-q8_0.gguf"}, {PT_Q4_0, "model-q4_0.gguf"}};
    for (int i = 0; i < 3; i++) {
        if (ggufs[i].t == PT_Q4_0 && !q4) continue;
        snprintf(path, sizeof path, "%s/%s", out, ggufs[i].file);
        write_gguf(&s, path, ggufs[i].t);
        printf("wrote %s\n", path);
    }
    return 0;
}
