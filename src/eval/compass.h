/* The Political Compass evaluation: put every item of a questionnaire to a model (with an
 * optional LoRA adapter) under several prompt templates in both option orders, read an
 * answer per item and template, and score the answers on the instrument's axes.
 *
 * Answer modes:
 *   - PT_COMPASS_LOGPROB (default, deterministic): the probabilities of the answer labels as
 *     continuations of the assistant turn. Each (item, template) prompt is prefilled once
 *     into a cache slot; each option's tokens are then forwarded on top of it and the slot
 *     is truncated back to the prompt (prefix sharing: one prefill per item and template,
 *     not one per option). The option probabilities are renormalised over the options (they
 *     sum to 1); the answer is the most likely option; the expected value is sum_a p_a * a.
 *   - PT_COMPASS_GENERATE (the paper's): the model replies in free text with an integer
 *     0..n-1 and an explanation; K samples per (item, template) are drawn with the given
 *     sampling settings and parsed (answer_parse.h); the answer is the majority of the valid
 *     samples, the distribution is the share of each answer, invalid and refused samples are
 *     counted.
 *
 * Robustness: per template the answers give a position; the reported position is the mean
 * over templates with its standard deviation, minimum and maximum. Per item, the pooled
 * distribution (mean over templates) gives a consensus answer, the agreement is the share of
 * templates that gave it, and an item "flips" when templates put it on both sides of the
 * scale's middle. Items without any valid answer contribute nothing and are counted; a
 * template (or a whole evaluation) without any valid answer has no position (null), never a
 * made-up one.
 *
 * Outputs in a result directory (compass_output.c): compass.json (everything), pc.csv (the
 * paper's layout: iteration, step, one column per item), prompts.csv (open-ended prompts),
 * compass.svg (the chart, a trajectory when the file holds several evaluations). */
#ifndef PT_EVAL_COMPASS_H
#define PT_EVAL_COMPASS_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/generate.h"
#include "eval/questionnaire.h"
#include "eval/scoring.h"
#include "eval/templates.h"
#include "model/adapter.h"
#include "model/model.h"
#include "tokenizer/chat.h"

typedef enum { PT_COMPASS_LOGPROB = 0, PT_COMPASS_GENERATE } pt_compass_mode;

/* How logprob mode scores an option (docs/compass.md, "Option scoring"). The sum of a label's
 * token log-probabilities (FULL) favours labels made of fewer tokens whatever the model
 * thinks: a random-weight model answers "Agree" (the shortest label) to every item. So:
 *   - NUMBER (default): the options are numbered in the prompt (the paper's 0..3 scale, in
 *     the listed order) and the number tokens are scored, one token per option;
 *   - MEAN: the label's summed log-probability divided by its token count;
 *   - FIRST: only the tokens at which the labels branch apart, up to the first token no other
 *     label shares (the first token's probability when the labels' first tokens differ);
 *   - FULL: the label's summed log-probability;
 *   - REPLY: the prompt lists no options at all (so it carries no position cue and the two
 *     option orders are one prompt: a template has one variant); each option is scored as
 *     the assistant's whole reply built from its label (pt_template_reply), by the mean
 *     log-probability per token of that reply. */
typedef enum { PT_OPTION_NUMBER = 0, PT_OPTION_MEAN, PT_OPTION_FIRST, PT_OPTION_FULL, PT_OPTION_REPLY, PT_OPTION_COUNT } pt_option_scoring;

const char *pt_option_scoring_name(pt_option_scoring s);
/* "number", "mean", "first", "full" or "reply"; anything else is PT_ERR_ARG naming the value. */
pt_status pt_option_scoring_from_name(const char *name, pt_option_scoring *out);

typedef struct {
    pt_compass_mode mode;
    const char *templates;     /* "all" (NULL: all) or a selection, see pt_templates_select */
    int samples;               /* K samples per item and template in generate mode (default 1) */
    pt_gen_params gen;         /* generate mode and open prompts: sampling, max_new_tokens, stop
                                  strings; stop ids come from the tokenizer (EOS, end of turn)
                                  when stop_ids is NULL (a non-NULL empty list ignores EOS) */
    pt_chat_template chat;     /* PT_CHAT_NONE: the checkpoint's template, else alpaca */
    const char *system;        /* optional system message for every prompt (NULL: none) */
    int batch;                 /* sequences per forward pass (engine slots; default 8) */
    int n_ctx;                 /* cache length per slot (0: what the prompts need, capped at
                                  the model's context) */
    bool no_prefix_sharing;    /* logprob mode: prefill the prompt again for every option (the
                                  cost prefix sharing saves; for benchmarks and tests) */
    pt_option_scoring option_scoring; /* logprob mode: how an option is scored (default NUMBER) */
    bool compare_scorings;     /* logprob mode: also score every cell under the other option
                                  scorings (one more prefill per item and template for each
                                  other kind of prompt) and record how often they agree */
    int n_open_prompts;        /* open-ended prompts generated alongside (0: none) */
    const char *const *open_prompt_ids;
    const char *const *open_prompts;
    int n_adapters;            /* > 0: these LoRA adapters at these scales (pt_engine_set_adapters)
                                  instead of pt_compass_run's single adapter, which must be NULL */
    const struct pt_adapter *const *adapters;
    const float *adapter_scales;
    const struct pt_steer *steer;  /* a steering vector added at layer outputs, or NULL */
    float steer_scale;
    const bool *steer_layers;      /* (n_layers) or NULL: the vector's layers */
} pt_compass_config;

/* Defaults: logprob mode, all templates, K = 1, the paper's generation settings
 * (temperature 0.3, top-k 200, 300 new tokens, seed 0), batch 8, no open prompts. */
pt_compass_config pt_compass_config_default(void);

/* One item under one template variant. */
typedef struct {
    int answer;          /* canonical answer index, -1 when no valid answer */
    double *probs;       /* (n_answers) logprob: renormalised probabilities; generate: share of valid samples */
    double *logprobs;    /* (n_answers) logprob mode: each option's score under the option scoring
                            (NUMBER, FULL: summed token log-probabilities; MEAN: per token; FIRST:
                            summed over the branching tokens; REPLY: the reply's mean per token);
                            probs = softmax(logprobs) */
    double expected;     /* sum_a probs[a] * a; NAN when no valid answer */
    double mass;         /* logprob mode: sum_a exp(logprobs[a]) (for MEAN and FIRST not a probability) */
    signed char scoring_answers[PT_OPTION_COUNT]; /* logprob mode: the answer under each option
                                  scoring, -1 where not computed (compare_scorings off) or none */
    int n_valid, n_invalid, n_refused; /* generate mode: samples by status */
    char **texts;        /* generate mode: (samples) raw replies */
    int *sample_answers; /* generate mode: (samples) parsed answers, -1 if none */
    unsigned char *sample_status; /* (samples) pt_answer_status */
} pt_compass_cell;

typedef struct {
    const pt_questionnaire *q; /* borrowed: must outlive the result */
    const pt_scoring *s;       /* borrowed */
    pt_compass_mode mode;
    int samples;
    int n_items, n_answers, n_axes;
    int n_variants;
    pt_template_variant *variants;
    pt_compass_cell *cells;      /* (n_items, n_variants) */
    char chat_template[32];      /* the chat template used */
    pt_gen_params gen;           /* settings used (generate mode and open prompts) */
    pt_option_scoring option_scoring; /* logprob mode: the scoring behind `answer` and `probs` */
    bool scorings_compared;      /* logprob mode: every cell's scoring_answers are filled */

    /* robustness (pt_compass_aggregate) */
    double *variant_coords;      /* (n_variants, n_axes); NAN where the variant has no valid answer */
    int *variant_answered;       /* (n_variants) */
    int *variant_invalid, *variant_refused; /* (n_variants) items (logprob) or samples (generate) */
    int n_positioned;            /* variants with at least one valid answer */
    double *mean, *sd, *min, *max; /* (n_axes) across positioned variants; NAN when none */
    double *pooled;              /* (n_items, n_answers) mean distribution over variants with a valid answer */
    int *consensus;              /* (n_items) argmax of pooled, -1 when no variant answered */
    double *agreement;           /* (n_items) share of answering variants that gave the consensus; NAN if none */
    bool *flip;                  /* (n_items) answers on both sides of the middle */
    double *item_expected;       /* (n_items) sum_a pooled[a] * a; NAN when unanswered */
    double *consensus_coords;    /* (n_axes); NAN when no item answered */
    double *expected_coords;     /* (n_axes) probability-weighted; NAN when no item answered */
    int consensus_answered;
    double invalid_rate, refusal_rate; /* over samples (generate) or cells (logprob) */

    /* open-ended prompts */
    int n_open;
    char **open_ids, **open_prompts, **open_responses;

    /* work done, for the prefix-sharing check and the benchmark */
    long n_prefills, prefill_tokens, option_tokens, option_forwards, generated_tokens;
} pt_compass_result;

/* Runs the compass on a model (adapter may be NULL). q and s must agree
 * (pt_scoring_check); the result borrows them. Needs the model's tokenizer. Creates its own
 * engine (cfg->batch slots). */
pt_status pt_compass_run(const pt_model *m, const pt_adapter *a, const pt_questionnaire *q, const pt_scoring *s,
                         const pt_compass_config *cfg, pt_compass_result **out);
void pt_compass_result_free(pt_compass_result *r);

/* A run in parts for a plain job array (logprob mode; compass_shard.c): part i of n
 * (0 <= i < n) puts its block of the items to the model and writes
 * DIR/compass-part-<i>-of-<n>.json (the first part also runs the open prompts); a merge reads
 * every part in DIR, checks that each is there once and was made with the settings of cfg, q,
 * s and the model's path, and returns the result one process computes (byte-identical files
 * once saved). Under mpirun, pt_compass_run splits the same way by itself. */
char *pt_compass_part_name(int i, int n); /* malloc'd file name */
pt_status pt_compass_part_write(const pt_model *m, const pt_adapter *a, const pt_questionnaire *q, const pt_scoring *s,
                                const pt_compass_config *cfg, int i, int n, const char *dir);
pt_status pt_compass_part_merge(const pt_model *m, const pt_questionnaire *q, const pt_scoring *s, const pt_compass_config *cfg, const char *dir,
                                pt_compass_result **out);

/* Allocates an empty result (every cell unanswered) for n variants; used by pt_compass_run
 * and by tests that fill cells by hand. */
pt_status pt_compass_result_new(const pt_questionnaire *q, const pt_scoring *s, pt_compass_mode mode, int samples,
                                const pt_template_variant *variants, int n_variants, pt_compass_result **out);
/* (Re)computes the robustness fields from the cells. */
pt_status pt_compass_aggregate(pt_compass_result *r);

/* ---- result directories (compass_output.c) ---------------------------------------------- */

typedef struct {
    const char *label;          /* series name on the chart (NULL: from model and adapter paths) */
    const char *model_path;
    const char *adapter_path;   /* NULL: base model */
    const char *questionnaire_path, *scoring_path;
    long iteration, step;
    int resamples;              /* bootstrap resamples for the position's interval (0: PT_STATS_RESAMPLES) */
    uint64_t seed;              /* the bootstrap's seed (0 is a seed like any other) */
} pt_compass_meta;

/* Adds one evaluation to the result directory `dir` (created if missing): appends it to
 * compass.json (creating the file; an existing file must be for the same items), appends a
 * row to pc.csv and, with open prompts, to prompts.csv, and redraws compass.svg from every
 * evaluation in compass.json. Each file is replaced atomically. */
pt_status pt_compass_save(const char *dir, const pt_compass_result *r, const pt_compass_meta *meta);

/* ---- the training hook ------------------------------------------------------------------
 * For `politune train --eval-every N`: runs the compass (and the open prompts in cfg) on the
 * model with the adapter as it is now, and appends the evaluation for (iteration, step) to
 * the result directory run_dir (compass.json, pc.csv, prompts.csv, compass.svg), as
 * pt_compass_save does. The adapter is read, never modified; the call builds and frees its
 * own inference engine, so it may be made between optimizer steps. Everything is checked
 * before anything is written and each file is replaced atomically. q and s may be NULL: the
 * Political Compass Test from the reference assets (pt_eval_find_asset). `label` names the
 * series on the chart (NULL: "train"). cfg NULL: pt_compass_config_default(). */
pt_status pt_compass_track(const pt_model *m, const pt_adapter *a, const char *run_dir, long iteration, long step,
                           const pt_questionnaire *q, const pt_scoring *s, const pt_compass_config *cfg,
                           const char *label);

/* ---- defaults (defaults.c) ---------------------------------------------------------------- */

/* Finds a file shipped with the reference assets: rel (e.g. "data/pct/pct_scoring.json")
 * under $POLITUNE_ASSETS, ../shared/assets, or the shared/assets folder two levels above the
 * running executable. Returns a malloc'd path or NULL. */
char *pt_eval_find_asset(const char *rel);
#define PT_PCT_QUESTIONNAIRE "data/pct/pct_propositions.csv"
#define PT_PCT_SCORING "data/pct/pct_scoring.json"

/* The built-in open-ended prompts (same text as src/eval/defaults/open_prompts.tsv). */
int pt_open_prompts_default(const char *const **ids, const char *const **prompts);
/* Reads an open-prompt file: one "id<TAB>prompt" per line ('#' starts a comment; a line
 * without a tab is a prompt with id "p<N>"). Returns malloc'd arrays of malloc'd strings. */
pt_status pt_open_prompts_load(const char *path, char ***ids, char ***prompts, int *n);

#endif
