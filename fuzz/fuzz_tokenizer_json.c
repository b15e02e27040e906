/* libFuzzer target for tokenizer.json, a file users download: arbitrary bytes go to
 * pt_tokenizer_parse_json; whatever loads must then encode a fixed text (with special
 * tokens, bytes that need fallback, digits and spaces) and decode the ids, without crashing,
 * leaking or reading out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pt_tokenizer *t = NULL;
    if (pt_tokenizer_parse_json(&t, (const char *)data, size, "fuzz.json") != PT_OK) return 0;
    static const char text[] = "Hello world <s> 12345  caf\xC3\xA9 \xF0\x9F\x98\x80\n\tab</s>";
    int32_t *ids = NULL;
    size_t n = 0;
    for (int special = 0; special < 2; special++) {
        if (pt_tokenizer_encode(t, text, sizeof text - 1, special, &ids, &n) == PT_OK) {
            for (size_t i = 0; i < n; i++)
                if (ids[i] < 0 || ids[i] >= pt_tokenizer_vocab_size(t)) abort();
            char *s = NULL;
            if (pt_tokenizer_decode(t, ids, n, special, &s) == PT_OK) free(s);
            free(ids);
        }
    }
    int32_t stop[16];
    int ns;
    (void)pt_tokenizer_stop_ids(t, stop, 16, &ns);
    pt_tokenizer_free(t);
    return 0;
}
