/* Shared by the data-pipeline commands (select, synth, judge-answers, annotate-eval): the
 * judge flags (an OpenAI-compatible server, or a model run in-process), the progress bar
 * and notes on stderr, and the summary line. */
#ifndef PT_CLI_JUDGE_H
#define PT_CLI_JUDGE_H

#include "cli.h"
#include "data/judge.h"
#include "data/pipeline.h"

typedef struct {
    pt_judge_opts o;
    const char *url, *model_path, *adapter_path, *chat_template, *key_env, *device, *precision;
    int threads, ctx;
    bool mode_set;
    /* after cli_judge_open */
    pt_model *model;
    pt_adapter *adapter;
    pt_engine *engine;
    pt_judge *judge;
} cli_judge;

void cli_judge_defaults(cli_judge *j);
/* 1 if the option was a judge flag, 0 if not, -1 on a bad value (message printed). */
int cli_judge_option(cli_judge *j, const char *cmd, int opt, const char *arg);
/* cli_judge_option as a cli_option_group handler (opts: a cli_judge). */
int cli_judge_group(void *opts, const char *cmd, int opt, const char *arg);
/* Connects to / loads the judge; returns 0 or the exit status (message printed). */
int cli_judge_open(cli_judge *j, const char *cmd);
void cli_judge_close(cli_judge *j);

#define CLI_JUDGE_LONGOPTS                                                                                     \
    {"judge", required_argument, 0, 1000}, {"judge-model", required_argument, 0, 1001},                        \
        {"judge-name", required_argument, 0, 1002}, {"judge-key-env", required_argument, 0, 1003},             \
        {"judge-mode", required_argument, 0, 1004}, {"judge-concurrency", required_argument, 0, 1005},         \
        {"judge-timeout", required_argument, 0, 1006}, {"judge-retries", required_argument, 0, 1007},          \
        {"judge-backoff", required_argument, 0, 1008}, {"judge-temperature", required_argument, 0, 1009},      \
        {"judge-max-tokens", required_argument, 0, 1010}, {"judge-system", required_argument, 0, 1011},        \
        {"judge-adapter", required_argument, 0, 1012}, {"judge-threads", required_argument, 0, 1013},          \
        {"judge-ctx", required_argument, 0, 1014}, {"judge-chat-template", required_argument, 0, 1015},        \
        {"judge-batch-invariant", no_argument, 0, 1016}, {"judge-device", required_argument, 0, 1017},             \
        {"judge-precision", required_argument, 0, 1018}

#define CLI_JUDGE_HELP                                                                                                      \
    "judge (one of --judge / --judge-model):\n"                                                                             \
    "  --judge URL              an OpenAI-compatible server (politune serve, llama.cpp, vLLM, hosted), e.g.\n"            \
    "                           http://127.0.0.1:8080/v1\n"                                                               \
    "  --judge-model PATH       run the judge in-process (GGUF file or Hugging Face directory)\n"                         \
    "  --judge-name NAME        model name sent to the server (default 'default')\n"                                      \
    "  --judge-key-env VAR      environment variable holding the API key (default POLITUNE_JUDGE_API_KEY,\n"               \
    "                           else OPENAI_API_KEY; none when unset)\n"                                                   \
    "  --judge-mode MODE        how scores are read: text (parse the reply), choice (guided_choice), logprobs\n"          \
    "                           (label probabilities); default text over HTTP, logprobs in-process\n"                     \
    "  --judge-concurrency N    requests in flight / sequences per in-process batch (default 4)\n"                        \
    "  --judge-timeout S        seconds per HTTP request (default 120)\n"                                                 \
    "  --judge-retries N        retries on 429, 5xx and connection errors (default 4)\n"                                  \
    "  --judge-backoff S        first retry delay, doubled each time up to 30 s (default 0.5)\n"                          \
    "  --judge-temperature T    sampling temperature for free text (default 0; seeds are fixed per record)\n"             \
    "  --judge-max-tokens N     tokens per free-text reply (default 256)\n"                                               \
    "  --judge-system TEXT      a system message for every request\n"                                                     \
    "  --judge-adapter DIR, --judge-threads N, --judge-ctx N, --judge-chat-template NAME, --judge-device cpu|cuda|auto\n"   \
    "  --judge-precision bf16|f32\n"                                                                                  \
    "                           for the in-process judge (template default: the checkpoint's, else alpaca;\n"         \
    "                           precision: on the GPU, as --precision of the model commands)\n"                         \
    "  --judge-batch-invariant  in-process: one sequence per forward pass, so free text repeats exactly when\n"           \
    "                           a run is resumed (scores always do)\n"

/* Flags of every stage: where records come from and go, and how they are read. */
typedef struct {
    const char *in, *prompts_dir;
    pt_read_opts read;
    pt_stage_io io;
    bool quiet;
} cli_stage_opts;

/* 1 if the option was a stage flag, 0 if not, -1 on a bad value (message printed). */
int cli_stage_option(cli_stage_opts *s, const char *cmd, int opt, const char *arg);
/* cli_stage_option as a cli_option_group handler (opts: a cli_stage_opts). */
int cli_stage_group(void *opts, const char *cmd, int opt, const char *arg);

#define CLI_STAGE_LONGOPTS                                                                                 \
    {"in", required_argument, 0, 1100}, {"out", required_argument, 0, 1101},                               \
        {"restart", no_argument, 0, 1102}, {"window", required_argument, 0, 1103},                         \
        {"prompts", required_argument, 0, 1104}, {"quiet", no_argument, 0, 1105}
#define CLI_READ_LONGOPTS                                                                                  \
    {"text-field", required_argument, 0, 1106}, {"format", required_argument, 0, 1107},                    \
        {"delimiter", required_argument, 0, 1108}, {"limit", required_argument, 0, 1109}
#define CLI_STAGE_HELP                                                                                            \
    "  --out FILE             output JSONL (appended to; an interrupted run is resumed)\n"                        \
    "  --restart              start the output over instead of resuming it\n"                                     \
    "  --window N             records per round of judge requests (default 16, or twice --judge-concurrency)\n"                                 \
    "  --prompts DIR          prompt templates replacing the built-in ones (see data/prompts/)\n"                 \
    "  --quiet                no progress bar\n"
#define CLI_READ_HELP                                                                                             \
    "  --format csv|jsonl     input format (default: from the file name, else the content)\n"                    \
    "  --delimiter C          CSV delimiter (default: detected from the header)\n"                                \
    "  --limit N              use only the first N records of the input\n"

/* --swap-check[=flag|drop] of select, judge-answers and annotate-eval (pipeline.h). */
#define CLI_SWAP_LONGOPT {"swap-check", optional_argument, 0, 1200}
#define CLI_SWAP_HELP                                                                                             \
    "  --swap-check[=flag|drop]  ask every score twice, the second time with the scale's ends exchanged;\n"      \
    "                         readings more than 2 points apart are flagged (\"swap\": {\"disagree\": true}),\n"  \
    "                         or with =drop left out; agreeing ones are averaged. The rate is reported\n"
/* 1 if the option was --swap-check, 0 if not, -1 on a bad value (message printed). */
int cli_swap_option(pt_swap_mode *m, const char *cmd, int opt, const char *arg);
/* cli_swap_option as a cli_option_group handler (opts: a pt_swap_mode). */
int cli_swap_group(void *opts, const char *cmd, int opt, const char *arg);

/* Progress bar (on a terminal) and notes on stderr. */
typedef struct cli_stage_ui {
    const char *cmd;
    bool tty, quiet, bar_shown, finished;
    int notes, max_notes;
    double t0;
} cli_stage_ui;

void cli_stage_ui_init(cli_stage_ui *ui, pt_stage_hooks *h, const char *cmd, bool quiet);
/* Ends the bar, reports notes left unprinted, and prints the summary line (once). */
void cli_stage_ui_finish(cli_stage_ui *ui, const pt_stage_summary *s);

/* What a stage command holds while it runs. */
typedef struct {
    pt_prompts prompts;
    pt_recordset rs;
    char *compass;          /* judge-answers: the compass.json read, if that is what it was */
    pt_stage_hooks hooks;
    cli_stage_ui ui;
    pt_stage_summary sum;
} cli_stage;

/* Loads the prompt templates and the input (open-ended answers with `answers`, else records),
 * connects the judge (with `judge`), sets up progress and notes, and picks the window when none
 * was given. Returns 0 or the exit
 * status (message printed; nothing left to free). */
int cli_stage_open(cli_stage *st, const char *cmd, cli_stage_opts *so, cli_judge *jo, bool answers, bool judge);
/* Prints the summary line and frees everything; returns the exit status for `status`. */
int cli_stage_close(cli_stage *st, const char *cmd, cli_judge *jo, pt_status status);

#endif
