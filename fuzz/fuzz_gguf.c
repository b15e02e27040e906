/* libFuzzer target: arbitrary bytes as a GGUF file. The reader must reject or accept them
 * without reading outside the buffer; accepted files are walked completely. */
#include <stdint.h>
#include <stdlib.h>

#include "format/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pt_gguf g = {0};
    if (pt_gguf_parse(&g, data, size, "fuzz.gguf") == PT_OK) {
        volatile double sink = 0;
        for (uint64_t i = 0; i < g.n_kv; i++) {
            const pt_gguf_kv *kv = &g.kv[i];
            if (kv->type == PT_GGUF_ARRAY && kv->arr_type != PT_GGUF_STRING)
                for (uint64_t j = 0; j < kv->arr_n && j < 4096; j++) sink += pt_gguf_arr_num(kv, j);
        }
        for (uint64_t i = 0; i < g.n_tensors; i++)
            if (g.tensors[i].nbytes) sink += g.tensors[i].data[g.tensors[i].nbytes - 1];
        (void)sink;
    }
    pt_gguf_close(&g);
    return 0;
}
