/* politune: entry point; dispatches to the subcommands listed in `commands`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assets_env.h"
#include "backend/cpu/kernels.h"
#include "cli_wheel.h"
#include "commands.h"
#include "politune.h"

static const pt_cli_command commands[] = {
    {"generate", cmd_generate, "generate text from a prompt (optionally as a chat turn)"},
    {"chat", cmd_chat, "interactive chat with a model"},
    {"score", cmd_score, "log-probability of a continuation after a prompt"},
    {"inspect", cmd_inspect, "show a checkpoint's architecture, sizes, dtypes, tokenizer and template"},
    {"tokenize", cmd_tokenize, "text -> token ids, or ids -> text with --decode"},
    {"logits", cmd_logits, "vocabulary logits for every position of a token sequence (JSON)"},
    {"train", cmd_train, "LoRA fine-tuning with DPO or SFT (PEFT adapters, resumable)"},
    {"merge", cmd_merge, "merge a LoRA adapter into the base weights (HF directory or GGUF)"},
    {"export-lora", cmd_export_lora, "write a LoRA adapter as llama.cpp's LoRA-adapter GGUF"},
    {"compass", cmd_compass, "Political Compass Test of a model/adapter: robust answers, scores, chart"},
    {"dial", cmd_dial, "the ideology dial: the compass at a series of adapter scales or left/right mixes, with the path charted"},
    {"steer", cmd_steer, "steer build: a steering vector (activation addition) from preference pairs"},
    {"compass-score", cmd_compass_score, "coordinates of an answer vector, as the Political Compass website scores"},
    {"report", cmd_report, "one HTML page comparing compass result directories"},
    {"compare", cmd_compare, "the shift between two compass runs: intervals, permutation test, items that moved"},
    {"serve", cmd_serve, "OpenAI-compatible HTTP server (chat, completions, streaming)"},
    {"select", cmd_select, "score posts' ideology and quality with a judge LLM; keep the clear ones"},
    {"synth", cmd_synth, "turn kept posts into preference pairs (prompt, chosen, rejected)"},
    {"judge-answers", cmd_judge_answers, "rate open-ended answers (compass.json or JSONL) for ideology"},
    {"annotate-eval", cmd_annotate_eval, "agreement of a judge's ideology scores with known labels"},
    {"run", cmd_run, "the whole pipeline from a YAML recipe: select, synth, train, compass, report (resumable)"},
    {"demo", cmd_demo, "the PoliTune experiment at demo scale on stories260K: left and right adapters, compass, report"},
    {"pull", cmd_pull, "download and verify named assets (models, datasets, tokenizers) into the cache"},
};
#define N_COMMANDS (int)(sizeof commands / sizeof commands[0])

static void usage(FILE *f) {
    fprintf(f,
            "politune %s - measure and steer the political leaning of language models\n\n"
            "usage: politune <command> [options]     (politune <command> --help for details)\n\n"
            "commands:\n",
            PT_VERSION);
    for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nPATH arguments name a GGUF file or a Hugging Face model directory.\n");
}

static void warn_to_stderr(const char *message) { fprintf(stderr, "politune: warning: %s\n", message); }

int main(int argc, char **argv) {
    pt_warn_set_sink(warn_to_stderr);
    if (argc < 2) { usage(stderr); return 2; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) { usage(stdout); return 0; }
    if (!strcmp(argv[1], "--version")) { printf("politune %s (%s)\n", pt_version(), pt_build_features()); return 0; }
    /* the library reads no environment: what the user set there is passed on here */
    const char *kernels = getenv("POLITUNE_KERNELS");
    pt_status st = cli_assets_from_env();
    if (!st && kernels && *kernels) st = pt_kern_limit(kernels);
    if (st) {
        fprintf(stderr, "politune: %s%s\n", kernels && st == PT_ERR_ARG ? "POLITUNE_KERNELS: " : "", pt_errmsg());
        return 2;
    }
    cli_wheel_install(NULL); /* any command may pull an asset published in a Python wheel */
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "politune: unknown command '%s' (see 'politune --help')\n", argv[1]);
    return 2;
}
