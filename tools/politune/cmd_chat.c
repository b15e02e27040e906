/* politune chat: an interactive conversation on the terminal. Each turn re-renders the
 * whole conversation with the chat template, so the model sees exactly what the template
 * produces; /reset forgets, /exit (or end of input) leaves. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"

static const char *usage =
    "usage: politune chat --model PATH [--system TEXT] [options]\n\n"
    "Interactive chat. Type a message and press Enter; /reset starts over, /exit or Ctrl-D quits.\n\n"
    "options:\n" CLI_MODEL_HELP
    "  --system TEXT         system message\n" CLI_GEN_HELP;

int cmd_chat(int argc, char **argv) {
    const char *cmd = "chat", *system = NULL;
    cli_model_opts mo = {0};
    cli_gen_opts go;
    cli_gen_defaults(&go);
    go.p.sampling.temperature = 0.7f;
    go.p.sampling.top_p = 0.9f;
    static const struct option longopts[] = {CLI_MODEL_LONGOPTS, CLI_GEN_LONGOPTS, {"system", required_argument, 0, 'Y'},
                                         {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    cli_bind binds[] = {{'Y', &system, NULL}, {0, NULL, NULL}};
    const cli_option_group groups[] = {{cli_model_group, &mo}, {cli_gen_group, &go}, {cli_bind_group, binds}, {NULL, NULL}};
    int parsed = cli_getopt(cmd, argc, argv, longopts, usage, false, groups);
    if (parsed) return parsed == CLI_HELP_SHOWN ? 0 : parsed;
    cli_session s;
    int rc = cli_session_open(&s, cmd, &mo, 1);
    if (rc) return rc;
    if (!s.model->tok || s.chat == PT_CHAT_NONE) {
        fprintf(stderr, "politune chat: %s has %s; choose a template with --chat-template\n", mo.model,
                s.model->tok ? "no recognised chat template" : "no tokenizer");
        cli_session_close(&s);
        return 2;
    }
    int32_t stop_buf[16];
    cli_gen_finish(&go, s.model, stop_buf, 16);
    pt_chat_msg *msgs = NULL;
    int n_msgs = 0, cap = 0;
    char line[65536];
    bool tty = isatty(0);
    if (tty) fprintf(stderr, "politune chat (%s, template %s) - /reset to start over, /exit to quit\n", mo.model, pt_chat_template_name(s.chat));
    for (;;) {
        if (tty) { fputs("> ", stdout); fflush(stdout); }
        if (!fgets(line, sizeof line, stdin)) break;
        line[strcspn(line, "\n")] = 0;
        if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) break;
        if (!strcmp(line, "/reset")) {
            for (int i = 0; i < n_msgs; i++) free((char *)msgs[i].content);
            n_msgs = 0;
            continue;
        }
        if (!*line) continue;
        if (n_msgs + 3 > cap) msgs = realloc(msgs, sizeof *msgs * (cap = cap * 2 + 8));
        if (n_msgs == 0 && system) msgs[n_msgs++] = (pt_chat_msg){"system", strdup(system)};
        msgs[n_msgs++] = (pt_chat_msg){"user", strdup(line)};
        char *text = NULL;
        int32_t *ids = NULL;
        size_t n = 0;
        int32_t bos = pt_tokenizer_bos(s.model->tok);
        pt_status st = pt_chat_render(s.chat, msgs, n_msgs, true, bos >= 0 ? pt_tokenizer_token_text(s.model->tok, bos) : NULL, &text);
        if (!st) st = pt_tokenizer_encode(s.model->tok, text, strlen(text), s.chat == PT_CHAT_ALPACA, &ids, &n);
        pt_gen_result r = {0};
        if (!st) st = pt_generate(s.engine, 0, ids, (int)n, &go.p, cli_stream_stdout, NULL, &r);
        free(text);
        free(ids);
        if (st) {
            cli_fail(cmd, st);
            free((char *)msgs[--n_msgs].content); /* drop the turn that failed */
            continue;
        }
        printf("\n");
        msgs[n_msgs++] = (pt_chat_msg){"assistant", strdup(r.text ? r.text : "")};
        pt_gen_result_free(&r);
    }
    for (int i = 0; i < n_msgs; i++) free((char *)msgs[i].content);
    free(msgs);
    cli_session_close(&s);
    return rc;
}
