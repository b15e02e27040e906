/* libFuzzer target: arbitrary bytes as a safetensors file; accepted files have every
 * tensor's last byte touched, so an out-of-bounds view is caught by AddressSanitizer. */
#include <stdint.h>
#include <stdlib.h>

#include "format/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pt_safetensors st = {0};
    /* copy so the sanitizer sees the exact bounds of the input */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    for (size_t i = 0; i < size; i++) copy[i] = data[i];
    if (pt_safetensors_parse(&st, copy, size, "fuzz.safetensors") == PT_OK) {
        volatile uint8_t sink = 0;
        for (int i = 0; i < st.n_tensors; i++)
            if (st.tensors[i].nbytes) sink ^= st.tensors[i].data[st.tensors[i].nbytes - 1];
        (void)sink;
    }
    pt_safetensors_close(&st);
    free(copy);
    return 0;
}
