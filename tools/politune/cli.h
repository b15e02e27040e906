/* Shared pieces of the CLI: option parsing helpers, loading a model (plus adapter and
 * thread count) with errors printed the one way, number lists, JSON output helpers, and
 * building a prompt from --prompt / --system / --chat. */
#ifndef PT_CLI_CLI_H
#define PT_CLI_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include "politune.h"
#include "util/status.h"
#include "format/gguf.h"
#include "format/safetensors.h"
#include "model/model.h"
#include "model/adapter.h"
#include "model/steer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/chat.h"
#include "engine/engine.h"
#include "engine/generate.h"
#include "backend/cpu/matmul.h"
#include "backend/backend.h"
#include "train/train.h"
#include "eval/questionnaire.h"
#include "eval/scoring.h"
#include "eval/compass.h"
#include "eval/report.h"
#include "data/pipeline.h"
#include "data/judge.h"
#include "serve/server.h"

/* Prints "politune <cmd>: <message>" (the library message when msg is NULL) to stderr and
 * returns the exit status for the failure (2 for usage errors, 1 otherwise). */
int cli_fail(const char *cmd, pt_status st);
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses numbers, checking the whole string was consumed. */
bool cli_parse_int(const char *s, long lo, long hi, long *out);
/* The bootstrap's --resamples N (1..1000000) and --seed S (>= 0), shared by compass, report and
 * compare: 0 when parsed into *out, else the usage error's exit status. */
int cli_parse_resamples(const char *cmd, const char *arg, int *out);
int cli_parse_stats_seed(const char *cmd, const char *arg, uint64_t *out);
bool cli_parse_float(const char *s, double *out);
/* "1,2,3" -> malloc'd int32 array */
pt_status cli_parse_ids(const char *s, int32_t **ids, int *n);

/* The getopt loop every command shares. A command's options come in groups, each a table of
 * getopt_long entries (the command puts them all in one `longopts`) handled by one function:
 * it returns 1 when the option was its own and taken, 0 when it is not its own, and -1 after
 * printing a bad value's message (cli_usage_error). --help ('h') prints `usage`. */
typedef int (*cli_option_fn)(void *opts, const char *cmd, int opt, const char *arg);
typedef struct {
    cli_option_fn fn;
    void *opts;
} cli_option_group;

#define CLI_HELP_SHOWN (-1)
/* Runs the loop over argv (the groups end with {NULL}). Returns 0 to go on (positional
 * arguments from optind, when `positional`), CLI_HELP_SHOWN after --help (the command
 * returns 0), or the exit status of a usage error. */
int cli_getopt(const char *cmd, int argc, char **argv, const struct option *longopts, const char *usage, bool positional,
               const cli_option_group *groups);
/* Options that only store their value: a string option's argument into *str, or a flag's
 * true into *flag. A group of them is an array ending with {0} (opts: the array). */
typedef struct {
    int opt;
    const char **str;
    bool *flag;
} cli_bind;
int cli_bind_group(void *binds, const char *cmd, int opt, const char *arg);

/* The group handlers of the shared option sets below (opts: a cli_model_opts / cli_gen_opts). */
int cli_model_group(void *opts, const char *cmd, int opt, const char *arg);
int cli_gen_group(void *opts, const char *cmd, int opt, const char *arg);

/* Options every model-using command takes. */
typedef struct {
    const char *model, *adapter, *chat_template; /* adapter: the first --adapter as given */
    const char *adapter_args[PT_ENGINE_MAX_ADAPTERS]; /* every --adapter DIR[:SCALE], in order */
    int n_adapters;
    const char *steer;  /* --steer FILE[:SCALE][@LAYERS] */
    const char *device; /* --device cpu|cuda|auto; NULL: auto */
    const char *precision; /* --precision bf16|f32 on the GPU; NULL: bf16 */
    int threads, ctx;
    const char *numerics; /* --numerics exact|llamacpp as given (already the engines' default); NULL: exact */
} cli_model_opts;

/* Makes --device's choice (NULL: $POLITUNE_DEVICE, else auto) the backend of the models loaded after it; returns 0
 * or the exit status (message printed: an unknown name, or CUDA where it cannot run). */
int cli_device_select(const char *cmd, const char *device);
/* The same with --precision (NULL: $POLITUNE_CUDA_PRECISION, else bf16), the GPU's arithmetic; cli_backend_configure returns
 * the status and leaves the message (pt_errmsg) instead of printing it. */
int cli_device_select_precision(const char *cmd, const char *device, const char *precision);
pt_status cli_backend_configure(const char *device, const char *precision);

/* Handles --model/--adapter/--threads/--ctx/--chat-template/--device/--precision/--numerics (returns 1 if consumed, 0 if not
 * one of them, -1 on a bad value). */
int cli_model_option(cli_model_opts *o, const char *cmd, int opt, const char *arg);
#define CLI_MODEL_LONGOPTS                                                              \
    {"model", required_argument, 0, 'm'}, {"adapter", required_argument, 0, 'A'},      \
        {"threads", required_argument, 0, 'j'}, {"ctx", required_argument, 0, 'C'},     \
        {"chat-template", required_argument, 0, 'T'}, {"device", required_argument, 0, 2000},  \
        {"steer", required_argument, 0, 2001}, {"precision", required_argument, 0, 2002},    \
        {"numerics", required_argument, 0, 2003}
#define CLI_MODEL_HELP                                                                            \
    "  --model PATH          GGUF file or Hugging Face model directory (required)\n"             \
    "  --adapter DIR[:SCALE] apply a PEFT LoRA adapter (adapter_config.json + safetensors) times\n" \
    "                        SCALE (default 1; 0 = base, -1 = the opposite delta); repeatable: the\n" \
    "                        scaled deltas add up (--adapter left:0.5 --adapter right:0.5)\n"     \
    "  --steer F[:S][@L]     add steering vector F (politune steer build) times S (default 1) at\n" \
    "                        the output of layers L (5, 2-4, 1,3 or all; default: F's layers)\n"  \
    "  --threads N           worker threads (default: all cores)\n"                              \
    "  --ctx N               context length for the key/value cache (default: model's, max 4096)\n" \
    "  --chat-template NAME  override the checkpoint's template: llama3, mistral, chatml, qwen3, alpaca\n" \
    "  --device DEV          cpu, cuda or auto (default $POLITUNE_DEVICE, else auto: cuda when this build has\n" \
    "                        CUDA and a GPU is present)\n"                                      \
    "  --precision P         on the GPU: bf16 (bf16 weights and product inputs, fp32 accumulation)\n" \
    "                        or f32 (the CPU's numbers to float32 rounding); default\n"             \
    "                        $POLITUNE_CUDA_PRECISION, else bf16\n"                               \
    "  --numerics N          exact (default: float32 activations and key/value cache) or llamacpp:\n" \
    "                        round as llama.cpp's CPU backend does (8-bit activations per 32, f16\n" \
    "                        keys, values and attention operands), to reproduce its greedy tokens\n" \
    "                        on the same file; CPU only, less exact (docs/numerics.md)\n"

typedef struct {
    pt_model *model;
    pt_adapter *adapter; /* the first of adapters[] */
    pt_adapter *adapters[PT_ENGINE_MAX_ADAPTERS];
    float scales[PT_ENGINE_MAX_ADAPTERS];
    int n_adapters;
    pt_engine *engine;
    pt_chat_template chat;
    pt_steer *steer;
} cli_session;

/* Loads --steer (when given) against m: the vector, its scale and layer mask (n_layers,
 * malloc'd). 0, or the exit status after printing the message. */
int cli_steer_load(const char *cmd, const char *arg, const pt_model *m, pt_steer **out, float *scale, bool **layers);

/* Loads every --adapter of `o` against `m` into adapters[] with its scale: 0, or the exit
 * status after printing the message (a bad scale, an adapter made for another base model). */
int cli_adapters_load(const char *cmd, const cli_model_opts *o, const pt_model *m, pt_adapter **adapters, float *scales);
/* --adapter NAME=DIR[:SCALE] (serve names its adapters so): the NAME (malloc'd into *name,
 * NULL when absent: a plain name of letters, digits, '_', '.', '-' before '=', and the whole
 * argument not an existing directory) and the rest. */
const char *cli_adapter_strip_name(const char *arg, char **name);
/* The adapter's name: NAME= when given, else its directory's last component (the one above
 * when that is "adapter"). malloc'd. */
char *cli_adapter_name(const char *arg);
/* A chart label for the adapter list: NULL for none, "left" for one at scale 1, else the
 * names with their scales ("left:0.5+right:0.5"). malloc'd. */
char *cli_adapters_label(const cli_model_opts *o);
/* merge and export-lora: the model and its --adapter list as one adapter (the loaded one
 * itself when it is alone at scale 1, else their scaled sum, pt_adapter_combine). */
typedef struct {
    pt_model *m;
    const pt_adapter *a;
    pt_adapter *loaded[PT_ENGINE_MAX_ADAPTERS], *owned;
    int n_loaded;
} cli_merged;
/* 0, or the exit status after printing the message; close `out` either way. */
int cli_merged_open(const char *cmd, const cli_model_opts *o, cli_merged *out);
void cli_merged_close(cli_merged *mg);

/* Loads the model (and adapter), sets threads, creates an engine with n_slots slots. */
int cli_session_open(cli_session *s, const char *cmd, const cli_model_opts *o, int n_slots);
void cli_session_close(cli_session *s);

/* Sampling flags shared by generate and chat. */
typedef struct {
    pt_gen_params p;
    const char *stops[16];
    int n_stops;
    bool stop_at_eos;
} cli_gen_opts;

void cli_gen_defaults(cli_gen_opts *g);
int cli_gen_option(cli_gen_opts *g, const char *cmd, int opt, const char *arg);
#define CLI_GEN_LONGOPTS                                                                        \
    {"max-new-tokens", required_argument, 0, 'n'}, {"temperature", required_argument, 0, 't'},  \
        {"top-k", required_argument, 0, 'k'}, {"top-p", required_argument, 0, 'p'},             \
        {"seed", required_argument, 0, 's'}, {"stop", required_argument, 0, 'S'},               \
        {"ignore-eos", no_argument, 0, 'E'}
#define CLI_GEN_HELP                                                                              \
    "  --max-new-tokens N    tokens to generate at most (default 256)\n"                        \
    "  --temperature T       0 = greedy (default); > 0 samples\n"                                \
    "  --top-k K             sample among the K most likely tokens (0 = all)\n"                  \
    "  --top-p P             nucleus sampling: smallest set with probability >= P (default 1)\n" \
    "  --seed S              random seed (default 0): same seed, same text\n"                    \
    "  --stop STR            stop when the text contains STR (repeatable)\n"                      \
    "  --ignore-eos          keep going past end-of-sequence / end-of-turn tokens\n"

/* Fills the stop-token list from the tokenizer (EOS, end-of-turn) unless --ignore-eos. */
void cli_gen_finish(cli_gen_opts *g, const pt_model *m, int32_t *buf, int cap);

/* Tokenises a prompt: raw text (BOS added as the tokenizer says), or with `chat` a
 * conversation [system?, user] rendered by the session's template with the generation
 * prompt. Needs a tokenizer. */
pt_status cli_encode_prompt(const cli_session *s, const char *system, const char *user, bool chat, int32_t **ids, int *n);

/* A pt_text_callback printing each final piece of generated text to stdout at once. */
bool cli_stream_stdout(void *user, const char *piece, size_t len);

/* Writes s as a JSON string literal. */
void cli_json_string(FILE *f, const char *s);
void cli_json_stringn(FILE *f, const char *s, size_t n); /* n bytes, NULs written as \u0000 */

#endif
