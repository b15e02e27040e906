/* Loading a Hugging Face tokenizer.json (and the tokenizer_config.json beside it) into the
 * pipeline of tokenizer_impl.h. Supported: model BPE (merges as "a b" strings or [a, b]
 * pairs, byte_fallback, ignore_merges, unk_token, fuse_unk); normalisers NFC/NFD/NFKC/NFKD,
 * Prepend, Replace (string pattern), Lowercase, Strip, Sequence; pre-tokenisers Split,
 * ByteLevel, Metaspace, Digits, Sequence; post-processors TemplateProcessing, ByteLevel,
 * Sequence; decoders ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence.
 * Anything else is PT_ERR_UNSUPPORTED naming the file and key, so a tokenizer is never
 * silently approximated. The file is untrusted input (a fuzz target): every field's type is
 * checked and ids are bounded before anything is allocated from them. */
#include "tokenizer/tokenizer_impl.h"
#include "util/utf8.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "util/file.h"

/* Ids beyond this, or far beyond the number of entries, are refused: they would only make
 * a hostile file allocate per-id arrays it does not fill. */
#define MAX_VOCAB (1 << 24)

typedef struct {
    pt_tokenizer *t;
    const char *label;
} ld;

static pt_status fmt_err(const ld *L, const char *key, const char *what) {
    return pt_error(PT_ERR_FORMAT, "%s: %s: %s", L->label, key, what);
}

static pt_status unsupported(const ld *L, const char *key, const char *type, const char *known) {
    return pt_error(PT_ERR_UNSUPPORTED, "%s: %s: type '%s' is not supported (supported: %s)", L->label, key, type,
                    known);
}

/* Optional boolean field; a present field of another type is an error. */
static pt_status get_bool(const ld *L, json_t *o, const char *key, const char *path, bool def, bool *out) {
    json_t *v = json_object_get(o, key);
    *out = def;
    if (!v || json_is_null(v)) return PT_OK;
    if (!json_is_boolean(v)) return pt_error(PT_ERR_FORMAT, "%s: %s.%s: expected a boolean", L->label, path, key);
    *out = json_is_true(v);
    return PT_OK;
}

/* Required string field. */
static pt_status get_str(const ld *L, json_t *o, const char *key, const char *path, const char **out, size_t *len) {
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        return pt_error(PT_ERR_FORMAT, "%s: %s.%s: expected a string, found %s", L->label, path, key,
                        v ? "another type" : "nothing");
    *out = json_string_value(v);
    if (len) *len = json_string_length(v);
    return PT_OK;
}

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

/* A {"String": s} or {"Regex": r} pattern. */
static pt_status get_pattern(const ld *L, json_t *o, const char *path, const char **s, size_t *n, bool *is_regex) {
    json_t *p = json_object_get(o, "pattern");
    if (!json_is_object(p)) return pt_error(PT_ERR_FORMAT, "%s: %s.pattern: expected an object", L->label, path);
    json_t *v;
    if ((v = json_object_get(p, "String")) && json_is_string(v)) *is_regex = false;
    else if ((v = json_object_get(p, "Regex")) && json_is_string(v)) *is_regex = true;
    else return pt_error(PT_ERR_FORMAT, "%s: %s.pattern: expected {\"String\": ...} or {\"Regex\": ...}", L->label, path);
    *s = json_string_value(v);
    *n = json_string_length(v);
    return PT_OK;
}

/* A Replace step (normaliser or decoder alike): a literal pattern and its replacement. */
static pt_status parse_replace(const ld *L, json_t *o, const char *path, char **a, size_t *alen, char **b, size_t *blen) {
    const char *s, *c;
    size_t n, cn;
    bool re;
    PT_TRY(get_pattern(L, o, path, &s, &n, &re));
    if (re) return pt_error(PT_ERR_UNSUPPORTED, "%s: %s.pattern: Regex patterns in Replace are not supported", L->label, path);
    PT_TRY(get_str(L, o, "content", path, &c, &cn));
    *a = dup_n(s, n);
    *b = dup_n(c, cn);
    *alen = n;
    *blen = cn;
    if (!*a || !*b) {
        free(*a);
        free(*b);
        *a = *b = NULL;
        return pt_error(PT_ERR_OOM, "%s: out of memory", L->label);
    }
    return PT_OK;
}

/* One character given as a string (Strip content, Metaspace replacement). */
static pt_status get_char(const ld *L, json_t *o, const char *key, const char *path, uint32_t *cp) {
    const char *s;
    size_t n;
    PT_TRY(get_str(L, o, key, path, &s, &n));
    int len;
    if (n == 0) return pt_error(PT_ERR_FORMAT, "%s: %s.%s: expected one character, found \"\"", L->label, path, key);
    *cp = pt_utf8_decode(s, n, &len);
    if ((size_t)len != n)
        return pt_error(PT_ERR_FORMAT, "%s: %s.%s: expected one character, found \"%s\"", L->label, path, key, s);
    return PT_OK;
}

static int prepend_scheme(const ld *L, json_t *o, const char *path, pt_status *st) {
    json_t *v = json_object_get(o, "prepend_scheme");
    *st = PT_OK;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (!strcmp(s, "always")) return TK_PREPEND_ALWAYS;
        if (!strcmp(s, "first")) return TK_PREPEND_FIRST;
        if (!strcmp(s, "never")) return TK_PREPEND_NEVER;
        *st = pt_error(PT_ERR_FORMAT, "%s: %s.prepend_scheme: expected always, first or never, found '%s'", L->label,
                       path, s);
        return 0;
    }
    bool add = true; /* older files: add_prefix_space */
    *st = get_bool(L, o, "add_prefix_space", path, true, &add);
    return add ? TK_PREPEND_ALWAYS : TK_PREPEND_NEVER;
}

/* ---- normalizer ----------------------------------------------------------------------- */

static pt_status add_norm(const ld *L, tk_norm nm) {
    pt_tokenizer *t = L->t;
    tk_norm *v = realloc(t->norm, (size_t)(t->n_norm + 1) * sizeof *v);
    if (!v) {
        free(nm.a);
        free(nm.b);
        return pt_error(PT_ERR_OOM, "%s: out of memory", L->label);
    }
    t->norm = v;
    t->norm[t->n_norm++] = nm;
    return PT_OK;
}

static pt_status parse_normalizer(const ld *L, json_t *o, const char *path) {
    if (!o || json_is_null(o)) return PT_OK;
    if (!json_is_object(o)) return fmt_err(L, path, "expected an object or null");
    const char *type = NULL;
    PT_TRY(get_str(L, o, "type", path, &type, NULL));
    tk_norm nm = {0};
    if (!strcmp(type, "NFC")) nm.type = TK_NORM_NFC;
    else if (!strcmp(type, "NFD")) nm.type = TK_NORM_NFD;
    else if (!strcmp(type, "NFKC")) nm.type = TK_NORM_NFKC;
    else if (!strcmp(type, "NFKD")) nm.type = TK_NORM_NFKD;
    else if (!strcmp(type, "Lowercase")) nm.type = TK_NORM_LOWERCASE;
    else if (!strcmp(type, "Strip")) {
        nm.type = TK_NORM_STRIP;
        PT_TRY(get_bool(L, o, "strip_left", path, true, &nm.left));
        PT_TRY(get_bool(L, o, "strip_right", path, true, &nm.right));
    } else if (!strcmp(type, "Prepend")) {
        const char *s;
        size_t n;
        PT_TRY(get_str(L, o, "prepend", path, &s, &n));
        nm.type = TK_NORM_PREPEND;
        if (!(nm.a = dup_n(s, n))) return pt_error(PT_ERR_OOM, "%s: out of memory", L->label);
        nm.alen = n;
    } else if (!strcmp(type, "Replace")) {
        nm.type = TK_NORM_REPLACE;
        PT_TRY(parse_replace(L, o, path, &nm.a, &nm.alen, &nm.b, &nm.blen));
    } else if (!strcmp(type, "Sequence")) {
        json_t *arr = json_object_get(o, "normalizers");
        if (!json_is_array(arr)) return pt_error(PT_ERR_FORMAT, "%s: %s.normalizers: expected an array", L->label, path);
        for (size_t i = 0; i < json_array_size(arr); i++) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.normalizers[%zu]", path, i);
            PT_TRY(parse_normalizer(L, json_array_get(arr, i), sub));
        }
        return PT_OK;
    } else {
        return unsupported(L, path, type, "NFC, NFD, NFKC, NFKD, Prepend, Replace, Lowercase, Strip, Sequence");
    }
    return add_norm(L, nm);
}

/* ---- pre-tokenizer -------------------------------------------------------------------- */

/* GPT-2's pattern, used by ByteLevel with use_regex. */
static const char gpt2_regex[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static pt_status add_pre(const ld *L, tk_pre p) {
    pt_tokenizer *t = L->t;
    tk_pre *v = realloc(t->pre, (size_t)(t->n_pre + 1) * sizeof *v);
    if (!v) {
        if (p.re) pcre2_code_free(p.re);
        free(p.lit);
        return pt_error(PT_ERR_OOM, "%s: out of memory", L->label);
    }
    t->pre = v;
    t->pre[t->n_pre++] = p;
    return PT_OK;
}

static pt_status parse_pretokenizer(const ld *L, json_t *o, const char *path) {
    if (!o || json_is_null(o)) return PT_OK;
    if (!json_is_object(o)) return fmt_err(L, path, "expected an object or null");
    const char *type = NULL;
    PT_TRY(get_str(L, o, "type", path, &type, NULL));
    tk_pre p = {0};
    char key[300];
    if (!strcmp(type, "Split")) {
        const char *s = NULL, *beh = NULL;
        size_t n;
        bool re;
        PT_TRY(get_pattern(L, o, path, &s, &n, &re));
        PT_TRY(get_str(L, o, "behavior", path, &beh, NULL));
        PT_TRY(get_bool(L, o, "invert", path, false, &p.invert));
        p.type = TK_PRE_SPLIT;
        if (!strcmp(beh, "Removed")) p.behavior = TK_SPLIT_REMOVED;
        else if (!strcmp(beh, "Isolated")) p.behavior = TK_SPLIT_ISOLATED;
        else if (!strcmp(beh, "MergedWithPrevious")) p.behavior = TK_SPLIT_MERGED_PREV;
        else if (!strcmp(beh, "MergedWithNext")) p.behavior = TK_SPLIT_MERGED_NEXT;
        else if (!strcmp(beh, "Contiguous")) p.behavior = TK_SPLIT_CONTIGUOUS;
        else return pt_error(PT_ERR_FORMAT, "%s: %s.behavior: unknown split behavior '%s'", L->label, path, beh);
        if (re) {
            snprintf(key, sizeof key, "%s.pattern.Regex", path);
            PT_TRY(pt_tokenizer_compile_regex(&p.re, s, n, L->label, key));
        } else {
            if (!(p.lit = dup_n(s, n))) return pt_error(PT_ERR_OOM, "%s: out of memory", L->label);
            p.litlen = n;
        }
    } else if (!strcmp(type, "ByteLevel")) {
        p.type = TK_PRE_BYTELEVEL;
        PT_TRY(get_bool(L, o, "add_prefix_space", path, true, &p.add_prefix_space));
        PT_TRY(get_bool(L, o, "use_regex", path, true, &p.use_regex));
        if (p.use_regex) {
            snprintf(key, sizeof key, "%s (GPT-2 regex)", path);
            PT_TRY(pt_tokenizer_compile_regex(&p.re, gpt2_regex, sizeof gpt2_regex - 1, L->label, key));
        }
    } else if (!strcmp(type, "Metaspace")) {
        uint32_t cp;
        pt_status st;
        PT_TRY(get_char(L, o, "replacement", path, &cp));
        p.type = TK_PRE_METASPACE;
        p.replen = pt_utf8_encode(cp, p.rep);
        p.prepend_scheme = prepend_scheme(L, o, path, &st);
        if (st) return st;
        PT_TRY(get_bool(L, o, "split", path, true, &p.split));
    } else if (!strcmp(type, "Digits")) {
        bool individual;
        PT_TRY(get_bool(L, o, "individual_digits", path, false, &individual));
        p.type = TK_PRE_SPLIT;
        p.behavior = individual ? TK_SPLIT_ISOLATED : TK_SPLIT_CONTIGUOUS;
        snprintf(key, sizeof key, "%s (digits)", path);
        PT_TRY(pt_tokenizer_compile_regex(&p.re, "\\p{N}", 5, L->label, key));
    } else if (!strcmp(type, "Sequence")) {
        json_t *arr = json_object_get(o, "pretokenizers");
        if (!json_is_array(arr))
            return pt_error(PT_ERR_FORMAT, "%s: %s.pretokenizers: expected an array", L->label, path);
        for (size_t i = 0; i < json_array_size(arr); i++) {
            snprintf(key, sizeof key, "%s.pretokenizers[%zu]", path, i);
            PT_TRY(parse_pretokenizer(L, json_array_get(arr, i), key));
        }
        return PT_OK;
    } else {
        return unsupported(L, path, type, "Split, ByteLevel, Metaspace, Digits, Sequence");
    }
    return add_pre(L, p);
}

/* ---- post-processor ------------------------------------------------------------------- */

static pt_status append_ids(int32_t **v, int *n, const int32_t *src, int k) {
    int32_t *p = realloc(*v, (size_t)(*n + k + 1) * sizeof *p);
    if (!p) return pt_error(PT_ERR_OOM, "tokenizer: out of memory");
    memcpy(p + *n, src, (size_t)k * sizeof *p);
    *v = p;
    *n += k;
    return PT_OK;
}

static pt_status parse_template(const ld *L, json_t *o, const char *path) {
    json_t *single = json_object_get(o, "single"), *special = json_object_get(o, "special_tokens");
    if (!json_is_array(single)) return pt_error(PT_ERR_FORMAT, "%s: %s.single: expected an array", L->label, path);
    bool seen_seq = false;
    for (size_t i = 0; i < json_array_size(single); i++) {
        json_t *it = json_array_get(single, i), *sp;
        if (json_object_get(it, "Sequence")) {
            if (seen_seq)
                return pt_error(PT_ERR_UNSUPPORTED, "%s: %s.single[%zu]: more than one sequence", L->label, path, i);
            seen_seq = true;
            continue;
        }
        sp = json_object_get(it, "SpecialToken");
        const char *name = NULL;
        if (!json_is_object(sp) || get_str(L, sp, "id", path, &name, NULL))
            return pt_error(PT_ERR_FORMAT, "%s: %s.single[%zu]: expected {\"SpecialToken\": {\"id\": ...}} or "
                            "{\"Sequence\": ...}", L->label, path, i);
        json_t *def = json_object_get(special, name), *ids = json_object_get(def, "ids");
        if (!json_is_array(ids))
            return pt_error(PT_ERR_FORMAT, "%s: %s.special_tokens: '%s' is missing or has no ids array", L->label,
                            path, name);
        for (size_t k = 0; k < json_array_size(ids); k++) {
            json_t *x = json_array_get(ids, k);
            json_int_t id = json_is_integer(x) ? json_integer_value(x) : -1;
            if (id < 0 || id >= L->t->n_vocab)
                return pt_error(PT_ERR_FORMAT, "%s: %s.special_tokens.%s.ids[%zu]: expected an id in [0, %d)",
                                L->label, path, name, k, L->t->n_vocab);
            int32_t v = (int32_t)id;
            PT_TRY(seen_seq ? append_ids(&L->t->suffix, &L->t->n_suffix, &v, 1)
                            : append_ids(&L->t->prefix, &L->t->n_prefix, &v, 1));
        }
    }
    return PT_OK;
}

static pt_status parse_post(const ld *L, json_t *o, const char *path) {
    if (!o || json_is_null(o)) return PT_OK;
    if (!json_is_object(o)) return fmt_err(L, path, "expected an object or null");
    const char *type = NULL;
    PT_TRY(get_str(L, o, "type", path, &type, NULL));
    if (!strcmp(type, "ByteLevel")) return PT_OK; /* offsets only */
    if (!strcmp(type, "TemplateProcessing")) return parse_template(L, o, path);
    if (!strcmp(type, "Sequence")) {
        json_t *arr = json_object_get(o, "processors");
        if (!json_is_array(arr)) return pt_error(PT_ERR_FORMAT, "%s: %s.processors: expected an array", L->label, path);
        for (size_t i = 0; i < json_array_size(arr); i++) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.processors[%zu]", path, i);
            PT_TRY(parse_post(L, json_array_get(arr, i), sub));
        }
        return PT_OK;
    }
    return unsupported(L, path, type, "TemplateProcessing, ByteLevel, Sequence");
}

/* ---- decoder -------------------------------------------------------------------------- */

static pt_status add_dec(const ld *L, tk_dec d) {
    pt_tokenizer *t = L->t;
    tk_dec *v = realloc(t->dec, (size_t)(t->n_dec + 1) * sizeof *v);
    if (!v) {
        free(d.a);
        free(d.b);
        return pt_error(PT_ERR_OOM, "%s: out of memory", L->label);
    }
    t->dec = v;
    t->dec[t->n_dec++] = d;
    return PT_OK;
}

static pt_status get_small_int(const ld *L, json_t *o, const char *key, const char *path, int *out) {
    json_t *v = json_object_get(o, key);
    *out = 0;
    if (!v) return PT_OK;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000000)
        return pt_error(PT_ERR_FORMAT, "%s: %s.%s: expected a small non-negative integer", L->label, path, key);
    *out = (int)json_integer_value(v);
    return PT_OK;
}

static pt_status parse_decoder(const ld *L, json_t *o, const char *path) {
    if (!o || json_is_null(o)) return PT_OK;
    if (!json_is_object(o)) return fmt_err(L, path, "expected an object or null");
    const char *type = NULL;
    PT_TRY(get_str(L, o, "type", path, &type, NULL));
    tk_dec d = {0};
    if (!strcmp(type, "ByteLevel")) d.type = TK_DEC_BYTELEVEL;
    else if (!strcmp(type, "ByteFallback")) d.type = TK_DEC_BYTEFALLBACK;
    else if (!strcmp(type, "Fuse")) d.type = TK_DEC_FUSE;
    else if (!strcmp(type, "Strip")) {
        d.type = TK_DEC_STRIP;
        PT_TRY(get_char(L, o, "content", path, &d.ch));
        PT_TRY(get_small_int(L, o, "start", path, &d.start));
        PT_TRY(get_small_int(L, o, "stop", path, &d.stop));
    } else if (!strcmp(type, "Metaspace")) {
        pt_status st;
        d.type = TK_DEC_METASPACE;
        PT_TRY(get_char(L, o, "replacement", path, &d.ch));
        d.prepend_scheme = prepend_scheme(L, o, path, &st);
        if (st) return st;
    } else if (!strcmp(type, "Replace")) {
        d.type = TK_DEC_REPLACE;
        PT_TRY(parse_replace(L, o, path, &d.a, &d.alen, &d.b, &d.blen));
    } else if (!strcmp(type, "Sequence")) {
        json_t *arr = json_object_get(o, "decoders");
        if (!json_is_array(arr)) return pt_error(PT_ERR_FORMAT, "%s: %s.decoders: expected an array", L->label, path);
        for (size_t i = 0; i < json_array_size(arr); i++) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.decoders[%zu]", path, i);
            PT_TRY(parse_decoder(L, json_array_get(arr, i), sub));
        }
        return PT_OK;
    } else {
        return unsupported(L, path, type, "ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence");
    }
    return add_dec(L, d);
}

/* ---- model ---------------------------------------------------------------------------- */

static pt_status merge_ids(const ld *L, size_t rank, const char *a, size_t an, const char *b, size_t bn) {
    pt_tokenizer *t = L->t;
    int32_t ia = pt_tokenizer_vocab_find(t, a, an), ib = pt_tokenizer_vocab_find(t, b, bn);
    if (ia < 0 || ib < 0) {
        const char *bad = ia < 0 ? a : b;
        size_t bl = ia < 0 ? an : bn;
        return pt_error(PT_ERR_FORMAT, "%s: model.merges[%zu]: token '%.*s' is not in model.vocab", L->label, rank,
                        (int)(bl > 80 ? 80 : bl), bad);
    }
    char small[256];
    char *cat = an + bn <= sizeof small ? small : malloc(an + bn);
    if (!cat) return pt_error(PT_ERR_OOM, "%s: out of memory", L->label);
    memcpy(cat, a, an);
    memcpy(cat + an, b, bn);
    int32_t im = pt_tokenizer_vocab_find(t, cat, an + bn);
    if (cat != small) free(cat);
    if (im < 0)
        return pt_error(PT_ERR_FORMAT, "%s: model.merges[%zu]: the merge of '%.*s' and '%.*s' is not in model.vocab",
                        L->label, rank, (int)(an > 80 ? 80 : an), a, (int)(bn > 80 ? 80 : bn), b);
    return pt_tokenizer_add_merge(t, ia, ib, (uint32_t)rank, im);
}

static pt_status parse_merges(const ld *L, json_t *merges) {
    if (!merges || json_is_null(merges)) return PT_OK;
    if (!json_is_array(merges)) return fmt_err(L, "model.merges", "expected an array");
    size_t n = json_array_size(merges);
    if (n >= UINT32_MAX) return fmt_err(L, "model.merges", "too many merges");
    PT_TRY(pt_tokenizer_reserve_merges(L->t, n));
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(merges, i);
        if (json_is_string(m)) {
            const char *s = json_string_value(m);
            size_t len = json_string_length(m);
            const char *sp = memchr(s, ' ', len);
            if (!sp || memchr(sp + 1, ' ', len - (size_t)(sp + 1 - s)))
                return pt_error(PT_ERR_FORMAT, "%s: model.merges[%zu]: expected \"left right\" with one space, found "
                                "'%.*s'", L->label, i, (int)(len > 80 ? 80 : len), s);
            PT_TRY(merge_ids(L, i, s, (size_t)(sp - s), sp + 1, len - (size_t)(sp - s) - 1));
        } else if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
                   json_is_string(json_array_get(m, 1))) {
            json_t *a = json_array_get(m, 0), *b = json_array_get(m, 1);
            PT_TRY(merge_ids(L, i, json_string_value(a), json_string_length(a), json_string_value(b),
                             json_string_length(b)));
        } else {
            return pt_error(PT_ERR_FORMAT, "%s: model.merges[%zu]: expected \"left right\" or [left, right]",
                            L->label, i);
        }
    }
    return PT_OK;
}

static pt_status parse_added(const ld *L, json_t *arr) {
    if (!arr || json_is_null(arr)) return PT_OK;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *o = json_array_get(arr, i), *id = json_object_get(o, "id");
        char path[64];
        snprintf(path, sizeof path, "added_tokens[%zu]", i);
        tk_added a = {0};
        const char *content;
        if (!json_is_integer(id)) return pt_error(PT_ERR_FORMAT, "%s: %s.id: expected an integer", L->label, path);
        PT_TRY(get_str(L, o, "content", path, &content, &a.len));
        a.content = (char *)content;
        a.id = (int32_t)json_integer_value(id);
        PT_TRY(get_bool(L, o, "special", path, false, &a.special));
        PT_TRY(get_bool(L, o, "lstrip", path, false, &a.lstrip));
        PT_TRY(get_bool(L, o, "rstrip", path, false, &a.rstrip));
        PT_TRY(get_bool(L, o, "single_word", path, false, &a.single_word));
        PT_TRY(get_bool(L, o, "normalized", path, !a.special, &a.normalized));
        PT_TRY(pt_tokenizer_add_added(L->t, &a));
    }
    return PT_OK;
}

/* The vocabulary size: the largest id among model.vocab and added_tokens, plus one. */
static pt_status vocab_size(const ld *L, json_t *vocab, json_t *added, int32_t *out) {
    json_int_t max = -1;
    const char *key;
    json_t *v;
    json_object_foreach(vocab, key, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= MAX_VOCAB)
            return pt_error(PT_ERR_FORMAT, "%s: model.vocab['%.80s']: expected an id in [0, %d)", L->label, key,
                            MAX_VOCAB);
        if (json_integer_value(v) > max) max = json_integer_value(v);
    }
    if (added && !json_is_null(added)) {
        if (!json_is_array(added)) return fmt_err(L, "added_tokens", "expected an array");
        for (size_t i = 0; i < json_array_size(added); i++) {
            json_t *id = json_object_get(json_array_get(added, i), "id");
            if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= MAX_VOCAB)
                return pt_error(PT_ERR_FORMAT, "%s: added_tokens[%zu].id: expected an id in [0, %d)", L->label, i,
                                MAX_VOCAB);
            if (json_integer_value(id) > max) max = json_integer_value(id);
        }
    }
    size_t entries = json_object_size(vocab) + (added ? json_array_size(added) : 0);
    if (max >= 0 && (size_t)max > 2 * entries + 65536)
        return pt_error(PT_ERR_FORMAT, "%s: model.vocab: id %lld is far beyond the %zu entries", L->label,
                        (long long)max, entries);
    *out = (int32_t)(max + 1);
    return PT_OK;
}

static pt_status parse_model(const ld *L, json_t *root) {
    pt_tokenizer *t = L->t;
    json_t *model = json_object_get(root, "model");
    if (!json_is_object(model)) return fmt_err(L, "model", "missing or not an object");
    json_t *type = json_object_get(model, "type");
    if (type && !json_is_string(type)) return fmt_err(L, "model.type", "expected a string");
    if (type && strcmp(json_string_value(type), "BPE") != 0)
        return unsupported(L, "model.type", json_string_value(type), "BPE");
    json_t *vocab = json_object_get(model, "vocab");
    if (!json_is_object(vocab)) return fmt_err(L, "model.vocab", "missing or not an object of token -> id");
    json_t *added = json_object_get(root, "added_tokens");
    int32_t n = 0;
    PT_TRY(vocab_size(L, vocab, added, &n));
    if (n <= 0) return fmt_err(L, "model.vocab", "empty: a tokenizer needs at least one token");
    PT_TRY(pt_tokenizer_set_vocab_size(t, n));
    const char *key;
    size_t klen;
    json_t *v;
    json_object_keylen_foreach(vocab, key, klen, v) PT_TRY(pt_tokenizer_add_vocab(t, (int32_t)json_integer_value(v), key, klen));

    static const char *const affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        json_t *a = json_object_get(model, affixes[i]);
        if (a && !json_is_null(a) && !(json_is_string(a) && json_string_length(a) == 0))
            return pt_error(PT_ERR_UNSUPPORTED, "%s: model.%s: only null or \"\" is supported", L->label, affixes[i]);
    }
    PT_TRY(get_bool(L, model, "byte_fallback", "model", false, &t->byte_fallback));
    PT_TRY(get_bool(L, model, "ignore_merges", "model", false, &t->ignore_merges));
    PT_TRY(get_bool(L, model, "fuse_unk", "model", false, &t->fuse_unk));
    PT_TRY(parse_added(L, added));
    json_t *unk = json_object_get(model, "unk_token");
    if (json_is_string(unk)) t->unk_id = pt_tokenizer_token_id(t, json_string_value(unk));
    else if (unk && !json_is_null(unk)) return fmt_err(L, "model.unk_token", "expected a string or null");
    t->model = TK_MODEL_BPE;
    return parse_merges(L, json_object_get(model, "merges"));
}

/* Well-known names, used when no tokenizer_config.json says which tokens are BOS/EOS. */
static int32_t first_special(const pt_tokenizer *t, const char *const *names, int n) {
    for (int i = 0; i < n; i++) {
        int32_t id = pt_tokenizer_token_id(t, names[i]);
        if (id >= 0 && pt_tokenizer_is_special(t, id)) return id;
    }
    return -1;
}

static pt_status parse_root(pt_tokenizer *t, json_t *root, const char *label) {
    ld L = {t, label};
    if (!json_is_object(root)) return fmt_err(&L, "(top level)", "expected a JSON object");
    PT_TRY(parse_model(&L, root));
    PT_TRY(parse_normalizer(&L, json_object_get(root, "normalizer"), "normalizer"));
    PT_TRY(parse_pretokenizer(&L, json_object_get(root, "pre_tokenizer"), "pre_tokenizer"));
    PT_TRY(parse_post(&L, json_object_get(root, "post_processor"), "post_processor"));
    json_t *dec = json_object_get(root, "decoder");
    t->has_decoder = dec && !json_is_null(dec);
    PT_TRY(parse_decoder(&L, dec, "decoder"));
    PT_TRY(pt_tokenizer_finish(t));

    bool bytelevel = false;
    for (int i = 0; i < t->n_pre; i++) bytelevel |= t->pre[i].type == TK_PRE_BYTELEVEL;
    for (int i = 0; i < t->n_dec; i++) bytelevel |= t->dec[i].type == TK_DEC_BYTELEVEL;
    t->kind = bytelevel ? "byte-level BPE" : t->byte_fallback ? "sentencepiece BPE" : "BPE";

    static const char *const bos_names[] = {"<|begin_of_text|>", "<s>", "<bos>"};
    static const char *const eos_names[] = {"<|end_of_text|>", "</s>", "<|endoftext|>", "<|im_end|>", "<eos>"};
    t->bos = t->n_prefix ? t->prefix[0] : first_special(t, bos_names, 3);
    t->eos = first_special(t, eos_names, 5);
    t->add_bos = t->n_prefix > 0 && t->prefix[0] == t->bos;
    return PT_OK;
}

pt_status pt_tokenizer_parse_json(pt_tokenizer **out, const char *json, size_t len, const char *label) {
    *out = NULL;
    json_error_t err;
    json_t *root = json_loadb(json, len, 0, &err);
    if (!root)
        return pt_error(PT_ERR_FORMAT, "%s: line %d column %d: not valid JSON: %s", label, err.line, err.column,
                        err.text);
    pt_tokenizer *t = NULL;
    pt_status st = pt_tokenizer_new(&t, label);
    if (!st) st = parse_root(t, root, label);
    json_decref(root);
    if (st) {
        pt_tokenizer_free(t);
        return st;
    }
    *out = t;
    return PT_OK;
}

/* ---- tokenizer_config.json ------------------------------------------------------------ */

/* bos_token / eos_token: a string, an AddedToken object with "content", or null. */
static pt_status config_token(pt_tokenizer *t, json_t *cfg, const char *key, const char *path, int32_t *out) {
    json_t *v = json_object_get(cfg, key);
    if (!v) return PT_OK; /* absent: keep what tokenizer.json implies */
    if (json_is_null(v)) {
        *out = -1;
        return PT_OK;
    }
    if (json_is_object(v)) v = json_object_get(v, "content");
    if (!json_is_string(v))
        return pt_error(PT_ERR_FORMAT, "%s: %s: expected a string or an object with \"content\"", path, key);
    int32_t id = pt_tokenizer_token_id(t, json_string_value(v));
    if (id < 0 && !strcmp(key, "pad_token")) return PT_OK; /* padding is never emitted: tolerate */
    if (id < 0)
        return pt_error(PT_ERR_FORMAT, "%s: %s: token '%s' is not in the tokenizer's vocabulary", path, key,
                        json_string_value(v));
    *out = id;
    return PT_OK;
}

static pt_status apply_config(pt_tokenizer *t, json_t *cfg, const char *path) {
    if (!json_is_object(cfg)) return pt_error(PT_ERR_FORMAT, "%s: expected a JSON object", path);
    PT_TRY(config_token(t, cfg, "bos_token", path, &t->bos));
    PT_TRY(config_token(t, cfg, "eos_token", path, &t->eos));
    PT_TRY(config_token(t, cfg, "pad_token", path, &t->pad));
    /* add_bos_token is not consulted: the fast tokenizer's post_processor (already loaded)
     * is what decides, and files saved by transformers keep the two in step. */
    t->add_bos = t->n_prefix > 0 && t->prefix[0] == t->bos;
    json_t *ct = json_object_get(cfg, "chat_template");
    const char *src = NULL;
    if (json_is_string(ct)) {
        src = json_string_value(ct);
    } else if (json_is_array(ct)) {
        /* [{"name": "default", "template": ...}, {"name": "tool_use", ...}] */
        for (size_t i = 0; i < json_array_size(ct); i++) {
            json_t *e = json_array_get(ct, i), *nm = json_object_get(e, "name"), *tp = json_object_get(e, "template");
            if (!json_is_string(tp)) continue;
            if (!src || (json_is_string(nm) && !strcmp(json_string_value(nm), "default"))) src = json_string_value(tp);
        }
    } else if (ct && !json_is_null(ct)) {
        return pt_error(PT_ERR_FORMAT, "%s: chat_template: expected a string or a list of named templates", path);
    }
    if (src) {
        free(t->chat_template);
        if (!(t->chat_template = dup_n(src, strlen(src)))) return pt_error(PT_ERR_OOM, "%s: out of memory", path);
    }
    return PT_OK;
}

pt_status pt_tokenizer_load_json(pt_tokenizer **out, const char *path) {
    *out = NULL;
    char *file = pt_dir_exists(path) ? pt_path_join(path, "tokenizer.json") : dup_n(path, strlen(path));
    if (!file) return pt_error(PT_ERR_OOM, "tokenizer: out of memory");
    char *text = NULL, *cfg_path = NULL, *dir = NULL;
    size_t len;
    pt_tokenizer *t = NULL;
    pt_status st = pt_file_read_all(file, &text, &len);
    if (!st) st = pt_tokenizer_parse_json(&t, text, len, file);
    free(text);
    text = NULL;
    if (!st) {
        const char *slash = strrchr(file, '/');
        dir = slash ? dup_n(file, (size_t)(slash - file)) : dup_n(".", 1);
        cfg_path = dir ? pt_path_join(dir, "tokenizer_config.json") : NULL;
        if (!cfg_path) st = pt_error(PT_ERR_OOM, "tokenizer: out of memory");
    }
    if (!st && pt_file_exists(cfg_path)) {
        st = pt_file_read_all(cfg_path, &text, &len);
        if (!st) {
            json_error_t err;
            /* real configs hold model_max_length = 1e30, beyond jansson's integers; nothing
             * numeric is read from this file */
            json_t *cfg = json_loadb(text, len, JSON_DECODE_INT_AS_REAL, &err);
            if (!cfg)
                st = pt_error(PT_ERR_FORMAT, "%s: line %d column %d: not valid JSON: %s", cfg_path, err.line,
                              err.column, err.text);
            else st = apply_config(t, cfg, cfg_path);
            json_decref(cfg);
        }
    }
    free(text);
    free(cfg_path);
    free(dir);
    free(file);
    if (st) {
        pt_tokenizer_free(t);
        return st;
    }
    *out = t;
    return PT_OK;
}
