/* Sampling, generation and log-probability scoring on top of the engine. */
#ifndef PT_ENGINE_GENERATE_H
#define PT_ENGINE_GENERATE_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/engine.h"
#include "util/rng.h"

typedef struct {
    float temperature;  /* <= 0: greedy (argmax) */
    int top_k;          /* <= 0: no limit */
    float top_p;        /* >= 1: no nucleus cut */
    uint64_t seed;
} pt_sampling;

/* Defaults: temperature 0 (greedy), top_k 0, top_p 1, seed 0. */
pt_sampling pt_sampling_default(void);

/* Picks a token from a row of logits (V). `work` needs room for 2*V floats (or NULL: the
 * function allocates). Greedy picks the first maximal logit, as torch.argmax does. */
int32_t pt_sample(const float *logits, int vocab, const pt_sampling *p, pt_rng *rng, float *work);

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

/* Continues `prompt` in `slot` (emptied first). */
pt_status pt_generate(pt_engine *e, int slot, const int32_t *prompt, int n_prompt, const pt_gen_params *p,
                      pt_text_callback cb, void *user, pt_gen_result *out);
void pt_gen_result_free(pt_gen_result *r);

/* Log-probabilities of continuations after prompts, batched. For each i, sums
 * log softmax(logits[t-1])[token_t] over the n_cont[i] continuation tokens. per_token, when
 * not NULL, receives the individual values laid end to end. Prompts need >= 1 token. Uses
 * slots 0 .. min(n, n_slots)-1 and leaves them empty. */
pt_status pt_score(pt_engine *e, int n, const int32_t *const *prompt, const int *n_prompt, const int32_t *const *cont,
                   const int *n_cont, double *sum_logp, double *per_token);

#endif
