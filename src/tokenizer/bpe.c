/* Rank-based BPE on one pre-token, as Hugging Face's BPE model does it: split the word into
 * characters (each looked up in the vocabulary; a missing one becomes <0xXX> byte tokens
 * with byte_fallback, else the unknown token, fused when fuse_unk), then repeatedly merge
 * the adjacent pair with the lowest merge rank, leftmost first on ties. Symbols live in a
 * doubly linked array and candidate pairs in a binary min-heap keyed by (rank, position);
 * stale heap entries are skipped when popped, so a word of n characters costs O(n log n).
 * With ignore_merges a word that is itself in the vocabulary is emitted whole. */
#include "tokenizer/tokenizer_impl.h"
#include "util/utf8.h"
#include "util/heap.h"

#include <stdlib.h>

typedef struct {
    int32_t id;
    int32_t prev, next;
    uint32_t len; /* 0 once merged into its left neighbour */
} sym;

typedef struct {
    uint32_t rank;
    uint32_t pos;
    int32_t merged;
} cand;

static bool cand_less(const cand *a, const cand *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

PT_HEAP_DEFINE(heap, cand, cand_less)

pt_status pt_tokenizer_scratch_reserve(tk_scratch *sc, size_t nsym, size_t sym_size, size_t cand_size) {
    size_t need = nsym * sym_size;
    if (need > sc->sym_cap) {
        size_t cap = need < 4096 ? 4096 : need * 2;
        void *s = realloc(sc->sym, cap);
        if (!s) return pt_error(PT_ERR_OOM, "tokenizer: out of memory for a %zu-symbol word", nsym);
        sc->sym = s;
        sc->sym_cap = cap;
    }
    /* A word of n symbols never holds more than 2n candidates: n - 1 pushed at the start,
     * and each merge pops one and pushes at most two. */
    need = (2 * nsym + 2) * cand_size;
    if (need > sc->heap_cap) {
        size_t cap = need < 8192 ? 8192 : need * 2;
        void *h = realloc(sc->heap, cap);
        if (!h) return pt_error(PT_ERR_OOM, "tokenizer: out of memory for a %zu-symbol word", nsym);
        sc->heap = h;
        sc->heap_cap = cap;
    }
    return PT_OK;
}

void pt_tokenizer_scratch_free(tk_scratch *sc) {
    free(sc->sym);
    free(sc->heap);
    sc->sym = sc->heap = NULL;
    sc->sym_cap = sc->heap_cap = 0;
}

static void try_pair(const pt_tokenizer *t, sym *s, cand *h, size_t *nh, int32_t left) {
    if (left < 0 || s[left].next < 0) return;
    uint32_t rank;
    int32_t merged;
    if (pt_tokenizer_pair_find(&t->merges, s[left].id, s[s[left].next].id, &rank, &merged))
        heap_push(h, nh, (cand){rank, (uint32_t)left, merged});
}

pt_status pt_tokenizer_bpe_word(const pt_tokenizer *t, const char *w, size_t n, tk_scratch *sc, tk_ivec *out) {
    if (n == 0) return PT_OK;
    if (t->ignore_merges) {
        int32_t id = pt_tokenizer_vocab_find(t, w, n);
        if (id >= 0) return pt_tokenizer_ivec_push(out, id);
    }
    /* Worst case every byte becomes its own symbol. */
    PT_TRY(pt_tokenizer_scratch_reserve(sc, n, sizeof(sym), sizeof(cand)));
    sym *s = sc->sym;
    cand *h = sc->heap;
    int32_t ns = 0;
    bool prev_unk = false;
    for (size_t i = 0; i < n;) {
        int len;
        (void)pt_utf8_decode(w + i, n - i, &len);
        int32_t id = pt_tokenizer_vocab_find(t, w + i, (size_t)len);
        if (id < 0 && t->byte_fallback) {
            bool all = true;
            for (int k = 0; k < len; k++) all &= t->byte_id[(uint8_t)w[i + (size_t)k]] >= 0;
            if (all) {
                for (int k = 0; k < len; k++) s[ns++] = (sym){t->byte_id[(uint8_t)w[i + (size_t)k]], 0, 0, 1};
                i += (size_t)len;
                prev_unk = false;
                continue;
            }
        }
        if (id < 0) {
            /* Unknown character: the unk token (fused with a preceding one when fuse_unk);
             * without an unk token Hugging Face drops the character. */
            if (t->unk_id >= 0) {
                if (t->fuse_unk && prev_unk) s[ns - 1].len += (uint32_t)len;
                else s[ns++] = (sym){t->unk_id, 0, 0, (uint32_t)len};
                prev_unk = true;
            }
            i += (size_t)len;
            continue;
        }
        s[ns++] = (sym){id, 0, 0, (uint32_t)len};
        prev_unk = false;
        i += (size_t)len;
    }
    for (int32_t i = 0; i < ns; i++) {
        s[i].prev = i - 1;
        s[i].next = i + 1 < ns ? i + 1 : -1;
    }
    size_t nh = 0;
    for (int32_t i = 0; i + 1 < ns; i++) try_pair(t, s, h, &nh, i);
    while (nh) {
        cand c = heap_pop(h, &nh);
        sym *l = &s[c.pos];
        if (l->len == 0 || l->next < 0) continue;
        sym *r = &s[l->next];
        uint32_t rank;
        int32_t merged;
        /* stale when either side changed since the candidate was pushed */
        if (!pt_tokenizer_pair_find(&t->merges, l->id, r->id, &rank, &merged) || merged != c.merged) continue;
        l->id = merged;
        l->len += r->len;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0) s[r->next].prev = (int32_t)c.pos;
        try_pair(t, s, h, &nh, l->prev);
        try_pair(t, s, h, &nh, (int32_t)c.pos);
    }
    for (int32_t i = ns ? 0 : -1; i >= 0; i = s[i].next) PT_TRY(pt_tokenizer_ivec_push(out, s[i].id));
    return PT_OK;
}
