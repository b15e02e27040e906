/* politune generate: continue a prompt (raw or as a chat turn), streaming to stdout. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"

static const char *usage =
    "usage: politune generate --model PATH --prompt TEXT [options]\n\n"
    "Generates a continuation of TEXT and streams it to stdout. With --chat the prompt is a user\n"
    "turn rendered with the model's chat template, and generation stops at the end of the turn.\n\n"
    "options:\n" CLI_MODEL_HELP
    "  --prompt TEXT         the prompt (required; '-' reads it from stdin)\n"
    "  --chat                treat TEXT as a user message in the chat template\n"
    "  --system TEXT         system message (with --chat)\n" CLI_GEN_HELP
    "  --json                print one JSON object (text, ids, stop reason, speeds) instead of streaming\n"
    "  --verbose             print prompt size and speed to stderr\n\n"
    "example:\n"
    "  politune generate --model stories260K.gguf --prompt \"Once upon a time\" --max-new-tokens 40\n";

static char *read_stdin(void) {
    size_t cap = 4096, n = 0;
    char *s = malloc(cap);
    int c;
    while (s && (c = getchar()) != EOF) {
        if (n + 1 >= cap) s = realloc(s, cap *= 2);
        if (s) s[n++] = (char)c;
    }
    if (s) s[n] = 0;
    return s;
}

int cmd_generate(int argc, char **argv) {
    const char *cmd = "generate";
    cli_model_opts mo = {0};
    cli_gen_opts go;
    cli_gen_defaults(&go);
    const char *prompt = NULL, *system = NULL;
    bool chat = false, json = false, verbose = false;
    static const struct option longopts[] = {CLI_MODEL_LONGOPTS, CLI_GEN_LONGOPTS,
                                         {"prompt", required_argument, 0, 'P'}, {"system", required_argument, 0, 'Y'},
                                         {"chat", no_argument, 0, 'c'}, {"json", no_argument, 0, 'J'},
                                         {"verbose", no_argument, 0, 'v'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    cli_bind binds[] = {{'P', &prompt, NULL}, {'Y', &system, NULL}, {'c', NULL, &chat}, {'J', NULL, &json}, {'v', NULL, &verbose},
                        {0, NULL, NULL}};
    const cli_option_group groups[] = {{cli_model_group, &mo}, {cli_gen_group, &go}, {cli_bind_group, binds}, {NULL, NULL}};
    int parsed = cli_getopt(cmd, argc, argv, longopts, usage, false, groups);
    if (parsed) return parsed == CLI_HELP_SHOWN ? 0 : parsed;
    if (!prompt) return cli_usage_error(cmd, "--prompt TEXT is required");
    char *stdin_text = NULL;
    if (!strcmp(prompt, "-")) prompt = stdin_text = read_stdin();
    cli_session s;
    int rc = cli_session_open(&s, cmd, &mo, 1);
    if (rc) { free(stdin_text); return rc; }
    int32_t *ids = NULL, stop_buf[16];
    int n = 0;
    pt_status st = cli_encode_prompt(&s, system, prompt, chat, &ids, &n);
    cli_gen_finish(&go, s.model, stop_buf, 16);
    pt_gen_result r = {0};
    if (!st) st = pt_generate(s.engine, 0, ids, n, &go.p, json ? NULL : cli_stream_stdout, NULL, &r);
    if (st) rc = cli_fail(cmd, st);
    else if (json) {
        printf("{\"text\":");
        cli_json_stringn(stdout, r.text ? r.text : "", r.text ? r.text_len : 0);
        printf(",\"ids\":[");
        for (int i = 0; i < r.n_ids; i++) printf(i ? ",%d" : "%d", r.ids[i]);
        printf("],\"stop_reason\":\"%s\",\"prompt_tokens\":%d,\"prefill_tokens_per_s\":%.2f,\"decode_tokens_per_s\":%.2f}\n",
               r.stop_reason, r.n_prompt, r.prefill_s > 0 ? r.n_prompt / r.prefill_s : 0, r.decode_s > 0 ? r.n_ids / r.decode_s : 0);
    } else {
        printf("\n");
        if (verbose)
            fprintf(stderr, "[%d prompt tokens, %.1f tok/s prefill; %d generated, %.1f tok/s; stop: %s]\n", r.n_prompt,
                    r.prefill_s > 0 ? r.n_prompt / r.prefill_s : 0, r.n_ids, r.decode_s > 0 ? r.n_ids / r.decode_s : 0, r.stop_reason);
    }
    pt_gen_result_free(&r);
    free(ids);
    free(stdin_text);
    cli_session_close(&s);
    return rc;
}
