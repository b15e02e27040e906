/* Chat template tests: the fixtures' conversations rendered with the template detected from
 * each tokenizer_config.json (byte-exact with @huggingface/jinja), their generation-prompt
 * ids, and each native renderer against the output of its Jinja template written out by
 * hand. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "tokenizer/chat.h"
#include "tokenizer/tokenizer.h"

static void check_str(const char *file, int line, const char *got, const char *want) {
    if (got && !strcmp(got, want)) return;
    pt_test_fail(file, line, "rendered:\n%s\n    expected:\n%s", got ? got : "(null)", want);
}
#define CHECK_STR(got, want) check_str(__FILE__, __LINE__, got, want)

static void chat_fixture(const char *name, pt_chat_template expect_t) {
    char rel[256];
    snprintf(rel, sizeof rel, "assets/tokenizers/%s/tokenizer.json", name);
    pt_tokenizer *tok = NULL;
    pt_status st = pt_tokenizer_load_json(&tok, pt_test_shared(rel));
    CHECK_OK(st);
    if (st) return;
    snprintf(rel, sizeof rel, "fixtures/tokenizers/%s.json", name);
    json_error_t err;
    json_t *fx = json_load_file(pt_test_shared(rel), 0, &err);
    CHECK(fx != NULL);
    json_t *chat = json_object_get(fx, "chat"), *conv = json_object_get(chat, "conversation");
    pt_chat_template t = pt_chat_template_detect(pt_tokenizer_chat_template_source(tok));
    CHECK_MSG(t == expect_t, "detected %s", pt_chat_template_name(t));
    int n = (int)json_array_size(conv);
    pt_chat_msg msgs[16];
    for (int i = 0; i < n && i < 16; i++) {
        json_t *m = json_array_get(conv, (size_t)i);
        msgs[i].role = json_string_value(json_object_get(m, "role"));
        msgs[i].content = json_string_value(json_object_get(m, "content"));
    }
    const char *bos = pt_tokenizer_token_text(tok, pt_tokenizer_bos(tok)); /* NULL when none */
    char *out = NULL;
    CHECK_OK(pt_chat_render(t, msgs, n, false, bos, &out));
    CHECK_STR(out, json_string_value(json_object_get(chat, "rendered")));
    free(out);
    /* the generation prompt: the conversation without its final assistant answer */
    REQUIRE(n >= 2 && !strcmp(msgs[n - 1].role, "assistant"));
    CHECK_OK(pt_chat_render(t, msgs, n - 1, true, bos, &out));
    const char *want = json_string_value(json_object_get(chat, "rendered_generation_prompt"));
    CHECK_STR(out, want);
    if (out) {
        int32_t *ids = NULL;
        size_t ni = 0;
        json_t *wids = json_object_get(chat, "ids_generation_prompt");
        CHECK_OK(pt_tokenizer_encode(tok, out, strlen(out), false, &ids, &ni));
        int same = ni == json_array_size(wids);
        for (size_t i = 0; same && i < ni; i++) same = ids[i] == json_integer_value(json_array_get(wids, i));
        CHECK_MSG(same, "ids of the generation prompt differ (%zu vs %zu ids)", ni, json_array_size(wids));
        free(ids);
    }
    free(out);
    json_decref(fx);
    pt_tokenizer_free(tok);
}

PT_TEST(test_chat_llama3_fixture) {
    /* this tokenizer_config.json carries Llama 3's first template, which appends the
     * assistant header even without add_generation_prompt: the fixture's "rendered" ends so */
    chat_fixture("llama3", PT_CHAT_LLAMA3_LEGACY);
}

PT_TEST(test_chat_qwen3_fixture) { chat_fixture("qwen3", PT_CHAT_QWEN3); }

PT_TEST(test_chat_names) {
    pt_chat_template t = PT_CHAT_NONE;
    static const char *const all[] = {"llama3", "llama3-legacy", "llama3.1", "mistral", "mistral-v1",
                                      "mistral-v3", "chatml", "qwen3", "alpaca"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        CHECK_OK(pt_chat_template_from_name(all[i], &t));
        CHECK(!strcmp(pt_chat_template_name(t), all[i]));
    }
    CHECK(pt_chat_template_from_name("vicuna", &t) == PT_ERR_ARG);
    CHECK_MSG(strstr(pt_errmsg(), "vicuna") && strstr(pt_errmsg(), "llama3") && strstr(pt_errmsg(), "mistral") &&
                  strstr(pt_errmsg(), "chatml") && strstr(pt_errmsg(), "qwen3") && strstr(pt_errmsg(), "alpaca"),
              "message: %s", pt_errmsg());
    CHECK(pt_chat_template_from_name(NULL, &t) == PT_ERR_ARG);
    CHECK(!strcmp(pt_chat_template_name(PT_CHAT_NONE), "none"));
}

PT_TEST(test_chat_detect) {
    CHECK(pt_chat_template_detect(NULL) == PT_CHAT_NONE);
    CHECK(pt_chat_template_detect("{{ messages }}") == PT_CHAT_NONE);
    CHECK(pt_chat_template_detect(
              "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
              "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + "
              "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content "
              "}}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
              "{% endif %}") == PT_CHAT_LLAMA3);
    CHECK(pt_chat_template_detect("{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}{{- \"Cutting Knowledge "
                                  "Date: December 2023\\n\" }}{%- set date_string = \"26 Jul 2024\" %}") ==
          PT_CHAT_LLAMA31);
    CHECK(pt_chat_template_detect("<|start_header_id|> Cutting Knowledge Date strftime_now") == PT_CHAT_NONE);
    CHECK(pt_chat_template_detect(
              "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ "
              "'<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + "
              "message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if "
              "add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}") == PT_CHAT_CHATML);
    CHECK(pt_chat_template_detect("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
                                  "assistant.") == PT_CHAT_NONE);
    CHECK(pt_chat_template_detect(
              "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == "
              "0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% "
              "endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif "
              "message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ "
              "raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}") ==
          PT_CHAT_MISTRAL);
    CHECK(pt_chat_template_detect("{%- if loop.first and system_message is defined %}{{- ' [INST] ' + "
                                  "system_message + '\\n\\n' + message['content'] + ' [/INST]' }}") ==
          PT_CHAT_MISTRAL_V1);
    CHECK(pt_chat_template_detect("{{- \"[INST] \" + system_message + \"\\n\\n\" + message[\"content\"] + "
                                  "\"[/INST]\" }}") == PT_CHAT_MISTRAL_V3);
    CHECK(pt_chat_template_detect("{{ '[INST] <<SYS>>' }}") == PT_CHAT_NONE);
    CHECK(pt_chat_template_detect("{{ '### Instruction:\\n' + message['content'] }}") == PT_CHAT_ALPACA);
}

static const pt_chat_msg conv3[] = {
    {"system", "Be brief."}, {"user", " Tax the rich? "}, {"assistant", "\n Yes. \n"}, {"user", "Why?"}};

PT_TEST(test_chat_llama3) {
    char *out = NULL;
    CHECK_OK(pt_chat_render(PT_CHAT_LLAMA3, conv3, 3, false, "<|begin_of_text|>", &out));
    CHECK_STR(out, "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                   "<|start_header_id|>user<|end_header_id|>\n\nTax the rich?<|eot_id|>"
                   "<|start_header_id|>assistant<|end_header_id|>\n\nYes.<|eot_id|>");
    free(out);
    CHECK_OK(pt_chat_render(PT_CHAT_LLAMA3, conv3 + 1, 1, true, "<|begin_of_text|>", &out));
    CHECK_STR(out, "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nTax the rich?<|eot_id|>"
                   "<|start_header_id|>assistant<|end_header_id|>\n\n");
    free(out);
    /* trim is Python's strip(): Unicode spaces go, a zero-width space (not whitespace) stays */
    pt_chat_msg u[] = {{"user", "\xC2\xA0\xE3\x80\x80hi\xE2\x80\x8B\x1F "}};
    CHECK_OK(pt_chat_render(PT_CHAT_LLAMA3, u, 1, false, NULL, &out));
    CHECK_STR(out, "<|start_header_id|>user<|end_header_id|>\n\nhi\xE2\x80\x8B<|eot_id|>");
    free(out);
    CHECK_OK(pt_chat_render(PT_CHAT_LLAMA3_LEGACY, conv3 + 1, 1, false, "<|begin_of_text|>", &out));
    CHECK_STR(out, "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nTax the rich?<|eot_id|>"
                   "<|start_header_id|>assistant<|end_header_id|>\n\n");
    free(out);
    CHECK_OK(pt_chat_render(PT_CHAT_LLAMA31, conv3, 2, true, "<|begin_of_text|>", &out));
    CHECK_STR(out, "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December "
                   "2023\nToday Date: 26 Jul 2024\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
                   "Tax the rich?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    free(out);
    CHECK_OK(pt_chat_render(PT_CHAT_LLAMA31, conv3 + 1, 1, false, "<|begin_of_text|>", &out));
    CHECK_STR(out, "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December "
                   "2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
                   "Tax the rich?<|eot_id|>");
    free(out);
}

PT_TEST(test_chat_mistral) {
    char *out = NULL;
    CHECK_OK(pt_chat_render(PT_CHAT_MISTRAL, conv3, 4, true, "<s>", &out));
    CHECK_STR(out, "<s>[INST] Be brief.\n\n Tax the rich?  [/INST]\n Yes. \n</s>[INST] Why? [/INST]");
    free(out);
    CHECK_OK(pt_chat_render(PT_CHAT_MISTRAL, conv3 + 1, 2, false, "<s>", &out));
    CHECK_STR(out, "<s>[INST]  Tax the rich?  [/INST]\n Yes. \n</s>");
    free(out);
    CHECK_OK(pt_chat_render(PT_CHAT_MISTRAL_V1, conv3, 4, false, "<s>", &out));
    CHECK_STR(out, "<s> [INST] Be brief.\n\n Tax the rich?  [/INST] \n Yes. \n</s> [INST] Why? [/INST]");
    free(out);
    CHECK_OK(pt_chat_render(PT_CHAT_MISTRAL_V3, conv3, 4, false, "<s>", &out));
    CHECK_STR(out, "<s>[INST]  Tax the rich? [/INST] Yes.</s>[INST] Be brief.\n\nWhy?[/INST]");
    free(out);
    /* v0.3 drops the system text when the conversation ends with an answer */
    CHECK_OK(pt_chat_render_ex(PT_CHAT_MISTRAL_V3, conv3, 3, false, "<s>", "<EOS>", &out));
    CHECK_STR(out, "<s>[INST]  Tax the rich? [/INST] Yes.<EOS>");
    free(out);
    /* roles must alternate */
    pt_chat_msg bad[] = {{"user", "a"}, {"user", "b"}};
    CHECK(pt_chat_render(PT_CHAT_MISTRAL, bad, 2, false, "<s>", &out) == PT_ERR_ARG && out == NULL);
    CHECK(strstr(pt_errmsg(), "alternate") != NULL);
    pt_chat_msg bad2[] = {{"assistant", "a"}};
    CHECK(pt_chat_render(PT_CHAT_MISTRAL_V3, bad2, 1, false, "<s>", &out) == PT_ERR_ARG);
}

PT_TEST(test_chat_chatml) {
    char *out = NULL;
    /* Qwen2's template inserts its default system message when the conversation has none */
    CHECK_OK(pt_chat_render(PT_CHAT_CHATML, conv3 + 1, 2, false, NULL, &out));
    CHECK_STR(out, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n Tax the rich? "
                   "<|im_end|>\n<|im_start|>assistant\n\n Yes. \n<|im_end|>\n");
    free(out);
    CHECK_OK(pt_chat_render(PT_CHAT_CHATML, conv3, 2, true, NULL, &out));
    CHECK_STR(out, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n Tax the rich? <|im_end|>\n"
                   "<|im_start|>assistant\n");
    free(out);
}

PT_TEST(test_chat_qwen3) {
    char *out = NULL;
    /* earlier answers (before the last user query) carry no think block; the last one does */
    pt_chat_msg m[] = {{"user", "Q1"}, {"assistant", "A1"}, {"user", "Q2"}, {"assistant", "\nA2"}};
    CHECK_OK(pt_chat_render(PT_CHAT_QWEN3, m, 4, false, NULL, &out));
    CHECK_STR(out, "<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nQ2"
                   "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nA2<|im_end|>\n");
    free(out);
    /* reasoning written inline is moved into the think block, stripped of newlines */
    pt_chat_msg r[] = {{"system", "S"}, {"user", "Q"}, {"assistant", "<think>\n\nmull it\n</think>\n\nAnswer"}};
    CHECK_OK(pt_chat_render(PT_CHAT_QWEN3, r, 3, false, NULL, &out));
    CHECK_STR(out, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\n"
                   "mull it\n</think>\n\nAnswer<|im_end|>\n");
    free(out);
    /* an earlier answer with reasoning loses it (it precedes the last query) */
    pt_chat_msg e[] = {{"user", "Q"}, {"assistant", "<think>x</think>A"}, {"user", "Q2"}};
    CHECK_OK(pt_chat_render(PT_CHAT_QWEN3, e, 3, true, NULL, &out));
    CHECK_STR(out, "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n<|im_start|>user\nQ2"
                   "<|im_end|>\n<|im_start|>assistant\n");
    free(out);
}

PT_TEST(test_chat_alpaca) {
    char *out = NULL;
    pt_chat_msg m[] = {{"user", "Is tax theft?"}, {"assistant", "No."}};
    CHECK_OK(pt_chat_render(PT_CHAT_ALPACA, m, 1, true, NULL, &out));
    CHECK_STR(out, "Below is an instruction that describes a task. Write a response that appropriately completes the "
                   "request.\n\n### Instruction:\nIs tax theft?\n\n### Response:\n");
    free(out);
    CHECK_OK(pt_chat_render(PT_CHAT_ALPACA, m, 2, false, NULL, &out));
    CHECK_STR(out, "Below is an instruction that describes a task. Write a response that appropriately completes the "
                   "request.\n\n### Instruction:\nIs tax theft?\n\n### Response:\nNo.");
    free(out);
    CHECK_OK(pt_chat_render(PT_CHAT_ALPACA, conv3, 4, false, NULL, &out));
    CHECK_STR(out, "Be brief.\n\n### Instruction:\n Tax the rich? \n\n### Response:\n\n Yes. \n\n\n### Instruction:\n"
                   "Why?\n\n### Response:\n");
    free(out);
}

PT_TEST(test_chat_bad_input) {
    char *out = NULL;
    pt_chat_msg m[] = {{"tool", "x"}};
    CHECK(pt_chat_render(PT_CHAT_LLAMA3, m, 1, false, NULL, &out) == PT_ERR_ARG && strstr(pt_errmsg(), "tool"));
    CHECK(pt_chat_render(PT_CHAT_LLAMA3, m, 0, false, NULL, &out) == PT_ERR_ARG && strstr(pt_errmsg(), "empty"));
    pt_chat_msg ok[] = {{"user", "x"}};
    CHECK(pt_chat_render(PT_CHAT_NONE, ok, 1, false, NULL, &out) == PT_ERR_ARG);
    CHECK(out == NULL);
}
