/* libFuzzer target for training datasets, files users download or generate: arbitrary bytes
 * as a PoliTune chat JSON / JSONL file. The first byte picks the reader's options (pairs or
 * SFT, skip_bad, a small max_seq_len, a template); text records are tokenised with a
 * byte-level tokenizer built once (every byte in its vocabulary), so rendering, tokenising,
 * truncation and the error paths all run. Accepted datasets are walked to their ends. */
// fuzz-sources: src/train/data.c
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/chat.h"
#include "tokenizer/tokenizer.h"
#include "train/data.h"

static pt_tokenizer *tok;

/* Byte-level BPE without merges: byte b is the token of its byte-level character, id b. */
static void build_tokenizer(void) {
    json_t *vocab = json_object();
    for (int b = 0, extra = 0; b < 256; b++) {
        int cp = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174 ? b : 256 + extra++;
        char s[4] = {0};
        if (cp < 128) s[0] = (char)cp;
        else s[0] = (char)(0xC0 | (cp >> 6)), s[1] = (char)(0x80 | (cp & 63));
        json_object_set_new(vocab, s, json_integer(b));
    }
    json_t *added = json_pack("[{s:i,s:s,s:b,s:b,s:b,s:b,s:b},{s:i,s:s,s:b,s:b,s:b,s:b,s:b}]", "id", 256, "content", "<s>", "special", 1,
                              "lstrip", 0, "rstrip", 0, "normalized", 0, "single_word", 0, "id", 257, "content", "</s>", "special", 1,
                              "lstrip", 0, "rstrip", 0, "normalized", 0, "single_word", 0);
    json_t *t = json_pack("{s:{s:s,s:o,s:[]},s:o,s:{s:s,s:b,s:b,s:b},s:{s:s}}", "model", "type", "BPE", "vocab", vocab, "merges",
                          "added_tokens", added, "pre_tokenizer", "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 1,
                          "use_regex", 1, "decoder", "type", "ByteLevel");
    char *text = json_dumps(t, 0);
    json_decref(t);
    if (text && pt_tokenizer_parse_json(&tok, text, strlen(text), "fuzz-tokenizer.json") != PT_OK) tok = NULL;
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int ready;
    if (!ready) build_tokenizer(), ready = 1;
    if (size == 0) return 0;
    const uint8_t mode = data[0];
    static const pt_chat_template tmpls[4] = {PT_CHAT_ALPACA, PT_CHAT_NONE, PT_CHAT_CHATML, PT_CHAT_LLAMA3};
    pt_data_opts o = {.pairs = mode & 1, .tok = (mode & 2) ? NULL : tok, .tmpl = tmpls[(mode >> 2) & 3], .eos = 257, .vocab = 258,
                      .max_seq_len = (mode & 16) ? 8 + (mode >> 5) : 0, .skip_bad = (mode & 32) != 0};
    /* copy so the sanitizer sees the exact bounds of the input */
    char *copy = malloc(size - 1 ? size - 1 : 1);
    if (!copy) return 0;
    memcpy(copy, data + 1, size - 1);
    pt_dataset d;
    if (pt_dataset_parse(&d, copy, size - 1, "fuzz.jsonl", &o) == PT_OK) {
        for (int i = 0; i < d.n; i++) {
            const pt_example *e = &d.ex[i];
            if (e->np < 1 || e->nr[0] < 1 || (o.pairs && e->nr[1] < 1)) abort();
            if (o.max_seq_len && (e->np + e->nr[0] > o.max_seq_len || (o.pairs && e->np + e->nr[1] > o.max_seq_len))) abort();
            for (int k = 0; k < (o.pairs ? 2 : 1); k++)
                if (e->resp[k][e->nr[k] - 1] < 0 || e->resp[k][e->nr[k] - 1] >= 258 || e->prompt[e->np - 1] >= 258) abort();
        }
        (void)pt_dataset_hash(&d);
        pt_dataset_free(&d);
    }
    free(copy);
    return 0;
}
