/* politune — measure and steer the political leaning of language models.
 *
 * The public C API: load a checkpoint (GGUF file or Hugging Face directory) and a PEFT LoRA
 * adapter, tokenize, run the forward pass, generate and score. It is the part of the library
 * whose names and behaviour stay stable; training, the compass, the data stages and the
 * pipeline are reached through the `politune` command (or, unstable, the headers under src/,
 * see ARCHITECTURE.md). This header needs nothing but the C standard headers; link with
 * `pkg-config --cflags --libs politune`.
 *
 * Every function that can fail returns a pt_status (PT_OK on success) and leaves a message
 * for pt_errmsg() on the calling thread; nothing in the library prints to stdout or exits.
 * Objects come in pairs: what *_load / *_new gives, *_free takes back.
 *
 * Usage (a complete program; tests/test_api.c compiles and runs it as it stands here):
 *
 *   #include <politune.h>
 *   #include <stdio.h>
 *   #include <stdlib.h>
 *   #include <string.h>
 *
 *   int main(int argc, char **argv) {
 *       if (argc < 2) return 2;
 *       pt_model *m = NULL;
 *       pt_engine *e = NULL;
 *       int32_t *ids = NULL;
 *       size_t n = 0;
 *       pt_gen_result r = {0};
 *       pt_gen_params gp = pt_gen_params_default();            // greedy
 *       gp.max_new_tokens = 20;
 *       const char *prompt = argc > 2 ? argv[2] : "Once upon a time";
 *       pt_status st = pt_model_load(&m, argv[1]);
 *       if (!st) st = pt_engine_new(&e, m, 1, 256);            // one sequence slot, 256 tokens
 *       if (!st) st = pt_tokenizer_encode(pt_model_tokenizer(m), prompt, strlen(prompt), true, &ids, &n);
 *       if (!st) st = pt_generate(e, 0, ids, (int)n, &gp, NULL, NULL, &r);
 *       if (!st) printf("%s%s\n", prompt, r.text);
 *       else fprintf(stderr, "error: %s\n", pt_errmsg());
 *       pt_gen_result_free(&r);
 *       free(ids);
 *       pt_engine_free(e);
 *       pt_model_free(m);
 *       return st ? 1 : 0;
 *   }
 */
#ifndef POLITUNE_H
#define POLITUNE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PT_VERSION "0.1.0"

/* ---- status ------------------------------------------------------------------------------ */

typedef enum {
    PT_OK = 0,
    PT_ERR_IO,          /* a file could not be opened, read, written or mapped */
    PT_ERR_FORMAT,      /* a file's content is malformed or inconsistent */
    PT_ERR_OOM,         /* an allocation failed (the message says how much was asked for) */
    PT_ERR_ARG,         /* a caller passed an invalid argument (bad flag, id out of range, ...) */
    PT_ERR_UNSUPPORTED, /* well-formed, but something this build does not handle */
    PT_ERR_NUMERIC,     /* NaN / Inf where a finite number is required */
    PT_ERR_NET,         /* network / HTTP failure */
    PT_ERR_INTERNAL     /* a broken invariant: a bug */
} pt_status;

const char *pt_errmsg(void);          /* the last message set on this thread ("" if none) */
void pt_error_clear(void);
const char *pt_status_name(pt_status st);

/* The library's version (PT_VERSION) and the optional parts this build has, as one line:
 * "blas=openblas cuda=no mpi=no" (the same line `politune --version` prints). */
const char *pt_version(void);
const char *pt_build_features(void);

/* ---- models and adapters -------------------------------------------------------------------- */

typedef struct pt_model pt_model;
typedef struct pt_tokenizer pt_tokenizer;
typedef struct pt_adapter pt_adapter;

/* Loads a GGUF file or a Hugging Face directory (config.json + model.safetensors, or shards
 * with model.safetensors.index.json). Weights are memory-mapped and never written. */
pt_status pt_model_load(pt_model **out, const char *path);
void pt_model_free(pt_model *m);
/* Number of parameters (tied embeddings counted once). */
size_t pt_model_n_params(const pt_model *m);
/* The checkpoint's own tokenizer (owned by the model), NULL when it ships none. */
const pt_tokenizer *pt_model_tokenizer(const pt_model *m);
/* The width of a row of logits. */
int pt_model_vocab_size(const pt_model *m);

/* Loads a PEFT adapter directory (adapter_config.json + adapter_model.safetensors) and checks
 * every target and shape against the model. */
pt_status pt_adapter_load(pt_adapter **out, const char *dir, const pt_model *m);
/* Writes the directory back (each file atomically), with PEFT key names. */
pt_status pt_adapter_save(const pt_adapter *a, const char *dir);
void pt_adapter_free(pt_adapter *a);

/* ---- tokenizers ------------------------------------------------------------------------------ */

/* A Hugging Face tokenizer.json, for text a model does not carry a tokenizer for. */
pt_status pt_tokenizer_load_json(pt_tokenizer **out, const char *tokenizer_json_path);
void pt_tokenizer_free(pt_tokenizer *tok);
/* Encodes UTF-8 text (invalid UTF-8 is an error naming the byte offset). With add_special,
 * the post-processor's tokens (e.g. BOS) are added as the tokenizer's config says. The
 * result is malloc'd. */
pt_status pt_tokenizer_encode(const pt_tokenizer *tok, const char *text, size_t len, bool add_special,
                              int32_t **ids, size_t *n_ids);
/* Decodes ids to a malloc'd NUL-terminated UTF-8 string; special tokens are kept unless
 * skip_special. An id outside the vocabulary is PT_ERR_ARG. */
pt_status pt_tokenizer_decode(const pt_tokenizer *tok, const int32_t *ids, size_t n, bool skip_special, char **out);
int32_t pt_tokenizer_vocab_size(const pt_tokenizer *tok);
int32_t pt_tokenizer_bos(const pt_tokenizer *tok); /* -1 when none */
int32_t pt_tokenizer_eos(const pt_tokenizer *tok); /* -1 when none */

/* ---- the inference engine --------------------------------------------------------------------- */

typedef struct pt_engine pt_engine;

typedef enum {
    PT_LOGITS_LAST, /* one row per sequence: its last token */
    PT_LOGITS_ALL,  /* one row per token, sequences in batch order */
    PT_LOGITS_NONE  /* only fill the cache (prefix sharing) */
} pt_logits_mode;

/* n_slots sequences of up to n_ctx tokens each (n_ctx <= 0: the model's context length,
 * capped at 4096), each with its own key/value cache. */
pt_status pt_engine_new(pt_engine **out, const pt_model *m, int n_slots, int n_ctx);
void pt_engine_free(pt_engine *e);
/* Applies a LoRA adapter to every later forward pass (NULL: none); the adapter must outlive
 * its use. Slots filled before keep what they hold. */
void pt_engine_set_adapter(pt_engine *e, const pt_adapter *a);
/* Empties `slot` down to its first `len` tokens. */
pt_status pt_engine_truncate(pt_engine *e, int slot, int len);
/* Appends n tokens to `slot` and returns logits in an engine-owned buffer valid until the
 * next call: (1, V) for PT_LOGITS_LAST, (n, V) for PT_LOGITS_ALL. */
pt_status pt_engine_forward_one(pt_engine *e, int slot, const int32_t *ids, int n, pt_logits_mode mode,
                                const float **logits);

/* ---- generation and scoring -------------------------------------------------------------------- */

typedef struct {
    float temperature;  /* <= 0: greedy (argmax) */
    int top_k;          /* <= 0: no limit */
    float top_p;        /* >= 1: no nucleus cut */
    uint64_t seed;
} pt_sampling;

/* Defaults: temperature 0 (greedy), top_k 0, top_p 1, seed 0. */
pt_sampling pt_sampling_default(void);

typedef struct {
    pt_sampling sampling;
    int max_new_tokens;           /* default 256 */
    const int32_t *stop_ids;      /* generation ends after emitting one of these (not included in text) */
    int n_stop_ids;
    const char *const *stop_strings; /* generation ends when the text contains one (cut before it) */
    int n_stop_strings;
} pt_gen_params;

pt_gen_params pt_gen_params_default(void);

/* Called with each piece of text that is final (whole UTF-8 characters, never part of a
 * possible stop string); return false to stop. */
typedef bool (*pt_text_callback)(void *user, const char *piece, size_t len);

typedef struct {
    int32_t *ids;      /* generated ids (malloc'd), stop token excluded */
    int n_ids;
    char *text;        /* decoded text (malloc'd, NULL without a tokenizer), cut at a stop string */
    size_t text_len;   /* its bytes: a byte token may put a NUL inside it */
    const char *stop_reason; /* "eos", "stop_string", "length", "callback", "context" */
    int n_prompt;
    double prefill_s, decode_s;
} pt_gen_result;

/* Continues `prompt` in `slot` (emptied first). cb may be NULL. */
pt_status pt_generate(pt_engine *e, int slot, const int32_t *prompt, int n_prompt, const pt_gen_params *p,
                      pt_text_callback cb, void *user, pt_gen_result *out);
void pt_gen_result_free(pt_gen_result *r);

/* Log-probabilities of continuations after prompts, batched. For each i, sums
 * log softmax(logits[t-1])[token_t] over the n_cont[i] continuation tokens. per_token, when
 * not NULL, receives the individual values laid end to end. Prompts need >= 1 token. Uses
 * slots 0 .. min(n, n_slots)-1 and leaves them empty. */
pt_status pt_score(pt_engine *e, int n, const int32_t *const *prompt, const int *n_prompt, const int32_t *const *cont,
                   const int *n_cont, double *sum_logp, double *per_token);

#ifdef __cplusplus
}
#endif

#endif
