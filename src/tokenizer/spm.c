/* Score-based SentencePiece BPE, for GGUF files with tokenizer.ggml.model = "llama" (no
 * merge list, one score per token). Like llama.cpp's llm_tokenizer_spm: start from UTF-8
 * characters, repeatedly merge the adjacent pair whose concatenation is a vocabulary token
 * with the highest score (leftmost on ties), then emit each final symbol as its token or,
 * when it is not one, as <0xXX> byte tokens (byte fallback). Pairs sit in a binary max-heap;
 * a popped pair is stale when either side has changed size since it was pushed. */
#include "tokenizer/tokenizer_impl.h"
#include "util/utf8.h"
#include "util/heap.h"

typedef struct {
    uint32_t start, len; /* len 0 once merged away */
    int32_t prev, next;
} sym;

typedef struct {
    float score;
    int32_t left, right;
    uint32_t size;
} cand;

static bool cand_better(const cand *a, const cand *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

PT_HEAP_DEFINE(heap, cand, cand_better)

static void try_pair(const pt_tokenizer *t, const char *w, sym *s, cand *h, size_t *nh, int32_t left) {
    if (left < 0 || s[left].next < 0) return;
    int32_t right = s[left].next;
    uint32_t size = s[left].len + s[right].len;
    int32_t id = pt_tokenizer_vocab_find(t, w + s[left].start, size);
    if (id < 0) return;
    heap_push(h, nh, (cand){t->scores ? t->scores[id] : 0.0f, left, right, size});
}

pt_status pt_tokenizer_spm_word(const pt_tokenizer *t, const char *w, size_t n, tk_scratch *sc, tk_ivec *out) {
    if (n == 0) return PT_OK;
    PT_TRY(pt_tokenizer_scratch_reserve(sc, n, sizeof(sym), sizeof(cand)));
    sym *s = sc->sym;
    cand *h = sc->heap;
    int32_t ns = 0;
    for (size_t i = 0; i < n;) {
        int len;
        (void)pt_utf8_decode(w + i, n - i, &len);
        s[ns] = (sym){(uint32_t)i, (uint32_t)len, ns - 1, -1};
        if (ns > 0) s[ns - 1].next = ns;
        ns++;
        i += (size_t)len;
    }
    size_t nh = 0;
    for (int32_t i = 0; i + 1 < ns; i++) try_pair(t, w, s, h, &nh, i);
    while (nh) {
        cand c = heap_pop(h, &nh);
        sym *l = &s[c.left], *r = &s[c.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != c.size || l->next != c.right) continue;
        l->len += r->len;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0) s[r->next].prev = c.left;
        try_pair(t, w, s, h, &nh, l->prev);
        try_pair(t, w, s, h, &nh, c.left);
    }
    for (int32_t i = 0; i >= 0 && ns > 0; i = s[i].next) {
        int32_t id = pt_tokenizer_vocab_find(t, w + s[i].start, s[i].len);
        if (id >= 0) {
            PT_TRY(pt_tokenizer_ivec_push(out, id));
            continue;
        }
        for (uint32_t k = 0; k < s[i].len; k++) {
            int32_t b = t->byte_id[(uint8_t)w[s[i].start + k]];
            if (b < 0) b = t->unk_id;
            if (b < 0)
                return pt_error(PT_ERR_ARG, "%s: character at byte %u of a %zu-byte word has no token, no byte "
                                "token and there is no unknown token", t->label, s[i].start, n);
            PT_TRY(pt_tokenizer_ivec_push(out, b));
            if (b == t->unk_id) break; /* one unknown token per character */
        }
    }
    return PT_OK;
}
