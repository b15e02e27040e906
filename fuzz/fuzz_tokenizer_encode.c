/* libFuzzer target: a fuzzed tokenizer.json encoding fuzzed text. The input is the text,
 * "\n#--\n", then the tokenizer.json (no separator: a fixed text). The encoder's own work bound
 * (PT_TOK_WORK_LIMIT) must stop any normaliser or pre-tokeniser chain that grows the text;
 * libFuzzer's -timeout and -rss_limit_mb report one that slips through. */
#include "fuzz_split.h"
#include "tokenizer/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *text, *json;
    size_t ntext, njson;
    fuzz_split(data, size, &text, &ntext, &json, &njson);
    static const char fixed[] = "Hello <s> caf\xC3\xA9 12 \xF0\x9F\x98\x80";
    if (text == json) text = (const uint8_t *)fixed, ntext = sizeof fixed - 1;
    pt_tokenizer *t = NULL;
    if (pt_tokenizer_parse_json(&t, (const char *)json, njson, "fuzz.json") != PT_OK) return 0;
    for (int special = 0; special < 2; special++) {
        int32_t *ids = NULL;
        size_t n = 0;
        if (pt_tokenizer_encode(t, (const char *)text, ntext, special, &ids, &n) != PT_OK) continue;
        for (size_t i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= pt_tokenizer_vocab_size(t)) abort();
        char *s = NULL;
        size_t len = 0;
        if (pt_tokenizer_decode_n(t, ids, n, special, &s, &len) == PT_OK) free(s);
        free(ids);
    }
    pt_tokenizer_free(t);
    return 0;
}
