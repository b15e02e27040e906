/* libFuzzer target for what crosses the wire: arbitrary bytes as an OpenAI request body to
 * `politune serve` (chat and completions) and as a chat-completions response to the judge
 * client, with label parsing of whatever reply text comes out.
 * (sources beyond util/format/tokenizer on the next line) */
// fuzz-sources: src/serve/openai.c src/data/judge_parse.c
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/judge.h"
#include "serve/openai.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *body = (const char *)data;
    for (int k = PT_OAI_CHAT; k <= PT_OAI_COMPLETION; k++) {
        pt_oai_request r;
        const char *param;
        if (pt_oai_parse((pt_oai_kind)k, body, size, &r, &param) == PT_OK) {
            if (k == PT_OAI_CHAT && r.n_msgs < 1) abort();
            if (k == PT_OAI_COMPLETION && !r.prompt && r.n_prompt_ids < 1) abort();
            pt_oai_request_free(&r);
        }
    }
    static const char *const labels[] = {"1", "2", "3", "4", "5", "6", "7", "8", "9", "left", "right"};
    char *text = NULL;
    double probs[11];
    bool has = false;
    if (pt_judge_parse_response(body, size, labels, 11, &text, probs, &has) == PT_OK) {
        int l = pt_judge_parse_label(text, labels, 11);
        if (l < -1 || l >= 11) abort();
        free(text);
    }
    char *s = malloc(size + 1);
    if (s) {
        memcpy(s, data, size);
        s[size] = 0;
        (void)pt_judge_parse_label(s, labels, 11);
        free(s);
    }
    char *e = pt_oai_error_json(body[0] ? "m" : NULL, NULL, NULL, NULL);
    free(e);
    return 0;
}
