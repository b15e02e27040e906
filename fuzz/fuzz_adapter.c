/* libFuzzer target: a PEFT adapter from one input (adapter_config.json, "\n#--\n",
 * adapter_model.safetensors) loaded against a fixed tiny llama (hidden 32, 2 layers, written
 * once per process). An adapter that loads is merged and exported as Q8_0 GGUF, the path where
 * NaN once went through an undefined float-to-int cast. */
// fuzz-sources: src/model/*.c
#include <sys/stat.h>

#include "fuzz_split.h"
#include "format/safetensors.h"
#include "model/adapter.h"
#include "model/model.h"

enum { D = 32, F = 64, V = 16, LAYERS = 2, HEADS = 2, KV = 1, HD = 16 };

static pt_model *base_model(void) {
    static pt_model *m;
    if (m) return m;
    char dir[128];
    snprintf(dir, sizeof dir, "%s/base", fuzz_dir());
    mkdir(dir, 0755);
    char path[256];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"model_type\":\"llama\",\"hidden_size\":%d,\"num_hidden_layers\":%d,\"num_attention_heads\":%d,"
               "\"num_key_value_heads\":%d,\"intermediate_size\":%d,\"vocab_size\":%d,\"max_position_embeddings\":64}",
            D, LAYERS, HEADS, KV, F, V);
    fclose(f);
    static float ones[F * F];
    for (int i = 0; i < F * F; i++) ones[i] = 0.01f * (float)(i % 7);
    pt_safetensors_entry e[3 + 9 * LAYERS];
    static char names[3 + 9 * LAYERS][96];
    int n = 0;
#define ENTRY(nm, r, c) (snprintf(names[n], 96, "%s", nm), e[n] = (pt_safetensors_entry){.name = names[n], .dtype = PT_F32, \
                          .n_dims = (c) ? 2 : 1, .shape = {(r), (c)}, .data = ones}, n++)
    ENTRY("model.embed_tokens.weight", V, D);
    ENTRY("model.norm.weight", D, 0);
    ENTRY("lm_head.weight", V, D);
    static const struct { const char *s; int r, c; } lw[] = {
        {"input_layernorm.weight", D, 0}, {"post_attention_layernorm.weight", D, 0}, {"self_attn.q_proj.weight", HEADS * HD, D},
        {"self_attn.k_proj.weight", KV * HD, D}, {"self_attn.v_proj.weight", KV * HD, D}, {"self_attn.o_proj.weight", D, HEADS * HD},
        {"mlp.gate_proj.weight", F, D}, {"mlp.up_proj.weight", F, D}, {"mlp.down_proj.weight", D, F}};
    for (int l = 0; l < LAYERS; l++)
        for (int k = 0; k < 9; k++) {
            char nm[96];
            snprintf(nm, sizeof nm, "model.layers.%d.%s", l, lw[k].s);
            ENTRY(nm, lw[k].r, lw[k].c);
        }
#undef ENTRY
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (pt_safetensors_write(path, e, n, NULL) != PT_OK || pt_model_load(&m, dir) != PT_OK) {
        fprintf(stderr, "fuzz_adapter: cannot build the base model: %s\n", pt_errmsg());
        abort();
    }
    return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pt_model *m = base_model();
    const uint8_t *cfg, *st;
    size_t ncfg, nst;
    fuzz_split(data, size, &cfg, &ncfg, &st, &nst);
    char dir[128];
    snprintf(dir, sizeof dir, "%s/adapter", fuzz_dir());
    mkdir(dir, 0755);
    fuzz_write(dir, "adapter_config.json", cfg, ncfg);
    fuzz_write(dir, "adapter_model.safetensors", st, nst);
    pt_adapter *a = NULL;
    if (pt_adapter_load(&a, dir, m) == PT_OK) {
        char out[160];
        snprintf(out, sizeof out, "%s/merged.gguf", fuzz_dir());
        (void)pt_model_save_gguf(m, a, out, PT_Q8_0);
        pt_adapter_free(a);
    }
    return 0;
}
