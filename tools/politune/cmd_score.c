/* politune score: summed and per-token log-probabilities of a continuation after a prompt. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"

static const char *usage =
    "usage: politune score --model PATH --prompt TEXT --continuation TEXT [--chat] [--system TEXT]\n"
    "       politune score --model PATH --prompt-ids LIST --continuation-ids LIST\n\n"
    "Prints {\"logprob\":SUM,\"n_tokens\":N,\"tokens\":[{\"id\":..,\"text\":..,\"logprob\":..},...]}:\n"
    "the log-probability of the continuation's tokens given the prompt, sum_t log p(token_t | before).\n"
    "The prompt gets BOS as the tokenizer says (or the chat template with --chat); the continuation\n"
    "is tokenised on its own, without special tokens.\n\n"
    "options:\n" CLI_MODEL_HELP
    "  --prompt TEXT / --prompt-ids LIST           the context\n"
    "  --continuation TEXT / --continuation-ids LIST   the text to score\n"
    "  --chat, --system TEXT                       render the prompt as a chat user turn\n";

/* score's own options: the texts or ids (the model's are cli.c's). */
typedef struct {
    const char *prompt, *cont, *pids, *cids, *system;
    bool chat;
} score_cli;

static int score_option(void *opts, const char *cmd, int c, const char *arg) {
    score_cli *s = opts;
    switch (c) {
    case 'P': s->prompt = arg; return 1;
    case 'N': s->cont = arg; return 1;
    case 'p': s->pids = arg; return 1;
    case 'n': s->cids = arg; return 1;
    case 'Y': s->system = arg; return 1;
    case 'c': s->chat = true; return 1;
    default: return 0;
    }
}

int cmd_score(int argc, char **argv) {
    const char *cmd = "score";
    cli_model_opts mo = {0};
    score_cli sc = {0};
    static const struct option longopts[] = {CLI_MODEL_LONGOPTS, {"prompt", required_argument, 0, 'P'}, {"continuation", required_argument, 0, 'N'},
                                         {"prompt-ids", required_argument, 0, 'p'}, {"continuation-ids", required_argument, 0, 'n'},
                                         {"system", required_argument, 0, 'Y'}, {"chat", no_argument, 0, 'c'},
                                         {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const cli_option_group groups[] = {{cli_model_group, &mo}, {score_option, &sc}, {NULL, NULL}};
    int parsed = cli_getopt(cmd, argc, argv, longopts, usage, false, groups);
    if (parsed) return parsed == CLI_HELP_SHOWN ? 0 : parsed;
    const char *prompt = sc.prompt, *cont = sc.cont, *pids = sc.pids, *cids = sc.cids, *system = sc.system;
    const bool chat = sc.chat;
    if (!prompt == !pids) return cli_usage_error(cmd, "give exactly one of --prompt TEXT or --prompt-ids LIST");
    if (!cont == !cids) return cli_usage_error(cmd, "give exactly one of --continuation TEXT or --continuation-ids LIST");
    cli_session s;
    int rc = cli_session_open(&s, cmd, &mo, 1);
    if (rc) return rc;
    int32_t *p = NULL, *c = NULL;
    int np = 0, nc = 0;
    size_t n;
    pt_status st = pids ? cli_parse_ids(pids, &p, &np) : cli_encode_prompt(&s, system, prompt, chat, &p, &np);
    if (!st && cids) st = cli_parse_ids(cids, &c, &nc);
    else if (!st) {
        if (!s.model->tok) st = pt_error(PT_ERR_ARG, "%s: no tokenizer; use --continuation-ids", s.model->path);
        else st = pt_tokenizer_encode(s.model->tok, cont, strlen(cont), false, &c, &n), nc = (int)n;
    }
    if (!st && nc == 0) st = pt_error(PT_ERR_ARG, "the continuation is empty");
    double sum = 0, *per = NULL;
    if (!st) {
        per = malloc(sizeof(double) * nc);
        const int32_t *pp = p, *cc = c;
        st = pt_score(s.engine, 1, &pp, &np, &cc, &nc, &sum, per);
    }
    if (st) rc = cli_fail(cmd, st);
    else {
        printf("{\"logprob\":%.9g,\"n_tokens\":%d,\"prompt_tokens\":%d,\"tokens\":[", sum, nc, np);
        for (int i = 0; i < nc; i++) {
            printf("%s{\"id\":%d,\"text\":", i ? "," : "", c[i]);
            char *t = NULL;
            if (s.model->tok && !pt_tokenizer_decode(s.model->tok, &c[i], 1, false, &t)) cli_json_string(stdout, t);
            else printf("null");
            free(t);
            printf(",\"logprob\":%.9g}", per[i]);
        }
        printf("]}\n");
    }
    free(per);
    free(p);
    free(c);
    cli_session_close(&s);
    return rc;
}
