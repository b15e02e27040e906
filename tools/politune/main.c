/* politune: entry point; dispatches to the subcommands listed in `commands`. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "politune.h"

static const pt_cli_command commands[] = {
    {"generate", cmd_generate, "generate text from a prompt (optionally as a chat turn)"},
    {"chat", cmd_chat, "interactive chat with a model"},
    {"score", cmd_score, "log-probability of a continuation after a prompt"},
    {"inspect", cmd_inspect, "show a checkpoint's architecture, sizes, dtypes, tokenizer and template"},
    {"tokenize", cmd_tokenize, "text -> token ids, or ids -> text with --decode"},
    {"logits", cmd_logits, "vocabulary logits for every position of a token sequence (JSON)"},
};
#define N_COMMANDS (int)(sizeof commands / sizeof commands[0])

static void usage(FILE *f) {
    fprintf(f,
            "politune %s - measure and steer the political leaning of language models\n\n"
            "usage: politune <command> [options]     (politune <command> --help for details)\n\n"
            "commands:\n",
            PT_VERSION);
    for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nPATH arguments name a GGUF file or a Hugging Face model directory.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return 2; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) { usage(stdout); return 0; }
    if (!strcmp(argv[1], "--version")) { printf("politune %s\n", PT_VERSION); return 0; }
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "politune: unknown command '%s' (see 'politune --help')\n", argv[1]);
    return 2;
}
