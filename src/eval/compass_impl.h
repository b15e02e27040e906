/* Internal pieces shared by the compass's files (not part of the public API). */
#ifndef PT_EVAL_COMPASS_IMPL_H
#define PT_EVAL_COMPASS_IMPL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"
#include "eval/compass.h"

/* Renders [system?, user] with the chat template and its generation prompt, appends
 * `continuation` (may be NULL) and encodes the whole text. BOS follows the template: written
 * as text by templates that start with it, added by the tokenizer's rule for alpaca. */
pt_status pt_eval_encode_chat(const pt_model *m, pt_chat_template chat, const char *system, const char *user,
                              const char *continuation, int32_t **ids, size_t *n);

/* The template the compass uses for a model: cfg's choice, else the checkpoint's, else
 * alpaca. */
pt_chat_template pt_eval_chat_for(const pt_model *m, pt_chat_template requested);

/* One free-text generation for the batched generator. */
typedef struct {
    int32_t *prompt;         /* owned */
    int n_prompt;
    uint64_t seed;
    int32_t *ids;            /* output, owned */
    int n_ids;
    char *text;              /* output, owned */
    const char *stop_reason; /* "eos", "stop_string", "length", "context" */
} pt_eval_gen_job;

/* Generates every job with continuous batching over the engine's slots (a finished
 * sequence's slot takes the next job at once). Each job samples from its own generator
 * seeded with job->seed, so a job's text does not depend on which others ran beside it
 * beyond floating-point summation order. `stop_strings` (may be NULL) end a reply (cut
 * before them). */
pt_status pt_eval_generate_jobs(pt_engine *e, const pt_model *m, pt_eval_gen_job *jobs, int n_jobs, const pt_gen_params *p,
                                const char *const *stop_strings, int n_stop_strings, long *generated_tokens);
void pt_eval_gen_job_free(pt_eval_gen_job *j);

/* A 64-bit mix of a seed and an index path, for per-job seeds. */
uint64_t pt_eval_seed(uint64_t seed, uint64_t a, uint64_t b, uint64_t c);

/* The two answer modes, filling r's cells (compass_logprob.c, compass_generate.c). */
pt_status pt_compass_logprob(const pt_model *m, const pt_adapter *a, const pt_compass_config *cfg, pt_chat_template chat,
                             pt_compass_result *r);
pt_status pt_compass_generate(const pt_model *m, const pt_adapter *a, const pt_compass_config *cfg, pt_chat_template chat,
                              pt_compass_result *r);
/* Parses a generate-mode cell's K texts (c->texts) and sets the sample answers and
 * statuses, the counts, the majority answer (ties: the answer seen first) and the answer
 * shares (compass_generate.c). */
void pt_compass_cell_tally(pt_compass_cell *c, const char *const *labels, int A, const pt_template_variant *v, int K);
/* pt_compass_run in this process alone (compass.c), and split among the ranks of a job
 * (compass_shard.c; logprob mode). */
pt_status pt_compass_run_local(const pt_model *m, const pt_adapter *a, const pt_questionnaire *q, const pt_scoring *s,
                               const pt_compass_config *cfg, pt_compass_result **out);
pt_status pt_compass_run_ranks(const pt_model *m, const pt_adapter *a, const pt_questionnaire *q, const pt_scoring *s,
                               const pt_compass_config *cfg, pt_compass_result **out);
/* Items [lo, hi) of part i of n (0 <= i < n): contiguous blocks that start on a boundary of
 * the engine's passes over (item, template) jobs. */
void pt_compass_part_items(int n_items, int n_variants, int batch, int i, int n, int *lo, int *hi);
/* Generates the open prompts in cfg into r (compass_generate.c). */
pt_status pt_compass_open_prompts(const pt_model *m, const pt_adapter *a, const pt_compass_config *cfg, pt_chat_template chat,
                                  pt_compass_result *r);
/* Engine with `slots` slots of n_ctx tokens (capped at the model's context) and the adapter,
 * or cfg's adapter list when it has one. */
pt_status pt_eval_engine(pt_engine **e, const pt_model *m, const pt_adapter *a, const pt_compass_config *cfg, int slots, int n_ctx);

/* The template variants a run asks (cfg->templates), one per template where the prompt
 * lists no options (the reply scoring): malloc'd. */
pt_status pt_compass_variants(const pt_compass_config *cfg, pt_template_variant **out, int *n);
/* Settings that cannot work together, and labels the reply scoring cannot turn into
 * distinct replies (when it is the scoring or compared): one message naming the file. */
pt_status pt_compass_check_config(const pt_compass_config *cfg, const pt_scoring *s);

/* compass.json pieces (compass_json.c). */
json_t *pt_compass_json_header(const pt_compass_result *r, const pt_compass_meta *meta);
json_t *pt_compass_json_evaluation(const pt_compass_result *r, const pt_compass_meta *meta);
/* The option scorings compared (compass_logprob.c): NULL unless cfg.compare_scorings. */
json_t *pt_compass_json_scorings(const pt_compass_result *r);
/* Serialises with 15 significant digits (so 2-decimal coordinates read as written) and a
 * trailing newline; malloc'd. */
char *pt_compass_json_dump(const json_t *root);

#endif
