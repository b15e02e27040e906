/* Internal layout of pt_tokenizer, shared by the tokenizer's source files only (nothing
 * outside src/tokenizer includes this). A tokenizer is a pipeline in the Hugging Face
 * sense: added-token matching on the raw text, a list of normaliser steps, a list of
 * pre-tokeniser steps, one model (rank-based BPE or score-based SentencePiece BPE), a
 * post-processor (prefix/suffix ids) and a list of decoder steps. Loading tokenizer.json
 * and loading GGUF metadata both fill this one structure, so encode and decode have a
 * single implementation.
 *
 * Cross-file helpers carry the pt_tokenizer_ prefix; they are module-internal, not API. */
#ifndef PT_TOKENIZER_IMPL_H
#define PT_TOKENIZER_IMPL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer/tokenizer.h"

/* ---- small growable vectors ----------------------------------------------------------- */

typedef struct { int32_t *v; size_t n, cap; } tk_ivec;
typedef struct { char *v; size_t n, cap; } tk_buf;

/* Work bound of one encode: no normaliser or pre-tokeniser step may hold more bytes or pieces
 * than this for n input bytes. Real pipelines grow text a few times at most (byte-level
 * mapping doubles non-ASCII bytes, Metaspace triples spaces, NFKD expands some code points
 * about tenfold); a hostile tokenizer.json that chains expanding steps grows it exponentially
 * and is stopped here instead of exhausting memory. */
#define PT_TOK_WORK_LIMIT(n) ((size_t)(n) * 16 + 4096)

pt_status pt_tokenizer_ivec_push(tk_ivec *a, int32_t x);
pt_status pt_tokenizer_buf_put(tk_buf *b, const void *p, size_t n);
void pt_tokenizer_buf_free(tk_buf *b);

/* ---- UTF-8 and the byte-level alphabet ------------------------------------------------ */

/* Copies s to b replacing ill-formed subsequences by U+FFFD (as Rust's from_utf8_lossy). */
pt_status pt_tokenizer_utf8_lossy(tk_buf *b, const char *s, size_t n);
bool pt_tokenizer_is_space(uint32_t cp); /* Unicode White_Space */

/* GPT-2 byte-level alphabet: byte -> code point and back (-1 if cp is not in it). */
uint32_t pt_tokenizer_byte_to_cp(uint8_t b);
int pt_tokenizer_cp_to_byte(uint32_t cp);

/* ---- hash maps ------------------------------------------------------------------------ */

/* String -> id over the strings of a string pool (the map stores ids only). */
typedef struct {
    int32_t *slot;   /* -1 empty */
    uint32_t *hash;
    uint32_t mask, count;
} tk_strmap;

/* (left id, right id) -> (rank, merged id). */
typedef struct {
    uint64_t *key;   /* UINT64_MAX empty */
    uint32_t *rank;
    int32_t *merged;
    uint32_t mask, count;
} tk_pairmap;

uint32_t pt_tokenizer_hash(const char *s, size_t n);
bool pt_tokenizer_pair_find(const tk_pairmap *m, int32_t a, int32_t b, uint32_t *rank, int32_t *merged);

/* ---- the tokenizer -------------------------------------------------------------------- */

enum { TK_MODEL_BPE = 1, TK_MODEL_SPM_SCORES = 2 };

enum { TK_NORM_NFC = 1, TK_NORM_NFD, TK_NORM_NFKC, TK_NORM_NFKD, TK_NORM_PREPEND, TK_NORM_REPLACE,
       TK_NORM_LOWERCASE, TK_NORM_STRIP };

typedef struct {
    int type;
    char *a, *b;     /* PREPEND: a; REPLACE: a -> b */
    size_t alen, blen;
    bool left, right; /* STRIP */
} tk_norm;

enum { TK_PRE_SPLIT = 1, TK_PRE_BYTELEVEL, TK_PRE_METASPACE };
/* Hugging Face SplitDelimiterBehavior */
enum { TK_SPLIT_REMOVED = 1, TK_SPLIT_ISOLATED, TK_SPLIT_MERGED_PREV, TK_SPLIT_MERGED_NEXT, TK_SPLIT_CONTIGUOUS };
enum { TK_PREPEND_ALWAYS = 1, TK_PREPEND_FIRST, TK_PREPEND_NEVER };

typedef struct {
    int type;
    pcre2_code *re;     /* SPLIT (regex pattern) and BYTELEVEL with use_regex */
    char *lit;          /* SPLIT with a String pattern */
    size_t litlen;
    int behavior;
    bool invert;
    bool add_prefix_space, use_regex; /* BYTELEVEL */
    char rep[5];        /* METASPACE replacement, UTF-8 */
    int replen, prepend_scheme;
    bool split;
} tk_pre;

enum { TK_DEC_BYTELEVEL = 1, TK_DEC_REPLACE, TK_DEC_BYTEFALLBACK, TK_DEC_FUSE, TK_DEC_STRIP, TK_DEC_METASPACE };

typedef struct {
    int type;
    char *a, *b;      /* REPLACE a -> b */
    size_t alen, blen;
    uint32_t ch;      /* STRIP content; METASPACE replacement */
    int start, stop;  /* STRIP */
    int prepend_scheme;
} tk_dec;

typedef struct {
    char *content;
    size_t len;
    int32_t id;
    bool special, lstrip, rstrip, single_word, normalized;
} tk_added;

/* per-id attribute bits */
enum { TK_ATTR_SPECIAL = 1, TK_ATTR_ADDED = 2, TK_ATTR_BYTE = 4, TK_ATTR_CONTROL = 8 };

struct pt_tokenizer {
    char *label;          /* file name for messages */
    const char *kind;
    int model;
    int32_t n_vocab;      /* max id + 1 (model vocabulary and added tokens) */

    /* model vocabulary strings, in one pool; vlen[id] == UINT32_MAX where id has none */
    char *pool;
    size_t pool_len, pool_cap;
    uint32_t *voff, *vlen;
    tk_strmap vocab;
    uint8_t *attr;        /* TK_ATTR_* per id */

    tk_pairmap merges;    /* BPE */
    float *scores;        /* SPM_SCORES */
    bool byte_fallback, ignore_merges, fuse_unk;
    int32_t unk_id;
    int32_t byte_id[256]; /* <0xXX> tokens, -1 when absent */

    tk_added *added;
    int n_added;
    int32_t *added_of_id; /* index into added[] per id, -1 if none */
    int *added_order;     /* indices sorted by (first byte, length desc) */
    int added_first[257]; /* added_order range per first byte */

    tk_norm *norm;
    int n_norm;
    tk_pre *pre;
    int n_pre;

    int32_t *prefix, *suffix; /* post-processor ids */
    int n_prefix, n_suffix;

    tk_dec *dec;
    int n_dec;
    bool has_decoder;     /* false: tokens are joined with spaces (HF without decoder) */
    bool strip_after_bos; /* GGUF SentencePiece: drop the dummy-prefix space after BOS */

    int32_t bos, eos, pad;
    bool add_bos;
    char *chat_template;
};

/* Allocates an empty tokenizer. */
pt_status pt_tokenizer_new(pt_tokenizer **out, const char *label);
/* Sets the vocabulary size (allocates per-id arrays). Call once, before adding strings. */
pt_status pt_tokenizer_set_vocab_size(pt_tokenizer *t, int32_t n);
/* Records the model-vocabulary string of `id` and indexes it. A duplicate id is an error. */
pt_status pt_tokenizer_add_vocab(pt_tokenizer *t, int32_t id, const char *s, size_t n);
int32_t pt_tokenizer_vocab_find(const pt_tokenizer *t, const char *s, size_t n);
/* Sizes the merge table for n merges up front (loading then never rehashes). */
pt_status pt_tokenizer_reserve_merges(pt_tokenizer *t, size_t n);
pt_status pt_tokenizer_add_merge(pt_tokenizer *t, int32_t a, int32_t b, uint32_t rank, int32_t merged);
/* Registers an added token (content copied) and builds nothing yet. */
pt_status pt_tokenizer_add_added(pt_tokenizer *t, const tk_added *a);
/* Finishes loading: added-token index, byte tokens, default attrs. */
pt_status pt_tokenizer_finish(pt_tokenizer *t);
/* Compiles a pre-tokeniser regex (PCRE2, UTF + UCP, JIT when available). */
pt_status pt_tokenizer_compile_regex(pcre2_code **out, const char *pattern, size_t len, const char *label, const char *key);

/* The byte range of a token string, or NULL for an id without one. */
const char *pt_tokenizer_text(const pt_tokenizer *t, int32_t id, size_t *len);

/* ---- encode stages -------------------------------------------------------------------- */

typedef struct { size_t start, end; int32_t id; } tk_seg; /* id -1: ordinary text */
/* Cuts text at added tokens; with parse_special false only non-special ones are matched. */
pt_status pt_tokenizer_split_added(const pt_tokenizer *t, const char *s, size_t n, bool parse_special, tk_seg **segs,
                             size_t *nseg);

pt_status pt_tokenizer_normalize(const pt_tokenizer *t, const char *s, size_t n, tk_buf *out);

typedef struct { size_t off, len; bool first; } tk_piece;
typedef struct { tk_piece *v; size_t n, cap; } tk_pieces;
pt_status pt_tokenizer_pretokenize(const pt_tokenizer *t, const char *s, size_t n, bool at_start, tk_buf *buf,
                             tk_pieces *pieces);

/* Scratch for the merge loops, reused across the words of one encode call. */
typedef struct {
    void *sym, *heap;
    size_t sym_cap, heap_cap; /* bytes */
} tk_scratch;
pt_status pt_tokenizer_scratch_reserve(tk_scratch *sc, size_t nsym, size_t sym_size, size_t cand_size);
void pt_tokenizer_scratch_free(tk_scratch *sc);
pt_status pt_tokenizer_bpe_word(const pt_tokenizer *t, const char *s, size_t n, tk_scratch *sc, tk_ivec *out);
pt_status pt_tokenizer_spm_word(const pt_tokenizer *t, const char *s, size_t n, tk_scratch *sc, tk_ivec *out);

#endif
