/* Tokenizers: Hugging Face tokenizer.json (byte-level BPE with a Split-regex pre-tokenizer,
 * as Llama 3 and Qwen use; SentencePiece-style BPE with byte fallback and a Prepend
 * normaliser, as Llama 2 and Mistral use) and the vocabulary embedded in GGUF files
 * (tokenizer.ggml.model = "llama" with scores, "gpt2" with merges).
 *
 * Added / special tokens written in the text are recognised (as Hugging Face does by
 * default) and matched in the raw text before normalisation and pre-tokenisation. */
#ifndef PT_TOKENIZER_TOKENIZER_H
#define PT_TOKENIZER_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format/gguf.h"
#include "util/status.h"

typedef struct pt_tokenizer pt_tokenizer;

/* Loads a tokenizer.json. If a tokenizer_config.json sits beside it, its bos/eos tokens,
 * add_bos_token and chat_template are read too. */
pt_status pt_tokenizer_load_json(pt_tokenizer **out, const char *tokenizer_json_path);
/* Parses tokenizer.json text already in memory (the fuzz target's entry point). */
pt_status pt_tokenizer_parse_json(pt_tokenizer **out, const char *json, size_t len, const char *label);
/* Builds the tokenizer embedded in a GGUF file's metadata. */
pt_status pt_tokenizer_load_gguf(pt_tokenizer **out, const pt_gguf *g);
void pt_tokenizer_free(pt_tokenizer *tok);

/* Encodes UTF-8 text (invalid UTF-8 is an error naming the byte offset). With add_special,
 * the post-processor's tokens (e.g. BOS) are added as the tokenizer's config says. The
 * result is malloc'd. */
pt_status pt_tokenizer_encode(const pt_tokenizer *tok, const char *text, size_t len, bool add_special,
                              int32_t **ids, size_t *n_ids);
/* As pt_tokenizer_encode; with parse_special false, special tokens written in the text are
 * tokenized as ordinary text (Hugging Face's split_special_tokens=True, llama.cpp's
 * parse_special=false): for untrusted text, e.g. scraped posts that contain "<|eot_id|>". */
pt_status pt_tokenizer_encode_ex(const pt_tokenizer *tok, const char *text, size_t len, bool add_special,
                                 bool parse_special, int32_t **ids, size_t *n_ids);
/* Decodes ids to a malloc'd NUL-terminated UTF-8 string; special tokens are kept unless
 * skip_special. An id outside the vocabulary is PT_ERR_ARG. */
pt_status pt_tokenizer_decode(const pt_tokenizer *tok, const int32_t *ids, size_t n, bool skip_special, char **out);
/* The same with the length: a byte token such as <0x00> decodes to a NUL inside the text, which
 * a caller relying on strlen would cut the text at. */
pt_status pt_tokenizer_decode_n(const pt_tokenizer *tok, const int32_t *ids, size_t n, bool skip_special, char **out, size_t *len);

int32_t pt_tokenizer_vocab_size(const pt_tokenizer *tok);
int32_t pt_tokenizer_bos(const pt_tokenizer *tok);  /* -1 when none */
int32_t pt_tokenizer_eos(const pt_tokenizer *tok);  /* -1 when none */
bool pt_tokenizer_adds_bos(const pt_tokenizer *tok); /* whether add_special prepends BOS */
int32_t pt_tokenizer_token_id(const pt_tokenizer *tok, const char *token); /* exact vocab/added token, -1 if absent */
const char *pt_tokenizer_token_text(const pt_tokenizer *tok, int32_t id); /* raw vocab string, NULL if out of range */
bool pt_tokenizer_is_special(const pt_tokenizer *tok, int32_t id);
const char *pt_tokenizer_chat_template_source(const pt_tokenizer *tok); /* Jinja source or NULL */
const char *pt_tokenizer_kind(const pt_tokenizer *tok); /* "byte-level BPE", "sentencepiece BPE", ... */

/* Ids that end generation: EOS plus the end-of-turn markers present in the vocabulary as
 * special tokens (<|eot_id|>, <|im_end|>, <|end_of_text|>, </s>, <|endoftext|>, <|eom_id|>,
 * <end_of_turn>, <|end|>), without duplicates. Fewer than needed slots is PT_ERR_ARG. */
pt_status pt_tokenizer_stop_ids(const pt_tokenizer *tok, int32_t *out, int max, int *n);

#endif
