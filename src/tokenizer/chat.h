/* Chat templates: native renderers for the template families politune supports, chosen from
 * a checkpoint's own Jinja template (tokenizer_config.json or GGUF tokenizer.chat_template)
 * or by name (--chat-template NAME). The renderings are byte-exact with what the checkpoint's
 * own Jinja template produces for plain system/user/assistant conversations. */
#ifndef PT_TOKENIZER_CHAT_H
#define PT_TOKENIZER_CHAT_H

#include <stdbool.h>

#include "util/status.h"

typedef enum {
    PT_CHAT_NONE = 0,
    PT_CHAT_LLAMA3,   /* <|start_header_id|>role<|end_header_id|>\n\n ... <|eot_id|> */
    PT_CHAT_MISTRAL,  /* <s>[INST] ... [/INST] ...</s> */
    PT_CHAT_CHATML,   /* <|im_start|>role\n ... <|im_end|>\n  (Qwen2) */
    PT_CHAT_QWEN3,    /* chatml plus Qwen3's empty <think> block on the final assistant turn */
    PT_CHAT_ALPACA,   /* the PoliTune paper's instruction template */
    /* Variants that checkpoints' own templates need to render byte-exactly (appended so
     * existing values keep their numbers): */
    PT_CHAT_LLAMA3_LEGACY, /* Meta-Llama-3-8B-Instruct's first template: always ends with the
                              assistant header, add_generation_prompt or not */
    PT_CHAT_LLAMA31,       /* Llama 3.1: system block with "Cutting Knowledge Date" and the
                              template's default date, 26 Jul 2024 */
    PT_CHAT_MISTRAL_V1,    /* Mistral/Mixtral tokenizer v1 as re-published in 2024:
                              "<s> [INST] ... [/INST] answer</s>" */
    PT_CHAT_MISTRAL_V3,    /* Mistral-7B-Instruct-v0.3: "<s>[INST] ...[/INST] answer</s>",
                              system text before the last user message */
    PT_CHAT_SMOLLM         /* SmolLM2-Instruct: chatml whose default system message names
                              SmolLM */
} pt_chat_template;

typedef struct {
    const char *role;    /* "system", "user" or "assistant" */
    const char *content;
} pt_chat_msg;

/* Name -> template ("llama3", "llama3-legacy", "llama3.1", "mistral", "mistral-v1",
 * "mistral-v3", "chatml", "qwen3", "alpaca", "smollm"); an unknown name is PT_ERR_ARG listing the
 * known ones. */
pt_status pt_chat_template_from_name(const char *name, pt_chat_template *out);
const char *pt_chat_template_name(pt_chat_template t);
/* Recognises the family of a Jinja chat template source; PT_CHAT_NONE if unrecognised. */
pt_chat_template pt_chat_template_detect(const char *jinja_source);

/* Renders a conversation to a malloc'd string. `bos` is the BOS token text the template
 * starts with (may be NULL/"" for none). The Mistral templates end assistant turns with
 * "</s>"; pt_chat_render_ex takes the EOS text explicitly. Roles other than system, user
 * and assistant, an empty conversation, or turns out of the order a template requires
 * (Mistral, Alpaca: user/assistant alternating after an optional first system message) are
 * PT_ERR_ARG. */
pt_status pt_chat_render(pt_chat_template t, const pt_chat_msg *msgs, int n_msgs, bool add_generation_prompt,
                         const char *bos, char **out);
pt_status pt_chat_render_ex(pt_chat_template t, const pt_chat_msg *msgs, int n_msgs, bool add_generation_prompt,
                            const char *bos, const char *eos, char **out);

#endif
