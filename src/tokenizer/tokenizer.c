/* The tokenizer object: construction helpers that both loaders (tokenizer.json and GGUF)
 * use to fill the vocabulary, the merge table and the added tokens; the hash maps behind
 * them (open addressing, sized once from the known counts, so loading a 128k-token
 * vocabulary with 280k merges costs one pass and no linear scans); freeing; and the small
 * queries (ids of BOS/EOS, token text, stop tokens). */
#include "tokenizer/tokenizer_impl.h"

#include <stdlib.h>
#include <string.h>

/* ---- hashing -------------------------------------------------------------------------- */

uint32_t pt_tokenizer_hash(const char *s, size_t n) {
    /* FNV-1a followed by a finaliser so that the low bits (the slot index) mix well. */
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    return h;
}

static uint32_t pair_hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return (uint32_t)k;
}

static uint32_t pow2_at_least(uint64_t n) {
    uint32_t c = 16;
    while (c < n && c < (1u << 31)) c <<= 1;
    return c;
}

static pt_status strmap_alloc(tk_strmap *m, uint32_t cap) {
    m->slot = malloc((size_t)cap * sizeof *m->slot);
    m->hash = malloc((size_t)cap * sizeof *m->hash);
    if (!m->slot || !m->hash) {
        free(m->slot);
        free(m->hash);
        m->slot = NULL;
        m->hash = NULL;
        return pt_error(PT_ERR_OOM, "tokenizer: out of memory for a vocabulary map of %u slots", cap);
    }
    memset(m->slot, 0xff, (size_t)cap * sizeof *m->slot);
    m->mask = cap - 1;
    m->count = 0;
    return PT_OK;
}

static pt_status strmap_grow(tk_strmap *m) {
    tk_strmap old = *m;
    PT_TRY(strmap_alloc(m, (old.mask + 1) * 2));
    for (uint32_t i = 0; i <= old.mask; i++) {
        if (old.slot[i] < 0) continue;
        uint32_t j = old.hash[i] & m->mask;
        while (m->slot[j] >= 0) j = (j + 1) & m->mask;
        m->slot[j] = old.slot[i];
        m->hash[j] = old.hash[i];
        m->count++;
    }
    free(old.slot);
    free(old.hash);
    return PT_OK;
}

static bool vocab_eq(const pt_tokenizer *t, int32_t id, const char *s, size_t n) {
    return t->vlen[id] == n && memcmp(t->pool + t->voff[id], s, n) == 0;
}

int32_t pt_tokenizer_vocab_find(const pt_tokenizer *t, const char *s, size_t n) {
    const tk_strmap *m = &t->vocab;
    if (!m->slot) return -1;
    uint32_t h = pt_tokenizer_hash(s, n);
    for (uint32_t j = h & m->mask;; j = (j + 1) & m->mask) {
        int32_t id = m->slot[j];
        if (id < 0) return -1;
        if (m->hash[j] == h && vocab_eq(t, id, s, n)) return id;
    }
}

static pt_status pairmap_alloc(tk_pairmap *m, uint32_t cap) {
    m->key = malloc((size_t)cap * sizeof *m->key);
    m->rank = malloc((size_t)cap * sizeof *m->rank);
    m->merged = malloc((size_t)cap * sizeof *m->merged);
    if (!m->key || !m->rank || !m->merged) {
        free(m->key);
        free(m->rank);
        free(m->merged);
        m->key = NULL;
        m->rank = NULL;
        m->merged = NULL;
        return pt_error(PT_ERR_OOM, "tokenizer: out of memory for a merge table of %u slots", cap);
    }
    memset(m->key, 0xff, (size_t)cap * sizeof *m->key);
    m->mask = cap - 1;
    m->count = 0;
    return PT_OK;
}

bool pt_tokenizer_pair_find(const tk_pairmap *m, int32_t a, int32_t b, uint32_t *rank, int32_t *merged) {
    if (!m->key) return false;
    uint64_t k = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    for (uint32_t j = pair_hash(k) & m->mask;; j = (j + 1) & m->mask) {
        if (m->key[j] == k) {
            *rank = m->rank[j];
            *merged = m->merged[j];
            return true;
        }
        if (m->key[j] == UINT64_MAX) return false;
    }
}

static void pairmap_put_raw(tk_pairmap *m, uint64_t k, uint32_t rank, int32_t merged) {
    uint32_t j = pair_hash(k) & m->mask;
    while (m->key[j] != UINT64_MAX && m->key[j] != k) j = (j + 1) & m->mask;
    if (m->key[j] == UINT64_MAX) m->count++;
    m->key[j] = k;
    m->rank[j] = rank;
    m->merged[j] = merged;
}

pt_status pt_tokenizer_reserve_merges(pt_tokenizer *t, size_t n) {
    if (t->merges.key || n > (1u << 29)) return PT_OK;
    return pairmap_alloc(&t->merges, pow2_at_least((uint64_t)n * 2 + 2));
}

pt_status pt_tokenizer_add_merge(pt_tokenizer *t, int32_t a, int32_t b, uint32_t rank, int32_t merged) {
    tk_pairmap *m = &t->merges;
    if (!m->key) PT_TRY(pairmap_alloc(m, 1024));
    if ((uint64_t)(m->count + 1) * 2 > (uint64_t)m->mask + 1) {
        tk_pairmap old = *m;
        PT_TRY(pairmap_alloc(m, (old.mask + 1) * 2));
        for (uint32_t i = 0; i <= old.mask; i++)
            if (old.key[i] != UINT64_MAX) pairmap_put_raw(m, old.key[i], old.rank[i], old.merged[i]);
        free(old.key);
        free(old.rank);
        free(old.merged);
    }
    uint64_t k = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    /* A repeated pair keeps its first (best) rank, as a later line cannot win anyway. */
    uint32_t j = pair_hash(k) & m->mask;
    while (m->key[j] != UINT64_MAX && m->key[j] != k) j = (j + 1) & m->mask;
    if (m->key[j] == k) return PT_OK;
    pairmap_put_raw(m, k, rank, merged);
    return PT_OK;
}

/* ---- construction --------------------------------------------------------------------- */

pt_status pt_tokenizer_new(pt_tokenizer **out, const char *label) {
    pt_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return pt_error(PT_ERR_OOM, "tokenizer: out of memory");
    size_t n = strlen(label);
    t->label = malloc(n + 1);
    if (!t->label) {
        free(t);
        return pt_error(PT_ERR_OOM, "tokenizer: out of memory");
    }
    memcpy(t->label, label, n + 1);
    t->bos = t->eos = t->pad = t->unk_id = -1;
    t->has_decoder = true;
    for (int i = 0; i < 256; i++) t->byte_id[i] = -1;
    *out = t;
    return PT_OK;
}

pt_status pt_tokenizer_set_vocab_size(pt_tokenizer *t, int32_t n) {
    PT_ASSERT(!t->voff && n >= 0);
    t->n_vocab = n;
    size_t m = n ? (size_t)n : 1;
    t->voff = malloc(m * sizeof *t->voff);
    t->vlen = malloc(m * sizeof *t->vlen);
    t->attr = calloc(m, 1);
    t->added_of_id = malloc(m * sizeof *t->added_of_id);
    if (!t->voff || !t->vlen || !t->attr || !t->added_of_id)
        return pt_error(PT_ERR_OOM, "%s: out of memory for a vocabulary of %d tokens", t->label, n);
    memset(t->vlen, 0xff, m * sizeof *t->vlen);
    memset(t->added_of_id, 0xff, m * sizeof *t->added_of_id);
    return strmap_alloc(&t->vocab, pow2_at_least((uint64_t)m * 2));
}

pt_status pt_tokenizer_add_vocab(pt_tokenizer *t, int32_t id, const char *s, size_t n) {
    if (id < 0 || id >= t->n_vocab)
        return pt_error(PT_ERR_FORMAT, "%s: token id %d outside the vocabulary (size %d)", t->label, id, t->n_vocab);
    if (t->vlen[id] != UINT32_MAX)
        return pt_error(PT_ERR_FORMAT, "%s: token id %d is assigned twice ('%.*s' and '%s')", t->label, id,
                        (int)(n > 60 ? 60 : n), s, t->pool + t->voff[id]);
    if (n >= UINT32_MAX / 2)
        return pt_error(PT_ERR_FORMAT, "%s: token %d is %zu bytes long", t->label, id, n);
    if (t->pool_len + n + 1 > t->pool_cap) {
        size_t cap = t->pool_cap ? t->pool_cap : 1 << 16;
        while (cap < t->pool_len + n + 1) cap *= 2;
        if (cap > UINT32_MAX)
            return pt_error(PT_ERR_FORMAT, "%s: vocabulary strings exceed 4 GiB", t->label);
        char *p = realloc(t->pool, cap);
        if (!p) return pt_error(PT_ERR_OOM, "%s: out of memory for vocabulary strings", t->label);
        t->pool = p;
        t->pool_cap = cap;
    }
    memcpy(t->pool + t->pool_len, s, n);
    t->pool[t->pool_len + n] = 0;
    t->voff[id] = (uint32_t)t->pool_len;
    t->vlen[id] = (uint32_t)n;
    t->pool_len += n + 1;

    tk_strmap *m = &t->vocab;
    if ((uint64_t)(m->count + 1) * 2 > (uint64_t)m->mask + 1) PT_TRY(strmap_grow(m));
    uint32_t h = pt_tokenizer_hash(s, n);
    uint32_t j = h & m->mask;
    for (; m->slot[j] >= 0; j = (j + 1) & m->mask) {
        /* The same string twice (possible in GGUF files): the later id wins, as in llama.cpp. */
        if (m->hash[j] == h && m->slot[j] != id && vocab_eq(t, m->slot[j], s, n)) {
            m->slot[j] = id;
            return PT_OK;
        }
    }
    m->slot[j] = id;
    m->hash[j] = h;
    m->count++;
    return PT_OK;
}

pt_status pt_tokenizer_add_added(pt_tokenizer *t, const tk_added *a) {
    if (a->id < 0 || a->id >= t->n_vocab)
        return pt_error(PT_ERR_FORMAT, "%s: added token id %d outside the vocabulary (size %d)", t->label, a->id,
                        t->n_vocab);
    if (a->len == 0) return pt_error(PT_ERR_FORMAT, "%s: added token %d has empty content", t->label, a->id);
    tk_added *v = realloc(t->added, (size_t)(t->n_added + 1) * sizeof *v);
    if (!v) return pt_error(PT_ERR_OOM, "%s: out of memory for added tokens", t->label);
    t->added = v;
    tk_added *d = &t->added[t->n_added];
    *d = *a;
    d->content = malloc(a->len + 1);
    if (!d->content) return pt_error(PT_ERR_OOM, "%s: out of memory for added tokens", t->label);
    memcpy(d->content, a->content, a->len);
    d->content[a->len] = 0;
    t->added_of_id[a->id] = t->n_added; /* a repeated id: the later entry wins */
    t->attr[a->id] |= TK_ATTR_ADDED;
    if (a->special) t->attr[a->id] |= TK_ATTR_SPECIAL;
    else t->attr[a->id] &= (uint8_t)~TK_ATTR_SPECIAL;
    t->n_added++;
    return PT_OK;
}

static int cmp_added(const tk_added *base, int x, int y) {
    const tk_added *a = &base[x], *b = &base[y];
    uint8_t ca = (uint8_t)a->content[0], cb = (uint8_t)b->content[0];
    if (ca != cb) return ca < cb ? -1 : 1;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return x - y;
}

/* Bottom-up merge sort of indices (qsort has no context argument in C11). */
static pt_status sort_added(const tk_added *base, int *v, int n) {
    int *tmp = malloc((size_t)(n ? n : 1) * sizeof *tmp);
    if (!tmp) return pt_error(PT_ERR_OOM, "tokenizer: out of memory sorting added tokens");
    for (int w = 1; w < n; w *= 2) {
        for (int lo = 0; lo < n; lo += 2 * w) {
            int mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int i = lo, j = mid, k = lo;
            while (i < mid && j < hi) tmp[k++] = cmp_added(base, v[i], v[j]) <= 0 ? v[i++] : v[j++];
            while (i < mid) tmp[k++] = v[i++];
            while (j < hi) tmp[k++] = v[j++];
        }
        memcpy(v, tmp, (size_t)n * sizeof *v);
    }
    free(tmp);
    return PT_OK;
}

pt_status pt_tokenizer_finish(pt_tokenizer *t) {
    /* Added tokens, bucketed by first byte and longest first, so that matching at a text
     * position tries the few candidates that can start there and takes the longest. Only
     * the entry that currently owns its id takes part. */
    free(t->added_order);
    t->added_order = malloc((size_t)(t->n_added ? t->n_added : 1) * sizeof *t->added_order);
    if (!t->added_order) return pt_error(PT_ERR_OOM, "%s: out of memory", t->label);
    int k = 0;
    for (int i = 0; i < t->n_added; i++)
        if (t->added_of_id[t->added[i].id] == i) t->added_order[k++] = i;
    PT_TRY(sort_added(t->added, t->added_order, k));
    int pos = 0;
    for (int b = 0; b < 256; b++) {
        t->added_first[b] = pos;
        while (pos < k && (uint8_t)t->added[t->added_order[pos]].content[0] == b) pos++;
    }
    t->added_first[256] = pos;

    for (int b = 0; b < 256; b++) {
        char name[8];
        static const char hex[] = "0123456789ABCDEF";
        name[0] = '<'; name[1] = '0'; name[2] = 'x';
        name[3] = hex[b >> 4]; name[4] = hex[b & 15]; name[5] = '>';
        t->byte_id[b] = pt_tokenizer_vocab_find(t, name, 6);
    }
    return PT_OK;
}

pt_status pt_tokenizer_compile_regex(pcre2_code **out, const char *pattern, size_t len, const char *label, const char *key) {
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, len, PCRE2_UTF | PCRE2_UCP, &err, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return pt_error(PT_ERR_FORMAT, "%s: %s: regex does not compile at offset %zu: %s", label, key, (size_t)off,
                        (const char *)msg);
    }
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional: the interpreter is the fallback */
    *out = re;
    return PT_OK;
}

const char *pt_tokenizer_text(const pt_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) return NULL;
    int32_t a = t->added_of_id[id];
    if (a >= 0) {
        *len = t->added[a].len;
        return t->added[a].content;
    }
    if (t->vlen[id] == UINT32_MAX) return NULL;
    *len = t->vlen[id];
    return t->pool + t->voff[id];
}

void pt_tokenizer_free(pt_tokenizer *t) {
    if (!t) return;
    free(t->label);
    free(t->pool);
    free(t->voff);
    free(t->vlen);
    free(t->vocab.slot);
    free(t->vocab.hash);
    free(t->attr);
    free(t->merges.key);
    free(t->merges.rank);
    free(t->merges.merged);
    free(t->scores);
    for (int i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    free(t->added_of_id);
    free(t->added_order);
    for (int i = 0; i < t->n_norm; i++) {
        free(t->norm[i].a);
        free(t->norm[i].b);
    }
    free(t->norm);
    for (int i = 0; i < t->n_pre; i++) {
        if (t->pre[i].re) pcre2_code_free(t->pre[i].re);
        free(t->pre[i].lit);
    }
    free(t->pre);
    free(t->prefix);
    free(t->suffix);
    for (int i = 0; i < t->n_dec; i++) {
        free(t->dec[i].a);
        free(t->dec[i].b);
    }
    free(t->dec);
    free(t->chat_template);
    free(t);
}

/* ---- queries -------------------------------------------------------------------------- */

int32_t pt_tokenizer_vocab_size(const pt_tokenizer *t) { return t->n_vocab; }
int32_t pt_tokenizer_bos(const pt_tokenizer *t) { return t->bos; }
int32_t pt_tokenizer_eos(const pt_tokenizer *t) { return t->eos; }
bool pt_tokenizer_adds_bos(const pt_tokenizer *t) { return t->add_bos; }
const char *pt_tokenizer_chat_template_source(const pt_tokenizer *t) { return t->chat_template; }
const char *pt_tokenizer_kind(const pt_tokenizer *t) { return t->kind; }

int32_t pt_tokenizer_token_id(const pt_tokenizer *t, const char *token) {
    size_t n = strlen(token);
    for (int i = 0; i < t->n_added; i++) {
        const tk_added *a = &t->added[i];
        if (a->len == n && memcmp(a->content, token, n) == 0 && t->added_of_id[a->id] == i) return a->id;
    }
    return pt_tokenizer_vocab_find(t, token, n);
}

const char *pt_tokenizer_token_text(const pt_tokenizer *t, int32_t id) {
    size_t n;
    return pt_tokenizer_text(t, id, &n);
}

bool pt_tokenizer_is_special(const pt_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab && (t->attr[id] & TK_ATTR_SPECIAL);
}

pt_status pt_tokenizer_stop_ids(const pt_tokenizer *t, int32_t *out, int max, int *n) {
    /* End-of-sequence and end-of-turn markers of the common families. Only special
     * (control) tokens count: a byte-level vocabulary may hold "</s>" as ordinary text. */
    static const char *const names[] = {"<|eot_id|>", "<|im_end|>", "<|end_of_text|>", "</s>",
                                        "<|endoftext|>", "<|eom_id|>", "<end_of_turn>", "<|end|>"};
    int k = 0;
    int32_t cand[1 + sizeof names / sizeof names[0]];
    int nc = 0;
    if (t->eos >= 0) cand[nc++] = t->eos;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int32_t id = pt_tokenizer_token_id(t, names[i]);
        if (id >= 0 && pt_tokenizer_is_special(t, id)) cand[nc++] = id;
    }
    for (int i = 0; i < nc; i++) {
        bool dup = false;
        for (int j = 0; j < i; j++) dup |= cand[j] == cand[i];
        if (dup) continue;
        if (k >= max)
            return pt_error(PT_ERR_ARG, "tokenizer stop ids: %d slots are too few (need at least %d)", max, k + 1);
        out[k++] = cand[i];
    }
    *n = k;
    return PT_OK;
}
