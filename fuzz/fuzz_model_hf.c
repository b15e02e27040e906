/* libFuzzer target: a Hugging Face checkpoint directory from one input: config.json, then
 * "\n#--\n", then model.safetensors. Loaded as a model; what loads is walked like
 * fuzz_model_gguf does. */
// fuzz-sources: src/model/*.c
#include "fuzz_split.h"
#include "model/model.h"

static volatile float sink;

static void touch(const pt_weight *w) {
    size_t n = pt_dtype_nbytes(w->dtype, (int64_t)w->rows * w->cols);
    if (n) sink += ((const uint8_t *)w->data)[0] + ((const uint8_t *)w->data)[n - 1];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *cfg, *st;
    size_t ncfg, nst;
    fuzz_split(data, size, &cfg, &ncfg, &st, &nst);
    const char *dir = fuzz_dir();
    fuzz_write(dir, "config.json", cfg, ncfg);
    fuzz_write(dir, "model.safetensors", st, nst);
    pt_model *m = NULL;
    if (pt_model_load(&m, dir) == PT_OK) {
        const pt_config *c = &m->cfg;
        touch(&m->tok_emb);
        touch(&m->output);
        sink += m->out_norm[c->dim - 1];
        for (int l = 0; l < c->n_layers; l++) {
            const pt_layer *L = &m->layers[l];
            touch(&L->wq), touch(&L->wk), touch(&L->wv), touch(&L->wo);
            touch(&L->w_gate), touch(&L->w_up), touch(&L->w_down);
            sink += L->attn_norm[c->dim - 1] + L->ffn_norm[c->dim - 1];
        }
        pt_model_free(m);
    }
    return 0;
}
