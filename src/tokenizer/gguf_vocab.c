/* The tokenizer embedded in GGUF metadata, built into the same pipeline as tokenizer.json.
 *
 * tokenizer.ggml.model = "llama": SentencePiece with per-token scores, encoded like
 * llama.cpp (" " prepended to each stretch of text when add_space_prefix, spaces as "▁",
 * score-based merges, <0xXX> byte fallback) and decoded like llama2.c.
 * tokenizer.ggml.model = "gpt2": byte-level BPE with tokenizer.ggml.merges; the split regex
 * comes from tokenizer.ggml.pre (llama-bpe/llama3: Llama 3's, qwen2: Qwen2's, default/gpt2 or
 * absent: GPT-2's; smollm (and starcoder, which llama.cpp treats alike): every digit isolated
 * first, then GPT-2's, as SmolLM's tokenizer.json chains Digits(individual_digits) and ByteLevel). For qwen2 the NFC normaliser of Qwen's tokenizer.json is applied too, so
 * both sources of the same checkpoint encode alike (llama.cpp itself skips it).
 *
 * Control (3), unknown (2) and user-defined (4) tokens are recognised in the text, as
 * llama.cpp does with parse_special; control and unknown tokens count as special. */
#include "tokenizer/tokenizer_impl.h"

#include <stdlib.h>
#include <string.h>

#define MAX_VOCAB (1 << 24)

static const char llama3_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char qwen2_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char gpt2_regex[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

enum { TYPE_NORMAL = 1, TYPE_UNKNOWN = 2, TYPE_CONTROL = 3, TYPE_USER = 4, TYPE_UNUSED = 5, TYPE_BYTE = 6 };

static bool str_eq(const pt_gguf_kv *kv, const char *s) {
    return kv->v.s.len == strlen(s) && memcmp(kv->v.s.ptr, s, kv->v.s.len) == 0;
}

static pt_status get_array(const pt_gguf *g, const char *label, const char *key, bool strings, uint64_t n,
                           bool required, const pt_gguf_kv **out) {
    const pt_gguf_kv *kv = pt_gguf_find(g, key);
    *out = NULL;
    if (!kv) return required ? pt_error(PT_ERR_FORMAT, "%s: missing metadata key '%s'", label, key) : PT_OK;
    bool numeric = kv->arr_type <= PT_GGUF_BOOL || kv->arr_type == PT_GGUF_U64 || kv->arr_type == PT_GGUF_I64 ||
                   kv->arr_type == PT_GGUF_F64;
    if (kv->type != PT_GGUF_ARRAY || (strings ? kv->arr_type != PT_GGUF_STRING : !numeric))
        return pt_error(PT_ERR_FORMAT, "%s: metadata key '%s': expected an array of %s", label, key,
                        strings ? "strings" : "numbers");
    if (n != UINT64_MAX && kv->arr_n != n)
        return pt_error(PT_ERR_FORMAT, "%s: metadata key '%s': expected %llu entries, found %llu", label, key,
                        (unsigned long long)n, (unsigned long long)kv->arr_n);
    *out = kv;
    return PT_OK;
}

/* A token id key: absent or 0xFFFFFFFF (how converters write "none") leaves -1. */
static pt_status get_id(const pt_gguf *g, const char *label, const char *key, int32_t n, int32_t *out) {
    const pt_gguf_kv *kv = pt_gguf_find(g, key);
    if (!kv) return PT_OK;
    int64_t v;
    if (kv->type == PT_GGUF_U32 || kv->type == PT_GGUF_U64 || kv->type == PT_GGUF_U16 || kv->type == PT_GGUF_U8) {
        if (kv->v.u == 0xFFFFFFFFu || kv->v.u == UINT64_MAX) return PT_OK;
        v = kv->v.u > INT64_MAX ? -1 : (int64_t)kv->v.u;
    } else if (kv->type == PT_GGUF_I32 || kv->type == PT_GGUF_I64 || kv->type == PT_GGUF_I16 || kv->type == PT_GGUF_I8) {
        if (kv->v.i == -1) return PT_OK;
        v = kv->v.i;
    } else {
        return pt_error(PT_ERR_FORMAT, "%s: metadata key '%s': expected an integer token id", label, key);
    }
    if (v < 0 || v >= n)
        return pt_error(PT_ERR_FORMAT, "%s: metadata key '%s': token id %lld outside the vocabulary (size %d)", label,
                        key, (long long)v, n);
    *out = (int32_t)v;
    return PT_OK;
}

static pt_status get_flag(const pt_gguf *g, const char *label, const char *key, bool *out) {
    const pt_gguf_kv *kv = pt_gguf_find(g, key);
    if (!kv) return PT_OK;
    if (kv->type != PT_GGUF_BOOL) return pt_error(PT_ERR_FORMAT, "%s: metadata key '%s': expected a bool", label, key);
    *out = kv->v.u != 0;
    return PT_OK;
}

static pt_status push_norm(pt_tokenizer *t, int type, const char *a, const char *b) {
    tk_norm *v = realloc(t->norm, (size_t)(t->n_norm + 1) * sizeof *v);
    if (!v) return pt_error(PT_ERR_OOM, "%s: out of memory", t->label);
    t->norm = v;
    tk_norm nm = {.type = type};
    if (a && !(nm.a = malloc(strlen(a) + 1))) return pt_error(PT_ERR_OOM, "%s: out of memory", t->label);
    if (b && !(nm.b = malloc(strlen(b) + 1))) {
        free(nm.a);
        return pt_error(PT_ERR_OOM, "%s: out of memory", t->label);
    }
    if (a) memcpy(nm.a, a, (nm.alen = strlen(a)) + 1);
    if (b) memcpy(nm.b, b, (nm.blen = strlen(b)) + 1);
    t->norm[t->n_norm++] = nm;
    return PT_OK;
}

static pt_status push_dec(pt_tokenizer *t, tk_dec d) {
    tk_dec *v = realloc(t->dec, (size_t)(t->n_dec + 1) * sizeof *v);
    if (!v) return pt_error(PT_ERR_OOM, "%s: out of memory", t->label);
    t->dec = v;
    t->dec[t->n_dec++] = d;
    return PT_OK;
}

static pt_status push_pre(pt_tokenizer *t, tk_pre p) {
    tk_pre *v = realloc(t->pre, (size_t)(t->n_pre + 1) * sizeof *v);
    if (!v) {
        if (p.re) pcre2_code_free(p.re);
        return pt_error(PT_ERR_OOM, "%s: out of memory", t->label);
    }
    t->pre = v;
    t->pre[t->n_pre++] = p;
    return PT_OK;
}

static pt_status setup_spm(pt_tokenizer *t, const pt_gguf *g, const char *label, int32_t n) {
    const pt_gguf_kv *scores;
    PT_TRY(get_array(g, label, "tokenizer.ggml.scores", false, (uint64_t)n, false, &scores));
    t->scores = calloc((size_t)(n ? n : 1), sizeof *t->scores);
    if (!t->scores) return pt_error(PT_ERR_OOM, "%s: out of memory for token scores", label);
    for (int32_t i = 0; scores && i < n; i++) t->scores[i] = (float)pt_gguf_arr_num(scores, (uint64_t)i);
    bool space_prefix = true;
    PT_TRY(get_flag(g, label, "tokenizer.ggml.add_space_prefix", &space_prefix));
    if (space_prefix) PT_TRY(push_norm(t, TK_NORM_PREPEND, "\xE2\x96\x81", NULL));
    PT_TRY(push_norm(t, TK_NORM_REPLACE, " ", "\xE2\x96\x81"));
    tk_dec rep = {.type = TK_DEC_REPLACE};
    if (!(rep.a = malloc(4)) || !(rep.b = malloc(2))) {
        free(rep.a);
        return pt_error(PT_ERR_OOM, "%s: out of memory", label);
    }
    memcpy(rep.a, "\xE2\x96\x81", 4);
    memcpy(rep.b, " ", 2);
    rep.alen = 3;
    rep.blen = 1;
    PT_TRY(push_dec(t, rep));
    PT_TRY(push_dec(t, (tk_dec){.type = TK_DEC_BYTEFALLBACK}));
    PT_TRY(push_dec(t, (tk_dec){.type = TK_DEC_FUSE}));
    t->strip_after_bos = space_prefix;
    t->model = TK_MODEL_SPM_SCORES;
    t->kind = "sentencepiece (scores)";
    t->add_bos = true; /* llama.cpp's default for this vocabulary type */
    return PT_OK;
}

static pt_status setup_gpt2(pt_tokenizer *t, const pt_gguf *g, const char *label) {
    const pt_gguf_kv *merges, *pre = pt_gguf_find(g, "tokenizer.ggml.pre");
    PT_TRY(get_array(g, label, "tokenizer.ggml.merges", true, UINT64_MAX, true, &merges));
    if (pre && pre->type != PT_GGUF_STRING)
        return pt_error(PT_ERR_FORMAT, "%s: metadata key 'tokenizer.ggml.pre': expected a string", label);
    const char *regex = gpt2_regex;
    bool nfc = false, split_digits = false;
    t->add_bos = false;
    if (pre && (str_eq(pre, "llama-bpe") || str_eq(pre, "llama3") || str_eq(pre, "llama-v3") ||
                str_eq(pre, "smaug-bpe"))) {
        regex = llama3_regex;
        t->ignore_merges = true;
        t->add_bos = true;
    } else if (pre && str_eq(pre, "qwen2")) {
        regex = qwen2_regex;
        nfc = true;
    } else if (pre && (str_eq(pre, "smollm") || str_eq(pre, "starcoder"))) {
        split_digits = true;
    } else if (pre && !str_eq(pre, "default") && !str_eq(pre, "gpt2") && !str_eq(pre, "gpt-2")) {
        return pt_error(PT_ERR_UNSUPPORTED, "%s: tokenizer.ggml.pre: pre-tokenizer '%.*s' is not supported "
                        "(supported: llama-bpe, llama3, qwen2, smollm, starcoder, default, gpt2)", label, (int)pre->v.s.len, pre->v.s.ptr);
    }
    if (nfc) PT_TRY(push_norm(t, TK_NORM_NFC, NULL, NULL));
    if (split_digits) {
        tk_pre digits = {.type = TK_PRE_SPLIT, .behavior = TK_SPLIT_ISOLATED};
        PT_TRY(pt_tokenizer_compile_regex(&digits.re, "\\p{N}", 5, label, "tokenizer.ggml.pre"));
        PT_TRY(push_pre(t, digits));
    }
    tk_pre split = {.type = TK_PRE_SPLIT, .behavior = TK_SPLIT_ISOLATED};
    PT_TRY(pt_tokenizer_compile_regex(&split.re, regex, strlen(regex), label, "tokenizer.ggml.pre"));
    PT_TRY(push_pre(t, split));
    PT_TRY(push_pre(t, (tk_pre){.type = TK_PRE_BYTELEVEL}));
    PT_TRY(push_dec(t, (tk_dec){.type = TK_DEC_BYTELEVEL}));

    if (merges->arr_n >= UINT32_MAX)
        return pt_error(PT_ERR_FORMAT, "%s: tokenizer.ggml.merges: %llu merges is too many", label,
                        (unsigned long long)merges->arr_n);
    PT_TRY(pt_tokenizer_reserve_merges(t, merges->arr_n));
    for (uint64_t i = 0; i < merges->arr_n; i++) {
        const pt_gguf_str *m = &merges->arr_str[i];
        const char *sp = memchr(m->ptr, ' ', m->len);
        if (!sp || memchr(sp + 1, ' ', m->len - (size_t)(sp + 1 - m->ptr)))
            return pt_error(PT_ERR_FORMAT, "%s: tokenizer.ggml.merges[%llu]: expected \"left right\" with one space",
                            label, (unsigned long long)i);
        size_t an = (size_t)(sp - m->ptr), bn = m->len - an - 1;
        int32_t a = pt_tokenizer_vocab_find(t, m->ptr, an), b = pt_tokenizer_vocab_find(t, sp + 1, bn);
        char small[256];
        char *cat = m->len <= sizeof small ? small : malloc(m->len);
        if (!cat) return pt_error(PT_ERR_OOM, "%s: out of memory", label);
        memcpy(cat, m->ptr, an);
        memcpy(cat + an, sp + 1, bn);
        int32_t c = pt_tokenizer_vocab_find(t, cat, an + bn);
        if (cat != small) free(cat);
        if (a < 0 || b < 0 || c < 0)
            return pt_error(PT_ERR_FORMAT, "%s: tokenizer.ggml.merges[%llu]: '%.*s' names a token that is not in "
                            "tokenizer.ggml.tokens", label, (unsigned long long)i, (int)(m->len > 80 ? 80 : m->len),
                            m->ptr);
        PT_TRY(pt_tokenizer_add_merge(t, a, b, (uint32_t)i, c));
    }
    t->model = TK_MODEL_BPE;
    t->kind = "byte-level BPE";
    return PT_OK;
}

static pt_status build(pt_tokenizer *t, const pt_gguf *g, const char *label) {
    const pt_gguf_kv *model = pt_gguf_find(g, "tokenizer.ggml.model"), *tokens, *types;
    if (!model) return pt_error(PT_ERR_FORMAT, "%s: missing metadata key 'tokenizer.ggml.model'", label);
    if (model->type != PT_GGUF_STRING)
        return pt_error(PT_ERR_FORMAT, "%s: metadata key 'tokenizer.ggml.model': expected a string", label);
    bool spm = str_eq(model, "llama"), gpt2 = str_eq(model, "gpt2");
    if (!spm && !gpt2)
        return pt_error(PT_ERR_UNSUPPORTED, "%s: tokenizer.ggml.model: '%.*s' is not supported (supported: llama, gpt2)",
                        label, (int)model->v.s.len, model->v.s.ptr);
    PT_TRY(get_array(g, label, "tokenizer.ggml.tokens", true, UINT64_MAX, true, &tokens));
    if (tokens->arr_n == 0 || tokens->arr_n > MAX_VOCAB)
        return pt_error(PT_ERR_FORMAT, "%s: tokenizer.ggml.tokens: %llu tokens (expected 1 to %d)", label,
                        (unsigned long long)tokens->arr_n, MAX_VOCAB);
    int32_t n = (int32_t)tokens->arr_n;
    PT_TRY(get_array(g, label, "tokenizer.ggml.token_type", false, (uint64_t)n, false, &types));
    PT_TRY(pt_tokenizer_set_vocab_size(t, n));
    for (int32_t i = 0; i < n; i++) PT_TRY(pt_tokenizer_add_vocab(t, i, tokens->arr_str[i].ptr, tokens->arr_str[i].len));
    for (int32_t i = 0; types && i < n; i++) {
        int type = (int)pt_gguf_arr_num(types, (uint64_t)i);
        const pt_gguf_str *s = &tokens->arr_str[i];
        if (type == TYPE_BYTE) t->attr[i] |= TK_ATTR_BYTE;
        if (type == TYPE_UNUSED) t->attr[i] |= TK_ATTR_SPECIAL;
        if ((type == TYPE_CONTROL || type == TYPE_UNKNOWN || type == TYPE_USER) && s->len > 0) {
            tk_added a = {.content = (char *)s->ptr, .len = s->len, .id = i, .special = type != TYPE_USER};
            PT_TRY(pt_tokenizer_add_added(t, &a));
            if (type == TYPE_CONTROL) t->attr[i] |= TK_ATTR_CONTROL;
        }
    }
    PT_TRY(spm ? setup_spm(t, g, label, n) : setup_gpt2(t, g, label));

    if (spm) t->unk_id = 0 < n ? 0 : -1; /* llama.cpp's default for SentencePiece */
    PT_TRY(get_id(g, label, "tokenizer.ggml.bos_token_id", n, &t->bos));
    PT_TRY(get_id(g, label, "tokenizer.ggml.eos_token_id", n, &t->eos));
    PT_TRY(get_id(g, label, "tokenizer.ggml.unknown_token_id", n, &t->unk_id));
    PT_TRY(get_id(g, label, "tokenizer.ggml.padding_token_id", n, &t->pad));
    bool add_eos = false;
    PT_TRY(get_flag(g, label, "tokenizer.ggml.add_bos_token", &t->add_bos));
    PT_TRY(get_flag(g, label, "tokenizer.ggml.add_eos_token", &add_eos));
    if (t->add_bos && t->bos < 0) t->add_bos = false;
    if (t->add_bos) {
        if (!(t->prefix = malloc(sizeof *t->prefix))) return pt_error(PT_ERR_OOM, "%s: out of memory", label);
        t->prefix[0] = t->bos;
        t->n_prefix = 1;
    }
    if (add_eos && t->eos >= 0) {
        if (!(t->suffix = malloc(sizeof *t->suffix))) return pt_error(PT_ERR_OOM, "%s: out of memory", label);
        t->suffix[0] = t->eos;
        t->n_suffix = 1;
    }
    const pt_gguf_kv *ct = pt_gguf_find(g, "tokenizer.chat_template");
    if (ct && ct->type == PT_GGUF_STRING) {
        if (!(t->chat_template = malloc(ct->v.s.len + 1))) return pt_error(PT_ERR_OOM, "%s: out of memory", label);
        memcpy(t->chat_template, ct->v.s.ptr, ct->v.s.len);
        t->chat_template[ct->v.s.len] = 0;
    }
    return pt_tokenizer_finish(t);
}

pt_status pt_tokenizer_load_gguf(pt_tokenizer **out, const pt_gguf *g) {
    *out = NULL;
    const char *label = g->label ? g->label : "gguf";
    pt_tokenizer *t = NULL;
    pt_status st = pt_tokenizer_new(&t, label);
    if (!st) st = build(t, g, label);
    if (st) {
        pt_tokenizer_free(t);
        return st;
    }
    *out = t;
    return PT_OK;
}
