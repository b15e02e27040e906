/* Chat templates rendered natively. politune does not interpret Jinja: it recognises which
 * family a checkpoint's template belongs to and renders plain system/user/assistant
 * conversations exactly as that Jinja would (the fixtures hold renderings by
 * @huggingface/jinja from the checkpoints' own tokenizer_config.json). Each renderer below
 * cites the template text it reproduces; where templates of one family differ in ways that
 * change the output, the variants are separate enum values and detection tells them apart.
 *
 * "| trim" in the templates is Python's str.strip() (transformers renders with jinja2):
 * Unicode whitespace plus the separators U+001C..U+001F. */
#include "tokenizer/chat.h"

#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_impl.h"
#include "util/utf8.h"

static const struct {
    pt_chat_template t;
    const char *name;
} names[] = {
    {PT_CHAT_LLAMA3, "llama3"},       {PT_CHAT_LLAMA3_LEGACY, "llama3-legacy"}, {PT_CHAT_LLAMA31, "llama3.1"},
    {PT_CHAT_MISTRAL, "mistral"},     {PT_CHAT_MISTRAL_V1, "mistral-v1"},       {PT_CHAT_MISTRAL_V3, "mistral-v3"},
    {PT_CHAT_CHATML, "chatml"},       {PT_CHAT_QWEN3, "qwen3"},                 {PT_CHAT_ALPACA, "alpaca"},
    {PT_CHAT_SMOLLM, "smollm"},
};
#define N_NAMES (sizeof names / sizeof names[0])

pt_status pt_chat_template_from_name(const char *name, pt_chat_template *out) {
    for (size_t i = 0; name && i < N_NAMES; i++)
        if (!strcmp(name, names[i].name)) {
            *out = names[i].t;
            return PT_OK;
        }
    char known[256] = "";
    for (size_t i = 0; i < N_NAMES; i++) {
        strcat(known, names[i].name);
        if (i + 1 < N_NAMES) strcat(known, ", ");
    }
    return pt_error(PT_ERR_ARG, "unknown chat template '%s' (known: %s)", name ? name : "(null)", known);
}

const char *pt_chat_template_name(pt_chat_template t) {
    for (size_t i = 0; i < N_NAMES; i++)
        if (names[i].t == t) return names[i].name;
    return "none";
}

static bool has(const char *s, const char *needle) { return strstr(s, needle) != NULL; }

#define SMOLLM_SYSTEM "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


pt_chat_template pt_chat_template_detect(const char *src) {
    if (!src) return PT_CHAT_NONE;
    if (has(src, "<|start_header_id|>")) {
        if (has(src, "Cutting Knowledge Date"))
            /* 3.2 and later put today's date in (strftime_now): not reproducible */
            return has(src, "26 Jul 2024") && !has(src, "strftime_now") ? PT_CHAT_LLAMA31 : PT_CHAT_NONE;
        return has(src, "add_generation_prompt") ? PT_CHAT_LLAMA3 : PT_CHAT_LLAMA3_LEGACY;
    }
    if (has(src, "<|im_start|>")) {
        if (has(src, "<think>") || has(src, "reasoning_content")) return PT_CHAT_QWEN3;
        /* Qwen2 inserts this default system message; Qwen2.5 uses another one, and plain
         * ChatML templates none, so neither is claimed. */
        if (has(src, "You are a helpful assistant.") && !has(src, "You are Qwen")) return PT_CHAT_CHATML;
        /* SmolLM2-Instruct's template is Qwen2's with its own default system message */
        if (has(src, SMOLLM_SYSTEM) && has(src, "loop.first and messages[0]['role'] != 'system'")) return PT_CHAT_SMOLLM;
        return PT_CHAT_NONE;
    }
    if (has(src, "[INST]")) {
        if (has(src, "<<SYS>>")) return PT_CHAT_NONE; /* Llama 2 */
        if (has(src, "\"[/INST]\"") || has(src, "'[/INST]'"))
            return has(src, "\"[INST] \"") || has(src, "'[INST] '") ? PT_CHAT_MISTRAL_V3 : PT_CHAT_NONE;
        if (has(src, "' [INST] '") || has(src, "\" [INST] \"")) return PT_CHAT_MISTRAL_V1;
        /* v0.1's first template wrote eos_token + ' ' after answers: not this renderer */
        if (has(src, "eos_token + ' '")) return PT_CHAT_NONE;
        return PT_CHAT_MISTRAL;
    }
    if (has(src, "### Instruction:")) return PT_CHAT_ALPACA;
    return PT_CHAT_NONE;
}

/* ---- helpers -------------------------------------------------------------------------- */

static bool py_space(uint32_t cp) { return pt_tokenizer_is_space(cp) || (cp >= 0x1C && cp <= 0x1F); }

/* Python str.strip() on a UTF-8 string: the [*a, *b) range without surrounding whitespace. */
static void trim(const char *s, size_t *a, size_t *b) {
    size_t n = strlen(s), i = 0, j = n;
    int len;
    while (i < j && py_space(pt_utf8_decode(s + i, j - i, &len))) i += (size_t)len;
    while (j > i) {
        size_t k = j - 1;
        while (k > i && ((uint8_t)s[k] & 0xC0) == 0x80) k--;
        if (!py_space(pt_utf8_decode(s + k, j - k, &len))) break;
        j = k;
    }
    *a = i;
    *b = j;
}

typedef struct {
    tk_buf b;
    pt_status st;
} out_t;

static void put_n(out_t *o, const char *s, size_t n) {
    if (!o->st) o->st = pt_tokenizer_buf_put(&o->b, s, n);
}
static void put(out_t *o, const char *s) { put_n(o, s ? s : "", s ? strlen(s) : 0); }
static void put_trim(out_t *o, const char *s) {
    size_t a, b;
    trim(s, &a, &b);
    put_n(o, s + a, b - a);
}

static const char *content(const pt_chat_msg *m) { return m->content ? m->content : ""; }
static bool is_role(const pt_chat_msg *m, const char *r) { return m->role && !strcmp(m->role, r); }

static pt_status check_roles(const pt_chat_msg *msgs, int n) {
    if (n <= 0) return pt_error(PT_ERR_ARG, "chat template: the conversation is empty");
    for (int i = 0; i < n; i++)
        if (!is_role(&msgs[i], "system") && !is_role(&msgs[i], "user") && !is_role(&msgs[i], "assistant"))
            return pt_error(PT_ERR_ARG, "chat template: message %d has role '%s' (expected system, user or assistant)",
                            i, msgs[i].role ? msgs[i].role : "(null)");
    return PT_OK;
}

/* After an optional leading system message, user and assistant must alternate starting
 * with user (the Mistral templates raise an exception otherwise). */
static pt_status check_alternation(const pt_chat_msg *msgs, int n, int first, const char *tmpl) {
    for (int i = first; i < n; i++) {
        bool want_user = (i - first) % 2 == 0;
        if (is_role(&msgs[i], "user") != want_user || is_role(&msgs[i], "system"))
            return pt_error(PT_ERR_ARG, "chat template %s: message %d is '%s' but after the optional system message "
                            "roles must alternate user/assistant/user/...", tmpl, i, msgs[i].role);
    }
    return PT_OK;
}

/* ---- Llama 3 -------------------------------------------------------------------------- */

/* {% for message in messages %}{% set content = '<|start_header_id|>' + message['role'] +
 * '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0
 * %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}
 * then the assistant header: always (legacy) or {% if add_generation_prompt %}. */
static void render_llama3(out_t *o, const pt_chat_msg *m, int n, bool gen, const char *bos, bool legacy) {
    for (int i = 0; i < n; i++) {
        if (i == 0) put(o, bos);
        put(o, "<|start_header_id|>");
        put(o, m[i].role);
        put(o, "<|end_header_id|>\n\n");
        put_trim(o, content(&m[i]));
        put(o, "<|eot_id|>");
    }
    if (gen || legacy) put(o, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

/* Llama 3.1 without tools: bos, a system block that always carries the knowledge cutoff and
 * the template's default date_string, the system message (trimmed) if the conversation has
 * one, then the Llama 3 turns. */
static void render_llama31(out_t *o, const pt_chat_msg *m, int n, bool gen, const char *bos) {
    int first = 0;
    put(o, bos);
    put(o, "<|start_header_id|>system<|end_header_id|>\n\n");
    put(o, "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n");
    if (n > 0 && is_role(&m[0], "system")) {
        put_trim(o, content(&m[0]));
        first = 1;
    }
    put(o, "<|eot_id|>");
    for (int i = first; i < n; i++) {
        put(o, "<|start_header_id|>");
        put(o, m[i].role);
        put(o, "<|end_header_id|>\n\n");
        put_trim(o, content(&m[i]));
        put(o, "<|eot_id|>");
    }
    if (gen) put(o, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

/* ---- Mistral -------------------------------------------------------------------------- */

/* Three published shapes (mistral-common calls the tokenizer versions v1/v3):
 *  mistral     Mistral-7B-Instruct-v0.2's original template: bos + "[INST] " + user +
 *              " [/INST]" + answer + eos. That template has no system role; the system text
 *              goes before the first user message followed by "\n\n", as mistral-common and
 *              the later templates do (the one ambiguity: choosing to accept it at all).
 *  mistral-v1  the 2024 re-publication for v0.1/v0.2/Mixtral: " [INST] " + [system "\n\n"]
 *              + user + " [/INST]", answers " " + answer + eos.
 *  mistral-v3  v0.3: "[INST] " + user + "[/INST]", answers " " + trim(answer) + eos, and the
 *              system text only before the *last* message when that message is a user turn
 *              (loop.last): a conversation that ends with an answer loses it.
 * add_generation_prompt changes nothing: the prompt already ends with [/INST]. */
static void render_mistral(out_t *o, pt_chat_template t, const pt_chat_msg *m, int n, const char *bos,
                           const char *eos) {
    int first = n > 0 && is_role(&m[0], "system") ? 1 : 0;
    const char *sys = first ? content(&m[0]) : NULL;
    put(o, bos);
    for (int i = first; i < n; i++) {
        if (is_role(&m[i], "user")) {
            bool with_sys = sys && (t == PT_CHAT_MISTRAL_V3 ? i == n - 1 : i == first);
            put(o, t == PT_CHAT_MISTRAL_V1 ? " [INST] " : "[INST] ");
            if (with_sys) {
                put(o, sys);
                put(o, "\n\n");
            }
            put(o, content(&m[i]));
            put(o, t == PT_CHAT_MISTRAL_V3 ? "[/INST]" : " [/INST]");
        } else {
            if (t != PT_CHAT_MISTRAL) put(o, " ");
            if (t == PT_CHAT_MISTRAL_V3) put_trim(o, content(&m[i]));
            else put(o, content(&m[i]));
            put(o, eos);
        }
    }
}

/* ---- ChatML / Qwen -------------------------------------------------------------------- */

/* Qwen2: {% for message in messages %}{% if loop.first and messages[0]['role'] != 'system'
 * %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{
 * '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{%
 * endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %} */
/* Qwen2's ChatML, and SmolLM2's, which differs only in `default_system`. */
static void render_chatml(out_t *o, const pt_chat_msg *m, int n, bool gen, const char *default_system) {
    for (int i = 0; i < n; i++) {
        if (i == 0 && !is_role(&m[0], "system")) {
            put(o, "<|im_start|>system\n");
            put(o, default_system);
            put(o, "<|im_end|>\n");
        }
        put(o, "<|im_start|>");
        put(o, m[i].role);
        put(o, "\n");
        put(o, content(&m[i]));
        put(o, "<|im_end|>\n");
    }
    if (gen) put(o, "<|im_start|>assistant\n");
}

static const char *find_last(const char *s, const char *needle) {
    const char *r = NULL, *p = s;
    while ((p = strstr(p, needle))) r = p++;
    return r;
}

/* Qwen3 (no tools, no reasoning_content field): the system block if first; user turns as
 * ChatML; an assistant turn after the last user query that is the final message, or that
 * carries reasoning, gets "<think>\n" + reasoning.strip('\n') + "\n</think>\n\n" before its
 * content.lstrip('\n'); reasoning is what a "</think>" in the content closes. The generation
 * prompt is the bare assistant header (enable_thinking is not set). */
static void render_qwen3(out_t *o, const pt_chat_msg *m, int n, bool gen) {
    int last_query = n - 1;
    for (int i = n - 1; i >= 0; i--) {
        const char *c = content(&m[i]);
        size_t len = strlen(c);
        bool tool_resp = len >= 15 + 16 && !strncmp(c, "<tool_response>", 15) &&
                         !strcmp(c + len - 16, "</tool_response>");
        if (is_role(&m[i], "user") && !tool_resp) {
            last_query = i;
            break;
        }
    }
    if (n > 0 && is_role(&m[0], "system")) {
        put(o, "<|im_start|>system\n");
        put(o, content(&m[0]));
        put(o, "<|im_end|>\n");
    }
    for (int i = 0; i < n; i++) {
        const char *c = content(&m[i]);
        if (is_role(&m[i], "user") || (is_role(&m[i], "system") && i > 0)) {
            put(o, "<|im_start|>");
            put(o, m[i].role);
            put(o, "\n");
            put(o, c);
            put(o, "<|im_end|>\n");
        } else if (is_role(&m[i], "assistant")) {
            const char *body = c;
            size_t blen = strlen(c);
            const char *rs = "", *re = "";
            const char *end_think = strstr(c, "</think>");
            if (end_think) {
                body = find_last(c, "</think>") + 8; /* split('</think>')[-1] */
                while (*body == '\n') body++;        /* .lstrip('\n') */
                blen = strlen(body);
                /* split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') */
                const char *a = c, *b = end_think;
                while (b > a && b[-1] == '\n') b--;
                for (const char *p = a; (p = strstr(p, "<think>")) && p < b; p++) a = p + 7;
                while (a < b && *a == '\n') a++;
                rs = a;
                re = b > a ? b : a;
            }
            bool has_reasoning = re > rs;
            put(o, "<|im_start|>assistant\n");
            if (i > last_query && (i == n - 1 || has_reasoning)) {
                /* reasoning_content.strip('\n'): the lstrip happened above, rstrip here */
                while (re > rs && re[-1] == '\n') re--;
                put(o, "<think>\n");
                put_n(o, rs, (size_t)(re - rs));
                put(o, "\n</think>\n\n");
                while (blen && *body == '\n') body++, blen--;
            }
            put_n(o, body, blen);
            put(o, "<|im_end|>\n");
        }
    }
    if (gen) put(o, "<|im_start|>assistant\n");
}

/* ---- Alpaca --------------------------------------------------------------------------- */

/* The PoliTune paper's template (no input field): the preamble line, a blank line, then per
 * exchange "### Instruction:\n{user}\n\n### Response:\n" followed by the answer when there is
 * one. Choices where the paper says nothing: a system message replaces the whole preamble
 * line (both of its sentences); further exchanges follow an answer after a blank line; no
 * EOS text is written (trainers append the EOS id); add_generation_prompt changes nothing,
 * since the "### Response:\n" header belongs to the instruction block. */
static void render_alpaca(out_t *o, const pt_chat_msg *m, int n) {
    int first = n > 0 && is_role(&m[0], "system") ? 1 : 0;
    put(o, first ? content(&m[0])
                 : "Below is an instruction that describes a task. Write a response that appropriately completes "
                   "the request.");
    put(o, "\n\n");
    for (int i = first; i < n; i++) {
        if (is_role(&m[i], "user")) {
            if (i > first) put(o, "\n\n");
            put(o, "### Instruction:\n");
            put(o, content(&m[i]));
            put(o, "\n\n### Response:\n");
        } else {
            put(o, content(&m[i]));
        }
    }
}

pt_status pt_chat_render_ex(pt_chat_template t, const pt_chat_msg *msgs, int n, bool gen, const char *bos,
                            const char *eos, char **out) {
    *out = NULL;
    PT_TRY(check_roles(msgs, n));
    out_t o = {{0}, PT_OK};
    put(&o, "");
    switch (t) {
    case PT_CHAT_LLAMA3: render_llama3(&o, msgs, n, gen, bos, false); break;
    case PT_CHAT_LLAMA3_LEGACY: render_llama3(&o, msgs, n, gen, bos, true); break;
    case PT_CHAT_LLAMA31: render_llama31(&o, msgs, n, gen, bos); break;
    case PT_CHAT_MISTRAL:
    case PT_CHAT_MISTRAL_V1:
    case PT_CHAT_MISTRAL_V3: {
        int first = is_role(&msgs[0], "system") ? 1 : 0;
        pt_status st = check_alternation(msgs, n, first, pt_chat_template_name(t));
        if (st) {
            pt_tokenizer_buf_free(&o.b);
            return st;
        }
        render_mistral(&o, t, msgs, n, bos, eos);
        break;
    }
    case PT_CHAT_CHATML: render_chatml(&o, msgs, n, gen, "You are a helpful assistant."); break;
    case PT_CHAT_SMOLLM: render_chatml(&o, msgs, n, gen, SMOLLM_SYSTEM); break;
    case PT_CHAT_QWEN3: render_qwen3(&o, msgs, n, gen); break;
    case PT_CHAT_ALPACA: {
        int first = is_role(&msgs[0], "system") ? 1 : 0;
        pt_status st = check_alternation(msgs, n, first, "alpaca");
        if (st) {
            pt_tokenizer_buf_free(&o.b);
            return st;
        }
        render_alpaca(&o, msgs, n);
        break;
    }
    default:
        pt_tokenizer_buf_free(&o.b);
        return pt_error(PT_ERR_ARG, "chat template: no template selected (value %d)", (int)t);
    }
    if (o.st) {
        pt_tokenizer_buf_free(&o.b);
        return o.st;
    }
    *out = o.b.v;
    return PT_OK;
}

pt_status pt_chat_render(pt_chat_template t, const pt_chat_msg *msgs, int n_msgs, bool add_generation_prompt,
                         const char *bos, char **out) {
    return pt_chat_render_ex(t, msgs, n_msgs, add_generation_prompt, bos, "</s>", out);
}
