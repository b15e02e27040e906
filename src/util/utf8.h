/* UTF-8, strictly (no overlongs, surrogates or code points past U+10FFFF, per Unicode
 * Table 3-7): the one validator that corpora (data/records) and tokenizers share, and the
 * character decoding and encoding the tokenizers build on. */
#ifndef PT_UTIL_UTF8_H
#define PT_UTIL_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the well-formed sequence at p (1-4), or 0 when ill-formed; *sub gets the length
 * of the maximal subpart to replace (>= 1) in that case, as lossy decoding needs. n >= 1. */
int pt_utf8_seq_len(const unsigned char *p, size_t n, int *sub);

/* The byte offset of the first byte that is not part of a well-formed sequence, or -1 when
 * all n bytes are valid. */
long pt_utf8_invalid_at(const char *s, size_t n);

/* Decodes the (valid) character at s; *len gets its byte length. */
uint32_t pt_utf8_decode(const char *s, size_t n, int *len);
/* Encodes a code point; returns the byte count (1-4). */
int pt_utf8_encode(uint32_t cp, char out[4]);

#endif
