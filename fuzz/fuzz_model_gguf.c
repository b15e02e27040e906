/* libFuzzer target: arbitrary bytes as a GGUF checkpoint, loaded as a model (configuration,
 * tensor binding, Q/K permutation, conversions, tokenizer from the metadata), through a file
 * because the loader maps a path. Whatever loads is walked: every weight's first and last
 * byte and the norms are read, so a view past its tensor shows under ASan. */
// fuzz-sources: src/model/*.c
#include "fuzz_split.h"
#include "model/model.h"

static volatile float sink;

static void touch(const pt_weight *w) {
    size_t n = pt_dtype_nbytes(w->dtype, (int64_t)w->rows * w->cols);
    if (n) sink += ((const uint8_t *)w->data)[0] + ((const uint8_t *)w->data)[n - 1];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *dir = fuzz_dir();
    fuzz_write(dir, "model.gguf", data, size);
    char path[256];
    snprintf(path, sizeof path, "%s/model.gguf", dir);
    pt_model *m = NULL;
    if (pt_model_load(&m, path) == PT_OK) {
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
        for (int i = 0; i < c->head_dim / 2; i++) sink += (float)m->inv_freq[i];
        pt_model_free(m);
    }
    return 0;
}
